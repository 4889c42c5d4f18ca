/*
 * test_decode.c — the module decoder (decode.c) and instantiation
 * (instance.c): malformed modules must fail with a message naming the fault
 * and its byte offset; good modules must decode to the right descriptors and
 * instantiate with their segments applied.
 *
 * Modules are hand-written byte arrays so every offset in the expectations
 * can be checked by counting.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "engine/engine.h"
#include "engine/internal.h"

#define HDR 0x00, 0x61, 0x73, 0x6D, 0x01, 0x00, 0x00, 0x00

/* Decodes bytes expecting failure; asserts the message names the offset
 * ("at byte 0x..") and contains `what`. */
static void expect_bad(const uint8_t *bytes, size_t len, size_t offset, const char *what)
{
    char err[ENG_ERR_MAX] = "";
    eng_module_t *m = eng_module_new(bytes, len, err, sizeof err);
    if (m) {
        eng_module_free(m);
        fail_msg("module was accepted; expected \"%s\"", what);
    }
    char at[32];
    snprintf(at, sizeof at, "at byte 0x%zx ", offset);
    if (!strstr(err, at) || !strstr(err, what))
        fail_msg("message \"%s\" lacks \"%s\" or \"%s\"", err, at, what);
}

#define BAD(off, what, ...)                                   \
    do {                                                      \
        static const uint8_t b_[] = {__VA_ARGS__};            \
        expect_bad(b_, sizeof b_, (off), (what));             \
    } while (0)

static eng_module_t *good(const uint8_t *bytes, size_t len)
{
    char err[ENG_ERR_MAX] = "";
    eng_module_t *m = eng_module_new(bytes, len, err, sizeof err);
    if (!m)
        fail_msg("module rejected: %s", err);
    return m;
}

/* ---- the header ---- */

static void test_bad_magic(void **state)
{
    (void)state;
    BAD(0x0, "magic header not detected", 0x00, 0x61, 0x73, 0x6E, 0x01, 0x00, 0x00, 0x00);
    BAD(0x0, "magic header not detected", 0xEF, 0xBB, 0xBF, 0x00, 0x61, 0x73, 0x6D, 0x01);
    BAD(0x4, "unknown binary version", 0x00, 0x61, 0x73, 0x6D, 0x02, 0x00, 0x00, 0x00);
    BAD(0x6, "unexpected end", 0x00, 0x61, 0x73, 0x6D, 0x01, 0x00);
    expect_bad(NULL, 0, 0, "unexpected end");
}

/* ---- section framing ---- */

static void test_unknown_section_id(void **state)
{
    (void)state;
    BAD(0x8, "malformed section id 13", HDR, 0x0D, 0x00);
}

static void test_section_too_long(void **state)
{
    (void)state;
    /* type section claims 5 bytes, 2 are there: the size is at 0x9 */
    BAD(0x9, "length out of bounds", HDR, 0x01, 0x05, 0x01, 0x60);
    /* a second module glued on: "asm" read as a custom section of 0x61 bytes */
    BAD(0x9, "length out of bounds", HDR, HDR);
}

static void test_truncated_section(void **state)
{
    (void)state;
    /* memory section: count 1, no entry; the count is at 0xa */
    BAD(0xa, "unexpected end of section", HDR, 0x05, 0x01, 0x01);
    /* global section: count 1, type and mutability, then nothing */
    BAD(0xd, "unexpected end of section", HDR, 0x06, 0x03, 0x01, 0x7F, 0x00);
}

static void test_section_size_mismatch(void **state)
{
    (void)state;
    /* type section says 1 type but holds 2: the extra bytes start at 0xe */
    BAD(0xe, "section size mismatch", HDR, 0x01, 0x07, 0x01, 0x60, 0x00, 0x00, 0x60, 0x00, 0x00);
}

static void test_section_order(void **state)
{
    (void)state;
    /* function section (3) before type section (1) */
    BAD(0xb, "unexpected content after last section", HDR, 0x03, 0x01, 0x00, 0x01, 0x01, 0x00);
    /* two memory sections */
    BAD(0xb, "unexpected content after last section", HDR, 0x05, 0x01, 0x00, 0x05, 0x01, 0x00);
    /* custom sections may go anywhere, data count goes before code */
    static const uint8_t ok[] = {HDR, 0x00, 0x02, 0x01, 'a', 0x05, 0x03, 0x01, 0x00, 0x01,
                                 0x0C, 0x01, 0x00, 0x00, 0x01, 0x00, 0x0B, 0x01, 0x00};
    eng_module_free(good(ok, sizeof ok));
    /* data count after the data section */
    BAD(0x10, "unexpected content", HDR, 0x05, 0x03, 0x01, 0x00, 0x01, 0x0B, 0x01, 0x00, 0x0C, 0x01, 0x00);
}

