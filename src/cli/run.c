/*
 * run.c — `wasmfn run`: runs one WASI command module in this process, with
 * stdin/stdout/stderr passed through, the given env and preopened
 * directories, and optional time and memory limits.
 *
 * Every failure is one line on stderr ("wasmfn: F.wasm: <what>") and an
 * exit status that tells the kinds apart (cli.h, docs/wasi.md): a script can
 * distinguish "the guest exited 3" from "the guest trapped" from "the module
 * is broken" from "it ran out of time".
 *
 * Tiers. By default (--tier auto) the guest runs as native code when there
 * is some for it: in the module file itself (`wasmfn compile -o`), or in
 * the cache (native_cache.c). When there is none, a module of up to
 * AUTO_COMPILE_BYTES is compiled first (a second or two) and cached; a
 * larger one runs in the interpreter this time while a background process
 * compiles it into the cache for the next run, because LLVM needs tens of
 * seconds per MiB and a first run should not wait that long unasked.
 * --tier native always compiles first; --tier interp never uses native code.
 *
 * Host APIs. Imports are bound as the daemon binds them (rt_link_imports):
 * WASI, outbound HTTP (wasi_experimental_http) to the destinations given
 * with --allow-host, and wasmfn_kv to the stores given with --kv, kept in
 * DIR/kv.db (--kv-dir). A module may import either without the flags: its
 * requests are then refused (7) and its opens answer "no such store" (1),
 * as in a revision granted nothing. Not being on a pool fiber, a guest
 * waiting for its response blocks this thread, which is all there is.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/client.h"
#include "engine/engine.h"
#include "host/http_out.h"
#include "host/kv.h"
#include "runtime/link.h"
#include "wasi/wasi.h"

void cli_run_usage(FILE *out)
{
    fprintf(out,
            "usage: wasmfn run [OPTIONS] F.wasm [ARGS...]\n"
            "\n"
            "Runs a WASI preview1 command module (one that exports _start).\n"
            "\n"
            "options:\n"
            "  --env K=V            set an environment variable for the guest (repeatable)\n"
            "  --dir HOST[:GUEST]   give the guest the host directory HOST, named GUEST\n"
            "                       (default: HOST) inside it (repeatable)\n"
            "  --timeout MS         stop the guest after MS milliseconds\n"
            "  --memory MIB         cap the guest's linear memory at MIB mebibytes\n"
            "  --allow-host URL     let the guest's outbound HTTP (wasi_experimental_http)\n"
            "                       reach URL: scheme, host and optional port, e.g.\n"
            "                       https://api.example.com (repeatable)\n"
            "  --kv STORE           grant the wasmfn_kv store STORE (repeatable; needs\n"
            "                       --kv-dir)\n"
            "  --kv-dir DIR         keep the stores in DIR/kv.db (SQLite; the directory\n"
            "                       must exist)\n"
            "  --tier T             auto (default): native code from the module file or\n"
            "                       the cache, compiling modules up to 256 KiB first and\n"
            "                       larger ones in the background for the next run;\n"
            "                       native: always native (compile now when needed);\n"
            "                       interp: the interpreter only\n"
            "  --cache-dir DIR      where native code is cached (default\n"
            "                       $WASMFN_CACHE_DIR, else $XDG_CACHE_HOME/wasmfn, else\n"
            "                       ~/.cache/wasmfn; deleting it is always safe)\n"
            "  -h, --help           show this help\n"
            "\n"
            "exit status: the guest's exit code; 124 timeout; 125 usage error;\n"
            "126 module cannot run (invalid, bad import, no _start); 127 file not found;\n"
            "134 trap.\n");
}

enum { TIER_AUTO, TIER_INTERP, TIER_NATIVE };

/* --tier auto compiles modules up to this size before running them. */
#define AUTO_COMPILE_BYTES (256u << 10)

