/*
 * test_native_edges.c — the native tier against the interpreter on what
 * modules rarely do:
 *
 *   1. module edge cases: no functions, hundreds of params and locals,
 *      br_table, loops and ifs with params, select, globals, table ops
 *   2. addresses that wrap around 4 GiB
 *   3. SIMD
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

#include <uv.h>

#define PG ENG_PAGE_BYTES


/* ==== 1. Module edge cases ================================================ */

static void test_edge_no_functions(void **state)
{
    (void)state;
    static const char *wats[] = {
        "(module)",
        "(module (memory 1) (table 2 funcref) (global (export \"g\") i32 (i32.const 3))\n"
        "  (data (i32.const 0) \"x\"))",
    };
    for (int k = 0; k < 2; k++) {
        mod_t *m = mod_new(wats[k]);
        pair_t p;
        pair_open(&p, m);
        if (k == 1)
            for (int t = 0; t < 2; t++) {
                assert_int_equal(eng_global_get(export_global(p.t[t].i, "g")).i32, 3);
                assert_int_equal(mem_of(&p.t[t])[0], 'x');
            }
        pair_close(&p);
        mod_free(m);
    }
}

#define MANY_PARAMS 200
#define MANY_LOCALS 300
#define WIDE_PARAMS 60

static const char *const vt_name[4] = {"i32", "i64", "f32", "f64"};

/* many(p0..p199) with 300 more locals returns (f64 sum of conv(p_k) *
 * (k + 1), i64 mix of locals computed from p0 and p1); call_many passes
 * 200 arguments from wasm; call_wide calls a host function of 60. */
static char *wat_many(void)
{
    sbuf_t b = {0};
    sb_printf(&b, "(module\n  (import \"env\" \"wide\" (func $wide (param");
    for (int k = 0; k < WIDE_PARAMS; k++) sb_printf(&b, " %s", vt_name[k % 4]);
    sb_printf(&b, ") (result f64)))\n  (func $many (export \"many\") (param");
    for (int k = 0; k < MANY_PARAMS; k++) sb_printf(&b, " %s", vt_name[k % 4]);
    sb_printf(&b, ") (result f64 i64)\n    (local");
    for (int k = 0; k < MANY_LOCALS; k++) sb_printf(&b, " i64");
    sb_printf(&b, ")\n");
    for (int j = 0; j < MANY_LOCALS; j++)
        sb_printf(&b, "    (local.set %d (i64.add (i64.mul (local.get 1) (i64.const %d))"
                      " (i64.extend_i32_u (local.get 0))))\n",
                  MANY_PARAMS + j, j + 1);
    sb_printf(&b, "    (f64.const 0)\n");
    static const char *const conv[4] = {"f64.convert_i32_s", "f64.convert_i64_s", "f64.promote_f32",
                                        "f64.abs (f64.neg"};
    for (int k = 0; k < MANY_PARAMS; k++)
        sb_printf(&b, "    (f64.add (f64.mul (%s (local.get %d))%s (f64.const %d)))\n", conv[k % 4], k,
                  k % 4 == 3 ? ")" : "", k + 1);
    sb_printf(&b, "    (i64.const 0)\n");
    for (int j = 0; j < MANY_LOCALS; j++)
        sb_printf(&b, "    (i64.rotl (i64.xor (local.get %d)) (i64.const 5))\n", MANY_PARAMS + j);
    sb_printf(&b, "  )\n  (func (export \"call_many\") (param i32) (result f64 i64)\n    (call $many");
    for (int k = 0; k < MANY_PARAMS; k++) {
        switch (k % 4) {
        case 0: sb_printf(&b, " (i32.add (local.get 0) (i32.const %d))", k); break;
        case 1: sb_printf(&b, " (i64.const %d)", k * 1000003); break;
        case 2: sb_printf(&b, " (f32.const %d.25)", k); break;
        default: sb_printf(&b, " (f64.const -%d.5)", k); break;
        }
    }
    sb_printf(&b, "))\n  (func (export \"call_wide\") (param i32) (result f64)\n    (call $wide");
    for (int k = 0; k < WIDE_PARAMS; k++) {
        switch (k % 4) {
        case 0: sb_printf(&b, " (i32.add (local.get 0) (i32.const %d))", k); break;
        case 1: sb_printf(&b, " (i64.const -%d)", k); break;
        case 2: sb_printf(&b, " (f32.const %d.5)", k); break;
        default: sb_printf(&b, " (f64.const %d.125)", k); break;
        }
    }
    sb_printf(&b, ")))\n");
    return b.p;
}

static double conv_f64(int k, eng_val_t v)
{
    switch (k % 4) {
    case 0: return (double)(int32_t)v.i32;
    case 1: return (double)(int64_t)v.i64;
    case 2: return (double)v.f32;
    default: return fabs(v.f64);
    }
}

