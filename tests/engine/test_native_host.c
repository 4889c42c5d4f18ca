/*
 * test_native_host.c — the native tier against the interpreter, where
 * code leaves its own instance:
 *
 *   1. host functions: arguments and results bit-exact, host traps and exit,
 *      re-entrancy (native -> host -> native), traps in the inner call, and
 *      unbounded re-entrancy in both tiers
 *   2. mixed tiers: imports across tiers, a shared table, traps crossing
 *   3. multi-value results, direct, indirect, from C, across instances
 *   4. memory: grow seen by the caller, shared imported memory, no memory
 *   5. call_indirect's type check (type keys), host functions in tables
 *
 * Each module, written in WAT, is assembled at test time with wabt's
 * wat2wasm (--debug-names, so that trap messages name functions: the tiers
 * must agree on those names too) and run by both tiers side by side, which
 * must give the same results, trap kinds and trap messages, word for word
 * (native_pair.h). A test that expects native code checks that the
 * function it calls really has native code (eng_func_t.native, internal.h):
 * a test that quietly ran the interpreter twice could not fail. What can
 * crash the process when the engine is wrong runs in a child process; calls
 * that only a deadline or an interrupt can end are watched (30 s, then the
 * program aborts naming the call).
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "engine/engine.h"
#include "engine/internal.h" /* eng_func_t.native: which tier a function runs in */
#include "runtime/fiber.h"
#include "runtime/runtime.h" /* the pool, for guests on the daemon's own fibers */
#include "native_pair.h"
#include "native_stacks.h"

#include <uv.h>

#define PG ENG_PAGE_BYTES


/* ==== 1. Host functions and re-entrancy =================================== */

static const char wat_host[] =
    "(module\n"
    "  (import \"env\" \"mix\" (func $mix (param i32 i64 f32 f64) (result f64 f32 i64 i32)))\n"
    "  (import \"env\" \"fail\" (func $fail (param i32)))\n"
    "  (import \"env\" \"quit\" (func $quit (param i32)))\n"
    "  (import \"env\" \"reenter\" (func $reenter (param i32) (result i32)))\n"
    "  (import \"env\" \"deeper\" (func $deeper (param i32) (result i32)))\n"
    "  (global $g (export \"g\") (mut i32) (i32.const 0))\n"
    "  (memory (export \"mem\") 1)\n"
    "  (func (export \"mix\") (param i32 i64 f32 f64) (result f64 f32 i64 i32)\n"
    "    (local $a i32) (local $b i64) (local $c f32) (local $d f64)\n"
    "    (local.set $a (local.get 0)) (local.set $b (local.get 1))\n"
    "    (local.set $c (local.get 2)) (local.set $d (local.get 3))\n"
    "    (call $mix (local.get $a) (local.get $b) (local.get $c) (local.get $d)))\n"
    "  (func (export \"floats_mem\") (param f32 f64) (result f32 f64)\n"
    "    (f32.store (i32.const 0) (local.get 0)) (f64.store (i32.const 8) (local.get 1))\n"
    "    (f32.load (i32.const 0)) (f64.load (i32.const 8)))\n"
    "  (func (export \"fail\") (param i32) (result i32)\n"
    "    (global.set $g (i32.const 1)) (call $fail (local.get 0))\n"
    "    (global.set $g (i32.const 2)) (i32.const 3))\n"
    "  (func (export \"quit\") (param i32) (result i32)\n"
    "    (global.set $g (i32.const 1)) (call $quit (local.get 0))\n"
    "    (global.set $g (i32.const 2)) (i32.const 3))\n"
    "  (func $inner (export \"inner\") (param i32) (result i32)\n"
    "    (if (i32.eq (local.get 0) (i32.const 13)) (then unreachable))\n"
    "    (if (i32.eq (local.get 0) (i32.const 14))\n"
    "      (then (drop (i32.div_u (local.get 0) (i32.sub (local.get 0) (i32.const 14))))))\n"
    "    (global.set $g (i32.add (global.get $g) (i32.const 1)))\n"
    "    (i32.mul (local.get 0) (i32.const 2)))\n"
    "  (func $outer (export \"outer\") (param i32 i32) (result i32)\n"
    "    (i32.add (call $reenter (local.get 0)) (call $reenter (local.get 1))))\n"
    "  (func $outer_then_load (export \"outer_then_load\") (param i32 i32) (result i32)\n"
    "    (drop (call $reenter (local.get 0)))\n"
    "    (i32.load (local.get 1)))\n"
    "  (func $down (export \"down\") (param i32) (result i32)\n"
    "    (if (result i32) (i32.eqz (local.get 0)) (then (i32.const 0))\n"
    "      (else (i32.add (call $deeper (local.get 0)) (i32.const 1))))))\n";

enum { REENTER_PASS, REENTER_SWALLOW, REENTER_AS_HOST, REENTER_RAW };

/* What the host functions of wat_host saw, per tier. */
typedef struct host_env {
    int tier;
    eng_val_t seen[4];
    int mode;                /* REENTER_* */
    int calls;
    eng_trap_t inner_trap;   /* of the last inner call */
    char inner_msg[ENG_ERR_MAX];
    int wrong;               /* a host saw something it should not have */
} host_env_t;

static eng_trap_t h_mix(eng_host_call_t *call, eng_val_t *args)
{
    host_env_t *e = call->env;
    memcpy(e->seen, args, sizeof e->seen);
    eng_val_t a = args[0], b = args[1], c = args[2], d = args[3];
    args[0].i64 = d.i64; /* f64 */
    args[1].i64 = 0;
    args[1].i32 = c.i32; /* f32 */
    args[2].i64 = b.i64;
    args[3].i64 = 0;
    args[3].i32 = a.i32;
    if (!call->caller) e->wrong++;
    return ENG_OK;
}

static eng_trap_t h_fail(eng_host_call_t *call, eng_val_t *args)
{
    return eng_exec_trap_host(call->exec, "host says no to %u", args[0].i32);
}

static eng_trap_t h_quit(eng_host_call_t *call, eng_val_t *args)
{
    return eng_exec_exit(call->exec, (int)args[0].i32);
}