typedef struct run_opts {
    int tier;
    const char *cache_dir;
    const char **env;
    int nenv;
    const char **dirs;
    int ndirs;
    const char **allow;   /* --allow-host, checked */
    int nallow;
    const char **kv;      /* --kv, checked */
    int nkv;
    const char *kv_dir;
    uint64_t timeout_ms;
    uint64_t memory_mib;
    const char *file;
    int guest_argc;
    char **guest_argv;
} run_opts_t;

static int parse_u64(const char *s, uint64_t *out)
{
    char *end;
    if (!s || !*s || *s == '-') return -1;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end) return -1;
    *out = v;
    return 0;
}

/* Takes "--opt VALUE" or "--opt=VALUE"; returns the value or NULL. */
static const char *opt_value(const char *name, int argc, char **argv, int *i)
{
    size_t n = strlen(name);
    if (strncmp(argv[*i], name, n) != 0) return NULL;
    if (argv[*i][n] == '=') return argv[*i] + n + 1;
    if (argv[*i][n] != 0) return NULL;
    if (*i + 1 >= argc) return "";
    return argv[++*i];
}

static int usage_error(const char *fmt, const char *arg)
{
    fprintf(stderr, "wasmfn run: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, " (see wasmfn run --help)\n");
    return CLI_EXIT_USAGE;
}

/* Parses the options; returns -1 to go on, or an exit status. */
static int parse_args(int argc, char **argv, run_opts_t *o)
{
    int i;
    for (i = 1; i < argc; i++) {
        const char *a = argv[i], *v;
        if (strcmp(a, "--") == 0) {
            i++;
            break;
        }
        if (a[0] != '-' || a[1] == 0) break;
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            cli_run_usage(stdout);
            return 0;
        }
        if ((v = opt_value("--env", argc, argv, &i))) {
            const char *eq = strchr(v, '=');
            if (!eq || eq == v) return usage_error("--env wants KEY=VALUE, got '%s'", v);
            o->env[o->nenv++] = v;
        } else if ((v = opt_value("--dir", argc, argv, &i))) {
            if (!*v) return usage_error("--dir wants HOST[:GUEST]%s", "");
            o->dirs[o->ndirs++] = v;
        } else if ((v = opt_value("--timeout", argc, argv, &i))) {
            if (parse_u64(v, &o->timeout_ms) != 0 || o->timeout_ms > 86400000ull * 365)
                return usage_error("--timeout wants milliseconds, got '%s'", v);
        } else if ((v = opt_value("--allow-host", argc, argv, &i))) {
            char err[256];
            if (ho_allowed_host_check(v, err, sizeof err) != 0) {
                fprintf(stderr, "wasmfn run: --allow-host '%s': %s (see wasmfn run --help)\n", v,
                        err);
                return CLI_EXIT_USAGE;
            }
            if (o->nallow >= (int)HO_MAX_ALLOWED_HOSTS)
                return usage_error("--allow-host: more than 64 destinations%s", "");
            o->allow[o->nallow++] = v;
        } else if ((v = opt_value("--kv-dir", argc, argv, &i))) {
            if (!*v) return usage_error("--kv-dir wants a directory%s", "");
            o->kv_dir = v;
        } else if ((v = opt_value("--kv", argc, argv, &i))) {
            if (!kv_store_name_ok(v, strlen(v)))
                return usage_error("--kv '%s': a store name is 1 to 63 of a-z, 0-9, '.', '_', '-'",
                                   v);
            if (o->nkv >= (int)KV_MAX_GRANTS)
                return usage_error("--kv: more than 16 stores%s", "");
            o->kv[o->nkv++] = v;
        } else if ((v = opt_value("--tier", argc, argv, &i))) {
            if (strcmp(v, "auto") == 0) o->tier = TIER_AUTO;
            else if (strcmp(v, "interp") == 0) o->tier = TIER_INTERP;
            else if (strcmp(v, "native") == 0) o->tier = TIER_NATIVE;
            else return usage_error("--tier wants auto, interp or native, got '%s'", v);
        } else if ((v = opt_value("--cache-dir", argc, argv, &i))) {
            if (!*v) return usage_error("--cache-dir wants a directory%s", "");
            o->cache_dir = v;
        } else if ((v = opt_value("--memory", argc, argv, &i))) {
            if (parse_u64(v, &o->memory_mib) != 0 || o->memory_mib == 0 ||
                o->memory_mib > 4096)
                return usage_error("--memory wants MiB between 1 and 4096, got '%s'", v);
        } else {
            return usage_error("unknown option '%s'", a);
        }
    }
    if (o->nkv && !o->kv_dir)
        return usage_error("--kv needs --kv-dir DIR, where the stores are kept%s", "");
    if (i >= argc) return usage_error("no module given%s", "");
    o->file = argv[i];
    o->guest_argc = argc - i;
    o->guest_argv = argv + i;
    return -1;
}