static void test_leb_too_long(void **state)
{
    (void)state;
    /* memory minimum 2 written in six bytes; the fifth byte (at 0x10) still
     * has its continuation bit set. */
    static const uint8_t b[] = {HDR, 0x05, 0x08, 0x01, 0x00, 0x82, 0x80, 0x80, 0x80, 0x80, 0x00};
    char err[ENG_ERR_MAX];
    eng_module_t *m = eng_module_new(b, sizeof b, err, sizeof err);
    assert_null(m);
    assert_non_null(strstr(err, "integer representation too long"));
    assert_non_null(strstr(err, "(memory section)"));
    /* minimum 2 with unused bits set in the last byte */
    BAD(0x11, "integer too large", HDR, 0x05, 0x07, 0x01, 0x00, 0x82, 0x80, 0x80, 0x80, 0x70);
}

/* ---- types and imports ---- */

/* A module computing on v128 (WebAssembly 2.0 SIMD):
 *   (func (export "f") (param v128) (result v128)
 *     local.get 0  v128.const i32x4 1 2 3 4  i32x4.add) */
static const uint8_t mod_simd_add[] = {
    HDR, 0x01, 0x06, 0x01, 0x60, 0x01, 0x7B, 0x01, 0x7B, /* type */
    0x03, 0x02, 0x01, 0x00,                               /* func */
    0x07, 0x05, 0x01, 0x01, 'f', 0x00, 0x00,              /* export */
    0x0A, 0x1B, 0x01, 0x19, 0x00, 0x20, 0x00,             /* code */
    0xFD, 0x0C, 1, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 4, 0, 0, 0,
    0xFD, 0xAE, 0x01, 0x0B,
};

static void test_v128(void **state)
{
    (void)state;
    /* a v128 param, a v128 global */
    static const uint8_t param[] = {HDR, 0x01, 0x05, 0x01, 0x60, 0x01, 0x7B, 0x00};
    eng_module_free(good(param, sizeof param));
    static const uint8_t global[] = {HDR, 0x06, 0x16, 0x01, 0x7B, 0x00, 0xFD, 0x0C,
                                     1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 0x0B};
    eng_module_free(good(global, sizeof global));
    /* i8x16.extract_lane_s 16: the lane byte is at 0x2b */
    BAD(0x2b, "invalid lane index", HDR, 0x01, 0x04, 0x01, 0x60, 0x00, 0x00, 0x03, 0x02, 0x01,
        0x00, 0x0A, 0x1A, 0x01, 0x18, 0x00, 0xFD, 0x0C, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        0, 0, 0xFD, 0x15, 0x10, 0x1A, 0x0B);
    /* 0xfd 0x9a (at 0x29) is a reserved opcode */
    BAD(0x29, "unknown opcode 0xfd 0x9a", HDR, 0x01, 0x04, 0x01, 0x60, 0x00, 0x00, 0x03, 0x02,
        0x01, 0x00, 0x0A, 0x1A, 0x01, 0x18, 0x00, 0xFD, 0x0C, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        0, 0, 0, 0, 0xFD, 0x9A, 0x01, 0x1A, 0x0B);

    /* eng_call passes a v128 in two eng_val_t (engine.h): lanes add. */
    eng_module_t *m = good(mod_simd_add, sizeof mod_simd_add);
    char err[ENG_ERR_MAX];
    eng_store_t *s = eng_store_new();
    eng_exec_t *x = eng_exec_new(0);
    eng_instance_t *inst = eng_instance_new(s, m, NULL, 0, x, err, sizeof err);
    assert_non_null(inst);
    eng_func_t *f = eng_instance_func(inst, "f");
    assert_int_equal(eng_func_param_slots(f), 2);
    assert_int_equal(eng_func_result_slots(f), 2);
    uint32_t in[4] = {10, 20, 30, 0xFFFFFFFFu}, out[4];
    eng_val_t args[2], res[2];
    memcpy(args, in, 16);
    assert_int_equal(eng_call(x, f, args, res), ENG_OK);
    memcpy(out, res, 16);
    assert_int_equal(out[0], 11);
    assert_int_equal(out[1], 22);
    assert_int_equal(out[2], 33);
    assert_int_equal(out[3], 3); /* wraps */
    eng_exec_free(x);
    eng_store_free(s);
    eng_module_free(m);
}

static void test_bad_utf8_import_name(void **state)
{
    (void)state;
    /* import "\xff" "x" (memory 0): the name starts at 0xb */
    BAD(0xb, "malformed UTF-8 encoding", HDR, 0x02, 0x08, 0x01, 0x01, 0xFF, 0x01, 'x', 0x02, 0x00, 0x00);
    /* an overlong encoding of '/' (0xc0 0xaf) in the field name at 0xd */
    BAD(0xd, "malformed UTF-8 encoding", HDR, 0x02, 0x09, 0x01, 0x01, 'm', 0x02, 0xC0, 0xAF, 0x02, 0x00, 0x00);
    /* a surrogate half, U+D800 = ed a0 80 */
    BAD(0xb, "malformed UTF-8 encoding", HDR, 0x02, 0x0A, 0x01, 0x03, 0xED, 0xA0, 0x80, 0x01, 'x', 0x02, 0x00,
        0x00);
}

