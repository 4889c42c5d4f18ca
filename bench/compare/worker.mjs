// worker.mjs — the workerd side of `make bench`: serves our WASI functions
// (compiled WebAssembly.Module objects from fns.mjs, which run.sh generates
// with one `import X from "X.wasm"` per function) CGI style.
//
//   /fresh/NAME   a new WebAssembly.Instance for every request (wasmfn's model)
//   /reuse/NAME   one instance per function, _start called again for each
//                 request. A C command leaves state behind (stdin at EOF, its
//                 heap), so the instance's linear memory is restored from a
//                 copy taken right after instantiation before each request;
//                 the instance is replaced when the guest called proc_exit
//                 (its stack pointer was not unwound) or grew its memory
//   /hold?fn=NAME&n=N   instantiates N instances and keeps them alive (memory
//                 per live instance); /release drops them
import fns from './fns.mjs';
import { WasiContext } from './wasi_shim.mjs';

const decoder = new TextDecoder();
const reused = new Map(); // name -> {instance, ctx}
let held = [];

function cgiResponse(bytes) {
    const text = decoder.decode(bytes);
    let end = text.indexOf('\n\n'), sep = 2;
    const crlf = text.indexOf('\r\n\r\n');
    if (crlf >= 0 && (end < 0 || crlf < end)) end = crlf, sep = 4;
    if (end < 0) return new Response('bad gateway\n', { status: 502 });
    const headers = new Headers();
    let status = 200;
    for (const line of text.slice(0, end).split('\n')) {
        const l = line.replace(/\r$/, '');
        const colon = l.indexOf(':');
        if (colon <= 0) continue;
        const name = l.slice(0, colon), value = l.slice(colon + 1).trim();
        if (name.toLowerCase() === 'status') status = parseInt(value, 10);
        else headers.append(name, value);
    }
    return new Response(text.slice(end + sep), { status, headers });
}

function request(ctx, req, url, name, body) {
    ctx.reset({
        args: [name],
        env: {
            REQUEST_METHOD: req.method,
            PATH_INFO: url.pathname,
            QUERY_STRING: url.search.slice(1),
            CONTENT_TYPE: req.headers.get('content-type') || '',
            CONTENT_LENGTH: String(body.length),
            SERVER_NAME: url.hostname,
            SERVER_PORT: url.port,
            SERVER_PROTOCOL: 'HTTP/1.1',
            GATEWAY_INTERFACE: 'CGI/1.1',
        },
        stdin: body,
    });
}

export default {
    async fetch(req) {
        const url = new URL(req.url);
        const parts = url.pathname.split('/');
        const mode = parts[1], name = parts[2];
        if (mode === 'hold') {
            const module = fns[url.searchParams.get('fn') || 'hello'];
            const n = parseInt(url.searchParams.get('n') || '0', 10);
            const ctx = new WasiContext();
            for (let i = 0; i < n; i++) held.push(new WebAssembly.Instance(module, ctx.importsFor(module)));
            return new Response(`holding ${held.length}\n`);
        }
        if (mode === 'release') {
            held = [];
            return new Response('released\n');
        }
        const module = fns[name];
        if (!module || (mode !== 'fresh' && mode !== 'reuse')) return new Response('not found\n', { status: 404 });
        const body = new Uint8Array(await req.arrayBuffer());
        let entry;
        if (mode === 'fresh') {
            const ctx = new WasiContext();
            entry = { ctx, instance: new WebAssembly.Instance(module, ctx.importsFor(module)) };
        } else {
            entry = reused.get(name);
            if (!entry) {
                const ctx = new WasiContext();
                const instance = new WebAssembly.Instance(module, ctx.importsFor(module));
                const snapshot = new Uint8Array(instance.exports.memory.buffer).slice();
                entry = { ctx, instance, snapshot };
                reused.set(name, entry);
            } else {
                new Uint8Array(entry.instance.exports.memory.buffer).set(entry.snapshot);
            }
        }
        request(entry.ctx, req, url, name, body);
        let code;
        try {
            code = entry.ctx.start(entry.instance);
        } catch (e) {
            reused.delete(name);
            return new Response(`trap: ${e}\n`, { status: 502 });
        }
        if (mode === 'reuse' && (code !== 0 || entry.instance.exports.memory.buffer.byteLength !== entry.snapshot.length))
            reused.delete(name);
        return cgiResponse(entry.ctx.stdout());
    },
};
