/*
 * interp.c — the threaded interpreter and eng_call, the entry into it.
 *
 * Internal code (ops.h) starts every instruction with the address of its
 * handler, so dispatch is one indirect jump ("direct threading" with GCC's
 * computed goto): no decode, no switch, and each handler ends in its own
 * indirect jump, which branch predictors learn per site. Operands are frame
 * slots, so there is no operand stack pointer to maintain at run time.
 *
 * The interpreter state lives in local variables the compiler keeps in
 * registers: pc, fp (frame base), the instance, and the bytes and size of
 * memory 0 (reloaded after anything that may change them: calls, returns,
 * memory.grow). Memory accesses are bounds-checked explicitly: one add and
 * one compare against mem_size, which keeps each memory a plain mapping with
 * no guard region (see docs/engine.md for the trade-off).
 *
 * wasm-to-wasm calls do not recurse in C: a call pushes a frame record
 * (return pc, caller fp, caller instance, callee) onto exec->frames and
 * jumps. Call depth and value-stack use are both bounded, so runaway
 * recursion traps with "call stack exhausted" instead of overflowing the
 * host's stack. Host functions run as plain C calls and may re-enter
 * eng_call on the same exec; the nested run stacks above the caller.
 *
 * Runaway guests: function entries and backward branches decrement a
 * budget; when it runs out (every BUDGET events) the deadline and the
 * interrupt flag are checked, one clock read per BUDGET events. The exec's
 * yield hook, when set, runs there first: the runtime's scheduler uses it
 * to switch fibers when a guest's time slice is used up.
 *
 * Around it: exec.c (execution contexts, trap messages, the C stack's
 * limit), interp_num.h (the spec's numeric semantics where C's differ),
 * simd.c (v128 lanes) and store.c (memory.grow, table.grow). A call into a
 * function with native code goes through the function's own entry pointer
 * (f->enter, set by native_load.c), so the interpreter does not depend on
 * the native tier, which calls back into eng_call.
 */
#include "engine/internal.h"
#include "engine/numeric.h"
#include "engine/ops.h"

#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <time.h>

#define LIKELY(x) __builtin_expect(!!(x), 1)
#define UNLIKELY(x) __builtin_expect(!!(x), 0)

/* ENG_BUDGET (internal.h): events (function entries, backward branches)
 * between deadline checks. A check is one vDSO clock read (~20 ns); 10,000
 * events take at least ~10 µs, so the overhead is well under 1% and a
 * deadline is noticed within microseconds of passing. memory.fill and
 * memory.copy check it too, every ENG_BULK_CHUNK bytes (eng_bulk_*), so
 * one instruction moving gigabytes stops within a chunk's time. */
#define BUDGET ENG_BUDGET

typedef eng_frame_t frame_t;

static void trap_message(eng_exec_t *x, eng_trap_t t, const char *text, const eng_func_t *f)
{
    if (f && f->inst)
        eng_trap_message(x, t, text, f->inst->module, f->index);
    else
        eng_trap_message(x, t, text, NULL, 0);
}

static eng_memory_t no_memory; /* for instances without memory: size 0 */

static inline eng_memory_t *inst_memory(const eng_instance_t *inst)
{
    return inst->module->nmems ? inst->mems[0] : &no_memory;
}

/* ---- The interpreter ---- */

static const eng_code_t *exit_stub;

/* GCC's global CSE merges the handlers' indirect jumps into one shared
 * jump, which defeats per-handler branch prediction; its manual recommends
 * -fno-gcse for computed-goto interpreters. */
#if defined(__GNUC__) && !defined(__clang__)
#define INTERP_ATTR __attribute__((optimize("no-gcse")))
#else
#define INTERP_ATTR
#endif

/* Runs wasm function f whose arguments are at fp[0..). With x == NULL it
 * only hands out its handler table (labels exist only inside the function). */