static void test_bad_import_kind(void **state)
{
    (void)state;
    BAD(0xe, "malformed import kind", HDR, 0x02, 0x05, 0x01, 0x01, 'a', 0x00, 0x04);
    /* a function import naming a type that does not exist */
    BAD(0xe, "unknown type 0", HDR, 0x02, 0x05, 0x01, 0x00, 0x00, 0x00, 0x00);
}

static void test_two_memories(void **state)
{
    (void)state;
    BAD(0xd, "multiple memories", HDR, 0x05, 0x05, 0x02, 0x00, 0x00, 0x00, 0x00);
    /* one imported and one defined */
    BAD(0x14, "multiple memories", HDR, 0x02, 0x07, 0x01, 0x00, 0x01, 'm', 0x02, 0x00, 0x00, 0x05, 0x03, 0x01,
        0x00, 0x00);
}

static void test_limits(void **state)
{
    (void)state;
    BAD(0xb, "size minimum must not be greater than maximum", HDR, 0x05, 0x04, 0x01, 0x01, 0x02, 0x01);
    /* 65537 pages */
    BAD(0xb, "at most 65536 pages", HDR, 0x05, 0x05, 0x01, 0x00, 0x81, 0x80, 0x04);
    BAD(0xb, "malformed limits flags", HDR, 0x05, 0x03, 0x01, 0x02, 0x00);
    /* table limits flags; tables are not bound by 65536 */
    BAD(0xc, "malformed limits flags", HDR, 0x04, 0x04, 0x01, 0x70, 0x04, 0x00);
    static const uint8_t big[] = {HDR, 0x04, 0x08, 0x01, 0x70, 0x00, 0xFF, 0xFF, 0xFF, 0xFF, 0x0F};
    eng_module_free(good(big, sizeof big));
}

/* ---- functions and code ---- */

static void test_function_code_mismatch(void **state)
{
    (void)state;
    /* one function declared, no code section: reported at the end (0x12) */
    BAD(0x12, "function and code section have inconsistent lengths", HDR, 0x01, 0x04, 0x01, 0x60, 0x00, 0x00,
        0x03, 0x02, 0x01, 0x00);
    /* one function declared, two bodies: the count is at 0x14 */
    BAD(0x14, "function and code section have inconsistent lengths", HDR, 0x01, 0x04, 0x01, 0x60, 0x00, 0x00,
        0x03, 0x02, 0x01, 0x00, 0x0A, 0x07, 0x02, 0x02, 0x00, 0x0B, 0x02, 0x00, 0x0B);
    /* a function section naming type 1 of 1 */
    BAD(0x11, "unknown type 1", HDR, 0x01, 0x04, 0x01, 0x60, 0x00, 0x00, 0x03, 0x02, 0x01, 0x01);
}

static void test_data_count_mismatch(void **state)
{
    (void)state;
    /* data count 2, data section with 1 passive segment; its count at 0xd */
    BAD(0xd, "data count and data section have inconsistent lengths", HDR, 0x0C, 0x01, 0x02, 0x0B, 0x04,
        0x01, 0x01, 0x01, 'x');
    /* data count 1 and no data section at all */
    BAD(0xb, "data count and data section have inconsistent lengths", HDR, 0x0C, 0x01, 0x01);
}

static void test_start_function(void **state)
{
    (void)state;
    /* start names function 0 of type (i32) -> () */
    BAD(0x15, "start function", HDR, 0x01, 0x05, 0x01, 0x60, 0x01, 0x7F, 0x00, 0x03, 0x02, 0x01, 0x00, 0x08,
        0x01, 0x00, 0x0A, 0x04, 0x01, 0x02, 0x00, 0x0B);
    BAD(0xa, "unknown function 0", HDR, 0x08, 0x01, 0x00);
}

/* ---- globals and constant expressions ---- */

static void test_constant_expressions(void **state)
{
    (void)state;
    /* (global i64 (i32.const 1)) */
    BAD(0xd, "type mismatch", HDR, 0x06, 0x06, 0x01, 0x7E, 0x00, 0x41, 0x01, 0x0B);
    /* (global i32 (global.get 0)) with no imported global */
    BAD(0xd, "unknown global 0", HDR, 0x06, 0x06, 0x01, 0x7F, 0x00, 0x23, 0x00, 0x0B);
    /* (global i32 (i32.const 0) (i32.const 0)): two values */
    BAD(0xf, "type mismatch", HDR, 0x06, 0x08, 0x01, 0x7F, 0x00, 0x41, 0x00, 0x41, 0x00, 0x0B);
    /* (global i32 (i32.const 0) (i32.ctz)): not constant */
    BAD(0xf, "constant expression required", HDR, 0x06, 0x07, 0x01, 0x7F, 0x00, 0x41, 0x00, 0x68, 0x0B);
    /* (global i32 (nop)) */
    BAD(0xd, "constant expression required", HDR, 0x06, 0x05, 0x01, 0x7F, 0x00, 0x01, 0x0B);
    /* global.get of an imported *mutable* global */
    BAD(0x16, "constant expression required", HDR, 0x02, 0x07, 0x01, 0x00, 0x01, 'g', 0x03, 0x7F, 0x01, 0x06,
        0x06, 0x01, 0x7F, 0x00, 0x23, 0x00, 0x0B);
    /* malformed mutability 2 */
    BAD(0xc, "malformed mutability", HDR, 0x06, 0x06, 0x01, 0x7F, 0x02, 0x41, 0x00, 0x0B);
    /* ref.null with a non-reference type */
    BAD(0xe, "malformed reference type", HDR, 0x06, 0x06, 0x01, 0x70, 0x00, 0xD0, 0x7F, 0x0B);
}