/* What many() returns for args, computed in C in the same order. */
static void many_expected(const eng_val_t *args, double *sum, uint64_t *mix)
{
    double s = 0;
    for (int k = 0; k < MANY_PARAMS; k++) s = s + conv_f64(k, args[k]) * (double)(k + 1);
    uint64_t acc = 0;
    for (int j = 0; j < MANY_LOCALS; j++) {
        uint64_t l = args[1].i64 * (uint64_t)(j + 1) + (uint64_t)args[0].i32;
        acc ^= l;
        acc = (acc << 5) | (acc >> 59);
    }
    *sum = s;
    *mix = acc;
}

static eng_trap_t h_wide(eng_host_call_t *call, eng_val_t *args)
{
    (void)call;
    double s = 0;
    for (int k = 0; k < WIDE_PARAMS; k++) s += conv_f64(k, args[k]) * (k + 1);
    args[0].f64 = s;
    return ENG_OK;
}

static void test_edge_many_params_and_locals(void **state)
{
    (void)state;
    char *wat = wat_many();
    mod_t *m = mod_new(wat);
    free(wat);
    char sig[WIDE_PARAMS + 8] = "(";
    for (int k = 0; k < WIDE_PARAMS; k++) strcat(sig, (const char *[]){"i", "I", "f", "F"}[k % 4]);
    strcat(sig, ")F");
    const host_def_t hosts[] = {{"wide", sig, h_wide}};
    pair_t p;
    pair_open_env(&p, m, hosts, 1, NULL, NULL);
    /* from C */
    eng_val_t args[MANY_PARAMS];
    for (int k = 0; k < MANY_PARAMS; k++) {
        switch (k % 4) {
        case 0: args[k].i32 = (uint32_t)(k * 7 - 300); break;
        case 1: args[k].i64 = (uint64_t)k * 0x100000001ull; break;
        case 2: args[k].i64 = 0; args[k].f32 = (float)k / 8; break;
        default: args[k].f64 = -(double)k * 1.5; break;
        }
    }
    double sum;
    uint64_t mix;
    many_expected(args, &sum, &mix);
    res_t r = expect_ok(&p, "many", args);
    if (r.v[0].f64 != sum || r.v[1].i64 != mix)
        fail_msg("many: (%.17g, 0x%llx), C computes (%.17g, 0x%llx)", r.v[0].f64,
                 (unsigned long long)r.v[1].i64, sum, (unsigned long long)mix);
    /* from wasm */
    for (int k = 0; k < MANY_PARAMS; k++) {
        memset(&args[k], 0, sizeof args[k]);
        switch (k % 4) {
        case 0: args[k].i32 = (uint32_t)(9 + k); break;
        case 1: args[k].i64 = (uint64_t)k * 1000003; break;
        case 2: args[k].f32 = (float)k + 0.25f; break;
        default: args[k].f64 = -((double)k + 0.5); break;
        }
    }
    many_expected(args, &sum, &mix);
    r = expect_ok(&p, "call_many", ARGS(I32(9)));
    if (r.v[0].f64 != sum || r.v[1].i64 != mix)
        fail_msg("call_many: (%.17g, 0x%llx), C computes (%.17g, 0x%llx)", r.v[0].f64,
                 (unsigned long long)r.v[1].i64, sum, (unsigned long long)mix);
    /* a host function of 60 parameters */
    double want = 0;
    for (int k = 0; k < WIDE_PARAMS; k++) {
        eng_val_t v = {.i64 = 0};
        switch (k % 4) {
        case 0: v.i32 = (uint32_t)(4 + k); break;
        case 1: v.i64 = (uint64_t)-k; break;
        case 2: v.f32 = (float)k + 0.5f; break;
        default: v.f64 = k + 0.125; break;
        }
        want += conv_f64(k, v) * (k + 1);
    }
    r = expect_ok(&p, "call_wide", ARGS(I32(4)));
    if (r.v[0].f64 != want) fail_msg("call_wide: %.17g, expected %.17g", r.v[0].f64, want);
    pair_close(&p);
    mod_free(m);
}

#define BR_TARGETS 300

/* br_table over BR_TARGETS labels, each carrying a value out and adding
 * its own number; and a small one carrying two values. */
static char *wat_br_table(void)
{
    sbuf_t b = {0};
    sb_printf(&b, "(module\n  (func (export \"brt\") (param i32) (result i32)\n"
                  "    block $out (result i32)\n");
    for (int k = BR_TARGETS - 1; k >= 0; k--) sb_printf(&b, "    block $b%d (result i32)\n", k);
    sb_printf(&b, "    i32.const 7\n    local.get 0\n    br_table");
    for (int k = 0; k < BR_TARGETS; k++) sb_printf(&b, " $b%d", k);
    sb_printf(&b, "\n");
    for (int k = 0; k < BR_TARGETS; k++)
        sb_printf(&b, "    end\n    i32.const %d\n    i32.add\n    br $out\n", 1000 + k);
    sb_printf(&b, "    end)\n");
    sb_printf(&b,
              "  (func (export \"brt_mv\") (param i32) (result i32 i64) (local $x i32) (local $y i64)\n"
              "    block $out (result i32 i64)\n"
              "      block $b2 (result i32 i64)\n"
              "        block $b1 (result i32 i64)\n"
              "          block $b0 (result i32 i64)\n"
              "            i32.const 5\n            i64.const 50\n            local.get 0\n"
              "            br_table $b0 $b1 $b2 $out\n"
              "          end\n"
              "          local.set $y local.set $x\n"
              "          local.get $x i32.const 100 i32.add local.get $y i64.const 1000 i64.add\n"
              "          br $out\n"
              "        end\n"
              "        local.set $y local.set $x\n"
              "        local.get $x i32.const 200 i32.add local.get $y i64.const 2000 i64.add\n"
              "        br $out\n"
              "      end\n"
              "      local.set $y local.set $x\n"
              "      local.get $x i32.const 300 i32.add local.get $y i64.const 3000 i64.add\n"
              "    end))\n");
    return b.p;
}

