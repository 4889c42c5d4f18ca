/*
 * test_native_traps.c — the native tier against the interpreter (as
 * test_native_host.c, test_native_images.c and test_native_edges.c do, the
 * helpers in native_pair.h): traps and interruption.
 *
 *   1. traps: every kind, memory bounds exactly at the edge, stores that trap
 *      leave earlier writes and write nothing themselves, stack exhaustion on
 *      the main thread, on a 128 KiB fiber, on a small pthread, on the
 *      runtime pool's fibers, big frames
 *   2. interruption: deadlines (loops, deep recursion), eng_exec_interrupt
 *      from another thread, the yield hook
 *
 * The bounds on elapsed time in section 2 are generous (2 s for a 50 ms
 * deadline): they separate "stopped" from "hung", they measure nothing.
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


/* ==== 1. Traps ============================================================ */

static const char wat_traps[] =
    "(module\n"
    "  (type $ii (func (param i32) (result i32)))\n"
    "  (type $v (func))\n"
    "  (memory (export \"mem\") 1 3)\n"
    "  (table $t 4 funcref)\n"
    "  (elem (table $t) (i32.const 0) func $plus100 $nop)\n"
    "  (data $d \"hello\")\n"
    "  (global $g (export \"g\") (mut i32) (i32.const 0))\n"
    "  (func $plus100 (type $ii) (i32.add (local.get 0) (i32.const 100)))\n"
    "  (func $nop (type $v))\n"
    "  (func $boom (export \"unreachable\") (global.set $g (i32.const 1)) unreachable)\n"
    "  (func (export \"load8\") (param i32) (result i32) (i32.load8_u (local.get 0)))\n"
    "  (func (export \"load16\") (param i32) (result i32) (i32.load16_u (local.get 0)))\n"
    "  (func (export \"load32\") (param i32) (result i32) (i32.load (local.get 0)))\n"
    "  (func (export \"load64\") (param i32) (result i64) (i64.load (local.get 0)))\n"
    "  (func (export \"load64_off\") (param i32) (result i64) (i64.load offset=8 (local.get 0)))\n"
    "  (func (export \"loadf64\") (param i32) (result f64) (f64.load (local.get 0)))\n"
    "  (func (export \"store8\") (param i32 i32) (i32.store8 (local.get 0) (local.get 1)))\n"
    "  (func (export \"store32\") (param i32 i32) (i32.store (local.get 0) (local.get 1)))\n"
    "  (func (export \"store64\") (param i32 i64) (i64.store (local.get 0) (local.get 1)))\n"
    "  (func (export \"store64_off\") (param i32 i64)\n"
    "    (i64.store offset=65528 (local.get 0) (local.get 1)))\n"
    "  (func (export \"two_stores\") (param i32 i32 i32)\n"
    "    (i32.store (local.get 0) (local.get 2))\n"
    "    (i64.store (local.get 1) (i64.extend_i32_u (local.get 2))))\n"
    "  (func (export \"set_then_load\") (param i32 i32) (result i32)\n"
    "    (global.set $g (local.get 1))\n"
    "    (i32.load (local.get 0)))\n"
    "  (func (export \"div_s\") (param i32 i32) (result i32) (i32.div_s (local.get 0) (local.get 1)))\n"
    "  (func (export \"div_u\") (param i32 i32) (result i32) (i32.div_u (local.get 0) (local.get 1)))\n"
    "  (func (export \"rem_s\") (param i32 i32) (result i32) (i32.rem_s (local.get 0) (local.get 1)))\n"
    "  (func (export \"rem_u\") (param i32 i32) (result i32) (i32.rem_u (local.get 0) (local.get 1)))\n"
    "  (func (export \"div_s64\") (param i64 i64) (result i64) (i64.div_s (local.get 0) (local.get 1)))\n"
    "  (func (export \"div_u64\") (param i64 i64) (result i64) (i64.div_u (local.get 0) (local.get 1)))\n"
    "  (func (export \"rem_s64\") (param i64 i64) (result i64) (i64.rem_s (local.get 0) (local.get 1)))\n"
    "  (func (export \"i32_trunc_f32_s\") (param f32) (result i32) (i32.trunc_f32_s (local.get 0)))\n"
    "  (func (export \"i32_trunc_f32_u\") (param f32) (result i32) (i32.trunc_f32_u (local.get 0)))\n"
    "  (func (export \"i32_trunc_f64_s\") (param f64) (result i32) (i32.trunc_f64_s (local.get 0)))\n"
    "  (func (export \"i32_trunc_f64_u\") (param f64) (result i32) (i32.trunc_f64_u (local.get 0)))\n"
    "  (func (export \"i64_trunc_f32_s\") (param f32) (result i64) (i64.trunc_f32_s (local.get 0)))\n"
    "  (func (export \"i64_trunc_f64_s\") (param f64) (result i64) (i64.trunc_f64_s (local.get 0)))\n"
    "  (func (export \"i64_trunc_f64_u\") (param f64) (result i64) (i64.trunc_f64_u (local.get 0)))\n"
    "  (func (export \"i32_trunc_sat_f64_s\") (param f64) (result i32)\n"
    "    (i32.trunc_sat_f64_s (local.get 0)))\n"
    "  (func (export \"i64_trunc_sat_f32_u\") (param f32) (result i64)\n"
    "    (i64.trunc_sat_f32_u (local.get 0)))\n"
    "  (func (export \"call_ind\") (param i32 i32) (result i32)\n"
    "    (call_indirect $t (type $ii) (local.get 1) (local.get 0)))\n"
    "  (func (export \"table_get_null\") (param i32) (result i32)\n"
    "    (ref.is_null (table.get $t (local.get 0))))\n"
    "  (func (export \"table_set\") (param i32) (table.set $t (local.get 0) (ref.func $plus100)))\n"
    "  (func (export \"fill\") (param i32 i32 i32)\n"
    "    (memory.fill (local.get 0) (local.get 1) (local.get 2)))\n"
    "  (func (export \"copy\") (param i32 i32 i32)\n"
    "    (memory.copy (local.get 0) (local.get 1) (local.get 2)))\n"
    "  (func (export \"init\") (param i32 i32 i32)\n"
    "    (memory.init $d (local.get 0) (local.get 1) (local.get 2)))\n"
    "  (func (export \"drop\") (data.drop $d))\n"
    "  (func $recurse (export \"recurse\") (param i32) (result i32)\n"
    "    (i32.add (call $recurse (i32.add (local.get 0) (i32.const 1))) (i32.const 1))))\n";

static void test_trap_unreachable(void **state)
{
    (void)state;
    mod_t *m = mod_shared(wat_traps);
    pair_t p;
    pair_open(&p, m);
    expect_trap(&p, "unreachable", NULL, ENG_TRAP_UNREACHABLE, "unreachable in function 2 (boom)");
    /* The global.set before the trap happened, in both tiers. */
    for (int t = 0; t < 2; t++)
        assert_int_equal(eng_global_get(export_global(p.t[t].i, "g")).i32, 1);
    /* The exec is fine afterwards. */
    expect_i32(&p, "load8", ARGS(I32(0)), 0);
    pair_close(&p);
}

