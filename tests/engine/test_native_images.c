/*
 * test_native_images.c — native code outside a single run:
 *
 *   1. images: from native instances, warm slots, native attached later
 *   2. artefacts: seal/open, damaged/foreign/stale refused, attach checks
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
#include "pagemap.h"
#include "engine/internal.h" /* eng_func_t.native: which tier a function runs in */
#include "runtime/fiber.h"
#include "runtime/runtime.h" /* the pool, for guests on the daemon's own fibers */
#include "native_pair.h"

#include <uv.h>

#define PG ENG_PAGE_BYTES


/* ==== 1. Images =========================================================== */

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

/* ==== 2. Artefacts and attaching ========================================== */

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

/* ==== main ================================================================ */

static int group_setup(void **state)
{
    (void)state;
    return native_pair_setup("test_native_images");
}

static int group_teardown(void **state)
{
    (void)state;
    return native_pair_teardown();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_image_native),
        cmocka_unit_test(test_image_then_attach),
        cmocka_unit_test(test_artefact_seal_open),
        cmocka_unit_test(test_attach_checks),
        cmocka_unit_test(test_attach_refuses_same_shape_other_module),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
