/*
 * native_ir.c — translates one validated WebAssembly function body into
 * LLVM IR (the native tier; native_compile.c drives the whole module).
 *
 * The translation is the classic one for a structured stack machine. The
 * wasm operand stack exists only at compile time, as an array of LLVM
 * values; locals, and the values that flow along branches (a block's
 * results, a loop's params), live in allocas that LLVM's SROA turns back
 * into SSA registers and phis. That keeps this file free of phi
 * bookkeeping (a br_table may reach one label along several edges) at the
 * price of a little more IR for the optimiser to clean up.
 *
 * What the code checks at run time, as the interpreter does:
 *   - memory accesses: in guard mode (a module that defines its memory;
 *     internal.h, ENG_GUARD_RESERVE) accesses whose offset and size stay
 *     within the guard slack are not checked: one out of bounds faults,
 *     and native_rt.c turns the fault into the trap. Such accesses are
 *     volatile, so LLVM neither deletes a load whose value goes unused (it
 *     must still trap) nor reorders them (memory at a trap is what the
 *     interpreter leaves). Others (an imported memory, a huge offset)
 *     compare zext(address) + offset + size with the memory's current
 *     size, which the function keeps in a local and reloads after every
 *     call and memory.grow (the only things that change it);
 *   - function entries: the stack pointer against x->stack_limit, and the
 *     fuel counter (x->fuel), also at every loop header; when the fuel
 *     runs out eng_nat_poll runs the yield hook and checks the deadline;
 *   - division, conversions, call_indirect: the spec's traps.
 * Every trap is a branch to a block that calls eng_nat_trap, which never
 * returns; LLVM treats such blocks as cold.
 *
 * Code after an unconditional branch is skipped up to the end of its
 * block (only block structure is tracked there), so the translator never
 * has to invent values for wasm's polymorphic stack.
 *
 * native_ir.h holds the translation's state (fx_t) and the helpers every
 * instruction uses; native_ir_flow.c translates blocks and branches,
 * native_loop.c counted loops, native_ir_simd.c the 0xFD prefix.
 */
#include "engine/native_ir.h"
#include "engine/native_loop.h"

#include <setjmp.h>
#include <stddef.h>
#include <stdlib.h>

/* ---- Loads and stores ---- */

/* A load of n bytes as type `as` (an integer of n bytes or a float), then
 * extended to `to` (signed or not) when it is a narrower integer. */
static void op_load(fx_t *f, LLVMTypeRef as, unsigned n, LLVMTypeRef to, bool sign)
{
    uint32_t off = read_memarg(f);
    bool unchecked = nl_unchecked(f); /* a counted loop's, proven inside the memory */
    LLVMValueRef p = unchecked ? nl_addr(f, off) : mem_addr(f, pop(f), off, n);
    LLVMValueRef v = LLVMBuildLoad2(f->b, as, p, "");
    LLVMSetAlignment(v, 1);
    tag(f, v, f->nc->tbaa_mem);
    /* In guard mode an out-of-bounds load traps by faulting, so it must
     * happen even when its value goes unused, which LLVM would otherwise
     * delete: such loads are volatile. (Measured: about as fast as plain
     * loads here, where keeping them alive with an inline-asm use cost up
     * to a third more instructions: it stops loads folding into
     * arithmetic.) */
    if (!unchecked && f->nc->guard && (uint64_t)off + n <= ENG_GUARD_SLACK)
        guard_access(f, v);
    if (as != to)
        v = sign ? LLVMBuildSExt(f->b, v, to, "") : LLVMBuildZExt(f->b, v, to, "");
    push(f, v);
}

static void op_store(fx_t *f, LLVMTypeRef as, unsigned n)
{
    uint32_t off = read_memarg(f);
    LLVMValueRef v = pop(f);
    bool unchecked = nl_unchecked(f);
    LLVMValueRef p = unchecked ? nl_addr(f, off) : mem_addr(f, pop(f), off, n);
    if (LLVMTypeOf(v) != as)
        v = LLVMBuildTrunc(f->b, v, as, "");
    LLVMValueRef s = LLVMBuildStore(f->b, v, p);
    LLVMSetAlignment(s, 1);
    tag(f, s, f->nc->tbaa_mem);
    /* Guard mode: loads that may fault are volatile (op_load), and LLVM
     * keeps volatile accesses in order only among themselves; volatile
     * stores keep a store before a faulting load done and one after it
     * undone, as the interpreter leaves memory at a trap. */
    if (!unchecked && f->nc->guard && (uint64_t)off + n <= ENG_GUARD_SLACK)
        guard_access(f, s);
}

/* ---- Calls ---- */

/* The scratch array for slow calls, at least n slots. Its size is fixed
 * when the function is done (finish_io). */
static LLVMValueRef io_slots(fx_t *f, uint32_t n)
{
    if (!f->io)
        f->io = LLVMBuildArrayAlloca(f->nc->ab, f->nc->t_i64, c32(f, 1), "");
    if (n > f->io_slots)
        f->io_slots = n;
    return f->io;
}

static LLVMValueRef io_at(fx_t *f, uint32_t i) { return byte_ptr(f, f->io, (uint64_t)i * 8); }

/* Calls callee (an eng_func_t pointer) through eng_nat_call with args;
 * returns the results loaded into res[]. */
static void slow_call(fx_t *f, LLVMValueRef callee, const eng_functype_t *t, LLVMValueRef *args,
                      LLVMValueRef *res)
{
    /* The io array is in slots: a v128 takes two (engine.h). */
    uint32_t n = t->param_slots > t->result_slots ? t->param_slots : t->result_slots;
    io_slots(f, n);
    for (uint32_t i = 0, slot = 0; i < t->nparams; slot += eng_type_slots(eng_ft_param(t, i)), i++)
        LLVMSetAlignment(LLVMBuildStore(f->b, args[i], io_at(f, slot)), 8); /* slots are 8-aligned */
    LLVMValueRef a[5] = {f->inst, f->x, callee, f->io, c32(f, f->func)};
    fuel_to_memory(f);
    call_helper(f, NC_eng_nat_call, a, 5);
    fuel_from_memory(f);
    for (uint32_t i = 0, slot = 0; i < t->nresults; slot += eng_type_slots(eng_ft_result(t, i)), i++)
    {
        res[i] = LLVMBuildLoad2(f->b, nc_valtype(f->nc, eng_ft_result(t, i)), io_at(f, slot), "");
        LLVMSetAlignment(res[i], 8);
    }
}

