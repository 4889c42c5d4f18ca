/*
 * test_native.c — the native tier (src/engine/native_*.c) against the
 * interpreter: the same module, instantiated once interpreted and once with
 * native code attached, must give the same results, the same trap kinds and
 * the same trap messages, word for word.
 *
 * Sections, in order:
 *   1. traps: every kind, memory bounds exactly at the edge, stores that trap
 *      leave earlier writes and write nothing themselves, stack exhaustion on
 *      the main thread, on a 128 KiB fiber, on a small pthread, on the
 *      runtime pool's fibers, big frames
 *   2. interruption: deadlines (loops, deep recursion), eng_exec_interrupt
 *      from another thread, the yield hook
 *   3. host functions: arguments and results bit-exact, host traps and exit,
 *      re-entrancy (native -> host -> native), traps in the inner call, and
 *      unbounded re-entrancy in both tiers
 *   4. mixed tiers: imports across tiers, a shared table, traps crossing
 *   5. multi-value results, direct, indirect, from C, across instances
 *   6. memory: grow seen by the caller, shared imported memory, no memory
 *   7. images: from native instances, warm slots, native attached later
 *   8. artefacts: seal/open, damaged/foreign/stale refused, attach checks
 *   9. module edge cases: no functions, hundreds of params and locals,
 *      br_table, loops and ifs with params, select, globals, table ops
 *
 * The helpers both this file and test_native_loops.c use (assembling WAT,
 * both tiers side by side, calls compared, deadlines) are in native_pair.h.
 *
 * Modules are written in WAT below and assembled at test time with wabt's
 * wat2wasm (--debug-names, so that trap messages name functions: the tiers
 * must agree on those names too) in a temporary directory. A test that
 * expects native code checks that the function it calls really has native
 * code (eng_func_t.native, internal.h): a test that quietly ran the
 * interpreter twice could not fail.
 *
 * What can crash the process when the engine is wrong (guests on small
 * stacks, unbounded recursion through host functions, the runtime's pool
 * fibers) runs in a child process, so that a crash fails the test that
 * asked and the others still run. Calls that only a deadline or an
 * interrupt can end are watched: after 30 s the program aborts, naming
 * the call, instead of hanging.
 *
 * The bounds on elapsed time in section 2 are generous (2 s for a 50 ms
 * deadline): they separate "stopped" from "hung", they measure nothing.
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

/* Guests on small stacks: a fiber whose stack is given to the engine, and
 * a thread with a small stack of its own. */
typedef struct stack_run {
    eng_exec_t *x;
    eng_func_t *f;
    eng_val_t args[4], res[4];
    eng_trap_t trap;
    char msg[ENG_ERR_MAX];
    rt_fiber_t *fiber;   /* on a fiber: give its stack to the exec */
    size_t near_top;     /* bytes from the stack's top to the fiber's first frame */
    size_t used;         /* the fiber stack's high-water mark */
} stack_run_t;

static void stack_run_call(stack_run_t *r)
{
    r->trap = eng_call(r->x, r->f, r->args, r->res);
    snprintf(r->msg, sizeof r->msg, "%s", r->trap ? eng_exec_trap_message(r->x) : "");
}

/* fiber.h has no accessor for the lowest address of a fiber's stack, only
 * its size (rt_fiber_stack_size). Its top is page-aligned (the stack is
 * mapped in whole pages), and the fiber's first frame lies a few hundred
 * bytes below it, so the top is this frame's address rounded up to a page. */
static void on_fiber(void *arg)
{
    stack_run_t *r = arg;
    uintptr_t pg = (uintptr_t)sysconf(_SC_PAGESIZE);
    uintptr_t here = (uintptr_t)__builtin_frame_address(0);
    uintptr_t top = (here + pg - 1) & ~(pg - 1);
    size_t len = rt_fiber_stack_size(r->fiber);
    r->near_top = top - here;
    eng_exec_set_stack(r->x, (void *)(top - len), len);
    stack_run_call(r);
    eng_exec_set_stack(r->x, NULL, 0);
}