/* Calls the calling instance's export "inner" again on the same exec. */
static eng_trap_t h_reenter(eng_host_call_t *call, eng_val_t *args)
{
    host_env_t *e = call->env;
    e->calls++;
    if (!call->caller) {
        e->wrong++;
        return eng_exec_trap_host(call->exec, "no caller");
    }
    eng_func_t *f = eng_instance_func(call->caller, "inner");
    if (!f || is_native(f) != (e->tier == NATIVE)) e->wrong++;
    eng_val_t a[1] = {args[0]}, r[1] = {{.i64 = 0}};
    eng_trap_t t = eng_call(call->exec, f, a, r);
    e->inner_trap = t;
    snprintf(e->inner_msg, sizeof e->inner_msg, "%s", t ? eng_exec_trap_message(call->exec) : "");
    if (t == ENG_OK) {
        args[0] = r[0];
        return ENG_OK;
    }
    switch (e->mode) {
    case REENTER_SWALLOW: args[0].i32 = (uint32_t)-1; return ENG_OK;
    case REENTER_AS_HOST: return eng_exec_trap_host(call->exec, "inner failed: %s", e->inner_msg);
    default: return t;
    }
}

/* down(n) = deeper(n) + 1 = down(n - 1) + 1 through the host: a chain of
 * native -> host -> native calls as deep as the guest wants. */
static eng_trap_t h_deeper(eng_host_call_t *call, eng_val_t *args)
{
    eng_func_t *f = eng_instance_func(call->caller, "down");
    eng_val_t a[1] = {{.i32 = args[0].i32 - 1}}, r[1] = {{.i64 = 0}};
    eng_trap_t t = eng_call(call->exec, f, a, r);
    if (t == ENG_OK) args[0] = r[0];
    return t;
}

static const host_def_t host_defs[] = {
    {"mix", "(iIfF)FfIi", h_mix},       {"fail", "(i)", h_fail},
    {"quit", "(i)", h_quit},            {"reenter", "(i)i", h_reenter},
    {"deeper", "(i)i", h_deeper},
};

static void host_pair_open(pair_t *p, host_env_t env[2])
{
    memset(env, 0, 2 * sizeof *env);
    env[INTERP].tier = INTERP;
    env[NATIVE].tier = NATIVE;
    pair_open_env(p, mod_shared(wat_host), host_defs, 5, &env[INTERP], &env[NATIVE]);
}

static void test_host_args_and_results(void **state)
{
    (void)state;
    pair_t p;
    host_env_t env[2];
    host_pair_open(&p, env);
    /* signalling NaNs with payloads, negative zero, extreme integers */
    const uint32_t snan32 = 0x7FA00001u;
    const uint64_t snan64 = 0x7FF4000000000001ull;
    res_t r = expect_ok(&p, "mix", ARGS(I32(0x80000001u), I64(0x8000000000000001ull),
                                        F32(f32_bits(snan32)), F64(f64_bits(snan64))));
    assert_int_equal(r.n, 4);
    assert_int_equal(r.v[0].i64, snan64);
    assert_int_equal(r.v[1].i32, snan32);
    assert_int_equal(r.v[2].i64, 0x8000000000000001ull);
    assert_int_equal(r.v[3].i32, 0x80000001u);
    for (int t = 0; t < 2; t++) {
        assert_int_equal(env[t].seen[0].i32, 0x80000001u);
        assert_int_equal(env[t].seen[1].i64, 0x8000000000000001ull);
        assert_int_equal(env[t].seen[2].i32, snan32);
        assert_int_equal(env[t].seen[3].i64, snan64);
        assert_int_equal(env[t].wrong, 0);
    }
    r = expect_ok(&p, "mix", ARGS(I32(0), I64(-1), F32(-0.0f), F64(f64_bits(0xFFF8DEADBEEF0001ull))));
    assert_int_equal(r.v[0].i64, 0xFFF8DEADBEEF0001ull);
    assert_int_equal(r.v[1].i32, 0x80000000u);
    /* through linear memory too */
    r = expect_ok(&p, "floats_mem", ARGS(F32(f32_bits(0xFFC12345u)), F64(f64_bits(snan64))));
    assert_int_equal(r.v[0].i32, 0xFFC12345u);
    assert_int_equal(r.v[1].i64, snan64);
    pair_close(&p);
}

static void test_host_trap_and_exit(void **state)
{
    (void)state;
    pair_t p;
    host_env_t env[2];
    host_pair_open(&p, env);
    /* the host's own message, and nothing after the call ran */
    res_t r = both(&p, "fail", ARGS(I32(7)));
    expect_trap_r("fail", &r, ENG_TRAP_HOST, NULL);
    assert_string_equal(r.msg, "host says no to 7");
    for (int t = 0; t < 2; t++) assert_int_equal(eng_global_get(export_global(p.t[t].i, "g")).i32, 1);
    r = both(&p, "quit", ARGS(I32(42)));
    expect_trap_r("quit", &r, ENG_TRAP_EXIT, NULL);
    assert_string_equal(r.msg, "exit 42");
    for (int t = 0; t < 2; t++) {
        assert_int_equal(eng_exec_exit_code(p.t[t].x), 42);
        assert_int_equal(eng_global_get(export_global(p.t[t].i, "g")).i32, 1);
    }
    /* exit code 0 is still a trap (the guest ended) */
    r = both(&p, "quit", ARGS(I32(0)));
    expect_trap_r("quit", &r, ENG_TRAP_EXIT, "exit 0");
    /* and the exec works afterwards */
    expect_i32(&p, "inner", ARGS(I32(4)), 8);
    pair_close(&p);
}

static void set_mode(host_env_t env[2], int mode)
{
    for (int t = 0; t < 2; t++) {
        env[t].mode = mode;
        env[t].inner_trap = ENG_OK;
        env[t].inner_msg[0] = '\0';
    }
}