/* Starts `wasmfn compile --cache-dir DIR FILE` detached from this process
 * (its own session, stdio on /dev/null), to fill the cache for next time. */
static void compile_in_background(const char *cache_dir, const char *file)
{
    char exe[4096];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0) return;
    exe[n] = '\0';
    pid_t pid = fork();
    if (pid < 0) return;
    if (pid > 0) {
        waitpid(pid, NULL, 0);
        return;
    }
    /* The child forks again and exits, so the compiler is nobody's child
     * to wait for and outlives this run. */
    setsid();
    if (fork() != 0) _exit(0);
    int fd = open("/dev/null", O_RDWR);
    if (fd >= 0) {
        dup2(fd, 0);
        dup2(fd, 1);
        dup2(fd, 2);
        if (fd > 2) close(fd);
    }
    execl(exe, exe, "compile", "--cache-dir", cache_dir, "--quiet", file, (char *)NULL);
    _exit(127);
}

/* Gives m native code as --tier asks (see the top of this file). Returns
 * 0, or an exit status after printing why (--tier native only). */
static int native_prepare(const run_opts_t *o, const uint8_t *bytes, size_t len, eng_module_t *m)
{
    if (o->tier == TIER_INTERP || !eng_native_can_compile()) {
        if (o->tier == TIER_NATIVE) {
            fprintf(stderr, "wasmfn: %s: native code: this build cannot compile it here\n", o->file);
            return CLI_EXIT_BAD_MODULE;
        }
        return 0;
    }
    char err[ENG_ERR_MAX];
    size_t mlen = len;
    const uint8_t *payload = NULL;
    size_t plen = 0;
    bool carried = cli_native_section(bytes, len, &mlen, &payload, &plen);
    uint8_t digest[32];
    cli_sha256(bytes, mlen, digest);
    cli_cache_t cache;
    if (cli_cache_open(&cache, o->cache_dir, err, sizeof err) != 0 && o->tier == TIER_NATIVE)
        fprintf(stderr, "wasmfn: native code cache: %s (compiling without it)\n", err);
    if (carried && cache.ok) {
        const uint8_t *obj;
        size_t objlen;
        if (eng_native_open(payload, plen, digest, cache.key, &obj, &objlen, err, sizeof err) &&
            eng_module_attach_native(m, obj, objlen, err, sizeof err))
            return 0;
    }
    if (cli_cache_attach(&cache, digest, m) > 0) return 0;
    if (o->tier == TIER_AUTO && mlen > AUTO_COMPILE_BYTES) {
        if (cache.ok) {
            compile_in_background(cache.dir, o->file);
            if (isatty(2))
                fprintf(stderr, "wasmfn: %s: compiling native code in the background for the next "
                                "run; this one is interpreted\n", o->file);
        }
        return 0;
    }
    uint8_t *obj;
    size_t objlen;
    if (cli_native_compile(bytes, mlen, &obj, &objlen, err, sizeof err) != 0 ||
        !eng_module_attach_native(m, obj, objlen, err, sizeof err)) {
        if (o->tier == TIER_NATIVE) {
            fprintf(stderr, "wasmfn: %s: native code: %s\n", o->file, err);
            return CLI_EXIT_BAD_MODULE;
        }
        return 0; /* auto: the interpreter runs it */
    }
    char perr[ENG_ERR_MAX];
    cli_cache_put(&cache, digest, obj, objlen, perr, sizeof perr); /* a cache: best effort */
    free(obj);
    return 0;
}

