/*
 * native_loop.h — counted loops in the native tier (native_loop.c): the
 * analysis of an innermost loop's body, and the code that runs it in
 * chunks of a known number of iterations. Private to the translator
 * (native_ir.c).
 */
#ifndef WASMFN_ENGINE_NATIVE_LOOP_H
#define WASMFN_ENGINE_NATIVE_LOOP_H

#include "engine/native_ir.h"

#define NL_TERMS 3          /* locals in one affine form */
#define NL_MAX_ACCESS 32    /* memory accesses a loop may range-check */
#define NL_MAX_WRITTEN 64   /* distinct locals a loop body may write */
#define NL_MAX_BODY 2048    /* bytes of a body that is translated twice */
#define NL_MIN_FAST 16      /* shorter chunks run the ordinary copy */

/* An i32 value as c + sum(coef[i] * local[i]), every local read as it was
 * at the start of the iteration; arithmetic modulo 2^32, as wasm's. */
typedef struct {
    uint32_t c;
    uint8_t n;
    uint32_t local[NL_TERMS], coef[NL_TERMS];
} nl_form_t;

/* A load or store whose address moves by `stride` (a form of locals the
 * loop does not change) bytes per iteration. */
typedef struct {
    nl_form_t addr, stride;
    uint32_t offset, size;
    bool store;
    LLVMValueRef start;     /* zext(address) at the chunk's first iteration */
    LLVMValueRef step_v;    /* the stride, sign-extended to 64 bits */
} nl_access_t;

enum { NL_NE, NL_LTU, NL_LTS, NL_LEU, NL_LES, NL_GTU, NL_GTS, NL_GEU, NL_GES };

typedef struct nl_loop {
    eng_reader_t body;      /* the reader at the body's first instruction */
    uint32_t iv;            /* the local the latch compares */
    int32_t step;           /* what one iteration adds to it, when a constant */
    bool var_step;          /* ... else step_form, of locals the loop does not change */
    nl_form_t step_form;
    uint8_t pred;           /* go on while pred(iv, limit) */
    nl_form_t limit;        /* loop-invariant */
    uint32_t bound;         /* most iterations per chunk */
    bool affine;            /* every access is in acc[] */
    uint32_t nacc;
    nl_access_t acc[NL_MAX_ACCESS];

    /* Set while translating (nl_enter). */
    LLVMValueRef chunk, k, limit_v;
    LLVMValueRef left;      /* i32: ordinary iterations before the set-up again */
    LLVMBasicBlockRef outer, slow, after;
    uint32_t next;          /* the fast copy's next access */
} nl_loop_t;

/* Whether the loop whose body starts at f->r (its block type read, no
 * params or results) is a counted loop; fills lp. The reader does not
 * move. */
bool nl_analyse(fx_t *f, nl_loop_t *lp);

/* At the loop: the chunk set-up (lp->outer), which goes on to fast_hdr
 * (the copy that counts no fuel per iteration) or, when fewer than
 * NL_MIN_FAST iterations are left or an access could leave the memory, to
 * lp->slow, the ordinary copy, for the rest of the loop. */
void nl_enter(fx_t *f, nl_loop_t *lp, LLVMBasicBlockRef fast_hdr);

/* Whether the fast copy's accesses need neither checks nor faults. */
static inline bool nl_unchecked(const fx_t *f) { return f->fast && f->fast->affine; }

/* The fast copy's next access (its address operand is popped). */
LLVMValueRef nl_addr(fx_t *f, uint32_t offset);

/* The fast copy's final br_if 0 (its condition is popped): back to the
 * header while the chunk lasts, then to the next chunk or to `go`. */
void nl_latch(fx_t *f, LLVMBasicBlockRef fast_hdr, LLVMBasicBlockRef go);

/* The ordinary copy's final br_if 0 (its condition is popped): back to
 * slow_hdr, or on to `go`; to the set-up after 2^32 iterations. */
void nl_slow_latch(fx_t *f, nl_loop_t *lp, LLVMBasicBlockRef slow_hdr, LLVMBasicBlockRef go);

#endif