static void test_host_reentry(void **state)
{
    (void)state;
    pair_t p;
    host_env_t env[2];
    host_pair_open(&p, env);
    /* native -> host -> native, twice in one outer call */
    set_mode(env, REENTER_PASS);
    expect_i32(&p, "outer", ARGS(I32(3), I32(4)), 14);
    for (int t = 0; t < 2; t++) {
        assert_int_equal(env[t].calls, 2);
        assert_int_equal(env[t].wrong, 0);
        assert_int_equal(eng_global_get(export_global(p.t[t].i, "g")).i32, 2);
    }
    /* The inner call traps; the host swallows it and the outer call goes
     * on with the host's result. */
    set_mode(env, REENTER_SWALLOW);
    expect_i32(&p, "outer", ARGS(I32(13), I32(5)), (uint32_t)-1 + 10);
    for (int t = 0; t < 2; t++) {
        assert_int_equal(env[t].inner_trap, ENG_OK); /* the second inner call */
        assert_int_equal(eng_global_get(export_global(p.t[t].i, "g")).i32, 3);
    }
    /* ... and a trap of the outer call after that lands in the outer call
     * (its own entry, not the finished inner one). */
    expect_trap(&p, "outer_then_load", ARGS(I32(13), I32(PG)), ENG_TRAP_MEMORY_OOB,
                "out of bounds memory access in function 11 (outer_then_load)");
    for (int t = 0; t < 2; t++) {
        assert_int_equal(env[t].inner_trap, ENG_TRAP_UNREACHABLE);
        assert_string_equal(env[t].inner_msg, "unreachable in function 9 (inner)");
    }
    expect_i32(&p, "outer_then_load", ARGS(I32(13), I32(0)), 0);
    /* The host turns the inner trap into its own. */
    set_mode(env, REENTER_AS_HOST);
    res_t r = both(&p, "outer", ARGS(I32(2), I32(14)));
    expect_trap_r("outer", &r, ENG_TRAP_HOST, NULL);
    assert_string_equal(r.msg, "inner failed: integer divide by zero in function 9 (inner)");
    /* The host passes the inner trap on as it is: the outer call ends
     * with the same kind. */
    set_mode(env, REENTER_RAW);
    expect_trap(&p, "outer", ARGS(I32(13), I32(1)), ENG_TRAP_UNREACHABLE,
                "unreachable in function");
    expect_trap(&p, "outer", ARGS(I32(1), I32(14)), ENG_TRAP_DIV_ZERO,
                "integer divide by zero in function");
    /* everything still works */
    set_mode(env, REENTER_PASS);
    expect_i32(&p, "outer", ARGS(I32(1), I32(2)), 6);
    for (int t = 0; t < 2; t++) assert_int_equal(env[t].wrong, 0);
    pair_close(&p);
}

/* A chain native -> host -> native ... : fine when bounded, call stack
 * exhausted (not a crash) when not, on the main thread and on a fiber. */
static void test_host_reentry_depth(void **state)
{
    (void)state;
    pair_t p;
    host_env_t env[2];
    host_pair_open(&p, env);
    expect_i32(&p, "down", ARGS(I32(200)), 200);
    side_t *n = &p.t[NATIVE];
    res_t r = call_side(n, "down", ARGS(I32(100000000)));
    expect_trap_r("down (native, main thread)", &r, ENG_TRAP_STACK_EXHAUSTED, "call stack exhausted");
    stack_run_t sr = {.x = n->x, .f = export_func(n->i, "down", NATIVE), .args = {{.i32 = 100000000}}};
    stack_run_t o = run_small_stack(&sr, 128u << 10, 0, "down(10^8) on a 128 KiB fiber (native)");
    if (o.trap != ENG_TRAP_STACK_EXHAUSTED)
        fail_msg("down on a 128 KiB fiber: %s (%s)", eng_trap_name(o.trap), o.msg);
    sr.args[0].i32 = 20;
    o = run_small_stack(&sr, 128u << 10, 0, "down(20) on a 128 KiB fiber (native)");
    assert_int_equal(o.trap, ENG_OK);
    assert_int_equal(o.res[0].i32, 20);
    expect_i32(&p, "down", ARGS(I32(50)), 50);
    pair_close(&p);
}

/* The same chain without bound in each tier, in a child process (a C
 * stack overflow would kill it): both tiers must end it with "call stack
 * exhausted". */
static side_t *reentry_side;

static int reentry_child(void *arg)
{
    (void)arg;
    res_t r = call_side(reentry_side, "down", ARGS(I32(100000000)));
    return (int)r.trap;
}

static void test_host_reentry_unbounded_both_tiers(void **state)
{
    (void)state;
    pair_t p;
    host_env_t env[2];
    for (int t = 0; t < 2; t++) {
        host_pair_open(&p, env);
        reentry_side = &p.t[t];
        char what[64];
        snprintf(what, sizeof what, "down(10^8) through the host (%s)", tier_name[t]);
        eng_trap_t tr = trap_in_child(what, reentry_child, NULL, &p);
        if (tr != ENG_TRAP_STACK_EXHAUSTED) fail_msg("%s: %s", what, eng_trap_name(tr));
    }
}

/* ==== 2. Mixed tiers ====================================================== */

/* B exports functions and a table; A imports them and puts its own
 * functions into B's table. Each reads its own global, so a function run
 * with the wrong instance gives a wrong number. */
static const char wat_b[] =
    "(module\n"
    "  (type $ii (func (param i32) (result i32)))\n"
    "  (table $t (export \"tab\") 9 funcref)\n"
    "  (global $base i32 (i32.const 2000))\n"
    "  (memory 1)\n"
    "  (elem (i32.const 0) func $b_add $b_trap)\n"
    "  (elem (i32.const 6) func $pong)\n"
    "  (func $b_add (export \"b_add\") (type $ii) (i32.add (local.get 0) (global.get $base)))\n"
    "  (func $b_trap (export \"b_trap\") (type $ii) unreachable)\n"
    "  (func $b_oob (export \"b_oob\") (type $ii) (i32.load (local.get 0)))\n"
    "  (func $ci (export \"ci\") (param i32 i32) (result i32)\n"
    "    (call_indirect $t (type $ii) (local.get 1) (local.get 0)))\n"
    "  (func $pong (type $ii)\n"
    "    (call_indirect $t (type $ii) (i32.add (local.get 0) (i32.const 1)) (i32.const 7))))\n";

