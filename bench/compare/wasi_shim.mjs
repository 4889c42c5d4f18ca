// wasi_shim.mjs — the smallest WASI preview1 a CGI-style command module needs,
// for running our functions inside workerd (which has no WASI of its own).
// Written for `make bench`; not a general WASI.
//
//   const run = wasiRun(module, {args, env, stdin})  // fresh instance
//   run.stdout   the bytes the guest wrote to fd 1, as a Uint8Array
//
// Implemented: args_*, environ_*, fd_write (fd 1 captured, fd 2 dropped),
// fd_read (fd 0 from a buffer), fd_fdstat_get (character device), fd_close,
// proc_exit (ends the run), clock_time_get, random_get. Anything else the
// module imports answers ENOSYS (52); fd_seek answers ESPIPE (70).

const ESUCCESS = 0, EBADF = 8, ESPIPE = 70, ENOSYS = 52;

class WasiExit extends Error {
    constructor(code) {
        super(`exit ${code}`);
        this.code = code;
    }
}

const encoder = new TextEncoder();

// A WASI context: the imports object bound to one request's args, env and
// stdin, writing into its own stdout chunks. `bind(instance)` points it at
// the instance's memory; a context can be rebound for each request.
export class WasiContext {
    constructor() {
        this.memory = null;
        this.reset({ args: [], env: {}, stdin: new Uint8Array(0) });
        const view = () => new DataView(this.memory.buffer);
        const bytes = () => new Uint8Array(this.memory.buffer);
        const strings = (list, ptrs, buf) => {
            const dv = view(), mem = bytes();
            for (const s of list) {
                dv.setUint32(ptrs, buf, true);
                ptrs += 4;
                mem.set(s, buf);
                mem[buf + s.length] = 0;
                buf += s.length + 1;
            }
            return ESUCCESS;
        };
        const sizes = (list, countPtr, sizePtr) => {
            const dv = view();
            dv.setUint32(countPtr, list.length, true);
            dv.setUint32(sizePtr, list.reduce((n, s) => n + s.length + 1, 0), true);
            return ESUCCESS;
        };
        const impl = {
            args_sizes_get: (c, s) => sizes(this.args, c, s),
            args_get: (p, b) => strings(this.args, p, b),
            environ_sizes_get: (c, s) => sizes(this.env, c, s),
            environ_get: (p, b) => strings(this.env, p, b),
            fd_write: (fd, iovs, iovsLen, nwritten) => {
                if (fd !== 1 && fd !== 2) return EBADF;
                const dv = view();
                let total = 0;
                for (let i = 0; i < iovsLen; i++) {
                    const ptr = dv.getUint32(iovs + i * 8, true);
                    const len = dv.getUint32(iovs + i * 8 + 4, true);
                    if (fd === 1 && len) this.stdoutChunks.push(new Uint8Array(this.memory.buffer.slice(ptr, ptr + len)));
                    total += len;
                }
                dv.setUint32(nwritten, total, true);
                return ESUCCESS;
            },
            fd_read: (fd, iovs, iovsLen, nread) => {
                if (fd !== 0) return EBADF;
                const dv = view(), mem = bytes();
                let total = 0;
                for (let i = 0; i < iovsLen && this.stdinPos < this.stdin.length; i++) {
                    const ptr = dv.getUint32(iovs + i * 8, true);
                    const len = dv.getUint32(iovs + i * 8 + 4, true);
                    const n = Math.min(len, this.stdin.length - this.stdinPos);
                    mem.set(this.stdin.subarray(this.stdinPos, this.stdinPos + n), ptr);
                    this.stdinPos += n;
                    total += n;
                }
                dv.setUint32(nread, total, true);
                return ESUCCESS;
            },
            fd_fdstat_get: (fd, stat) => {
                if (fd > 2) return EBADF;
                const dv = view();
                dv.setUint8(stat, 2); // filetype: character device
                dv.setUint16(stat + 2, 0, true); // flags
                dv.setBigUint64(stat + 8, 0xffffffffn, true); // rights base
                dv.setBigUint64(stat + 16, 0xffffffffn, true); // rights inheriting
                return ESUCCESS;
            },
            fd_close: (fd) => (fd <= 2 ? ESUCCESS : EBADF),
            fd_seek: () => ESPIPE,
            proc_exit: (code) => {
                throw new WasiExit(code);
            },
            clock_time_get: (id, precision, out) => {
                view().setBigUint64(out, BigInt(Date.now()) * 1000000n, true);
                return ESUCCESS;
            },
            random_get: (buf, len) => {
                crypto.getRandomValues(bytes().subarray(buf, buf + len));
                return ESUCCESS;
            },
        };
        this.imports = { wasi_snapshot_preview1: {} };
        this.impl = impl;
    }

    // The import object for `module`: every function it imports from
    // wasi_snapshot_preview1, ENOSYS for those not implemented above.
    importsFor(module) {
        const ns = {};
        for (const imp of WebAssembly.Module.imports(module)) {
            if (imp.module !== 'wasi_snapshot_preview1' || imp.kind !== 'function') continue;
            ns[imp.name] = this.impl[imp.name] || (() => ENOSYS);
        }
        return { wasi_snapshot_preview1: ns };
    }

    reset({ args, env, stdin }) {
        this.args = args.map((s) => encoder.encode(s));
        this.env = Object.entries(env).map(([k, v]) => encoder.encode(`${k}=${v}`));
        this.stdin = stdin;
        this.stdinPos = 0;
        this.stdoutChunks = [];
    }

    // Runs _start of `instance`; returns the exit code (0 when _start
    // returns). Other traps propagate.
    start(instance) {
        this.memory = instance.exports.memory;
        try {
            instance.exports._start();
            return 0;
        } catch (e) {
            if (e instanceof WasiExit) return e.code;
            throw e;
        }
    }

    stdout() {
        let n = 0;
        for (const c of this.stdoutChunks) n += c.length;
        const out = new Uint8Array(n);
        n = 0;
        for (const c of this.stdoutChunks) {
            out.set(c, n);
            n += c.length;
        }
        return out;
    }
}
