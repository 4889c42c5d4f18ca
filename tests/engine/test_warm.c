/*
 * test_warm.c — warm slots (src/engine/image.c, touch.c): a freed
 * instance's memory slot is reset in place to its image's state and handed
 * to the image's next instance.
 *
 * The tests dirty pages everywhere a guest or host can (the image's non-zero
 * pages, zero pages inside and past the image's mapped part, pages added
 * by memory.grow), by few pages (copied back) and by many or in a large
 * memory (madvise), or only read them, and compare the next instance's
 * whole memory with the image byte for byte. They use mod_warm:
 *
 * (module
 *   (memory (export "memory") 2 600)
 *   (data (i32.const 16) "warm image data")
 *   (data (i32.const 70000) "second page")
 *   (func (export "load") (param i32) (result i32) (i32.load (local.get 0)))
 *   (func (export "load8") (param i32) (result i32) (i32.load8_u (local.get 0)))
 *   (func (export "store") (param i32 i32) (i32.store (local.get 0) (local.get 1)))
 *   (func (export "fill") (param i32 i32 i32)
 *     (memory.fill (local.get 0) (local.get 1) (local.get 2)))
 *   (func (export "grow") (param i32) (result i32) (memory.grow (local.get 0)))
 *   (func (export "size") (result i32) (memory.size)))
 *
 * mod_warm0 is the same without the data segments and with (memory 0 8).
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
#include "pagemap.h"
#include "engine/internal.h" /* eng_touch_count */

static const uint8_t mod_warm[] = {
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, 0x01, 0x15, 0x04, 0x60, 0x01, 0x7f, 0x01, 0x7f,
    0x60, 0x02, 0x7f, 0x7f, 0x00, 0x60, 0x03, 0x7f, 0x7f, 0x7f, 0x00, 0x60, 0x00, 0x01, 0x7f, 0x03,
    0x07, 0x06, 0x00, 0x00, 0x01, 0x02, 0x00, 0x03, 0x05, 0x05, 0x01, 0x01, 0x02, 0xd8, 0x04, 0x07,
    0x36, 0x07, 0x06, 0x6d, 0x65, 0x6d, 0x6f, 0x72, 0x79, 0x02, 0x00, 0x04, 0x6c, 0x6f, 0x61, 0x64,
    0x00, 0x00, 0x05, 0x6c, 0x6f, 0x61, 0x64, 0x38, 0x00, 0x01, 0x05, 0x73, 0x74, 0x6f, 0x72, 0x65,
    0x00, 0x02, 0x04, 0x66, 0x69, 0x6c, 0x6c, 0x00, 0x03, 0x04, 0x67, 0x72, 0x6f, 0x77, 0x00, 0x04,
    0x04, 0x73, 0x69, 0x7a, 0x65, 0x00, 0x05, 0x0a, 0x33, 0x06, 0x07, 0x00, 0x20, 0x00, 0x28, 0x02,
    0x00, 0x0b, 0x07, 0x00, 0x20, 0x00, 0x2d, 0x00, 0x00, 0x0b, 0x09, 0x00, 0x20, 0x00, 0x20, 0x01,
    0x36, 0x02, 0x00, 0x0b, 0x0b, 0x00, 0x20, 0x00, 0x20, 0x01, 0x20, 0x02, 0xfc, 0x0b, 0x00, 0x0b,
    0x06, 0x00, 0x20, 0x00, 0x40, 0x00, 0x0b, 0x04, 0x00, 0x3f, 0x00, 0x0b, 0x0b, 0x27, 0x02, 0x00,
    0x41, 0x10, 0x0b, 0x0f, 0x77, 0x61, 0x72, 0x6d, 0x20, 0x69, 0x6d, 0x61, 0x67, 0x65, 0x20, 0x64,
    0x61, 0x74, 0x61, 0x00, 0x41, 0xf0, 0xa2, 0x04, 0x0b, 0x0b, 0x73, 0x65, 0x63, 0x6f, 0x6e, 0x64,
    0x20, 0x70, 0x61, 0x67, 0x65,
};
static const uint8_t mod_warm0[] = {
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, 0x01, 0x15, 0x04, 0x60, 0x01, 0x7f, 0x01, 0x7f,
    0x60, 0x02, 0x7f, 0x7f, 0x00, 0x60, 0x03, 0x7f, 0x7f, 0x7f, 0x00, 0x60, 0x00, 0x01, 0x7f, 0x03,
    0x07, 0x06, 0x00, 0x00, 0x01, 0x02, 0x00, 0x03, 0x05, 0x04, 0x01, 0x01, 0x00, 0x08, 0x07, 0x36,
    0x07, 0x06, 0x6d, 0x65, 0x6d, 0x6f, 0x72, 0x79, 0x02, 0x00, 0x04, 0x6c, 0x6f, 0x61, 0x64, 0x00,
    0x00, 0x05, 0x6c, 0x6f, 0x61, 0x64, 0x38, 0x00, 0x01, 0x05, 0x73, 0x74, 0x6f, 0x72, 0x65, 0x00,
    0x02, 0x04, 0x66, 0x69, 0x6c, 0x6c, 0x00, 0x03, 0x04, 0x67, 0x72, 0x6f, 0x77, 0x00, 0x04, 0x04,
    0x73, 0x69, 0x7a, 0x65, 0x00, 0x05, 0x0a, 0x33, 0x06, 0x07, 0x00, 0x20, 0x00, 0x28, 0x02, 0x00,
    0x0b, 0x07, 0x00, 0x20, 0x00, 0x2d, 0x00, 0x00, 0x0b, 0x09, 0x00, 0x20, 0x00, 0x20, 0x01, 0x36,
    0x02, 0x00, 0x0b, 0x0b, 0x00, 0x20, 0x00, 0x20, 0x01, 0x20, 0x02, 0xfc, 0x0b, 0x00, 0x0b, 0x06,
    0x00, 0x20, 0x00, 0x40, 0x00, 0x0b, 0x04, 0x00, 0x3f, 0x00, 0x0b,
};

static eng_module_t *wmod;
static eng_exec_t *ex;

/* An image of t (what the image tests, test_image.c, check in detail). */
static eng_image_t *image_of(eng_instance_t *t)
{
    char err[ENG_ERR_MAX];
    eng_image_t *img = eng_image_new(t, err, sizeof err);
    if (!img) fail_msg("image: %s", err);
    return img;
}

