#!/usr/bin/env node
// Builds the machine's CPU addon (native/unicorn, N-API over libunicorn 2.1) with
// node-gyp. Without libunicorn-dev it says so and exits 0: the library and the rest of the CLI
// do not need it, and `vgic run` then names what is missing. Run by scripts/install-system-deps.sh
// and by the machine on its first use (src/machine/native.ts), never by `npm install`; rebuilds only
// when the sources are newer than the addon.
import { spawnSync } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const dir = join(root, 'native', 'unicorn');
const addon = join(dir, 'build', 'Release', 'vgic_unicorn.node');
const header = '/usr/include/unicorn/unicorn.h';

if (!existsSync(header)) {
  console.log(
    `vgic: ${header} not found (Debian package libunicorn-dev): the CPU addon of \`vgic run\` is not built. ` +
      'Install with: bash scripts/install-system-deps.sh',
  );
  process.exit(0);
}
const sources = ['vgic_unicorn.c', 'qemu_cpu.c', 'qemu_cpu.h', 'binding.gyp'].map((f) => statSync(join(dir, f)).mtimeMs);
if (existsSync(addon) && statSync(addon).mtimeMs > Math.max(...sources)) process.exit(0);

// npm runs scripts with npm_config_node_gyp set; otherwise use the node-gyp bundled with npm.
const gyp =
  process.env.npm_config_node_gyp ??
  join(dirname(process.execPath), '..', 'lib', 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js');
const args = [gyp, 'rebuild'];
// Debian's Node keeps its headers in /usr/include/node: node-gyp must not try to download them.
if (!process.env.npm_config_nodedir && existsSync('/usr/include/node/node_api.h')) args.push('--nodedir=/usr');
const r = spawnSync(process.execPath, args, { cwd: dir, encoding: 'utf8' });
if (r.status !== 0) {
  process.stderr.write(r.stdout + r.stderr);
  console.error('vgic: building native/unicorn failed (see above); `vgic run` will not work until it builds.');
  // Without --strict a failure is only reported; scripts/install-system-deps.sh and the machine pass it.
  process.exit(process.argv.includes('--strict') ? 1 : 0);
}
console.log(`vgic: built ${addon}`);
