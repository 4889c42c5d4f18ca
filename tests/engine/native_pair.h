/*
 * native_pair.h — what the native tier's tests share: modules assembled
 * from WAT with wabt's wat2wasm and made in both tiers (the interpreter's
 * and one with native code attached), instances of them side by side,
 * calls that must agree exactly between the tiers, and running a guest in
 * a child process. Included by tests/engine/test_native_*.c (each a
 * program of its own); everything is static.
 */
#ifndef WASMFN_TESTS_ENGINE_NATIVE_PAIR_H
#define WASMFN_TESTS_ENGINE_NATIVE_PAIR_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "engine/engine.h"
#include "engine/internal.h" /* eng_func_t.native: which tier a function runs in */

#define MS 1000000ull

enum { INTERP = 0, NATIVE = 1 };
static const char *const tier_name[2] = {"interp", "native"};

/* ---- Building modules ---------------------------------------------------- */

static char tmpdir[64];
static unsigned nwat;

static inline uint8_t *read_all(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *b = malloc(n > 0 ? (size_t)n : 1);
    if (b && fread(b, 1, (size_t)n, f) != (size_t)n) {
        free(b);
        b = NULL;
    }
    fclose(f);
    *len = (size_t)n;
    return b;
}

/* Assembles WAT text with wat2wasm (WebAssembly 2.0 features are wabt's
 * default: multi-value, bulk memory, reference types). The caller frees
 * the bytes. Fails the test, with wat2wasm's complaint, when it cannot. */
static inline uint8_t *wat2wasm(const char *wat, size_t *len)
{
    char in[128], out[128], log[128], cmd[512];
    unsigned id = nwat++;
    snprintf(in, sizeof in, "%s/m%u.wat", tmpdir, id);
    snprintf(out, sizeof out, "%s/m%u.wasm", tmpdir, id);
    snprintf(log, sizeof log, "%s/m%u.log", tmpdir, id);
    FILE *f = fopen(in, "w");
    if (!f) fail_msg("cannot write %s", in);
    fputs(wat, f);
    fclose(f);
    snprintf(cmd, sizeof cmd, "wat2wasm --debug-names -o %s %s 2>%s", out, in, log);
    if (system(cmd) != 0) {
        size_t n = 0;
        char *msg = (char *)read_all(log, &n);
        fprintf(stderr, "wat2wasm failed on %s:\n%.*s\n", in, (int)n, msg ? msg : "");
        free(msg);
        fail_msg("wat2wasm failed (module %u)", id);
    }
    uint8_t *b = read_all(out, len);
    if (!b) fail_msg("cannot read %s", out);
    return b;
}

/* A growing string, for modules generated in C. */
typedef struct sbuf {
    char *p;
    size_t len, cap;
} sbuf_t;

static inline void sb_printf(sbuf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static inline void sb_printf(sbuf_t *b, const char *fmt, ...)
{
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(b->p ? b->p + b->len : NULL, b->p ? b->cap - b->len : 0, fmt, ap);
        va_end(ap);
        if (n < 0) fail_msg("vsnprintf");
        if (b->p && b->len + (size_t)n < b->cap) {
            b->len += (size_t)n;
            return;
        }
        size_t cap = b->cap ? b->cap * 2 : 4096;
        while (cap < b->len + (size_t)n + 1) cap *= 2;
        b->p = realloc(b->p, cap);
        if (!b->p) fail_msg("out of memory");
        b->cap = cap;
    }
}

static inline eng_module_t *module_of(const uint8_t *wasm, size_t len)
{
    char err[ENG_ERR_MAX];
    eng_module_t *m = eng_module_new(wasm, len, err, sizeof err);
    if (!m) fail_msg("eng_module_new: %s", err);
    return m;
}

/* Compiles wasm to native code and attaches it to m (made from wasm). */
static inline void attach_native(eng_module_t *m, const uint8_t *wasm, size_t len)
{
    char err[ENG_ERR_MAX];
    uint8_t *obj = NULL;
    size_t objlen = 0;
    if (!eng_native_compile(wasm, len, &obj, &objlen, err, sizeof err))
        fail_msg("eng_native_compile: %s", err);
    if (!eng_module_attach_native(m, obj, objlen, err, sizeof err))
        fail_msg("eng_module_attach_native: %s", err);
    free(obj);
    assert_int_equal(eng_module_tier(m), ENG_TIER_NATIVE);
}

