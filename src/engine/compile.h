/*
 * compile.h — the state of one function's compilation (comp_t: the
 * operand stack of types and slots, the control stack, the code being
 * emitted) and the helpers that push, pop and emit, shared by the compiler
 * of the core instructions (compile.c) and of the SIMD ones
 * (compile_simd.c). Private to those two files.
 *
 * The helpers are static inline rather than functions of compile.c: every
 * instruction compiled calls several of them, and compile_simd.c uses them
 * without depending on compile.c, which calls it (the files of
 * src/engine/ form a DAG: scripts/cycles.sh).
 */
#ifndef WASMFN_ENGINE_COMPILE_H
#define WASMFN_ENGINE_COMPILE_H

#include "engine/internal.h"
#include "engine/ops.h"
#include "engine/reader.h"

#include <setjmp.h>
#include <stdlib.h>

#define T_ANY 0 /* the unknown type of the polymorphic stack */

enum { K_TEMP, K_LOCAL, K_CONST };

typedef struct opnd {
    uint8_t type;
    uint8_t kind;     /* K_* */
    uint32_t pos;     /* its slot, counted from the operand stack's first slot */
    uint32_t local;   /* K_LOCAL: the local's slot */
    uint64_t imm;     /* K_CONST: the bits */
} opnd_t;

enum { C_FUNC, C_BLOCK, C_LOOP, C_IF, C_ELSE };

typedef struct ctrl {
    uint8_t kind;
    bool unreachable;
    uint32_t height;          /* operand stack height below the params */
    uint32_t slot_height;     /* the same in slots (where its label's values go) */
    uint32_t nparams, nresults;
    const uint8_t *params, *results;
    size_t loop_pc;           /* C_LOOP: the branch target */
    size_t if_inst, if_rel;   /* C_IF: the branch to patch at else/end */
    uint32_t patches;         /* head of this label's forward branch list */
} ctrl_t;

typedef struct patch {
    size_t inst, rel; /* instruction start and the word holding its offset */
    uint32_t next;
} patch_t;

#define NO_PATCH UINT32_MAX

typedef struct comp {
    eng_module_t *m;
    eng_reader_t r;
    jmp_buf fail;
    char *err;
    size_t errlen;
    uint32_t func_index;
    const void *const *h;

    eng_code_t *code;
    size_t len, cap;

    uint8_t *local_types;
    uint32_t *local_slot;  /* [nlocals] each local's first slot */
    uint32_t nlocals;      /* locals, params included */
    uint32_t nlocal_slots; /* their slots: where the operand stack starts */

    opnd_t *stack;
    uint32_t height, stack_cap;
    uint32_t max_slots;    /* the deepest operand stack, in slots */

    ctrl_t *ctrls;
    uint32_t nctrl, ctrl_cap;

    patch_t *patches;
    uint32_t npatches, patch_cap;

    uint32_t *labels;  /* br_table scratch: its labels */
    uint32_t labels_cap;
    size_t *stubs;     /* br_table scratch: stub position per label depth */
    uint32_t stubs_cap;
    opnd_t *saved;     /* emit_branch_stub scratch */
    uint32_t saved_cap;

    /* The last instruction, for retargeting and fusion. */
    size_t last_start;
    int last_op;        /* -1 when the last instruction cannot be rewritten */
    bool last_dst_ok;   /* its destination (LO of word 1) may be retargeted */
} comp_t;

/* ---- Errors ---- */

static inline void fail(comp_t *c, const char *msg) __attribute__((noreturn));
static inline void fail(comp_t *c, const char *msg)
{
    size_t off = c->r.error ? c->r.error_offset : rd_offset(&c->r);
    const char *what = c->r.error ? c->r.error : msg;
    eng_errf(c->err, c->errlen, "at byte 0x%zx (code section, function %u): %s", off, c->func_index,
             what);
    longjmp(c->fail, 1);
}

static inline void check_reader(comp_t *c)
{
    if (!rd_ok(&c->r))
        fail(c, c->r.error);
}

static inline void *grow(comp_t *c, void *p, uint32_t *cap, size_t elem, uint32_t need)
{
    if (need <= *cap)
        return p;
    uint32_t n = *cap ? *cap : 16;
    while (n < need)
        n *= 2;
    void *q = realloc(p, (size_t)n * elem);
    if (!q)
        fail(c, "out of memory");
    *cap = n;
    return q;
}

/* ---- Emission ---- */

static inline void emit_word(comp_t *c, uint64_t w)
{
    if (c->len == c->cap) {
        size_t n = c->cap ? c->cap * 2 : 256;
        eng_code_t *q = realloc(c->code, n * sizeof *q);
        if (!q)
            fail(c, "out of memory");
        c->code = q;
        c->cap = n;
    }
    c->code[c->len++] = w;
}

static inline uint64_t pack(uint32_t lo, uint32_t hi) { return (uint64_t)lo | ((uint64_t)hi << 32); }

/* Starts an instruction. dst_ok says whether its destination (word 1 LO)
 * can later be retargeted by local.set. */