/* ---- exports ---- */

static void test_duplicate_export(void **state)
{
    (void)state;
    /* memory exported twice as "m"; the second name is at 0x14 */
    BAD(0x14, "duplicate export name", HDR, 0x05, 0x03, 0x01, 0x00, 0x00, 0x07, 0x09, 0x02, 0x01, 'm', 0x02,
        0x00, 0x01, 'm', 0x02, 0x00);
    /* names differing only after a NUL are distinct */
    static const uint8_t ok[] = {HDR, 0x05, 0x03, 0x01, 0x00, 0x00, 0x07, 0x0B, 0x02, 0x01, 'm',
                                 0x02, 0x00, 0x03, 'm', 0x00, 'x', 0x02, 0x00};
    eng_module_free(good(ok, sizeof ok));
    /* exporting memory 1 of 1 */
    BAD(0x12, "unknown memory 1", HDR, 0x05, 0x03, 0x01, 0x00, 0x00, 0x07, 0x05, 0x01, 0x01, 'm', 0x02, 0x01);
}

/* ---- segments ---- */

static void test_segments(void **state)
{
    (void)state;
    /* data segment for memory 0 with no memory */
    BAD(0xb, "unknown memory 0", HDR, 0x0B, 0x06, 0x01, 0x00, 0x41, 0x00, 0x0B, 0x00);
    /* data segment flags 3 */
    BAD(0xb, "malformed data segment kind", HDR, 0x0B, 0x02, 0x01, 0x03);
    /* elem segment for table 0 with no table */
    BAD(0xb, "unknown table 0", HDR, 0x09, 0x06, 0x01, 0x00, 0x41, 0x00, 0x0B, 0x00);
    /* elem flags 8 */
    BAD(0xb, "malformed elements segment kind", HDR, 0x09, 0x02, 0x01, 0x08);
    /* passive segment (flags 1) with element kind 1 */
    BAD(0xc, "malformed element kind", HDR, 0x09, 0x03, 0x01, 0x01, 0x01, 0x00);
    /* passive expression segment (flags 5) typed i32 */
    BAD(0xc, "malformed reference type", HDR, 0x09, 0x03, 0x01, 0x05, 0x7F, 0x00);
    /* active funcref segment into an externref table */
    BAD(0x11, "type mismatch", HDR, 0x04, 0x04, 0x01, 0x6F, 0x00, 0x01, 0x09, 0x06, 0x01, 0x00, 0x41, 0x00,
        0x0B, 0x00);
    /* an offset of type i64 */
    BAD(0x12, "type mismatch", HDR, 0x04, 0x04, 0x01, 0x70, 0x00, 0x01, 0x09, 0x06, 0x01, 0x00, 0x42, 0x00,
        0x0B, 0x00);
    /* declarative segment naming function 0 of 0 */
    BAD(0xe, "unknown function 0", HDR, 0x09, 0x05, 0x01, 0x03, 0x00, 0x01, 0x00);
}

/* ---- good modules ---- */

static void test_empty_module(void **state)
{
    (void)state;
    static const uint8_t b[] = {HDR};
    eng_module_t *m = good(b, sizeof b);
    assert_int_equal(eng_module_import_count(m), 0);
    assert_int_equal(eng_module_export_count(m), 0);
    eng_module_free(m);
}

/* (type (func)) (type (func (param i32 i64) (result f32)))
 * (import "env" "f" (func (type 1)))
 * (import "env" "g" (global (mut i32)))
 * (import "env" "mem" (memory 1 2))
 * (func (type 0))
 * (global f64 (f64.const 0))
 * (export "run" (func 1)) (export "g" (global 0)) (export "h" (global 1))
 * (export "f" (func 0))
 * plus a name section naming function 1 "run_it". */
