/*
 * guest.c — a container's process (`containerd-shim-wasmfn-v1 _guest
 * BUNDLE`): loads the bundle's module, tells the shim it is ready (or why
 * not), waits for Start, runs it, and exits with the guest's status.
 *
 * What the guest gets: argv = process.args (args[0] as the image names the
 * module), process.env, the rootfs preopened as "/" and each bind mount
 * (volume) at its destination, process.cwd as $PWD (WASI has no working
 * directory: see shim_guest_wasi_setup), linear memory capped at linux.resources.memory.limit, and stdio on
 * containerd's FIFOs (fds 0-2, set up by task.c). Nothing else of the host.
 *
 * Signals: SIGTERM and SIGINT interrupt the guest between two instructions
 * (eng_exec_interrupt, which is safe in a signal handler) or in a blocking
 * WASI call, and the process exits with 128 + the signal, as a process
 * killed by it would report. SIGKILL needs no help.
 *
 * Native code (native.c): a module whose code is in the node's cache runs
 * natively; else it runs in the interpreter while the cache is filled in
 * the background. One line in the shim's log (fd 5) says which.
 *
 * HTTP functions (wasmfn.dev/http=true) are served by http.c instead of
 * running _start once; a Kubernetes sandbox container only waits to be
 * stopped (it exists to hold the pod's namespaces).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/cli.h"
#include "engine/engine.h"
#include "shim/guest.h"
#include "shim/shim.h"
#include "wasi/wasi.h"

#define GATE_FD 3
#define READY_FD 4
/* A module bigger than this is not something we compile on a pod start. */
#define GUEST_MAX_MODULE_BYTES (512u << 20)

/* Tells the shim why the container cannot run: one line, then exit. */
static int fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int fail(const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    (void)!write(READY_FD, msg, strlen(msg));
    return CLI_EXIT_BAD_MODULE;
}

/* Reports ready and waits for Start. Returns 0 to run, or the exit
 * status to leave with. */
static int gate_wait(void)
{
    close(READY_FD);
    char c;
    for (;;) {
        ssize_t r = read(GATE_FD, &c, 1);
        if (r == 1) break;
        if (r < 0 && errno == EINTR && !shim_guest_signal()) continue;
        if (shim_guest_signal()) return 128 + shim_guest_signal();
        return 128 + SIGKILL; /* deleted before it started */
    }
    close(GATE_FD);
    return 0;
}

int shim_guest_module_read(const shim_spec_t *spec, uint8_t **bytes, size_t *len, char *err,
                           size_t errlen)
{
    int fd = shim_open_in_root(spec->rootfs, spec->args[0]);
    if (fd < 0) {
        snprintf(err, errlen, "%s: %s in the image's rootfs (process.args[0] names the module)",
                 spec->args[0], strerror(errno));
        return -1;
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size > GUEST_MAX_MODULE_BYTES) {
        snprintf(err, errlen, "%s: not a regular file of at most %u MiB", spec->args[0],
                 GUEST_MAX_MODULE_BYTES >> 20);
        close(fd);
        return -1;
    }
    *len = (size_t)st.st_size;
    *bytes = malloc(*len ? *len : 1);
    size_t n = 0;
    while (*bytes && n < *len) {
        ssize_t r = read(fd, *bytes + n, *len - n);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) break;
        n += (size_t)r;
    }
    close(fd);
    if (!*bytes || n != *len) {
        free(*bytes);
        snprintf(err, errlen, "%s: cannot read it", spec->args[0]);
        return -1;
    }
    if (*len < 4 || memcmp(*bytes, "\0asm", 4) != 0) {
        free(*bytes);
        snprintf(err, errlen,
                 "%s: not a WebAssembly module (this runtime runs .wasm images only)",
                 spec->args[0]);
        return -1;
    }
    return 0;
}

int shim_guest_wasi_setup(const shim_spec_t *spec, wasi_ctx_t *w, char *err, size_t errlen)
{
    if (wasi_ctx_set_args(w, spec->nargs, (const char *const *)spec->args) != 0 ||
        wasi_ctx_add_envs(w, (const char *const *)spec->env, (uint32_t)spec->nenv) != 0) {
        snprintf(err, errlen, "process.env: an entry without '=' (or out of memory)");
        return -1;
    }
    if (wasi_ctx_preopen(w, spec->rootfs, "/", err, errlen) != 0) return -1;
    for (int i = 0; i < spec->nmounts; i++) {
        if (wasi_ctx_preopen(w, spec->mounts[i].source, spec->mounts[i].destination, err,
                             errlen) != 0)
            return -1;
    }
    /* WASI preview1 has no working directory: wasi-libc starts every
     * program at "/" and resolves relative paths from there, and a "."
     * preopen next to "/" would shadow it for absolute paths too. So
     * process.cwd is passed as $PWD (unless the image sets it), for
     * guests that want to chdir there. */
    if (strcmp(spec->cwd, "/") != 0) {
        bool has_pwd = false;
        for (int i = 0; i < spec->nenv; i++)
            if (strncmp(spec->env[i], "PWD=", 4) == 0) has_pwd = true;
        char pwd[4096 + 8];
        snprintf(pwd, sizeof pwd, "PWD=%s", spec->cwd);
        if (!has_pwd && wasi_ctx_add_env(w, pwd) != 0) {
            snprintf(err, errlen, "out of memory");
            return -1;
        }
    }
    return 0;
}