static inline size_t emit_op(comp_t *c, int op, bool dst_ok)
{
    c->last_start = c->len;
    c->last_op = op;
    c->last_dst_ok = dst_ok;
    emit_word(c, (uint64_t)(uintptr_t)c->h[op]);
    return c->last_start;
}

/* A label (branch target) follows: nothing before it may be rewritten. */
static inline void seal(comp_t *c)
{
    c->last_op = -1;
    c->last_dst_ok = false;
}

static inline uint32_t slot_pos(comp_t *c, uint32_t pos) { return c->nlocal_slots + pos; }

/* Slots a stack value takes. The unknown type of the polymorphic stack gets
 * the widest, so that dead code never names a slot past the frame. */
static inline uint32_t type_slots(uint8_t t) { return t == ENG_V128 || t == T_ANY ? 2u : 1u; }

/* The slot (from the stack's first) of stack entry i: the entries below
 * it are live, so their positions are known. */
static inline uint32_t entry_pos(comp_t *c, uint32_t i)
{
    if (i == 0)
        return 0;
    const opnd_t *b = &c->stack[i - 1];
    return b->pos + type_slots(b->type);
}

static inline void emit_const(comp_t *c, uint32_t dst, uint8_t type, uint64_t imm)
{
    if (type == ENG_I32 || type == ENG_F32) {
        emit_op(c, OP_const32, true);
        emit_word(c, pack(dst, (uint32_t)imm));
    } else {
        emit_op(c, OP_const64, true);
        emit_word(c, dst);
        emit_word(c, imm);
    }
}

static inline void emit_copy(comp_t *c, uint32_t dst, uint32_t src)
{
    if (dst == src)
        return;
    emit_op(c, OP_copy, true);
    emit_word(c, pack(dst, src));
}

/* Copies a value of type t (a v128 is two slot copies, low slot first:
 * callers only copy downwards or to disjoint slots). */
static inline void emit_copy_typed(comp_t *c, uint32_t dst, uint32_t src, uint8_t t)
{
    emit_copy(c, dst, src);
    if (t == ENG_V128 && dst != src) {
        emit_copy(c, dst + 1, src + 1);
        c->last_dst_ok = false; /* the pair's first copy holds the destination */
    }
}

/* ---- Operand stack ---- */

static inline ctrl_t *top_ctrl(comp_t *c) { return &c->ctrls[c->nctrl - 1]; }

static inline opnd_t *push(comp_t *c, uint8_t type, uint8_t kind)
{
    c->stack = grow(c, c->stack, &c->stack_cap, sizeof *c->stack, c->height + 1);
    opnd_t *o = &c->stack[c->height];
    o->type = type;
    o->kind = kind;
    o->pos = entry_pos(c, c->height);
    o->local = 0;
    o->imm = 0;
    c->height++;
    if (o->pos + type_slots(type) > c->max_slots)
        c->max_slots = o->pos + type_slots(type);
    return o;
}

static inline uint32_t push_temp(comp_t *c, uint8_t type) { return slot_pos(c, push(c, type, K_TEMP)->pos); }

static inline opnd_t pop(comp_t *c, uint8_t expect)
{
    ctrl_t *f = top_ctrl(c);
    if (c->height == f->height) {
        if (!f->unreachable)
            fail(c, "type mismatch: operand stack underflow");
        opnd_t o = {.type = expect, .kind = K_TEMP, .pos = entry_pos(c, c->height)};
        return o;
    }
    opnd_t o = c->stack[--c->height];
    if (expect != T_ANY && o.type != T_ANY && o.type != expect)
        fail(c, "type mismatch");
    return o;
}

static inline bool is_ref(uint8_t t) { return t == ENG_FUNCREF || t == ENG_EXTERNREF; }
static inline bool is_num(uint8_t t) { return t == ENG_I32 || t == ENG_I64 || t == ENG_F32 || t == ENG_F64; }

/* Where an operand's value can be read. Pending constants are written into
 * their own slot first. */
static inline uint32_t read_slot(comp_t *c, opnd_t *o)
{
    switch (o->kind) {
    case K_LOCAL:
        return o->local;
    case K_CONST:
        emit_const(c, slot_pos(c, o->pos), o->type, o->imm);
        o->kind = K_TEMP;
        return slot_pos(c, o->pos);
    default:
        return slot_pos(c, o->pos);
    }
}

/* ---- Memory arguments ---- */

static inline void need_memory(comp_t *c)
{
    if (c->m->nmems == 0)
        fail(c, "unknown memory 0");
}

static inline uint32_t read_memarg(comp_t *c, uint32_t natural_log2)
{
    uint32_t align = rd_u32(&c->r);
    uint32_t offset = rd_u32(&c->r);
    check_reader(c);
    need_memory(c);
    if (align > natural_log2)
        fail(c, "alignment must not be larger than natural");
    return offset;
}

/* Compiles one instruction of the 0xFD prefix, the prefix byte just read
 * (compile_simd.c). */
void eng_compile_simd(comp_t *c);

#endif
