/*
 * test_image.c — instance images and memory slots (src/engine/image.c):
 * an instance made from an image is in the same observable state as one
 * instantiated afresh (memory, globals, tables, dropped segments), state
 * set up by `wizer.initialize` is kept and the start function is not run
 * again, writes in one instance never reach another instance or the image,
 * imported host functions in tables are re-linked per instance, pooled
 * slots come back zeroed (plain memories) or restored (image memories),
 * and modules whose state an image cannot hold are refused with a message.
 * Warm slots (an image's memory reset in place for its next instance) are
 * test_warm.c.
 *
 * The test module, assembled with wat2wasm (bytes below):
 *
 * (module
 *   (import "env" "host" (func $host (result i32)))
 *   (memory (export "memory") 2 4)
 *   (table (export "table") 4 funcref)
 *   (global $g (export "g") (mut i32) (i32.const 7))
 *   (global $f (mut funcref) (ref.func $two))
 *   (data (i32.const 16) "hello image")
 *   (data $p "passive")
 *   (elem (i32.const 0) func $one $two $host)
 *   (elem $pe func $one)
 *   (func $one (result i32) i32.const 1)
 *   (func $two (result i32) i32.const 2)
 *   (func $start
 *     (i32.store (i32.const 100) (i32.const 0xdeadbeef))
 *     (global.set $g (i32.add (global.get $g) (i32.const 1))))
 *   (start $start)
 *   (func (export "wizer.initialize")
 *     (i32.store (i32.const 70000) (i32.const 42))
 *     (global.set $g (i32.const 100))
 *     (global.set $f (ref.func $host)))
 *   (func (export "call") (param i32) (result i32) (call_indirect (result i32) (local.get 0)))
 *   (func (export "load") (param i32) (result i32) (i32.load (local.get 0)))
 *   (func (export "store") (param i32 i32) (i32.store (local.get 0) (local.get 1)))
 *   (func (export "init_p") (memory.init $p (i32.const 200) (i32.const 0) (i32.const 7)))
 *   (func (export "drop_p") (data.drop $p))
 *   (func (export "tinit") (table.init $pe (i32.const 3) (i32.const 0) (i32.const 1)))
 *   (func (export "setf") (table.set 0 (i32.const 3) (global.get $f)))
 *   (func (export "grow") (param i32) (result i32) (memory.grow (local.get 0))))
 *
 * mod_impmem is (module (import "env" "mem" (memory 1))); mod_extref is
 * (module (table (export "t") 1 externref)).
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "engine/engine.h"
#include "engine/internal.h" /* eng_touch_count */