static INTERP_ATTR eng_trap_t run(eng_exec_t *x, eng_func_t *f, eng_val_t *fp, const void *const **table_out)
{
    static const void *const handlers[OP_COUNT] = {
#define ENG_OP_LABEL(n) &&L_##n,
        ENG_OPS(ENG_OP_LABEL)
#undef ENG_OP_LABEL
    };
    if (!x) {
        *table_out = handlers;
        return ENG_OK;
    }

    const uint32_t entry_depth = x->depth;
    eng_val_t *const saved_top = x->top;
    frame_t *const frames = x->frames;
    uint32_t depth = entry_depth;
    int32_t budget = 1;
    eng_trap_t trap = ENG_OK;
    const char *trap_text = NULL;
    const eng_func_t *trap_callee = NULL;

    const eng_code_t *pc;
    eng_instance_t *inst = f->inst;
    eng_memory_t *mem;
    uint8_t *mem_base;
    uint64_t mem_size;
    eng_func_t *callee = f;
    eng_val_t *nfp = fp;

#define RELOAD_MEM()                                                                               \
    do {                                                                                           \
        mem = inst_memory(inst);                                                                   \
        mem_base = mem->data;                                                                      \
        mem_size = mem->size;                                                                      \
    } while (0)
#define NEXT() goto *(const void *)(uintptr_t)pc[0]
#define LO(w) ((uint32_t)pc[w])
#define HI(w) ((uint32_t)(pc[w] >> 32))
#define TRAP(t)                                                                                    \
    do {                                                                                           \
        trap = (t);                                                                                \
        goto trapped;                                                                              \
    } while (0)
#define TRAP_TEXT(t, s)                                                                            \
    do {                                                                                           \
        trap_text = (s);                                                                           \
        TRAP(t);                                                                                   \
    } while (0)
#define CHECK_BUDGET()                                                                             \
    do {                                                                                           \
        if (UNLIKELY(--budget <= 0)) {                                                             \
            budget = BUDGET;                                                                       \
            if (x->yield_fn)                                                                       \
                x->yield_fn(x, x->yield_ud);                                                       \
            if (eng_exec_should_stop(x))                                                               \
                TRAP(ENG_TRAP_DEADLINE);                                                           \
        }                                                                                          \
    } while (0)
#define JUMP(rel)                                                                                  \
    do {                                                                                           \
        int64_t r_ = (int64_t)(rel);                                                               \
        if (r_ <= 0)                                                                               \
            CHECK_BUDGET();                                                                        \
        pc += r_;                                                                                  \
        NEXT();                                                                                    \
    } while (0)
/* Effective address of an access of n bytes at a + offset, or a trap. */
#define EA(a, off, n)                                                                              \
    ({                                                                                             \
        uint64_t ea_ = (uint64_t)(a) + (uint64_t)(off);                                            \
        if (UNLIKELY(ea_ + (n) > mem_size))                                                        \
            TRAP(ENG_TRAP_MEMORY_OOB);                                                             \
        mem_base + ea_;                                                                            \
    })

    /* Enter f as if called from the exit stub. */
    pc = exit_stub;
    RELOAD_MEM();
    goto do_call;

L_unreachable:
    TRAP(ENG_TRAP_UNREACHABLE);
L_exit:
    x->depth = entry_depth;
    x->top = saved_top;
    return ENG_OK;
L_br:
    JUMP(pc[1]);
L_br_if:
    if (fp[pc[1]].i32)
        JUMP(pc[2]);
    pc += 3;
    NEXT();
L_br_unless:
    if (!fp[pc[1]].i32)
        JUMP(pc[2]);
    pc += 3;
    NEXT();
L_br_table: {
    uint32_t i = fp[LO(1)].i32, n = HI(1);
    if (i > n)
        i = n;
    JUMP(pc[2 + i]);
}
L_ret1:
    fp[0] = fp[pc[1]];
    /* fall through */
L_ret: {
    frame_t *fr = &frames[--depth];
    pc = fr->ret_pc;
    fp = fr->fp;
    inst = fr->inst;
    RELOAD_MEM();
    NEXT();
}
L_call:
    callee = inst->funcs[LO(1)];
    nfp = fp + HI(1);
    pc += 2;
    goto do_call;
L_call_indirect: {
    eng_table_t *t = inst->tables[LO(2)];
    uint32_t i = fp[HI(2)].i32;
    if (UNLIKELY(i >= t->size))
        TRAP_TEXT(ENG_TRAP_TABLE_OOB, "undefined element");
    callee = t->elems[i];
    if (UNLIKELY(!callee))
        TRAP(ENG_TRAP_NULL_REF);
    const eng_functype_t *want = &inst->module->types[LO(1)];
    if (UNLIKELY(callee->type != want && !eng_functype_equal(callee->type, want)))
        TRAP(ENG_TRAP_INDIRECT_TYPE);
    nfp = fp + HI(1);
    pc += 3;
    goto do_call;
}
do_call:
    /* callee, nfp (its argument slots) and pc (the return address) are set. */
    if (callee->host) {
        /* Nested eng_calls from the host go above this frame. */
        x->top = fp ? fp + frames[depth - 1].func->code->frame_slots : saved_top;
        if (x->top < nfp + callee->type->param_slots + callee->type->result_slots)
            x->top = nfp + callee->type->param_slots + callee->type->result_slots;
        if (UNLIKELY(x->top > x->stack_end))
            TRAP(ENG_TRAP_STACK_EXHAUSTED);
        x->depth = depth;
        eng_host_call_t hc = {x, fp ? inst : NULL, callee->env};
        eng_trap_t t = callee->host(&hc, nfp);
        x->top = saved_top;
        if (UNLIKELY(t != ENG_OK))
            TRAP(t);
        RELOAD_MEM();
        NEXT();
    } else if (UNLIKELY(callee->native != NULL)) {
        /* Another instance's function in native code (tiers mix only
         * across instances): entered like a host function. */
        x->top = fp ? fp + frames[depth - 1].func->code->frame_slots : saved_top;
        if (x->top < nfp + callee->type->param_slots + callee->type->result_slots)
            x->top = nfp + callee->type->param_slots + callee->type->result_slots;
        if (UNLIKELY(x->top > x->stack_end))
            TRAP(ENG_TRAP_STACK_EXHAUSTED);
        x->depth = depth;
        eng_trap_t t = callee->enter(x, callee, nfp);
        x->top = saved_top;
        if (UNLIKELY(t != ENG_OK)) {
            trap = t;
            goto trapped_native;
        }
        RELOAD_MEM();
        NEXT();
    } else {
        const eng_code_func_t *cf = callee->code;
        if (UNLIKELY(depth >= x->max_depth || nfp + cf->frame_slots > x->stack_end)) {
            trap_callee = callee; /* the function that could not be entered */
            TRAP(ENG_TRAP_STACK_EXHAUSTED);
        }
        frame_t *fr = &frames[depth++];
        fr->ret_pc = pc;
        fr->fp = fp;
        fr->inst = inst;
        fr->func = callee;
        memset(nfp + cf->param_slots, 0, (size_t)(cf->nlocals - cf->param_slots) * sizeof *nfp);
        fp = nfp;
        pc = cf->code;
        if (callee->inst != inst) {
            inst = callee->inst;
            RELOAD_MEM();
        }
        CHECK_BUDGET();
        NEXT();
    }
L_copy:
    fp[LO(1)] = fp[HI(1)];
    pc += 2;
    NEXT();
L_const32:
    fp[LO(1)].i64 = HI(1);
    pc += 2;
    NEXT();
L_const64:
    fp[pc[1]].i64 = pc[2];
    pc += 3;
    NEXT();
L_select:
    fp[LO(1)] = fp[HI(1)].i32 ? fp[LO(2)] : fp[HI(2)];
    pc += 3;
    NEXT();
L_global_get:
    fp[LO(1)] = inst->globals[HI(1)]->val;
    pc += 2;
    NEXT();
L_global_set:
    inst->globals[LO(1)]->val = fp[HI(1)];
    pc += 2;
    NEXT();

    /* v128: two slots, copied with memcpy (simd.c has the lane semantics).
     * Inputs are copied out before the result is written: d may be an
     * input's slot. */
#define V_GET(v, slot) memcpy(&(v), &fp[slot], 16)
#define V_PUT(slot, v) memcpy(&fp[slot], &(v), 16)
L_select128: {
    eng_v128_t v;
    V_GET(v, fp[HI(1)].i32 ? LO(2) : HI(2));
    V_PUT(LO(1), v);
    pc += 3;
    NEXT();
}
L_global_get128:
    memcpy(&fp[LO(1)], &inst->globals[HI(1)]->val, 8);
    memcpy(&fp[LO(1) + 1], &inst->globals[HI(1)]->val_hi, 8);
    pc += 2;
    NEXT();
L_global_set128:
    memcpy(&inst->globals[LO(1)]->val, &fp[HI(1)], 8);
    memcpy(&inst->globals[LO(1)]->val_hi, &fp[HI(1) + 1], 8);
    pc += 2;
    NEXT();
L_v_const:
    memcpy(&fp[LO(1)], &pc[2], 16);
    pc += 4;
    NEXT();
L_v_load: {
    uint32_t sub = (uint32_t)pc[3];
    eng_v128_t v;
    eng_simd_load(sub, &v, EA(fp[HI(1)].i32, pc[2], eng_simd_load_bytes(sub)));
    V_PUT(LO(1), v);
    pc += 4;
    NEXT();
}
L_v_store:
    memcpy(EA(fp[LO(1)].i32, pc[2], 16), &fp[HI(1)], 16);
    pc += 3;
    NEXT();
L_v_load_lane: {
    uint32_t sl = HI(2), n = 1u << ((sl - 0x54) & 3), lane = (sl >> 8) & (16 / n - 1);
    eng_v128_t v;
    V_GET(v, LO(2));
    memcpy(&v.u8[lane * n], EA(fp[HI(1)].i32, pc[3], n), n);
    V_PUT(LO(1), v);
    pc += 4;
    NEXT();
}
L_v_store_lane: {
    uint32_t sl = LO(2), n = 1u << ((sl - 0x58) & 3), lane = (sl >> 8) & (16 / n - 1);
    eng_v128_t v;
    V_GET(v, HI(1));
    memcpy(EA(fp[LO(1)].i32, pc[3], n), &v.u8[lane * n], n);
    pc += 4;
    NEXT();
}
L_v_splat: {
    eng_v128_t d;
    eng_simd_splat((uint32_t)pc[2], &d, fp[HI(1)].i64);
    V_PUT(LO(1), d);
    pc += 3;
    NEXT();
}
L_v_extract: {
    eng_v128_t a;
    V_GET(a, HI(1));
    fp[LO(1)].i64 = eng_simd_extract((uint32_t)pc[2], &a);
    pc += 3;
    NEXT();
}
L_v_replace: {
    eng_v128_t a, d;
    V_GET(a, HI(1));
    eng_simd_replace(HI(2), &d, &a, fp[LO(2)].i64);
    V_PUT(LO(1), d);
    pc += 3;
    NEXT();
}
L_v_shift: {
    eng_v128_t a, d;
    V_GET(a, HI(1));
    eng_simd_shift(HI(2), &d, &a, fp[LO(2)].i32);
    V_PUT(LO(1), d);
    pc += 3;
    NEXT();
}
L_v_un: {
    eng_v128_t a, d;
    V_GET(a, HI(1));
    eng_simd_un((uint32_t)pc[2], &d, &a);
    V_PUT(LO(1), d);
    pc += 3;
    NEXT();
}
L_v_test: {
    eng_v128_t a;
    V_GET(a, HI(1));
    fp[LO(1)].i64 = eng_simd_test((uint32_t)pc[2], &a);
    pc += 3;
    NEXT();
}
L_v_bin: {
    eng_v128_t a, b, d;
    V_GET(a, HI(1));
    V_GET(b, LO(2));
    eng_simd_bin(HI(2), &d, &a, &b);
    V_PUT(LO(1), d);
    pc += 3;
    NEXT();
}
L_v_bitselect: {
    eng_v128_t a, b, m;
    V_GET(a, HI(1));
    V_GET(b, LO(2));
    V_GET(m, HI(2));
    for (int i = 0; i < 2; i++)
        a.u64[i] = (a.u64[i] & m.u64[i]) | (b.u64[i] & ~m.u64[i]);
    V_PUT(LO(1), a);
    pc += 3;
    NEXT();
}
L_v_shuffle: {
    eng_v128_t a, b, d;
    uint8_t lanes[16];
    V_GET(a, HI(1));
    V_GET(b, LO(2));
    memcpy(lanes, &pc[3], 16);
    eng_simd_shuffle(&d, &a, &b, lanes);
    V_PUT(LO(1), d);
    pc += 5;
    NEXT();
}

    /* Memory. Loads write all 64 bits (zero- or sign-extended), so the same
     * handler serves i32 and i64 forms. */
#define LOAD(name, ctype, ext)                                                                     \
    L_##name : {                                                                                   \
        ctype v_;                                                                                  \
        memcpy(&v_, EA(fp[HI(1)].i32, pc[2], sizeof(ctype)), sizeof(ctype));                       \
        fp[LO(1)].i64 = (uint64_t)(ext)v_;                                                         \
        pc += 3;                                                                                   \
        NEXT();                                                                                    \
    }
    LOAD(ld8s, int8_t, int64_t)
    LOAD(ld8u, uint8_t, uint64_t)
    LOAD(ld16s, int16_t, int64_t)
    LOAD(ld16u, uint16_t, uint64_t)
    LOAD(ld32s, int32_t, int64_t)
    LOAD(ld32u, uint32_t, uint64_t)
    LOAD(ld64, uint64_t, uint64_t)