/* Loads exactly at the end of a one-page memory: the last byte that fits
 * works, one past traps, addresses that wrap in 32 bits trap too. */
static void test_trap_memory_load_bounds(void **state)
{
    (void)state;
    mod_t *m = mod_shared(wat_traps);
    pair_t p;
    pair_open(&p, m);
    const char *oob = "out of bounds memory access in function";
    for (int t = 0; t < 2; t++) {
        uint8_t *d = mem_of(&p.t[t]);
        for (unsigned k = 0; k < 16; k++) d[PG - 16 + k] = (uint8_t)(0xA0 + k);
    }
    expect_i32(&p, "load8", ARGS(I32(PG - 1)), 0xAF);
    expect_trap(&p, "load8", ARGS(I32(PG)), ENG_TRAP_MEMORY_OOB, oob);
    expect_i32(&p, "load16", ARGS(I32(PG - 2)), 0xAFAE);
    expect_trap(&p, "load16", ARGS(I32(PG - 1)), ENG_TRAP_MEMORY_OOB, oob);
    expect_i32(&p, "load32", ARGS(I32(PG - 4)), 0xAFAEADAC);
    expect_trap(&p, "load32", ARGS(I32(PG - 3)), ENG_TRAP_MEMORY_OOB, oob);
    expect_i64(&p, "load64", ARGS(I32(PG - 8)), 0xAFAEADACABAAA9A8ull);
    expect_trap(&p, "load64", ARGS(I32(PG - 7)), ENG_TRAP_MEMORY_OOB, oob);
    expect_i64(&p, "load64_off", ARGS(I32(PG - 16)), 0xAFAEADACABAAA9A8ull);
    expect_trap(&p, "load64_off", ARGS(I32(PG - 15)), ENG_TRAP_MEMORY_OOB, oob);
    /* address + offset past 4 GiB: no wrap-around into low memory */
    expect_trap(&p, "load64_off", ARGS(I32(0xFFFFFFF8u)), ENG_TRAP_MEMORY_OOB, oob);
    expect_trap(&p, "load64_off", ARGS(I32(0xFFFFFFFFu)), ENG_TRAP_MEMORY_OOB, oob);
    expect_trap(&p, "load32", ARGS(I32(0xFFFFFFFFu)), ENG_TRAP_MEMORY_OOB, oob);
    expect_trap(&p, "loadf64", ARGS(I32(0x80000000u)), ENG_TRAP_MEMORY_OOB, oob);
    pair_close(&p);
}

/* A fault in a small function LLVM inlines into its caller names that
 * function, as the interpreter's trap does, not the caller it was inlined
 * into (objload.c's PC table, filled from !pcsections). */
static const char wat_inlined_fault[] =
    "(module (memory 1)\n"
    "  (func $peek (param i32) (result i32) (i32.load (local.get 0)))\n"
    "  (func $poke (param i32) (i64.store (local.get 0) (i64.const 1)))\n"
    "  (func $vpeek (param i32) (result i32) (i32x4.extract_lane 1 (v128.load (local.get 0))))\n"
    "  (func (export \"outer\") (param i32) (result i32)\n"
    "    (i32.add (call $peek (i32.add (local.get 0) (i32.const 4))) (call $peek (local.get 0))))\n"
    "  (func (export \"outer_store\") (param i32) (call $poke (local.get 0)))\n"
    "  (func (export \"outer_simd\") (param i32) (result i32)\n"
    "    (i32.add (call $vpeek (local.get 0)) (i32.const 1))))\n";

static void test_trap_memory_inlined_names_callee(void **state)
{
    (void)state;
    mod_t *m = mod_new(wat_inlined_fault);
    pair_t p;
    pair_open(&p, m);
    expect_i32(&p, "outer", ARGS(I32(PG - 8)), 0);
    expect_trap(&p, "outer", ARGS(I32(PG - 6)), ENG_TRAP_MEMORY_OOB,
                "out of bounds memory access in function 0");
    expect_trap(&p, "outer_store", ARGS(I32(PG - 4)), ENG_TRAP_MEMORY_OOB,
                "out of bounds memory access in function 1");
    expect_i32(&p, "outer_simd", ARGS(I32(PG - 16)), 1);
    expect_trap(&p, "outer_simd", ARGS(I32(PG - 15)), ENG_TRAP_MEMORY_OOB,
                "out of bounds memory access in function 2");
    pair_close(&p);
    mod_free(m);
}

/* Stores at the edge; a store that traps writes nothing (not even the
 * bytes that would fit), and what ran before it stays written. */
static void test_trap_memory_store_bounds(void **state)
{
    (void)state;
    mod_t *m = mod_shared(wat_traps);
    pair_t p;
    pair_open(&p, m);
    const char *oob = "out of bounds memory access in function";
    uint8_t tail[16];
    for (unsigned k = 0; k < 16; k++) tail[k] = (uint8_t)(0x11 * (k + 1));
    for (int t = 0; t < 2; t++) memcpy(mem_of(&p.t[t]) + PG - 16, tail, 16);

    expect_ok(&p, "store8", ARGS(I32(PG - 1), I32(0x5A)));
    tail[15] = 0x5A;
    expect_trap(&p, "store8", ARGS(I32(PG), I32(1)), ENG_TRAP_MEMORY_OOB, oob);
    expect_trap(&p, "store32", ARGS(I32(PG - 3), I32(0xFFFFFFFF)), ENG_TRAP_MEMORY_OOB, oob);
    expect_trap(&p, "store64", ARGS(I32(PG - 7), I64(-1)), ENG_TRAP_MEMORY_OOB, oob);
    expect_trap(&p, "store64_off", ARGS(I32(1), I64(-1)), ENG_TRAP_MEMORY_OOB, oob);
    expect_trap(&p, "store64_off", ARGS(I32(0xFFFFFFFFu), I64(-1)), ENG_TRAP_MEMORY_OOB, oob);
    for (int t = 0; t < 2; t++)
        if (memcmp(mem_of(&p.t[t]) + PG - 16, tail, 16) != 0)
            fail_msg("%s: a store that trapped wrote part of its bytes", tier_name[t]);

    expect_ok(&p, "store64_off", ARGS(I32(0), I64(0x0102030405060708ull)));
    expect_i64(&p, "load64", ARGS(I32(PG - 8)), 0x0102030405060708ull);
    memcpy(tail + 8, (uint8_t[]){8, 7, 6, 5, 4, 3, 2, 1}, 8);

    /* The first store works, the second traps: the first stays. */
    expect_trap(&p, "two_stores", ARGS(I32(100), I32(PG - 4), I32(0xDEADBEEF)),
                ENG_TRAP_MEMORY_OOB, oob);
    expect_i32(&p, "load32", ARGS(I32(100)), 0xDEADBEEF);
    /* A global set before the trapping load stays set. */
    expect_trap(&p, "set_then_load", ARGS(I32(PG), I32(77)), ENG_TRAP_MEMORY_OOB, oob);
    for (int t = 0; t < 2; t++) {
        assert_int_equal(eng_global_get(export_global(p.t[t].i, "g")).i32, 77);
        if (memcmp(mem_of(&p.t[t]) + PG - 16, tail, 16) != 0)
            fail_msg("%s: the trapping i64.store at PG-4 wrote part of its bytes", tier_name[t]);
    }
    pair_close(&p);
}