static const char wat_a[] =
    "(module\n"
    "  (type $ii (func (param i32) (result i32)))\n"
    "  (import \"b\" \"b_add\" (func $b_add (type $ii)))\n"
    "  (import \"b\" \"b_trap\" (func $b_trap (type $ii)))\n"
    "  (import \"b\" \"b_oob\" (func $b_oob (type $ii)))\n"
    "  (import \"b\" \"ci\" (func $b_ci (param i32 i32) (result i32)))\n"
    "  (import \"b\" \"tab\" (table $t 9 funcref))\n"
    "  (global $base i32 (i32.const 1000))\n"
    "  (elem (table $t) (i32.const 2) func $a_add $a_trap $a_i64)\n"
    "  (elem (table $t) (i32.const 7) func $ping)\n"
    "  (func $a_add (type $ii) (i32.add (local.get 0) (global.get $base)))\n"
    "  (func $a_trap (type $ii) (i32.div_u (local.get 0) (i32.sub (local.get 0) (local.get 0))))\n"
    "  (func $a_i64 (param i64) (result i64) (local.get 0))\n"
    "  (func $ping (export \"ping\") (type $ii)\n"
    "    (call_indirect $t (type $ii) (i32.add (local.get 0) (i32.const 1)) (i32.const 6)))\n"
    "  (func (export \"call_b\") (param i32) (result i32)\n"
    "    (i32.mul (call $b_add (local.get 0)) (i32.const 2)))\n"
    "  (func (export \"call_b_trap\") (param i32) (result i32) (call $b_trap (local.get 0)))\n"
    "  (func (export \"call_b_oob\") (param i32) (result i32) (call $b_oob (local.get 0)))\n"
    "  (func $ci (export \"ci\") (param i32 i32) (result i32)\n"
    "    (call_indirect $t (type $ii) (local.get 1) (local.get 0)))\n"
    "  (func (export \"via_b\") (param i32 i32) (result i32)\n"
    "    (i32.add (call $b_ci (local.get 0) (local.get 1)) (i32.const 1))))\n";

/* Every export of inst, for another module to import as module `name`. */
static unsigned links_of(eng_instance_t *inst, const char *name, link_t *out, unsigned max)
{
    const eng_module_t *m = eng_instance_module(inst);
    unsigned n = 0;
    for (uint32_t k = 0; k < eng_module_export_count(m) && n < max; k++) {
        eng_extern_desc_t d;
        eng_module_export(m, k, &d);
        out[n].module = name;
        out[n].name = d.name;
        if (!eng_instance_export(inst, d.name, &out[n].ext)) fail_msg("export %s", d.name);
        n++;
    }
    return n;
}

/* B and then A in one store, on one exec, in the given tiers. */
typedef struct world {
    int ta, tb;
    eng_store_t *s;
    eng_exec_t *x;
    eng_instance_t *a, *b;
} world_t;

static void world_open(world_t *w, int ta, int tb)
{
    mod_t *ma = mod_shared(wat_a), *mb = mod_shared(wat_b);
    w->ta = ta;
    w->tb = tb;
    w->s = eng_store_new();
    w->x = eng_exec_new(0);
    w->b = instantiate(w->s, mb->tier[tb], NULL, w->x);
    link_t links[16];
    unsigned n = links_of(w->b, "b", links, 16);
    eng_extern_t imp[16];
    resolve(ma->tier[ta], w->s, NULL, 0, NULL, links, n, imp);
    w->a = instantiate(w->s, ma->tier[ta], imp, w->x);
}

static void world_close(world_t *w)
{
    eng_store_free(w->s);
    eng_exec_free(w->x);
}

/* Calls name on A (or B) in every world; all must agree with world 0
 * (everything interpreted). Returns world 0's outcome. */
static res_t call_worlds(world_t *w, int nw, bool on_a, const char *name, const eng_val_t *args)
{
    res_t r0;
    memset(&r0, 0, sizeof r0);
    for (int k = 0; k < nw; k++) {
        eng_instance_t *i = on_a ? w[k].a : w[k].b;
        res_t r = call_f(w[k].x, export_func(i, name, on_a ? w[k].ta : w[k].tb), args);
        if (k == 0) {
            r0 = r;
            continue;
        }
        char what[96], who[32];
        snprintf(what, sizeof what, "%s.%s", on_a ? "A" : "B", name);
        snprintf(who, sizeof who, "A %s, B %s", tier_name[w[k].ta], tier_name[w[k].tb]);
        expect_same(what, &r0, &r, "all interpreted", who);
    }
    return r0;
}

static void test_mixed_tiers(void **state)
{
    (void)state;
    world_t w[4];
    for (int k = 0; k < 4; k++) world_open(&w[k], k & 1, k >> 1);
    res_t r = call_worlds(w, 4, true, "call_b", ARGS(I32(5)));
    assert_int_equal(r.trap, ENG_OK);
    assert_int_equal(r.v[0].i32, 4010);
    r = call_worlds(w, 4, true, "call_b_trap", ARGS(I32(5)));
    expect_trap_r("call_b_trap", &r, ENG_TRAP_UNREACHABLE, "unreachable in function 1 (b_trap)");
    r = call_worlds(w, 4, true, "call_b_oob", ARGS(I32(PG - 3)));
    expect_trap_r("call_b_oob", &r, ENG_TRAP_MEMORY_OOB,
                  "out of bounds memory access in function 2 (b_oob)");
    /* The shared table from both sides: B's and A's functions, each with
     * its own instance; traps name the function that trapped. */
    for (int side = 0; side < 2; side++) {
        bool on_a = side == 0;
        r = call_worlds(w, 4, on_a, "ci", ARGS(I32(0), I32(7)));
        assert_int_equal(r.trap, ENG_OK);
        assert_int_equal(r.v[0].i32, 2007);
        r = call_worlds(w, 4, on_a, "ci", ARGS(I32(2), I32(7)));
        assert_int_equal(r.trap, ENG_OK);
        assert_int_equal(r.v[0].i32, 1007);
        r = call_worlds(w, 4, on_a, "ci", ARGS(I32(1), I32(7)));
        expect_trap_r("ci 1", &r, ENG_TRAP_UNREACHABLE, "unreachable in function 1 (b_trap)");
        r = call_worlds(w, 4, on_a, "ci", ARGS(I32(3), I32(7)));
        expect_trap_r("ci 3", &r, ENG_TRAP_DIV_ZERO, "integer divide by zero in function 5 (a_trap)");
        r = call_worlds(w, 4, on_a, "ci", ARGS(I32(4), I32(7)));
        expect_trap_r("ci 4", &r, ENG_TRAP_INDIRECT_TYPE,
                      on_a ? "indirect call type mismatch in function 11 (ci)"
                           : "indirect call type mismatch in function 3 (ci)");
        r = call_worlds(w, 4, on_a, "ci", ARGS(I32(5), I32(7)));
        expect_trap_r("ci 5", &r, ENG_TRAP_NULL_REF, "uninitialized element in function");
        r = call_worlds(w, 4, on_a, "ci", ARGS(I32(9), I32(7)));
        expect_trap_r("ci 9", &r, ENG_TRAP_TABLE_OOB, "undefined element in function");
    }
    /* A -> B -> (table) -> A, and a trap two boundaries down */
    r = call_worlds(w, 4, true, "via_b", ARGS(I32(2), I32(7)));
    assert_int_equal(r.trap, ENG_OK);
    assert_int_equal(r.v[0].i32, 1008);
    r = call_worlds(w, 4, true, "via_b", ARGS(I32(3), I32(7)));
    expect_trap_r("via_b", &r, ENG_TRAP_DIV_ZERO, "integer divide by zero in function 5 (a_trap)");
    /* ping (A) and pong (B) call each other through the table forever:
     * the call stack runs out in every combination of tiers, without a
     * crash (each native entry checks the stack, however deep the C frames
     * of the interpreter in between) */
    for (int k = 0; k < 4; k++) {
        res_t rp = call_f(w[k].x, export_func(w[k].a, "ping", w[k].ta), ARGS(I32(0)));
        char what[64];
        snprintf(what, sizeof what, "ping (A %s, B %s)", tier_name[w[k].ta], tier_name[w[k].tb]);
        expect_trap_r(what, &rp, ENG_TRAP_STACK_EXHAUSTED, "call stack exhausted in function");
    }
    r = call_worlds(w, 4, true, "call_b", ARGS(I32(1)));
    assert_int_equal(r.v[0].i32, 4002);
    for (int k = 0; k < 4; k++) world_close(&w[k]);
}