static void op_call(fx_t *f, uint32_t fi)
{
    const eng_module_t *m = f->m;
    if (fi >= m->nfuncs)
        fail(f, "unknown function");
    const eng_functype_t *t = &m->types[m->func_type[fi]];
    LLVMValueRef *args = fx_alloc(f, (t->nparams + 3) * sizeof *args);
    args[0] = f->inst;
    args[1] = f->x;
    memcpy(args + 3, top_n(f, t->nparams), t->nparams * sizeof *args);
    f->sp -= t->nparams;
    if (fi >= m->nfunc_imports) {
        LLVMTypeRef fty = f->nc->fn_types[m->func_type[fi]];
        args[2] = fuel_now(f);
        /* A function compiled in another part of the module (another
         * object, native_compile.c) is called through its function object,
         * whose code pointer never changes. */
        LLVMValueRef target = f->nc->funcs[fi - m->nfunc_imports];
        if (fi == f->func && *f->twin)
            target = *f->twin;
        if (!target) {
            LLVMValueRef fo = inst_elem(f, offsetof(eng_instance_t, funcs), fi);
            target = vm_load(f, f->nc->t_ptr, fo, offsetof(eng_func_t, native), true);
        }
        LLVMValueRef r = LLVMBuildCall2(f->b, fty, target, args, t->nparams + 3, "");
        /* Wasm has no tail calls: recursion must use stack (and run into
         * its limit), so LLVM may not turn it into a loop. */
        LLVMSetTailCallKind(r, LLVMTailCallKindNoTail);
        nblock_t *in = &f->blocks[f->nblocks - 1];
        if (fi == f->func && in->kind == B_LOOP)
            in->self_called = true;
        reload_mem_size(f);
        take_results(f, r, t, NULL);
    } else {
        LLVMValueRef callee = inst_elem(f, offsetof(eng_instance_t, funcs), fi);
        LLVMValueRef *res = fx_alloc(f, (t->nresults + 1) * sizeof *res);
        slow_call(f, callee, t, args + 3, res);
        reload_mem_size(f);
        for (uint32_t i = 0; i < t->nresults; i++)
            push(f, res[i]);
    }
}

/* Table `table`'s object, which never changes for an instance: loaded in
 * the entry block, so a call_indirect in a loop costs no loads to find it
 * (LLVM cannot hoist them itself: a loop's fuel check calls a helper that
 * may not return). */
static LLVMValueRef table_obj(fx_t *f, uint32_t table)
{
    if (f->tab_obj && f->tab_index == table)
        return f->tab_obj;
    LLVMBuilderRef here = f->b;
    f->b = f->nc->ab; /* the entry block's end */
    f->tab_obj = inst_elem(f, offsetof(eng_instance_t, tables), table);
    f->b = here;
    f->tab_index = table;
    return f->tab_obj;
}

static void op_call_indirect(fx_t *f, uint32_t ti, uint32_t table)
{
    nc_module_t *nc = f->nc;
    const eng_module_t *m = f->m;
    if (ti >= m->ntypes || table >= m->ntables)
        fail(f, "unknown type or table");
    const eng_functype_t *t = &m->types[ti];
    LLVMValueRef idx = pop(f);
    LLVMValueRef *args = fx_alloc(f, (t->nparams + 3) * sizeof *args);
    memcpy(args + 3, top_n(f, t->nparams), t->nparams * sizeof *args);
    f->sp -= t->nparams;

    LLVMValueRef tb = table_obj(f, table);
    LLVMValueRef size = vm_load(f, nc->t_i32, tb, offsetof(eng_table_t, size), false);
    trap_if(f, LLVMBuildICmp(f->b, LLVMIntUGE, idx, size, ""),
            ENG_TRAP_TABLE_OOB | ENG_NAT_TRAP_UNDEFINED_ELEMENT);
    LLVMValueRef elems = vm_load(f, nc->t_ptr, tb, offsetof(eng_table_t, elems), false);
    LLVMValueRef i64 = LLVMBuildZExt(f->b, idx, nc->t_i64, "");
    LLVMValueRef slot = LLVMBuildInBoundsGEP2(f->b, nc->t_ptr, elems, &i64, 1, "");
    LLVMValueRef callee = LLVMBuildLoad2(f->b, nc->t_ptr, slot, "");
    tag(f, callee, nc->tbaa_vm);
    trap_if(f, LLVMBuildIsNull(f->b, callee, ""), ENG_TRAP_NULL_REF);

    if (t->key) {
        /* The type as a number (eng_functype_key): one load and a compare
         * with an immediate, equal exactly when the types are. */
        LLVMValueRef have = vm_load(f, nc->t_i64, callee, offsetof(eng_func_t, type_key), true);
        trap_if(f, LLVMBuildICmp(f->b, LLVMIntNE, have, c64(f, t->key), ""),
                ENG_TRAP_INDIRECT_TYPE);
    } else {
        /* A type too large for a key: the same functype object is the
         * fast path (a function of this module or another instance of
         * it); anything else is compared by structure. */
        LLVMValueRef have = vm_load(f, nc->t_ptr, callee, offsetof(eng_func_t, type), true);
        LLVMValueRef mod = vm_load(f, nc->t_ptr, f->inst, offsetof(eng_instance_t, module), true);
        LLVMValueRef types = vm_load(f, nc->t_ptr, mod, offsetof(eng_module_t, types), true);
        LLVMValueRef want = byte_ptr(f, types, (uint64_t)ti * sizeof(eng_functype_t));
        LLVMBasicBlockRef slow_type = new_bb(f), type_ok = new_bb(f);
        LLVMValueRef same = LLVMBuildICmp(f->b, LLVMIntEQ, have, want, "");
        LLVMBuildCondBr(f->b, same, type_ok, slow_type);
        LLVMPositionBuilderAtEnd(f->b, slow_type);
        LLVMValueRef sa[2] = {have, want};
        LLVMValueRef eq = call_helper(f, NC_eng_nat_sig_equal, sa, 2);
        trap_if(f, LLVMBuildICmp(f->b, LLVMIntEQ, eq, c32(f, 0), ""), ENG_TRAP_INDIRECT_TYPE);
        LLVMBuildBr(f->b, type_ok);
        LLVMPositionBuilderAtEnd(f->b, type_ok);
    }

    /* Native code calls it directly; host and interpreted functions go
     * through eng_nat_call. */
    LLVMValueRef code = vm_load(f, nc->t_ptr, callee, offsetof(eng_func_t, native), true);
    LLVMBasicBlockRef fast = new_bb(f), slow = new_bb(f), join = new_bb(f);
    LLVMBuildCondBr(f->b, LLVMBuildIsNull(f->b, code, ""), slow, fast);

    LLVMPositionBuilderAtEnd(f->b, fast);
    args[0] = vm_load(f, nc->t_ptr, callee, offsetof(eng_func_t, inst), true);
    args[1] = f->x;
    args[2] = fuel_now(f);
    LLVMValueRef r = LLVMBuildCall2(f->b, nc->fn_types[ti], code, args, t->nparams + 3, "");
    LLVMSetTailCallKind(r, LLVMTailCallKindNoTail);
    LLVMValueRef *fres = fx_alloc(f, (t->nresults + 1) * sizeof *fres);
    take_results(f, r, t, fres);
    LLVMBasicBlockRef fast_end = LLVMGetInsertBlock(f->b);
    LLVMBuildBr(f->b, join);

    LLVMPositionBuilderAtEnd(f->b, slow);
    LLVMValueRef *sres = fx_alloc(f, (t->nresults + 1) * sizeof *sres);
    slow_call(f, callee, t, args + 3, sres);
    LLVMBasicBlockRef slow_end = LLVMGetInsertBlock(f->b);
    LLVMBuildBr(f->b, join);

    LLVMPositionBuilderAtEnd(f->b, join);
    for (uint32_t i = 0; i < t->nresults; i++) {
        LLVMValueRef phi = LLVMBuildPhi(f->b, nc_valtype(nc, eng_ft_result(t, i)), "");
        LLVMValueRef vals[2] = {fres[i], sres[i]};
        LLVMBasicBlockRef from[2] = {fast_end, slow_end};
        LLVMAddIncoming(phi, vals, from, 2);
        push(f, phi);
    }
    reload_mem_size(f);
}