#define STORE(name, ctype)                                                                         \
    L_##name : {                                                                                   \
        ctype v_ = (ctype)fp[HI(1)].i64;                                                           \
        memcpy(EA(fp[LO(1)].i32, pc[2], sizeof(ctype)), &v_, sizeof(ctype));                       \
        pc += 3;                                                                                   \
        NEXT();                                                                                    \
    }
    STORE(st8, uint8_t)
    STORE(st16, uint16_t)
    STORE(st32, uint32_t)
    STORE(st64, uint64_t)

L_mem_size:
    fp[pc[1]].i64 = mem->pages;
    pc += 2;
    NEXT();
L_mem_grow: {
    int64_t old = eng_memory_grow(mem, fp[HI(1)].i32);
    fp[LO(1)].i64 = (uint32_t)(int32_t)old;
    RELOAD_MEM();
    pc += 2;
    NEXT();
}
L_mem_fill: {
    uint32_t d = fp[LO(1)].i32, n = fp[pc[2]].i32;
    if ((uint64_t)d + n > mem_size)
        TRAP(ENG_TRAP_MEMORY_OOB);
    if (n && !eng_bulk_fill(x, mem_base + d, (int)(uint8_t)fp[HI(1)].i32, n))
        TRAP(ENG_TRAP_DEADLINE);
    pc += 3;
    NEXT();
}
L_mem_copy: {
    uint32_t d = fp[LO(1)].i32, s = fp[HI(1)].i32, n = fp[pc[2]].i32;
    if ((uint64_t)d + n > mem_size || (uint64_t)s + n > mem_size)
        TRAP(ENG_TRAP_MEMORY_OOB);
    if (n && !eng_bulk_move(x, mem_base + d, mem_base + s, n))
        TRAP(ENG_TRAP_DEADLINE);
    pc += 3;
    NEXT();
}
L_mem_init: {
    uint32_t d = fp[LO(1)].i32, s = fp[HI(1)].i32, n = fp[LO(2)].i32, seg = HI(2);
    const eng_data_t *ds = &inst->module->datas[seg];
    uint64_t len = inst->data_dropped[seg] ? 0 : ds->len;
    if ((uint64_t)s + n > len || (uint64_t)d + n > mem_size)
        TRAP(ENG_TRAP_MEMORY_OOB);
    if (n)
        memcpy(mem_base + d, ds->bytes + s, n);
    pc += 3;
    NEXT();
}
L_data_drop:
    inst->data_dropped[pc[1]] = true;
    pc += 2;
    NEXT();

    /* Tables and references. */
