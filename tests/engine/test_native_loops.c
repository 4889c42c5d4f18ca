/*
 * test_native_loops.c — the native tier's counted loops
 * (src/engine/native_loop.c) against the interpreter.
 *
 * A counted loop runs in chunks whose fuel is counted up front, and, when
 * every address is an affine form of the locals, with plain loads and
 * stores once the chunk's whole range is checked against the memory; the
 * ordinary copy of the loop runs otherwise. What could go wrong is in the
 * arithmetic: the number of iterations a chunk may run for each compare
 * and step, addresses that wrap around 2^32, a range that ends past the
 * memory, an induction variable that wraps. So the loops below are
 * generated in every shape the analysis takes (each compare, both
 * operand orders, steps up and down, strides of several sizes and signs,
 * two accesses that overlap, a trap that is not a memory access, an exit
 * from the middle, a loop-carried value) and in shapes it must refuse,
 * then called with arguments at the edges: inside the memory, running
 * off its end or below 0 part-way, starting where the limit is, wrapping
 * around. Both tiers must return the same value or trap with the same
 * message, and leave the memory byte for byte the same.
 *
 * A counted loop that would run 2^32 iterations must still stop at a
 * deadline.
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "native_pair.h"

/* ---- The generated module ------------------------------------------------ */

static const char *const cmps[] = {"ne", "lt_u", "lt_s", "le_u", "le_s", "gt_u", "gt_s", "ge_u", "ge_s"};
#define NCMP (sizeof cmps / sizeof cmps[0])
static const int steps[] = {1, 3, 8, -1, -4};
#define NSTEP (sizeof steps / sizeof steps[0])
static const int strides[] = {4, 1, -4, 0};
#define NSTRIDE (sizeof strides / sizeof strides[0])

/* NAME(start, limit, base): i from start, stepped by `step` (a constant,
 * or the parameter $step after base), while C(i, limit); each iteration
 * stores i + 7 at base + i*K + 8 and adds back what is at base + i*K + 4.
 * Returns the sum and i mixed. `swapped` compares limit C' i, the same
 * condition with the operands the other way. */
static void gen_loop(sbuf_t *b, const char *name, unsigned c, const char *step, unsigned k, bool swapped)
{
    static const char *const rev[NCMP] = {"ne", "gt_u", "gt_s", "ge_u", "ge_s", "lt_u", "lt_s", "le_u", "le_s"};
    bool param = strstr(step, "$step") != NULL;
    sb_printf(b,
              "  (func (export \"%s\") (param $start i32) (param $limit i32) (param $base i32)%s\n"
              "    (result i32) (local $i i32) (local $acc i32) (local $a i32)\n"
              "    (local.set $i (local.get $start))\n"
              "    (loop $l\n"
              "      (local.set $a (i32.add (local.get $base) (i32.mul (local.get $i) (i32.const %d))))\n"
              "      (i32.store offset=8 (local.get $a) (i32.add (local.get $i) (i32.const 7)))\n"
              "      (local.set $acc (i32.add (i32.mul (local.get $acc) (i32.const 3))\n"
              "                               (i32.load offset=4 (local.get $a))))\n",
              name, param ? " (param $step i32)" : "", strides[k]);
    if (swapped)
        sb_printf(b, "      (local.set $i (i32.add (local.get $i) %s))\n"
                     "      (br_if $l (i32.%s (local.get $limit) (local.get $i))))\n",
                  step, rev[c]);
    else
        sb_printf(b, "      (br_if $l (i32.%s (local.tee $i (i32.add (local.get $i) %s))\n"
                     "                         (local.get $limit))))\n",
                  cmps[c], step);
    sb_printf(b, "    (i32.xor (local.get $acc) (i32.mul (local.get $i) (i32.const 0x9e3779b1))))\n");
}