static void test_edge_br_table(void **state)
{
    (void)state;
    char *wat = wat_br_table();
    mod_t *m = mod_new(wat);
    free(wat);
    pair_t p;
    pair_open(&p, m);
    for (uint32_t i = 0; i < BR_TARGETS + 3; i++) {
        uint32_t k = i < BR_TARGETS - 1 ? i : BR_TARGETS - 1; /* the last label is the default */
        expect_i32(&p, "brt", ARGS(I32(i)), 7 + 1000 + k);
    }
    expect_i32(&p, "brt", ARGS(I32(0xFFFFFFFFu)), 7 + 1000 + BR_TARGETS - 1);
    static const uint32_t want32[] = {105, 205, 305, 5, 5};
    static const uint64_t want64[] = {1050, 2050, 3050, 50, 50};
    for (uint32_t i = 0; i < 5; i++) {
        res_t r = expect_ok(&p, "brt_mv", ARGS(I32(i)));
        assert_int_equal(r.v[0].i32, want32[i]);
        assert_int_equal(r.v[1].i64, want64[i]);
    }
    pair_close(&p);
    mod_free(m);
}

static const char wat_blocks[] =
    "(module\n"
    "  (func (export \"fib_loop\") (param $n i32) (result i64)\n"
    "    (local $i i32) (local $a i64) (local $b i64)\n"
    "    i64.const 0\n"
    "    i64.const 1\n"
    "    loop $l (param i64 i64) (result i64 i64)\n"
    "      local.set $b\n"
    "      local.set $a\n"
    "      local.get $b\n"
    "      local.get $a\n"
    "      local.get $b\n"
    "      i64.add\n"
    "      local.get $i\n"
    "      i32.const 1\n"
    "      i32.add\n"
    "      local.tee $i\n"
    "      local.get $n\n"
    "      i32.lt_u\n"
    "      br_if $l\n"
    "    end\n"
    "    drop)\n"
    "  (func (export \"if_params\") (param i32 i32) (result i32)\n"
    "    local.get 1\n"
    "    local.get 0\n"
    "    if (param i32) (result i32)\n"
    "      i32.const 10\n"
    "      i32.add\n"
    "    else\n"
    "      i32.const 3\n"
    "      i32.mul\n"
    "    end)\n"
    "  (func (export \"block_params\") (param i64) (result i64 i64)\n"
    "    local.get 0\n"
    "    block (param i64) (result i64 i64)\n"
    "      i64.const 1\n"
    "      i64.add\n"
    "      local.get 0\n"
    "      i64.const 2\n"
    "      i64.mul\n"
    "    end)\n"
    "  (elem declare func $seven)\n"
    "  (func $seven (result i32) (i32.const 7))\n"
    "  (func (export \"sel_i32\") (param i32 i32 i32) (result i32)\n"
    "    (select (local.get 0) (local.get 1) (local.get 2)))\n"
    "  (func (export \"sel_i32_typed\") (param i32 i32 i32) (result i32)\n"
    "    (select (result i32) (local.get 0) (local.get 1) (local.get 2)))\n"
    "  (func (export \"sel_i64\") (param i64 i64 i32) (result i64)\n"
    "    (select (local.get 0) (local.get 1) (local.get 2)))\n"
    "  (func (export \"sel_f32\") (param f32 f32 i32) (result f32)\n"
    "    (select (local.get 0) (local.get 1) (local.get 2)))\n"
    "  (func (export \"sel_f64\") (param f64 f64 i32) (result f64)\n"
    "    (select (local.get 0) (local.get 1) (local.get 2)))\n"
    "  (func (export \"sel_ext\") (param externref externref i32) (result externref)\n"
    "    (select (result externref) (local.get 0) (local.get 1) (local.get 2)))\n"
    "  (func (export \"sel_func\") (param i32) (result funcref)\n"
    "    (select (result funcref) (ref.func $seven) (ref.null func) (local.get 0))))\n";

