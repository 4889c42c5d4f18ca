/*
 * native_nowrap.c — which 32-bit address additions of the generated code
 * cannot wrap, rewritten so that LLVM may fold their constants into the
 * addressing of memory accesses.
 *
 * A wasm address is an i32: `x + 9` wraps modulo 2^32, so the host
 * address mem_base + zext(x + 9) is not mem_base + zext(x) + 9, and LLVM
 * keeps every such address in a register of its own. A loop that touches
 * x+8, x+9, ... x+15 (a byte-wise swap, libc's qsort) then carries eight
 * induction variables, spilled to the stack, where native code has one
 * base and eight displacements.
 *
 * The fact that helps: once an access at zext(x) + offset has been done
 * (it did not trap), x < memory size <= ENG_LIMIT_PAGES pages, which is
 * 64 KiB short of 2^32; so x + d for 0 < d < 64 KiB does not wrap. After
 * such an access, within its basic block and the blocks reached from it
 * through single-predecessor edges, zext(y + c) becomes zext(x) + d (an
 * i64 add, nuw and nsw) when y is x (d = c) or x = y + c1 (d = c - c1),
 * and 0 < d < 64 KiB: the same value, now with x's base, so the
 * displacements fold. (An i32 `x +nuw d` would not do: InstCombine folds
 * (y + c1) + d back into y + c and drops the flag.)
 *
 * An access is recognised by its address alone: a GEP from the function's
 * memory base (the load of inst->mem0_data) by zext(x) or zext(x) + a
 * constant. Every such access native code makes is either checked (it
 * traps when out of bounds, explicitly or by faulting in guard mode) or
 * proven inside the memory (a counted loop's), so control passes it only
 * when it was in bounds. Memory never shrinks while code runs, so the fact
 * holds across calls and memory.grow.
 *
 * Runs after SROA and EarlyCSE (native_compile.c), when a local read twice
 * is one SSA value, and before the rest of the optimiser; then once more
 * after it, when unrolling has made copies of a loop's body whose
 * addresses are the first copy's plus a constant. The facts hold there
 * too: the optimiser deletes, merges and hoists accesses, but never makes
 * one execute where the wasm code would not have reached it in bounds
 * (it speculates a load only from memory it knows is dereferenceable,
 * which the memory base is not), and a masked load or store is a call,
 * never taken for an access.
 */
#include "engine/native_llvm.h"

#include <stddef.h>

/* Addresses remembered per block: the most recent accesses. */
#define NW_FACTS 32

/* After an access at x, x + d cannot wrap for 0 < d < NW_MAX_DELTA: the
 * room between ENG_LIMIT_PAGES pages and 2^32, one page. */
#define NW_MAX_DELTA ((int64_t)(ENG_MAX_PAGES - ENG_LIMIT_PAGES) * ENG_PAGE_BYTES)

typedef struct nw_facts {
    LLVMValueRef v[NW_FACTS];
    unsigned n, next;
} nw_facts_t;

static void facts_add(nw_facts_t *fs, LLVMValueRef x)
{
    for (unsigned i = 0; i < fs->n; i++)
        if (fs->v[i] == x)
            return;
    fs->v[fs->next] = x;
    fs->next = (fs->next + 1) % NW_FACTS;
    if (fs->n < NW_FACTS)
        fs->n++;
}

static bool facts_has(const nw_facts_t *fs, LLVMValueRef x)
{
    for (unsigned i = 0; i < fs->n; i++)
        if (fs->v[i] == x)
            return true;
    return false;
}

/* Whether v is `y + c` or `y - c` on i32 with a constant c: *y and the
 * signed amount added. */
static bool const_add(LLVMValueRef v, LLVMTypeRef i32, LLVMValueRef *y, int64_t *c)
{
    if (!LLVMIsAInstruction(v) || LLVMTypeOf(v) != i32)
        return false;
    LLVMOpcode op = LLVMGetInstructionOpcode(v);
    if (op != LLVMAdd && op != LLVMSub)
        return false;
    LLVMValueRef k = LLVMGetOperand(v, 1);
    if (!LLVMIsAConstantInt(k))
        return false;
    int64_t n = (int32_t)(uint32_t)LLVMConstIntGetZExtValue(k);
    *y = LLVMGetOperand(v, 0);
    *c = op == LLVMAdd ? n : -n;
    return true;
}

/* Whether p is mem_base + zext(x) [+ constant], mem_base being a load of
 * inst->mem0_data (inst: the function's first parameter); *x the i32. */