static const char wat_shapes[] =
    /* a byte copy whose source and destination may overlap (memmove's
     * forward loop), from src to dst, n bytes, n > 0 */
    "  (func (export \"copy\") (param $dst i32) (param $src i32) (param $n i32)\n"
    "    (local $i i32)\n"
    "    (loop $l\n"
    "      (i32.store8 (i32.add (local.get $dst) (local.get $i))\n"
    "                  (i32.load8_u (i32.add (local.get $src) (local.get $i))))\n"
    "      (br_if $l (i32.ne (local.tee $i (i32.add (local.get $i) (i32.const 1))) (local.get $n)))))\n"
    /* the i-k-j multiply's inner loop: c[j] += a * b[j], floats */
    "  (func (export \"axpy\") (param $c i32) (param $b i32) (param $n i32) (param $a f32)\n"
    "    (local $j i32) (local $p i32)\n"
    "    (loop $l\n"
    "      (local.set $p (i32.add (local.get $c) (local.get $j)))\n"
    "      (f32.store (local.get $p) (f32.add (f32.load (local.get $p))\n"
    "                 (f32.mul (local.get $a) (f32.load (i32.add (local.get $b) (local.get $j))))))\n"
    "      (br_if $l (i32.lt_u (local.tee $j (i32.add (local.get $j) (i32.const 4))) (local.get $n)))))\n"
    /* divides by what it loads: traps part-way with stores made before */
    "  (func (export \"divide\") (param $base i32) (param $n i32) (result i32)\n"
    "    (local $i i32) (local $q i32)\n"
    "    (local.set $q (i32.const 1000000))\n"
    "    (loop $l\n"
    "      (i32.store offset=1024 (i32.shl (local.get $i) (i32.const 2)) (local.get $q))\n"
    "      (local.set $q (i32.div_u (local.get $q)\n"
    "                    (i32.load (i32.add (local.get $base) (i32.shl (local.get $i) (i32.const 2))))))\n"
    "      (br_if $l (i32.ne (local.tee $i (i32.add (local.get $i) (i32.const 1))) (local.get $n))))\n"
    "    (local.get $q))\n"
    /* leaves from the middle when it finds the byte */
    "  (func (export \"find\") (param $p i32) (param $n i32) (param $byte i32) (result i32)\n"
    "    (local $i i32)\n"
    "    (block $found\n"
    "      (loop $l\n"
    "        (br_if $found (i32.eq (i32.load8_u (i32.add (local.get $p) (local.get $i))) (local.get $byte)))\n"
    "        (br_if $l (i32.ne (local.tee $i (i32.add (local.get $i) (i32.const 1))) (local.get $n))))\n"
    "      (return (i32.const -1)))\n"
    "    (local.get $i))\n"
    /* counts down to zero: the latch tests the local itself */
    "  (func (export \"down\") (param $n i32) (param $p i32) (result i32) (local $s i32)\n"
    "    (loop $l\n"
    "      (local.set $s (i32.add (local.get $s) (i32.load16_s (i32.add (local.get $p)\n"
    "                                           (i32.shl (local.get $n) (i32.const 1))))))\n"
    "      (br_if $l (local.tee $n (i32.sub (local.get $n) (i32.const 1)))))\n"
    "    (local.get $s))\n"
    /* a pointer stepped beside the counter, and an address that is not
     * affine (it is loaded): counted, but checked */
    "  (func (export \"gather\") (param $p i32) (param $n i32) (result i32) (local $i i32) (local $s i32)\n"
    "    (loop $l\n"
    "      (local.set $s (i32.add (local.get $s) (i32.load8_u (i32.load (local.get $p)))))\n"
    "      (local.set $p (i32.add (local.get $p) (i32.const 4)))\n"
    "      (br_if $l (i32.lt_s (local.tee $i (i32.add (local.get $i) (i32.const 1))) (local.get $n))))\n"
    "    (local.get $s))\n"
    /* the limit changes in the loop: not counted */
    "  (func (export \"moving\") (param $n i32) (result i32) (local $i i32)\n"
    "    (loop $l\n"
    "      (i32.store (i32.const 0) (local.get $i))\n"
    "      (local.set $n (i32.sub (local.get $n) (i32.const 1)))\n"
    "      (br_if $l (i32.lt_u (local.tee $i (i32.add (local.get $i) (i32.const 1))) (local.get $n))))\n"
    "    (local.get $i))\n"
    /* no memory access (so no range checks; fewer than NL_MIN_FAST
     * iterations run unchunked): a value mixed by every iteration, i
     * going up by 1 to $n */
    "  (func (export \"spin\") (param $start i32) (param $n i32) (result i32) (local $i i32) (local $h i32)\n"
    "    (local.set $i (local.get $start))\n"
    "    (loop $l\n"
    "      (local.set $h (i32.add (i32.rotl (local.get $h) (i32.const 7)) (i32.xor (local.get $i) (i32.const 0x5bd1e995))))\n"
    "      (br_if $l (i32.ne (local.tee $i (i32.add (local.get $i) (i32.const 1))) (local.get $n))))\n"
    "    (i32.xor (local.get $h) (local.get $i)))\n"
    /* 2^32 iterations (the limit is where it starts) of a step no
     * compiler can fold away */
    "  (func (export \"wrap\") (param $n i32) (result i32) (local $i i32)\n"
    "    (local.set $i (local.get $n))\n"
    "    (loop $l\n"
    "      (i32.store (i32.const 16) (i32.xor (i32.rotl (i32.load (i32.const 16)) (i32.const 5))\n"
    "                                         (local.get $i)))\n"
    "      (br_if $l (i32.ne (local.tee $i (i32.add (local.get $i) (i32.const 1))) (local.get $n))))\n"
    "    (local.get $i))\n";