/* ==== 3. Multi-value ====================================================== */

static const char wat_multi[] =
    "(module\n"
    "  (type $five (func (param i32) (result i32 i64 f32 f64 i32)))\n"
    "  (table 1 funcref)\n"
    "  (elem (i32.const 0) $five)\n"
    "  (func $two (export \"two\") (param i32) (result i32 i64)\n"
    "    (i32.add (local.get 0) (i32.const 1))\n"
    "    (i64.shl (i64.extend_i32_s (local.get 0)) (i64.const 32)))\n"
    "  (func $three (export \"three\") (param f64) (result f32 f64 i32)\n"
    "    (f32.demote_f64 (local.get 0)) (f64.neg (local.get 0))\n"
    "    (i32.trunc_sat_f64_s (local.get 0)))\n"
    "  (func $five (export \"five\") (type $five)\n"
    "    (local.get 0)\n"
    "    (i64.sub (i64.const 0) (i64.extend_i32_u (local.get 0)))\n"
    "    (f32.convert_i32_s (local.get 0))\n"
    "    (f64.div (f64.convert_i32_s (local.get 0)) (f64.const 4))\n"
    "    (i32.xor (local.get 0) (i32.const -1)))\n"
    "  (func (export \"five_direct\") (param i32) (result i32 i64 f32 f64 i32)\n"
    "    (call $five (local.get 0)))\n"
    "  (func (export \"five_indirect\") (param i32) (result i32 i64 f32 f64 i32)\n"
    "    (call_indirect (type $five) (local.get 0) (i32.const 0)))\n"
    "  (func (export \"two_three\") (param i32 f64) (result i32 i64 f32 f64 i32)\n"
    "    (call $two (local.get 0)) (call $three (local.get 1)))\n"
    "  (func (export \"five_rev\") (param i32) (result i32 f64 f32 i64 i32)\n"
    "    (local $a i32) (local $b i64) (local $c f32) (local $d f64) (local $e i32)\n"
    "    (call $five (local.get 0))\n"
    "    (local.set $e) (local.set $d) (local.set $c) (local.set $b) (local.set $a)\n"
    "    (local.get $e) (local.get $d) (local.get $c) (local.get $b) (local.get $a))\n"
    "  (func (export \"block_mv\") (param i32) (result i64 i32)\n"
    "    (block (result i64 i32)\n"
    "      (i64.const 7) (i32.const 8)\n"
    "      (br_if 0 (local.get 0))\n"
    "      (drop) (drop) (i64.const 9) (i32.const 10))))\n";

static const char wat_multi_user[] =
    "(module\n"
    "  (import \"m\" \"five\" (func $five (param i32) (result i32 i64 f32 f64 i32)))\n"
    "  (func (export \"five_imported\") (param i32) (result i32 i64 f32 f64 i32)\n"
    "    (call $five (local.get 0))))\n";

/* five(-6), as C computes it. */
static void expect_five_of_minus6(const char *what, const res_t *r)
{
    if (r->trap != ENG_OK) fail_msg("%s: %s", what, r->msg);
    assert_int_equal(r->n, 5);
    assert_int_equal(r->v[0].i32, (uint32_t)-6);
    assert_int_equal(r->v[1].i64, 0xFFFFFFFF00000006ull);
    assert_true(r->v[2].f32 == -6.0f);
    assert_true(r->v[3].f64 == -1.5);
    assert_int_equal(r->v[4].i32, 5);
}

static void test_multi_value(void **state)
{
    (void)state;
    pair_t p;
    pair_open(&p, mod_shared(wat_multi));
    res_t r = expect_ok(&p, "two", ARGS(I32(-2)));
    assert_int_equal(r.n, 2);
    assert_int_equal(r.v[0].i32, (uint32_t)-1);
    assert_int_equal(r.v[1].i64, 0xFFFFFFFE00000000ull);
    r = expect_ok(&p, "three", ARGS(F64(-2.75)));
    assert_int_equal(r.n, 3);
    assert_true(r.v[0].f32 == -2.75f && r.v[1].f64 == 2.75 && r.v[2].i32 == (uint32_t)-2);
    r = expect_ok(&p, "five", ARGS(I32(-6)));
    expect_five_of_minus6("five", &r);
    r = expect_ok(&p, "five_direct", ARGS(I32(-6)));
    expect_five_of_minus6("five_direct", &r);
    r = expect_ok(&p, "five_indirect", ARGS(I32(-6)));
    expect_five_of_minus6("five_indirect", &r);
    r = expect_ok(&p, "two_three", ARGS(I32(41), F64(1e10)));
    assert_int_equal(r.v[0].i32, 42);
    assert_int_equal(r.v[1].i64, 41ull << 32);
    assert_true(r.v[2].f32 == 1e10f && r.v[3].f64 == -1e10 && r.v[4].i32 == INT32_MAX);
    r = expect_ok(&p, "five_rev", ARGS(I32(8)));
    assert_int_equal(r.v[0].i32, ~8u);
    assert_true(r.v[1].f64 == 2.0 && r.v[2].f32 == 8.0f);
    assert_int_equal(r.v[3].i64, (uint64_t)-8);
    assert_int_equal(r.v[4].i32, 8);
    r = expect_ok(&p, "block_mv", ARGS(I32(1)));
    assert_true(r.v[0].i64 == 7 && r.v[1].i32 == 8);
    r = expect_ok(&p, "block_mv", ARGS(I32(0)));
    assert_true(r.v[0].i64 == 9 && r.v[1].i32 == 10);
    pair_close(&p);

    /* Across instances and tiers: an import returning five values. */
    mod_t *mm = mod_shared(wat_multi), *mu = mod_shared(wat_multi_user);
    for (int k = 0; k < 4; k++) {
        int tp = k & 1, tu = k >> 1;
        eng_store_t *s = eng_store_new();
        eng_exec_t *x = eng_exec_new(0);
        eng_instance_t *prov = instantiate(s, mm->tier[tp], NULL, x);
        link_t links[16];
        unsigned n = links_of(prov, "m", links, 16);
        eng_extern_t imp[1];
        resolve(mu->tier[tu], s, NULL, 0, NULL, links, n, imp);
        eng_instance_t *user = instantiate(s, mu->tier[tu], imp, x);
        res_t ru = call_f(x, export_func(user, "five_imported", tu), ARGS(I32(-6)));
        char what[64];
        snprintf(what, sizeof what, "five_imported (%s from %s)", tier_name[tu], tier_name[tp]);
        expect_five_of_minus6(what, &ru);
        eng_store_free(s);
        eng_exec_free(x);
    }
}

