// node_wasi.mjs — runs one WASI command module once with Node's node:wasi,
// the way a CLI Wasm runtime runs a function: a new process per invocation,
// compiling the module from its file each time (no cache).
//
//   node --no-warnings node_wasi.mjs F.wasm
//
// The CGI environment comes from this process's environment (cgiserver.c
// sets it), the request body is stdin, the CGI response goes to stdout.
import { readFileSync } from 'node:fs';
import { WASI } from 'node:wasi';

const file = process.argv[2];
const wasi = new WASI({
    version: 'preview1',
    args: [file],
    env: process.env,
    stdin: 0,
    stdout: 1,
    stderr: 2,
    returnOnExit: true,
});
const module = await WebAssembly.compile(readFileSync(file));
const instance = await WebAssembly.instantiate(module, wasi.getImportObject());
process.exitCode = wasi.start(instance);