/* One module in both tiers: tier[INTERP] never gets native code,
 * tier[NATIVE] is made from the same bytes and has it attached. */
typedef struct mod {
    uint8_t *wasm;
    size_t len;
    eng_module_t *tier[2];
} mod_t;

static inline mod_t *mod_new(const char *wat)
{
    mod_t *m = calloc(1, sizeof *m);
    assert_non_null(m);
    m->wasm = wat2wasm(wat, &m->len);
    m->tier[INTERP] = module_of(m->wasm, m->len);
    m->tier[NATIVE] = module_of(m->wasm, m->len);
    attach_native(m->tier[NATIVE], m->wasm, m->len);
    assert_int_equal(eng_module_tier(m->tier[INTERP]), ENG_TIER_INTERP);
    return m;
}

static inline void mod_free(mod_t *m)
{
    if (!m) return;
    eng_module_free(m->tier[INTERP]);
    eng_module_free(m->tier[NATIVE]);
    free(m->wasm);
    free(m);
}

/* Modules several tests use are compiled once (LLVM takes a while) and
 * freed by the group teardown; tests never change a module. */
#define NCACHED 16
static mod_t *cached[NCACHED];
static const char *cached_wat[NCACHED];

static inline mod_t *mod_shared(const char *wat)
{
    for (int k = 0; k < NCACHED; k++) {
        if (cached_wat[k] == wat) return cached[k];
        if (!cached_wat[k]) {
            cached[k] = mod_new(wat);
            cached_wat[k] = wat;
            return cached[k];
        }
    }
    fail_msg("mod_shared: raise NCACHED");
    return NULL;
}

/* ---- Instances in both tiers --------------------------------------------- */

static inline bool is_native(const eng_func_t *f) { return f->native != NULL; }

/* A host function the tests offer as env.NAME. */
typedef struct host_def {
    const char *name;
    const char *sig;
    eng_host_fn_t fn;
} host_def_t;

/* One tier's instance of a module, with its own store and exec. env is
 * what its host functions get as call->env. */
typedef struct side {
    int tier;
    eng_store_t *s;
    eng_exec_t *x;
    eng_instance_t *i;
    void *env;
} side_t;

typedef struct pair {
    mod_t *m;
    side_t t[2];
} pair_t;

/* Resolves m's imports: functions of module "env" from hosts (made in s
 * with env), anything else from extra (matched by module and name). */
typedef struct link {
    const char *module, *name;
    eng_extern_t ext;
} link_t;

static inline void resolve(const eng_module_t *m, eng_store_t *s, const host_def_t *hosts, unsigned nhosts,
                    void *env, const link_t *extra, unsigned nextra, eng_extern_t *out)
{
    for (uint32_t k = 0; k < eng_module_import_count(m); k++) {
        eng_extern_desc_t d;
        eng_module_import(m, k, &d);
        bool found = false;
        for (unsigned j = 0; j < nextra && !found; j++)
            if (strcmp(extra[j].module, d.module) == 0 && strcmp(extra[j].name, d.name) == 0) {
                out[k] = extra[j].ext;
                found = true;
            }
        for (unsigned j = 0; j < nhosts && !found; j++)
            if (strcmp(d.module, "env") == 0 && strcmp(hosts[j].name, d.name) == 0) {
                out[k].kind = ENG_EXTERN_FUNC;
                out[k].u.func = eng_func_new_host(s, hosts[j].sig, hosts[j].fn, env);
                if (!out[k].u.func) fail_msg("host %s: bad signature %s", d.name, hosts[j].sig);
                found = true;
            }
        if (!found) fail_msg("no import for %s.%s", d.module, d.name);
    }
}

static inline eng_instance_t *instantiate(eng_store_t *s, const eng_module_t *m, const eng_extern_t *imp,
                                   eng_exec_t *x)
{
    /* cmocka puts a SIGSEGV handler of its own in place around every test:
     * the engine's (guard mode's faults) goes back in front of it. */
    eng_native_install_fault_handler();
    char err[ENG_ERR_MAX];
    eng_instance_t *i = eng_instance_new(s, m, imp, eng_module_import_count(m), x, err, sizeof err);
    if (!i) fail_msg("eng_instance_new: %s", err);
    return i;
}