static int setup(void **state)
{
    (void)state;
    char err[ENG_ERR_MAX];
    wmod = eng_module_new(mod_warm, sizeof mod_warm, err, sizeof err);
    if (!wmod) fail_msg("module mod_warm: %s", err);
    ex = eng_exec_new(0);
    return ex ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    eng_exec_free(ex);
    eng_module_free(wmod);
    return 0;
}

#define PG ENG_PAGE_BYTES
#define IMG_SIZE (2 * PG)           /* mod_warm's initial memory */
#define SP 4096                     /* a system page: the unit of the reset */
/* The image warm_image makes, in 4 KiB pages: 0 holds "warm image data",
 * 2-4 a pattern the host wrote before the capture, 17 "second page" (at
 * 70000); 1 and 5-16 are zero inside the image's mapped part (its first 18
 * pages); 18-31 are the zero rest of the initial memory. */
#define IMG_MAPPED (18 * SP)

/* Whether the byte at p can be read (false, not a fault, when it cannot):
 * the kernel reads it for a write to a pipe. */
static bool readable(const void *p)
{
    int fds[2];
    if (pipe(fds) != 0) fail_msg("pipe failed");
    bool ok = write(fds[1], p, 1) == 1;
    close(fds[0]);
    close(fds[1]);
    return ok;
}

/* Without /proc/self/pagemap there are no warm slots (image.c). */
#define NEED_WARM_SLOTS()                                                                            \
    do {                                                                                             \
        if (!have_pagemap()) skip();                                                                 \
    } while (0)

typedef struct winst {
    eng_store_t *s;
    eng_instance_t *i;
    eng_memory_t *m;
    uint8_t *p;
} winst_t;

static eng_trap_t wcallx(eng_exec_t *x, eng_instance_t *i, const char *name, uint32_t a, uint32_t b,
                         uint32_t c, uint32_t *result)
{
    eng_func_t *f = eng_instance_func(i, name);
    if (!f) return ENG_TRAP_HOST;
    eng_val_t args[3] = {{.i32 = a}, {.i32 = b}, {.i32 = c}}, res[1] = {{.i64 = 0}};
    eng_trap_t t = eng_call(x, f, args, res);
    if (result) *result = res[0].i32;
    return t;
}

static uint32_t wcall(winst_t *w, const char *name, uint32_t a, uint32_t b, uint32_t c)
{
    uint32_t r = 0;
    eng_trap_t t = wcallx(ex, w->i, name, a, b, c, &r);
    if (t != ENG_OK) fail_msg("%s(%u, %u, %u): %s", name, a, b, c, eng_trap_name(t));
    return r;
}

/* An instance of img in a new store (memory limit `limit` bytes, 0: none). */
static bool wnew_limit(const eng_image_t *img, uint64_t limit, winst_t *w, char *err, size_t errlen)
{
    w->s = eng_store_new();
    if (!w->s) return false;
    eng_store_set_memory_limit(w->s, limit);
    w->i = eng_instance_from_image(w->s, img, NULL, 0, err, errlen);
    if (!w->i) {
        eng_store_free(w->s);
        return false;
    }
    w->m = eng_instance_memory(w->i);
    w->p = eng_memory_data(w->m);
    return true;
}

static bool wnew_x(const eng_image_t *img, winst_t *w, char *err, size_t errlen)
{
    return wnew_limit(img, 0, w, err, errlen);
}

static winst_t wnew(const eng_image_t *img)
{
    winst_t w;
    char err[ENG_ERR_MAX];
    if (!wnew_x(img, &w, err, sizeof err)) fail_msg("from image: %s", err);
    return w;
}

static void wfree(winst_t *w)
{
    eng_store_free(w->s);
    memset(w, 0, sizeof *w);
}

static uint8_t warm_pattern(size_t k) { return (uint8_t)((k * 7 + 3) | 1); }

/* An image of mod_warm after the host wrote a pattern (as wizer.initialize
 * would); ref receives its memory (IMG_SIZE bytes). */
static eng_image_t *warm_image(uint8_t *ref)
{
    char err[ENG_ERR_MAX];
    eng_store_t *s = eng_store_new();
    eng_instance_t *t = eng_instance_new(s, wmod, NULL, 0, ex, err, sizeof err);
    if (!t) fail_msg("instantiate mod_warm: %s", err);
    uint8_t *d = eng_memory_data(eng_instance_memory(t));
    for (size_t k = 2 * SP; k < 5 * SP; k++)
        d[k] = warm_pattern(k);
    eng_image_t *img = image_of(t);
    memcpy(ref, d, IMG_SIZE);
    eng_store_free(s);
    assert_memory_equal(ref + 16, "warm image data", 15);
    assert_memory_equal(ref + 70000, "second page", 11);
    assert_int_equal(eng_image_memory_bytes(img), IMG_MAPPED);
    assert_int_equal(eng_image_warm_slots(img), 0);
    return img;
}

/* Names the first byte where got and want differ. */
static void expect_bytes(const uint8_t *got, const uint8_t *want, size_t n, const char *what)
{
    if (memcmp(got, want, n) == 0) return;
    for (size_t k = 0; k < n; k++)
        if (got[k] != want[k])
            fail_msg("%s: byte %zu (4 KiB page %zu) is 0x%02x, the image has 0x%02x", what, k, k / SP,
                     got[k], want[k]);
}

static void expect_zero(const uint8_t *p, size_t from, size_t to, const char *what)
{
    for (size_t k = from; k < to; k++)
        if (p[k]) fail_msg("%s: byte %zu (4 KiB page %zu) is 0x%02x, not 0", what, k, k / SP, p[k]);
}

/* w is exactly in the image's state: size, every byte, bounds. */
static void expect_image_state(winst_t *w, const uint8_t *ref, const char *what)
{
    assert_int_equal(eng_memory_size(w->m), IMG_SIZE);
    assert_int_equal(wcall(w, "size", 0, 0, 0), 2);
    expect_bytes(w->p, ref, IMG_SIZE, what);
    uint32_t v;
    memcpy(&v, ref + 16, 4);
    assert_int_equal(wcall(w, "load", 16, 0, 0), v);
    memcpy(&v, ref + IMG_SIZE - 4, 4);
    assert_int_equal(wcall(w, "load", IMG_SIZE - 4, 0, 0), v);
    /* Past the size traps, whatever a previous instance made accessible. */
    assert_int_equal(wcallx(ex, w->i, "load", IMG_SIZE - 3, 0, 0, NULL), ENG_TRAP_MEMORY_OOB);
    assert_int_equal(wcallx(ex, w->i, "load8", IMG_SIZE, 0, 0, NULL), ENG_TRAP_MEMORY_OOB);
    assert_int_equal(wcallx(ex, w->i, "load", 3 * PG, 0, 0, NULL), ENG_TRAP_MEMORY_OOB);
    assert_int_equal(wcallx(ex, w->i, "store", IMG_SIZE, 1, 0, NULL), ENG_TRAP_MEMORY_OOB);
    assert_int_equal(wcallx(ex, w->i, "fill", IMG_SIZE - 1, 9, 2, NULL), ENG_TRAP_MEMORY_OOB);
    assert_int_equal(w->p[IMG_SIZE - 1], ref[IMG_SIZE - 1]); /* the failed fill wrote nothing */
}