static bool mem_address(LLVMValueRef p, LLVMValueRef inst, LLVMTypeRef i32, LLVMValueRef *x)
{
    if (!LLVMIsAGetElementPtrInst(p) || LLVMGetNumOperands(p) != 2)
        return false;
    LLVMValueRef base = LLVMGetOperand(p, 0), ea = LLVMGetOperand(p, 1);
    if (!LLVMIsALoadInst(base))
        return false;
    LLVMValueRef field = LLVMGetOperand(base, 0);
    if (!LLVMIsAGetElementPtrInst(field) || LLVMGetNumOperands(field) != 2 ||
        LLVMGetOperand(field, 0) != inst || !LLVMIsAConstantInt(LLVMGetOperand(field, 1)) ||
        LLVMConstIntGetZExtValue(LLVMGetOperand(field, 1)) != offsetof(eng_instance_t, mem0_data))
        return false;
    /* zext(x) + offset (a memarg's, below 2^32): the offset only adds to
     * what was in bounds. */
    if (LLVMIsAInstruction(ea) && LLVMGetInstructionOpcode(ea) == LLVMAdd) {
        LLVMValueRef off = LLVMGetOperand(ea, 1);
        if (!LLVMIsAConstantInt(off) || LLVMConstIntGetZExtValue(off) >> 32)
            return false;
        ea = LLVMGetOperand(ea, 0);
    }
    if (!LLVMIsAZExtInst(ea))
        return false;
    *x = LLVMGetOperand(ea, 0);
    return LLVMTypeOf(*x) == i32;
}

/* Whether prev is bb's only predecessor (one use of bb, in prev's
 * terminator). */
static bool only_pred(LLVMBasicBlockRef bb, LLVMBasicBlockRef prev)
{
    LLVMUseRef u = LLVMGetFirstUse(LLVMBasicBlockAsValue(bb));
    if (!u || LLVMGetNextUse(u))
        return false;
    LLVMValueRef user = LLVMGetUser(u);
    return LLVMIsAInstruction(user) && LLVMGetInstructionParent(user) == prev;
}

/* zext(y + c) after the facts: zext(x) + d, with x a fact and 0 < d <
 * NW_MAX_DELTA, when y is x (d = c) or x = y + c1 (d = c - c1). The sum
 * is made in 64 bits: an i32 `x +nuw d` would not last, as InstCombine
 * folds (y + c1) + d back into y + c, dropping the flag. */
static LLVMValueRef rewrite_zext(LLVMBuilderRef b, const nw_facts_t *fs, LLVMValueRef in,
                                 LLVMTypeRef i32)
{
    LLVMValueRef y, x = NULL;
    int64_t c, d = 0;
    if (!LLVMIsAZExtInst(in) || !const_add(LLVMGetOperand(in, 0), i32, &y, &c))
        return in;
    if (facts_has(fs, y)) {
        x = y;
        d = c;
    }
    for (unsigned i = 0; i < fs->n && !(d > 0 && d < NW_MAX_DELTA); i++) {
        LLVMValueRef y1;
        int64_t c1;
        if (const_add(fs->v[i], i32, &y1, &c1) && y1 == y) {
            x = fs->v[i];
            d = c - c1;
        }
    }
    if (!(d > 0 && d < NW_MAX_DELTA))
        return in;
    LLVMTypeRef i64 = LLVMTypeOf(in);
    LLVMPositionBuilderBefore(b, in);
    LLVMValueRef r = LLVMBuildAdd(b, LLVMBuildZExt(b, x, i64, ""), LLVMConstInt(i64, (uint64_t)d, 0), "");
    LLVMSetNUW(r, 1);
    LLVMSetNSW(r, 1);
    LLVMReplaceAllUsesWith(in, r);
    LLVMInstructionEraseFromParent(in);
    return r;
}

static void function(LLVMBuilderRef b, LLVMValueRef fn, LLVMTypeRef i32)
{
    if (LLVMCountParams(fn) == 0)
        return;
    LLVMValueRef inst = LLVMGetParam(fn, 0);
    nw_facts_t fs = {0};
    LLVMBasicBlockRef prev = NULL;
    for (LLVMBasicBlockRef bb = LLVMGetFirstBasicBlock(fn); bb; bb = LLVMGetNextBasicBlock(bb)) {
        if (!prev || !only_pred(bb, prev))
            fs.n = fs.next = 0;
        for (LLVMValueRef in = LLVMGetFirstInstruction(bb); in;) {
            LLVMValueRef p = NULL, x;
            if (LLVMIsALoadInst(in))
                p = LLVMGetOperand(in, 0);
            else if (LLVMIsAStoreInst(in))
                p = LLVMGetOperand(in, 1);
            if (p && mem_address(p, inst, i32, &x))
                facts_add(&fs, x);
            else if (!p)
                in = rewrite_zext(b, &fs, in, i32);
            in = LLVMGetNextInstruction(in);
        }
        prev = bb;
    }
}

void nc_mark_no_wrap(nc_module_t *nc)
{
    LLVMBuilderRef b = LLVMCreateBuilderInContext(nc->ctx);
    for (LLVMValueRef fn = LLVMGetFirstFunction(nc->mod); fn; fn = LLVMGetNextFunction(fn))
        if (LLVMGetFirstBasicBlock(fn))
            function(b, fn, nc->t_i32);
    LLVMDisposeBuilder(b);
}