static int run_module(const run_opts_t *o)
{
    char err[ENG_ERR_MAX];
    size_t len;
    uint8_t *bytes = cli_file_bytes(o->file, &len);
    if (!bytes) {
        int e = errno;
        fprintf(stderr, "wasmfn: %s: %s\n", o->file, strerror(e));
        return e == ENOENT ? CLI_EXIT_NOT_FOUND : CLI_EXIT_BAD_MODULE;
    }
    /* A compiled module file: the module is what precedes its native code
     * (which is sealed for exactly those bytes). */
    size_t mlen = len;
    const uint8_t *payload;
    size_t plen;
    cli_native_section(bytes, len, &mlen, &payload, &plen);
    eng_module_t *m = eng_module_new(bytes, mlen, err, sizeof err);
    if (!m) {
        free(bytes);
        fprintf(stderr, "wasmfn: %s: %s\n", o->file, err);
        return CLI_EXIT_BAD_MODULE;
    }
    int nst = native_prepare(o, bytes, len, m);
    free(bytes);
    if (nst != 0) {
        eng_module_free(m);
        return nst;
    }

    int status = CLI_EXIT_USAGE;
    ho_client_t *client = NULL;
    ho_policy_t *policy = NULL;
    ho_ctx_t *http = NULL;
    kv_t *kv = NULL;
    kv_grant_t *grant = NULL;
    eng_store_t *s = eng_store_new();
    eng_exec_t *x = eng_exec_new(0);
    wasi_ctx_t *w = wasi_ctx_new();
    uint32_t nimp = eng_module_import_count(m);
    eng_extern_t *imports = calloc(nimp ? nimp : 1, sizeof *imports);
    if (!s || !x || !w || !imports) {
        fprintf(stderr, "wasmfn: %s: out of memory\n", o->file);
        goto out;
    }
    if (o->memory_mib) eng_store_set_memory_limit(s, o->memory_mib << 20);
    if (wasi_ctx_set_args(w, o->guest_argc, (const char *const *)o->guest_argv) != 0) {
        fprintf(stderr, "wasmfn: %s: out of memory\n", o->file);
        goto out;
    }
    for (int i = 0; i < o->nenv; i++) {
        if (wasi_ctx_add_env(w, o->env[i]) != 0) {
            fprintf(stderr, "wasmfn: bad --env '%s'\n", o->env[i]);
            goto out;
        }
    }
    for (int i = 0; i < o->ndirs; i++) {
        char *spec = strdup(o->dirs[i]);
        if (!spec) goto out;
        char *colon = strchr(spec, ':');
        const char *guest = spec;
        if (colon) {
            *colon = 0;
            guest = colon + 1;
        }
        int r = wasi_ctx_preopen(w, spec, *guest ? guest : spec, err, sizeof err);
        free(spec);
        if (r != 0) {
            fprintf(stderr, "wasmfn: --dir %s: %s\n", o->dirs[i], err);
            goto out;
        }
    }
    /* The host APIs, made only when asked for (a thread each). */
    if (o->nallow) {
        client = ho_client_new(NULL, err, sizeof err);
        if (client) policy = ho_policy_new(o->allow, (uint32_t)o->nallow, err, sizeof err);
        if (!client || !policy) {
            fprintf(stderr, "wasmfn: outbound HTTP: %s\n", err);
            goto out;
        }
    }
    if (o->nkv) {
        kv_config_t kc = {.data_dir = o->kv_dir};
        kv = kv_new(&kc, err, sizeof err);
        if (!kv) {
            fprintf(stderr, "wasmfn: --kv-dir %s: %s\n", o->kv_dir, err);
            goto out;
        }
        if (!(grant = kv_grant_new(kv, o->kv, (uint32_t)o->nkv))) {
            fprintf(stderr, "wasmfn: %s: out of memory\n", o->file);
            goto out;
        }
    }
    rt_link_t link = {.wasi = w,
                      .http = &http,
                      .http_client = client,
                      .http_policy = policy,
                      .function = o->file,
                      .kv = grant};
    if (rt_link_imports(&link, s, m, imports, err, sizeof err) != 0) {
        fprintf(stderr, "wasmfn: %s: %s\n", o->file, err);
        status = CLI_EXIT_BAD_MODULE;
        goto out;
    }
    if (o->timeout_ms) {
        uint64_t deadline = eng_now_ns() + o->timeout_ms * 1000000ull;
        eng_exec_set_deadline(x, deadline);
        wasi_ctx_set_deadline(w, deadline);
    }
    eng_instance_t *inst = eng_instance_new(s, m, imports, nimp, x, err, sizeof err);
    if (!inst) {
        fprintf(stderr, "wasmfn: %s: %s\n", o->file, err);
        status = CLI_EXIT_BAD_MODULE;
        goto out;
    }
    eng_func_t *start = eng_instance_func(inst, "_start");
    if (!start) {
        fprintf(stderr, "wasmfn: %s: no exported function _start (not a WASI command module)\n",
                o->file);
        status = CLI_EXIT_BAD_MODULE;
        goto out;
    }
    if (strcmp(eng_func_signature(start), "()") != 0) {
        fprintf(stderr, "wasmfn: %s: _start has type %s, expected ()\n", o->file,
                eng_func_signature(start));
        status = CLI_EXIT_BAD_MODULE;
        goto out;
    }
    eng_trap_t t = eng_call(x, start, NULL, NULL);
    switch (t) {
    case ENG_OK: status = 0; break;
    case ENG_TRAP_EXIT: status = eng_exec_exit_code(x) & 0xFF; break;
    case ENG_TRAP_DEADLINE:
        fprintf(stderr, "wasmfn: timeout: %s\n", eng_exec_trap_message(x));
        status = CLI_EXIT_TIMEOUT;
        break;
    default:
        fprintf(stderr, "wasmfn: trap: %s\n", eng_exec_trap_message(x));
        status = CLI_EXIT_TRAP;
        break;
    }
out:
    if (s) eng_store_free(s);
    wasi_ctx_free(w);
    ho_ctx_free(http); /* before the client, which it may hold a transfer of */
    ho_client_free(client);
    ho_policy_unref(policy);
    kv_grant_free(grant);
    kv_free(kv);
    free(imports);
    if (x) eng_exec_free(x);
    eng_module_free(m);
    return status;
}

