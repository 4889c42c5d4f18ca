// gen_inputs.mjs — deterministic random bytes for wasm-opt -ttf.
//
// Usage: node gen_inputs.mjs OUTDIR FIRST COUNT
// Writes OUTDIR/SEED.bin for SEED = FIRST .. FIRST+COUNT-1. The bytes (and
// their number, 2..24 KiB, which steers the size of the module binaryen
// makes) depend on SEED alone, so a seed names one module on every machine.
import { mkdirSync, writeFileSync } from 'node:fs';

const [outDir, firstArg, countArg] = process.argv.slice(2);
if (!outDir || firstArg === undefined || countArg === undefined) {
  console.error('usage: node gen_inputs.mjs OUTDIR FIRST COUNT');
  process.exit(2);
}
mkdirSync(outDir, { recursive: true });

// mulberry32: a small 32-bit generator; quality is ample for fuzz input.
function mulberry32(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  };
}

const first = Number(firstArg), count = Number(countArg);
for (let seed = first; seed < first + count; seed++) {
  const next = mulberry32(Math.imul(seed, 0x9e3779b1) ^ 0x5eed);
  const len = 2048 + (next() % (22 * 1024));
  const bytes = new Uint8Array(len);
  for (let i = 0; i < len; i += 4) {
    const v = next();
    bytes[i] = v; bytes[i + 1] = v >>> 8; bytes[i + 2] = v >>> 16; bytes[i + 3] = v >>> 24;
  }
  writeFileSync(`${outDir}/${seed}.bin`, bytes);
}
