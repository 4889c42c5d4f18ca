/*
 * native_ir.h — the state of one function's translation to LLVM IR (fx_t:
 * the compile-time operand stack, the blocks, the function's locals and
 * memory) and the helpers every instruction's translation uses: errors,
 * small builders, the operand stack, traps, fuel, memory addresses.
 * Shared by the translator of the core instructions (native_ir.c) and of
 * the SIMD ones (native_ir_simd.c); private to those two files.
 *
 * The helpers are static inline so that native_ir_simd.c uses them
 * without depending on native_ir.c, which calls it (the files of
 * src/engine/ form a DAG: scripts/cycles.sh).
 */
#ifndef WASMFN_ENGINE_NATIVE_IR_H
#define WASMFN_ENGINE_NATIVE_IR_H

#include "engine/native_llvm.h"
#include "engine/reader.h"

#include <setjmp.h>
#include <stddef.h>
#include <stdlib.h>

enum { B_FUNC, B_BLOCK, B_LOOP, B_IF };

typedef struct nblock {
    uint8_t kind;
    bool dead;                  /* opened in skipped code: only its end matters */
    uint32_t height;            /* operand stack height where its params begin */
    uint32_t nparams, nresults;
    const uint8_t *params, *results;
    LLVMBasicBlockRef target;   /* where a branch to it goes: loop header or end */
    LLVMBasicBlockRef body;     /* loops: the first block of the body, after the header */
    bool self_called;           /* loops: it called its own function at its own level */
    bool counts;                /* loops: the header counts fuel (loop_header) */
    LLVMBasicBlockRef end;      /* after it (blocks, ifs, the function) */
    LLVMBasicBlockRef else_bb;  /* ifs */
    LLVMValueRef *vars;         /* allocas of the label's values */
    LLVMValueRef *if_params;    /* ifs: the params, for the else arm */
    struct nl_loop *nl;         /* loops: a counted loop (native_loop.h) */
} nblock_t;

#define NTRAPS 16

typedef struct fx {
    nc_module_t *nc;
    const eng_module_t *m;
    LLVMBuilderRef b;
    eng_reader_t r;
    jmp_buf fail;
    uint32_t func;              /* index in the module's function space */
    const eng_functype_t *ft;
    LLVMValueRef fn, inst, x;
    LLVMValueRef *twin;         /* where a call to itself goes (nc_function) */
    LLVMBasicBlockRef entry;

    uint32_t nlocals;
    uint8_t *ltypes;
    LLVMValueRef *locals;

    LLVMValueRef *stack;
    uint32_t sp, scap;
    nblock_t *blocks;
    uint32_t nblocks, bcap;
    bool unreachable;
    struct nl_loop *fast;       /* the counted loop whose fast copy is being translated */

    LLVMValueRef mem_obj, mem_base, mem_size_var;
    /* The table object call_indirect last used (index tab_index), loaded in
     * the entry block (op_call_indirect). */
    LLVMValueRef tab_obj;
    uint32_t tab_index;
    LLVMValueRef fuel_var;      /* the fuel, passed along calls in registers */
    LLVMValueRef fuel_ptr;      /* x->fuel, where slow calls find it */
    LLVMValueRef io;            /* scratch eng_val_t array for slow calls */
    uint32_t io_slots;
    LLVMBasicBlockRef traps[NTRAPS + 1]; /* [NTRAPS]: undefined element */
    LLVMValueRef md_pc;         /* !pcsections naming this function (guard_access) */

    void **allocs;              /* everything malloc'd for this function */
    size_t nallocs, capallocs;
} fx_t;

/* ---- Errors and memory ---- */

static inline __attribute__((noreturn)) void fail(fx_t *f, const char *msg)
{
    eng_errf(f->nc->err, f->nc->errlen, "native: function %u, at byte 0x%zx: %s", f->func,
             rd_offset(&f->r), msg);
    longjmp(f->fail, 1);
}

static inline void check_reader(fx_t *f)
{
    if (!rd_ok(&f->r))
        fail(f, f->r.error);
}

static inline void *fx_alloc(fx_t *f, size_t n)
{
    if (f->nallocs == f->capallocs) {
        size_t cap = f->capallocs ? 2 * f->capallocs : 64;
        void **a = realloc(f->allocs, cap * sizeof *a);
        if (!a)
            fail(f, "out of memory");
        f->allocs = a;
        f->capallocs = cap;
    }
    void *p = calloc(1, n ? n : 1);
    if (!p)
        fail(f, "out of memory");
    f->allocs[f->nallocs++] = p;
    return p;
}