static void test_trap_integer(void **state)
{
    (void)state;
    mod_t *m = mod_shared(wat_traps);
    pair_t p;
    pair_open(&p, m);
    const char *div0 = "integer divide by zero in function";
    const char *ovf = "integer overflow in function";
    expect_i32(&p, "div_s", ARGS(I32(-7), I32(2)), (uint32_t)-3);
    expect_trap(&p, "div_s", ARGS(I32(1), I32(0)), ENG_TRAP_DIV_ZERO, div0);
    expect_trap(&p, "div_u", ARGS(I32(1), I32(0)), ENG_TRAP_DIV_ZERO, div0);
    expect_trap(&p, "rem_s", ARGS(I32(1), I32(0)), ENG_TRAP_DIV_ZERO, div0);
    expect_trap(&p, "rem_u", ARGS(I32(1), I32(0)), ENG_TRAP_DIV_ZERO, div0);
    expect_trap(&p, "div_s64", ARGS(I64(1), I64(0)), ENG_TRAP_DIV_ZERO, div0);
    expect_trap(&p, "div_u64", ARGS(I64(1), I64(0)), ENG_TRAP_DIV_ZERO, div0);
    expect_trap(&p, "rem_s64", ARGS(I64(1), I64(0)), ENG_TRAP_DIV_ZERO, div0);
    expect_trap(&p, "div_s", ARGS(I32(INT32_MIN), I32(-1)), ENG_TRAP_INT_OVERFLOW, ovf);
    expect_trap(&p, "div_s64", ARGS(I64(INT64_MIN), I64(-1)), ENG_TRAP_INT_OVERFLOW, ovf);
    /* rem_s of the same operands is 0, not a trap */
    expect_i32(&p, "rem_s", ARGS(I32(INT32_MIN), I32(-1)), 0);
    expect_i64(&p, "rem_s64", ARGS(I64(INT64_MIN), I64(-1)), 0);
    expect_i32(&p, "div_u", ARGS(I32(0x80000000u), I32(-1)), 0);
    pair_close(&p);
}

static void test_trap_conversions(void **state)
{
    (void)state;
    mod_t *m = mod_shared(wat_traps);
    pair_t p;
    pair_open(&p, m);
    const char *ovf = "integer overflow in function";
    const char *nan = "invalid conversion to integer in function";
    /* i32 from f32: -2^31 fits, 2^31 and the float below -2^31 do not */
    expect_i32(&p, "i32_trunc_f32_s", ARGS(F32(-2147483648.0f)), (uint32_t)INT32_MIN);
    expect_trap(&p, "i32_trunc_f32_s", ARGS(F32(2147483648.0f)), ENG_TRAP_INT_OVERFLOW, ovf);
    expect_trap(&p, "i32_trunc_f32_s", ARGS(F32(-2147483904.0f)), ENG_TRAP_INT_OVERFLOW, ovf);
    expect_trap(&p, "i32_trunc_f32_s", ARGS(F32(NAN)), ENG_TRAP_INVALID_CONV, nan);
    expect_trap(&p, "i32_trunc_f32_s", ARGS(F32(INFINITY)), ENG_TRAP_INT_OVERFLOW, ovf);
    expect_i32(&p, "i32_trunc_f32_u", ARGS(F32(-0.75f)), 0);
    expect_trap(&p, "i32_trunc_f32_u", ARGS(F32(-1.0f)), ENG_TRAP_INT_OVERFLOW, ovf);
    expect_trap(&p, "i32_trunc_f32_u", ARGS(F32(4294967296.0f)), ENG_TRAP_INT_OVERFLOW, ovf);
    /* i32 from f64: the fractional edges */
    expect_i32(&p, "i32_trunc_f64_s", ARGS(F64(2147483647.9)), 2147483647u);
    expect_i32(&p, "i32_trunc_f64_s", ARGS(F64(-2147483648.9)), (uint32_t)INT32_MIN);
    expect_trap(&p, "i32_trunc_f64_s", ARGS(F64(2147483648.0)), ENG_TRAP_INT_OVERFLOW, ovf);
    expect_trap(&p, "i32_trunc_f64_s", ARGS(F64(-2147483649.0)), ENG_TRAP_INT_OVERFLOW, ovf);
    expect_i32(&p, "i32_trunc_f64_u", ARGS(F64(4294967295.9)), 4294967295u);
    expect_i32(&p, "i32_trunc_f64_u", ARGS(F64(-0.9)), 0);
    expect_trap(&p, "i32_trunc_f64_u", ARGS(F64(4294967296.0)), ENG_TRAP_INT_OVERFLOW, ovf);
    expect_trap(&p, "i32_trunc_f64_u", ARGS(F64(-1.0)), ENG_TRAP_INT_OVERFLOW, ovf);
    expect_trap(&p, "i32_trunc_f64_u", ARGS(F64(-NAN)), ENG_TRAP_INVALID_CONV, nan);
    /* i64 */
    expect_i64(&p, "i64_trunc_f64_s", ARGS(F64(-9223372036854775808.0)), (uint64_t)INT64_MIN);
    expect_trap(&p, "i64_trunc_f64_s", ARGS(F64(9223372036854775808.0)), ENG_TRAP_INT_OVERFLOW, ovf);
    expect_trap(&p, "i64_trunc_f32_s", ARGS(F32(9223372036854775808.0f)), ENG_TRAP_INT_OVERFLOW,
                ovf);
    expect_trap(&p, "i64_trunc_f32_s", ARGS(F32(f32_bits(0x7FC12345))), ENG_TRAP_INVALID_CONV, nan);
    expect_i64(&p, "i64_trunc_f64_u", ARGS(F64(18446744073709549568.0)), 18446744073709549568ull);
    expect_trap(&p, "i64_trunc_f64_u", ARGS(F64(18446744073709551616.0)), ENG_TRAP_INT_OVERFLOW,
                ovf);
    expect_trap(&p, "i64_trunc_f64_u", ARGS(F64(f64_bits(0x7FF0000000000001ull))),
                ENG_TRAP_INVALID_CONV, nan);
    /* the saturating forms never trap */
    expect_i32(&p, "i32_trunc_sat_f64_s", ARGS(F64(NAN)), 0);
    expect_i32(&p, "i32_trunc_sat_f64_s", ARGS(F64(-1e300)), (uint32_t)INT32_MIN);
    expect_i32(&p, "i32_trunc_sat_f64_s", ARGS(F64(1e300)), INT32_MAX);
    expect_i64(&p, "i64_trunc_sat_f32_u", ARGS(F32(-5.0f)), 0);
    expect_i64(&p, "i64_trunc_sat_f32_u", ARGS(F32(INFINITY)), UINT64_MAX);
    pair_close(&p);
}