L_tbl_get: {
    eng_table_t *t = inst->tables[pc[2]];
    uint32_t i = fp[HI(1)].i32;
    if (i >= t->size)
        TRAP(ENG_TRAP_TABLE_OOB);
    fp[LO(1)].ref = t->elems[i];
    pc += 3;
    NEXT();
}
L_tbl_set: {
    eng_table_t *t = inst->tables[pc[2]];
    uint32_t i = fp[LO(1)].i32;
    if (i >= t->size)
        TRAP(ENG_TRAP_TABLE_OOB);
    t->elems[i] = fp[HI(1)].ref;
    pc += 3;
    NEXT();
}
L_tbl_size:
    fp[LO(1)].i64 = inst->tables[HI(1)]->size;
    pc += 2;
    NEXT();
L_tbl_grow: {
    int64_t old = eng_table_grow(inst->tables[HI(2)], fp[LO(2)].i32, fp[HI(1)].ref);
    fp[LO(1)].i64 = (uint32_t)(int32_t)old;
    pc += 3;
    NEXT();
}
L_tbl_fill: {
    eng_table_t *t = inst->tables[HI(2)];
    uint32_t i = fp[LO(1)].i32, n = fp[LO(2)].i32;
    void *v = fp[HI(1)].ref;
    if ((uint64_t)i + n > t->size)
        TRAP(ENG_TRAP_TABLE_OOB);
    for (uint32_t k = 0; k < n; k++)
        t->elems[i + k] = v;
    pc += 3;
    NEXT();
}
L_tbl_copy: {
    eng_table_t *td = inst->tables[LO(3)], *ts = inst->tables[HI(3)];
    uint32_t d = fp[LO(1)].i32, s = fp[HI(1)].i32, n = fp[pc[2]].i32;
    if ((uint64_t)d + n > td->size || (uint64_t)s + n > ts->size)
        TRAP(ENG_TRAP_TABLE_OOB);
    if (n)
        memmove(td->elems + d, ts->elems + s, (size_t)n * sizeof(void *));
    pc += 4;
    NEXT();
}
L_tbl_init: {
    eng_table_t *t = inst->tables[pc[3]];
    uint32_t d = fp[LO(1)].i32, s = fp[HI(1)].i32, n = fp[LO(2)].i32, seg = HI(2);
    uint64_t len = inst->elem_len[seg];
    if ((uint64_t)s + n > len || (uint64_t)d + n > t->size)
        TRAP(ENG_TRAP_TABLE_OOB);
    if (n)
        memcpy(t->elems + d, inst->elem_refs[seg] + s, (size_t)n * sizeof(void *));
    pc += 4;
    NEXT();
}
L_elem_drop:
    inst->elem_len[pc[1]] = 0;
    pc += 2;
    NEXT();