static void test_edge_blocks_and_select(void **state)
{
    (void)state;
    pair_t p;
    pair_open(&p, mod_shared(wat_blocks));
    expect_i64(&p, "fib_loop", ARGS(I32(10)), 55);
    expect_i64(&p, "fib_loop", ARGS(I32(90)), 2880067194370816120ull);
    expect_i32(&p, "if_params", ARGS(I32(1), I32(6)), 16); /* then: 6 + 10 */
    expect_i32(&p, "if_params", ARGS(I32(0), I32(6)), 18); /* else: 6 * 3 */
    res_t r = expect_ok(&p, "block_params", ARGS(I64(20)));
    assert_true(r.v[0].i64 == 21 && r.v[1].i64 == 40);
    for (uint32_t c = 0; c < 3; c++) {
        bool first = c != 0;
        expect_i32(&p, "sel_i32", ARGS(I32(11), I32(22), I32(c * 0x40000000u)), first ? 11 : 22);
        expect_i32(&p, "sel_i32_typed", ARGS(I32(11), I32(22), I32(c)), first ? 11 : 22);
        expect_i64(&p, "sel_i64", ARGS(I64(-1), I64(1ull << 63), I32(c)), first ? (uint64_t)-1 : 1ull << 63);
        r = expect_ok(&p, "sel_f32", ARGS(F32(f32_bits(0x7FA00001u)), F32(f32_bits(0xFFC00002u)), I32(c)));
        assert_int_equal(r.v[0].i32, first ? 0x7FA00001u : 0xFFC00002u);
        r = expect_ok(&p, "sel_f64", ARGS(F64(f64_bits(0x7FF0000000000003ull)), F64(-0.0), I32(c)));
        assert_int_equal(r.v[0].i64, first ? 0x7FF0000000000003ull : 0x8000000000000000ull);
    }
    int a = 1, b = 2;
    for (int t = 0; t < 2; t++) {
        res_t re = call_side(&p.t[t], "sel_ext", ARGS(REF(&a), REF(&b), I32(1)));
        assert_ptr_equal(re.v[0].ref, &a);
        re = call_side(&p.t[t], "sel_ext", ARGS(REF(&a), REF(NULL), I32(0)));
        assert_null(re.v[0].ref);
        re = call_side(&p.t[t], "sel_func", ARGS(I32(0)));
        assert_null(re.v[0].ref);
        re = call_side(&p.t[t], "sel_func", ARGS(I32(9)));
        eng_func_t *seven = re.v[0].ref;
        assert_non_null(seven);
        assert_int_equal(is_native(seven), t == NATIVE);
        assert_int_equal(call_f(p.t[t].x, seven, NULL).v[0].i32, 7);
    }
    pair_close(&p);
}

static const char wat_globals[] =
    "(module\n"
    "  (import \"env\" \"gi\" (global $gi (mut i64)))\n"
    "  (import \"env\" \"gf\" (global $gf (mut f64)))\n"
    "  (import \"env\" \"gc\" (global $gc i32))\n"
    "  (import \"env\" \"tick\" (func $tick))\n"
    "  (global $ge (export \"ge\") (mut i32) (i32.const 1))\n"
    "  (global $gd i32 (global.get $gc))\n"
    "  (memory (export \"mem\") 1)\n"
    "  (func (export \"read\") (result i64 f64 i32 i32 i32)\n"
    "    (global.get $gi) (global.get $gf) (global.get $gc) (global.get $ge) (global.get $gd))\n"
    "  (func (export \"write\") (param i64 f64 i32)\n"
    "    (global.set $gi (local.get 0)) (global.set $gf (local.get 1)) (global.set $ge (local.get 2)))\n"
    "  (func (export \"sum_ge\") (param i32) (result i32) (local $acc i32) (local $i i32)\n"
    "    (loop $l\n"
    "      (local.set $acc (i32.add (local.get $acc) (global.get $ge)))\n"
    "      (call $tick)\n"
    "      (local.set $i (i32.add (local.get $i) (i32.const 1)))\n"
    "      (br_if $l (i32.lt_u (local.get $i) (local.get 0))))\n"
    "    (local.get $acc))\n"
    "  (func (export \"sum_mem\") (param i32) (result i32) (local $acc i32) (local $i i32)\n"
    "    (loop $l\n"
    "      (local.set $acc (i32.add (local.get $acc) (i32.load (i32.const 0))))\n"
    "      (call $tick)\n"
    "      (local.set $i (i32.add (local.get $i) (i32.const 1)))\n"
    "      (br_if $l (i32.lt_u (local.get $i) (local.get 0))))\n"
    "    (local.get $acc)))\n";

/* tick: the host changes the guest's global ge (+10) and memory word 0
 * (+100) behind its back, in the middle of its loops. */
typedef struct tick_env {
    eng_global_t *ge;
    uint8_t *mem;
} tick_env_t;

static eng_trap_t h_tick(eng_host_call_t *call, eng_val_t *args)
{
    (void)args;
    tick_env_t *e = call->env;
    eng_val_t v = eng_global_get(e->ge);
    v.i32 += 10;
    eng_global_set(e->ge, v);
    uint32_t w;
    memcpy(&w, e->mem, 4);
    w += 100;
    memcpy(e->mem, &w, 4);
    return ENG_OK;
}

