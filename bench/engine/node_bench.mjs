// node_bench.mjs — runs the engine benchmark kernels in Node's V8.
//
// Usage: node node_bench.mjs KERNELS.wasm REPS NAME:SIZE...
// For each kernel: one warm-up call (lets V8 tier up past Liftoff), then REPS
// timed calls; prints "NAME CHECKSUM MEDIAN_MS" per kernel. engine_bench.c
// starts this script and puts its numbers beside its own.
import { readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';

const [file, repsArg, ...specs] = process.argv.slice(2);
if (!file || !repsArg || specs.length === 0) {
  console.error('usage: node node_bench.mjs KERNELS.wasm REPS NAME:SIZE...');
  process.exit(2);
}
const reps = Number(repsArg);
const { instance } = await WebAssembly.instantiate(readFileSync(file), {});

for (const spec of specs) {
  const [name, sizeText] = spec.split(':');
  const fn = instance.exports[name];
  if (typeof fn !== 'function') {
    console.error(`node_bench: no exported function ${name}`);
    process.exit(1);
  }
  const size = Number(sizeText);
  const checksum = fn(size) >>> 0;
  const times = [];
  for (let i = 0; i < reps; i++) {
    const t0 = performance.now();
    const c = fn(size) >>> 0;
    times.push(performance.now() - t0);
    if (c !== checksum) {
      console.error(`node_bench: ${name} checksum changed between runs`);
      process.exit(1);
    }
  }
  times.sort((a, b) => a - b);
  console.log(`${name} ${checksum} ${times[Math.floor(times.length / 2)].toFixed(3)}`);
}