static const uint8_t mod_img[] = {
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, 0x01, 0x12, 0x04, 0x60, 0x00, 0x01, 0x7f, 0x60,
    0x00, 0x00, 0x60, 0x01, 0x7f, 0x01, 0x7f, 0x60, 0x02, 0x7f, 0x7f, 0x00, 0x02, 0x0c, 0x01, 0x03,
    0x65, 0x6e, 0x76, 0x04, 0x68, 0x6f, 0x73, 0x74, 0x00, 0x00, 0x03, 0x0d, 0x0c, 0x00, 0x00, 0x01,
    0x01, 0x02, 0x02, 0x03, 0x01, 0x01, 0x01, 0x01, 0x02, 0x04, 0x04, 0x01, 0x70, 0x00, 0x04, 0x05,
    0x04, 0x01, 0x01, 0x02, 0x04, 0x06, 0x0b, 0x02, 0x7f, 0x01, 0x41, 0x07, 0x0b, 0x70, 0x01, 0xd2,
    0x02, 0x0b, 0x07, 0x67, 0x0c, 0x06, 0x6d, 0x65, 0x6d, 0x6f, 0x72, 0x79, 0x02, 0x00, 0x05, 0x74,
    0x61, 0x62, 0x6c, 0x65, 0x01, 0x00, 0x01, 0x67, 0x03, 0x00, 0x10, 0x77, 0x69, 0x7a, 0x65, 0x72,
    0x2e, 0x69, 0x6e, 0x69, 0x74, 0x69, 0x61, 0x6c, 0x69, 0x7a, 0x65, 0x00, 0x04, 0x04, 0x63, 0x61,
    0x6c, 0x6c, 0x00, 0x05, 0x04, 0x6c, 0x6f, 0x61, 0x64, 0x00, 0x06, 0x05, 0x73, 0x74, 0x6f, 0x72,
    0x65, 0x00, 0x07, 0x06, 0x69, 0x6e, 0x69, 0x74, 0x5f, 0x70, 0x00, 0x08, 0x06, 0x64, 0x72, 0x6f,
    0x70, 0x5f, 0x70, 0x00, 0x09, 0x05, 0x74, 0x69, 0x6e, 0x69, 0x74, 0x00, 0x0a, 0x04, 0x73, 0x65,
    0x74, 0x66, 0x00, 0x0b, 0x04, 0x67, 0x72, 0x6f, 0x77, 0x00, 0x0c, 0x08, 0x01, 0x03, 0x09, 0x0d,
    0x02, 0x00, 0x41, 0x00, 0x0b, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0x01, 0x0c, 0x01, 0x02,
    0x0a, 0x81, 0x01, 0x0c, 0x04, 0x00, 0x41, 0x01, 0x0b, 0x04, 0x00, 0x41, 0x02, 0x0b, 0x15, 0x00,
    0x41, 0xe4, 0x00, 0x41, 0xef, 0xfd, 0xb6, 0xf5, 0x7d, 0x36, 0x02, 0x00, 0x23, 0x00, 0x41, 0x01,
    0x6a, 0x24, 0x00, 0x0b, 0x14, 0x00, 0x41, 0xf0, 0xa2, 0x04, 0x41, 0x2a, 0x36, 0x02, 0x00, 0x41,
    0xe4, 0x00, 0x24, 0x00, 0xd2, 0x00, 0x24, 0x01, 0x0b, 0x07, 0x00, 0x20, 0x00, 0x11, 0x00, 0x00,
    0x0b, 0x07, 0x00, 0x20, 0x00, 0x28, 0x02, 0x00, 0x0b, 0x09, 0x00, 0x20, 0x00, 0x20, 0x01, 0x36,
    0x02, 0x00, 0x0b, 0x0d, 0x00, 0x41, 0xc8, 0x01, 0x41, 0x00, 0x41, 0x07, 0xfc, 0x08, 0x01, 0x00,
    0x0b, 0x05, 0x00, 0xfc, 0x09, 0x01, 0x0b, 0x0c, 0x00, 0x41, 0x03, 0x41, 0x00, 0x41, 0x01, 0xfc,
    0x0c, 0x01, 0x00, 0x0b, 0x08, 0x00, 0x41, 0x03, 0x23, 0x01, 0x26, 0x00, 0x0b, 0x06, 0x00, 0x20,
    0x00, 0x40, 0x00, 0x0b, 0x0b, 0x1a, 0x02, 0x00, 0x41, 0x10, 0x0b, 0x0b, 0x68, 0x65, 0x6c, 0x6c,
    0x6f, 0x20, 0x69, 0x6d, 0x61, 0x67, 0x65, 0x01, 0x07, 0x70, 0x61, 0x73, 0x73, 0x69, 0x76, 0x65,
};
static const uint8_t mod_impmem[] = {
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, 0x02, 0x0c, 0x01, 0x03, 0x65, 0x6e, 0x76, 0x03,
    0x6d, 0x65, 0x6d, 0x02, 0x00, 0x01,
};
static const uint8_t mod_extref[] = {
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, 0x04, 0x04, 0x01, 0x6f, 0x00, 0x01, 0x07, 0x05,
    0x01, 0x01, 0x74, 0x01, 0x00,
};

static eng_module_t *mod;
static eng_exec_t *ex;