static void test_edge_globals(void **state)
{
    (void)state;
    mod_t *m = mod_shared(wat_globals);
    static const host_def_t hosts[] = {{"tick", "()", h_tick}};
    pair_t p = {.m = m};
    tick_env_t env[2];
    eng_global_t *gi[2], *gf[2];
    for (int t = 0; t < 2; t++) {
        eng_store_t *s = eng_store_new();
        gi[t] = eng_global_new(s, ENG_I64, true, (eng_val_t){.i64 = 0x1122334455667788ull});
        gf[t] = eng_global_new(s, ENG_F64, true, (eng_val_t){.i64 = 0x7FF0000000000BADull});
        eng_global_t *gc = eng_global_new(s, ENG_I32, false, (eng_val_t){.i32 = 7});
        link_t links[3] = {{"env", "gi", {.kind = ENG_EXTERN_GLOBAL, .u.global = gi[t]}},
                           {"env", "gf", {.kind = ENG_EXTERN_GLOBAL, .u.global = gf[t]}},
                           {"env", "gc", {.kind = ENG_EXTERN_GLOBAL, .u.global = gc}}};
        side_t *sd = &p.t[t];
        sd->tier = t;
        sd->s = s;
        sd->x = eng_exec_new(0);
        sd->env = &env[t];
        eng_extern_t imp[4];
        resolve(m->tier[t], s, hosts, 1, &env[t], links, 3, imp);
        sd->i = instantiate(s, m->tier[t], imp, sd->x);
        env[t].ge = export_global(sd->i, "ge");
        env[t].mem = mem_of(sd);
    }
    res_t r = expect_ok(&p, "read", NULL);
    assert_int_equal(r.v[0].i64, 0x1122334455667788ull);
    assert_int_equal(r.v[1].i64, 0x7FF0000000000BADull);
    assert_true(r.v[2].i32 == 7 && r.v[3].i32 == 1 && r.v[4].i32 == 7);
    /* changed from C, read by the guest */
    for (int t = 0; t < 2; t++) {
        eng_global_set(gi[t], (eng_val_t){.i64 = (uint64_t)-5});
        eng_global_set(gf[t], (eng_val_t){.i64 = 0xFFF4000000000001ull});
        eng_global_set(env[t].ge, (eng_val_t){.i32 = 5});
    }
    r = expect_ok(&p, "read", NULL);
    assert_int_equal(r.v[0].i64, (uint64_t)-5);
    assert_int_equal(r.v[1].i64, 0xFFF4000000000001ull);
    assert_int_equal(r.v[3].i32, 5);
    /* written by the guest, read from C */
    expect_ok(&p, "write", ARGS(I64(99), F64(f64_bits(0x7FF8000000000123ull)), I32(-3)));
    for (int t = 0; t < 2; t++) {
        assert_int_equal(eng_global_get(gi[t]).i64, 99);
        assert_int_equal(eng_global_get(gf[t]).i64, 0x7FF8000000000123ull);
        assert_int_equal(eng_global_get(env[t].ge).i32, (uint32_t)-3);
        eng_global_set(env[t].ge, (eng_val_t){.i32 = 5});
    }
    /* a host call changes the global and memory mid-loop: the guest reads
     * the new values after each call, it does not keep old ones */
    expect_i32(&p, "sum_ge", ARGS(I32(5)), 5 + 15 + 25 + 35 + 45);
    for (int t = 0; t < 2; t++) memset(env[t].mem, 0, 4); /* sum_ge's ticks wrote it too */
    expect_i32(&p, "sum_mem", ARGS(I32(5)), 0 + 100 + 200 + 300 + 400);
    pair_close(&p);
}

static const char wat_tables[] =
    "(module\n"
    "  (type $r (func (result i32)))\n"
    "  (table $t (export \"t\") 2 10 funcref)\n"
    "  (table $e 1 externref)\n"
    "  (elem $pe func $a $b $c)\n"
    "  (elem declare func $d)\n"
    "  (data $pd \"xyz\")\n"
    "  (memory 1)\n"
    "  (func $a (type $r) (i32.const 1))\n"
    "  (func $b (type $r) (i32.const 2))\n"
    "  (func $c (type $r) (i32.const 3))\n"
    "  (func $d (type $r) (i32.const 4))\n"
    "  (func (export \"is_null\") (param i32) (result i32) (ref.is_null (table.get $t (local.get 0))))\n"
    "  (func (export \"rf_null\") (result i32 i32)\n"
    "    (ref.is_null (ref.func $d)) (ref.is_null (ref.null func)))\n"
    "  (func (export \"size\") (result i32) (table.size $t))\n"
    "  (func (export \"grow\") (param i32) (result i32) (table.grow $t (ref.func $d) (local.get 0)))\n"
    "  (func (export \"grow_null\") (param i32) (result i32) (table.grow $t (ref.null func) (local.get 0)))\n"
    "  (func (export \"fill\") (param i32 i32) (table.fill $t (local.get 0) (ref.func $b) (local.get 1)))\n"
    "  (func (export \"copy\") (param i32 i32 i32)\n"
    "    (table.copy $t $t (local.get 0) (local.get 1) (local.get 2)))\n"
    "  (func (export \"init\") (param i32 i32 i32)\n"
    "    (table.init $t $pe (local.get 0) (local.get 1) (local.get 2)))\n"
    "  (func (export \"edrop\") (elem.drop $pe))\n"
    "  (func (export \"ci\") (param i32) (result i32) (call_indirect $t (type $r) (local.get 0)))\n"
    "  (func (export \"minit\") (param i32 i32 i32)\n"
    "    (memory.init $pd (local.get 0) (local.get 1) (local.get 2)))\n"
    "  (func (export \"ddrop\") (data.drop $pd))\n"
    "  (func (export \"load8\") (param i32) (result i32) (i32.load8_u (local.get 0)))\n"
    "  (func (export \"ext_grow\") (param externref i32) (result i32)\n"
    "    (table.grow $e (local.get 0) (local.get 1)))\n"
    "  (func (export \"ext_get\") (param i32) (result externref) (table.get $e (local.get 0)))\n"
    "  (func (export \"ext_size\") (result i32) (table.size $e)))\n";