static void test_trap_call_indirect_and_tables(void **state)
{
    (void)state;
    mod_t *m = mod_shared(wat_traps);
    pair_t p;
    pair_open(&p, m);
    expect_i32(&p, "call_ind", ARGS(I32(0), I32(5)), 105);
    expect_trap(&p, "call_ind", ARGS(I32(4), I32(5)), ENG_TRAP_TABLE_OOB, "undefined element in function");
    expect_trap(&p, "call_ind", ARGS(I32(0xFFFFFFFFu), I32(5)), ENG_TRAP_TABLE_OOB,
                "undefined element in function");
    expect_trap(&p, "call_ind", ARGS(I32(2), I32(5)), ENG_TRAP_NULL_REF,
                "uninitialized element in function");
    expect_trap(&p, "call_ind", ARGS(I32(1), I32(5)), ENG_TRAP_INDIRECT_TYPE,
                "indirect call type mismatch in function");
    expect_i32(&p, "table_get_null", ARGS(I32(3)), 1);
    expect_i32(&p, "table_get_null", ARGS(I32(0)), 0);
    expect_trap(&p, "table_get_null", ARGS(I32(4)), ENG_TRAP_TABLE_OOB,
                "out of bounds table access in function");
    expect_ok(&p, "table_set", ARGS(I32(3)));
    expect_i32(&p, "call_ind", ARGS(I32(3), I32(1)), 101);
    expect_trap(&p, "table_set", ARGS(I32(4)), ENG_TRAP_TABLE_OOB,
                "out of bounds table access in function");
    expect_trap(&p, "table_set", ARGS(I32(0x80000000u)), ENG_TRAP_TABLE_OOB,
                "out of bounds table access in function");
    pair_close(&p);
}

static void test_trap_bulk_memory(void **state)
{
    (void)state;
    mod_t *m = mod_shared(wat_traps);
    pair_t p;
    pair_open(&p, m);
    const char *oob = "out of bounds memory access in function";
    uint8_t tail[16];
    memset(tail, 0x33, sizeof tail);
    for (int t = 0; t < 2; t++) memcpy(mem_of(&p.t[t]) + PG - 16, tail, 16);
    /* fill: up to the end works, one more byte traps and writes nothing */
    expect_ok(&p, "fill", ARGS(I32(PG - 4), I32(0x44), I32(4)));
    memset(tail + 12, 0x44, 4);
    expect_trap(&p, "fill", ARGS(I32(PG - 10), I32(0x55), I32(11)), ENG_TRAP_MEMORY_OOB, oob);
    expect_ok(&p, "fill", ARGS(I32(PG), I32(0x55), I32(0)));
    expect_trap(&p, "fill", ARGS(I32(PG + 1), I32(0x55), I32(0)), ENG_TRAP_MEMORY_OOB, oob);
    expect_trap(&p, "fill", ARGS(I32(1), I32(0x55), I32(0xFFFFFFFFu)), ENG_TRAP_MEMORY_OOB, oob);
    /* copy: either range out of bounds */
    expect_ok(&p, "copy", ARGS(I32(0), I32(PG - 4), I32(4)));
    expect_i32(&p, "load32", ARGS(I32(0)), 0x44444444);
    expect_trap(&p, "copy", ARGS(I32(PG - 8), I32(0), I32(9)), ENG_TRAP_MEMORY_OOB, oob);
    expect_trap(&p, "copy", ARGS(I32(0), I32(PG - 8), I32(9)), ENG_TRAP_MEMORY_OOB, oob);
    expect_ok(&p, "copy", ARGS(I32(PG), I32(PG), I32(0)));
    expect_trap(&p, "copy", ARGS(I32(PG + 1), I32(0), I32(0)), ENG_TRAP_MEMORY_OOB, oob);
    /* init: the segment's bounds and memory's */
    expect_ok(&p, "init", ARGS(I32(PG - 5), I32(0), I32(5)));
    memcpy(tail + 11, "hello", 5);
    expect_trap(&p, "init", ARGS(I32(0), I32(0), I32(6)), ENG_TRAP_MEMORY_OOB, oob);
    expect_trap(&p, "init", ARGS(I32(PG - 4), I32(0), I32(5)), ENG_TRAP_MEMORY_OOB, oob);
    expect_ok(&p, "init", ARGS(I32(0), I32(5), I32(0)));
    expect_trap(&p, "init", ARGS(I32(0), I32(6), I32(0)), ENG_TRAP_MEMORY_OOB, oob);
    for (int t = 0; t < 2; t++)
        if (memcmp(mem_of(&p.t[t]) + PG - 16, tail, 16) != 0)
            fail_msg("%s: a bulk operation that trapped wrote memory", tier_name[t]);
    /* a dropped segment has length 0 */
    expect_ok(&p, "drop", NULL);
    expect_ok(&p, "init", ARGS(I32(0), I32(0), I32(0)));
    expect_trap(&p, "init", ARGS(I32(0), I32(0), I32(1)), ENG_TRAP_MEMORY_OOB, oob);
    pair_close(&p);
}

static void test_trap_stack_main_thread(void **state)
{
    (void)state;
    mod_t *m = mod_shared(wat_traps);
    pair_t p;
    pair_open(&p, m);
    expect_trap(&p, "recurse", ARGS(I32(0)), ENG_TRAP_STACK_EXHAUSTED,
                "call stack exhausted in function");
    /* Twice: the exec and the thread are fine after unwinding. */
    expect_trap(&p, "recurse", ARGS(I32(0)), ENG_TRAP_STACK_EXHAUSTED,
                "call stack exhausted in function");
    expect_i32(&p, "div_u", ARGS(I32(10), I32(3)), 3);
    pair_close(&p);
}

/* A function with `nlocals` i64 and f64 locals, all live across its
 * recursive call: big(depth) recurses depth times, then returns a checksum
 * of every frame's locals. */
static char *wat_big_frame(unsigned nlocals)
{
    sbuf_t b = {0};
    sb_printf(&b, "(module\n  (func $big (export \"big\") (param $d i32) (result i64)\n");
    for (unsigned k = 0; k < nlocals; k++) sb_printf(&b, "    (local $l%u %s)\n", k, k % 3 ? "i64" : "f64");
    for (unsigned k = 0; k < nlocals; k++) {
        if (k % 3)
            sb_printf(&b, "    (local.set $l%u (i64.mul (i64.extend_i32_u (local.get $d)) (i64.const %u)))\n",
                      k, k + 1);
        else
            sb_printf(&b, "    (local.set $l%u (f64.mul (f64.convert_i32_u (local.get $d)) (f64.const %u.5)))\n",
                      k, k);
    }
    sb_printf(&b, "    (if (result i64) (i32.eqz (local.get $d)) (then (i64.const 1))\n"
                  "      (else (call $big (i32.sub (local.get $d) (i32.const 1)))");
    for (unsigned k = 0; k < nlocals; k++) {
        if (k % 3)
            sb_printf(&b, "\n        (i64.xor (local.get $l%u)) (i64.rotl (i64.const 7))", k);
        else
            sb_printf(&b, "\n        (i64.add (i64.reinterpret_f64 (local.get $l%u)))", k);
    }
    sb_printf(&b, ")))\n)\n");
    return b.p;
}