static eng_trap_t host_fn(eng_host_call_t *call, eng_val_t *args)
{
    args[0].i32 = (uint32_t)*(int *)call->env;
    return ENG_OK;
}

/* A store with the env.host import returning *value. */
static eng_store_t *store_with_host(int *value, eng_extern_t *imp)
{
    eng_store_t *s = eng_store_new();
    assert_non_null(s);
    imp->kind = ENG_EXTERN_FUNC;
    imp->u.func = eng_func_new_host(s, "()i", host_fn, value);
    assert_non_null(imp->u.func);
    return s;
}

static eng_instance_t *fresh(eng_store_t *s, const eng_extern_t *imp)
{
    char err[ENG_ERR_MAX];
    eng_instance_t *i = eng_instance_new(s, mod, imp, 1, ex, err, sizeof err);
    if (!i) fail_msg("instantiate: %s", err);
    return i;
}

static eng_instance_t *from_image(eng_store_t *s, const eng_image_t *img, const eng_extern_t *imp)
{
    char err[ENG_ERR_MAX];
    eng_instance_t *i = eng_instance_from_image(s, img, imp, 1, err, sizeof err);
    if (!i) fail_msg("from image: %s", err);
    return i;
}

static eng_image_t *image_of(eng_instance_t *inst)
{
    char err[ENG_ERR_MAX];
    eng_image_t *img = eng_image_new(inst, err, sizeof err);
    if (!img) fail_msg("image: %s", err);
    return img;
}

/* Calls export name with up to two i32 args; returns the trap. */
static eng_trap_t callx(eng_instance_t *i, const char *name, uint32_t a, uint32_t b, uint32_t *result)
{
    eng_func_t *f = eng_instance_func(i, name);
    assert_non_null(f);
    eng_val_t args[2] = {{.i32 = a}, {.i32 = b}}, res[1] = {{.i64 = 0}};
    eng_trap_t t = eng_call(ex, f, args, res);
    if (result) *result = res[0].i32;
    return t;
}

static uint32_t call1(eng_instance_t *i, const char *name, uint32_t a)
{
    uint32_t r = 0;
    assert_int_equal(callx(i, name, a, 0, &r), ENG_OK);
    return r;
}

static uint32_t global_g(eng_instance_t *i)
{
    eng_extern_t e;
    assert_true(eng_instance_export(i, "g", &e));
    return eng_global_get(e.u.global).i32;
}

static eng_memory_t *mem_of(eng_instance_t *i)
{
    eng_extern_t e;
    assert_true(eng_instance_export(i, "memory", &e));
    return e.u.memory;
}

static eng_table_t *table_of(eng_instance_t *i)
{
    eng_extern_t e;
    assert_true(eng_instance_export(i, "table", &e));
    return e.u.table;
}

static int setup(void **state)
{
    (void)state;
    char err[ENG_ERR_MAX];
    mod = eng_module_new(mod_img, sizeof mod_img, err, sizeof err);
    if (!mod) fail_msg("module: %s", err);
    ex = eng_exec_new(0);
    return ex ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    eng_exec_free(ex);
    eng_module_free(mod);
    return 0;
}