/* ---- Small builders ---- */

static inline LLVMValueRef c32(fx_t *f, uint64_t v) { return LLVMConstInt(f->nc->t_i32, v, 0); }
static inline LLVMValueRef c64(fx_t *f, uint64_t v) { return LLVMConstInt(f->nc->t_i64, v, 0); }

static inline void tag(fx_t *f, LLVMValueRef inst, LLVMValueRef tbaa)
{
    LLVMSetMetadata(inst, f->nc->k_tbaa, tbaa);
}

/* A load or store that guard mode lets fault instead of checking. It is
 * volatile (native_ir.c, op_load says why), and its address goes into the
 * object's PC table with this function's index (!pcsections,
 * ENG_OBJ_PC_SECTION), so that a fault names this function even after
 * LLVM inlined it into a caller, as the interpreter's trap does. */
static inline void guard_access(fx_t *f, LLVMValueRef inst)
{
    LLVMSetVolatile(inst, 1);
    if (!f->md_pc) {
        LLVMContextRef ctx = f->nc->ctx;
        LLVMMetadataRef idx = LLVMValueAsMetadata(LLVMConstInt(LLVMInt32TypeInContext(ctx), f->func, 0));
        LLVMMetadataRef ops[2] = {
            LLVMMDStringInContext2(ctx, ENG_OBJ_PC_SECTION, strlen(ENG_OBJ_PC_SECTION)),
            LLVMMDNodeInContext2(ctx, &idx, 1)};
        f->md_pc = LLVMMetadataAsValue(ctx, LLVMMDNodeInContext2(ctx, ops, 2));
    }
    LLVMSetMetadata(inst, f->nc->k_pcsections, f->md_pc);
}

static inline LLVMValueRef byte_ptr(fx_t *f, LLVMValueRef base, uint64_t off)
{
    if (off == 0)
        return base;
    LLVMValueRef o = c64(f, off);
    return LLVMBuildInBoundsGEP2(f->b, f->nc->t_i8, base, &o, 1, "");
}

/* A load from the engine's own structures. invariant: the field never
 * changes once the code can see it (an instance's arrays, a memory's base). */
static inline LLVMValueRef vm_load(fx_t *f, LLVMTypeRef ty, LLVMValueRef base, uint64_t off,
                            bool invariant)
{
    LLVMValueRef l = LLVMBuildLoad2(f->b, ty, byte_ptr(f, base, off), "");
    tag(f, l, f->nc->tbaa_vm);
    if (invariant)
        LLVMSetMetadata(l, f->nc->k_invariant, f->nc->md_empty);
    return l;
}

/* inst->FIELD[i] for one of the instance's pointer arrays (never changes). */
static inline LLVMValueRef inst_elem(fx_t *f, size_t field_off, uint32_t i)
{
    LLVMValueRef arr = vm_load(f, f->nc->t_ptr, f->inst, field_off, true);
    return vm_load(f, f->nc->t_ptr, arr, (uint64_t)i * sizeof(void *), true);
}

static inline LLVMBasicBlockRef new_bb(fx_t *f) { return LLVMAppendBasicBlockInContext(f->nc->ctx, f->fn, ""); }

static inline LLVMValueRef new_alloca(fx_t *f, LLVMTypeRef ty) { return LLVMBuildAlloca(f->nc->ab, ty, ""); }

/* ---- The operand stack ---- */

static inline void push(fx_t *f, LLVMValueRef v)
{
    if (f->sp == f->scap) {
        uint32_t cap = f->scap ? 2 * f->scap : 64;
        LLVMValueRef *s = realloc(f->stack, cap * sizeof *s);
        if (!s)
            fail(f, "out of memory");
        f->stack = s;
        f->scap = cap;
    }
    f->stack[f->sp++] = v;
}

static inline LLVMValueRef pop(fx_t *f)
{
    if (f->nblocks == 0 || f->sp <= f->blocks[f->nblocks - 1].height)
        fail(f, "operand stack underflow");
    return f->stack[--f->sp];
}

static inline LLVMValueRef *top_n(fx_t *f, uint32_t n)
{
    if (f->sp < n || f->sp - n < f->blocks[f->nblocks - 1].height)
        fail(f, "operand stack underflow");
    return f->stack + f->sp - n;
}

/* ---- Traps, fuel, stack ---- */