static void test_trap_stack_big_frames(void **state)
{
    (void)state;
    char *wat = wat_big_frame(180);
    mod_t *m = mod_new(wat);
    free(wat);
    pair_t p;
    pair_open(&p, m);
    /* Deep but bounded: the same checksum in both tiers. */
    res_t r = expect_ok(&p, "big", ARGS(I32(200)));
    assert_true(r.v[0].i64 != 0);
    expect_trap(&p, "big", ARGS(I32(100000000)), ENG_TRAP_STACK_EXHAUSTED,
                "call stack exhausted in function 0 (big)");
    pair_close(&p);
    mod_free(m);
}

static void test_trap_stack_small_stacks(void **state)
{
    (void)state;
    char *wat = wat_big_frame(120);
    mod_t *mb = mod_new(wat);
    free(wat);
    mod_t *m = mod_shared(wat_traps);
    pair_t p, pb;
    pair_open(&p, m);
    pair_open(&pb, mb);
    const size_t fiber_stack = 128u << 10, thread_stack = 256u << 10;
    for (int t = 0; t < 2; t++) {
        char what[96];
        /* unbounded recursion, small frames */
        stack_run_t r = {.x = p.t[t].x, .f = export_func(p.t[t].i, "recurse", t)};
        snprintf(what, sizeof what, "recurse on a 128 KiB fiber (%s)", tier_name[t]);
        stack_run_t o = run_small_stack(&r, fiber_stack, 0, what);
        expect_trap_r(what, &(res_t){.trap = o.trap}, ENG_TRAP_STACK_EXHAUSTED, NULL);
        assert_true(starts_with(o.msg, "call stack exhausted in function"));
        /* Native code ran on the fiber's stack down towards its end (the
         * interpreter does not recurse in C). */
        if (t == NATIVE && o.used < fiber_stack / 2)
            fail_msg("native recursion used %zu bytes of a %zu-byte fiber stack", o.used, fiber_stack);
        /* big frames: a few levels work, unbounded traps */
        stack_run_t rb = {.x = pb.t[t].x, .f = export_func(pb.t[t].i, "big", t), .args = {{.i32 = 5}}};
        snprintf(what, sizeof what, "big(5) on a 128 KiB fiber (%s)", tier_name[t]);
        o = run_small_stack(&rb, fiber_stack, 0, what);
        if (o.trap != ENG_OK) fail_msg("%s: %s", what, o.msg);
        rb.args[0].i32 = 1000000;
        snprintf(what, sizeof what, "big(10^6) on a 128 KiB fiber (%s)", tier_name[t]);
        o = run_small_stack(&rb, fiber_stack, 0, what);
        if (o.trap != ENG_TRAP_STACK_EXHAUSTED) fail_msg("%s: %s", what, eng_trap_name(o.trap));
        /* a thread with a 256 KiB stack */
        snprintf(what, sizeof what, "recurse on a 256 KiB thread (%s)", tier_name[t]);
        o = run_small_stack(&r, 0, thread_stack, what);
        if (o.trap != ENG_TRAP_STACK_EXHAUSTED) fail_msg("%s: %s", what, eng_trap_name(o.trap));
        assert_true(starts_with(o.msg, "call stack exhausted in function"));
        snprintf(what, sizeof what, "big(10^6) on a 256 KiB thread (%s)", tier_name[t]);
        o = run_small_stack(&rb, 0, thread_stack, what);
        if (o.trap != ENG_TRAP_STACK_EXHAUSTED) fail_msg("%s: %s", what, eng_trap_name(o.trap));
    }
    /* The same fiber stack, used in this process, many times in a row: the
     * stack limit is worked out again at each outermost entry. */
    stack_run_t r = {.x = p.t[NATIVE].x, .f = export_func(p.t[NATIVE].i, "recurse", NATIVE)};
    char err[256];
    r.fiber = rt_fiber_new(fiber_stack, err, sizeof err);
    assert_non_null(r.fiber);
    for (int k = 0; k < 3; k++) {
        rt_fiber_start(r.fiber, on_fiber, &r);
        rt_fiber_resume(r.fiber);
        assert_true(rt_fiber_finished(r.fiber));
        assert_int_equal(r.trap, ENG_TRAP_STACK_EXHAUSTED);
        expect_i32(&p, "div_u", ARGS(I32(9), I32(3)), 3); /* and on the main thread between */
    }
    rt_fiber_free(r.fiber);
    expect_ok(&pb, "big", ARGS(I32(30)));
    pair_close(&p);
    pair_close(&pb);
    mod_free(mb);
}

/* The daemon's own path (src/runtime): the module cache attaches sealed
 * native code, and the pool runs each guest on a fiber of
 * RT_FIBER_STACK_BYTES. A guest recursing without bound must end with
 * "call stack exhausted" there too. In a child process: if the stack
 * overflows into the fiber's guard page, the signal kills the process. */
static const char wat_pool_recurse[] =
    "(module\n"
    "  (func $r (param i32) (result i32)\n"
    "    (i32.add (call $r (i32.add (local.get 0) (i32.const 1))) (i32.const 1)))\n"
    "  (func (export \"_start\") (drop (call $r (i32.const 0)))))\n";

typedef struct pool_case {
    uint8_t *wasm;
    size_t len;
    uint8_t key[ENG_NATIVE_KEY_BYTES];
    uint8_t *art;
    size_t artlen;
    rt_module_t *m;
    rt_result_t res;
    int rc, done;
} pool_case_t;

static pool_case_t *pool_now;

static int pool_native_get(void *ud, const char *digest, uint8_t **b, size_t *len, char *err,
                           size_t errlen)
{
    (void)ud, (void)digest, (void)err, (void)errlen;
    *b = malloc(pool_now->artlen);
    if (!*b) return -1;
    memcpy(*b, pool_now->art, pool_now->artlen);
    *len = pool_now->artlen;
    return 0;
}

static void pool_work(rt_job_t *j, eng_exec_t *x)
{
    pool_case_t *pc = j->ud;
    char err[256];
    rt_instance_config_t cfg = {.name = "t"};
    rt_instance_t *i = rt_instance_new(pc->m, &cfg, x, err, sizeof err);
    rt_request_t rq = {.deadline_ns = eng_now_ns() + 10000 * MS};
    pc->rc = i ? rt_instance_run(i, x, &rq, &pc->res) : -2;
    rt_instance_free(i);
}

static void pool_done(rt_job_t *j) { ((pool_case_t *)j->ud)->done = 1; }

