/*
 * native_ir_flow.c — the native tier's translation of wasm's structured
 * control flow: blocks, loops and ifs, their ends, branches (br, br_if,
 * br_table, return), loop headers and their fuel, and counted loops'
 * copies (native_loop.c). Called by the translator of the instructions
 * (native_ir.c); the state is native_ir.h's fx_t.
 *
 * Locals and the values that flow along branches live in allocas (a
 * label's `vars`); a branch stores the label's values into them and the
 * target loads them back, and LLVM's SROA makes phis of them.
 */
#include "engine/native_ir.h"
#include "engine/native_loop.h"

#include <string.h>

static void read_blocktype(fx_t *f, uint32_t *np, const uint8_t **p, uint32_t *nr, const uint8_t **r)
{
    static const uint8_t single[256] = {
        [ENG_I32] = ENG_I32, [ENG_I64] = ENG_I64, [ENG_F32] = ENG_F32,
        [ENG_F64] = ENG_F64, [ENG_FUNCREF] = ENG_FUNCREF, [ENG_EXTERNREF] = ENG_EXTERNREF,
        [ENG_V128] = ENG_V128,
    };
    if (rd_left(&f->r) == 0)
        fail(f, "unexpected end");
    uint8_t b = *f->r.p;
    *np = 0;
    *p = NULL;
    if (b == 0x40) {
        f->r.p++;
        *nr = 0;
        *r = NULL;
        return;
    }
    if (single[b]) {
        f->r.p++;
        *nr = 1;
        *r = &single[b];
        return;
    }
    int64_t idx = rd_s33(&f->r);
    check_reader(f);
    if (idx < 0 || (uint64_t)idx >= f->m->ntypes)
        fail(f, "unknown type");
    const eng_functype_t *t = &f->m->types[idx];
    *np = t->nparams;
    *p = t->types;
    *nr = t->nresults;
    *r = t->types + t->nparams;
}

nblock_t *nc_push_block(fx_t *f, uint8_t kind, uint32_t np, const uint8_t *p, uint32_t nr,
                        const uint8_t *r)
{
    if (f->nblocks == f->bcap) {
        uint32_t cap = f->bcap ? 2 * f->bcap : 16;
        nblock_t *bl = realloc(f->blocks, cap * sizeof *bl);
        if (!bl)
            fail(f, "out of memory");
        f->blocks = bl;
        f->bcap = cap;
    }
    nblock_t *bl = &f->blocks[f->nblocks++];
    memset(bl, 0, sizeof *bl);
    bl->kind = kind;
    bl->nparams = np;
    bl->params = p;
    bl->nresults = nr;
    bl->results = r;
    if (f->sp < np)
        fail(f, "operand stack underflow");
    bl->height = f->sp - np;
    return bl;
}

LLVMValueRef *nc_make_vars(fx_t *f, uint32_t n, const uint8_t *types)
{
    if (n == 0)
        return NULL;
    LLVMValueRef *v = fx_alloc(f, n * sizeof *v);
    for (uint32_t i = 0; i < n; i++)
        v[i] = new_alloca(f, nc_valtype(f->nc, types[i]));
    return v;
}

static nblock_t *label(fx_t *f, uint32_t depth)
{
    if (depth >= f->nblocks)
        fail(f, "unknown label");
    return &f->blocks[f->nblocks - 1 - depth];
}

static uint32_t label_arity(const nblock_t *bl) { return bl->kind == B_LOOP ? bl->nparams : bl->nresults; }

/* Stores the top values of the stack into the label's variables (they
 * stay on the stack). */
static void store_label_values(fx_t *f, nblock_t *bl)
{
    uint32_t n = label_arity(bl);
    LLVMValueRef *v = top_n(f, n);
    for (uint32_t i = 0; i < n; i++)
        LLVMBuildStore(f->b, v[i], bl->vars[i]);
}

static void load_vars(fx_t *f, LLVMValueRef *vars, uint32_t n, const uint8_t *types)
{
    for (uint32_t i = 0; i < n; i++)
        push(f, LLVMBuildLoad2(f->b, nc_valtype(f->nc, types[i]), vars[i], ""));
}