/* ---- Numeric instructions ---- */


static void icmp(fx_t *f, LLVMIntPredicate p)
{
    LLVMValueRef b = pop(f), a = pop(f);
    push(f, bool32(f, LLVMBuildICmp(f->b, p, a, b, "")));
}

static void fcmp(fx_t *f, LLVMRealPredicate p)
{
    LLVMValueRef b = pop(f), a = pop(f);
    push(f, bool32(f, LLVMBuildFCmp(f->b, p, a, b, "")));
}

/* clz/ctz: defined for zero (is_zero_poison = false). */
static void count_bits(fx_t *f, const char *name)
{
    LLVMValueRef a = pop(f);
    LLVMTypeRef ty, ovl = LLVMTypeOf(a);
    LLVMValueRef fn = nc_intrinsic(f->nc, name, &ovl, 1, &ty);
    LLVMValueRef args[2] = {a, LLVMConstInt(f->nc->t_i1, 0, 0)};
    push(f, LLVMBuildCall2(f->b, ty, fn, args, 2, ""));
}

static void rotate(fx_t *f, const char *name)
{
    LLVMValueRef b = pop(f), a = pop(f);
    LLVMTypeRef ty, ovl = LLVMTypeOf(a);
    LLVMValueRef fn = nc_intrinsic(f->nc, name, &ovl, 1, &ty);
    LLVMValueRef args[3] = {a, a, b};
    push(f, LLVMBuildCall2(f->b, ty, fn, args, 3, ""));
}

static void shift(fx_t *f, LLVMOpcode op)
{
    LLVMValueRef b = pop(f), a = pop(f);
    unsigned bits = LLVMGetIntTypeWidth(LLVMTypeOf(a));
    b = LLVMBuildAnd(f->b, b, LLVMConstInt(LLVMTypeOf(a), bits - 1, 0), "");
    push(f, LLVMBuildBinOp(f->b, op, a, b, ""));
}

static void divide(fx_t *f, LLVMOpcode op)
{
    LLVMValueRef b = pop(f), a = pop(f);
    LLVMTypeRef ty = LLVMTypeOf(a);
    unsigned bits = LLVMGetIntTypeWidth(ty);
    LLVMValueRef zero = LLVMConstInt(ty, 0, 0), minus1 = LLVMConstAllOnes(ty);
    trap_if(f, LLVMBuildICmp(f->b, LLVMIntEQ, b, zero, ""), ENG_TRAP_DIV_ZERO);
    if (op == LLVMSDiv) {
        LLVMValueRef min = LLVMConstInt(ty, 1ull << (bits - 1), 0);
        LLVMValueRef ov = LLVMBuildAnd(f->b, LLVMBuildICmp(f->b, LLVMIntEQ, a, min, ""),
                                       LLVMBuildICmp(f->b, LLVMIntEQ, b, minus1, ""), "");
        trap_if(f, ov, ENG_TRAP_INT_OVERFLOW);
    } else if (op == LLVMSRem) {
        /* INT_MIN % -1 is 0 in wasm but faults on x86; x % 1 is 0 too. */
        LLVMValueRef is_m1 = LLVMBuildICmp(f->b, LLVMIntEQ, b, minus1, "");
        b = LLVMBuildSelect(f->b, is_m1, LLVMConstInt(ty, 1, 0), b, "");
    }
    push(f, LLVMBuildBinOp(f->b, op, a, b, ""));
}

static void binop(fx_t *f, LLVMOpcode op)
{
    LLVMValueRef b = pop(f), a = pop(f);
    push(f, LLVMBuildBinOp(f->b, op, a, b, ""));
}

/* Wasm wants arithmetic on a signalling NaN to give a quiet one. The CPU
 * does that, but LLVM folds x - 0, x * 1, x / -1 (and the like) to x or
 * -x, which passes a signalling NaN through. When an operand is such a
 * constant, a NaN result is quieted by adding it to itself (x86 cannot
 * select llvm.canonicalize); the cost is paid only in these rare cases. */
static bool is_identity_const(LLVMValueRef v)
{
    if (!LLVMIsAConstantFP(v))
        return false;
    LLVMBool lossy;
    double d = LLVMConstRealGetDouble(v, &lossy);
    return d == 0.0 || d == 1.0 || d == -1.0;
}

static LLVMValueRef quieted(fx_t *f, LLVMValueRef r)
{
    LLVMValueRef nan = LLVMBuildFCmp(f->b, LLVMRealUNO, r, r, "");
    return LLVMBuildSelect(f->b, nan, LLVMBuildFAdd(f->b, r, r, ""), r, "");
}

static void float_binop(fx_t *f, LLVMOpcode op)
{
    LLVMValueRef b = pop(f), a = pop(f);
    LLVMValueRef r = LLVMBuildBinOp(f->b, op, a, b, "");
    if (is_identity_const(a) || is_identity_const(b))
        r = quieted(f, r);
    push(f, r);
}

/* min and max: llvm.minimum/maximum have wasm's rules for zeros and NaNs,
 * but x86's expansion returns a NaN operand as it is; a + b quiets it. */
static void min_max(fx_t *f, const char *name)
{
    LLVMValueRef b = pop(f), a = pop(f);
    LLVMValueRef r = intrinsic2(f, name, a, b);
    LLVMValueRef nan = LLVMBuildFCmp(f->b, LLVMRealUNO, a, b, "");
    push(f, LLVMBuildSelect(f->b, nan, LLVMBuildFAdd(f->b, a, b, ""), r, ""));
}

static LLVMValueRef fconst(fx_t *f, LLVMTypeRef ty, double v) { (void)f; return LLVMConstReal(ty, v); }