/* The module's text: mod_shared keys on its address, so it stays until
 * the group's tear-down. */
static char *loops_wat;

static mod_t *loops_module(void)
{
    if (loops_wat)
        return mod_shared(loops_wat);
    sbuf_t b = {0};
    sb_printf(&b, "(module\n  (memory (export \"mem\") 1)\n");
    /* f_C_S_K: steps[S]; v_C_K: the step a parameter (sieve's j += i),
     * which the loop does not change: counted with its sign and size
     * known only at run time, except for `ne`. lt_u and gt_s also the
     * other way round (a name ending in r). */
    char name[32], step[32];
    for (unsigned c = 0; c < NCMP; c++)
        for (unsigned k = 0; k < NSTRIDE; k++)
            for (int r = 0; r < 2; r++) {
                if (r && c != 1 && c != 6)
                    continue;
                for (unsigned s = 0; s < NSTEP; s++) {
                    snprintf(name, sizeof name, "f_%u_%u_%u%s", c, s, k, r ? "r" : "");
                    snprintf(step, sizeof step, "(i32.const %d)", steps[s]);
                    gen_loop(&b, name, c, step, k, r);
                }
                snprintf(name, sizeof name, "v_%u_%u%s", c, k, r ? "r" : "");
                gen_loop(&b, name, c, "(local.get $step)", k, r);
            }
    sb_printf(&b, "%s)\n", wat_shapes);
    loops_wat = b.p;
    return mod_shared(loops_wat);
}

/* Loops at the analysis's limits, and just past them (native_loop.h):
 * accesses it range-checks, locals a body writes, the operand stack's
 * depth, a body's bytes. Past a limit, a loop is translated as before;
 * at it, the analysis must still hold everything. Each f(p, n) runs n
 * iterations over p + i*4. */
static char *limits_wat;