L_ref_func:
    fp[LO(1)].ref = inst->funcs[HI(1)];
    pc += 2;
    NEXT();
L_ref_is_null:
    fp[LO(1)].i64 = fp[HI(1)].ref == NULL;
    pc += 2;
    NEXT();

    /* Numeric handlers. U = unary, B = binary, BI = binary with immediate;
     * A and B name the operands, R the result expression. */
#define A32 fp[HI(1)].i32
#define B32 fp[pc[2]].i32
#define I32IMM ((uint32_t)pc[2])
#define A64 fp[HI(1)].i64
#define B64 fp[pc[2]].i64
#define I64IMM (pc[2])
#define AF32 fp[HI(1)].f32
#define BF32 fp[pc[2]].f32
#define AF64 fp[HI(1)].f64
#define BF64 fp[pc[2]].f64
#define UN(name, field, expr)                                                                      \
    L_##name : fp[LO(1)].field = (expr);                                                           \
    pc += 2;                                                                                       \
    NEXT();
#define BIN(name, field, expr)                                                                     \
    L_##name : fp[LO(1)].field = (expr);                                                           \
    pc += 3;                                                                                       \
    NEXT();
/* i32 results are written as 64-bit zero-extended values so that a slot
 * never holds stale upper bits (cheaper to reason about; same cost). */
#define BIN32(name, expr) BIN(name, i64, (uint32_t)(expr))
#define UN32(name, expr) UN(name, i64, (uint32_t)(expr))

    UN32(eqz32, A32 == 0)
    BIN32(eq32, A32 == B32)
    BIN32(ne32, A32 != B32)
    BIN32(lts32, (int32_t)A32 < (int32_t)B32)
    BIN32(ltu32, A32 < B32)
    BIN32(gts32, (int32_t)A32 > (int32_t)B32)
    BIN32(gtu32, A32 > B32)
    BIN32(les32, (int32_t)A32 <= (int32_t)B32)
    BIN32(leu32, A32 <= B32)
    BIN32(ges32, (int32_t)A32 >= (int32_t)B32)
    BIN32(geu32, A32 >= B32)
    UN32(clz32, A32 ? __builtin_clz(A32) : 32)
    UN32(ctz32, A32 ? __builtin_ctz(A32) : 32)
    UN32(popcnt32, __builtin_popcount(A32))
    BIN32(add32, A32 + B32)
    BIN32(sub32, A32 - B32)
    BIN32(mul32, A32 * B32)