/* The table's contents as the guest sees them (0 for null). */
static void expect_table(pair_t *p, const char *want)
{
    size_t n = strlen(want);
    expect_i32(p, "size", NULL, (uint32_t)n);
    for (size_t k = 0; k < n; k++) {
        if (want[k] == '0') {
            expect_i32(p, "is_null", ARGS(I32(k)), 1);
            expect_trap(p, "ci", ARGS(I32(k)), ENG_TRAP_NULL_REF, "uninitialized element");
        } else {
            expect_i32(p, "ci", ARGS(I32(k)), (uint32_t)(want[k] - '0'));
        }
    }
}

static void test_edge_table_ops(void **state)
{
    (void)state;
    pair_t p;
    pair_open(&p, mod_shared(wat_tables));
    const char *toob = "out of bounds table access in function";
    res_t r = expect_ok(&p, "rf_null", NULL);
    assert_true(r.v[0].i32 == 0 && r.v[1].i32 == 1);
    expect_table(&p, "00");
    expect_ok(&p, "init", ARGS(I32(0), I32(0), I32(2)));
    expect_table(&p, "12");
    expect_trap(&p, "init", ARGS(I32(1), I32(1), I32(2)), ENG_TRAP_TABLE_OOB, toob);
    expect_trap(&p, "init", ARGS(I32(0), I32(2), I32(2)), ENG_TRAP_TABLE_OOB, toob);
    expect_table(&p, "12");
    expect_i32(&p, "grow", ARGS(I32(3)), 2);
    expect_table(&p, "12444");
    expect_i32(&p, "grow", ARGS(I32(6)), (uint32_t)-1); /* past the maximum, 10 */
    expect_i32(&p, "grow_null", ARGS(I32(0)), 5);
    expect_ok(&p, "fill", ARGS(I32(2), I32(2)));
    expect_table(&p, "12224");
    expect_trap(&p, "fill", ARGS(I32(4), I32(2)), ENG_TRAP_TABLE_OOB, toob);
    expect_table(&p, "12224");
    expect_ok(&p, "copy", ARGS(I32(1), I32(3), I32(2)));
    expect_table(&p, "12424");
    expect_ok(&p, "copy", ARGS(I32(1), I32(0), I32(4))); /* overlapping */
    expect_table(&p, "11242");
    expect_trap(&p, "copy", ARGS(I32(3), I32(0), I32(3)), ENG_TRAP_TABLE_OOB, toob);
    expect_trap(&p, "copy", ARGS(I32(0), I32(3), I32(3)), ENG_TRAP_TABLE_OOB, toob);
    expect_ok(&p, "copy", ARGS(I32(5), I32(5), I32(0)));
    expect_i32(&p, "grow_null", ARGS(I32(1)), 5);
    expect_table(&p, "112420");
    expect_ok(&p, "edrop", NULL);
    expect_ok(&p, "init", ARGS(I32(0), I32(0), I32(0)));
    expect_trap(&p, "init", ARGS(I32(0), I32(0), I32(1)), ENG_TRAP_TABLE_OOB, toob);
    expect_table(&p, "112420");
    /* passive data */
    expect_ok(&p, "minit", ARGS(I32(10), I32(0), I32(3)));
    expect_i32(&p, "load8", ARGS(I32(12)), 'z');
    expect_ok(&p, "ddrop", NULL);
    expect_ok(&p, "minit", ARGS(I32(0), I32(0), I32(0)));
    expect_trap(&p, "minit", ARGS(I32(0), I32(0), I32(1)), ENG_TRAP_MEMORY_OOB,
                "out of bounds memory access in function");
    /* externref tables */
    int marker = 0;
    expect_i32(&p, "ext_size", NULL, 1);
    expect_i32(&p, "ext_grow", ARGS(REF(&marker), I32(2)), 1);
    expect_i32(&p, "ext_size", NULL, 3);
    for (int t = 0; t < 2; t++) {
        assert_ptr_equal(call_side(&p.t[t], "ext_get", ARGS(I32(2))).v[0].ref, &marker);
        assert_null(call_side(&p.t[t], "ext_get", ARGS(I32(0))).v[0].ref);
    }
    expect_trap(&p, "ext_get", ARGS(I32(3)), ENG_TRAP_TABLE_OOB, toob);
    pair_close(&p);
}