/* Right after instantiation, an image gives exactly the fresh state. */
static void test_same_state_as_fresh(void **state)
{
    (void)state;
    int v1 = 11, v2 = 22;
    eng_extern_t imp1, imp2;
    eng_store_t *s1 = store_with_host(&v1, &imp1), *s2 = store_with_host(&v2, &imp2);
    eng_instance_t *a = fresh(s1, &imp1);
    eng_image_t *img = image_of(a);
    eng_instance_t *b = from_image(s2, img, &imp2);

    eng_memory_t *ma = mem_of(a), *mb = mem_of(b);
    assert_int_equal(eng_memory_size(ma), 2 * ENG_PAGE_BYTES);
    assert_int_equal(eng_memory_size(mb), eng_memory_size(ma));
    assert_memory_equal(eng_memory_data(mb), eng_memory_data(ma), eng_memory_size(ma));
    assert_memory_equal(eng_memory_data(mb) + 16, "hello image", 11);
    assert_int_equal(call1(b, "load", 100), 0xdeadbeef);
    assert_int_equal(global_g(a), 8);
    assert_int_equal(global_g(b), 8); /* the start function ran once, before the capture */
    assert_int_equal(eng_table_size(table_of(b)), 4);
    assert_int_equal(call1(b, "call", 0), 1);
    assert_int_equal(call1(b, "call", 1), 2);
    /* Slot 2 is the imported host function: each instance its own. */
    assert_int_equal(call1(a, "call", 2), 11);
    assert_int_equal(call1(b, "call", 2), 22);
    void *ref = (void *)1;
    assert_true(eng_table_get(table_of(b), 3, &ref));
    assert_null(ref);
    /* Passive segments are live in both; the funcref global names $two. */
    assert_int_equal(callx(b, "init_p", 0, 0, NULL), ENG_OK);
    assert_memory_equal(eng_memory_data(mb) + 200, "passive", 7);
    assert_int_equal(callx(b, "tinit", 0, 0, NULL), ENG_OK);
    assert_int_equal(call1(b, "call", 3), 1);
    assert_int_equal(callx(b, "setf", 0, 0, NULL), ENG_OK);
    assert_int_equal(call1(b, "call", 3), 2);
    /* Memory grows past the image like any memory, up to the maximum. */
    assert_int_equal(call1(b, "grow", 2), 2);
    assert_int_equal(call1(b, "load", 3 * ENG_PAGE_BYTES + 8), 0);
    assert_int_equal(call1(b, "grow", 1), (uint32_t)-1);

    eng_image_free(img);
    eng_store_free(s1);
    eng_store_free(s2);
}

/* State made by wizer.initialize (memory, globals, a funcref global) is in
 * the image; instances from it do not run the start function again. */
static void test_wizer_initialize(void **state)
{
    (void)state;
    int v1 = 1, v2 = 2;
    eng_extern_t imp1, imp2;
    eng_store_t *s1 = store_with_host(&v1, &imp1);
    eng_instance_t *a = fresh(s1, &imp1);
    assert_int_equal(callx(a, "wizer.initialize", 0, 0, NULL), ENG_OK);
    assert_int_equal(callx(a, "drop_p", 0, 0, NULL), ENG_OK);
    eng_image_t *img = image_of(a);
    eng_store_free(s1); /* the image owes nothing to the template's store */

    eng_store_t *s2 = store_with_host(&v2, &imp2);
    eng_instance_t *b = from_image(s2, img, &imp2);
    assert_int_equal(call1(b, "load", 70000), 42);
    assert_int_equal(call1(b, "load", 100), 0xdeadbeef);
    assert_int_equal(global_g(b), 100);
    /* $f now names the host import, re-linked to this store's host. */
    assert_int_equal(callx(b, "setf", 0, 0, NULL), ENG_OK);
    assert_int_equal(call1(b, "call", 3), 2 /* v2 */);
    /* The passive data segment was dropped before the capture. */
    assert_int_equal(callx(b, "init_p", 0, 0, NULL), ENG_TRAP_MEMORY_OOB);
    assert_true(eng_image_memory_bytes(img) > 65536); /* 70000 is in the second page */
    assert_ptr_equal(eng_image_module(img), mod);
    eng_image_free(img);
    eng_store_free(s2);
}

/* Writes stay in their instance: never in the image, never in another
 * instance, never from the template after the capture. */