static mod_t *limits_module(void)
{
    if (limits_wat)
        return mod_shared(limits_wat);
    sbuf_t b = {0};
    sb_printf(&b, "(module\n  (memory (export \"mem\") 1)\n");
    /* acc_N: N loads a group apart, summed */
    for (unsigned n = 31; n <= 34; n++) {
        sb_printf(&b, "  (func (export \"acc_%u\") (param $p i32) (param $n i32) (result i32)\n"
                      "    (local $i i32) (local $s i32) (local $a i32)\n"
                      "    (loop $l\n"
                      "      (local.set $a (i32.add (local.get $p) (i32.shl (local.get $i) (i32.const 2))))\n",
                  n);
        for (unsigned k = 0; k < n; k++)
            sb_printf(&b, "      (local.set $s (i32.add (i32.rotl (local.get $s) (i32.const 1))"
                          " (i32.load offset=%u (local.get $a))))\n",
                      k * 4);
        sb_printf(&b, "      (br_if $l (i32.lt_u (local.tee $i (i32.add (local.get $i) (i32.const 1)))"
                      " (local.get $n))))\n    (local.get $s))\n");
    }
    /* written_N: N locals written (the counter among them), one store */
    for (unsigned n = 63; n <= 66; n++) {
        sb_printf(&b, "  (func (export \"written_%u\") (param $p i32) (param $n i32) (result i32)\n"
                      "    (local $i i32)", n);
        for (unsigned k = 1; k < n; k++) sb_printf(&b, " (local $v%u i32)", k);
        sb_printf(&b, "\n    (loop $l\n");
        for (unsigned k = 1; k < n; k++)
            sb_printf(&b, "      (local.set $v%u (i32.add (local.get $v%u) (i32.mul (local.get $i) (i32.const %u))))\n",
                      k, k, k);
        sb_printf(&b, "      (i32.store (i32.add (local.get $p) (i32.shl (local.get $i) (i32.const 2)))"
                      " (local.get $v%u))\n"
                      "      (br_if $l (i32.lt_u (local.tee $i (i32.add (local.get $i) (i32.const 1)))"
                      " (local.get $n))))\n    (i32.const 0)",
                  n - 1);
        for (unsigned k = 1; k < n; k++) sb_printf(&b, " (local.get $v%u) i32.xor", k);
        sb_printf(&b, ")\n");
    }
    /* deep_N: an expression N operands deep, stored */
    for (unsigned n = 62; n <= 66; n++) {
        sb_printf(&b, "  (func (export \"deep_%u\") (param $p i32) (param $n i32) (result i32)\n"
                      "    (local $i i32)\n    (loop $l\n"
                      "      (i32.store (i32.add (local.get $p) (i32.shl (local.get $i) (i32.const 2)))\n       ",
                  n);
        for (unsigned k = 0; k < n; k++) sb_printf(&b, " (i32.add (i32.const %u)", k + 1);
        sb_printf(&b, " (local.get $i)");
        for (unsigned k = 0; k < n; k++) sb_printf(&b, ")");
        sb_printf(&b, ")\n      (br_if $l (i32.lt_u (local.tee $i (i32.add (local.get $i) (i32.const 1)))"
                      " (local.get $n))))\n    (local.get $i))\n");
    }
    /* body_N: N additions of 9 bytes each, about 2 KiB at N = 227 */
    static const unsigned bodies[] = {200, 224, 226, 228, 230, 260};
    for (size_t j = 0; j < sizeof bodies / sizeof bodies[0]; j++) {
        sb_printf(&b, "  (func (export \"body_%u\") (param $p i32) (param $n i32) (result i32)\n"
                      "    (local $i i32) (local $s i32)\n    (loop $l\n",
                  bodies[j]);
        for (unsigned k = 0; k < bodies[j]; k++)
            sb_printf(&b, "      (local.set $s (i32.add (local.get $s) (i32.const %u)))\n", 1000000 + k);
        sb_printf(&b, "      (i32.store (i32.add (local.get $p) (i32.shl (local.get $i) (i32.const 2)))"
                      " (local.get $s))\n"
                      "      (br_if $l (i32.lt_u (local.tee $i (i32.add (local.get $i) (i32.const 1)))"
                      " (local.get $n))))\n    (local.get $s))\n");
    }
    sb_printf(&b, ")\n");
    limits_wat = b.p;
    return mod_shared(limits_wat);
}

/* ---- Calling both tiers -------------------------------------------------- */

#define PAGE 65536u

/* Both tiers' memories filled with the same pattern. */
static void fill(pair_t *p)
{
    for (int t = 0; t < 2; t++) {
        uint8_t *mem = mem_of(&p->t[t]);
        for (uint32_t i = 0; i < PAGE; i++)
            mem[i] = (uint8_t)(i * 131u + (i >> 8) * 7u + 1u);
    }
}