/* Trapping float-to-int conversion: NaN is invalid, and the value must lie
 * strictly between lo and hi (the interpreter's bounds). */
static void trunc_trap(fx_t *f, LLVMTypeRef to, bool sign, double lo, double hi)
{
    LLVMValueRef v = pop(f);
    LLVMTypeRef ft = LLVMTypeOf(v);
    trap_if(f, LLVMBuildFCmp(f->b, LLVMRealUNO, v, v, ""), ENG_TRAP_INVALID_CONV);
    LLVMValueRef in = LLVMBuildAnd(f->b, LLVMBuildFCmp(f->b, LLVMRealOGT, v, fconst(f, ft, lo), ""),
                                   LLVMBuildFCmp(f->b, LLVMRealOLT, v, fconst(f, ft, hi), ""), "");
    trap_if(f, LLVMBuildNot(f->b, in, ""), ENG_TRAP_INT_OVERFLOW);
    push(f, sign ? LLVMBuildFPToSI(f->b, v, to, "") : LLVMBuildFPToUI(f->b, v, to, ""));
}

static void trunc_sat(fx_t *f, LLVMTypeRef to, bool sign)
{
    LLVMValueRef v = pop(f);
    LLVMTypeRef types[2] = {to, LLVMTypeOf(v)}, ty;
    LLVMValueRef fn = nc_intrinsic(f->nc, sign ? "llvm.fptosi.sat" : "llvm.fptoui.sat", types, 2, &ty);
    push(f, LLVMBuildCall2(f->b, ty, fn, &v, 1, ""));
}

static void sext_from(fx_t *f, LLVMTypeRef narrow)
{
    LLVMValueRef a = pop(f);
    push(f, LLVMBuildSExt(f->b, LLVMBuildTrunc(f->b, a, narrow, ""), LLVMTypeOf(a), ""));
}

static void numeric(fx_t *f, uint8_t opc)
{
    nc_module_t *nc = f->nc;
    LLVMBuilderRef b = f->b;
    LLVMTypeRef i32 = nc->t_i32, i64 = nc->t_i64, f32 = nc->t_f32, f64 = nc->t_f64;
    switch (opc) {
    case 0x45: case 0x50: { /* eqz */
        LLVMValueRef a = pop(f);
        push(f, bool32(f, LLVMBuildICmp(b, LLVMIntEQ, a, LLVMConstInt(LLVMTypeOf(a), 0, 0), "")));
        return;
    }
    case 0x46: case 0x51: icmp(f, LLVMIntEQ); return;
    case 0x47: case 0x52: icmp(f, LLVMIntNE); return;
    case 0x48: case 0x53: icmp(f, LLVMIntSLT); return;
    case 0x49: case 0x54: icmp(f, LLVMIntULT); return;
    case 0x4A: case 0x55: icmp(f, LLVMIntSGT); return;
    case 0x4B: case 0x56: icmp(f, LLVMIntUGT); return;
    case 0x4C: case 0x57: icmp(f, LLVMIntSLE); return;
    case 0x4D: case 0x58: icmp(f, LLVMIntULE); return;
    case 0x4E: case 0x59: icmp(f, LLVMIntSGE); return;
    case 0x4F: case 0x5A: icmp(f, LLVMIntUGE); return;
    case 0x5B: case 0x61: fcmp(f, LLVMRealOEQ); return;
    case 0x5C: case 0x62: fcmp(f, LLVMRealUNE); return;
    case 0x5D: case 0x63: fcmp(f, LLVMRealOLT); return;
    case 0x5E: case 0x64: fcmp(f, LLVMRealOGT); return;
    case 0x5F: case 0x65: fcmp(f, LLVMRealOLE); return;
    case 0x60: case 0x66: fcmp(f, LLVMRealOGE); return;
    case 0x67: case 0x79: count_bits(f, "llvm.ctlz"); return;
    case 0x68: case 0x7A: count_bits(f, "llvm.cttz"); return;
    case 0x69: case 0x7B: push(f, intrinsic1(f, "llvm.ctpop", pop(f))); return;
    case 0x6A: case 0x7C: binop(f, LLVMAdd); return;
    case 0x6B: case 0x7D: binop(f, LLVMSub); return;
    case 0x6C: case 0x7E: binop(f, LLVMMul); return;
    case 0x6D: case 0x7F: divide(f, LLVMSDiv); return;
    case 0x6E: case 0x80: divide(f, LLVMUDiv); return;
    case 0x6F: case 0x81: divide(f, LLVMSRem); return;
    case 0x70: case 0x82: divide(f, LLVMURem); return;
    case 0x71: case 0x83: binop(f, LLVMAnd); return;
    case 0x72: case 0x84: binop(f, LLVMOr); return;
    case 0x73: case 0x85: binop(f, LLVMXor); return;
    case 0x74: case 0x86: shift(f, LLVMShl); return;
    case 0x75: case 0x87: shift(f, LLVMAShr); return;
    case 0x76: case 0x88: shift(f, LLVMLShr); return;
    case 0x77: case 0x89: rotate(f, "llvm.fshl"); return;
    case 0x78: case 0x8A: rotate(f, "llvm.fshr"); return;
    case 0x8B: case 0x99: push(f, intrinsic1(f, "llvm.fabs", pop(f))); return;
    case 0x8C: case 0x9A: push(f, LLVMBuildFNeg(b, pop(f), "")); return;
    case 0x8D: case 0x9B: push(f, intrinsic1(f, "llvm.ceil", pop(f))); return;
    case 0x8E: case 0x9C: push(f, intrinsic1(f, "llvm.floor", pop(f))); return;
    case 0x8F: case 0x9D: push(f, intrinsic1(f, "llvm.trunc", pop(f))); return;
    case 0x90: case 0x9E: push(f, intrinsic1(f, "llvm.roundeven", pop(f))); return;
    case 0x91: case 0x9F: push(f, intrinsic1(f, "llvm.sqrt", pop(f))); return;
    case 0x92: case 0xA0: float_binop(f, LLVMFAdd); return;
    case 0x93: case 0xA1: float_binop(f, LLVMFSub); return;
    case 0x94: case 0xA2: float_binop(f, LLVMFMul); return;
    case 0x95: case 0xA3: float_binop(f, LLVMFDiv); return;
    case 0x96: case 0xA4: min_max(f, "llvm.minimum"); return;
    case 0x97: case 0xA5: min_max(f, "llvm.maximum"); return;
    case 0x98: case 0xA6: {
        LLVMValueRef y = pop(f), a = pop(f);
        push(f, intrinsic2(f, "llvm.copysign", a, y));
        return;
    }
    case 0xA7: push(f, LLVMBuildTrunc(b, pop(f), i32, "")); return;
    case 0xA8: trunc_trap(f, i32, true, -2147483904.0, 2147483648.0); return;
    case 0xA9: trunc_trap(f, i32, false, -1.0, 4294967296.0); return;
    case 0xAA: trunc_trap(f, i32, true, -2147483649.0, 2147483648.0); return;
    case 0xAB: trunc_trap(f, i32, false, -1.0, 4294967296.0); return;
    case 0xAC: push(f, LLVMBuildSExt(b, pop(f), i64, "")); return;
    case 0xAD: push(f, LLVMBuildZExt(b, pop(f), i64, "")); return;
    case 0xAE: trunc_trap(f, i64, true, -9223373136366403584.0, 9223372036854775808.0); return;
    case 0xAF: trunc_trap(f, i64, false, -1.0, 18446744073709551616.0); return;
    case 0xB0: trunc_trap(f, i64, true, -9223372036854777856.0, 9223372036854775808.0); return;
    case 0xB1: trunc_trap(f, i64, false, -1.0, 18446744073709551616.0); return;
    case 0xB2: case 0xB4: push(f, LLVMBuildSIToFP(b, pop(f), f32, "")); return;
    case 0xB3: case 0xB5: push(f, LLVMBuildUIToFP(b, pop(f), f32, "")); return;
    case 0xB6: { /* demote: LLVM folds demote(promote(x)) to x (see quieted) */
        LLVMValueRef a = pop(f);
        LLVMValueRef r = LLVMBuildFPTrunc(b, a, f32, "");
        push(f, LLVMIsAFPExtInst(a) ? quieted(f, r) : r);
        return;
    }
    case 0xB7: case 0xB9: push(f, LLVMBuildSIToFP(b, pop(f), f64, "")); return;
    case 0xB8: case 0xBA: push(f, LLVMBuildUIToFP(b, pop(f), f64, "")); return;
    case 0xBB: push(f, LLVMBuildFPExt(b, pop(f), f64, "")); return;
    case 0xBC: push(f, LLVMBuildBitCast(b, pop(f), i32, "")); return;
    case 0xBD: push(f, LLVMBuildBitCast(b, pop(f), i64, "")); return;
    case 0xBE: push(f, LLVMBuildBitCast(b, pop(f), f32, "")); return;
    case 0xBF: push(f, LLVMBuildBitCast(b, pop(f), f64, "")); return;
    case 0xC0: case 0xC2: sext_from(f, nc->t_i8); return;
    case 0xC1: case 0xC3: sext_from(f, nc->t_i16); return;
    case 0xC4: sext_from(f, i32); return;
    }
    fail(f, "unknown opcode");
}

