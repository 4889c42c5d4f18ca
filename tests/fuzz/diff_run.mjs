// diff_run.mjs — V8's half of the differential fuzzer (see diff.sh).
//
// Usage: node diff_run.mjs MODULE.wasm
// Prints the same transcript as diff_run.c (the format is described there)
// for the same module run through V8's WebAssembly JS API. The JS API does
// not say what type an export returns, so this script reads the type,
// import, function and export sections itself (a small parser, independent
// of our engine's decoder) to format results and to pass zero arguments of
// the right kind (0n for i64).

import { readFileSync } from 'node:fs';

const I32 = 0x7f, I64 = 0x7e, F32 = 0x7d, F64 = 0x7c, FUNCREF = 0x70, EXTERNREF = 0x6f;

// ---- a minimal reader of the sections we need ----
// Returns { imports: [{module, name, params}] for function imports,
// exports: [{name, kind, type: {params, results} | null}] }, both in order.
function parseModule(bytes) {
  let pos = 8;
  const u8 = () => bytes[pos++];
  const uleb = () => {
    let result = 0, shift = 0, b;
    do {
      b = bytes[pos++];
      result += (b & 0x7f) * 2 ** shift;
      shift += 7;
    } while (b & 0x80);
    return result;
  };
  const name = () => {
    const len = uleb();
    const s = new TextDecoder().decode(bytes.subarray(pos, pos + len));
    pos += len;
    return s;
  };
  const skipLimits = () => { const flags = uleb(); uleb(); if (flags & 1) uleb(); };
  const types = [], funcTypes = [], imports = [], exports = [];
  while (pos < bytes.length) {
    const id = u8();
    const size = uleb();
    const end = pos + size;
    if (id === 1) {
      for (let n = uleb(); n > 0; n--) {
        u8(); // 0x60
        const params = [], results = [];
        for (let k = uleb(); k > 0; k--) params.push(u8());
        for (let k = uleb(); k > 0; k--) results.push(u8());
        types.push({ params, results });
      }
    } else if (id === 2) {
      for (let n = uleb(); n > 0; n--) {
        const module = name(), field = name();
        const kind = u8();
        if (kind === 0) {
          const type = types[uleb()];
          funcTypes.push(type);
          imports.push({ module, name: field, params: type.params });
        } else if (kind === 1) { u8(); skipLimits(); }
        else if (kind === 2) skipLimits();
        else if (kind === 3) { u8(); u8(); }
      }
    } else if (id === 3) {
      for (let n = uleb(); n > 0; n--) funcTypes.push(types[uleb()]);
    } else if (id === 7) {
      for (let n = uleb(); n > 0; n--) {
        const exportName = name();
        const kind = u8();
        const index = uleb();
        exports.push({ name: exportName, kind, type: kind === 0 ? funcTypes[index] : null });
      }
    }
    pos = end;
  }
  return { imports, exports };
}

// ---- value formatting, identical to diff_run.c ----
const f32buf = new Float32Array(1), u32of32 = new Uint32Array(f32buf.buffer);
const f64buf = new Float64Array(1), u64of64 = new BigUint64Array(f64buf.buffer);

function fmt(type, v) {
  switch (type) {
    case I32: return 'i32:' + (v >>> 0).toString(16).padStart(8, '0');
    case I64: return 'i64:' + BigInt.asUintN(64, v).toString(16).padStart(16, '0');
    case F32:
      if (Number.isNaN(v)) return 'f32:nan';
      f32buf[0] = v;
      return 'f32:' + u32of32[0].toString(16).padStart(8, '0');
    case F64:
      if (Number.isNaN(v)) return 'f64:nan';
      f64buf[0] = v;
      return 'f64:' + u64of64[0].toString(16).padStart(16, '0');
    case FUNCREF: case EXTERNREF: return 'ref:' + (v === null ? 'null' : 'nonnull');
    default: return `type${type.toString(16)}:?`;
  }
}

function zeroOf(type) {
  switch (type) {
    case I64: return 0n;
    case FUNCREF: case EXTERNREF: return null;
    default: return 0;
  }
}

// ---- run ----
const out = [];
const emit = (line) => out.push(line);
const flush = () => { process.stdout.write(out.join('\n') + (out.length ? '\n' : '')); out.length = 0; };

const bytes = new Uint8Array(readFileSync(process.argv[2]));
let module;
try {
  module = new WebAssembly.Module(bytes);
} catch (e) {
  emit('invalid');
  process.stderr.write(`diff_run.mjs: ${e.message}\n`);
  flush();
  process.exit(0);
}

const importObject = {};
for (const imp of WebAssembly.Module.imports(module)) {
  if (imp.kind !== 'function' || imp.module !== 'fuzzing-support' || !imp.name.startsWith('log-')) {
    emit(`unsupported import ${imp.module}.${imp.name}`);
    flush();
    process.exit(0);
  }
}
// The log functions print every argument, with the declared parameter
// types (read from the binary: the JS API does not tell them).
const { imports, exports } = parseModule(bytes);
for (const imp of imports) {
  importObject[imp.module] ??= {};
  importObject[imp.module][imp.name] = (...args) => {
    emit(['log', ...imp.params.map((t, i) => fmt(t, args[i]))].join(' '));
  };
}

let instance;
try {
  instance = new WebAssembly.Instance(module, importObject);
} catch (e) {
  emit('instantiate fail');
  process.stderr.write(`diff_run.mjs: ${e.message}\n`);
  flush();
  process.exit(0);
}

const hangInit = instance.exports.hangLimitInitializer;
for (const exp of exports) {
  if (exp.kind !== 0 || exp.name === 'hangLimitInitializer') continue;
  if (typeof hangInit === 'function') {
    try { hangInit(); } catch { emit('error hangLimitInitializer trapped'); }
  }
  emit(`call ${exp.name}`);
  const { params, results } = exp.type;
  try {
    const r = instance.exports[exp.name](...params.map(zeroOf));
    const values = results.length === 1 ? [r] : results.length === 0 ? [] : [...r];
    emit(['result', ...results.map((t, i) => fmt(t, values[i]))].join(' '));
  } catch (e) {
    if (e instanceof WebAssembly.RuntimeError) emit('trap');
    // JS has no v128 values: V8 refuses a call whose signature has one,
    // as an export or as a log-v128 import (diff_run.c prints the same).
    else if (e instanceof TypeError && /type incompatibility/.test(e.message))
      emit('error v128 at the JS boundary');
    else if (e instanceof RangeError && /call stack/i.test(e.message)) emit('exhausted');
    else emit(`error ${e.constructor.name}: ${e.message}`);
  }
  // Keep memory bounded on modules that log a lot.
  if (out.length > 4096) flush();
}
emit('done');
flush();