L_divs32: {
    int32_t a = (int32_t)A32, b = (int32_t)B32;
    if (UNLIKELY(b == 0))
        TRAP(ENG_TRAP_DIV_ZERO);
    if (UNLIKELY(a == INT32_MIN && b == -1))
        TRAP(ENG_TRAP_INT_OVERFLOW);
    fp[LO(1)].i64 = (uint32_t)(a / b);
    pc += 3;
    NEXT();
}
L_divu32: {
    uint32_t b = B32;
    if (UNLIKELY(b == 0))
        TRAP(ENG_TRAP_DIV_ZERO);
    fp[LO(1)].i64 = A32 / b;
    pc += 3;
    NEXT();
}
L_rems32: {
    int32_t a = (int32_t)A32, b = (int32_t)B32;
    if (UNLIKELY(b == 0))
        TRAP(ENG_TRAP_DIV_ZERO);
    fp[LO(1)].i64 = b == -1 ? 0 : (uint32_t)(a % b);
    pc += 3;
    NEXT();
}
L_remu32: {
    uint32_t b = B32;
    if (UNLIKELY(b == 0))
        TRAP(ENG_TRAP_DIV_ZERO);
    fp[LO(1)].i64 = A32 % b;
    pc += 3;
    NEXT();
}
    BIN32(and32, A32 & B32)
    BIN32(or32, A32 | B32)
    BIN32(xor32, A32 ^ B32)
    BIN32(shl32, A32 << (B32 & 31))
    BIN32(shrs32, (int32_t)A32 >> (B32 & 31))
    BIN32(shru32, A32 >> (B32 & 31))
    BIN32(rotl32, rotl32(A32, B32))
    BIN32(rotr32, rotr32(A32, B32))

    UN32(eqz64, A64 == 0)
    BIN32(eq64, A64 == B64)
    BIN32(ne64, A64 != B64)
    BIN32(lts64, (int64_t)A64 < (int64_t)B64)
    BIN32(ltu64, A64 < B64)
    BIN32(gts64, (int64_t)A64 > (int64_t)B64)
    BIN32(gtu64, A64 > B64)
    BIN32(les64, (int64_t)A64 <= (int64_t)B64)
    BIN32(leu64, A64 <= B64)
    BIN32(ges64, (int64_t)A64 >= (int64_t)B64)
    BIN32(geu64, A64 >= B64)
    UN(clz64, i64, A64 ? (uint64_t)__builtin_clzll(A64) : 64)
    UN(ctz64, i64, A64 ? (uint64_t)__builtin_ctzll(A64) : 64)
    UN(popcnt64, i64, (uint64_t)__builtin_popcountll(A64))
    BIN(add64, i64, A64 + B64)
    BIN(sub64, i64, A64 - B64)
    BIN(mul64, i64, A64 * B64)
L_divs64: {
    int64_t a = (int64_t)A64, b = (int64_t)B64;
    if (UNLIKELY(b == 0))
        TRAP(ENG_TRAP_DIV_ZERO);
    if (UNLIKELY(a == INT64_MIN && b == -1))
        TRAP(ENG_TRAP_INT_OVERFLOW);
    fp[LO(1)].i64 = (uint64_t)(a / b);
    pc += 3;
    NEXT();
}
L_divu64: {
    uint64_t b = B64;
    if (UNLIKELY(b == 0))
        TRAP(ENG_TRAP_DIV_ZERO);
    fp[LO(1)].i64 = A64 / b;
    pc += 3;
    NEXT();
}
L_rems64: {
    int64_t a = (int64_t)A64, b = (int64_t)B64;
    if (UNLIKELY(b == 0))
        TRAP(ENG_TRAP_DIV_ZERO);
    fp[LO(1)].i64 = b == -1 ? 0 : (uint64_t)(a % b);
    pc += 3;
    NEXT();
}
L_remu64: {
    uint64_t b = B64;
    if (UNLIKELY(b == 0))
        TRAP(ENG_TRAP_DIV_ZERO);
    fp[LO(1)].i64 = A64 % b;
    pc += 3;
    NEXT();
}
    BIN(and64, i64, A64 & B64)
    BIN(or64, i64, A64 | B64)
    BIN(xor64, i64, A64 ^ B64)
    BIN(shl64, i64, A64 << (B64 & 63))
    BIN(shrs64, i64, (uint64_t)((int64_t)A64 >> (B64 & 63)))
    BIN(shru64, i64, A64 >> (B64 & 63))
    BIN(rotl64, i64, rotl64(A64, B64))
    BIN(rotr64, i64, rotr64(A64, B64))

    BIN32(eqf32, AF32 == BF32)
    BIN32(nef32, AF32 != BF32)
    BIN32(ltf32, AF32 < BF32)
    BIN32(gtf32, AF32 > BF32)
    BIN32(lef32, AF32 <= BF32)
    BIN32(gef32, AF32 >= BF32)
    UN32(absf32, A32 & 0x7FFFFFFFu)
    UN32(negf32, A32 ^ 0x80000000u)
    UN(ceilf32, f32, ROUNDF(ceilf, AF32))
    UN(floorf32, f32, ROUNDF(floorf, AF32))
    UN(truncf32, f32, ROUNDF(truncf, AF32))
    UN(nearestf32, f32, ROUNDF(rintf, AF32))
    UN(sqrtf32, f32, sqrtf(AF32))
    BIN(addf32, f32, AF32 + BF32)
    BIN(subf32, f32, AF32 - BF32)
    BIN(mulf32, f32, AF32 * BF32)
    BIN(divf32, f32, AF32 / BF32)
    BIN(minf32, f32, eng_fminf(AF32, BF32))
    BIN(maxf32, f32, eng_fmaxf(AF32, BF32))
    BIN32(copysignf32, (A32 & 0x7FFFFFFFu) | (B32 & 0x80000000u))

    BIN32(eqf64, AF64 == BF64)
    BIN32(nef64, AF64 != BF64)
    BIN32(ltf64, AF64 < BF64)
    BIN32(gtf64, AF64 > BF64)
    BIN32(lef64, AF64 <= BF64)
    BIN32(gef64, AF64 >= BF64)
    UN(absf64, i64, A64 & 0x7FFFFFFFFFFFFFFFull)
    UN(negf64, i64, A64 ^ 0x8000000000000000ull)
    UN(ceilf64, f64, ROUNDF(ceil, AF64))
    UN(floorf64, f64, ROUNDF(floor, AF64))
    UN(truncf64, f64, ROUNDF(trunc, AF64))
    UN(nearestf64, f64, ROUNDF(rint, AF64))
    UN(sqrtf64, f64, sqrt(AF64))
    BIN(addf64, f64, AF64 + BF64)
    BIN(subf64, f64, AF64 - BF64)
    BIN(mulf64, f64, AF64 * BF64)
    BIN(divf64, f64, AF64 / BF64)
    BIN(minf64, f64, eng_fmin(AF64, BF64))
    BIN(maxf64, f64, eng_fmax(AF64, BF64))
    BIN(copysignf64, i64, (A64 & 0x7FFFFFFFFFFFFFFFull) | (B64 & 0x8000000000000000ull))

    /* Trapping float-to-int conversions: NaN is an invalid conversion,
     * anything outside the target's range an overflow. The bounds are the
     * exact values where truncation leaves the range. */