/* ---- 0xFC: saturating conversions, bulk memory, tables ---- */

static void op_prefixed(fx_t *f)
{
    nc_module_t *nc = f->nc;
    uint32_t sub = rd_u32(&f->r);
    check_reader(f);
    switch (sub) {
    case 0: trunc_sat(f, nc->t_i32, true); return;
    case 1: trunc_sat(f, nc->t_i32, false); return;
    case 2: trunc_sat(f, nc->t_i32, true); return;
    case 3: trunc_sat(f, nc->t_i32, false); return;
    case 4: trunc_sat(f, nc->t_i64, true); return;
    case 5: trunc_sat(f, nc->t_i64, false); return;
    case 6: trunc_sat(f, nc->t_i64, true); return;
    case 7: trunc_sat(f, nc->t_i64, false); return;
    case 8: { /* memory.init seg */
        uint32_t seg = rd_u32(&f->r);
        rd_u8(&f->r);
        check_reader(f);
        LLVMValueRef n = pop(f), s = pop(f), d = pop(f);
        LLVMValueRef a[7] = {f->inst, f->x, c32(f, f->func), c32(f, seg), d, s, n};
        call_helper(f, NC_eng_nat_mem_init, a, 7);
        return;
    }
    case 9: { /* data.drop */
        uint32_t seg = rd_u32(&f->r);
        check_reader(f);
        LLVMValueRef a[2] = {f->inst, c32(f, seg)};
        call_helper(f, NC_eng_nat_data_drop, a, 2);
        return;
    }
    case 10: /* memory.copy */
    case 11: { /* memory.fill */
        rd_u8(&f->r);
        if (sub == 10)
            rd_u8(&f->r);
        check_reader(f);
        LLVMValueRef n = pop(f), s = pop(f), d = pop(f);
        LLVMValueRef a[6] = {f->inst, f->x, c32(f, f->func), d, s, n};
        call_helper(f, sub == 10 ? NC_eng_nat_mem_copy : NC_eng_nat_mem_fill, a, 6);
        return;
    }
    case 12: { /* table.init seg table */
        uint32_t seg = rd_u32(&f->r), t = rd_u32(&f->r);
        check_reader(f);
        LLVMValueRef n = pop(f), s = pop(f), d = pop(f);
        LLVMValueRef a[8] = {f->inst, f->x, c32(f, f->func), c32(f, t), c32(f, seg), d, s, n};
        call_helper(f, NC_eng_nat_table_init, a, 8);
        return;
    }
    case 13: { /* elem.drop */
        uint32_t seg = rd_u32(&f->r);
        check_reader(f);
        LLVMValueRef a[2] = {f->inst, c32(f, seg)};
        call_helper(f, NC_eng_nat_elem_drop, a, 2);
        return;
    }
    case 14: { /* table.copy dst src */
        uint32_t td = rd_u32(&f->r), ts = rd_u32(&f->r);
        check_reader(f);
        LLVMValueRef n = pop(f), s = pop(f), d = pop(f);
        LLVMValueRef a[8] = {f->inst, f->x, c32(f, f->func), c32(f, td), c32(f, ts), d, s, n};
        call_helper(f, NC_eng_nat_table_copy, a, 8);
        return;
    }
    case 15: { /* table.grow */
        uint32_t t = rd_u32(&f->r);
        check_reader(f);
        LLVMValueRef n = pop(f), init = pop(f);
        LLVMValueRef a[4] = {f->inst, c32(f, t), init, n};
        push(f, call_helper(f, NC_eng_nat_table_grow, a, 4));
        return;
    }
    case 16: { /* table.size */
        uint32_t t = rd_u32(&f->r);
        check_reader(f);
        if (t >= f->m->ntables)
            fail(f, "unknown table");
        LLVMValueRef tb = inst_elem(f, offsetof(eng_instance_t, tables), t);
        push(f, vm_load(f, nc->t_i32, tb, offsetof(eng_table_t, size), false));
        return;
    }
    case 17: { /* table.fill */
        uint32_t t = rd_u32(&f->r);
        check_reader(f);
        LLVMValueRef n = pop(f), v = pop(f), i = pop(f);
        LLVMValueRef a[7] = {f->inst, f->x, c32(f, f->func), c32(f, t), i, v, n};
        call_helper(f, NC_eng_nat_table_fill, a, 7);
        return;
    }
    }
    fail(f, "unknown 0xfc opcode");
}


