/*
 * compile.c — `wasmfn compile`: a module's native code ahead of time, into
 * a compiled module file or into `wasmfn run`'s cache; and, with --raw, the
 * compiler the daemon and `wasmfn run` start as a child process
 * (runtime/compiler.c) — the one place this binary calls LLVM.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/client.h"
#include "engine/engine.h"

void cli_compile_usage(FILE *out)
{
    fprintf(out,
            "usage: wasmfn compile [--cache-dir DIR] IN.wasm [-o OUT]\n"
            "\n"
            "Compiles a module's functions to native code for this machine (LLVM, -O2),\n"
            "ahead of time, so that `wasmfn run` starts natively without compiling.\n"
            "\n"
            "  -o OUT           write OUT: the module with its native code appended as a\n"
            "                   custom section (\"wasmfn.native\"); OUT is still a valid\n"
            "                   module that any runtime runs, and `wasmfn run OUT` uses the\n"
            "                   code when this build of wasmfn made it on this machine for\n"
            "                   this user (anything else compiles again)\n"
            "  (no -o)          put the native code into wasmfn run's cache\n"
            "  --cache-dir DIR  the cache (default $WASMFN_CACHE_DIR, else\n"
            "                   $XDG_CACHE_HOME/wasmfn, else ~/.cache/wasmfn)\n"
            "  -h, --help       show this help\n"
            "\n"
            "Internal (the daemon's and wasmfn run's compiler process):\n"
            "  wasmfn compile --raw [--memory-limit MIB] [--nice N] [--parent-pid P] IN|- [-o OUT|-]\n"
            "  writes the bare object file; the limits apply to this process, which\n"
            "  dies with its parent (P: exits at once if that is no longer its parent).\n"
            "\n"
            "exit status: 0 done; 1 the module cannot be compiled; 2 usage error.\n");
}

static int write_output(const char *path, const uint8_t *bytes, size_t len)
{
    FILE *f = strcmp(path, "-") == 0 ? stdout : fopen(path, "wb");
    if (!f) return -1;
    size_t w = fwrite(bytes, 1, len, f);
    int rc = (w == len && fflush(f) == 0) ? 0 : -1;
    if (f != stdout && fclose(f) != 0) rc = -1;
    return rc;
}

/* --raw: compile in this process, under the limits it was given. */
static int compile_raw(const char *in, const char *out, uint64_t memory_mib, int nice_level,
                       long parent_pid)
{
    /* AddressSanitizer reserves terabytes of address space for its shadow:
     * a sanitizer build (tests only) cannot cap it. */
#if !defined(__SANITIZE_ADDRESS__)
    if (memory_mib) {
        struct rlimit rl = {.rlim_cur = memory_mib << 20, .rlim_max = memory_mib << 20};
        setrlimit(RLIMIT_AS, &rl);
    }
#else
    (void)memory_mib;
#endif
    if (nice_level > 0) setpriority(PRIO_PROCESS, 0, nice_level);
    /* The object goes to whoever started us; once it is gone (a killed
     * daemon, or a shim container stopped mid-compile) the compile is
     * wasted work that could run for minutes. */
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (parent_pid > 0 && getppid() != (pid_t)parent_pid) return 1; /* gone before we asked */
    size_t len;
    uint8_t *wasm = cli_file_bytes(in, &len);
    if (!wasm) {
        fprintf(stderr, "wasmfn: %s: %s\n", in, strerror(errno ? errno : EIO));
        return 1;
    }
    char err[ENG_ERR_MAX];
    uint8_t *obj;
    size_t objlen;
    int rc = 1;
    if (!eng_native_compile(wasm, len, &obj, &objlen, err, sizeof err)) {
        fprintf(stderr, "wasmfn: %s\n", err);
    } else {
        if (write_output(out, obj, objlen) != 0) fprintf(stderr, "wasmfn: %s: %s\n", out, strerror(errno));
        else rc = 0;
        free(obj);
    }
    free(wasm);
    return rc;
}