static void *on_thread(void *arg)
{
    stack_run_t *r = arg;
    eng_exec_set_stack(r->x, NULL, 0); /* the thread's own stack */
    stack_run_call(r);
    return NULL;
}

/* Runs in's call on a fresh fiber of fiber_bytes (0: on a thread with a
 * stack of thread_bytes) in a child process, and returns the outcome (the
 * run lives in shared memory meanwhile). A stack overflow kills the child
 * and fails the test naming the signal, instead of ending the program. */
static stack_run_t run_small_stack(const stack_run_t *in, size_t fiber_bytes, size_t thread_bytes,
                                   const char *what)
{
    stack_run_t *r = mmap(NULL, sizeof *r, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (r == MAP_FAILED) fail_msg("mmap failed");
    *r = *in;
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) fail_msg("fork failed");
    if (pid == 0) {
        if (fiber_bytes) {
            char err[256];
            r->fiber = rt_fiber_new(fiber_bytes, err, sizeof err);
            if (!r->fiber || rt_fiber_stack_size(r->fiber) != fiber_bytes) _exit(101);
            rt_fiber_paint(r->fiber);
            rt_fiber_start(r->fiber, on_fiber, r);
            rt_fiber_resume(r->fiber);
            if (!rt_fiber_finished(r->fiber)) _exit(102);
            r->used = rt_fiber_stack_high_water(r->fiber);
            rt_fiber_free(r->fiber);
            r->fiber = NULL;
        } else {
            pthread_attr_t a;
            pthread_t th;
            if (pthread_attr_init(&a) != 0 || pthread_attr_setstacksize(&a, thread_bytes) != 0 ||
                pthread_create(&th, &a, on_thread, r) != 0 || pthread_join(th, NULL) != 0)
                _exit(103);
        }
        _exit(0);
    }
    int st = 0;
    if (waitpid(pid, &st, 0) != pid) fail_msg("waitpid failed");
    stack_run_t out = *r;
    munmap(r, sizeof *r);
    if (WIFSIGNALED(st))
        fail_msg("%s: the process died with signal %d (%s)", what, WTERMSIG(st), strsignal(WTERMSIG(st)));
    if (WEXITSTATUS(st) != 0)
        fail_msg("%s: the child exited with status %d (see any sanitizer report above)", what,
                 WEXITSTATUS(st));
    if (fiber_bytes && out.near_top >= 4096)
        fail_msg("%s: the fiber's first frame is %zu bytes below its top", what, out.near_top);
    return out;
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

/* ==== 3. Host functions and re-entrancy =================================== */

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

/* ==== 4. Mixed tiers ====================================================== */

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

/* ==== 5. Multi-value ====================================================== */

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

/* ==== 6. Memory =========================================================== */

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

static uint32_t call_u32(eng_exec_t *x, eng_instance_t *i, const char *name, int tier,
                         const eng_val_t *args)
{
    res_t r = call_f(x, export_func(i, name, tier), args);
    if (r.trap != ENG_OK) fail_msg("%s (%s): %s", name, tier_name[tier], r.msg);
    return r.n ? r.v[0].i32 : 0;
}

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

/* ==== 7. Images =========================================================== */

static const char wat_image[] =
    "(module\n"
    "  (memory (export \"mem\") 1 4)\n"
    "  (global $g (export \"g\") (mut i32) (i32.const 5))\n"
    "  (table 3 funcref)\n"
    "  (elem (i32.const 0) $a $b)\n"
    "  (data (i32.const 16) \"image data\")\n"
    "  (func $a (result i32) (i32.const 11))\n"
    "  (func $b (result i32) (i32.const 22))\n"
    "  (func (export \"init\")\n"
    "    (global.set $g (i32.const 42))\n"
    "    (i32.store (i32.const 100) (i32.const 0xabcd))\n"
    "    (table.set 0 (i32.const 2) (ref.func $b)))\n"
    "  (func (export \"ci\") (param i32) (result i32) (call_indirect (result i32) (local.get 0)))\n"
    "  (func (export \"load\") (param i32) (result i32) (i32.load (local.get 0)))\n"
    "  (func (export \"store\") (param i32 i32) (i32.store (local.get 0) (local.get 1)))\n"
    "  (func (export \"bump\") (result i32)\n"
    "    (global.set $g (i32.add (global.get $g) (i32.const 1))) (global.get $g))\n"
    "  (func (export \"grow\") (param i32) (result i32) (memory.grow (local.get 0)))\n"
    "  (func (export \"size\") (result i32) (memory.size))\n"
    "  (func $div (export \"div\") (param i32 i32) (result i32)\n"
    "    (i32.div_u (local.get 0) (local.get 1)))\n"
    "  (func $spin (export \"spin\") (loop $l (br $l))))\n";

static bool have_pagemap(void)
{
    FILE *f = fopen("/proc/self/pagemap", "rb");
    if (!f) return false;
    fclose(f);
    return true;
}

/* Checks an instance made from wat_image's image (after "init") is in
 * that state, then changes everything it can. Returns its memory. */
static uint8_t *image_round(side_t *sd, const char *what)
{
    int t = sd->tier;
    eng_exec_t *x = sd->x;
    eng_instance_t *i = sd->i;
    assert_int_equal(eng_global_get(export_global(i, "g")).i32, 42);
    assert_int_equal(call_u32(x, i, "load", t, ARGS(I32(100))), 0xabcd);
    assert_int_equal(call_u32(x, i, "load", t, ARGS(I32(16))), 0x67616d69); /* "imag" */
    assert_int_equal(call_u32(x, i, "load", t, ARGS(I32(PG - 4))), 0);
    assert_int_equal(call_u32(x, i, "size", t, NULL), 1);
    assert_int_equal(call_u32(x, i, "ci", t, ARGS(I32(0))), 11);
    assert_int_equal(call_u32(x, i, "ci", t, ARGS(I32(2))), 22);
    /* dirty everything */
    call_u32(x, i, "store", t, ARGS(I32(100), I32(1)));
    call_u32(x, i, "store", t, ARGS(I32(PG - 4), I32(2)));
    assert_int_equal(call_u32(x, i, "bump", t, NULL), 43);
    assert_int_equal(call_u32(x, i, "grow", t, ARGS(I32(1))), 1);
    call_u32(x, i, "store", t, ARGS(I32(PG + 8), I32(3)));
    res_t r = call_f(x, export_func(i, "div", t), ARGS(I32(1), I32(0)));
    expect_trap_r(what, &r, ENG_TRAP_DIV_ZERO, "integer divide by zero in function 9 (div)");
    eng_exec_set_deadline(x, eng_now_ns() + 10 * MS);
    watchdog_arm("spin in an instance made from an image");
    r = call_f(x, export_func(i, "spin", t), NULL);
    watchdog_disarm();
    eng_exec_set_deadline(x, 0);
    expect_trap_r(what, &r, ENG_TRAP_DEADLINE, "deadline exceeded in function 10 (spin)");
    return eng_memory_data(eng_instance_memory(i));
}

static void test_image_native(void **state)
{
    (void)state;
    mod_t *m = mod_shared(wat_image);
    bool warm = have_pagemap();
    for (int t = 0; t < 2; t++) {
        side_t sd;
        side_open(&sd, t, m->tier[t], NULL, 0, NULL, NULL, 0);
        call_u32(sd.x, sd.i, "init", t, NULL);
        char err[ENG_ERR_MAX];
        eng_image_t *img = eng_image_new(sd.i, err, sizeof err);
        if (!img) fail_msg("eng_image_new (%s): %s", tier_name[t], err);
        assert_ptr_equal(eng_image_module(img), m->tier[t]);
        eng_store_free(sd.s); /* the image holds nothing of it */
        uint8_t *slot = NULL;
        for (int round = 0; round < 3; round++) {
            if (warm && round > 0) assert_int_equal(eng_image_warm_slots(img), 1);
            sd.s = eng_store_new();
            sd.i = eng_instance_from_image(sd.s, img, NULL, 0, err, sizeof err);
            if (!sd.i) fail_msg("eng_instance_from_image (%s): %s", tier_name[t], err);
            uint8_t *mem = image_round(&sd, tier_name[t]); /* checks the tier too */
            if (warm && round > 0) assert_ptr_equal(mem, slot); /* the warm slot, reset */
            slot = mem;
            eng_store_free(sd.s);
        }
        eng_image_free(img);
        eng_exec_free(sd.x);
    }
}

/* An image taken while the module was interpreted: once native code is
 * attached, instances made from the image run natively. */
static void test_image_then_attach(void **state)
{
    (void)state;
    size_t len;
    uint8_t *wasm = wat2wasm(wat_image, &len);
    eng_module_t *m = module_of(wasm, len);
    side_t sd;
    side_open(&sd, INTERP, m, NULL, 0, NULL, NULL, 0);
    call_u32(sd.x, sd.i, "init", INTERP, NULL);
    char err[ENG_ERR_MAX];
    eng_image_t *img = eng_image_new(sd.i, err, sizeof err);
    if (!img) fail_msg("eng_image_new: %s", err);
    eng_store_free(sd.s);
    attach_native(m, wasm, len);
    sd.tier = NATIVE;
    sd.s = eng_store_new();
    sd.i = eng_instance_from_image(sd.s, img, NULL, 0, err, sizeof err);
    if (!sd.i) fail_msg("eng_instance_from_image: %s", err);
    image_round(&sd, "image then attach");
    eng_store_free(sd.s);
    eng_image_free(img);
    eng_exec_free(sd.x);
    eng_module_free(m);
    free(wasm);
}

/* ==== 8. Artefacts and attaching ========================================== */

static const char wat_add[] =
    "(module (func (export \"f\") (param i32 i32) (result i32) (i32.add (local.get 0) (local.get 1))))";
static const char wat_sub[] = /* the same shape as wat_add: one function of the same type */
    "(module (func (export \"f\") (param i32 i32) (result i32) (i32.sub (local.get 0) (local.get 1))))";
static const char wat_two[] =
    "(module\n"
    "  (func $h (param i32) (result i32) (i32.mul (local.get 0) (i32.const 3)))\n"
    "  (func (export \"f\") (param i32 i32) (result i32)\n"
    "    (i32.add (call $h (local.get 0)) (local.get 1))))";

static void sha256(const uint8_t *p, size_t n, uint8_t out[32])
{
    assert_int_equal(EVP_Digest(p, n, out, NULL, EVP_sha256(), NULL), 1);
}

static uint8_t *compile_obj(const uint8_t *wasm, size_t len, size_t *objlen)
{
    char err[ENG_ERR_MAX];
    uint8_t *obj = NULL;
    if (!eng_native_compile(wasm, len, &obj, objlen, err, sizeof err))
        fail_msg("eng_native_compile: %s", err);
    return obj;
}

static bool refused_as_bad(const char *err)
{
    return strstr(err, "damaged") || strstr(err, "foreign") || strstr(err, "stale");
}

/* Re-MACs art (the layout in native_load.c: the HMAC-SHA-256 of
 * everything before it is the last 32 bytes), as someone holding the key
 * could. */
static void remac(uint8_t *art, size_t len, const uint8_t key[32])
{
    unsigned int n = 0;
    assert_non_null(HMAC(EVP_sha256(), key, 32, art, len - 32, art + len - 32, &n));
    assert_int_equal(n, 32);
}

static void test_artefact_seal_open(void **state)
{
    (void)state;
    size_t len, objlen, artlen, olen;
    uint8_t *wasm = wat2wasm(wat_add, &len);
    uint8_t *obj = compile_obj(wasm, len, &objlen);
    uint8_t key[ENG_NATIVE_KEY_BYTES], key2[ENG_NATIVE_KEY_BYTES], digest[32], digest2[32];
    for (int k = 0; k < 32; k++) key[k] = (uint8_t)(k * 37 + 1);
    memcpy(key2, key, 32);
    key2[31] ^= 1;
    sha256(wasm, len, digest);
    memcpy(digest2, digest, 32);
    digest2[0] ^= 0x80;
    char err[ENG_ERR_MAX];
    uint8_t *art = NULL;
    const uint8_t *o = NULL;
    if (!eng_native_seal(obj, objlen, digest, key, &art, &artlen, err, sizeof err))
        fail_msg("eng_native_seal: %s", err);
    assert_true(artlen > objlen + 32);

    /* round trip: the same object, inside the artefact, and it runs */
    if (!eng_native_open(art, artlen, digest, key, &o, &olen, err, sizeof err))
        fail_msg("eng_native_open: %s", err);
    assert_int_equal(olen, objlen);
    assert_true(o > art && o + olen <= art + artlen);
    assert_memory_equal(o, obj, objlen);
    eng_module_t *m = module_of(wasm, len);
    if (!eng_module_attach_native(m, o, olen, err, sizeof err)) fail_msg("attach: %s", err);
    side_t sd;
    side_open(&sd, NATIVE, m, NULL, 0, NULL, NULL, 0);
    assert_int_equal(call_u32(sd.x, sd.i, "f", NATIVE, ARGS(I32(2), I32(40))), 42);
    side_close(&sd);
    eng_module_free(m);

    /* a flipped bit anywhere: header, object, MAC */
    uint8_t *bad = malloc(artlen);
    assert_non_null(bad);
    unsigned tried = 0;
    for (size_t pos = 0; pos < artlen; pos += (pos < 96 ? 1 : 53)) {
        for (int bit = 0; bit < 8; bit += 7) {
            memcpy(bad, art, artlen);
            bad[pos] ^= (uint8_t)(1u << bit);
            err[0] = '\0';
            if (eng_native_open(bad, artlen, digest, key, &o, &olen, err, sizeof err))
                fail_msg("an artefact with byte %zu changed (of %zu) was opened", pos, artlen);
            if (!refused_as_bad(err))
                fail_msg("byte %zu changed: refused with \"%s\"", pos, err);
            tried++;
        }
    }
    for (size_t pos = artlen - 32; pos < artlen; pos++) { /* every byte of the MAC */
        memcpy(bad, art, artlen);
        bad[pos] ^= 0x10;
        assert_false(eng_native_open(bad, artlen, digest, key, &o, &olen, err, sizeof err));
        assert_true(refused_as_bad(err));
    }
    assert_true(tried > 100);
    /* cut short, or with a byte added */
    for (size_t cut = 0; cut < artlen; cut += cut < 128 ? 7 : 301) {
        err[0] = '\0';
        assert_false(eng_native_open(art, cut, digest, key, &o, &olen, err, sizeof err));
        if (!refused_as_bad(err)) fail_msg("cut to %zu bytes: refused with \"%s\"", cut, err);
    }
    uint8_t *longer = malloc(artlen + 1);
    memcpy(longer, art, artlen);
    longer[artlen] = 0;
    assert_false(eng_native_open(longer, artlen + 1, digest, key, &o, &olen, err, sizeof err));
    assert_true(refused_as_bad(err));
    free(longer);
    /* another key: foreign */
    assert_false(eng_native_open(art, artlen, digest, key2, &o, &olen, err, sizeof err));
    assert_true(refused_as_bad(err));
    /* another module */
    err[0] = '\0';
    assert_false(eng_native_open(art, artlen, digest2, key, &o, &olen, err, sizeof err));
    if (!strstr(err, "another module")) fail_msg("another module: refused with \"%s\"", err);
    /* Forged with the right key: another target (offset 12, the target
     * key's digest) is stale, another format version (offset 8) too. */
    memcpy(bad, art, artlen);
    bad[12] ^= 1;
    remac(bad, artlen, key);
    assert_false(eng_native_open(bad, artlen, digest, key, &o, &olen, err, sizeof err));
    if (!strstr(err, "stale")) fail_msg("another target: refused with \"%s\"", err);
    memcpy(bad, art, artlen);
    bad[8] ^= 2;
    remac(bad, artlen, key);
    assert_false(eng_native_open(bad, artlen, digest, key, &o, &olen, err, sizeof err));
    if (!strstr(err, "stale")) fail_msg("another version: refused with \"%s\"", err);
    /* sealing again gives an artefact that opens; the target names LLVM */
    assert_non_null(strstr(eng_native_target(), "llvm 19"));
    free(bad);
    free(art);
    free(obj);
    free(wasm);
}

static void test_attach_checks(void **state)
{
    (void)state;
    size_t lx, ly, ox, oy;
    uint8_t *wx = wat2wasm(wat_add, &lx), *wy = wat2wasm(wat_two, &ly);
    uint8_t *objx = compile_obj(wx, lx, &ox), *objy = compile_obj(wy, ly, &oy);
    char err[ENG_ERR_MAX];
    eng_module_t *my = module_of(wy, ly);
    assert_int_equal(eng_module_tier(my), ENG_TIER_INTERP);
    side_t before;
    side_open(&before, INTERP, my, NULL, 0, NULL, NULL, 0);
    assert_int_equal(call_u32(before.x, before.i, "f", INTERP, ARGS(I32(2), I32(1))), 7);

    /* X's code on Y: refused, Y stays interpreted and working */
    err[0] = '\0';
    assert_false(eng_module_attach_native(my, objx, ox, err, sizeof err));
    if (!strstr(err, "another module")) fail_msg("X's object on Y: refused with \"%s\"", err);
    assert_int_equal(eng_module_tier(my), ENG_TIER_INTERP);
    /* not an object at all, or a cut one */
    uint8_t zeros[64] = {0};
    err[0] = '\0';
    assert_false(eng_module_attach_native(my, zeros, sizeof zeros, err, sizeof err));
    assert_true(err[0] != '\0');
    err[0] = '\0';
    assert_false(eng_module_attach_native(my, objy, oy / 2, err, sizeof err));
    assert_true(err[0] != '\0');
    assert_int_equal(eng_module_tier(my), ENG_TIER_INTERP);
    side_t still;
    side_open(&still, INTERP, my, NULL, 0, NULL, NULL, 0);
    assert_int_equal(call_u32(still.x, still.i, "f", INTERP, ARGS(I32(3), I32(1))), 10);
    side_close(&still);

    /* Y's own code: attached; instances made before keep interpreting */
    if (!eng_module_attach_native(my, objy, oy, err, sizeof err)) fail_msg("attach: %s", err);
    assert_int_equal(eng_module_tier(my), ENG_TIER_NATIVE);
    assert_int_equal(call_u32(before.x, before.i, "f", INTERP, ARGS(I32(2), I32(1))), 7);
    side_t after;
    side_open(&after, NATIVE, my, NULL, 0, NULL, NULL, 0);
    assert_int_equal(call_u32(after.x, after.i, "f", NATIVE, ARGS(I32(2), I32(1))), 7);
    side_close(&after);
    /* a second attach is a no-op that succeeds, whatever it is given:
     * the first code stays */
    assert_true(eng_module_attach_native(my, objy, oy, err, sizeof err));
    assert_true(eng_module_attach_native(my, objx, ox, err, sizeof err));
    assert_int_equal(eng_module_tier(my), ENG_TIER_NATIVE);
    side_open(&after, NATIVE, my, NULL, 0, NULL, NULL, 0);
    assert_int_equal(call_u32(after.x, after.i, "f", NATIVE, ARGS(I32(5), I32(1))), 16);
    side_close(&after);
    side_close(&before);
    eng_module_free(my);

    /* what cannot be compiled is refused with a message */
    static const uint8_t junk[] = {0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, 0x0a, 0x05};
    uint8_t *o = NULL;
    size_t ol = 0;
    err[0] = '\0';
    assert_false(eng_native_compile(junk, sizeof junk, &o, &ol, err, sizeof err));
    assert_null(o);
    assert_true(err[0] != '\0');
    free(objx);
    free(objy);
    free(wx);
    free(wy);
}

/* engine.h: attach returns "false with a message when the object is not
 * m's". An object compiled from another module with the same counts of
 * functions, imports and types (wat_sub vs wat_add) is not m's either.
 * Until the object carried the module's SHA-256 (commit 4ce88b2), attach
 * compared only those counts and Y's instances silently ran X's code. */
static void test_attach_refuses_same_shape_other_module(void **state)
{
    (void)state;
    size_t lx, ly, ox;
    uint8_t *wx = wat2wasm(wat_add, &lx), *wy = wat2wasm(wat_sub, &ly);
    uint8_t *objx = compile_obj(wx, lx, &ox);
    eng_module_t *my = module_of(wy, ly);
    char err[ENG_ERR_MAX] = "";
    bool attached = eng_module_attach_native(my, objx, ox, err, sizeof err);
    if (attached) {
        side_t sd;
        side_open(&sd, NATIVE, my, NULL, 0, NULL, NULL, 0);
        uint32_t r = call_u32(sd.x, sd.i, "f", NATIVE, ARGS(I32(5), I32(3)));
        side_close(&sd);
        eng_module_free(my);
        free(objx);
        free(wx);
        free(wy);
        fail_msg("the object of (i32.add) was attached to a module of (i32.sub): f(5, 3) = %u, "
                 "the module says 2",
                 r);
    }
    assert_int_equal(eng_module_tier(my), ENG_TIER_INTERP);
    eng_module_free(my);
    free(objx);
    free(wx);
    free(wy);
}

/* ==== 9. Module edge cases ================================================ */

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

/* ==== call_indirect's type check ========================================== */

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

/* ==== Memory addresses near 4 GiB ========================================= */

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

/* ==== SIMD ================================================================ */

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
    return native_pair_setup("test_native");
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
        /* 1. traps */
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
        /* 2. interruption */
        cmocka_unit_test(test_deadline_stops_loop_and_recursion),
        cmocka_unit_test(test_loop_headers_count),
        cmocka_unit_test(test_self_recursion_twin),
        cmocka_unit_test(test_interrupt_from_another_thread),
        cmocka_unit_test(test_yield_hook_in_native_loops),
        /* 3. host functions */
        cmocka_unit_test(test_host_args_and_results),
        cmocka_unit_test(test_host_trap_and_exit),
        cmocka_unit_test(test_host_reentry),
        cmocka_unit_test(test_host_reentry_depth),
        cmocka_unit_test(test_host_reentry_unbounded_both_tiers),
        /* 4. mixed tiers */
        cmocka_unit_test(test_mixed_tiers),
        /* 5. multi-value */
        cmocka_unit_test(test_multi_value),
        /* 6. memory */
        cmocka_unit_test(test_memory_grow_seen_by_caller),
        cmocka_unit_test(test_memory_shared_import),
        cmocka_unit_test(test_memory_none),
        /* 7. images */
        cmocka_unit_test(test_image_native),
        cmocka_unit_test(test_image_then_attach),
        /* 8. artefacts and attaching */
        cmocka_unit_test(test_artefact_seal_open),
        cmocka_unit_test(test_attach_checks),
        cmocka_unit_test(test_attach_refuses_same_shape_other_module),
        /* 9. module edge cases */
        cmocka_unit_test(test_edge_no_functions),
        cmocka_unit_test(test_edge_many_params_and_locals),
        cmocka_unit_test(test_edge_br_table),
        cmocka_unit_test(test_edge_blocks_and_select),
        cmocka_unit_test(test_edge_globals),
        cmocka_unit_test(test_edge_table_ops),
        cmocka_unit_test(test_functype_keys),
        cmocka_unit_test(test_call_indirect_types),
        cmocka_unit_test(test_memory_address_wrap_and_limit),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