void nc_block(fx_t *f, uint8_t kind)
{
    uint32_t np, nr;
    const uint8_t *p, *r;
    read_blocktype(f, &np, &p, &nr, &r);
    if (f->unreachable) {
        nc_push_block(f, kind, 0, NULL, 0, NULL)->dead = true;
        return;
    }
    if (kind == B_LOOP) {
        LLVMValueRef *vars = nc_make_vars(f, np, p);
        LLVMValueRef *v = top_n(f, np);
        for (uint32_t i = 0; i < np; i++)
            LLVMBuildStore(f->b, v[i], vars[i]);
        f->sp -= np;
        /* The header stays empty until the loop's end shows whether it
         * counts fuel (loop_header). A counted loop is entered through its
         * chunk set-up, and its body translated first as the fast copy
         * (native_loop.c). */
        nl_loop_t counted, *nl = NULL;
        if (np == 0 && nr == 0 && !f->fast && nl_analyse(f, &counted)) {
            nl = fx_alloc(f, sizeof *nl);
            *nl = counted;
        }
        LLVMBasicBlockRef header = new_bb(f), body = new_bb(f);
        if (nl)
            nl_enter(f, nl, header);
        else
            LLVMBuildBr(f->b, header);
        LLVMPositionBuilderAtEnd(f->b, body);
        load_vars(f, vars, np, p);
        nblock_t *bl = nc_push_block(f, B_LOOP, np, p, nr, r);
        bl->target = header;
        bl->body = body;
        bl->vars = vars;
        bl->nl = nl;
        f->fast = nl;
        return;
    }
    LLVMValueRef cond = kind == B_IF ? pop(f) : NULL;
    nblock_t *bl = nc_push_block(f, kind, np, p, nr, r);
    bl->end = new_bb(f);
    bl->target = bl->end;
    bl->vars = nc_make_vars(f, nr, r);
    if (kind == B_IF) {
        bl->if_params = fx_alloc(f, (np + 1) * sizeof(LLVMValueRef));
        memcpy(bl->if_params, f->stack + bl->height, np * sizeof(LLVMValueRef));
        LLVMBasicBlockRef then = new_bb(f);
        bl->else_bb = new_bb(f);
        LLVMValueRef c = LLVMBuildICmp(f->b, LLVMIntNE, cond, c32(f, 0), "");
        LLVMBuildCondBr(f->b, c, then, bl->else_bb);
        LLVMPositionBuilderAtEnd(f->b, then);
    }
}

void nc_else(fx_t *f)
{
    nblock_t *bl = &f->blocks[f->nblocks - 1];
    if (bl->kind != B_IF)
        fail(f, "else without if");
    if (bl->dead)
        return;
    if (!f->unreachable) {
        store_label_values(f, bl);
        LLVMBuildBr(f->b, bl->end);
    }
    f->sp = bl->height;
    for (uint32_t i = 0; i < bl->nparams; i++)
        push(f, bl->if_params[i]);
    LLVMPositionBuilderAtEnd(f->b, bl->else_bb);
    bl->else_bb = NULL; /* used */
    f->unreachable = false;
}

static void emit_return(fx_t *f);

/* A loop's header counts one fuel event per iteration, unless every branch
 * back to it comes after a call of the function to itself made at the
 * loop's own level (not inside a nested block, which a branch could leave
 * first): that call's entry counts the event already (the function calls,
 * so its entry checks), and recursion in a loop — what clang makes of
 * fib's or quicksort's second recursive call — counts once per level, not
 * twice. A loop nothing branches back to runs once and counts nothing.
 * Filled in at the loop's end, when its branches are known. */
static void loop_header(fx_t *f, nblock_t *bl)
{
    LLVMBasicBlockRef here = LLVMGetInsertBlock(f->b);
    LLVMPositionBuilderAtEnd(f->b, bl->target);
    if (bl->counts)
        fuel_check(f);
    LLVMBuildBr(f->b, bl->body);
    LLVMPositionBuilderAtEnd(f->b, here);
}

/* A branch to bl: a loop's header must count unless the loop has called
 * its function at its own level already (loop_header). */
static void branch_to(nblock_t *bl)
{
    if (bl->kind == B_LOOP && !bl->self_called)
        bl->counts = true;
}

/* The end of a counted loop's copy (native_loop.c). After the fast copy,
 * the body is read again as the ordinary copy. */
static void counted_end(fx_t *f, nblock_t *bl)
{
    nl_loop_t *nl = bl->nl;
    bool fast = f->fast != NULL;
    if (fast)
        bl->counts = false;
    loop_header(f, bl);
    f->fast = NULL;
    if (fast) {
        LLVMBuildBr(f->b, nl->after); /* the latch left it reachable */
        f->r = nl->body;
        f->sp = bl->height;
        bl->target = nl->slow;
        bl->body = new_bb(f);
        bl->counts = false;
        LLVMPositionBuilderAtEnd(f->b, bl->body);
        return;
    }
    if (!f->unreachable)
        LLVMBuildBr(f->b, nl->after);
    LLVMPositionBuilderAtEnd(f->b, nl->after);
    f->unreachable = false;
    f->sp = bl->height;
    f->nblocks--;
}