static unsigned ncalls, ntraps, nlong;

/* name(args) in one tier, stopped after ms at the latest. */
static res_t call_within(pair_t *p, int tier, const char *name, const eng_val_t *args, uint64_t ms)
{
    eng_exec_set_deadline(p->t[tier].x, eng_now_ns() + ms * MS);
    watchdog_arm(name);
    res_t r = call_side(&p->t[tier], name, args);
    watchdog_disarm();
    eng_exec_set_deadline(p->t[tier].x, 0);
    return r;
}

static void same_as(pair_t *p, const char *name, const eng_val_t *args, const char *what);

/* name(args) in both tiers: the same outcome and the same memory. */
static void same(pair_t *p, const char *name, const eng_val_t *args)
{
    char what[160];
    snprintf(what, sizeof what, "%s(0x%x, 0x%x, 0x%x)", name, args[0].i32, args[1].i32, args[2].i32);
    same_as(p, name, args, what);
}

/* The same, what describing the call in a failure. */
static void same_as(pair_t *p, const char *name, const eng_val_t *args, const char *what)
{
    /* The interpreter first, within 20 ms: a loop of 2^31 iterations or so
     * cannot finish in that, and native code runs it within the same
     * deadline. A loop the interpreter finished, native code gets 10 s
     * for, so that a busy machine cannot make it miss its deadline. */
    res_t r[2];
    r[INTERP] = call_within(p, INTERP, name, args, 20);
    r[NATIVE] = call_within(p, NATIVE, name, args, r[INTERP].trap == ENG_TRAP_DEADLINE ? 20 : 10000);
    ncalls++;
    if (r[INTERP].trap == ENG_TRAP_DEADLINE) {
        /* a loop of 2^31 iterations or so: the interpreter cannot finish
         * it in time, native code may; either stopped where its deadline
         * found it. The memories start the next call the same again. */
        if (r[NATIVE].trap != ENG_OK)
            expect_same(what, &r[INTERP], &r[NATIVE], "interp", "native");
        memcpy(mem_of(&p->t[NATIVE]), mem_of(&p->t[INTERP]), PAGE);
        nlong++;
        return;
    }
    expect_same(what, &r[INTERP], &r[NATIVE], "interp", "native");
    if (r[NATIVE].trap != ENG_OK)
        ntraps++;
    const uint8_t *a = mem_of(&p->t[INTERP]), *b = mem_of(&p->t[NATIVE]);
    for (uint32_t i = 0; i < PAGE; i++)
        if (a[i] != b[i])
            fail_msg("%s: memory differs at %u: interp 0x%02x, native 0x%02x (%s)", what, i, a[i], b[i],
                     r[NATIVE].trap ? r[NATIVE].msg : "returned");
}

/* ---- Tests ---------------------------------------------------------------- */

/* (start, limit, base) for loops going up, mirrored for down */
static const uint32_t edges_up[][3] = {
    {0, 100, 1024},                 /* inside the memory */
    {0, 1, 1024},                   /* one iteration */
    {5, 5, 1024},                   /* the limit where it starts */
    {7, 3, 1024},                   /* already past the limit */
    {0, 3000, 4096},                /* 3,000 iterations */
    {0, 20000, 0},                  /* runs off the memory's end part-way */
    {0, 100, PAGE - 64},            /* off the end within a few iterations */
    {0, 100, PAGE - 12},            /* the very first access is past the end */
    {0x7ffffff0, 0x80000010, 512},  /* across the signed boundary */
    {0xfffffff0, 0xffffffff, 512},  /* up to the top, maybe wrapping */
    {0xfffffff8, 8, 512},           /* wraps through zero */
    {1, 0x10000, 0},                /* long: several chunks */
};
#define NEDGES (sizeof edges_up / sizeof edges_up[0])

/* Edge a's arguments for a loop going up, or down (from the limit to the
 * start) with stride k. */