/* A closed stdin/stdout/stderr would let the next file wasmfn opens (the
 * module, a preopened directory) take its number and be handed to the guest
 * as that stream; put /dev/null there instead, as a shell would. */
static void stdio_ensure_open(void)
{
    for (int fd = 0; fd < 3; fd++) {
        if (fcntl(fd, F_GETFD) == -1 && errno == EBADF) {
            int n = open("/dev/null", fd == 0 ? O_RDONLY : O_WRONLY);
            if (n >= 0 && n != fd) close(n);
        }
    }
}

int cli_run_main(int argc, char **argv)
{
    run_opts_t o;
    memset(&o, 0, sizeof o);
    o.env = calloc((size_t)argc, sizeof *o.env);
    o.dirs = calloc((size_t)argc, sizeof *o.dirs);
    o.allow = calloc((size_t)argc, sizeof *o.allow);
    o.kv = calloc((size_t)argc, sizeof *o.kv);
    int status;
    if (!o.env || !o.dirs || !o.allow || !o.kv) {
        fprintf(stderr, "wasmfn run: out of memory\n");
        status = CLI_EXIT_USAGE;
    } else if ((status = parse_args(argc, argv, &o)) < 0) {
        /* A guest writing to a closed pipe gets EPIPE, not us a SIGPIPE. */
        signal(SIGPIPE, SIG_IGN);
        stdio_ensure_open();
        status = run_module(&o);
    }
    free(o.env);
    free(o.dirs);
    free(o.allow);
    free(o.kv);
    return status;
}