static int run_command(const shim_spec_t *spec, eng_module_t *m)
{
    char err[ENG_ERR_MAX];
    int status = CLI_EXIT_USAGE;
    eng_store_t *s = eng_store_new();
    eng_exec_t *x = eng_exec_new(0);
    wasi_ctx_t *w = wasi_ctx_new();
    uint32_t nimp = eng_module_import_count(m);
    eng_extern_t *imports = calloc(nimp ? nimp : 1, sizeof *imports);
    if (!s || !x || !w || !imports) {
        status = fail("out of memory");
        goto out;
    }
    if (spec->memory_limit_bytes) eng_store_set_memory_limit(s, spec->memory_limit_bytes);
    if (shim_guest_wasi_setup(spec, w, err, sizeof err) != 0 ||
        wasi_ctx_link(w, s, m, imports, err, sizeof err) != 0) {
        status = fail("%s: %s", spec->args[0], err);
        goto out;
    }
    eng_instance_t *inst = eng_instance_new(s, m, imports, nimp, x, err, sizeof err);
    if (!inst) {
        status = fail("%s: %s", spec->args[0], err);
        goto out;
    }
    eng_func_t *start = eng_instance_func(inst, "_start");
    if (!start || strcmp(eng_func_signature(start), "()") != 0) {
        status = fail("%s: no exported function _start of type () (not a WASI command module)",
                      spec->args[0]);
        goto out;
    }
    shim_guest_exec_set(x);
    if ((status = gate_wait()) != 0) goto out;
    eng_trap_t t = eng_call(x, start, NULL, NULL);
    if (shim_guest_signal()) status = 128 + shim_guest_signal();
    else if (t == ENG_OK) status = 0;
    else if (t == ENG_TRAP_EXIT) status = eng_exec_exit_code(x) & 0xFF;
    else {
        fprintf(stderr, "wasmfn: trap: %s\n", eng_exec_trap_message(x));
        status = CLI_EXIT_TRAP;
    }
out:
    shim_guest_exec_set(NULL);
    if (s) eng_store_free(s);
    wasi_ctx_free(w);
    free(imports);
    if (x) eng_exec_free(x);
    return status;
}

/* argv: _guest BUNDLE ID CACHE_DIR|- ("-": tier interp). */
int shim_guest_main(int argc, char **argv)
{
    if (argc < 5) return fail("_guest wants the bundle directory, the id and the cache");
    shim_guest_id_set(argv[3]);
    /* The gate, the readiness pipe and the log stay ours: a compiler this
     * process starts must not hold them (a readiness pipe held open would
     * keep Create waiting). */
    for (int fd = GATE_FD; fd <= SHIM_GUEST_LOG_FD; fd++) fcntl(fd, F_SETFD, FD_CLOEXEC);
    shim_config_t cfg;
    shim_config_default(&cfg);
    cfg.native = strcmp(argv[4], "-") != 0;
    if (cfg.native) snprintf(cfg.cache_dir, sizeof cfg.cache_dir, "%s", argv[4]);
    signal(SIGPIPE, SIG_IGN); /* a closed FIFO is EPIPE for the guest */
    shim_guest_signals();
    char err[1024];
    shim_spec_t spec;
    if (shim_spec_load(argv[2], &spec, err, sizeof err) != 0) {
        shim_spec_free(&spec);
        return fail("%s", err);
    }
    int status;
    if (spec.sandbox) {
        status = gate_wait();
        while (!status && !shim_guest_signal()) pause();
        shim_spec_free(&spec);
        return 0;
    }
    uint8_t *bytes;
    size_t len;
    if (shim_guest_module_read(&spec, &bytes, &len, err, sizeof err) != 0) {
        shim_spec_free(&spec);
        return fail("%s", err);
    }
    /* A compiled module file (`wasmfn compile -o`): the module is what
     * precedes its native code, and is what the cache is keyed by. */
    const uint8_t *payload;
    size_t plen;
    cli_native_section(bytes, len, &len, &payload, &plen);
    eng_module_t *m = eng_module_new(bytes, len, err, sizeof err);
    if (!m) {
        free(bytes);
        status = fail("%s: %s", spec.args[0], err);
        shim_spec_free(&spec);
        return status;
    }
    if (spec.http) {
        status = shim_http_serve(&spec, &cfg, bytes, len, gate_wait, err, sizeof err);
        if (status < 0) status = fail("%s", err);
    } else {
        char note[640];
        shim_native_command(&cfg, &spec, bytes, len, m, note, sizeof note);
        shim_guest_log("%s: %s", spec.args[0], note);
        free(bytes);
        bytes = NULL;
        status = run_command(&spec, m);
    }
    free(bytes);
    eng_module_free(m);
    shim_spec_free(&spec);
    fflush(stdout);
    return status;
}
