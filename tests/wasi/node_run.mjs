// node_run.mjs — runs a WASI command module under Node's built-in WASI with
// the same command line as `wasmfn run` (--env K=V, --dir HOST[:GUEST]), for
// the differential test in run_tests.sh. Exits with the guest's exit code.
import { readFileSync } from 'node:fs';
import { WASI } from 'node:wasi';

const args = process.argv.slice(2);
const env = {};
const preopens = {};
let i = 0;
for (; i < args.length; i++) {
    const a = args[i];
    if (a === '--env') {
        const kv = args[++i];
        const eq = kv.indexOf('=');
        env[kv.slice(0, eq)] = kv.slice(eq + 1);
    } else if (a === '--dir') {
        const spec = args[++i];
        const colon = spec.indexOf(':');
        const host = colon < 0 ? spec : spec.slice(0, colon);
        const guest = colon < 0 ? spec : spec.slice(colon + 1);
        preopens[guest] = host;
    } else {
        break;
    }
}
const file = args[i];
const wasi = new WASI({ version: 'preview1', args: args.slice(i), env, preopens, returnOnExit: true });
const module = await WebAssembly.compile(readFileSync(file));
const instance = await WebAssembly.instantiate(module, wasi.getImportObject());
const code = wasi.start(instance);
process.exitCode = code;