#define TRUNC(name, ftype, src, lo, hi, field, ctype)                                              \
    L_##name : {                                                                                   \
        ftype v_ = src;                                                                            \
        if (UNLIKELY(v_ != v_))                                                                    \
            TRAP(ENG_TRAP_INVALID_CONV);                                                           \
        if (UNLIKELY(!(v_ > (lo) && v_ < (hi))))                                                   \
            TRAP(ENG_TRAP_INT_OVERFLOW);                                                           \
        fp[LO(1)].field = (ctype)v_;                                                               \
        pc += 2;                                                                                   \
        NEXT();                                                                                    \
    }
    TRUNC(i32_trunc_f32_s, float, AF32, -2147483904.0f, 2147483648.0f, i64, uint32_t)
    TRUNC(i32_trunc_f32_u, float, AF32, -1.0f, 4294967296.0f, i64, uint32_t)
    TRUNC(i32_trunc_f64_s, double, AF64, -2147483649.0, 2147483648.0, i64, uint32_t)
    TRUNC(i32_trunc_f64_u, double, AF64, -1.0, 4294967296.0, i64, uint32_t)
    TRUNC(i64_trunc_f32_s, float, AF32, -9223373136366403584.0f, 9223372036854775808.0f, i64, int64_t)
    TRUNC(i64_trunc_f32_u, float, AF32, -1.0f, 18446744073709551616.0f, i64, uint64_t)
    TRUNC(i64_trunc_f64_s, double, AF64, -9223372036854777856.0, 9223372036854775808.0, i64, int64_t)
    TRUNC(i64_trunc_f64_u, double, AF64, -1.0, 18446744073709551616.0, i64, uint64_t)

    UN(i64_extend_i32_s, i64, (uint64_t)(int64_t)(int32_t)A32)
    UN(i64_extend_i32_u, i64, (uint64_t)A32)
    UN(f32_convert_i32_s, f32, (float)(int32_t)A32)
    UN(f32_convert_i32_u, f32, (float)A32)
    UN(f32_convert_i64_s, f32, (float)(int64_t)A64)
    UN(f32_convert_i64_u, f32, (float)A64)
    UN(f32_demote_f64, f32, (float)AF64)
    UN(f64_convert_i32_s, f64, (double)(int32_t)A32)
    UN(f64_convert_i32_u, f64, (double)A32)
    UN(f64_convert_i64_s, f64, (double)(int64_t)A64)
    UN(f64_convert_i64_u, f64, (double)A64)
    UN(f64_promote_f32, f64, (double)AF32)
    UN32(i32_extend8_s, (int32_t)(int8_t)A32)
    UN32(i32_extend16_s, (int32_t)(int16_t)A32)
    UN(i64_extend8_s, i64, (uint64_t)(int64_t)(int8_t)A64)
    UN(i64_extend16_s, i64, (uint64_t)(int64_t)(int16_t)A64)
    UN32(i32_trunc_sat_f32_s, sat_i32_f64(AF32))
    UN32(i32_trunc_sat_f32_u, sat_u32_f64(AF32))
    UN32(i32_trunc_sat_f64_s, sat_i32_f64(AF64))
    UN32(i32_trunc_sat_f64_u, sat_u32_f64(AF64))
    UN(i64_trunc_sat_f32_s, i64, (uint64_t)sat_i64_f64(AF32))
    UN(i64_trunc_sat_f32_u, i64, sat_u64_f64(AF32))
    UN(i64_trunc_sat_f64_s, i64, (uint64_t)sat_i64_f64(AF64))
    UN(i64_trunc_sat_f64_u, i64, sat_u64_f64(AF64))

    /* With an immediate right operand. */
    BIN32(add32i, A32 + I32IMM)
    BIN32(sub32i, A32 - I32IMM)
    BIN32(mul32i, A32 * I32IMM)
    BIN32(and32i, A32 & I32IMM)
    BIN32(or32i, A32 | I32IMM)
    BIN32(xor32i, A32 ^ I32IMM)
    BIN32(shl32i, A32 << (I32IMM & 31))
    BIN32(shrs32i, (int32_t)A32 >> (I32IMM & 31))
    BIN32(shru32i, A32 >> (I32IMM & 31))
    BIN32(eq32i, A32 == I32IMM)
    BIN32(ne32i, A32 != I32IMM)
    BIN32(lts32i, (int32_t)A32 < (int32_t)I32IMM)
    BIN32(ltu32i, A32 < I32IMM)
    BIN32(gts32i, (int32_t)A32 > (int32_t)I32IMM)
    BIN32(gtu32i, A32 > I32IMM)
    BIN32(les32i, (int32_t)A32 <= (int32_t)I32IMM)
    BIN32(leu32i, A32 <= I32IMM)
    BIN32(ges32i, (int32_t)A32 >= (int32_t)I32IMM)
    BIN32(geu32i, A32 >= I32IMM)
    BIN(add64i, i64, A64 + I64IMM)
    BIN(sub64i, i64, A64 - I64IMM)
    BIN(and64i, i64, A64 & I64IMM)
    BIN(or64i, i64, A64 | I64IMM)
    BIN(xor64i, i64, A64 ^ I64IMM)
    BIN(shl64i, i64, A64 << (I64IMM & 63))
    BIN(shrs64i, i64, (uint64_t)((int64_t)A64 >> (I64IMM & 63)))
    BIN(shru64i, i64, A64 >> (I64IMM & 63))

    /* Fused compare-and-branch: [d|a] [b or imm] [rel]. */