/* Frees w; the image then holds exactly one warm slot, `slot`, which the
 * next instance takes, in the image's state. */
static winst_t warm_again(winst_t *w, const eng_image_t *img, const uint8_t *slot, const uint8_t *ref,
                          const char *what)
{
    wfree(w);
    assert_int_equal(eng_image_warm_slots(img), 1);
    winst_t n = wnew(img);
    assert_ptr_equal(n.p, slot);
    expect_image_state(&n, ref, what);
    return n;
}

/* Grows w by `pages` and checks the new pages read as zeros (host and
 * guest). */
static void expect_grow_zero(winst_t *w, uint32_t pages, const char *what)
{
    uint32_t old = (uint32_t)(eng_memory_size(w->m) / PG);
    assert_int_equal(wcall(w, "grow", pages, 0, 0), old);
    assert_int_equal(eng_memory_size(w->m), (uint64_t)(old + pages) * PG);
    expect_zero(w->p, (size_t)old * PG, (size_t)(old + pages) * PG, what);
    assert_int_equal(wcall(w, "load", old * PG + 8, 0, 0), 0);
    assert_int_equal(wcall(w, "load", (old + pages) * PG - 4, 0, 0), 0);
}

/* Round r's writes, by the guest and by the host, in every kind of page:
 * the image's non-zero pages, zero pages inside the mapped part, the zero
 * rest, and two pages added by memory.grow. Few pages: the copying reset. */
static void dirty_few(winst_t *w, uint32_t r)
{
    uint32_t v = 0xA5A50000u + r;
    wcall(w, "store", 16 + 4 * r, v, 0);                 /* page 0: "warm image data" */
    wcall(w, "store", 2 * SP + 1000 * r + 12, v, 0);     /* pages 2-3: the pattern */
    wcall(w, "store", 70000 + 4, v, 0);                  /* page 17: "second page" */
    wcall(w, "store", (5 + r) * SP + 40, v, 0);          /* zero, mapped */
    memset(w->p + 4 * SP + 100, 0x11 + (int)r, 5000);    /* pattern page 4 and zero page 5 */
    memset(w->p + (12 + r) * SP + 7, 0x22, 300);         /* zero, mapped */
    memset(w->p + 20 * SP - 50, 0x33 + (int)r, 100);     /* zero rest, across pages 19/20 */
    wcall(w, "fill", (24 + r) * SP, 0x44, 10);           /* zero rest */
    w->p[IMG_SIZE - 1] = 0x55;                           /* the last byte of the memory */
    assert_int_equal(wcall(w, "grow", 2, 0, 0), 2);
    wcall(w, "store", IMG_SIZE + 8 + 4 * r, v, 0);       /* grown */
    memset(w->p + IMG_SIZE + PG + r * SP, 0x66, SP);     /* grown, a whole page */
    wcall(w, "fill", IMG_SIZE + 30000, 0x77, 10);
    w->p[4 * PG - 1] = 0x88;
    /* The writes are there. */
    assert_int_equal(wcall(w, "load", 16 + 4 * r, 0, 0), v);
    assert_int_equal(wcall(w, "load", 70004, 0, 0), v);
    assert_int_equal(wcall(w, "load", IMG_SIZE + 8 + 4 * r, 0, 0), v);
    assert_int_equal(wcall(w, "load8", 20 * SP, 0, 0), 0x33 + r);
    assert_int_equal(wcall(w, "load8", (24 + r) * SP + 9, 0, 0), 0x44);
    assert_int_equal(w->p[IMG_SIZE + 30009], 0x77);
    assert_int_equal(wcall(w, "load8", 4 * PG - 1, 0, 0), 0x88);
}

/* Writes in every kind of page come back as the image's bytes in the same
 * slot; the size is the image's again; grown pages read as zeros. */
static void test_warm_reset_in_place(void **state)
{
    (void)state;
    NEED_WARM_SLOTS();
    static uint8_t ref[IMG_SIZE];
    eng_image_t *img = warm_image(ref);
    winst_t w = wnew(img);
    uint8_t *slot = w.p;
    expect_image_state(&w, ref, "a new slot");
    for (uint32_t r = 0; r < 4; r++) {
        dirty_few(&w, r);
        wfree(&w);
        assert_int_equal(eng_image_warm_slots(img), 1);
        w = wnew(img);
        assert_int_equal(eng_image_warm_slots(img), 0);
        assert_ptr_equal(w.p, slot); /* the warm slot, not a new one */
        expect_image_state(&w, ref, "a warm slot after writes");
    }
    /* memory.grow made the slot's next two wasm pages accessible before:
     * they are zeros; the page after them is committed anew. */
    expect_grow_zero(&w, 2, "a warm slot's pages grown again");
    expect_grow_zero(&w, 1, "a page past what an earlier instance grew");
    assert_int_equal(wcall(&w, "grow", 600, 0, 0), (uint32_t)-1);
    /* A second instance meanwhile gets a slot mapped afresh: the same state. */
    winst_t f = wnew(img);
    assert_ptr_not_equal(f.p, slot);
    expect_image_state(&f, ref, "a slot mapped afresh");
    expect_bytes(w.p, f.p, IMG_SIZE, "warm slot against a fresh mapping");
    wfree(&f);
    wfree(&w);
    assert_int_equal(eng_image_warm_slots(img), 2);
    eng_image_free(img);
}