static int pool_child(void *arg)
{
    pool_case_t *pc = arg;
    pool_now = pc;
    char err[256], digest[80] = "sha256:";
    uint8_t d[32], *obj = NULL;
    size_t objlen = 0;
    EVP_Digest(pc->wasm, pc->len, d, NULL, EVP_sha256(), NULL);
    for (int k = 0; k < 32; k++) sprintf(digest + 7 + 2 * k, "%02x", d[k]);
    if (!eng_native_compile(pc->wasm, pc->len, &obj, &objlen, err, sizeof err)) return 101;
    if (!eng_native_seal(obj, objlen, d, pc->key, &pc->art, &pc->artlen, err, sizeof err)) return 102;
    rt_cache_t *c = rt_cache_new();
    rt_cache_config_t cfg = {.native_get = pool_native_get, .native_key = pc->key};
    rt_cache_configure(c, &cfg);
    pc->m = rt_cache_compile(c, digest, pc->wasm, pc->len, err, sizeof err);
    if (!pc->m) return 103;
    const char *detail = NULL;
    if (strcmp(rt_module_tier(pc->m, &detail), "native") != 0) return 104;
    uv_loop_t loop;
    uv_loop_init(&loop);
    rt_pool_t *p = rt_pool_new(&loop, 1, err, sizeof err);
    if (!p) return 105;
    rt_job_t job = {.work = pool_work, .done = pool_done, .ud = pc};
    rt_pool_submit(p, &job, true);
    for (int k = 0; k < 20000 && !pc->done; k++) {
        uv_run(&loop, UV_RUN_NOWAIT);
        usleep(1000);
    }
    if (!pc->done) return 106;
    return pc->rc == -2 ? 107 : (int)pc->res.trap;
}

static void test_trap_stack_pool_fiber(void **state)
{
    (void)state;
    static uint8_t wasm[512];
    pool_case_t pc = {.key = {1, 2, 3}, .wasm = wasm};
    uint8_t *w = wat2wasm(wat_pool_recurse, &pc.len);
    assert_true(pc.len <= sizeof wasm);
    memcpy(wasm, w, pc.len);
    free(w);
    eng_trap_t t = trap_in_child("unbounded native recursion in a pool job", pool_child, &pc, NULL);
    if (t != ENG_TRAP_STACK_EXHAUSTED)
        fail_msg("unbounded native recursion in a pool job: %s", eng_trap_name(t));
}

/* ==== 2. Interruption ===================================================== */

static const char wat_spin[] =
    "(module\n"
    "  (func $spin (export \"spin\") (loop $l (br $l)))\n"
    "  (func $fib (export \"fib\") (param i64) (result i64)\n"
    "    (if (result i64) (i64.lt_u (local.get 0) (i64.const 2)) (then (local.get 0))\n"
    "      (else (i64.add (call $fib (i64.sub (local.get 0) (i64.const 1)))\n"
    "                     (call $fib (i64.sub (local.get 0) (i64.const 2)))))))\n"
    "  (func $count (export \"count\") (param i32) (result i32) (local i32)\n"
    "    (loop $l (local.set 1 (i32.add (local.get 1) (i32.const 1)))\n"
    "      (br_if $l (i32.lt_u (local.get 1) (local.get 0))))\n"
    "    (local.get 1)))\n";

static void test_deadline_stops_loop_and_recursion(void **state)
{
    (void)state;
    mod_t *m = mod_shared(wat_spin);
    pair_t p;
    pair_open(&p, m);
    expect_deadline(&p, "spin", NULL, 50, "deadline exceeded in function 0 (spin)");
    /* fib(60): no loop at all, ~10^12 calls */
    expect_deadline(&p, "fib", ARGS(I64(60)), 50, "deadline exceeded in function 1 (fib)");
    /* a deadline already past */
    expect_deadline(&p, "spin", NULL, 0, "deadline exceeded in function 0 (spin)");
    /* the exec runs normally afterwards */
    expect_i64(&p, "fib", ARGS(I64(20)), 6765);
    expect_i32(&p, "count", ARGS(I32(100000)), 100000);
    pair_close(&p);
}

/* One memory.fill or memory.copy may move up to 4 GiB: it checks the
 * deadline every ENG_BULK_CHUNK bytes (eng_bulk_*), so a guest cannot hold
 * its thread (for a trial run, the event loop) for the whole move. 256
 * MiB take tens of milliseconds in one memset, with their page faults;
 * chunked, the call ends within about a chunk's time of its deadline.
 * Moves larger than a chunk must still be exact, overlapping either way. */
static const char wat_bulk[] =
    "(module\n"
    "  (memory 4096)\n"
    "  (func (export \"fill_all\") (memory.fill (i32.const 0) (i32.const 7) (i32.const 0x10000000)))\n"
    "  (func (export \"copy_half\")\n"
    "    (memory.copy (i32.const 0x8000000) (i32.const 0) (i32.const 0x8000000)))\n"
    "  (func (export \"copy_up\")\n"
    "    (memory.copy (i32.const 0x100) (i32.const 0) (i32.const 0xFFFFE00)))\n"
    /* a pattern over [0, n), then copy n bytes from s to d */
    "  (func (export \"pattern\") (param $n i32) (local $i i32)\n"
    "    (loop $l (i32.store8 (local.get $i) (i32.mul (local.get $i) (i32.const 31)))\n"
    "      (local.set $i (i32.add (local.get $i) (i32.const 1)))\n"
    "      (br_if $l (i32.lt_u (local.get $i) (local.get $n)))))\n"
    "  (func (export \"copy\") (param i32 i32 i32)\n"
    "    (memory.copy (local.get 0) (local.get 1) (local.get 2)))\n"
    "  (func (export \"fill\") (param i32 i32 i32)\n"
    "    (memory.fill (local.get 0) (local.get 1) (local.get 2)))\n"
    /* sum of byte * (i + 1) over [0, n) */
    "  (func (export \"sum\") (param $n i32) (result i64) (local $i i32) (local $s i64)\n"
    "    (loop $l (local.set $s (i64.add (local.get $s)\n"
    "        (i64.mul (i64.load8_u (local.get $i)) (i64.extend_i32_u (i32.add (local.get $i) (i32.const 1))))))\n"
    "      (local.set $i (i32.add (local.get $i) (i32.const 1)))\n"
    "      (br_if $l (i32.lt_u (local.get $i) (local.get $n))))\n"
    "    (local.get $s)))\n";

#define BULK_SPAN (5u << 20)

static uint64_t bulk_sum(const uint8_t *b, size_t n)
{
    uint64_t s = 0;
    for (size_t i = 0; i < n; i++) s += (uint64_t)b[i] * (i + 1);
    return s;
}