static void test_isolation(void **state)
{
    (void)state;
    int v = 0;
    eng_extern_t i0, i1, i2, i3;
    eng_store_t *s0 = store_with_host(&v, &i0);
    eng_instance_t *t = fresh(s0, &i0);
    eng_image_t *img = image_of(t);
    call1(t, "grow", 0);
    assert_int_equal(callx(t, "store", 16, 0x41414141, NULL), ENG_OK); /* template after capture */

    eng_store_t *s1 = store_with_host(&v, &i1), *s2 = store_with_host(&v, &i2);
    eng_instance_t *a = from_image(s1, img, &i1), *b = from_image(s2, img, &i2);
    uint32_t orig = call1(b, "load", 16);
    assert_int_not_equal(orig, 0x41414141);
    assert_int_equal(callx(a, "store", 16, 0x12345678, NULL), ENG_OK);
    assert_int_equal(callx(a, "store", 100000, 77, NULL), ENG_OK);
    assert_int_equal(call1(a, "load", 16), 0x12345678);
    assert_int_equal(call1(b, "load", 16), orig);
    assert_int_equal(call1(b, "load", 100000), 0);
    assert_int_equal(callx(b, "store", 16, 0x55, NULL), ENG_OK);
    assert_int_equal(call1(a, "load", 16), 0x12345678);
    eng_store_free(s1);
    eng_store_t *s3 = store_with_host(&v, &i3);
    eng_instance_t *c = from_image(s3, img, &i3);
    assert_int_equal(call1(c, "load", 16), orig);
    assert_int_equal(call1(c, "load", 100000), 0);
    assert_memory_equal(eng_memory_data(mem_of(c)) + 16, "hello image", 11);
    eng_store_free(s3);
    eng_store_free(s2);
    eng_store_free(s0);
    eng_image_free(img);
}

/* A released slot is reused, and comes back zeroed (plain memory) or in
 * the image's state (image memory), whatever the last user wrote. */
static void test_slot_reuse(void **state)
{
    (void)state;
    eng_store_t *s = eng_store_new();
    eng_memory_t *m = eng_memory_new(s, 1, 3);
    assert_non_null(m);
    uint8_t *base = eng_memory_data(m);
    assert_int_equal(eng_memory_grow(m, 1), 1);
    memset(base, 0xAB, 2 * ENG_PAGE_BYTES);
    eng_store_free(s);
    s = eng_store_new();
    m = eng_memory_new(s, 2, 3);
    assert_ptr_equal(eng_memory_data(m), base); /* same size class: the same slot */
    for (uint64_t k = 0; k < 2 * ENG_PAGE_BYTES; k++)
        if (base[k]) fail_msg("byte %llu of a reused slot is %u", (unsigned long long)k, base[k]);
    assert_int_equal(eng_memory_grow(m, 2), -1); /* the old memory's size is not inherited */
    eng_store_free(s);

    int v = 0;
    eng_extern_t imp;
    s = store_with_host(&v, &imp);
    eng_instance_t *t = fresh(s, &imp);
    eng_image_t *img = image_of(t);
    eng_store_free(s);
    s = store_with_host(&v, &imp);
    eng_instance_t *a = from_image(s, img, &imp);
    uint8_t *abase = eng_memory_data(mem_of(a));
    assert_int_equal(call1(a, "grow", 2), 2);
    memset(abase, 0xCD, 4 * ENG_PAGE_BYTES);
    eng_store_free(s);
    s = store_with_host(&v, &imp);
    eng_instance_t *b = from_image(s, img, &imp);
    assert_ptr_equal(eng_memory_data(mem_of(b)), abase);
    assert_int_equal(eng_memory_size(mem_of(b)), 2 * ENG_PAGE_BYTES);
    assert_memory_equal(abase + 16, "hello image", 11);
    assert_int_equal(call1(b, "load", 100), 0xdeadbeef);
    assert_int_equal(call1(b, "load", 1000), 0);
    assert_int_equal(call1(b, "load", 70000), 0);
    assert_int_equal(callx(b, "load", 2 * ENG_PAGE_BYTES, 0, NULL), ENG_TRAP_MEMORY_OOB);
    assert_int_equal(call1(b, "grow", 2), 2);
    assert_int_equal(call1(b, "load", 3 * ENG_PAGE_BYTES), 0);
    eng_store_free(s);
    eng_image_free(img);
}