#define BRC(name, cond)                                                                            \
    L_##name : if (cond) JUMP(pc[3]);                                                              \
    pc += 4;                                                                                       \
    NEXT();
L_br_eqz32:
    if (A32 == 0)
        JUMP(pc[2]);
    pc += 3;
    NEXT();
    BRC(br_eq32, A32 == B32)
    BRC(br_ne32, A32 != B32)
    BRC(br_lts32, (int32_t)A32 < (int32_t)B32)
    BRC(br_ltu32, A32 < B32)
    BRC(br_gts32, (int32_t)A32 > (int32_t)B32)
    BRC(br_gtu32, A32 > B32)
    BRC(br_les32, (int32_t)A32 <= (int32_t)B32)
    BRC(br_leu32, A32 <= B32)
    BRC(br_ges32, (int32_t)A32 >= (int32_t)B32)
    BRC(br_geu32, A32 >= B32)
    BRC(br_eq32i, A32 == I32IMM)
    BRC(br_ne32i, A32 != I32IMM)
    BRC(br_lts32i, (int32_t)A32 < (int32_t)I32IMM)
    BRC(br_ltu32i, A32 < I32IMM)
    BRC(br_gts32i, (int32_t)A32 > (int32_t)I32IMM)
    BRC(br_gtu32i, A32 > I32IMM)
    BRC(br_les32i, (int32_t)A32 <= (int32_t)I32IMM)
    BRC(br_leu32i, A32 <= I32IMM)
    BRC(br_ges32i, (int32_t)A32 >= (int32_t)I32IMM)
    BRC(br_geu32i, A32 >= I32IMM)

trapped:
    trap_message(x, trap, trap_text,
                 trap_callee ? trap_callee : depth > entry_depth ? frames[depth - 1].func : callee);
trapped_native: /* the native code wrote the message */
    x->depth = entry_depth;
    x->top = saved_top;
    return trap;
}

static const void *const *handler_table;
static eng_code_t exit_code_words[1];
static pthread_once_t handlers_once = PTHREAD_ONCE_INIT;

static void handlers_init(void)
{
    run(NULL, NULL, NULL, (const void *const **)&handler_table);
    exit_code_words[0] = (eng_code_t)(uintptr_t)handler_table[OP_exit];
    exit_stub = exit_code_words;
}

const void *const *eng_interp_handlers(void)
{
    pthread_once(&handlers_once, handlers_init);
    return handler_table;
}

eng_trap_t eng_call(eng_exec_t *x, eng_func_t *f, const eng_val_t *args, eng_val_t *results)
{
    eng_interp_handlers();
    uint32_t np = f->type->param_slots, nr = f->type->result_slots;
    uintptr_t sp = (uintptr_t)__builtin_frame_address(0);
    if (x->nest == 0) {
        __atomic_store_n(&x->interrupt, 0, __ATOMIC_RELAXED);
        x->top = x->stack;
        x->stack_limit = eng_stack_limit(x, sp);
    }
    if (sp < x->stack_limit) {
        /* Guest -> host -> eng_call -> guest ... recurses in C: bounded by
         * the same limit as native code. And native code may be entered
         * only above it (functions that call nothing do not check it
         * themselves, native_ir.c). f is the function that could not be
         * entered (as for the interpreter's own frames). */
        trap_message(x, ENG_TRAP_STACK_EXHAUSTED, NULL, f);
        return ENG_TRAP_STACK_EXHAUSTED;
    }
    x->trap = ENG_OK;
    x->msg[0] = '\0';
    eng_val_t *base = x->top;
    uint32_t need = np > nr ? np : nr;
    if ((size_t)(x->stack_end - base) < need) {
        trap_message(x, ENG_TRAP_STACK_EXHAUSTED, NULL, NULL);
        return ENG_TRAP_STACK_EXHAUSTED;
    }
    if (np)
        memcpy(base, args, np * sizeof *base);
    eng_trap_t t;
    x->nest++;
    if (f->host || f->native) {
        /* Nested eng_calls go above the arguments and results. */
        eng_val_t *saved = x->top;
        x->top = base + need;
        if (f->host) {
            eng_host_call_t hc = {x, NULL, f->env};
            t = f->host(&hc, base);
            if (t != ENG_OK)
                trap_message(x, t, NULL, NULL);
        } else {
            t = f->enter(x, f, base);
        }
        x->top = saved;
    } else {
        t = run(x, f, base, NULL);
    }
    x->nest--;
    if (t == ENG_OK && nr)
        memcpy(results, base, nr * sizeof *base);
    return t;
}