static const uint8_t imports_exports[] = {
    HDR,
    0x01, 0x0A, 0x02, 0x60, 0x00, 0x00, 0x60, 0x02, 0x7F, 0x7E, 0x01, 0x7D,
    0x02, 0x1E, 0x03,
    0x03, 'e', 'n', 'v', 0x01, 'f', 0x00, 0x01,
    0x03, 'e', 'n', 'v', 0x01, 'g', 0x03, 0x7F, 0x01,
    0x03, 'e', 'n', 'v', 0x03, 'm', 'e', 'm', 0x02, 0x01, 0x01, 0x02,
    0x03, 0x02, 0x01, 0x00,
    0x06, 0x0D, 0x01, 0x7C, 0x00, 0x44, 0, 0, 0, 0, 0, 0, 0, 0, 0x0B,
    0x07, 0x13, 0x04, 0x03, 'r', 'u', 'n', 0x00, 0x01, 0x01, 'g', 0x03, 0x00, 0x01, 'h', 0x03, 0x01,
    0x01, 'f', 0x00, 0x00,
    0x0A, 0x04, 0x01, 0x02, 0x00, 0x0B,
    0x00, 0x10, 0x04, 'n', 'a', 'm', 'e', 0x01, 0x09, 0x01, 0x01, 0x06, 'r', 'u', 'n', '_', 'i', 't',
};

static void test_imports_exports(void **state)
{
    (void)state;
    eng_module_t *m = good(imports_exports, sizeof imports_exports);
    eng_extern_desc_t d;

    assert_int_equal(eng_module_import_count(m), 3);
    eng_module_import(m, 0, &d);
    assert_string_equal(d.module, "env");
    assert_string_equal(d.name, "f");
    assert_int_equal(d.kind, ENG_EXTERN_FUNC);
    assert_string_equal(d.type, "(iI)f");
    eng_module_import(m, 1, &d);
    assert_string_equal(d.name, "g");
    assert_int_equal(d.kind, ENG_EXTERN_GLOBAL);
    assert_string_equal(d.type, "mut i");
    eng_module_import(m, 2, &d);
    assert_string_equal(d.name, "mem");
    assert_int_equal(d.kind, ENG_EXTERN_MEMORY);
    assert_string_equal(d.type, "");

    assert_int_equal(eng_module_export_count(m), 4);
    eng_module_export(m, 0, &d);
    assert_null(d.module);
    assert_string_equal(d.name, "run");
    assert_int_equal(d.kind, ENG_EXTERN_FUNC);
    assert_string_equal(d.type, "()");
    eng_module_export(m, 2, &d);
    assert_string_equal(d.name, "h");
    assert_int_equal(d.kind, ENG_EXTERN_GLOBAL);
    assert_string_equal(d.type, "F");
    eng_module_export(m, 3, &d);
    assert_string_equal(d.type, "(iI)f");

    /* exports are declared references; the name section was read */
    assert_true(m->func_declared[0] && m->func_declared[1]);
    assert_non_null(m->func_names);
    assert_null(m->func_names[0]);
    assert_string_equal(m->func_names[1], "run_it");
    eng_module_free(m);
}

static void test_malformed_name_section_ignored(void **state)
{
    (void)state;
    /* a "name" section whose function-name subsection is cut short */
    static const uint8_t b[] = {HDR, 0x00, 0x0A, 0x04, 'n', 'a', 'm', 'e', 0x01, 0x09, 0x05, 0x00, 0x00};
    eng_module_free(good(b, sizeof b));
    /* but a custom section's own name must be valid UTF-8 */
    BAD(0xa, "malformed UTF-8", HDR, 0x00, 0x02, 0x01, 0xFF);
}

/* ---- instantiation ---- */

static eng_instance_t *inst_of(eng_store_t *s, const eng_module_t *m, const eng_extern_t *im, uint32_t n)
{
    char err[ENG_ERR_MAX] = "";
    eng_instance_t *i = eng_instance_new(s, m, im, n, NULL, err, sizeof err);
    if (!i)
        fail_msg("instantiation failed: %s", err);
    return i;
}

static eng_trap_t host_nop(eng_host_call_t *call, eng_val_t *args)
{
    (void)call;
    (void)args;
    return ENG_OK;
}

/* A host type parsed once serves functions in many stores (WASI binds
 * every instance's imports this way). */
static void test_host_type_shared(void **state)
{
    (void)state;
    assert_null(eng_host_type_new("(ix)"));
    assert_null(eng_host_type_new("i)"));
    assert_null(eng_host_type_new(NULL));
    const eng_host_type_t *t = eng_host_type_new("(iI)f");
    const eng_host_type_t *wrong = eng_host_type_new("(i)f");
    assert_non_null(t);
    assert_non_null(wrong);
    eng_module_t *m = good(imports_exports, sizeof imports_exports);
    for (int k = 0; k < 2; k++) {
        eng_store_t *s = eng_store_new();
        eng_func_t *f = eng_func_new_host_typed(s, t, host_nop, NULL);
        assert_non_null(f);
        assert_null(eng_func_new_host_typed(s, NULL, host_nop, NULL));
        assert_string_equal(eng_func_signature(f), "(iI)f");
        assert_int_equal(eng_func_param_count(f), 2);
        assert_int_equal(eng_func_param_type(f, 1), ENG_I64);
        assert_int_equal(eng_func_result_type(f, 0), ENG_F32);
        eng_extern_t im[3] = {
            {.kind = ENG_EXTERN_FUNC, .u.func = f},
            {.kind = ENG_EXTERN_GLOBAL, .u.global = eng_global_new(s, ENG_I32, true, (eng_val_t){.i32 = 7})},
            {.kind = ENG_EXTERN_MEMORY, .u.memory = eng_memory_new(s, 1, 2)},
        };
        eng_extern_t e;
        assert_true(eng_instance_export(inst_of(s, m, im, 3), "f", &e));
        assert_ptr_equal(e.u.func, f);
        char err[ENG_ERR_MAX];
        im[0].u.func = eng_func_new_host_typed(s, wrong, host_nop, NULL);
        assert_null(eng_instance_new(s, m, im, 3, NULL, err, sizeof err));
        assert_non_null(strstr(err, "incompatible import type for env.f"));
        eng_store_free(s);
    }
    eng_module_free(m);
    eng_host_type_free(t);
    eng_host_type_free(wrong);
}

