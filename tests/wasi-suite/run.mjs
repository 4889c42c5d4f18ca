// run.mjs — an executor for the official WASI test suite (wasi-testsuite:
// its SPECIFICATION.md says how one runs), with `wasmfn run` as the
// runtime. For each directory given: copies it to a scratch directory (the
// tests write files; the suite stays untouched), removes *.cleanup files,
// and runs every *.wasm with the specification in its .json (or the
// default): `run` with args, env (the guest's whole environment) and root
// (preopened as /), then checks the exit code, stdout and stderr. Prints
// one line per test and "wasi-suite (TIER): N passed, M failed"; exits 1
// when anything failed.
//
//   node tests/wasi-suite/run.mjs WASMFN TIER DIR...
//
// Only what wasm32-wasip1 tests use is supported: the legacy form and the
// run/wait/read operations; a test that needs a proposal (sockets, http)
// or a connect/send/recv operation fails with a message saying so.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const [wasmfnArg, tier, ...dirs] = process.argv.slice(2);
const wasmfn = wasmfnArg && path.resolve(wasmfnArg);
if (!wasmfn || !tier || dirs.length === 0) {
    console.error('usage: node run.mjs WASMFN TIER DIR...');
    process.exit(2);
}

// The operations a test runs, from either form of specification.
function operations(spec) {
    if (Array.isArray(spec.operations)) return spec.operations;
    return [
        { type: 'run', args: spec.args ?? [], env: spec.env ?? {}, root: spec.root ?? null },
        { type: 'read', id: 'stdout', payload: spec.stdout ?? '' },
        { type: 'read', id: 'stderr', payload: spec.stderr ?? '' },
        { type: 'wait', exit_code: spec.exit_code ?? 0 },
    ];
}

// Runs one test case; returns null when it passed, else why not.
function runCase(dir, wasm, spec) {
    if ((spec.proposals ?? []).length) return `needs proposals ${spec.proposals.join(', ')}`;
    let result = null;
    for (const op of operations(spec)) {
        switch (op.type) {
        case 'run': {
            const argv = ['run', '--tier', tier, '--timeout', '60000'];
            if (op.root != null) argv.push('--dir', `${path.resolve(dir, op.root)}:/`);
            for (const [k, v] of Object.entries(op.env ?? {})) argv.push('--env', `${k}=${v}`);
            argv.push(path.join(dir, wasm), ...(op.args ?? []));
            // The guest's environment is only what --env gives it; the
            // runner's own is the host's.
            result = spawnSync(wasmfn, argv, { cwd: dir, encoding: 'utf8', timeout: 120000 });
            if (result.error) return `cannot run ${wasmfn}: ${result.error.message}`;
            break;
        }
        case 'read': {
            if (!result) return 'read before run';
            const id = op.id ?? 'stdout', want = op.payload ?? '';
            const got = id === 'stderr' ? result.stderr : result.stdout;
            if (got !== want) return `${id} ${JSON.stringify(got)}, expected ${JSON.stringify(want)}`;
            break;
        }
        case 'wait': {
            if (!result) return 'wait before run';
            const want = op.exit_code ?? 0;
            if (result.status !== want) {
                const err = result.stderr ? ` (stderr: ${result.stderr.trim().split('\n').pop()})` : '';
                return `exit ${result.status ?? result.signal}, expected ${want}${err}`;
            }
            break;
        }
        default:
            return `operation ${op.type} is not supported by this executor`;
        }
    }
    return null;
}

const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'wasmfn-wasi-suite-'));
let pass = 0, fail = 0;
try {
    for (const src of dirs) {
        const name = path.basename(path.dirname(path.resolve(src))) + '/' + path.basename(src);
        const dir = path.join(scratch, name.replace('/', '-'));
        fs.cpSync(src, dir, { recursive: true });
        for (const f of fs.readdirSync(dir, { recursive: true }))
            if (String(f).endsWith('.cleanup')) fs.rmSync(path.join(dir, f), { recursive: true, force: true });
        const cases = fs.readdirSync(dir).filter(f => f.endsWith('.wasm')).sort();
        for (const wasm of cases) {
            const json = path.join(dir, wasm.replace(/\.wasm$/, '.json'));
            let why;
            try {
                const spec = fs.existsSync(json) ? JSON.parse(fs.readFileSync(json, 'utf8')) : {};
                why = runCase(dir, wasm, spec);
            } catch (e) {
                why = `bad specification: ${e.message}`;
            }
            const test = `${name}/${wasm.replace(/\.wasm$/, '')}`;
            if (why === null) {
                pass++;
                console.log(`ok   ${test}`);
            } else {
                fail++;
                console.log(`FAIL ${test}: ${why}`);
            }
        }
    }
} finally {
    fs.rmSync(scratch, { recursive: true, force: true });
}
console.log(`wasi-suite (${tier}): ${pass} passed, ${fail} failed`);
process.exit(fail ? 1 : 0);
