/** Runs the toy CPU example (`node dist/examples/toy-cpu/run.js`, or bundled in a page). */
import { runToyMachine } from './main.ts';

const result = runToyMachine((line) => console.log(line));
console.log(`taken: ${result.taken.join(' ')}`);