/* ---- Skipping unreachable code ---- */

static void skip_memarg(fx_t *f)
{
    rd_u32(&f->r);
    rd_u32(&f->r);
}

/* Reads past the immediates of an instruction in skipped code. */
static void skip_immediates(fx_t *f, uint8_t opc)
{
    eng_reader_t *r = &f->r;
    switch (opc) {
    case 0x0C: case 0x0D: case 0x10: case 0x20: case 0x21: case 0x22: case 0x23: case 0x24:
    case 0x25: case 0x26: case 0xD2:
        rd_u32(r);
        break;
    case 0x0E: {
        uint32_t n = rd_u32(r);
        for (uint64_t i = 0; i <= n && rd_ok(r); i++)
            rd_u32(r);
        break;
    }
    case 0x11:
        rd_u32(r);
        rd_u32(r);
        break;
    case 0x1C: {
        uint32_t n = rd_u32(r);
        rd_bytes(r, n);
        break;
    }
    case 0x3F: case 0x40: case 0xD0:
        rd_u8(r);
        break;
    case 0x41: rd_s32(r); break;
    case 0x42: rd_s64(r); break;
    case 0x43: rd_fixed32(r); break;
    case 0x44: rd_fixed64(r); break;
    case 0xFD: {
        uint32_t sub = rd_u32(r);
        if (sub <= 0x0B || sub == 0x5C || sub == 0x5D) {
            skip_memarg(f);
        } else if (sub >= 0x54 && sub <= 0x5B) {
            skip_memarg(f);
            rd_u8(r);
        } else if (sub == 0x0C || sub == 0x0D) {
            rd_bytes(r, 16);
        } else if (sub >= 0x15 && sub <= 0x22) {
            rd_u8(r);
        }
        break;
    }
    case 0xFC: {
        uint32_t sub = rd_u32(r);
        switch (sub) {
        case 8: rd_u32(r); rd_u8(r); break;
        case 9: case 13: case 15: case 16: case 17: rd_u32(r); break;
        case 10: rd_u8(r); rd_u8(r); break;
        case 11: rd_u8(r); break;
        case 12: case 14: rd_u32(r); rd_u32(r); break;
        default: break;
        }
        break;
    }
    default:
        if (opc >= 0x28 && opc <= 0x3E)
            skip_memarg(f);
        break;
    }
    check_reader(f);
}

/* Whether the body has a call or call_indirect, and whether it calls
 * itself directly (a pre-scan: the reader is put back). */
static bool body_calls(fx_t *f, bool *self)
{
    eng_reader_t saved = f->r;
    bool calls = false;
    *self = false;
    while (!rd_eof(&f->r)) {
        uint8_t opc = rd_u8(&f->r);
        if (opc == 0x10) {
            calls = true;
            *self |= rd_u32(&f->r) == f->func;
        } else if (opc == 0x11) {
            calls = true;
            skip_immediates(f, opc);
        } else if (opc >= 0x02 && opc <= 0x04) {
            rd_s33(&f->r); /* the block type */
        } else {
            skip_immediates(f, opc);
        }
    }
    check_reader(f);
    f->r = saved;
    return calls;
}

/* ---- The body ---- */