/* The store's memory limit applies to instances from an image. */
static void test_image_memory_limit(void **state)
{
    (void)state;
    int v = 0;
    eng_extern_t imp;
    eng_store_t *s = store_with_host(&v, &imp);
    eng_image_t *img = image_of(fresh(s, &imp));
    eng_store_free(s);
    s = store_with_host(&v, &imp);
    eng_store_set_memory_limit(s, ENG_PAGE_BYTES);
    char err[ENG_ERR_MAX];
    assert_null(eng_instance_from_image(s, img, &imp, 1, err, sizeof err));
    assert_non_null(strstr(err, "limit is 1 pages"));
    eng_store_free(s);
    s = store_with_host(&v, &imp);
    eng_store_set_memory_limit(s, 3 * ENG_PAGE_BYTES);
    eng_instance_t *a = from_image(s, img, &imp);
    assert_int_equal(call1(a, "grow", 1), 2);
    assert_int_equal(call1(a, "grow", 1), (uint32_t)-1);
    eng_store_free(s);
    /* Wrong imports are refused as for eng_instance_new. */
    s = eng_store_new();
    eng_extern_t bad = {.kind = ENG_EXTERN_FUNC, .u.func = eng_func_new_host(s, "()I", host_fn, &v)};
    assert_null(eng_instance_from_image(s, img, &bad, 1, err, sizeof err));
    assert_non_null(strstr(err, "env.host"));
    assert_null(eng_instance_from_image(s, img, NULL, 0, err, sizeof err));
    assert_non_null(strstr(err, "1 imports, 0 were given"));
    eng_store_free(s);
    eng_image_free(img);
}

/* State an image cannot hold is refused with a message. */
/* A v128 global keeps all 16 bytes through an image (its high half lives
 * apart from eng_val_t): (module (global (export "g") (mut v128)
 * (v128.const i64x2 0x1111 0x2222))), then set to bytes 0x10..0x1f before
 * the capture. */
static void test_v128_global(void **state)
{
    (void)state;
    static const uint8_t mod_v128[] = {
        0x00, 0x61, 0x73, 0x6D, 0x01, 0x00, 0x00, 0x00, 0x06, 0x16, 0x01, 0x7B, 0x01, 0xFD, 0x0C,
        0x11, 0x11, 0, 0, 0, 0, 0, 0, 0x22, 0x22, 0, 0, 0, 0, 0, 0, 0x0B,
        0x07, 0x05, 0x01, 0x01, 'g', 0x03, 0x00,
    };
    char err[ENG_ERR_MAX];
    eng_module_t *m = eng_module_new(mod_v128, sizeof mod_v128, err, sizeof err);
    if (!m) fail_msg("%s", err);
    eng_store_t *s = eng_store_new();
    eng_instance_t *i = eng_instance_new(s, m, NULL, 0, ex, err, sizeof err);
    assert_non_null(i);
    eng_extern_t g;
    assert_true(eng_instance_export(i, "g", &g));
    uint8_t v[16], want[16] = {0x11, 0x11, 0, 0, 0, 0, 0, 0, 0x22, 0x22};
    eng_global_get_v128(g.u.global, v);
    assert_memory_equal(v, want, 16);
    for (int k = 0; k < 16; k++)
        want[k] = (uint8_t)(0x10 + k);
    eng_global_set_v128(g.u.global, want);
    eng_image_t *img = eng_image_new(i, err, sizeof err);
    if (!img) fail_msg("%s", err);
    eng_instance_t *j = eng_instance_from_image(s, img, NULL, 0, err, sizeof err);
    if (!j) fail_msg("%s", err);
    assert_true(eng_instance_export(j, "g", &g));
    eng_global_get_v128(g.u.global, v);
    assert_memory_equal(v, want, 16);
    eng_store_free(s);
    eng_image_free(img);
    eng_module_free(m);
}