static void edge(size_t a, bool down, unsigned k, uint32_t *start, uint32_t *limit, uint32_t *base)
{
    *start = edges_up[a][0];
    *limit = edges_up[a][1];
    *base = edges_up[a][2];
    if (down) {
        uint32_t t = *start;
        *start = *limit;
        *limit = t;
        if (strides[k] < 0 && *base < PAGE / 2)
            *base = PAGE - 1024 - *base; /* room below, off the top */
    }
}

/* v_...(start, limit, base, step) in both tiers. */
static void same_var(pair_t *p, const char *name, uint32_t start, uint32_t limit, uint32_t base, uint32_t step)
{
    char what[160];
    snprintf(what, sizeof what, "%s(0x%x, 0x%x, 0x%x, step 0x%x)", name, start, limit, base, step);
    same_as(p, name, ARGS(I32(start), I32(limit), I32(base), I32(step)), what);
}

static void test_counted_loops_every_shape(void **state)
{
    (void)state;
    mod_t *m = loops_module();
    pair_t p;
    pair_open(&p, m);
    fill(&p);
    for (unsigned c = 0; c < NCMP; c++)
        for (unsigned s = 0; s < NSTEP; s++)
            for (unsigned k = 0; k < NSTRIDE; k++)
                for (int r = 0; r < 2; r++) {
                    if (r && c != 1 && c != 6)
                        continue;
                    char name[32];
                    snprintf(name, sizeof name, "f_%u_%u_%u%s", c, s, k, r ? "r" : "");
                    for (size_t a = 0; a < NEDGES; a++) {
                        uint32_t start, limit, base;
                        edge(a, steps[s] < 0, k, &start, &limit, &base);
                        same(&p, name, ARGS(I32(start), I32(limit), I32(base)));
                    }
                }
    print_message("%u calls: %u trapped, %u stopped by a deadline\n", ncalls, ntraps, nlong);
    pair_close(&p);
}

/* Steps that are a parameter of the loop: every compare and stride, the
 * edges above with steps small and large, up to 2^31 one way and 0x80000000
 * (a step of 2^31 down, but read as signed not one up); a step the wrong
 * way or of zero (the ordinary copy, to the deadline or to a wrap); trip
 * counts around the chunk's minimum and past one chunk. */
static void test_counted_loops_variable_step(void **state)
{
    (void)state;
    mod_t *m = loops_module();
    pair_t p;
    pair_open(&p, m);
    fill(&p);
    unsigned calls = ncalls, traps = ntraps, longs = nlong;
    static const uint32_t sizes[] = {1, 3, 4096, 0x7fffffff, 0x80000000};
    for (unsigned c = 0; c < NCMP; c++)
        for (unsigned k = 0; k < NSTRIDE; k++)
            for (int r = 0; r < 2; r++) {
                if (r && c != 1 && c != 6)
                    continue;
                char name[32];
                snprintf(name, sizeof name, "v_%u_%u%s", c, k, r ? "r" : "");
                bool up = c >= 1 && c <= 4;
                /* ne goes either way, by 1 only: it is not counted with a
                 * variable step */
                size_t nsizes = c == 0 ? 1 : sizeof sizes / sizeof sizes[0];
                for (int down = 0; down < 2; down++) {
                    if (c != 0 && down == up)
                        continue;
                    for (size_t a = 0; a < NEDGES; a++)
                        for (size_t z = 0; z < nsizes; z++) {
                            /* Loops that wrap around instead of ending run to the
                             * deadline, 40 ms a call: 0x80000000 on most edges, and
                             * most steps with stride 0, which never leaves the
                             * memory. A few of each are enough. */
                            if ((z == 4 && a > 3) || (k == 3 && (z == 1 || z == 3)))
                                continue;
                            uint32_t start, limit, base;
                            edge(a, down, k, &start, &limit, &base);
                            same_var(&p, name, start, limit, base, down ? 0u - sizes[z] : sizes[z]);
                        }
                }
                if (c == 0 || k)
                    continue;
                /* the wrong way, and not at all: runs to a wrap or a deadline */
                uint32_t start, limit, base;
                edge(0, !up, k, &start, &limit, &base);
                same_var(&p, name, start, limit, base, up ? 0xffffffffu : 1u);
                same_var(&p, name, start, limit, base, 0);
            }
    /* 1 to 40 iterations by 3, then 60,000 by 1: three chunks' worth (a
     * chunk is at most 2^20 / the body's bytes, about 50 here: some 20,000
     * iterations) */
    for (uint32_t n = 1; n <= 40; n++) {
        same_var(&p, "v_1_3", 0, 3 * n, 2048, 3);
        same_var(&p, "v_5_1", 3 * n + 10, 10, 2048, (uint32_t)-3);
    }
    same_var(&p, "v_1_3", 0, 60000, 4096, 1);
    same_var(&p, "v_3_1", 0, 60000, 0, 1);
    print_message("%u calls: %u trapped, %u stopped by a deadline\n", ncalls - calls, ntraps - traps,
                  nlong - longs);
    pair_close(&p);
}