/* Private (written) 4 KiB pages in [p, p + n), from /proc/self/pagemap. */
static size_t private_pages(const uint8_t *p, size_t n)
{
    int fd = open("/proc/self/pagemap", O_RDONLY);
    if (fd < 0) fail_msg("cannot open /proc/self/pagemap");
    size_t count = 0;
    for (size_t k = 0; k < n / SP; k++) {
        uint64_t e = 0;
        if (pread(fd, &e, sizeof e, (off_t)(((uintptr_t)p / SP + k) * sizeof e)) != sizeof e)
            fail_msg("pagemap read failed");
        if ((e >> 63 & 1) && !(e >> 61 & 1) && (e >> 56 & 1)) count++; /* not the shared zero page */
    }
    close(fd);
    return count;
}

/* What a warm slot holds is bounded: after a reset, at most 64 written
 * pages stay private — also when an earlier instance grew further and
 * wrote past what the next one uses. */
static void test_warm_slot_bound(void **state)
{
    (void)state;
    NEED_WARM_SLOTS();
    static uint8_t ref[IMG_SIZE];
    eng_image_t *img = warm_image(ref);
    winst_t w = wnew(img);
    uint8_t *slot = w.p;
    /* A: grows by 4 wasm pages (64 system pages) and writes 60 of them. */
    assert_int_equal(wcall(&w, "grow", 4, 0, 0), 2);
    for (size_t pg = 0; pg < 60; pg++)
        w.p[IMG_SIZE + pg * SP + 5] = 0x7E;
    w = warm_again(&w, img, slot, ref, "after writes past the image");
    assert_true(private_pages(slot, 6 * (size_t)PG) <= 64);
    /* B: the image's size only; writes 10 pages inside it. The 60 pages A
     * left (zeroed, still private) count too, so this reset drops them. */
    for (size_t pg = 0; pg < 10; pg++)
        w.p[pg * SP + 9] ^= 0x5A;
    w = warm_again(&w, img, slot, ref, "after writes inside the image");
    size_t held = private_pages(slot, 6 * (size_t)PG);
    if (held > 64) fail_msg("a warm slot holds %zu private pages (at most 64)", held);
    expect_grow_zero(&w, 4, "pages an earlier instance wrote, grown again");
    wfree(&w);
    eng_image_free(img);
}

/* More than 64 dirty pages (a 1 MiB memset), then a memory larger than 32
 * MiB: reset with madvise. Then a copying reset of the same slot. */
static void test_warm_reset_many_pages(void **state)
{
    (void)state;
    NEED_WARM_SLOTS();
    static uint8_t ref[IMG_SIZE];
    eng_image_t *img = warm_image(ref);
    winst_t w = wnew(img);
    uint8_t *slot = w.p;

    assert_int_equal(wcall(&w, "grow", 30, 0, 0), 2); /* 2 MiB */
    memset(w.p, 0x5A, 1 << 20);                        /* 256 pages, the image's included */
    wcall(&w, "fill", 1 << 20, 0x6B, 1 << 19);
    w.p[(32 * PG) - 1] = 1;
    assert_int_equal(wcall(&w, "load8", 70000, 0, 0), 0x5A);
    w = warm_again(&w, img, slot, ref, "after 1 MiB of writes");
    expect_grow_zero(&w, 30, "grown after 1 MiB of writes");

    /* Larger than 32 MiB: a few writes, yet the whole memory is dropped. */
    assert_int_equal(wcall(&w, "grow", 488, 0, 0), 32); /* 520 pages, 32.5 MiB */
    wcall(&w, "store", 70000, 0x01020304, 0);
    w.p[100] = 0xEE;
    w.p[25 * SP] = 0xEE;
    wcall(&w, "store", 33000000, 0xFFFFFFFF, 0);
    w.p[520 * (size_t)PG - 1] = 0xEE;
    w = warm_again(&w, img, slot, ref, "after writes in a 32.5 MiB memory");
    expect_grow_zero(&w, 518, "grown after writes in a 32.5 MiB memory");

    /* A few writes again (a copying reset after a madvise one). */
    assert_int_equal(wcall(&w, "grow", 2, 0, 0), 520);
    wcall(&w, "store", 16, 0, 0);
    w.p[3 * SP] ^= 0xFF;
    w.p[521 * (size_t)PG] = 0xEE;
    w = warm_again(&w, img, slot, ref, "a few writes after a madvise reset");
    expect_grow_zero(&w, 520, "grown after a madvise reset");
    wfree(&w);
    eng_image_free(img);
}

/* Reads only: the pages a read maps (the image's file pages, the shared
 * zero page) must neither be mistaken for data nor break later writes. */
static void test_warm_reset_after_reads(void **state)
{
    (void)state;
    NEED_WARM_SLOTS();
    static uint8_t ref[IMG_SIZE];
    eng_image_t *img = warm_image(ref);
    winst_t w = wnew(img);
    uint8_t *slot = w.p;
    /* Rounds 0-1: every page of the memory plus one grown wasm page read
     * (30 zero pages present: copying reset); 2-3: 20 grown wasm pages read
     * (over 300: madvise). */
    for (uint32_t r = 0; r < 4; r++) {
        uint32_t grow = r < 2 ? 1 : 20;
        assert_int_equal(wcall(&w, "grow", grow, 0, 0), 2);
        uint32_t sum = 0;
        for (uint32_t a = 0; a < (2 + grow) * PG; a += SP)
            sum += wcall(&w, "load8", a + (r * 13) % SP, 0, 0);
        volatile uint8_t hsum = 0;
        for (size_t a = 0; a < (2 + grow) * (size_t)PG; a += SP)
            hsum += w.p[a + 2048];
        (void)hsum;
        (void)sum;
        w = warm_again(&w, img, slot, ref, "after reads");
        /* Writes still land, in pages only read before, and go away again. */
        wcall(&w, "store", 20 * SP, 0x12345678, 0);
        wcall(&w, "store", 3 * SP, 0x12345678, 0);
        assert_int_equal(wcall(&w, "grow", grow, 0, 0), 2);
        expect_zero(w.p, IMG_SIZE, (2 + grow) * (size_t)PG, "grown after reads");
        wcall(&w, "store", IMG_SIZE + 64, 0x12345678, 0);
        assert_int_equal(wcall(&w, "load", 20 * SP, 0, 0), 0x12345678);
        assert_int_equal(wcall(&w, "load", IMG_SIZE + 64, 0, 0), 0x12345678);
        w = warm_again(&w, img, slot, ref, "after reads then writes");
    }
    wfree(&w);
    eng_image_free(img);
}

/* At most 16 warm slots per image; each next instance takes one; trim
 * gives them all back, into the process pool, unmapped from the image. */