static inline void side_open(side_t *sd, int tier, const eng_module_t *m, const host_def_t *hosts,
                      unsigned nhosts, void *env, const link_t *extra, unsigned nextra)
{
    memset(sd, 0, sizeof *sd);
    sd->tier = tier;
    sd->env = env;
    sd->s = eng_store_new();
    sd->x = eng_exec_new(0);
    assert_non_null(sd->s);
    assert_non_null(sd->x);
    eng_extern_t imp[64];
    assert_true(eng_module_import_count(m) <= 64);
    resolve(m, sd->s, hosts, nhosts, env, extra, nextra, imp);
    sd->i = instantiate(sd->s, m, imp, sd->x);
}

static inline void side_close(side_t *sd)
{
    eng_store_free(sd->s);
    eng_exec_free(sd->x);
    memset(sd, 0, sizeof *sd);
}

/* Instances of m in both tiers; env[tier] goes to that tier's hosts. */
static inline void pair_open_env(pair_t *p, mod_t *m, const host_def_t *hosts, unsigned nhosts, void *env0,
                          void *env1)
{
    p->m = m;
    side_open(&p->t[INTERP], INTERP, m->tier[INTERP], hosts, nhosts, env0, NULL, 0);
    side_open(&p->t[NATIVE], NATIVE, m->tier[NATIVE], hosts, nhosts, env1, NULL, 0);
}

static inline void pair_open(pair_t *p, mod_t *m) { pair_open_env(p, m, NULL, 0, NULL, NULL); }

static inline void pair_close(pair_t *p)
{
    side_close(&p->t[INTERP]);
    side_close(&p->t[NATIVE]);
}

/* An exported function; checks it runs in the tier it should. */
static inline eng_func_t *export_func(eng_instance_t *i, const char *name, int tier)
{
    eng_func_t *f = eng_instance_func(i, name);
    if (!f) fail_msg("no exported function %s", name);
    if (tier >= 0 && is_native(f) != (tier == NATIVE))
        fail_msg("%s: runs %s, expected %s", name, is_native(f) ? "native" : "interpreted",
                 tier_name[tier]);
    return f;
}

static inline eng_global_t *export_global(eng_instance_t *i, const char *name)
{
    eng_extern_t e;
    if (!eng_instance_export(i, name, &e) || e.kind != ENG_EXTERN_GLOBAL)
        fail_msg("no exported global %s", name);
    return e.u.global;
}

/* ---- Calling and comparing ----------------------------------------------- */

#define MAXV 16

/* What a call did. */
typedef struct res {
    eng_trap_t trap;
    char msg[ENG_ERR_MAX];
    uint32_t n;
    eng_valtype_t type[MAXV];
    eng_val_t v[MAXV];
} res_t;

static inline res_t call_f(eng_exec_t *x, eng_func_t *f, const eng_val_t *args)
{
    res_t r;
    memset(&r, 0, sizeof r);
    r.n = eng_func_result_count(f);
    assert_true(r.n <= MAXV);
    for (uint32_t k = 0; k < r.n; k++) r.type[k] = eng_func_result_type(f, k);
    eng_val_t none[1] = {{.i64 = 0}};
    r.trap = eng_call(x, f, args ? args : none, r.v);
    if (r.trap != ENG_OK) snprintf(r.msg, sizeof r.msg, "%s", eng_exec_trap_message(x));
    return r;
}

/* A call that must not trap: its first result as a u32. */
static inline uint32_t call_u32(eng_exec_t *x, eng_instance_t *i, const char *name, int tier,
                                const eng_val_t *args)
{
    res_t r = call_f(x, export_func(i, name, tier), args);
    if (r.trap != ENG_OK) fail_msg("%s (%s): %s", name, tier_name[tier], r.msg);
    return r.n ? r.v[0].i32 : 0;
}

static inline res_t call_side(side_t *sd, const char *name, const eng_val_t *args)
{
    return call_f(sd->x, export_func(sd->i, name, sd->tier), args);
}

/* Bit-exact equality of result k (references: both null or both not). */
static inline bool same_val(eng_valtype_t t, eng_val_t a, eng_val_t b)
{
    switch (t) {
    case ENG_I32:
    case ENG_F32: return a.i32 == b.i32;
    case ENG_I64:
    case ENG_F64: return a.i64 == b.i64;
    default: return (a.ref == NULL) == (b.ref == NULL);
    }
}