static inline LLVMBasicBlockRef trap_bb(fx_t *f, uint32_t code)
{
    uint32_t slot = code & ENG_NAT_TRAP_UNDEFINED_ELEMENT ? NTRAPS : code;
    if (slot > NTRAPS)
        fail(f, "internal: bad trap code");
    if (!f->traps[slot]) {
        LLVMBasicBlockRef here = LLVMGetInsertBlock(f->b);
        LLVMBasicBlockRef bb = new_bb(f);
        LLVMPositionBuilderAtEnd(f->b, bb);
        LLVMValueRef args[4] = {f->inst, f->x, c32(f, code), c32(f, f->func)};
        LLVMBuildCall2(f->b, f->nc->helper_types[NC_eng_nat_trap], f->nc->helpers[NC_eng_nat_trap],
                       args, 4, "");
        LLVMBuildUnreachable(f->b);
        LLVMPositionBuilderAtEnd(f->b, here);
        f->traps[slot] = bb;
    }
    return f->traps[slot];
}

/* Traps with code when cond (i1) holds; goes on in a new block otherwise. */
static inline void trap_if(fx_t *f, LLVMValueRef cond, uint32_t code)
{
    LLVMBasicBlockRef ok = new_bb(f);
    LLVMBuildCondBr(f->b, cond, trap_bb(f, code), ok);
    LLVMPositionBuilderAtEnd(f->b, ok);
}

static inline LLVMValueRef call_helper(fx_t *f, int h, LLVMValueRef *args, unsigned n)
{
    return LLVMBuildCall2(f->b, f->nc->helper_types[h], f->nc->helpers[h], args, n, "");
}

/* Events for the interruption check: one per function entry or loop
 * header (fuel_check), a chunk's worth at a counted loop (native_loop.c).
 * The fuel lives in a local (a register, once LLVM is done), is passed to
 * every native callee and comes back with its results, so a check is a
 * decrement and a branch, with no memory traffic even across calls. */
static inline void fuel_charge(fx_t *f, LLVMValueRef events)
{
    nc_module_t *nc = f->nc;
    LLVMValueRef fuel = LLVMBuildLoad2(f->b, nc->t_i64, f->fuel_var, "");
    LLVMValueRef left = LLVMBuildSub(f->b, fuel, events, "");
    LLVMBuildStore(f->b, left, f->fuel_var);
    LLVMValueRef out = LLVMBuildICmp(f->b, LLVMIntSLT, left, c64(f, 0), "");
    LLVMBasicBlockRef poll = new_bb(f), go = new_bb(f);
    LLVMValueRef br = LLVMBuildCondBr(f->b, out, poll, go);
    LLVMSetMetadata(br, nc->k_prof, nc->md_unlikely);
    LLVMPositionBuilderAtEnd(f->b, poll);
    LLVMValueRef args[3] = {f->inst, f->x, c32(f, f->func)};
    LLVMBuildStore(f->b, call_helper(f, NC_eng_nat_poll, args, 3), f->fuel_var);
    LLVMBuildBr(f->b, go);
    LLVMPositionBuilderAtEnd(f->b, go);
}

static inline void fuel_check(fx_t *f) { fuel_charge(f, c64(f, 1)); }

static inline LLVMValueRef fuel_now(fx_t *f) { return LLVMBuildLoad2(f->b, f->nc->t_i64, f->fuel_var, ""); }

/* Slow calls leave native code: the fuel goes through x->fuel, where a
 * native callee's trampoline takes it and puts it back. */
static inline void fuel_to_memory(fx_t *f)
{
    tag(f, LLVMBuildStore(f->b, fuel_now(f), f->fuel_ptr), f->nc->tbaa_fuel);
}

static inline void fuel_from_memory(fx_t *f)
{
    LLVMValueRef v = LLVMBuildLoad2(f->b, f->nc->t_i64, f->fuel_ptr, "");
    tag(f, v, f->nc->tbaa_fuel);
    LLVMBuildStore(f->b, v, f->fuel_var);
}

/* After a native call: the callee's fuel, and its results onto the stack
 * (or into res[] when res is not NULL). */
static inline void take_results(fx_t *f, LLVMValueRef r, const eng_functype_t *t, LLVMValueRef *res)
{
    LLVMBuildStore(f->b, t->nresults == 0 ? r : LLVMBuildExtractValue(f->b, r, 0, ""), f->fuel_var);
    for (uint32_t i = 0; i < t->nresults; i++) {
        LLVMValueRef v = LLVMBuildExtractValue(f->b, r, i + 1, "");
        if (res)
            res[i] = v;
        else
            push(f, v);
    }
}