static void test_warm_slot_count_and_trim(void **state)
{
    (void)state;
    NEED_WARM_SLOTS();
    static uint8_t ref[IMG_SIZE];
    eng_image_t *img = warm_image(ref);
    winst_t w[20];
    uint8_t *seen[20];
    for (int k = 0; k < 20; k++) {
        w[k] = wnew(img);
        seen[k] = w[k].p;
        for (int j = 0; j < k; j++)
            assert_ptr_not_equal(seen[j], seen[k]);
        assert_int_equal(wcall(&w[k], "grow", 2, 0, 0), 2);
        /* Odd k: a few pages (copied back); even k: most (madvise). */
        memset(w[k].p + (size_t)k * SP, 0xC0 + k, k % 2 ? 3 * SP : 4 * PG - (size_t)k * SP);
    }
    assert_int_equal(eng_image_warm_slots(img), 0);
    for (int k = 0; k < 20; k++) {
        wfree(&w[k]);
        assert_int_equal(eng_image_warm_slots(img), k < 16 ? k + 1 : 16);
    }
    /* 16 instances take the 16 warm slots (each another), the 17th not. */
    for (int k = 0; k < 17; k++) {
        w[k] = wnew(img);
        assert_int_equal(eng_image_warm_slots(img), k < 16 ? 15 - k : 0);
        bool old = false;
        for (int j = 0; j < 16; j++)
            old |= w[k].p == seen[j];
        if (k < 16 && !old) fail_msg("instance %d did not get one of the warm slots", k);
        for (int j = 0; j < k; j++)
            assert_ptr_not_equal(w[j].p, w[k].p);
        expect_image_state(&w[k], ref, k < 16 ? "a warm slot" : "a slot past the warm ones");
        /* No memory.grow this time: the warm slots stay accessible over
         * the 4 wasm pages the first instances had. */
        memset(w[k].p + IMG_MAPPED - 10, 0x99, k % 2 ? 100 : IMG_SIZE - IMG_MAPPED + 10);
    }
    uint8_t *last[17];
    for (int k = 0; k < 17; k++) {
        last[k] = w[k].p;
        wfree(&w[k]);
    }
    assert_int_equal(eng_image_warm_slots(img), 16);
    eng_image_trim(img);
    assert_int_equal(eng_image_warm_slots(img), 0);
    eng_image_trim(img); /* nothing left: harmless */
    assert_int_equal(eng_image_warm_slots(img), 0);

    /* A trimmed slot went back to the pool whole: a plain memory of the
     * same size class takes it, reads zeros (not the image), and nothing
     * past its size is accessible, not even what the slot's first owner
     * grew. */
    eng_store_t *s = eng_store_new();
    eng_memory_t *m = eng_memory_new(s, 1, 600);
    assert_non_null(m);
    uint8_t *d = eng_memory_data(m);
    bool trimmed = false;
    for (int k = 0; k < 17; k++)
        trimmed |= d == last[k];
    assert_true(trimmed);
    expect_zero(d, 0, PG, "a plain memory in a trimmed slot");
    assert_true(readable(d + PG - 1));
    for (uint64_t off = PG; off < 5 * PG; off += SP)
        if (readable(d + off)) fail_msg("byte %llu of a trimmed slot is accessible past the size",
                                        (unsigned long long)off);
    assert_int_equal(eng_memory_grow(m, 3), 1);
    expect_zero(d, 0, 4 * PG, "a plain memory in a trimmed slot, grown");
    eng_store_free(s);

    /* Instances made after the trim are right, and their slots warm again. */
    for (int k = 0; k < 3; k++) {
        w[k] = wnew(img);
        expect_image_state(&w[k], ref, "an instance after a trim");
        dirty_few(&w[k], (uint32_t)k);
    }
    for (int k = 0; k < 3; k++)
        wfree(&w[k]);
    assert_int_equal(eng_image_warm_slots(img), 3);
    w[0] = wnew(img);
    expect_image_state(&w[0], ref, "a warm slot after a trim");
    wfree(&w[0]);
    eng_image_free(img);
}

/* eng_image_free before the stores of its instances: they keep working,
 * and their slots go back to the pool (not warm: the image is gone). */
static void test_image_free_first(void **state)
{
    (void)state;
    static uint8_t ref[IMG_SIZE];
    eng_image_t *img = warm_image(ref);
    winst_t a = wnew(img), b = wnew(img), c = wnew(img);
    dirty_few(&c, 0);
    wfree(&c); /* warm, if warm slots are supported */
    dirty_few(&a, 1);
    eng_image_free(img);

    assert_memory_equal(a.p + 70008, ref + 70008, IMG_MAPPED - 70008);
    assert_int_equal(wcall(&a, "load", 16 + 4, 0, 0), 0xA5A50001u);
    assert_int_equal(a.p[4 * PG - 1], 0x88);
    expect_grow_zero(&a, 3, "grown after the image was freed");
    expect_image_state(&b, ref, "an instance whose image was freed");
    dirty_few(&b, 2);
    uint8_t *aslot = a.p;
    wfree(&a);

    /* a's slot is released, not kept: a plain memory gets it, zeroed. */
    eng_store_t *s = eng_store_new();
    eng_memory_t *m = eng_memory_new(s, 7, 600);
    assert_non_null(m);
    assert_ptr_equal(eng_memory_data(m), aslot);
    expect_zero(eng_memory_data(m), 0, 7 * PG, "a plain memory in the slot of a freed image");
    eng_store_free(s);

    assert_int_equal(wcall(&b, "load", 16 + 8, 0, 0), 0xA5A50002u);
    expect_grow_zero(&b, 5, "grown after the image was freed");
    wfree(&b);
}

/* The same with threads: each holds an instance while the image is freed,
 * then uses it and frees its store, at the same time as the others (and,
 * every other round, as eng_image_free). */
typedef struct freer {
    const eng_image_t *img;
    const uint8_t *ref;
    pthread_barrier_t *made, *freed;
    int id;
    int bad;
} freer_t;