/* ==== 2. Memory addresses near 4 GiB ====================================== */

/* Native code folds y+c into the addressing of an access at y+c1 done
 * before (native_nowrap.c), which is the same address only because no
 * memory reaches 4 GiB: addresses that wrap must still land where the
 * interpreter puts them, and an address past the end must still trap. */
static const char wat_wrap[] =
    "(module (memory (export \"mem\") 1)\n"
    "  (func (export \"pair\") (param i32) (result i32)\n"
    "    (i32.load8_u (i32.add (local.get 0) (i32.const 16)))\n"
    "    (i32.load8_u (i32.add (local.get 0) (i32.const 17)))\n"
    "    (i32.shl (i32.const 8)) (i32.or)\n"
    "    (i32.load8_u (i32.add (local.get 0) (i32.const 40)))\n"
    "    (i32.shl (i32.const 16)) (i32.or))\n"
    "  (func (export \"back\") (param i32) (result i32)\n"
    "    (i32.load8_u (i32.add (local.get 0) (i32.const 16)))\n"
    "    (i32.load8_u (i32.add (local.get 0) (i32.const 8)))\n"
    "    (i32.shl (i32.const 8)) (i32.or))\n"
    "  (func (export \"swap\") (param i32 i32) (local i32 i32)\n"
    "    (local.set 2 (i32.const 0))\n"
    "    (loop $l\n"
    "      (local.set 3 (i32.load8_u (i32.add (local.get 0) (local.get 2))))\n"
    "      (i32.store8 (i32.add (local.get 0) (local.get 2))\n"
    "        (i32.load8_u (i32.add (i32.add (local.get 0) (local.get 1)) (local.get 2))))\n"
    "      (i32.store8 (i32.add (i32.add (local.get 0) (local.get 1)) (local.get 2))\n"
    "        (local.get 3))\n"
    "      (br_if $l (i32.lt_u (local.tee 2 (i32.add (local.get 2) (i32.const 1)))\n"
    "                          (i32.const 8)))))\n"
    "  (func (export \"grow\") (param i32) (result i32) (memory.grow (local.get 0)))\n"
    "  (func (export \"size\") (result i32) (memory.size)))\n";

static void test_memory_address_wrap_and_limit(void **state)
{
    (void)state;
    pair_t p;
    pair_open(&p, mod_shared(wat_wrap));
    const char *oob = "out of bounds memory access in function";
    for (int t = 0; t < 2; t++) {
        uint8_t *d = mem_of(&p.t[t]);
        for (unsigned k = 0; k < 64; k++) d[k] = (uint8_t)(k + 1);
        for (unsigned k = 0; k < 64; k++) d[PG - 64 + k] = (uint8_t)(0x80 + k);
    }
    expect_i32(&p, "pair", ARGS(I32(0)), 0x291211);
    /* y + 16 wraps to 0, and so do y + 17 and y + 40 */
    expect_i32(&p, "pair", ARGS(I32(0xFFFFFFF0u)), 0x190201);
    expect_i32(&p, "pair", ARGS(I32(0xFFFFFFF8u)), 0x210A09);
    expect_trap(&p, "pair", ARGS(I32(0xFFFFFFE8u)), ENG_TRAP_MEMORY_OOB, oob);
    /* y + 16 is the last byte: y + 17 is past the end */
    expect_trap(&p, "pair", ARGS(I32(PG - 17)), ENG_TRAP_MEMORY_OOB, oob);
    expect_trap(&p, "pair", ARGS(I32(PG - 40)), ENG_TRAP_MEMORY_OOB, oob);
    expect_i32(&p, "pair", ARGS(I32(PG - 41)), 0xBFA8A7);
    /* y + 8 after y + 16, below it: y + 16 may wrap where y + 8 does not */
    expect_i32(&p, "back", ARGS(I32(16)), 0x1921);
    expect_i32(&p, "back", ARGS(I32(0xFFFFFFF8u)), 0x0109);
    expect_trap(&p, "back", ARGS(I32(0xFFFFFFF4u)), ENG_TRAP_MEMORY_OOB, oob);
    /* a byte swap whose second block is reached by wrapping around 4 GiB */
    expect_ok(&p, "swap", ARGS(I32(24), I32(-24)));
    for (int t = 0; t < 2; t++) {
        uint8_t *d = mem_of(&p.t[t]);
        assert_int_equal(d[0], 25);
        assert_int_equal(d[24], 1);
        assert_int_equal(d[7], 32);
        assert_int_equal(d[31], 8);
    }
    expect_trap(&p, "swap", ARGS(I32(0), I32(PG - 4)), ENG_TRAP_MEMORY_OOB, oob);
    /* no memory reaches 4 GiB (ENG_LIMIT_PAGES): growing to it fails, in
     * both tiers, and a module that starts there does not instantiate */
    expect_i32(&p, "grow", ARGS(I32(ENG_LIMIT_PAGES)), (uint32_t)-1);
    expect_i32(&p, "size", NULL, 1);
    pair_close(&p);
    assert_int_equal(ENG_LIMIT_PAGES, ENG_MAX_PAGES - 1);
    eng_store_t *s = eng_store_new();
    assert_int_equal(eng_store_limit_pages(s), ENG_LIMIT_PAGES);
    eng_store_set_memory_limit(s, 4ull << 30);
    assert_int_equal(eng_store_limit_pages(s), ENG_LIMIT_PAGES);
    size_t len;
    uint8_t *wasm = wat2wasm("(module (memory 65536))", &len);
    eng_module_t *m = module_of(wasm, len);
    char err[ENG_ERR_MAX];
    eng_exec_t *x = eng_exec_new(0);
    assert_null(eng_instance_new(s, m, NULL, 0, x, err, sizeof err));
    if (!strstr(err, "cannot allocate 65536 pages (the store's limit is 65535 pages)"))
        fail_msg("instantiating (memory 65536): %s", err);
    eng_exec_free(x);
    eng_store_free(s); /* before the module: the failed instance stays in the store */
    eng_module_free(m);
    free(wasm);
}