static void test_instantiate_imports(void **state)
{
    (void)state;
    eng_module_t *m = good(imports_exports, sizeof imports_exports);
    eng_store_t *s = eng_store_new();
    eng_func_t *f = eng_func_new_host(s, "(iI)f", host_nop, NULL);
    eng_func_t *wrong = eng_func_new_host(s, "(i)f", host_nop, NULL);
    eng_global_t *g = eng_global_new(s, ENG_I32, true, (eng_val_t){.i32 = 7});
    eng_global_t *gc = eng_global_new(s, ENG_I32, false, (eng_val_t){.i32 = 7});
    eng_memory_t *mem = eng_memory_new(s, 1, 2);
    eng_memory_t *mem_nomax = eng_memory_new(s, 1, ENG_NO_MAX);
    assert_non_null(f);
    assert_non_null(wrong);
    assert_non_null(mem);
    assert_null(eng_func_new_host(s, "(ix)", host_nop, NULL));
    assert_null(eng_func_new_host(s, "i)", host_nop, NULL));
    assert_int_equal(eng_func_param_count(f), 2);
    assert_int_equal(eng_func_param_type(f, 1), ENG_I64);
    assert_int_equal(eng_func_result_type(f, 0), ENG_F32);

    eng_extern_t im[3] = {
        {.kind = ENG_EXTERN_FUNC, .u.func = f},
        {.kind = ENG_EXTERN_GLOBAL, .u.global = g},
        {.kind = ENG_EXTERN_MEMORY, .u.memory = mem},
    };
    char err[ENG_ERR_MAX];
    eng_instance_t *inst = inst_of(s, m, im, 3);
    eng_extern_t e;
    assert_true(eng_instance_export(inst, "g", &e));
    assert_ptr_equal(e.u.global, g);
    assert_true(eng_instance_export(inst, "f", &e));
    assert_ptr_equal(e.u.func, f);
    eng_func_t *run = eng_instance_func(inst, "run");
    assert_non_null(run);
    assert_string_equal(eng_func_signature(run), "()");
    assert_null(eng_instance_func(inst, "g"));
    assert_null(eng_instance_func(inst, "nope"));
    assert_ptr_equal(eng_instance_memory(inst), mem);

    /* wrong function type */
    im[0].u.func = wrong;
    assert_null(eng_instance_new(s, m, im, 3, NULL, err, sizeof err));
    assert_non_null(strstr(err, "incompatible import type for env.f"));
    im[0].u.func = f;
    /* immutable global for a mutable import */
    im[1].u.global = gc;
    assert_null(eng_instance_new(s, m, im, 3, NULL, err, sizeof err));
    assert_non_null(strstr(err, "incompatible import type for env.g"));
    im[1].u.global = g;
    /* memory without a maximum where 1..2 is wanted */
    im[2].u.memory = mem_nomax;
    assert_null(eng_instance_new(s, m, im, 3, NULL, err, sizeof err));
    assert_non_null(strstr(err, "incompatible import type for env.mem"));
    /* wrong kind */
    im[2].kind = ENG_EXTERN_GLOBAL;
    im[2].u.global = g;
    assert_null(eng_instance_new(s, m, im, 3, NULL, err, sizeof err));
    assert_non_null(strstr(err, "expected memory, got global"));
    /* wrong count */
    assert_null(eng_instance_new(s, m, im, 2, NULL, err, sizeof err));
    eng_store_free(s);
    eng_module_free(m);
}

/* (memory 1) (table 3 funcref) (func) (global i32 (i32.const 2))
 * (elem (i32.const 1) func 0 0) (data (i32.const 65534) "ab")
 * (export "t" (table 0)) (export "m" (memory 0)) */