static void body(fx_t *f)
{
    nc_module_t *nc = f->nc;
    const eng_module_t *m = f->m;
    eng_reader_t *r = &f->r;
    for (;;) {
        if (rd_eof(r))
            fail(f, "unexpected end of function body");
        uint8_t opc = rd_u8(r);
        if (f->unreachable) {
            switch (opc) {
            case 0x02: nc_block(f, B_BLOCK); break;
            case 0x03: nc_block(f, B_LOOP); break;
            case 0x04: nc_block(f, B_IF); break;
            case 0x05: nc_else(f); break;
            case 0x0B:
                if (nc_end(f))
                    return;
                break;
            default: skip_immediates(f, opc); break;
            }
            continue;
        }
        switch (opc) {
        case 0x00: /* unreachable */
            LLVMBuildBr(f->b, trap_bb(f, ENG_TRAP_UNREACHABLE));
            f->unreachable = true;
            break;
        case 0x01: break;
        case 0x02: nc_block(f, B_BLOCK); break;
        case 0x03: nc_block(f, B_LOOP); break;
        case 0x04: nc_block(f, B_IF); break;
        case 0x05: nc_else(f); break;
        case 0x0B:
            if (nc_end(f))
                return;
            break;
        case 0x0C: {
            uint32_t l = rd_u32(r);
            check_reader(f);
            nc_br(f, l);
            break;
        }
        case 0x0D: {
            uint32_t l = rd_u32(r);
            check_reader(f);
            nc_br_if(f, l);
            break;
        }
        case 0x0E: nc_br_table(f); break;
        case 0x0F: nc_br(f, f->nblocks - 1); break;
        case 0x10: {
            uint32_t fi = rd_u32(r);
            check_reader(f);
            op_call(f, fi);
            break;
        }
        case 0x11: {
            uint32_t ti = rd_u32(r), t = rd_u32(r);
            check_reader(f);
            op_call_indirect(f, ti, t);
            break;
        }
        case 0x1A: pop(f); break;
        case 0x1B:
        case 0x1C: {
            if (opc == 0x1C) {
                uint32_t n = rd_u32(r);
                rd_bytes(r, n);
                check_reader(f);
            }
            LLVMValueRef c = pop(f), y = pop(f), a = pop(f);
            push(f, LLVMBuildSelect(f->b, LLVMBuildICmp(f->b, LLVMIntNE, c, c32(f, 0), ""), a, y, ""));
            break;
        }
        case 0x20: case 0x21: case 0x22: { /* local.get/set/tee */
            uint32_t i = rd_u32(r);
            check_reader(f);
            if (i >= f->nlocals)
                fail(f, "unknown local");
            if (opc == 0x20) {
                push(f, LLVMBuildLoad2(f->b, nc_valtype(nc, f->ltypes[i]), f->locals[i], ""));
            } else {
                LLVMValueRef v = opc == 0x21 ? pop(f) : top_n(f, 1)[0];
                LLVMBuildStore(f->b, v, f->locals[i]);
            }
            break;
        }
        case 0x23: case 0x24: { /* global.get/set */
            uint32_t g = rd_u32(r);
            check_reader(f);
            if (g >= m->nglobals)
                fail(f, "unknown global");
            LLVMValueRef gp = inst_elem(f, offsetof(eng_instance_t, globals), g);
            LLVMValueRef vp = byte_ptr(f, gp, offsetof(eng_global_t, val));
            if (opc == 0x23) {
                LLVMValueRef v = LLVMBuildLoad2(f->b, nc_valtype(nc, m->globals[g].type), vp, "");
                LLVMSetAlignment(v, 8); /* a v128 (i128) spans val and val_hi, 8-aligned */
                tag(f, v, nc->tbaa_global);
                if (!m->globals[g].mut)
                    LLVMSetMetadata(v, nc->k_invariant, nc->md_empty);
                push(f, v);
            } else {
                LLVMValueRef st = LLVMBuildStore(f->b, pop(f), vp);
                LLVMSetAlignment(st, 8);
                tag(f, st, nc->tbaa_global);
            }
            break;
        }
        case 0x25: { /* table.get */
            uint32_t t = rd_u32(r);
            check_reader(f);
            LLVMValueRef i = pop(f);
            LLVMValueRef a[5] = {f->inst, f->x, c32(f, f->func), c32(f, t), i};
            push(f, call_helper(f, NC_eng_nat_table_get, a, 5));
            break;
        }
        case 0x26: { /* table.set */
            uint32_t t = rd_u32(r);
            check_reader(f);
            LLVMValueRef v = pop(f), i = pop(f);
            LLVMValueRef a[6] = {f->inst, f->x, c32(f, f->func), c32(f, t), i, v};
            call_helper(f, NC_eng_nat_table_set, a, 6);
            break;
        }
        case 0x28: op_load(f, nc->t_i32, 4, nc->t_i32, false); break;
        case 0x29: op_load(f, nc->t_i64, 8, nc->t_i64, false); break;
        case 0x2A: op_load(f, nc->t_f32, 4, nc->t_f32, false); break;
        case 0x2B: op_load(f, nc->t_f64, 8, nc->t_f64, false); break;
        case 0x2C: op_load(f, nc->t_i8, 1, nc->t_i32, true); break;
        case 0x2D: op_load(f, nc->t_i8, 1, nc->t_i32, false); break;
        case 0x2E: op_load(f, nc->t_i16, 2, nc->t_i32, true); break;
        case 0x2F: op_load(f, nc->t_i16, 2, nc->t_i32, false); break;
        case 0x30: op_load(f, nc->t_i8, 1, nc->t_i64, true); break;
        case 0x31: op_load(f, nc->t_i8, 1, nc->t_i64, false); break;
        case 0x32: op_load(f, nc->t_i16, 2, nc->t_i64, true); break;
        case 0x33: op_load(f, nc->t_i16, 2, nc->t_i64, false); break;
        case 0x34: op_load(f, nc->t_i32, 4, nc->t_i64, true); break;
        case 0x35: op_load(f, nc->t_i32, 4, nc->t_i64, false); break;
        case 0x36: op_store(f, nc->t_i32, 4); break;
        case 0x37: op_store(f, nc->t_i64, 8); break;
        case 0x38: op_store(f, nc->t_f32, 4); break;
        case 0x39: op_store(f, nc->t_f64, 8); break;
        case 0x3A: op_store(f, nc->t_i8, 1); break;
        case 0x3B: op_store(f, nc->t_i16, 2); break;
        case 0x3C: op_store(f, nc->t_i8, 1); break;
        case 0x3D: op_store(f, nc->t_i16, 2); break;
        case 0x3E: op_store(f, nc->t_i32, 4); break;
        case 0x3F: { /* memory.size */
            rd_u8(r);
            check_reader(f);
            LLVMValueRef pages = LLVMBuildLShr(f->b, mem_size(f), c64(f, 16), "");
            push(f, LLVMBuildTrunc(f->b, pages, nc->t_i32, ""));
            break;
        }
        case 0x40: { /* memory.grow */
            rd_u8(r);
            check_reader(f);
            mem_size(f); /* fails without a memory */
            LLVMValueRef a[2] = {f->inst, pop(f)};
            LLVMValueRef old = call_helper(f, NC_eng_nat_mem_grow, a, 2);
            reload_mem_size(f);
            push(f, old);
            break;
        }
        case 0x41: {
            int32_t v = rd_s32(r);
            check_reader(f);
            push(f, c32(f, (uint32_t)v));
            break;
        }
        case 0x42: {
            int64_t v = rd_s64(r);
            check_reader(f);
            push(f, c64(f, (uint64_t)v));
            break;
        }
        case 0x43: {
            uint32_t v = rd_fixed32(r);
            check_reader(f);
            push(f, LLVMConstBitCast(c32(f, v), nc->t_f32));
            break;
        }
        case 0x44: {
            uint64_t v = rd_fixed64(r);
            check_reader(f);
            push(f, LLVMConstBitCast(c64(f, v), nc->t_f64));
            break;
        }
        case 0xD0: /* ref.null */
            rd_u8(r);
            check_reader(f);
            push(f, LLVMConstPointerNull(nc->t_ptr));
            break;
        case 0xD1: /* ref.is_null */
            push(f, bool32(f, LLVMBuildIsNull(f->b, pop(f), "")));
            break;
        case 0xD2: { /* ref.func */
            uint32_t fi = rd_u32(r);
            check_reader(f);
            if (fi >= m->nfuncs)
                fail(f, "unknown function");
            push(f, inst_elem(f, offsetof(eng_instance_t, funcs), fi));
            break;
        }
        case 0xFC: op_prefixed(f); break;
        case 0xFD: nc_simd(f); break;
        default:
            if (opc >= 0x45 && opc <= 0xC4) {
                numeric(f, opc);
                break;
            }
            fail(f, "unknown opcode");
        }
    }
}

/* The twin of f->fn (nc_function): same type, linkage and attributes. */
static LLVMValueRef declare_twin(fx_t *f)
{
    char name[32];
    snprintf(name, sizeof name, "f%u.r", f->func);
    LLVMValueRef t = LLVMAddFunction(f->nc->mod, name, LLVMGlobalGetValueType(f->fn));
    LLVMSetLinkage(t, LLVMGetLinkage(f->fn));
    unsigned n = LLVMGetAttributeCountAtIndex(f->fn, LLVMAttributeFunctionIndex);
    LLVMAttributeRef *attrs = fx_alloc(f, (n + 1) * sizeof *attrs);
    LLVMGetAttributesAtIndex(f->fn, LLVMAttributeFunctionIndex, attrs);
    for (unsigned i = 0; i < n; i++)
        LLVMAddAttributeAtIndex(t, LLVMAttributeFunctionIndex, attrs[i]);
    /* Inlined wherever it is called: LLVM's cost model declines a
     * function with two recursive calls, or quicksort's, and a twin left
     * standing only costs code. */
    unsigned k = LLVMGetEnumAttributeKindForName("alwaysinline", 12);
    LLVMAddAttributeAtIndex(t, LLVMAttributeFunctionIndex, LLVMCreateEnumAttribute(f->nc->ctx, k, 0));
    return t;
}

