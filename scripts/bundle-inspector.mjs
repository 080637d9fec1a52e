// Bundles the inspector page (web/inspector/page.ts + uPlot) into dist/inspector/page.js and copies
// uPlot's CSS beside it: src/cli/inspect-server.ts inlines both into one HTML page (no external
// asset). Run by `npm run build` after tsc has type-checked the page (web/tsconfig.json).
import { copyFileSync, mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const root = fileURLToPath(new URL('..', import.meta.url));
mkdirSync(`${root}dist/inspector`, { recursive: true });
await build({
  entryPoints: [`${root}web/inspector/page.ts`],
  bundle: true,
  format: 'esm',
  platform: 'browser',
  target: 'es2022',
  minify: true,
  outfile: `${root}dist/inspector/page.js`,
  logLevel: 'warning',
});
copyFileSync(`${root}node_modules/uplot/dist/uPlot.min.css`, `${root}dist/inspector/uPlot.min.css`);