static void test_deadline_stops_bulk_memory(void **state)
{
    (void)state;
    mod_t *m = mod_new(wat_bulk);
    pair_t p;
    pair_open(&p, m);
    const char *names[] = {"fill_all", "copy_half", "copy_up"};
    for (int k = 0; k < 3; k++) {
        for (int t = 0; t < 2; t++) {
            eng_exec_t *x = p.t[t].x;
            uint64_t t0 = eng_now_ns();
            eng_exec_set_deadline(x, t0 + 1 * MS);
            watchdog_arm(names[k]);
            res_t r = call_side(&p.t[t], names[k], NULL);
            watchdog_disarm();
            uint64_t took = eng_now_ns() - t0;
            eng_exec_set_deadline(x, 0);
            expect_trap_r(names[k], &r, ENG_TRAP_DEADLINE, NULL);
            if (took > 25 * MS)
                fail_msg("%s (%s): took %llu ms to stop for a 1 ms deadline", names[k],
                         tier_name[t], (unsigned long long)(took / MS));
        }
    }

    /* Exact, past a chunk: fills and overlapping copies both ways. */
    uint8_t *want = malloc(BULK_SPAN);
    assert_non_null(want);
    for (size_t i = 0; i < BULK_SPAN; i++) want[i] = (uint8_t)(i * 31);
    expect_ok(&p, "pattern", ARGS(I32(BULK_SPAN)));
    memmove(want + (1u << 20) + 5, want, 3u << 20);
    expect_ok(&p, "copy", ARGS(I32((1u << 20) + 5), I32(0), I32(3u << 20)));
    expect_i64(&p, "sum", ARGS(I32(BULK_SPAN)), bulk_sum(want, BULK_SPAN));
    memmove(want + 3, want + (2u << 20), (3u << 20) - 7);
    expect_ok(&p, "copy", ARGS(I32(3), I32(2u << 20), I32((3u << 20) - 7)));
    expect_i64(&p, "sum", ARGS(I32(BULK_SPAN)), bulk_sum(want, BULK_SPAN));
    memset(want + 11, 0xA5, (4u << 20) + 1);
    expect_ok(&p, "fill", ARGS(I32(11), I32(0xA5), I32((4u << 20) + 1)));
    expect_i64(&p, "sum", ARGS(I32(BULK_SPAN)), bulk_sum(want, BULK_SPAN));
    free(want);
    pair_close(&p);
    mod_free(m);
}

/* Loop headers count fuel only when something branches back to them, so
 * they are filled in at the loop's end (native_ir.c, loop_header): every
 * shape of back-edge must still count, and running out of fuel mid-loop
 * (every NATIVE_BUDGET events) must re-enter the loop with its values. */
static const char wat_loops[] =
    "(module\n"
    "  (func (export \"forever_br_if\") (loop $l (br_if $l (i32.const 1))))\n"
    "  (func (export \"forever_table\") (param i32)\n"
    "    (block $out (loop $l (br_table $l $out (local.get 0)))))\n"
    "  (func (export \"forever_nested\")\n"
    "    (loop $l (block $b (br_if $b (i32.const 1))) (br $l)))\n"
    "  (func (export \"huge\") (param i64) (result i64) (local i64)\n"
    "    (loop $l (local.set 1 (i64.add (local.get 1) (i64.const 1)))\n"
    "      (br_if $l (i64.lt_u (local.get 1) (local.get 0))))\n"
    "    (local.get 1))\n"
    /* the sum of i * (i ^ 0x5555) for i < n, with the loop's value as a
     * loop param: 300,000 iterations run out of fuel a few times */
    "  (func (export \"sum\") (param i32) (result i64) (local i32)\n"
    "    (i64.const 0)\n"
    "    (loop $l (param i64) (result i64)\n"
    "      (i64.add (i64.mul (i64.extend_i32_u (local.get 1))\n"
    "                        (i64.extend_i32_u (i32.xor (local.get 1) (i32.const 0x5555)))))\n"
    "      (local.set 1 (i32.add (local.get 1) (i32.const 1)))\n"
    "      (br_if $l (i32.lt_u (local.get 1) (local.get 0))))))\n";

static void test_loop_headers_count(void **state)
{
    (void)state;
    mod_t *m = mod_new(wat_loops);
    pair_t p;
    pair_open(&p, m);
    expect_deadline(&p, "forever_br_if", NULL, 20, "deadline exceeded in function 0");
    expect_deadline(&p, "forever_table", ARGS(I32(0)), 20, "deadline exceeded in function 1");
    expect_deadline(&p, "forever_nested", NULL, 20, "deadline exceeded in function 2");
    expect_deadline(&p, "huge", ARGS(I64(UINT64_MAX)), 20, "deadline exceeded in function 3");
    expect_ok(&p, "forever_table", ARGS(I32(1)));
    expect_i64(&p, "huge", ARGS(I64(300000)), 300000);
    uint64_t want = 0;
    for (uint32_t i = 0; i < 300000; i++) want += (uint64_t)i * (i ^ 0x5555u);
    expect_i64(&p, "sum", ARGS(I32(300000)), want);
    pair_close(&p);
    mod_free(m);
}

/* A small function that calls itself is compiled twice, each copy calling
 * the other, and the second is inlined into the first (native_ir.c,
 * nc_function). Every wasm-level call must still count: the calls global
 * sees each one, a trap names the function at every depth, the stack limit
 * and deadlines stop it as before. */
static const char wat_twin[] =
    "(module\n"
    "  (memory 1)\n"
    "  (global $calls (mut i32) (i32.const 0))\n"
    "  (func $fib (export \"fib\") (param i32) (result i32)\n"
    "    (global.set $calls (i32.add (global.get $calls) (i32.const 1)))\n"
    "    (if (result i32) (i32.lt_u (local.get 0) (i32.const 2)) (then (local.get 0))\n"
    "      (else (i32.add (call $fib (i32.sub (local.get 0) (i32.const 1)))\n"
    "                     (call $fib (i32.sub (local.get 0) (i32.const 2)))))))\n"
    "  (func (export \"calls\") (result i32) (global.get $calls))\n"
    "  (func $down (export \"down\") (param i32 i32) (result i32)\n"
    "    (if (result i32) (local.get 0)\n"
    "      (then (i32.add (call $down (i32.sub (local.get 0) (i32.const 1)) (local.get 1))\n"
    "                     (call $down (i32.const 0) (i32.const 0))))\n"
    "      (else (i32.load (local.get 1)))))\n"
    /* Loops whose header need not count: the self call at the loop's own
     * level counts each iteration (tree), and ones where it must: the call
     * may be skipped (sor) or comes after a branch back (sor2). */
    "  (func $sor (export \"sor\") (param i32) (result i32)\n"
    "    (loop $l\n"
    "      (if (i32.eq (local.get 0) (i32.const 7)) (then (drop (call $sor (i32.const 0)))))\n"
    "      (br $l))\n"
    "    (i32.const 0))\n"
    "  (func $sor2 (export \"sor2\") (param i32) (result i32)\n"
    "    (loop $l\n"
    "      (br_if $l (local.get 0))\n"
    "      (drop (call $sor2 (i32.const 1))))\n"
    "    (i32.const 0))\n"
    "  (func $tree (export \"tree\") (param i32) (result i32) (local i32)\n"
    "    (if (i32.eqz (local.get 0)) (then (return (i32.const 1))))\n"
    "    (loop $l\n"
    "      (global.set $calls (i32.add (global.get $calls)\n"
    "                                  (call $tree (i32.sub (local.get 0) (i32.const 1)))))\n"
    "      (br_if $l (i32.lt_u (local.tee 1 (i32.add (local.get 1) (i32.const 1))) (i32.const 3))))\n"
    "    (local.get 1)))\n";