/* ==== 3. SIMD ============================================================= */

/* v128 crosses every boundary of native code in slot layout (engine.h): in
 * from eng_call through the trampoline, out to a host function through
 * the slow-call array, and back. The module:
 *   (import "h" "twice" (func $twice (param v128) (result v128)))
 *   (func (export "f") (param v128) (result v128)
 *     (call $twice (i32x4.add (local.get 0) (v128.const i32x4 1 2 3 4))))
 *   (func (export "g") (result i32) v128.const i32x4 7 0 0 0  i32x4.extract_lane 0) */
static eng_trap_t host_twice(eng_host_call_t *call, eng_val_t *args)
{
    (void)call;
    uint32_t v[4];
    memcpy(v, args, 16);
    for (int i = 0; i < 4; i++)
        v[i] *= 2;
    memcpy(args, v, 16);
    return ENG_OK;
}

static void test_simd_native(void **state)
{
    (void)state;
    static const uint8_t wasm[] = {
        0x00, 0x61, 0x73, 0x6D, 0x01, 0x00, 0x00, 0x00,
        0x01, 0x0A, 0x02, 0x60, 0x01, 0x7B, 0x01, 0x7B, 0x60, 0x00, 0x01, 0x7F, /* types */
        0x02, 0x0B, 0x01, 0x01, 'h', 0x05, 't', 'w', 'i', 'c', 'e', 0x00, 0x00, /* import */
        0x03, 0x03, 0x02, 0x00, 0x01,                                           /* funcs */
        0x07, 0x09, 0x02, 0x01, 'f', 0x00, 0x01, 0x01, 'g', 0x00, 0x02,         /* exports */
        0x0A, 0x35, 0x02,                                                       /* code */
        0x1B, 0x00, 0x20, 0x00, 0xFD, 0x0C, 1, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 4, 0, 0, 0,
        0xFD, 0xAE, 0x01, 0x10, 0x00, 0x0B,
        0x17, 0x00, 0xFD, 0x0C, 7, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFD, 0x1B,
        0x00, 0x0B,
    };
    eng_module_t *m = module_of(wasm, sizeof wasm);
    attach_native(m, wasm, sizeof wasm);
    char err[ENG_ERR_MAX];
    eng_store_t *s = eng_store_new();
    eng_exec_t *x = eng_exec_new(0);
    eng_extern_t imp = {.kind = ENG_EXTERN_FUNC, .u.func = eng_func_new_host(s, "(v)v", host_twice, NULL)};
    assert_non_null(imp.u.func);
    eng_instance_t *inst = eng_instance_new(s, m, &imp, 1, x, err, sizeof err);
    if (!inst) fail_msg("instantiate: %s", err);
    eng_func_t *f = eng_instance_func(inst, "f"), *g = eng_instance_func(inst, "g");
    assert_non_null(f->native);
    uint32_t in[4] = {10, 20, 30, 0xFFFFFFFFu}, out[4];
    eng_val_t args[2], res[2];
    memcpy(args, in, 16);
    assert_int_equal(eng_call(x, f, args, res), ENG_OK);
    memcpy(out, res, 16);
    assert_int_equal(out[0], 22);
    assert_int_equal(out[1], 44);
    assert_int_equal(out[2], 66);
    assert_int_equal(out[3], 6);
    assert_int_equal(eng_call(x, g, NULL, res), ENG_OK);
    assert_int_equal(res[0].i32, 7);
    eng_exec_free(x);
    eng_store_free(s);
    eng_module_free(m);
}

/* ==== main ================================================================ */

static int group_setup(void **state)
{
    (void)state;
    return native_pair_setup("test_native_edges");
}

static int group_teardown(void **state)
{
    (void)state;
    return native_pair_teardown();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_simd_native),
        cmocka_unit_test(test_edge_no_functions),
        cmocka_unit_test(test_edge_many_params_and_locals),
        cmocka_unit_test(test_edge_br_table),
        cmocka_unit_test(test_edge_blocks_and_select),
        cmocka_unit_test(test_edge_globals),
        cmocka_unit_test(test_edge_table_ops),
        cmocka_unit_test(test_memory_address_wrap_and_limit),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