/* ==== 4. Memory =========================================================== */

static const char wat_grow[] =
    "(module\n"
    "  (import \"env\" \"host_grow\" (func $host_grow (param i32) (result i32)))\n"
    "  (memory (export \"mem\") 1 4)\n"
    "  (func $grow (export \"grow\") (param i32) (result i32) (memory.grow (local.get 0)))\n"
    "  (func (export \"size\") (result i32) (memory.size))\n"
    "  (func (export \"load\") (param i32) (result i32) (i32.load (local.get 0)))\n"
    "  (func (export \"grow_and_touch\") (param i32) (result i32)\n"
    "    (i32.store8 (i32.const 65535) (i32.const 7))\n"
    "    (drop (call $grow (i32.const 1)))\n"
    "    (i32.store (local.get 0) (i32.const 0x5eed))\n"
    "    (i32.load (local.get 0)))\n"
    "  (func (export \"host_grow_then_load\") (param i32) (result i32)\n"
    "    (drop (i32.load (i32.const 0)))\n"
    "    (drop (call $host_grow (i32.const 1)))\n"
    "    (i32.load (local.get 0)))\n"
    "  (func (export \"grow_loop\") (result i32) (local $i i32)\n"
    "    (loop $l\n"
    "      (if (i32.ne (memory.grow (i32.const 1)) (i32.const -1))\n"
    "        (then\n"
    "          (i32.store (i32.sub (i32.mul (memory.size) (i32.const 65536)) (i32.const 4))\n"
    "                     (memory.size))\n"
    "          (local.set $i (i32.add (local.get $i) (i32.const 1)))\n"
    "          (br $l))))\n"
    "    (local.get $i)))\n";

static eng_trap_t h_host_grow(eng_host_call_t *call, eng_val_t *args)
{
    args[0].i32 = (uint32_t)eng_memory_grow(eng_instance_memory(call->caller), args[0].i32);
    return ENG_OK;
}

static void test_memory_grow_seen_by_caller(void **state)
{
    (void)state;
    static const host_def_t hosts[] = {{"host_grow", "(i)i", h_host_grow}};
    pair_t p;
    pair_open_env(&p, mod_shared(wat_grow), hosts, 1, NULL, NULL);
    const char *oob = "out of bounds memory access in function";
    expect_i32(&p, "size", NULL, 1);
    expect_trap(&p, "load", ARGS(I32(PG)), ENG_TRAP_MEMORY_OOB, oob);
    /* the callee grows; the caller's next store and load use the new size */
    expect_i32(&p, "grow_and_touch", ARGS(I32(PG + 100)), 0x5eed);
    expect_i32(&p, "size", NULL, 2);
    expect_i32(&p, "load", ARGS(I32(2 * PG - 4)), 0);
    expect_trap(&p, "load", ARGS(I32(2 * PG - 3)), ENG_TRAP_MEMORY_OOB, oob);
    /* a host function grows it */
    expect_i32(&p, "host_grow_then_load", ARGS(I32(3 * PG - 4)), 0);
    expect_i32(&p, "size", NULL, 3);
    /* memory.grow inside a loop, then stores at the new end */
    expect_i32(&p, "grow_loop", NULL, 1);
    expect_i32(&p, "size", NULL, 4);
    expect_i32(&p, "load", ARGS(I32(4 * PG - 4)), 4);
    expect_i32(&p, "grow", ARGS(I32(1)), (uint32_t)-1);
    expect_i32(&p, "grow", ARGS(I32(0)), 4);
    expect_trap(&p, "load", ARGS(I32(4 * PG)), ENG_TRAP_MEMORY_OOB, oob);
    for (int t = 0; t < 2; t++)
        assert_int_equal(eng_memory_size(eng_instance_memory(p.t[t].i)), 4ull * PG);
    pair_close(&p);
}

static const char wat_mem_q[] =
    "(module\n"
    "  (import \"env\" \"mem\" (memory 1 8))\n"
    "  (func (export \"grow\") (param i32) (result i32) (memory.grow (local.get 0)))\n"
    "  (func (export \"size\") (result i32) (memory.size))\n"
    "  (func (export \"load\") (param i32) (result i32) (i32.load (local.get 0)))\n"
    "  (func (export \"store\") (param i32 i32) (i32.store (local.get 0) (local.get 1))))\n";

static const char wat_mem_p[] =
    "(module\n"
    "  (import \"env\" \"mem\" (memory 1 8))\n"
    "  (import \"q\" \"grow\" (func $qgrow (param i32) (result i32)))\n"
    "  (func (export \"size\") (result i32) (memory.size))\n"
    "  (func $load (export \"load\") (param i32) (result i32) (i32.load (local.get 0)))\n"
    "  (func (export \"store\") (param i32 i32) (i32.store (local.get 0) (local.get 1)))\n"
    "  (func (export \"grow_via_q_then_load\") (param i32) (result i32)\n"
    "    (i32.store (i32.const 65532) (i32.const 1))\n"
    "    (drop (call $qgrow (i32.const 1)))\n"
    "    (i32.load (local.get 0))))\n";