/* The entry block: allocas, parameters, the invariant pointers. */
static void prologue(fx_t *f)
{
    nc_module_t *nc = f->nc;
    const eng_module_t *m = f->m;
    f->entry = LLVMAppendBasicBlockInContext(nc->ctx, f->fn, "");
    LLVMPositionBuilderAtEnd(nc->ab, f->entry);
    LLVMPositionBuilderAtEnd(f->b, f->entry);
    f->inst = LLVMGetParam(f->fn, 0);
    f->x = LLVMGetParam(f->fn, 1);
    f->locals = fx_alloc(f, (size_t)f->nlocals * sizeof *f->locals);
    for (uint32_t i = 0; i < f->nlocals; i++) {
        LLVMTypeRef ty = nc_valtype(nc, f->ltypes[i]);
        f->locals[i] = new_alloca(f, ty);
        LLVMValueRef init = i < f->ft->nparams ? LLVMGetParam(f->fn, i + 3) : LLVMConstNull(ty);
        LLVMBuildStore(f->b, init, f->locals[i]);
    }
    f->fuel_ptr = byte_ptr(f, f->x, offsetof(eng_exec_t, fuel));
    f->fuel_var = new_alloca(f, nc->t_i64);
    LLVMBuildStore(f->b, LLVMGetParam(f->fn, 2), f->fuel_var);
    if (m->nmems) {
        f->mem_obj = inst_elem(f, offsetof(eng_instance_t, mems), 0);
        f->mem_base = vm_load(f, nc->t_ptr, f->inst, offsetof(eng_instance_t, mem0_data), true);
        f->mem_size_var = new_alloca(f, nc->t_i64);
        reload_mem_size(f);
    }
}

/* A directly self-recursive function this small (bytes of body) gets a
 * twin (nc_function). Small, because inlining the twin makes a frame that
 * holds two calls' values, which must stay within ENG_NATIVE_FRAME_MAX,
 * and code as big as three copies. (Measured on bench/engine: 256 with the
 * twin always inlined takes qsort's recursion along, 128 or letting LLVM
 * choose only fib's.) */
#define NC_TWIN_MAX_BYTES 256

/* Translates a body into fn; *twin is where its calls to itself go, and
 * when it is NULL and the function is a small one that calls itself, a
 * twin is declared there (same type and attributes). */
static bool translate(nc_module_t *nc, uint32_t defined, LLVMValueRef fn, LLVMValueRef *twin,
                      const uint8_t *code, size_t len, size_t offset)
{
    const eng_module_t *m = nc->m;
    fx_t *f = calloc(1, sizeof *f);
    if (!f)
        return eng_errf(nc->err, nc->errlen, "native: out of memory");
    f->nc = nc;
    f->m = m;
    f->b = nc->b;
    f->func = m->nfunc_imports + defined;
    f->ft = &m->types[m->func_type[f->func]];
    f->fn = fn;
    f->twin = twin;
    /* Allocated up front: a call taking no arguments copies zero values
     * from it, which must not be from NULL. */
    f->scap = 64;
    f->stack = malloc(f->scap * sizeof *f->stack);
    if (!f->stack) {
        free(f);
        return eng_errf(nc->err, nc->errlen, "native: out of memory");
    }
    rd_init(&f->r, code, len, offset);
    bool ok = false;
    if (setjmp(f->fail) == 0) {
        /* Locals: params, then the declared groups (validated already). */
        uint32_t ngroups = rd_u32(&f->r);
        check_reader(f);
        const uint8_t *groups = f->r.p;
        uint64_t total = f->ft->nparams;
        for (uint32_t i = 0; i < ngroups; i++) {
            total += rd_u32(&f->r);
            rd_u8(&f->r);
            check_reader(f);
            if (total > ENG_MAX_LOCALS)
                fail(f, "too many locals");
        }
        f->nlocals = (uint32_t)total;
        f->ltypes = fx_alloc(f, total);
        memcpy(f->ltypes, f->ft->types, f->ft->nparams);
        eng_reader_t again;
        rd_init(&again, groups, (size_t)(f->r.p - groups), 0);
        uint32_t k = f->ft->nparams;
        for (uint32_t i = 0; i < ngroups; i++) {
            uint32_t n = rd_u32(&again);
            memset(f->ltypes + k, rd_u8(&again), n);
            k += n;
        }
        prologue(f);
        LLVMBasicBlockRef start = new_bb(f);
        LLVMPositionBuilderAtEnd(f->b, start);
        /* A function that calls nothing needs no entry checks: it cannot
         * recurse, so without loops it runs a bounded time (loops check at
         * their headers), and its frame (at most ENG_NATIVE_FRAME_MAX) fits
         * in the stack's reserve below the limit its caller was checked
         * against (eng_call checks entries from C). Small leaves — getters,
         * comparators — then cost what they would natively. */
        bool self;
        if (body_calls(f, &self)) {
            stack_check(f);
            fuel_check(f);
        }
        if (self && !*twin && len <= NC_TWIN_MAX_BYTES)
            *twin = declare_twin(f);
        const eng_functype_t *t = f->ft;
        nblock_t *fb = nc_push_block(f, B_FUNC, 0, NULL, t->nresults, t->types + t->nparams);
        fb->end = new_bb(f);
        fb->target = fb->end;
        fb->vars = nc_make_vars(f, t->nresults, t->types + t->nparams);
        body(f);
        if (!rd_eof(&f->r))
            fail(f, "bytes after the function's final end");
        /* The entry block ends by jumping to the body; the slow-call
         * scratch array gets its final size. */
        if (f->io)
            LLVMSetOperand(f->io, 0, c32(f, f->io_slots ? f->io_slots : 1));
        LLVMBuildBr(nc->ab, start);
        ok = true;
    }
    for (size_t i = 0; i < f->nallocs; i++)
        free(f->allocs[i]);
    free(f->allocs);
    free(f->stack);
    free(f->blocks);
    free(f);
    return ok;
}

/* LLVM never inlines a function into itself, so a recursion such as fib's
 * would pay a full call per level where gcc unrolls it into itself. A
 * small function that calls itself is therefore emitted twice, f and its
 * twin, each calling the other: the twin is inlined into f, and a call
 * does two levels' work. Each level keeps its own checks (stack
 * limit, fuel) at its entry, inlined or not, so depth and interruption
 * behave as before; the twin's symbol, fN.r, still names function N for
 * the fault handler. */
bool nc_function(nc_module_t *nc, uint32_t defined, const uint8_t *code, size_t len, size_t offset)
{
    LLVMValueRef fn = nc->funcs[defined], twin = NULL;
    if (!translate(nc, defined, fn, &twin, code, len, offset))
        return false;
    return !twin || translate(nc, defined, twin, &fn, code, len, offset);
}