static const uint8_t segments[] = {
    HDR,
    0x01, 0x04, 0x01, 0x60, 0x00, 0x00,
    0x03, 0x02, 0x01, 0x00,
    0x04, 0x04, 0x01, 0x70, 0x00, 0x03,
    0x05, 0x03, 0x01, 0x00, 0x01,
    0x07, 0x09, 0x02, 0x01, 't', 0x01, 0x00, 0x01, 'm', 0x02, 0x00,
    0x09, 0x08, 0x01, 0x00, 0x41, 0x01, 0x0B, 0x02, 0x00, 0x00,
    0x0A, 0x04, 0x01, 0x02, 0x00, 0x0B,
    0x0B, 0x0A, 0x01, 0x00, 0x41, 0xFE, 0xFF, 0x03, 0x0B, 0x02, 'a', 'b',
};

static void test_instantiate_segments(void **state)
{
    (void)state;
    eng_module_t *m = good(segments, sizeof segments);
    eng_store_t *s = eng_store_new();
    eng_instance_t *inst = inst_of(s, m, NULL, 0);
    eng_extern_t e;
    assert_true(eng_instance_export(inst, "m", &e));
    eng_memory_t *mem = e.u.memory;
    assert_int_equal(eng_memory_size(mem), 65536);
    assert_memory_equal(eng_memory_data(mem) + 65534, "ab", 2);
    assert_int_equal(eng_memory_data(mem)[0], 0);
    assert_true(eng_instance_export(inst, "t", &e));
    eng_table_t *t = e.u.table;
    void *r;
    assert_int_equal(eng_table_size(t), 3);
    assert_true(eng_table_get(t, 0, &r));
    assert_null(r);
    assert_true(eng_table_get(t, 1, &r));
    assert_non_null(r);
    assert_true(eng_table_get(t, 2, &r));
    assert_non_null(r);
    assert_false(eng_table_get(t, 3, &r));
    /* the active segments were dropped */
    assert_null(inst->elem_refs[0]);
    assert_true(inst->data_dropped[0]);
    eng_store_free(s);
    eng_module_free(m);
}

static void test_instantiate_out_of_bounds(void **state)
{
    (void)state;
    /* the same module with the data at 65535: one byte past the end */
    uint8_t b[sizeof segments];
    memcpy(b, segments, sizeof b);
    b[sizeof b - 7] = 0xFF;
    eng_module_t *m = good(b, sizeof b);
    eng_store_t *s = eng_store_new();
    char err[ENG_ERR_MAX];
    assert_null(eng_instance_new(s, m, NULL, 0, NULL, err, sizeof err));
    assert_non_null(strstr(err, "out of bounds memory access"));
    eng_store_free(s); /* before the module: instances may not outlive it */
    eng_module_free(m);
    s = eng_store_new();

    /* elem at offset 2 with two functions into a table of 3 */
    memcpy(b, segments, sizeof b);
    size_t k;
    for (k = 0; k + 3 < sizeof b; k++)
        if (b[k] == 0x09 && b[k + 1] == 0x08)
            break;
    b[k + 5] = 0x02;
    m = good(b, sizeof b);
    assert_null(eng_instance_new(s, m, NULL, 0, NULL, err, sizeof err));
    assert_non_null(strstr(err, "out of bounds table access"));
    eng_store_free(s);
    eng_module_free(m);
}

static void test_start_function_trap(void **state)
{
    (void)state;
    /* (func unreachable) (start 0) */
    static const uint8_t b[] = {HDR, 0x01, 0x04, 0x01, 0x60, 0x00, 0x00, 0x03, 0x02, 0x01, 0x00,
                                0x08, 0x01, 0x00, 0x0A, 0x05, 0x01, 0x03, 0x00, 0x00, 0x0B};
    eng_module_t *m = good(b, sizeof b);
    eng_store_t *s = eng_store_new();
    eng_exec_t *x = eng_exec_new(0);
    char err[ENG_ERR_MAX];
    assert_null(eng_instance_new(s, m, NULL, 0, x, err, sizeof err));
    assert_non_null(strstr(err, "start function trapped: "));
    assert_non_null(strstr(err, "unreachable"));
    eng_exec_free(x);
    eng_store_free(s);
    eng_module_free(m);
}

static void test_failed_instantiation_keeps_segments(void **state)
{
    (void)state;
    /* (import "" "t" (table 2 funcref)) (func)
     * (elem (i32.const 0) func 0) (elem (i32.const 5) func 0) */
    static const uint8_t b[] = {HDR, 0x01, 0x04, 0x01, 0x60, 0x00, 0x00,
                                0x02, 0x08, 0x01, 0x00, 0x01, 't', 0x01, 0x70, 0x00, 0x02,
                                0x03, 0x02, 0x01, 0x00,
                                0x09, 0x0D, 0x02, 0x00, 0x41, 0x00, 0x0B, 0x01, 0x00, 0x00, 0x41, 0x05, 0x0B,
                                0x01, 0x00,
                                0x0A, 0x04, 0x01, 0x02, 0x00, 0x0B};
    eng_module_t *m = good(b, sizeof b);
    eng_store_t *s = eng_store_new();
    eng_exec_t *x = eng_exec_new(0);
    eng_table_t *t = eng_table_new(s, ENG_FUNCREF, 2, ENG_NO_MAX, NULL);
    eng_extern_t im = {.kind = ENG_EXTERN_TABLE, .u.table = t};
    char err[ENG_ERR_MAX];
    assert_null(eng_instance_new(s, m, &im, 1, x, err, sizeof err));
    assert_non_null(strstr(err, "out of bounds table access"));
    /* the first segment stays written and its function stays callable */
    void *r = NULL;
    assert_true(eng_table_get(t, 0, &r));
    assert_non_null(r);
    assert_int_equal(eng_call(x, r, NULL, NULL), ENG_OK);
    assert_true(eng_table_get(t, 1, &r));
    assert_null(r);
    eng_exec_free(x);
    eng_store_free(s);
    eng_module_free(m);
}