static inline void expect_same(const char *what, const res_t *a, const res_t *b, const char *na,
                        const char *nb)
{
    if (a->trap != b->trap)
        fail_msg("%s: %s ends with %s (%s), %s with %s (%s)", what, na, eng_trap_name(a->trap),
                 a->msg, nb, eng_trap_name(b->trap), b->msg);
    if (strcmp(a->msg, b->msg) != 0)
        fail_msg("%s: trap messages differ: %s \"%s\", %s \"%s\"", what, na, a->msg, nb, b->msg);
    if (a->trap != ENG_OK) return;
    for (uint32_t k = 0; k < a->n; k++)
        if (!same_val(a->type[k], a->v[k], b->v[k]))
            fail_msg("%s: result %u differs: %s 0x%llx, %s 0x%llx", what, k, na,
                     (unsigned long long)a->v[k].i64, nb, (unsigned long long)b->v[k].i64);
}

/* Calls export name in both tiers; fails unless they agree exactly.
 * Returns the native tier's outcome. */
static inline res_t both(pair_t *p, const char *name, const eng_val_t *args)
{
    res_t r[2];
    for (int t = 0; t < 2; t++) r[t] = call_side(&p->t[t], name, args);
    expect_same(name, &r[INTERP], &r[NATIVE], "interp", "native");
    return r[NATIVE];
}

static inline bool starts_with(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

static inline void expect_trap_r(const char *name, const res_t *r, eng_trap_t want, const char *text)
{
    if (r->trap != want)
        fail_msg("%s: ends with %s (%s), expected %s", name, eng_trap_name(r->trap), r->msg,
                 eng_trap_name(want));
    if (text && !starts_with(r->msg, text))
        fail_msg("%s: message \"%s\", expected it to start with \"%s\"", name, r->msg, text);
}

/* name(args) traps with want in both tiers, with the same message, which
 * starts with text. */
static inline void expect_trap(pair_t *p, const char *name, const eng_val_t *args, eng_trap_t want,
                        const char *text)
{
    res_t r = both(p, name, args);
    expect_trap_r(name, &r, want, text);
}

static inline res_t expect_ok(pair_t *p, const char *name, const eng_val_t *args)
{
    res_t r = both(p, name, args);
    if (r.trap != ENG_OK) fail_msg("%s: trapped: %s", name, r.msg);
    return r;
}

static inline void expect_i32(pair_t *p, const char *name, const eng_val_t *args, uint32_t want)
{
    res_t r = expect_ok(p, name, args);
    if (r.v[0].i32 != want)
        fail_msg("%s: returned %u (0x%x), expected %u (0x%x)", name, r.v[0].i32, r.v[0].i32, want,
                 want);
}

static inline void expect_i64(pair_t *p, const char *name, const eng_val_t *args, uint64_t want)
{
    res_t r = expect_ok(p, name, args);
    if (r.v[0].i64 != want)
        fail_msg("%s: returned 0x%llx, expected 0x%llx", name, (unsigned long long)r.v[0].i64,
                 (unsigned long long)want);
}

/* Argument lists: ARGS(I32(1), F64(2.5)). */
#define ARGS(...) ((const eng_val_t[]){__VA_ARGS__})
#define I32(v) {.i32 = (uint32_t)(v)}
#define I64(v) {.i64 = (uint64_t)(v)}
#define F32(v) {.f32 = (v)}
#define F64(v) {.f64 = (v)}
#define REF(v) {.ref = (v)}

static inline float f32_bits(uint32_t b)
{
    float f;
    memcpy(&f, &b, 4);
    return f;
}

static inline double f64_bits(uint64_t b)
{
    double d;
    memcpy(&d, &b, 8);
    return d;
}

/* Memory bytes of a side (its memory 0). */
static inline uint8_t *mem_of(side_t *sd)
{
    eng_memory_t *m = eng_instance_memory(sd->i);
    assert_non_null(m);
    return eng_memory_data(m);
}

/* Runs fn(arg) in a child process: a guest that crashes the process
 * fails the test that asked, not the whole program. fn returns an
 * eng_trap_t, or 100 + n for a setup failure n; the child exits with
 * CHILD_TRAP + the trap, so that a sanitizer's report (exit status 1)
 * is not taken for a trap. Returns the trap, or fails naming how the
 * child ended. close, when not NULL, is closed in the parent at once. */
#define CHILD_TRAP 50

static inline eng_trap_t trap_in_child(const char *what, int (*fn)(void *), void *arg, pair_t *close)
{
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) fail_msg("fork failed");
    if (pid == 0) {
        int r = fn(arg);
        _exit(r >= 100 ? r : CHILD_TRAP + r);
    }
    /* what the child needed, the parent no longer does: closed before
     * any failure below leaves the test */
    if (close) pair_close(close);
    int st = 0;
    if (waitpid(pid, &st, 0) != pid) fail_msg("waitpid failed");
    if (WIFSIGNALED(st))
        fail_msg("%s: the process died with signal %d (%s)", what, WTERMSIG(st), strsignal(WTERMSIG(st)));
    int code = WEXITSTATUS(st);
    if (code >= 100) fail_msg("%s: setup failed in the child (%d)", what, code - 100);
    if (code < CHILD_TRAP || code > CHILD_TRAP + ENG_TRAP_EXIT)
        fail_msg("%s: the process exited with status %d (see any sanitizer report above)", what, code);
    return (eng_trap_t)(code - CHILD_TRAP);
}