static inline void stack_check(fx_t *f)
{
    nc_module_t *nc = f->nc;
    LLVMTypeRef ty;
    LLVMTypeRef ovl = nc->t_i64;
    LLVMValueRef rr = nc_intrinsic(nc, "llvm.read_register", &ovl, 1, &ty);
    LLVMValueRef sp = LLVMBuildCall2(f->b, ty, rr, &nc->md_rsp, 1, "");
    LLVMValueRef lim = vm_load(f, nc->t_i64, f->x, offsetof(eng_exec_t, stack_limit), false);
    trap_if(f, LLVMBuildICmp(f->b, LLVMIntULT, sp, lim, ""), ENG_TRAP_STACK_EXHAUSTED);
}

/* ---- Memory ---- */

static inline void reload_mem_size(fx_t *f)
{
    if (!f->mem_obj)
        return;
    LLVMValueRef size = vm_load(f, f->nc->t_i64, f->mem_obj, offsetof(eng_memory_t, size), false);
    LLVMBuildStore(f->b, size, f->mem_size_var);
}

static inline LLVMValueRef mem_size(fx_t *f)
{
    if (!f->mem_obj)
        fail(f, "memory instruction without a memory");
    return LLVMBuildLoad2(f->b, f->nc->t_i64, f->mem_size_var, "");
}

/* The host address of an access of n bytes at addr (i32) + offset, after
 * the bounds check. */
static inline LLVMValueRef mem_addr(fx_t *f, LLVMValueRef addr, uint32_t offset, unsigned n)
{
    LLVMValueRef size = mem_size(f); /* also: fails without a memory */
    LLVMValueRef ea = LLVMBuildZExt(f->b, addr, f->nc->t_i64, "");
    if (offset)
        ea = LLVMBuildNUWAdd(f->b, ea, c64(f, offset), "");
    /* Guard mode: the access lands in the guard slot whatever the address,
     * and faults past the memory's size (internal.h). */
    if (!(f->nc->guard && (uint64_t)offset + n <= ENG_GUARD_SLACK)) {
        LLVMValueRef end = LLVMBuildNUWAdd(f->b, ea, c64(f, n), "");
        trap_if(f, LLVMBuildICmp(f->b, LLVMIntUGT, end, size, ""), ENG_TRAP_MEMORY_OOB);
    }
    return LLVMBuildInBoundsGEP2(f->b, f->nc->t_i8, f->mem_base, &ea, 1, "");
}

static inline uint32_t read_memarg(fx_t *f)
{
    rd_u32(&f->r); /* alignment: a hint; x86 loads need none */
    uint32_t off = rd_u32(&f->r);
    check_reader(f);
    return off;
}

/* ---- Numeric helpers ---- */

static inline LLVMValueRef bool32(fx_t *f, LLVMValueRef i1) { return LLVMBuildZExt(f->b, i1, f->nc->t_i32, ""); }

static inline LLVMValueRef intrinsic1(fx_t *f, const char *name, LLVMValueRef a)
{
    LLVMTypeRef ty, ovl = LLVMTypeOf(a);
    LLVMValueRef fn = nc_intrinsic(f->nc, name, &ovl, 1, &ty);
    return LLVMBuildCall2(f->b, ty, fn, &a, 1, "");
}

static inline LLVMValueRef intrinsic2(fx_t *f, const char *name, LLVMValueRef a, LLVMValueRef b)
{
    LLVMTypeRef ty, ovl = LLVMTypeOf(a);
    LLVMValueRef fn = nc_intrinsic(f->nc, name, &ovl, 1, &ty);
    LLVMValueRef args[2] = {a, b};
    return LLVMBuildCall2(f->b, ty, fn, args, 2, "");
}

/* Translates one instruction of the 0xFD prefix, the prefix byte just read
 * (native_ir_simd.c). */
void nc_simd(fx_t *f);

/* Control flow (native_ir_flow.c): block, loop and if (kind B_*), else,
 * end (true at the function's final end), br and return (depth: the
 * function's block), br_if, br_table; a block on the label stack, and
 * allocas for n values of the given types. */
void nc_block(fx_t *f, uint8_t kind);
void nc_else(fx_t *f);
bool nc_end(fx_t *f);
void nc_br(fx_t *f, uint32_t depth);
void nc_br_if(fx_t *f, uint32_t depth);
void nc_br_table(fx_t *f);
nblock_t *nc_push_block(fx_t *f, uint8_t kind, uint32_t np, const uint8_t *p, uint32_t nr,
                        const uint8_t *r);
LLVMValueRef *nc_make_vars(fx_t *f, uint32_t n, const uint8_t *types);

#endif