/* ---- memories, tables, globals ---- */

static void test_memory_grow(void **state)
{
    (void)state;
    eng_store_t *s = eng_store_new();
    eng_memory_t *m = eng_memory_new(s, 1, 3);
    assert_non_null(m);
    uint8_t *base = eng_memory_data(m);
    base[65535] = 9;
    assert_int_equal(eng_memory_grow(m, 2), 1);
    assert_int_equal(eng_memory_size(m), 3 * 65536);
    assert_ptr_equal(eng_memory_data(m), base);
    assert_int_equal(base[65535], 9);
    assert_int_equal(base[3 * 65536 - 1], 0);
    assert_int_equal(eng_memory_grow(m, 1), -1);
    assert_int_equal(eng_memory_grow(m, 0), 3);
    /* the store's limit caps memories, rounded down to pages */
    eng_store_set_memory_limit(s, 2 * 65536 + 100);
    assert_null(eng_memory_new(s, 3, ENG_NO_MAX));
    eng_memory_t *l = eng_memory_new(s, 1, ENG_NO_MAX);
    assert_non_null(l);
    assert_int_equal(eng_memory_grow(l, 1), 1);
    assert_int_equal(eng_memory_grow(l, 1), -1);
    /* a memory that can hold nothing still has a base address */
    eng_memory_t *z = eng_memory_new(s, 0, 0);
    assert_non_null(z);
    assert_non_null(eng_memory_data(z));
    assert_int_equal(eng_memory_grow(z, 1), -1);
    eng_store_free(s);
}

static void test_table_and_global(void **state)
{
    (void)state;
    eng_store_t *s = eng_store_new();
    int x;
    eng_table_t *t = eng_table_new(s, ENG_EXTERNREF, 2, 4, &x);
    assert_non_null(t);
    void *r;
    assert_true(eng_table_get(t, 1, &r));
    assert_ptr_equal(r, &x);
    assert_int_equal(eng_table_grow(t, 2, NULL), 2);
    assert_int_equal(eng_table_size(t), 4);
    assert_true(eng_table_get(t, 3, &r));
    assert_null(r);
    assert_int_equal(eng_table_grow(t, 1, NULL), -1);
    assert_true(eng_table_set(t, 3, &x));
    assert_false(eng_table_set(t, 4, &x));
    assert_null(eng_table_new(s, ENG_I32, 1, 1, NULL));
    assert_null(eng_table_new(s, ENG_FUNCREF, ENG_MAX_TABLE_ELEMS + 1, ENG_NO_MAX, NULL));

    eng_global_t *g = eng_global_new(s, ENG_F64, true, (eng_val_t){.f64 = 1.5});
    assert_int_equal(eng_global_type(g), ENG_F64);
    assert_true(eng_global_get(g).f64 == 1.5);
    eng_global_set(g, (eng_val_t){.f64 = -2});
    assert_true(eng_global_get(g).f64 == -2);
    eng_store_free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bad_magic),
        cmocka_unit_test(test_unknown_section_id),
        cmocka_unit_test(test_section_too_long),
        cmocka_unit_test(test_truncated_section),
        cmocka_unit_test(test_section_size_mismatch),
        cmocka_unit_test(test_section_order),
        cmocka_unit_test(test_leb_too_long),
        cmocka_unit_test(test_v128),
        cmocka_unit_test(test_bad_utf8_import_name),
        cmocka_unit_test(test_bad_import_kind),
        cmocka_unit_test(test_two_memories),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_function_code_mismatch),
        cmocka_unit_test(test_data_count_mismatch),
        cmocka_unit_test(test_start_function),
        cmocka_unit_test(test_constant_expressions),
        cmocka_unit_test(test_duplicate_export),
        cmocka_unit_test(test_segments),
        cmocka_unit_test(test_empty_module),
        cmocka_unit_test(test_imports_exports),
        cmocka_unit_test(test_malformed_name_section_ignored),
        cmocka_unit_test(test_instantiate_imports),
        cmocka_unit_test(test_instantiate_segments),
        cmocka_unit_test(test_instantiate_out_of_bounds),
        cmocka_unit_test(test_start_function_trap),
        cmocka_unit_test(test_failed_instantiation_keeps_segments),
        cmocka_unit_test(test_memory_grow),
        cmocka_unit_test(test_host_type_shared),
        cmocka_unit_test(test_table_and_global),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