static void test_counted_loops_overlap_traps_and_exits(void **state)
{
    (void)state;
    mod_t *m = loops_module();
    pair_t p;
    pair_open(&p, m);
    fill(&p);
    /* overlapping copies forward and backward by a few bytes, and ones
     * that run off the end part-way */
    static const uint32_t copies[][3] = {
        {100, 99, 4000}, {99, 100, 4000}, {104, 100, 3000}, {100, 104, 3000}, {0, 32768, 32768},
        {PAGE - 100, 0, 200}, {0, PAGE - 100, 200}, {8, 8, 1000},
    };
    for (size_t i = 0; i < sizeof copies / sizeof copies[0]; i++)
        same(&p, "copy", ARGS(I32(copies[i][0]), I32(copies[i][1]), I32(copies[i][2])));
    /* floats; the last runs off the end */
    for (int t = 0; t < 2; t++) {
        float *f = (float *)(void *)mem_of(&p.t[t]);
        for (uint32_t i = 0; i < PAGE / 4; i++)
            f[i] = (float)(i % 13) * 0.5f;
    }
    eng_val_t axpy[][4] = {
        {I32(0), I32(8192), I32(768), F32(2.5f)},  {I32(64), I32(60), I32(4000), F32(-1.0f)},
        {I32(PAGE - 400), I32(0), I32(768), F32(3.0f)}, {I32(4), I32(0), I32(4), F32(1.5f)},
    };
    for (size_t i = 0; i < sizeof axpy / sizeof axpy[0]; i++)
        same(&p, "axpy", axpy[i]);
    /* division by a zero it loads, after stores; and a clean run */
    fill(&p);
    for (int t = 0; t < 2; t++) {
        uint8_t *mem = mem_of(&p.t[t]);
        memset(mem + 8192, 0, 64);
        for (uint32_t i = 0; i < 64; i++) mem[8192 + 4 * i] = 1 + (i & 1);
        mem[8192 + 4 * 40] = 0;
    }
    same(&p, "divide", ARGS(I32(8192), I32(60), I32(0)));
    same(&p, "divide", ARGS(I32(8192), I32(30), I32(0)));
    same(&p, "divide", ARGS(I32(PAGE - 40), I32(60), I32(0)));
    /* an exit from the middle, found or not, and off the end */
    same(&p, "find", ARGS(I32(1000), I32(5000), I32(0xff)));
    same(&p, "find", ARGS(I32(1000), I32(3), I32(0x100)));
    same(&p, "find", ARGS(I32(PAGE - 10), I32(100), I32(0x100)));
    /* counting down to zero, from inside and from off the end */
    same(&p, "down", ARGS(I32(1000), I32(0), I32(0)));
    same(&p, "down", ARGS(I32(40000), I32(0), I32(0)));
    same(&p, "down", ARGS(I32(1), I32(PAGE - 2), I32(0)));
    /* a stepped pointer and a loaded address (not plain: no range
     * checks), on both sides of NL_MIN_FAST = 16 iterations (fewer run
     * unchunked), and with a loaded address off the end in the first
     * iterations and in later ones */
    static const uint32_t trips[] = {1, 7, 8, 9, 15, 16, 17, 25, 1000};
    for (size_t i = 0; i < sizeof trips / sizeof trips[0]; i++)
        same(&p, "gather", ARGS(I32(256), I32(trips[i]), I32(0)));
    same(&p, "gather", ARGS(I32(PAGE - 400), I32(1000), I32(0)));
    for (uint32_t bad = 3; bad <= 12; bad += 3) {
        for (int t = 0; t < 2; t++) {
            uint32_t far = PAGE + 5;
            memcpy(mem_of(&p.t[t]) + 512 + 4 * bad, &far, 4);
        }
        same(&p, "gather", ARGS(I32(512), I32(40), I32(0)));
        fill(&p);
    }
    /* no access at all: fewer than 16 iterations unchunked, more in chunks */
    for (size_t i = 0; i < sizeof trips / sizeof trips[0]; i++)
        same(&p, "spin", ARGS(I32(0), I32(trips[i]), I32(0)));
    same(&p, "spin", ARGS(I32(0xfffffffa), I32(3), I32(0)));
    same(&p, "moving", ARGS(I32(1000), I32(0), I32(0)));
    same(&p, "moving", ARGS(I32(0), I32(0), I32(0)));
    pair_close(&p);
}