static void test_memory_shared_import(void **state)
{
    (void)state;
    mod_t *mq = mod_shared(wat_mem_q), *mp = mod_shared(wat_mem_p);
    const int combos[3][2] = {{NATIVE, NATIVE}, {NATIVE, INTERP}, {INTERP, NATIVE}}; /* P, Q */
    for (int k = 0; k < 3; k++) {
        int tp = combos[k][0], tq = combos[k][1];
        eng_store_t *s = eng_store_new();
        eng_exec_t *x = eng_exec_new(0);
        eng_memory_t *mem = eng_memory_new(s, 1, 8);
        assert_non_null(mem);
        link_t links[8] = {{"env", "mem", {.kind = ENG_EXTERN_MEMORY, .u.memory = mem}}};
        eng_extern_t imp[2];
        resolve(mq->tier[tq], s, NULL, 0, NULL, links, 1, imp);
        eng_instance_t *q = instantiate(s, mq->tier[tq], imp, x);
        unsigned n = 1 + links_of(q, "q", links + 1, 7);
        resolve(mp->tier[tp], s, NULL, 0, NULL, links, n, imp);
        eng_instance_t *pi = instantiate(s, mp->tier[tp], imp, x);
        assert_ptr_equal(eng_instance_memory(pi), mem);
        assert_ptr_equal(eng_instance_memory(q), mem);

        call_u32(x, pi, "store", tp, ARGS(I32(100), I32(0xABC)));
        assert_int_equal(call_u32(x, q, "load", tq, ARGS(I32(100))), 0xABC);
        assert_int_equal(eng_memory_data(mem)[100], 0xBC);
        call_u32(x, q, "store", tq, ARGS(I32(PG - 4), I32(5)));
        assert_int_equal(call_u32(x, pi, "load", tp, ARGS(I32(PG - 4))), 5);
        res_t r = call_f(x, export_func(pi, "load", tp), ARGS(I32(PG)));
        expect_trap_r("P.load", &r, ENG_TRAP_MEMORY_OOB,
                      "out of bounds memory access in function 2 (load)");
        /* Q grows it; P sees the new size */
        assert_int_equal(call_u32(x, q, "grow", tq, ARGS(I32(1))), 1);
        assert_int_equal(call_u32(x, pi, "size", tp, NULL), 2);
        assert_int_equal(call_u32(x, pi, "load", tp, ARGS(I32(2 * PG - 4))), 0);
        /* ... also when Q grows it in the middle of a call of P */
        assert_int_equal(call_u32(x, pi, "grow_via_q_then_load", tp, ARGS(I32(3 * PG - 4))), 0);
        assert_int_equal(call_u32(x, q, "size", tq, NULL), 3);
        /* ... and when the host grows it */
        assert_int_equal(eng_memory_grow(mem, 1), 3);
        call_u32(x, q, "store", tq, ARGS(I32(4 * PG - 4), I32(0x77)));
        assert_int_equal(call_u32(x, pi, "load", tp, ARGS(I32(4 * PG - 4))), 0x77);
        r = call_f(x, export_func(q, "load", tq), ARGS(I32(4 * PG - 3)));
        expect_trap_r("Q.load", &r, ENG_TRAP_MEMORY_OOB, "out of bounds memory access in function 2");
        eng_store_free(s);
        eng_exec_free(x);
    }
}

static void test_memory_none(void **state)
{
    (void)state;
    mod_t *m = mod_new("(module\n"
                       "  (func (export \"add\") (param i64 i64) (result i64)\n"
                       "    (i64.add (local.get 0) (local.get 1)))\n"
                       "  (func (export \"sqrt\") (param f64) (result f64) (f64.sqrt (local.get 0))))\n");
    pair_t p;
    pair_open(&p, m);
    for (int t = 0; t < 2; t++) assert_null(eng_instance_memory(p.t[t].i));
    expect_i64(&p, "add", ARGS(I64(0x7FFFFFFFFFFFFFFFull), I64(2)), 0x8000000000000001ull);
    res_t r = expect_ok(&p, "sqrt", ARGS(F64(2.0)));
    assert_true(r.v[0].f64 == sqrt(2.0));
    pair_close(&p);
    mod_free(m);
}

/* ==== 5. call_indirect's type check ======================================= */

/* eng_functype_key: every type of up to three values (params and results
 * over all seven value types, split every way) has a key of its own, a
 * type equal to another has its key, and a type too large has none. */
static void test_functype_keys(void **state)
{
    (void)state;
    static const uint8_t vt[7] = {ENG_I32, ENG_I64, ENG_F32, ENG_F64, ENG_V128, ENG_FUNCREF,
                                  ENG_EXTERNREF};
    enum { MAXN = 3, NTYPES = 1 + 2 * 7 + 3 * 49 + 4 * 343 };
    static uint64_t keys[NTYPES];
    unsigned nk = 0;
    uint8_t types[ENG_FUNCTYPE_KEY_MAX + 1];
    for (unsigned n = 0; n <= MAXN; n++) {
        unsigned combos = 1;
        for (unsigned i = 0; i < n; i++) combos *= 7;
        for (unsigned c = 0; c < combos; c++) {
            for (unsigned i = 0, v = c; i < n; i++, v /= 7) types[i] = vt[v % 7];
            for (unsigned np = 0; np <= n; np++) {
                eng_functype_t t = {.nparams = np, .nresults = n - np, .types = types};
                uint64_t k = eng_functype_key(&t);
                assert_true(k != 0);
                uint8_t copy[MAXN + 1];
                memcpy(copy, types, n);
                eng_functype_t same = {.nparams = np, .nresults = n - np, .types = copy};
                assert_true(eng_functype_key(&same) == k);
                for (unsigned j = 0; j < nk; j++)
                    if (keys[j] == k) fail_msg("two types share the key 0x%llx", (unsigned long long)k);
                keys[nk++] = k;
            }
        }
    }
    assert_int_equal(nk, NTYPES);
    memset(types, ENG_EXTERNREF, sizeof types);
    eng_functype_t most = {.nparams = 9, .nresults = ENG_FUNCTYPE_KEY_MAX - 9, .types = types};
    assert_true(eng_functype_key(&most) != 0);
    eng_functype_t all_params = {.nparams = ENG_FUNCTYPE_KEY_MAX, .nresults = 0, .types = types};
    assert_true(eng_functype_key(&all_params) != 0);
    assert_true(eng_functype_key(&all_params) != eng_functype_key(&most));
    eng_functype_t big = {.nparams = 10, .nresults = ENG_FUNCTYPE_KEY_MAX - 9, .types = types};
    assert_true(eng_functype_key(&big) == 0);
}