int cli_compile_main(int argc, char **argv)
{
    const char *in = NULL, *out = NULL, *cache_dir = NULL;
    bool raw = false, quiet = false;
    uint64_t memory_mib = 0;
    int nice_level = 0;
    long parent_pid = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            cli_compile_usage(stdout);
            return 0;
        } else if (strcmp(a, "-o") == 0 && i + 1 < argc) {
            out = argv[++i];
        } else if (strcmp(a, "--cache-dir") == 0 && i + 1 < argc) {
            cache_dir = argv[++i];
        } else if (strcmp(a, "--raw") == 0) {
            raw = true;
        } else if (strcmp(a, "--quiet") == 0) {
            quiet = true;
        } else if (strcmp(a, "--memory-limit") == 0 && i + 1 < argc) {
            memory_mib = strtoull(argv[++i], NULL, 10);
        } else if (strcmp(a, "--nice") == 0 && i + 1 < argc) {
            nice_level = atoi(argv[++i]);
        } else if (strcmp(a, "--parent-pid") == 0 && i + 1 < argc) {
            parent_pid = strtol(argv[++i], NULL, 10);
        } else if ((a[0] != '-' || strcmp(a, "-") == 0) && !in) {
            in = a;
        } else {
            fprintf(stderr, "wasmfn compile: unexpected argument '%s' (see wasmfn compile --help)\n", a);
            return 2;
        }
    }
    if (!in) {
        fprintf(stderr, "wasmfn compile: no module given (see wasmfn compile --help)\n");
        return 2;
    }
    if (raw) return compile_raw(in, out ? out : "-", memory_mib, nice_level, parent_pid);
    if (!eng_native_can_compile()) {
        fprintf(stderr, "wasmfn: this build cannot compile native code on this machine\n");
        return 1;
    }

    size_t len;
    uint8_t *bytes = cli_file_bytes(in, &len);
    if (!bytes) {
        fprintf(stderr, "wasmfn: %s: %s\n", in, strerror(errno ? errno : EIO));
        return 1;
    }
    /* A compiled module file: compile the module inside it again. */
    size_t mlen = len;
    const uint8_t *payload;
    size_t plen;
    if (cli_native_section(bytes, len, &mlen, &payload, &plen)) len = mlen;
    char err[ENG_ERR_MAX];
    eng_module_t *m = eng_module_new(bytes, len, err, sizeof err);
    if (!m) {
        fprintf(stderr, "wasmfn: %s: %s\n", in, err);
        free(bytes);
        return 1;
    }
    eng_module_free(m);
    cli_cache_t cache;
    if (cli_cache_open(&cache, cache_dir, err, sizeof err) != 0) {
        fprintf(stderr, "wasmfn: %s\n", err);
        free(bytes);
        return 1;
    }
    uint8_t digest[32];
    cli_sha256(bytes, len, digest);
    int lock = -1;
    if (!out) {
        /* One compile per module at a time (two runs may both start one in
         * the background); the second finds the first one's result. */
        char lpath[4200];
        snprintf(lpath, sizeof lpath, "%s/compile.lock", cache.dir);
        lock = open(lpath, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
        if (lock >= 0) flock(lock, LOCK_EX);
        eng_module_t *probe = eng_module_new(bytes, len, err, sizeof err);
        bool have = probe && cli_cache_attach(&cache, digest, probe) > 0;
        eng_module_free(probe);
        if (have) {
            if (!quiet) fprintf(stderr, "wasmfn: %s: native code already cached in %s\n", in, cache.dir);
            if (lock >= 0) close(lock);
            free(bytes);
            return 0;
        }
    }
    uint64_t t0 = eng_now_ns();
    uint8_t *obj;
    size_t objlen;
    int rc = 1;
    if (cli_native_compile(bytes, len, &obj, &objlen, err, sizeof err) != 0) {
        fprintf(stderr, "wasmfn: %s: %s\n", in, err);
        if (lock >= 0) close(lock);
        free(bytes);
        return 1;
    }
    double secs = (double)(eng_now_ns() - t0) / 1e9;
    if (out) {
        uint8_t *art, *file;
        size_t alen, flen;
        if (!eng_native_seal(obj, objlen, digest, cache.key, &art, &alen, err, sizeof err)) {
            fprintf(stderr, "wasmfn: %s\n", err);
        } else if (!(file = cli_native_with_section(bytes, len, art, alen, &flen))) {
            fprintf(stderr, "wasmfn: out of memory\n");
            free(art);
        } else {
            if (write_output(out, file, flen) != 0) {
                fprintf(stderr, "wasmfn: %s: %s\n", out, strerror(errno));
            } else {
                fprintf(stderr, "wasmfn: %s: %zu KiB of native code in %.1f s, written to %s\n", in,
                        objlen >> 10, secs, out);
                rc = 0;
            }
            free(file);
            free(art);
        }
    } else if (cli_cache_put(&cache, digest, obj, objlen, err, sizeof err) != 0) {
        fprintf(stderr, "wasmfn: %s\n", err);
    } else {
        if (!quiet)
            fprintf(stderr, "wasmfn: %s: %zu KiB of native code in %.1f s, cached in %s\n", in,
                    objlen >> 10, secs, cache.dir);
        rc = 0;
    }
    if (lock >= 0) close(lock);
    free(obj);
    free(bytes);
    return rc;
}