static void *freer_main(void *arg)
{
    freer_t *f = arg;
    eng_exec_t *x = eng_exec_new(0);
    char err[ENG_ERR_MAX];
    winst_t w;
    bool ok = x && wnew_x(f->img, &w, err, sizeof err);
    if (ok && memcmp(w.p, f->ref, IMG_SIZE) != 0) f->bad++;
    if (ok) memset(w.p + 8 * SP, f->id, SP);
    pthread_barrier_wait(f->made);
    pthread_barrier_wait(f->freed);
    if (!ok) {
        f->bad++;
    } else {
        uint32_t r = 0;
        if (wcallx(x, w.i, "load", 70000, 0, 0, &r) != ENG_OK || memcmp(&r, "seco", 4) != 0) f->bad++;
        if (wcallx(x, w.i, "grow", 1, 0, 0, &r) != ENG_OK || r != 2) f->bad++;
        if (w.p[8 * SP + 5] != f->id || w.p[IMG_SIZE + 5] != 0) f->bad++;
        eng_store_free(w.s);
    }
    eng_exec_free(x);
    return NULL;
}

static void test_image_free_first_threads(void **state)
{
    (void)state;
    static uint8_t ref[IMG_SIZE];
    for (int round = 0; round < 20; round++) {
        eng_image_t *img = warm_image(ref);
        winst_t warm = wnew(img);
        wfree(&warm); /* a warm slot for eng_image_free to drop */
        pthread_barrier_t made, freed;
        pthread_barrier_init(&made, NULL, 5);
        pthread_barrier_init(&freed, NULL, 5);
        pthread_t th[4];
        freer_t f[4];
        for (int k = 0; k < 4; k++) {
            f[k] = (freer_t){.img = img, .ref = ref, .made = &made, .freed = &freed, .id = k + 1};
            assert_int_equal(pthread_create(&th[k], NULL, freer_main, &f[k]), 0);
        }
        pthread_barrier_wait(&made);
        if (round % 2) {
            pthread_barrier_wait(&freed);
            eng_image_free(img);
        } else {
            eng_image_free(img);
            pthread_barrier_wait(&freed);
        }
        for (int k = 0; k < 4; k++) {
            pthread_join(th[k], NULL);
            assert_int_equal(f[k].bad, 0);
        }
        pthread_barrier_destroy(&made);
        pthread_barrier_destroy(&freed);
    }
}

/* Threads instantiating, writing and freeing from one image at once: each
 * instance starts exactly in the image's state, warm slot or not, and the
 * slots are reused (never more than the threads' instances at once). */
typedef struct wpar {
    const eng_image_t *img;
    const uint8_t *ref;
    int id;
    int bad;
    char why[ENG_ERR_MAX + 64];
} wpar_t;

static pthread_mutex_t wpar_mu = PTHREAD_MUTEX_INITIALIZER;
static uint8_t *wpar_slots[64];
static int wpar_nslots;

static void wpar_fail(wpar_t *p, int round, const char *why)
{
    if (!p->bad++) snprintf(p->why, sizeof p->why, "thread %d round %d: %s", p->id, round, why);
}

static void *wpar_main(void *arg)
{
    wpar_t *p = arg;
    static const uint8_t zero[PG];
    eng_exec_t *x = eng_exec_new(0);
    if (!x) {
        wpar_fail(p, -1, "no exec");
        return NULL;
    }
    for (int k = 0; k < 200; k++) {
        winst_t w;
        char err[ENG_ERR_MAX];
        if (!wnew_x(p->img, &w, err, sizeof err)) {
            wpar_fail(p, k, err);
            continue;
        }
        pthread_mutex_lock(&wpar_mu);
        bool known = false;
        for (int j = 0; j < wpar_nslots; j++)
            known |= wpar_slots[j] == w.p;
        if (!known && wpar_nslots < 64) wpar_slots[wpar_nslots++] = w.p;
        pthread_mutex_unlock(&wpar_mu);

        uint32_t r = 0;
        if (eng_memory_size(w.m) != IMG_SIZE) wpar_fail(p, k, "size");
        if (memcmp(w.p, p->ref, IMG_SIZE) != 0) wpar_fail(p, k, "memory differs from the image");
        if (wcallx(x, w.i, "load", IMG_SIZE, 0, 0, NULL) != ENG_TRAP_MEMORY_OOB) wpar_fail(p, k, "no trap");
        if (wcallx(x, w.i, "grow", 1, 0, 0, &r) != ENG_OK || r != 2) wpar_fail(p, k, "grow");
        if (memcmp(w.p + IMG_SIZE, zero, PG) != 0) wpar_fail(p, k, "grown page not zero");
        uint8_t id = (uint8_t)p->id;
        size_t zp = (size_t)(5 + k % 12) * SP;  /* zero, mapped */
        size_t rp = (size_t)(18 + k % 14) * SP; /* zero rest */
        memset(w.p + 16, id, 15);
        memset(w.p + 3 * SP + 50, id, 100);
        memset(w.p + zp + 8, id, 64);
        memset(w.p + rp, id, SP);
        uint32_t v = 0x01010101u * id;
        wcallx(x, w.i, "store", 70000, v, 0, NULL);
        wcallx(x, w.i, "fill", IMG_SIZE + (k % 16) * SP, id, 100, NULL);
        if (k % 25 == 0) memset(w.p, id, 3 * PG); /* now and then: many pages */
        if (wcallx(x, w.i, "load", 70000, 0, 0, &r) != ENG_OK || r != v)
            wpar_fail(p, k, "own store");
        if (w.p[16] != id || w.p[rp + 100] != id || w.p[IMG_SIZE + (k % 16) * SP + 99] != id)
            wpar_fail(p, k, "own writes");
        eng_store_free(w.s);
    }
    eng_exec_free(x);
    return NULL;
}

static void test_warm_parallel(void **state)
{
    (void)state;
    NEED_WARM_SLOTS();
    static uint8_t ref[IMG_SIZE];
    eng_image_t *img = warm_image(ref);
    wpar_nslots = 0;
    pthread_t th[4];
    wpar_t p[4];
    for (int k = 0; k < 4; k++) {
        p[k] = (wpar_t){.img = img, .ref = ref, .id = k + 1};
        assert_int_equal(pthread_create(&th[k], NULL, wpar_main, &p[k]), 0);
    }
    for (int k = 0; k < 4; k++)
        pthread_join(th[k], NULL);
    for (int k = 0; k < 4; k++)
        if (p[k].bad) fail_msg("%d failures; first: %s", p[k].bad, p[k].why);
    /* A new slot is made only when no warm one is left, so with 4 threads
     * at most 4 slots were ever used, and all are warm now. */
    uint32_t nwarm = eng_image_warm_slots(img);
    if (wpar_nslots > 4 || nwarm < 1 || nwarm != (uint32_t)wpar_nslots)
        fail_msg("%d slots used, %u warm: expected at most 4, all warm", wpar_nslots, nwarm);
    winst_t w = wnew(img);
    expect_image_state(&w, ref, "after the threads");
    wfree(&w);
    eng_image_trim(img);
    assert_int_equal(eng_image_warm_slots(img), 0);
    eng_image_free(img);
}