/* ---- Interruption ---------------------------------------------------- */

/* A guest that is never stopped would hang the test program: around the
 * calls that rely on an interruption, a watchdog ends the program with a
 * message after WATCHDOG_S seconds instead. */
#define WATCHDOG_S 30

static struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool armed;
    const char *what;
    pthread_t th;
} watchdog = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, false, NULL, 0};

static inline void *watchdog_main(void *arg)
{
    (void)arg;
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += WATCHDOG_S;
    pthread_mutex_lock(&watchdog.mu);
    while (watchdog.armed)
        if (pthread_cond_timedwait(&watchdog.cv, &watchdog.mu, &until) != 0 && watchdog.armed) {
            fprintf(stderr, "%s still running after %d s: the guest was not stopped\n",
                    watchdog.what, WATCHDOG_S);
            abort();
        }
    pthread_mutex_unlock(&watchdog.mu);
    return NULL;
}

static inline void watchdog_arm(const char *what)
{
    watchdog.armed = true;
    watchdog.what = what;
    assert_int_equal(pthread_create(&watchdog.th, NULL, watchdog_main, NULL), 0);
}

static inline void watchdog_disarm(void)
{
    pthread_mutex_lock(&watchdog.mu);
    watchdog.armed = false;
    pthread_cond_signal(&watchdog.cv);
    pthread_mutex_unlock(&watchdog.mu);
    pthread_join(watchdog.th, NULL);
}

/* Runs name(args) in both tiers with a deadline `ms` from now; both must
 * stop with ENG_TRAP_DEADLINE, not before the deadline and well within
 * 2 s, with the same message. */
static inline void expect_deadline(pair_t *p, const char *name, const eng_val_t *args, uint64_t ms,
                            const char *text)
{
    res_t r[2];
    for (int t = 0; t < 2; t++) {
        eng_exec_t *x = p->t[t].x;
        uint64_t t0 = eng_now_ns();
        eng_exec_set_deadline(x, t0 + ms * MS);
        watchdog_arm(name);
        r[t] = call_side(&p->t[t], name, args);
        watchdog_disarm();
        uint64_t took = eng_now_ns() - t0;
        eng_exec_set_deadline(x, 0);
        expect_trap_r(name, &r[t], ENG_TRAP_DEADLINE, text);
        if (took < ms * MS) fail_msg("%s (%s): stopped after %llu ns, before its deadline", name,
                                     tier_name[t], (unsigned long long)took);
        if (took > 2000 * MS) fail_msg("%s (%s): took %llu ms to stop for a %llu ms deadline", name,
                                       tier_name[t], (unsigned long long)(took / MS),
                                       (unsigned long long)ms);
    }
    expect_same(name, &r[INTERP], &r[NATIVE], "interp", "native");
}

/* ---- The test group ---------------------------------------------------- */

/* The group's set-up: a temporary directory for the assembled modules;
 * fails when this build cannot compile native code. */
static inline int native_pair_setup(const char *prog)
{
    if (!eng_native_can_compile()) {
        fprintf(stderr, "%s: this build cannot compile native code\n", prog);
        return -1;
    }
    snprintf(tmpdir, sizeof tmpdir, "/tmp/%s_XXXXXX", prog);
    return mkdtemp(tmpdir) ? 0 : -1;
}

/* The group's tear-down: the shared modules and the directory. */
static inline int native_pair_teardown(void)
{
    for (int k = 0; k < NCACHED; k++) {
        mod_free(cached[k]);
        cached[k] = NULL;
        cached_wat[k] = NULL;
    }
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

#endif