static void test_unsupported(void **state)
{
    (void)state;
    char err[ENG_ERR_MAX];
    eng_module_t *m = eng_module_new(mod_impmem, sizeof mod_impmem, err, sizeof err);
    assert_non_null(m);
    eng_store_t *s = eng_store_new();
    eng_extern_t imp = {.kind = ENG_EXTERN_MEMORY, .u.memory = eng_memory_new(s, 1, 0xFFFFFFFFu)};
    eng_instance_t *i = eng_instance_new(s, m, &imp, 1, ex, err, sizeof err);
    assert_non_null(i);
    assert_null(eng_image_new(i, err, sizeof err));
    assert_non_null(strstr(err, "imports a memory"));
    eng_store_free(s);
    eng_module_free(m);

    m = eng_module_new(mod_extref, sizeof mod_extref, err, sizeof err);
    assert_non_null(m);
    s = eng_store_new();
    i = eng_instance_new(s, m, NULL, 0, ex, err, sizeof err);
    assert_non_null(i);
    eng_image_t *img = eng_image_new(i, err, sizeof err); /* all null: fine */
    assert_non_null(img);
    eng_image_free(img);
    eng_extern_t t;
    assert_true(eng_instance_export(i, "t", &t));
    assert_true(eng_table_set(t.u.table, 0, &err));
    assert_null(eng_image_new(i, err, sizeof err));
    assert_non_null(strstr(err, "table 0 element 0 holds an externref"));
    eng_store_free(s);
    eng_module_free(m);
}

/* Threads instantiating one image at once each see the image and only
 * their own writes. */
typedef struct par {
    const eng_image_t *img;
    int id;
    int bad;
} par_t;

static void *par_main(void *arg)
{
    par_t *p = arg;
    eng_exec_t *x = eng_exec_new(0);
    for (int k = 0; k < 200 && x; k++) {
        int v = p->id;
        eng_store_t *s = eng_store_new();
        eng_extern_t imp = {.kind = ENG_EXTERN_FUNC, .u.func = eng_func_new_host(s, "()i", host_fn, &v)};
        char err[ENG_ERR_MAX];
        eng_instance_t *i = eng_instance_from_image(s, p->img, &imp, 1, err, sizeof err);
        if (!i) { p->bad++; eng_store_free(s); continue; }
        uint8_t *d = eng_memory_data(eng_instance_memory(i));
        if (memcmp(d + 16, "hello image", 11) != 0 || d[1000] != 0) p->bad++;
        memset(d + 16, 'A' + p->id, 11);
        d[1000] = (uint8_t)p->id;
        eng_val_t a[1] = {{.i32 = 2}}, r[1];
        if (eng_call(x, eng_instance_func(i, "call"), a, r) != ENG_OK || r[0].i32 != (uint32_t)p->id) p->bad++;
        if (d[16] != 'A' + p->id) p->bad++;
        eng_store_free(s);
    }
    eng_exec_free(x);
    return NULL;
}

static void test_parallel(void **state)
{
    (void)state;
    int v = 0;
    eng_extern_t imp;
    eng_store_t *s = store_with_host(&v, &imp);
    eng_image_t *img = image_of(fresh(s, &imp));
    eng_store_free(s);
    pthread_t th[4];
    par_t p[4];
    for (int k = 0; k < 4; k++) {
        p[k] = (par_t){.img = img, .id = k + 1};
        assert_int_equal(pthread_create(&th[k], NULL, par_main, &p[k]), 0);
    }
    for (int k = 0; k < 4; k++) {
        pthread_join(th[k], NULL);
        assert_int_equal(p[k].bad, 0);
    }
    eng_image_free(img);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_same_state_as_fresh),
        cmocka_unit_test(test_wizer_initialize),
        cmocka_unit_test(test_isolation),
        cmocka_unit_test(test_slot_reuse),
        cmocka_unit_test(test_image_memory_limit),
        cmocka_unit_test(test_unsupported),
        cmocka_unit_test(test_v128_global),
        cmocka_unit_test(test_parallel),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