static void test_self_recursion_twin(void **state)
{
    (void)state;
    mod_t *m = mod_new(wat_twin);
    pair_t p;
    pair_open(&p, m);
    expect_i32(&p, "fib", ARGS(I32(20)), 6765);
    expect_i32(&p, "calls", NULL, 21891); /* 2 fib(21) - 1 calls, each counted once */
    expect_i32(&p, "down", ARGS(I32(7), I32(16)), 0);
    /* An out-of-bounds load at every depth parity: in f or in its twin. */
    for (uint32_t d = 0; d < 6; d++)
        expect_trap(&p, "down", ARGS(I32(d), I32(65536)), ENG_TRAP_MEMORY_OOB,
                    "out of bounds memory access in function 2 (down)");
    expect_trap(&p, "down", ARGS(I32(100000000), I32(0)), ENG_TRAP_STACK_EXHAUSTED,
                "call stack exhausted in function 2 (down)");
    /* fib(60): 10^12 calls, no loop: only the entries' fuel stops it. */
    expect_deadline(&p, "fib", ARGS(I32(60)), 50, "deadline exceeded in function 0 (fib)");
    expect_i32(&p, "fib", ARGS(I32(10)), 55);
    expect_deadline(&p, "sor", ARGS(I32(0)), 20, "deadline exceeded in function 3 (sor)");
    expect_deadline(&p, "sor2", ARGS(I32(1)), 20, "deadline exceeded in function 4 (sor2)");
    expect_deadline(&p, "tree", ARGS(I32(40)), 20, "deadline exceeded in function 5 (tree)");
    expect_i32(&p, "tree", ARGS(I32(4)), 3); /* 3^4 calls of tree(0) */
    pair_close(&p);
    mod_free(m);
}

/* Interrupts x every millisecond until told to stop: the first one may
 * land before eng_call, which clears it, so it keeps trying. */
typedef struct interrupter {
    eng_exec_t *x;
    int stop; /* atomic */
    pthread_t th;
} interrupter_t;

static void *interrupt_main(void *arg)
{
    interrupter_t *it = arg;
    struct timespec d = {0, 20 * 1000 * 1000};
    nanosleep(&d, NULL);
    while (!__atomic_load_n(&it->stop, __ATOMIC_ACQUIRE)) {
        eng_exec_interrupt(it->x);
        struct timespec ms = {0, 1000 * 1000};
        nanosleep(&ms, NULL);
    }
    return NULL;
}

static void test_interrupt_from_another_thread(void **state)
{
    (void)state;
    mod_t *m = mod_shared(wat_spin);
    pair_t p;
    pair_open(&p, m);
    const char *names[2] = {"spin", "fib"};
    const eng_val_t *args[2] = {NULL, ARGS(I64(60))};
    for (int k = 0; k < 2; k++) {
        res_t r[2];
        for (int t = 0; t < 2; t++) {
            interrupter_t it = {.x = p.t[t].x};
            /* a backstop: if the interrupt is lost, the deadline ends the
             * call with another message and the test fails, not hangs */
            eng_exec_set_deadline(it.x, eng_now_ns() + 5000 * MS);
            assert_int_equal(pthread_create(&it.th, NULL, interrupt_main, &it), 0);
            watchdog_arm(names[k]);
            r[t] = call_side(&p.t[t], names[k], args[k]);
            watchdog_disarm();
            __atomic_store_n(&it.stop, 1, __ATOMIC_RELEASE);
            pthread_join(it.th, NULL);
            eng_exec_set_deadline(it.x, 0);
            expect_trap_r(names[k], &r[t], ENG_TRAP_DEADLINE, "interrupted in function");
        }
        expect_same(names[k], &r[INTERP], &r[NATIVE], "interp", "native");
    }
    /* An interrupt that came before a call is cleared by it. */
    for (int t = 0; t < 2; t++) eng_exec_interrupt(p.t[t].x);
    expect_i32(&p, "count", ARGS(I32(1000)), 1000);
    pair_close(&p);
}

typedef struct yield_count {
    int calls;
    int interrupt_at; /* 0: never */
} yield_count_t;

static void on_yield(eng_exec_t *x, void *ud)
{
    yield_count_t *y = ud;
    y->calls++;
    if (y->calls == y->interrupt_at) eng_exec_interrupt(x);
}

static void test_yield_hook_in_native_loops(void **state)
{
    (void)state;
    mod_t *m = mod_shared(wat_spin);
    pair_t p;
    pair_open(&p, m);
    yield_count_t y[2] = {{0, 0}, {0, 0}};
    for (int t = 0; t < 2; t++) eng_exec_set_yield(p.t[t].x, on_yield, &y[t]);
    /* 3,000,000 loop back-edges: the hook runs every few thousand (the
     * interpreter every 10,000, native code less often), never zero times */
    expect_i32(&p, "count", ARGS(I32(3000000)), 3000000);
    for (int t = 0; t < 2; t++)
        if (y[t].calls < 10) fail_msg("%s: the yield hook ran %d times in 3,000,000 iterations",
                                      tier_name[t], y[t].calls);
    /* function entries count too: fib(27) is ~630,000 calls */
    for (int t = 0; t < 2; t++) y[t].calls = 0;
    expect_i64(&p, "fib", ARGS(I64(27)), 196418);
    for (int t = 0; t < 2; t++)
        if (y[t].calls < 2) fail_msg("%s: the yield hook ran %d times in fib(27)", tier_name[t],
                                     y[t].calls);
    /* the hook runs before the deadline check: an interrupt it raises on
     * its third run stops the guest right there */
    for (int t = 0; t < 2; t++) y[t] = (yield_count_t){0, 3};
    watchdog_arm("spin with a yield hook that interrupts");
    expect_trap(&p, "spin", NULL, ENG_TRAP_DEADLINE, "interrupted in function 0 (spin)");
    watchdog_disarm();
    for (int t = 0; t < 2; t++) assert_int_equal(y[t].calls, 3);
    for (int t = 0; t < 2; t++) eng_exec_set_yield(p.t[t].x, NULL, NULL);
    pair_close(&p);
}

/* ==== main ================================================================ */

static int group_setup(void **state)
{
    (void)state;
    return native_pair_setup("test_native_traps");
}

static int group_teardown(void **state)
{
    (void)state;
    return native_pair_teardown();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_trap_unreachable),
        cmocka_unit_test(test_trap_memory_load_bounds),
        cmocka_unit_test(test_trap_memory_store_bounds),
        cmocka_unit_test(test_trap_integer),
        cmocka_unit_test(test_trap_conversions),
        cmocka_unit_test(test_trap_call_indirect_and_tables),
        cmocka_unit_test(test_trap_memory_inlined_names_callee),
        cmocka_unit_test(test_trap_bulk_memory),
        cmocka_unit_test(test_trap_stack_main_thread),
        cmocka_unit_test(test_trap_stack_big_frames),
        cmocka_unit_test(test_trap_stack_small_stacks),
        cmocka_unit_test(test_trap_stack_pool_fiber),
        cmocka_unit_test(test_deadline_stops_loop_and_recursion),
        cmocka_unit_test(test_deadline_stops_bulk_memory),
        cmocka_unit_test(test_loop_headers_count),
        cmocka_unit_test(test_self_recursion_twin),
        cmocka_unit_test(test_interrupt_from_another_thread),
        cmocka_unit_test(test_yield_hook_in_native_loops),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