/* Returns true when the function's final end was reached. */
bool nc_end(fx_t *f)
{
    nblock_t *bl = &f->blocks[f->nblocks - 1];
    if (bl->dead) {
        f->nblocks--;
        return false;
    }
    if (bl->kind == B_LOOP && bl->nl) {
        counted_end(f, bl);
        return false;
    }
    if (bl->kind == B_LOOP) {
        loop_header(f, bl);
        /* Only a fall-through reaches a loop's end: its results are on the
         * stack already, or the code after it is as unreachable as the
         * loop's own end. */
        uint32_t height = bl->height, nr = bl->nresults;
        if (!f->unreachable) {
            LLVMValueRef *v = top_n(f, nr);
            memmove(f->stack + height, v, nr * sizeof *v);
            f->sp = height + nr;
        } else {
            f->sp = height;
        }
        f->nblocks--;
        return false;
    }
    if (!f->unreachable) {
        store_label_values(f, bl);
        LLVMBuildBr(f->b, bl->end);
    }
    if (bl->kind == B_IF && bl->else_bb) {
        /* No else: the params pass through as the results. */
        LLVMPositionBuilderAtEnd(f->b, bl->else_bb);
        for (uint32_t i = 0; i < bl->nresults && i < bl->nparams; i++)
            LLVMBuildStore(f->b, bl->if_params[i], bl->vars[i]);
        LLVMBuildBr(f->b, bl->end);
    }
    LLVMPositionBuilderAtEnd(f->b, bl->end);
    f->sp = bl->height;
    f->unreachable = false;
    if (bl->kind == B_FUNC) {
        f->nblocks--;
        emit_return(f);
        return true;
    }
    load_vars(f, bl->vars, bl->nresults, bl->results);
    f->nblocks--;
    return false;
}

static void emit_return(fx_t *f)
{
    const eng_functype_t *t = f->ft;
    nblock_t *fb = &f->blocks[0];
    uint32_t n = t->nresults;
    LLVMValueRef *v = fx_alloc(f, (n + 1) * sizeof *v);
    v[0] = fuel_now(f);
    for (uint32_t i = 0; i < n; i++)
        v[i + 1] = LLVMBuildLoad2(f->b, nc_valtype(f->nc, eng_ft_result(t, i)), fb->vars[i], "");
    if (n == 0)
        LLVMBuildRet(f->b, v[0]);
    else
        LLVMBuildAggregateRet(f->b, v, n + 1);
}

void nc_br(fx_t *f, uint32_t depth)
{
    nblock_t *bl = label(f, depth);
    branch_to(bl);
    store_label_values(f, bl);
    LLVMBuildBr(f->b, bl->target);
    f->unreachable = true;
}

void nc_br_if(fx_t *f, uint32_t depth)
{
    if (f->fast && depth == 0) { /* a counted loop's latch */
        LLVMBasicBlockRef go = new_bb(f);
        nl_latch(f, label(f, 0)->target, go);
        return;
    }
    nblock_t *in = label(f, 0);
    if (depth == 0 && in->kind == B_LOOP && in->nl) { /* its ordinary copy's */
        branch_to(in);
        nl_slow_latch(f, in->nl, in->target, new_bb(f));
        return;
    }
    LLVMValueRef cond = pop(f);
    nblock_t *bl = label(f, depth);
    branch_to(bl);
    store_label_values(f, bl);
    LLVMBasicBlockRef go = new_bb(f);
    LLVMBuildCondBr(f->b, LLVMBuildICmp(f->b, LLVMIntNE, cond, c32(f, 0), ""), bl->target, go);
    LLVMPositionBuilderAtEnd(f->b, go);
}

void nc_br_table(fx_t *f)
{
    uint32_t n = rd_u32(&f->r);
    check_reader(f);
    if (n > rd_left(&f->r))
        fail(f, "br_table longer than the body");
    uint32_t *depths = fx_alloc(f, ((size_t)n + 1) * sizeof *depths);
    for (uint32_t i = 0; i <= n; i++)
        depths[i] = rd_u32(&f->r);
    check_reader(f);
    LLVMValueRef idx = pop(f);
    /* A landing block per distinct label stores the values for it. */
    LLVMBasicBlockRef *land = fx_alloc(f, (size_t)f->nblocks * sizeof *land);
    for (uint32_t i = 0; i <= n; i++) {
        nblock_t *bl = label(f, depths[i]);
        branch_to(bl);
        if (!land[depths[i]]) {
            if (label_arity(bl) == 0) {
                land[depths[i]] = bl->target;
            } else {
                LLVMBasicBlockRef here = LLVMGetInsertBlock(f->b);
                LLVMBasicBlockRef lb = new_bb(f);
                LLVMPositionBuilderAtEnd(f->b, lb);
                store_label_values(f, bl);
                LLVMBuildBr(f->b, bl->target);
                LLVMPositionBuilderAtEnd(f->b, here);
                land[depths[i]] = lb;
            }
        }
    }
    LLVMValueRef sw = LLVMBuildSwitch(f->b, idx, land[depths[n]], n);
    for (uint32_t i = 0; i < n; i++)
        LLVMAddCase(sw, c32(f, i), land[depths[i]]);
    f->unreachable = true;
}