/* A warm slot serves only memories of its size class (set by the store's
 * memory limit), and the limit holds even where an earlier instance in the
 * slot grew further. */
static void test_warm_memory_limit(void **state)
{
    (void)state;
    NEED_WARM_SLOTS();
    static uint8_t ref[IMG_SIZE];
    eng_image_t *img = warm_image(ref);
    char err[ENG_ERR_MAX];
    winst_t a, b, c;
    if (!wnew_limit(img, 4 * PG, &a, err, sizeof err)) fail_msg("%s", err);
    uint8_t *aslot = a.p;
    assert_int_equal(wcall(&a, "grow", 2, 0, 0), 2);
    assert_int_equal(wcall(&a, "grow", 1, 0, 0), (uint32_t)-1);
    memset(a.p, 0xAA, 4 * PG);
    wfree(&a);
    assert_int_equal(eng_image_warm_slots(img), 1);
    b = wnew(img); /* no limit: another size class */
    assert_ptr_not_equal(b.p, aslot);
    assert_int_equal(eng_image_warm_slots(img), 1);
    if (!wnew_limit(img, 3 * PG, &c, err, sizeof err)) fail_msg("%s", err);
    assert_ptr_equal(c.p, aslot); /* 3 pages: the same class as 4 */
    assert_int_equal(eng_image_warm_slots(img), 0);
    expect_image_state(&c, ref, "a warm slot of a limited store");
    expect_grow_zero(&c, 1, "grown in a limited store");
    assert_int_equal(wcall(&c, "grow", 1, 0, 0), (uint32_t)-1); /* accessible, yet past the limit */
    assert_int_equal(wcallx(ex, c.i, "load", 3 * PG, 0, 0, NULL), ENG_TRAP_MEMORY_OOB);
    expect_grow_zero(&b, 30, "grown without a limit");
    wfree(&b);
    wfree(&c);
    assert_int_equal(eng_image_warm_slots(img), 2);
    /* A store whose limit is below the image's size still fails. */
    assert_false(wnew_limit(img, PG, &a, err, sizeof err));
    assert_non_null(strstr(err, "limit is 1 pages"));
    assert_int_equal(eng_image_warm_slots(img), 2);
    eng_image_free(img);
}

/* Puts n bytes into p through the kernel (read(2) from a pipe), as WASI's
 * fd_read does with guest memory. */
static void kernel_write(uint8_t *p, uint8_t byte, size_t n)
{
    int fds[2];
    uint8_t buf[256];
    if (n > sizeof buf || pipe(fds) != 0) fail_msg("pipe failed");
    memset(buf, byte, n);
    if (write(fds[1], buf, n) != (ssize_t)n || read(fds[0], p, n) != (ssize_t)n)
        fail_msg("read into the memory failed");
    close(fds[0]);
    close(fds[1]);
}

/* Tracked warm slots (touch.c): after its first reset (pagemap), an
 * image's slot is reset from the pages the kernel reported as they were
 * mapped, with no pagemap read. Pages first touched while tracked — by
 * the guest, by the host, by the kernel (read(2) into the memory), read
 * in one instance and written in the next — all come back to the image's
 * state; growing past the tracked range, and more pages than a tracker
 * holds, go back to pagemap, still correct. Skipped where the kernel does
 * not offer userfaultfd to this process (not root, or a seccomp filter). */
static void test_warm_tracked(void **state)
{
    (void)state;
    NEED_WARM_SLOTS();
    static uint8_t ref[IMG_SIZE];
    eng_image_t *img = warm_image(ref);
    uint32_t before = eng_touch_count();
    winst_t w = wnew(img);
    uint8_t *slot = w.p;
    wcall(&w, "store", 18 * SP, 1, 0);
    w = warm_again(&w, img, slot, ref, "the first reset (pagemap)");
    if (eng_touch_count() != before + 1) {
        int fd = (int)syscall(SYS_userfaultfd, O_CLOEXEC); /* as touch.c asks for it */
        if (fd >= 0) {
            close(fd);
            fail_msg("the kernel offers userfaultfd, yet the warm slot is not tracked");
        }
        printf("# userfaultfd is not offered to this process: tracking not tested\n");
        wfree(&w);
        eng_image_free(img);
        skip();
    }
    /* Pages 18-31 are the tracked zero part; each round touches new ones. */
    for (uint32_t r = 0; r < 4; r++) {
        wcall(&w, "store", (19 + r) * SP + 8, 0xABCD0000u + r, 0); /* the guest */
        memset(w.p + (23 + r) * SP + 100, 0x5C, 200);                /* the host */
        kernel_write(w.p + (27 + r) * SP + 10, 0x6D, 100);           /* the kernel */
        if (r == 0) assert_int_equal(wcall(&w, "load8", 31 * SP + 1, 0, 0), 0); /* read only */
        if (r == 1) w.p[31 * SP + 1] = 0x7E;                         /* written after */
        wcall(&w, "store", 16, 0x01010101u * r, 0);                  /* the image part */
        w.p[10 * SP + r] = 0x3F;
        assert_int_equal(w.p[(27 + r) * SP + 10], 0x6D);
        w = warm_again(&w, img, slot, ref, "a tracked reset");
        assert_int_equal(eng_touch_count(), before + 1);
    }
    /* Growing past the tracked range: pagemap, then tracked again over the
     * whole accessible part (8 wasm pages). */
    assert_int_equal(wcall(&w, "grow", 6, 0, 0), 2);
    wcall(&w, "store", 5 * PG + 12, 0xFEEDu, 0);
    w = warm_again(&w, img, slot, ref, "after growing past the tracked range");
    assert_int_equal(eng_touch_count(), before + 1);
    assert_int_equal(wcall(&w, "grow", 6, 0, 0), 2);
    kernel_write(w.p + 7 * PG + 20, 0x11, 50); /* a page never touched, now tracked */
    w = warm_again(&w, img, slot, ref, "a tracked reset of grown pages");
    expect_grow_zero(&w, 6, "grown pages after a tracked reset");
    /* 80 pages touched: more than a tracker holds. Reset by pagemap; the
     * image's slots are not tracked again. */
    for (size_t pg = 0; pg < 80; pg++)
        w.p[IMG_SIZE + pg * SP + 3] = 0x42;
    w = warm_again(&w, img, slot, ref, "after outgrowing the tracker");
    assert_int_equal(eng_touch_count(), before);
    expect_grow_zero(&w, 6, "grown pages after outgrowing the tracker");
    w = warm_again(&w, img, slot, ref, "untracked again");
    assert_int_equal(eng_touch_count(), before);
    wfree(&w);
    eng_image_free(img);
}