/* call_indirect to functions whose types differ from the expected one
 * only in the split of params and results, in one value's type, or in
 * being too large for a key (compared by structure), and to a host
 * function in the table. */
static const char wat_ci_types[] =
    "(module\n"
    "  (import \"env\" \"mix\" (func $mix (param i32 i64 f32 f64) (result f64 f32 i64 i32)))\n"
    "  (type $ii (func (param i32) (result i32)))\n"
    "  (type $iin (func (param i32 i32)))\n"
    "  (type $ff (func (param f32) (result i32)))\n"
    "  (type $big (func (param i32 i32 i32 i32 i32 i32 i32 i32 i32 i32 i32 i32 i32 i32 i32 i32\n"
    "                      i32 i32 i32) (result i32)))\n"
    "  (type $big2 (func (param i64 i32 i32 i32 i32 i32 i32 i32 i32 i32 i32 i32 i32 i32 i32 i32\n"
    "                       i32 i32 i32) (result i32)))\n"
    "  (type $mixt (func (param i32 i64 f32 f64) (result f64 f32 i64 i32)))\n"
    "  (type $mixr (func (param i32 i64 f32 f64) (result f64 f32 i64 i64)))\n"
    "  (table 8 funcref)\n"
    "  (elem (i32.const 0) $inc $pair $neg $sum $sum2 $mix)\n"
    "  (func $inc (type $ii) (i32.add (local.get 0) (i32.const 1)))\n"
    "  (func $pair (type $iin))\n"
    "  (func $neg (type $ff) (i32.trunc_f32_s (f32.neg (local.get 0))))\n"
    "  (func $sum (type $big)\n"
    "    (i32.add (local.get 0) (i32.add (local.get 9) (local.get 18))))\n"
    "  (func $sum2 (type $big2) (i32.wrap_i64 (local.get 0)))\n"
    "  (func (export \"ii\") (param i32 i32) (result i32)\n"
    "    (call_indirect (type $ii) (local.get 1) (local.get 0)))\n"
    "  (func (export \"big\") (param i32) (result i32)\n"
    "    (call_indirect (type $big) (i32.const 1) (i32.const 0) (i32.const 0) (i32.const 0)\n"
    "      (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 20)\n"
    "      (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0)\n"
    "      (i32.const 0) (i32.const 0) (i32.const 300) (local.get 0)))\n"
    "  (func (export \"mix\") (param i32) (result i32)\n"
    "    (call_indirect (type $mixt) (i32.const 5) (i64.const 6) (f32.const 7) (f64.const 8)\n"
    "      (local.get 0))\n"
    "    (local.set 0) (drop) (drop) (drop) (local.get 0))\n"
    "  (func (export \"mixr\") (param i32) (result f64 f32 i64 i64)\n"
    "    (call_indirect (type $mixr) (i32.const 5) (i64.const 6) (f32.const 7) (f64.const 8)\n"
    "      (local.get 0))))\n";

static void test_call_indirect_types(void **state)
{
    (void)state;
    pair_t p;
    host_env_t env[2];
    memset(env, 0, sizeof env);
    pair_open_env(&p, mod_shared(wat_ci_types), host_defs, 5, &env[INTERP], &env[NATIVE]);
    const char *mismatch = "indirect call type mismatch in function";
    expect_i32(&p, "ii", ARGS(I32(0), I32(41)), 42);
    expect_trap(&p, "ii", ARGS(I32(1), I32(41)), ENG_TRAP_INDIRECT_TYPE, mismatch); /* (ii) */
    expect_trap(&p, "ii", ARGS(I32(2), I32(41)), ENG_TRAP_INDIRECT_TYPE, mismatch); /* (f)i */
    expect_trap(&p, "ii", ARGS(I32(3), I32(41)), ENG_TRAP_INDIRECT_TYPE, mismatch); /* large */
    expect_trap(&p, "ii", ARGS(I32(5), I32(41)), ENG_TRAP_INDIRECT_TYPE, mismatch); /* host */
    expect_i32(&p, "big", ARGS(I32(3)), 321);
    expect_trap(&p, "big", ARGS(I32(4)), ENG_TRAP_INDIRECT_TYPE, mismatch); /* large, one type off */
    expect_trap(&p, "big", ARGS(I32(0)), ENG_TRAP_INDIRECT_TYPE, mismatch);
    expect_trap(&p, "big", ARGS(I32(5)), ENG_TRAP_INDIRECT_TYPE, mismatch);
    expect_i32(&p, "mix", ARGS(I32(5)), 5);
    for (int t = 0; t < 2; t++) {
        assert_int_equal(env[t].seen[0].i32, 5);
        assert_int_equal(env[t].seen[1].i64, 6);
    }
    expect_trap(&p, "mix", ARGS(I32(0)), ENG_TRAP_INDIRECT_TYPE, mismatch);
    expect_trap(&p, "mixr", ARGS(I32(5)), ENG_TRAP_INDIRECT_TYPE, mismatch); /* last result */
    expect_trap(&p, "ii", ARGS(I32(6), I32(0)), ENG_TRAP_NULL_REF, "uninitialized element in function");
    pair_close(&p);
}

/* ==== main ================================================================ */

static int group_setup(void **state)
{
    (void)state;
    return native_pair_setup("test_native_host");
}

static int group_teardown(void **state)
{
    (void)state;
    return native_pair_teardown();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_host_args_and_results),
        cmocka_unit_test(test_host_trap_and_exit),
        cmocka_unit_test(test_host_reentry),
        cmocka_unit_test(test_host_reentry_depth),
        cmocka_unit_test(test_host_reentry_unbounded_both_tiers),
        cmocka_unit_test(test_mixed_tiers),
        cmocka_unit_test(test_multi_value),
        cmocka_unit_test(test_memory_grow_seen_by_caller),
        cmocka_unit_test(test_memory_shared_import),
        cmocka_unit_test(test_memory_none),
        cmocka_unit_test(test_functype_keys),
        cmocka_unit_test(test_call_indirect_types),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