static void test_counted_loop_stops_at_deadline(void **state)
{
    (void)state;
    mod_t *m = loops_module();
    pair_t p;
    pair_open(&p, m);
    /* 2^32 iterations of a store: well over the 50 ms */
    expect_deadline(&p, "wrap", ARGS(I32(12345), I32(0), I32(0)), 50, "deadline exceeded in function");
    /* the same with no access in the loop */
    expect_deadline(&p, "spin", ARGS(I32(12345), I32(12345), I32(0)), 50, "deadline exceeded in function");
    pair_close(&p);
}

static void test_counted_loops_at_the_limits(void **state)
{
    (void)state;
    mod_t *m = limits_module();
    pair_t p;
    pair_open(&p, m);
    fill(&p);
    /* inside the memory, off its end part-way, and the first access past it */
    static const uint32_t runs[][2] = {{1024, 1000}, {1024, 40}, {PAGE - 2000, 1000}, {PAGE - 4, 3}};
    char name[32];
    for (size_t r = 0; r < sizeof runs / sizeof runs[0]; r++) {
        const eng_val_t *args = ARGS(I32(runs[r][0]), I32(runs[r][1]), I32(0));
        for (unsigned n = 31; n <= 34; n++) {
            snprintf(name, sizeof name, "acc_%u", n);
            same(&p, name, args);
        }
        for (unsigned n = 63; n <= 66; n++) {
            snprintf(name, sizeof name, "written_%u", n);
            same(&p, name, args);
        }
        for (unsigned n = 62; n <= 66; n++) {
            snprintf(name, sizeof name, "deep_%u", n);
            same(&p, name, args);
        }
        static const unsigned bodies[] = {200, 224, 226, 228, 230, 260};
        for (size_t j = 0; j < sizeof bodies / sizeof bodies[0]; j++) {
            snprintf(name, sizeof name, "body_%u", bodies[j]);
            same(&p, name, args);
        }
    }
    pair_close(&p);
}

static int group_setup(void **state)
{
    (void)state;
    return native_pair_setup("test_native_loops");
}

static int group_teardown(void **state)
{
    (void)state;
    int rc = native_pair_teardown();
    free(loops_wat);
    loops_wat = NULL;
    free(limits_wat);
    limits_wat = NULL;
    return rc;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_counted_loops_every_shape),
        cmocka_unit_test(test_counted_loops_variable_step),
        cmocka_unit_test(test_counted_loops_overlap_traps_and_exits),
        cmocka_unit_test(test_counted_loop_stops_at_deadline),
        cmocka_unit_test(test_counted_loops_at_the_limits),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