/* An image of an empty memory (no mapped part): warm slots work the same. */
static void test_warm_empty_memory(void **state)
{
    (void)state;
    NEED_WARM_SLOTS();
    char err[ENG_ERR_MAX];
    eng_module_t *m0 = eng_module_new(mod_warm0, sizeof mod_warm0, err, sizeof err);
    if (!m0) fail_msg("module mod_warm0: %s", err);
    eng_store_t *s = eng_store_new();
    eng_instance_t *t = eng_instance_new(s, m0, NULL, 0, ex, err, sizeof err);
    if (!t) fail_msg("instantiate mod_warm0: %s", err);
    eng_image_t *img = image_of(t);
    eng_store_free(s);
    assert_int_equal(eng_image_memory_bytes(img), 0);
    winst_t w = wnew(img);
    uint8_t *slot = w.p;
    for (int r = 0; r < 3; r++) {
        assert_int_equal(eng_memory_size(w.m), 0);
        assert_int_equal(wcallx(ex, w.i, "load8", 0, 0, 0, NULL), ENG_TRAP_MEMORY_OOB);
        expect_grow_zero(&w, 3, "an empty memory grown");
        if (r == 2) expect_grow_zero(&w, 5, "an empty memory grown further");
        memset(w.p, 0x42, r == 1 ? 3 * PG : 100);
        wcall(&w, "store", 3 * PG - 4, 0xFFFFFFFF, 0);
        wfree(&w);
        assert_int_equal(eng_image_warm_slots(img), 1);
        w = wnew(img);
        assert_ptr_equal(w.p, slot);
    }
    wfree(&w);
    eng_image_free(img);
    eng_module_free(m0);
}

/* eng_image_trim from another thread while a store is being freed: the
 * count of warm slots stays the number of slots the image holds. The
 * free's reset (a 32 MiB memory: 8192 pagemap entries scanned, 64 pages
 * copied) takes tens of microseconds; the other thread trims once, at a
 * delay from the start of the free that varies from round to round, so
 * that some trims land in the middle of the reset and none comes after
 * to tidy up. */
typedef struct trimmer {
    eng_image_t *img;
    atomic_uint go, done;   /* round numbers: trim once when go changes */
    atomic_long delay_ns;
    atomic_bool exit;
} trimmer_t;

static long now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000000000L + ts.tv_nsec;
}

static void *trimmer_main(void *arg)
{
    trimmer_t *t = arg;
    unsigned seen = 0;
    while (!atomic_load(&t->exit)) {
        unsigned g = atomic_load(&t->go);
        if (g == seen) {
            sched_yield();
            continue;
        }
        seen = g;
        long until = now_ns() + atomic_load(&t->delay_ns);
        while (now_ns() < until)
            ;
        eng_image_trim(t->img);
        atomic_store(&t->done, g);
    }
    return NULL;
}

static void test_warm_trim_during_free(void **state)
{
    (void)state;
    NEED_WARM_SLOTS();
    static uint8_t ref[IMG_SIZE];
    eng_image_t *img = warm_image(ref);
    trimmer_t t = {.img = img};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, trimmer_main, &t), 0);
    /* With two CPUs or more, each thread gets its own (else they would
     * often share one, taking turns). This thread's affinity is restored
     * at the end. */
    cpu_set_t all, one;
    bool pinned = false;
    if (sched_getaffinity(0, sizeof all, &all) == 0 && CPU_COUNT(&all) >= 2) {
        int cpus[2], n = 0;
        for (int c = 0; c < CPU_SETSIZE && n < 2; c++)
            if (CPU_ISSET(c, &all)) cpus[n++] = c;
        CPU_ZERO(&one);
        CPU_SET(cpus[1], &one);
        pthread_setaffinity_np(th, sizeof one, &one);
        CPU_ZERO(&one);
        CPU_SET(cpus[0], &one);
        pinned = pthread_setaffinity_np(pthread_self(), sizeof one, &one) == 0;
    }
    const char *bad = NULL;
    uint32_t n = 0;
    unsigned round;
    for (round = 1; round <= 200 && !bad; round++) {
        winst_t w = wnew(img);
        assert_int_equal(wcall(&w, "grow", 510, 0, 0), 2); /* 32 MiB */
        for (size_t pg = 0; pg < 64; pg++)
            w.p[pg * 128 * SP + 8] = 0x3C;
        atomic_store(&t.delay_ns, (long)(round % 25) * 4000);
        atomic_store(&t.go, round);
        wfree(&w);
        while (atomic_load(&t.done) != round)
            sched_yield();
        /* The image holds at most the one slot; an instance takes it (or
         * a new one); freed, it is the one warm slot. */
        if ((n = eng_image_warm_slots(img)) > 1) {
            bad = "counted after a free and a trim, not 0 or 1";
            break;
        }
        w = wnew(img);
        expect_image_state(&w, ref, "an instance after a trim during a free");
        if ((n = eng_image_warm_slots(img)) != 0) bad = "counted while the only one is in use";
        wfree(&w);
        if (!bad && (n = eng_image_warm_slots(img)) != 1) bad = "counted after a free, not 1";
    }
    atomic_store(&t.exit, true);
    pthread_join(th, NULL);
    if (pinned) pthread_setaffinity_np(pthread_self(), sizeof all, &all);
    eng_image_free(img);
    if (bad) fail_msg("round %u: %u warm slots %s", round - 1, n, bad);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_warm_reset_in_place),
        cmocka_unit_test(test_warm_reset_many_pages),
        cmocka_unit_test(test_warm_slot_bound),
        cmocka_unit_test(test_warm_reset_after_reads),
        cmocka_unit_test(test_warm_slot_count_and_trim),
        cmocka_unit_test(test_image_free_first),
        cmocka_unit_test(test_image_free_first_threads),
        cmocka_unit_test(test_warm_parallel),
        cmocka_unit_test(test_warm_memory_limit),
        cmocka_unit_test(test_warm_tracked),
        cmocka_unit_test(test_warm_empty_memory),
        cmocka_unit_test(test_warm_trim_during_free),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
