/*
 * compile.c — validates one function body and compiles it to internal code.
 *
 * One pass over the body does both jobs. The validator is the spec's
 * algorithm (an operand stack of types, a control stack of blocks, the
 * polymorphic stack after unconditional branches). The compiler rides on it:
 * every operand stack position has a fixed frame slot (the locals' slots +
 * the slots of the values below it; a v128 takes two slots, everything else
 * one), so the internal code is three-address code over slots and the
 * interpreter never moves a stack pointer. See ops.h for the instruction layouts and
 * docs/engine.md for the design. compile.h holds the compiler's state and
 * the helpers that push, pop and emit; compile_simd.c the 0xFD prefix.
 *
 * Three cheap tricks remove most of the instructions a stack machine spends
 * on shuffling values (measured in bench/engine):
 *   - local.get does not copy: it pushes a *pending* operand that names the
 *     local's slot directly; i32.const likewise pushes a pending constant,
 *     which binary ops take as an immediate (add32i, ...). Pending operands
 *     are materialised into their own slot when something needs them there
 *     (block boundaries, calls, branches) or when the local is about to be
 *     overwritten.
 *   - local.set/tee of a value the previous instruction just computed
 *     retargets that instruction's destination to the local (no copy).
 *   - br_if and if on a fresh i32 comparison become one compare-and-branch.
 *
 * Errors (invalid or malformed bodies) longjmp back to eng_compile_func,
 * which frees the scratch buffers: every allocation here is owned by the
 * comp_t, so unwinding that way leaks nothing.
 */
#include "engine/compile.h"

#include <setjmp.h>
#include <stdlib.h>

/* ---- Operand stack ---- */

/* Makes stack entry i hold its value in its own slot. */
static void materialize(comp_t *c, uint32_t i)
{
    opnd_t *o = &c->stack[i];
    if (o->kind == K_LOCAL)
        emit_copy_typed(c, slot_pos(c, o->pos), o->local, o->type);
    else if (o->kind == K_CONST)
        emit_const(c, slot_pos(c, o->pos), o->type, o->imm);
    o->kind = K_TEMP;
}

static void materialize_from(comp_t *c, uint32_t from)
{
    for (uint32_t i = from; i < c->height; i++)
        materialize(c, i);
}

/* Before a write to local slot `local`: pending reads of it take a copy. */
static bool local_pending(comp_t *c, uint32_t local)
{
    for (uint32_t i = 0; i < c->height; i++)
        if (c->stack[i].kind == K_LOCAL && c->stack[i].local == local)
            return true;
    return false;
}

static void materialize_local(comp_t *c, uint32_t local)
{
    for (uint32_t i = 0; i < c->height; i++)
        if (c->stack[i].kind == K_LOCAL && c->stack[i].local == local)
            materialize(c, i);
}

/* Checks (without popping) that the top n entries match types[0..n). */
static void peek_types(comp_t *c, const uint8_t *types, uint32_t n)
{
    ctrl_t *f = top_ctrl(c);
    for (uint32_t i = 0; i < n; i++) {
        uint8_t want = types[n - 1 - i];
        if (c->height < f->height + i + 1) {
            if (!f->unreachable)
                fail(c, "type mismatch: operand stack underflow");
            continue;
        }
        opnd_t *o = &c->stack[c->height - 1 - i];
        if (o->type != T_ANY && o->type != want)
            fail(c, "type mismatch");
    }
}

/* ---- Control ---- */

static void read_blocktype(comp_t *c, uint32_t *np, const uint8_t **p, uint32_t *nr, const uint8_t **r)
{
    static const uint8_t single[256] = {
        [ENG_I32] = ENG_I32, [ENG_I64] = ENG_I64, [ENG_F32] = ENG_F32,
        [ENG_F64] = ENG_F64, [ENG_FUNCREF] = ENG_FUNCREF, [ENG_EXTERNREF] = ENG_EXTERNREF,
        [ENG_V128] = ENG_V128,
    };
    if (rd_left(&c->r) == 0)
        fail(c, "unexpected end");
    uint8_t b = *c->r.p;
    *np = 0;
    *p = NULL;
    if (b == 0x40) {
        c->r.p++;
        *nr = 0;
        *r = NULL;
        return;
    }
    if (single[b]) {
        c->r.p++;
        *nr = 1;
        *r = &single[b];
        return;
    }
    int64_t idx = rd_s33(&c->r);
    check_reader(c);
    if (idx < 0 || (uint64_t)idx >= c->m->ntypes)
        fail(c, "unknown type");
    eng_functype_t *t = &c->m->types[idx];
    *np = t->nparams;
    *p = t->types;
    *nr = t->nresults;
    *r = t->types + t->nparams;
}

static ctrl_t *push_ctrl(comp_t *c, uint8_t kind, uint32_t np, const uint8_t *p, uint32_t nr,
                         const uint8_t *r)
{
    c->ctrls = grow(c, c->ctrls, &c->ctrl_cap, sizeof *c->ctrls, c->nctrl + 1);
    ctrl_t *f = &c->ctrls[c->nctrl++];
    f->kind = kind;
    f->unreachable = false;
    f->height = c->height;
    f->slot_height = entry_pos(c, c->height);
    f->nparams = np;
    f->params = p;
    f->nresults = nr;
    f->results = r;
    f->loop_pc = 0;
    f->if_inst = f->if_rel = 0;
    f->patches = NO_PATCH;
    return f;
}

/* Starts a block, loop or if whose params are on the stack: everything is
 * materialised (pending values must not cross a label), the params are
 * type-checked and re-pushed with their declared types. */
static ctrl_t *enter_block(comp_t *c, uint8_t kind, uint32_t np, const uint8_t *p, uint32_t nr,
                           const uint8_t *r)
{
    materialize_from(c, 0);
    for (uint32_t i = np; i-- > 0;)
        pop(c, p[i]);
    ctrl_t *f = push_ctrl(c, kind, np, p, nr, r);
    for (uint32_t i = 0; i < np; i++)
        push(c, p[i], K_TEMP);
    return f;
}

static void set_unreachable(comp_t *c)
{
    ctrl_t *f = top_ctrl(c);
    c->height = f->height;
    f->unreachable = true;
    seal(c);
}

static void add_patch(comp_t *c, ctrl_t *f, size_t inst, size_t rel)
{
    c->patches = grow(c, c->patches, &c->patch_cap, sizeof *c->patches, c->npatches + 1);
    patch_t *pt = &c->patches[c->npatches];
    pt->inst = inst;
    pt->rel = rel;
    pt->next = f->patches;
    f->patches = c->npatches++;
}

static void patch_here(comp_t *c, size_t inst, size_t rel)
{
    c->code[rel] = (uint64_t)(int64_t)(c->len - inst);
}

/* Fills in the offset word of a branch at `inst` to label depth l. */
static void branch_to(comp_t *c, uint32_t l, size_t inst, size_t rel)
{
    ctrl_t *f = &c->ctrls[c->nctrl - 1 - l];
    if (f->kind == C_LOOP)
        c->code[rel] = (uint64_t)((int64_t)f->loop_pc - (int64_t)inst);
    else
        add_patch(c, f, inst, rel);
}

static uint32_t label_arity(ctrl_t *f) { return f->kind == C_LOOP ? f->nparams : f->nresults; }
static const uint8_t *label_types(ctrl_t *f) { return f->kind == C_LOOP ? f->params : f->results; }

/* Emits the return sequence for the top n stack values. */
static void emit_return(comp_t *c, uint32_t n)
{
    ctrl_t *f = top_ctrl(c);
    uint32_t avail = c->height - f->height;
    if (avail < n) { /* polymorphic stack: this code is dead */
        emit_op(c, OP_ret, false);
        return;
    }
    const uint8_t *rt = c->ctrls[0].results; /* the function's */
    if (n == 1 && rt[0] != ENG_V128) {
        opnd_t *o = &c->stack[c->height - 1];
        uint32_t s = read_slot(c, o);
        emit_op(c, OP_ret1, false);
        emit_word(c, s);
        return;
    }
    /* Results go to slots 0..n-1, which overlap the locals that pending
     * operands may still read: materialise first, then copy upwards. */
    materialize_from(c, c->height - n);
    uint32_t dst = 0;
    for (uint32_t i = 0; i < n; i++) {
        emit_copy_typed(c, dst, slot_pos(c, c->stack[c->height - n + i].pos), rt[i]);
        dst += eng_type_slots(rt[i]);
    }
    emit_op(c, OP_ret, false);
}

/* True when branching to label l needs no value moves. */
static bool branch_in_place(comp_t *c, uint32_t l)
{
    ctrl_t *f = &c->ctrls[c->nctrl - 1 - l];
    if (f->kind == C_FUNC)
        return false;
    uint32_t n = label_arity(f);
    if (n == 0)
        return true;
    if (c->height - top_ctrl(c)->height < n)
        return true; /* dead code */
    uint32_t pos = f->slot_height;
    for (uint32_t i = 0; i < n; i++) {
        opnd_t *o = &c->stack[c->height - n + i];
        if (o->kind != K_TEMP || o->pos != pos)
            return false;
        pos += eng_type_slots(label_types(f)[i]);
    }
    return true;
}

/* Emits the moves and the unconditional jump (or return) to label l. */
static void emit_branch(comp_t *c, uint32_t l)
{
    ctrl_t *f = &c->ctrls[c->nctrl - 1 - l];
    uint32_t n = label_arity(f);
    if (f->kind == C_FUNC) {
        emit_return(c, n);
        return;
    }
    if (c->height - top_ctrl(c)->height >= n) {
        uint32_t dst = slot_pos(c, f->slot_height);
        for (uint32_t i = 0; i < n; i++) {
            opnd_t *o = &c->stack[c->height - n + i];
            uint8_t t = label_types(f)[i];
            if (o->kind == K_CONST)
                emit_const(c, dst, o->type, o->imm);
            else
                emit_copy_typed(c, dst, o->kind == K_LOCAL ? o->local : slot_pos(c, o->pos), t);
            dst += eng_type_slots(t);
        }
    }
    size_t inst = emit_op(c, OP_br, false);
    emit_word(c, 0);
    branch_to(c, l, inst, inst + 1);
}

/* Emits branch code that runs on one path only (a br_if or br_table stub):
 * whatever it materialises is undone in the compiler's view afterwards,
 * since the other path never ran those copies. */
static void emit_branch_stub(comp_t *c, uint32_t l)
{
    uint32_t n = label_arity(&c->ctrls[c->nctrl - 1 - l]);
    uint32_t avail = c->height - top_ctrl(c)->height;
    if (n > avail)
        n = avail;
    if (n == 0) {
        emit_branch(c, l);
        return;
    }
    c->saved = grow(c, c->saved, &c->saved_cap, sizeof *c->saved, n);
    memcpy(c->saved, c->stack + c->height - n, n * sizeof *c->saved);
    emit_branch(c, l);
    memcpy(c->stack + c->height - n, c->saved, n * sizeof *c->saved);
}

/* The i32 comparisons that fuse with a following branch, and their
 * negations (for "branch if false"). */
static int fused_branch(int op, bool negate)
{
    static const struct { int cmp, inv, br; } t[] = {
        {OP_eq32, OP_ne32, OP_br_eq32},     {OP_ne32, OP_eq32, OP_br_ne32},
        {OP_lts32, OP_ges32, OP_br_lts32},  {OP_ltu32, OP_geu32, OP_br_ltu32},
        {OP_gts32, OP_les32, OP_br_gts32},  {OP_gtu32, OP_leu32, OP_br_gtu32},
        {OP_les32, OP_gts32, OP_br_les32},  {OP_leu32, OP_gtu32, OP_br_leu32},
        {OP_ges32, OP_lts32, OP_br_ges32},  {OP_geu32, OP_ltu32, OP_br_geu32},
        {OP_eq32i, OP_ne32i, OP_br_eq32i},  {OP_ne32i, OP_eq32i, OP_br_ne32i},
        {OP_lts32i, OP_ges32i, OP_br_lts32i}, {OP_ltu32i, OP_geu32i, OP_br_ltu32i},
        {OP_gts32i, OP_les32i, OP_br_gts32i}, {OP_gtu32i, OP_leu32i, OP_br_gtu32i},
        {OP_les32i, OP_gts32i, OP_br_les32i}, {OP_leu32i, OP_gtu32i, OP_br_leu32i},
        {OP_ges32i, OP_lts32i, OP_br_ges32i}, {OP_geu32i, OP_ltu32i, OP_br_geu32i},
    };
    if (negate) {
        for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
            if (t[i].cmp == op) {
                op = t[i].inv;
                break;
            }
    }
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
        if (t[i].cmp == op)
            return t[i].br;
    return -1;
}

/* The condition was just popped. If the previous instruction computed it
 * with a fusable comparison, that instruction is cut out of the code and
 * returned (its words in saved[]) so the caller can re-emit it as a branch. */
typedef struct cut_cmp {
    int op;          /* -1 when nothing was cut */
    bool unary;      /* eqz */
    uint64_t w1, w2;
} cut_cmp_t;

static cut_cmp_t cut_condition(comp_t *c, opnd_t *cond)
{
    cut_cmp_t cut = {.op = -1};
    if (cond->kind != K_TEMP || c->last_op < 0 || !c->last_dst_ok)
        return cut;
    if ((uint32_t)c->code[c->last_start + 1] != slot_pos(c, cond->pos))
        return cut;
    if (c->last_op == OP_eqz32) {
        cut.op = OP_eqz32;
        cut.unary = true;
        cut.w1 = c->code[c->last_start + 1];
        c->len = c->last_start;
    } else if (fused_branch(c->last_op, false) >= 0) {
        cut.op = c->last_op;
        cut.w1 = c->code[c->last_start + 1];
        cut.w2 = c->code[c->last_start + 2];
        c->len = c->last_start;
    }
    seal(c);
    return cut;
}

/* Emits "branch when cond is true" (or false), using a cut comparison when
 * there is one. Returns the instruction start; *rel gets the offset word. */
static size_t emit_cond_jump(comp_t *c, opnd_t *cond, cut_cmp_t *cut, bool when_true, size_t *rel)
{
    size_t inst;
    if (cut->op == OP_eqz32) {
        /* eqz a true  <=> a == 0 */
        inst = emit_op(c, when_true ? OP_br_unless : OP_br_if, false);
        emit_word(c, (uint32_t)(cut->w1 >> 32)); /* a */
        *rel = c->len;
        emit_word(c, 0);
    } else if (cut->op >= 0) {
        inst = emit_op(c, fused_branch(cut->op, !when_true), false);
        emit_word(c, cut->w1);
        emit_word(c, cut->w2);
        *rel = c->len;
        emit_word(c, 0);
    } else {
        uint32_t s = read_slot(c, cond);
        inst = emit_op(c, when_true ? OP_br_if : OP_br_unless, false);
        emit_word(c, s);
        *rel = c->len;
        emit_word(c, 0);
    }
    seal(c);
    return inst;
}

static uint32_t read_label(comp_t *c)
{
    uint32_t l = rd_u32(&c->r);
    check_reader(c);
    if (l >= c->nctrl)
        fail(c, "unknown label");
    return l;
}

static void op_br_if(comp_t *c)
{
    uint32_t l = read_label(c);
    opnd_t cond = pop(c, ENG_I32);
    ctrl_t *f = &c->ctrls[c->nctrl - 1 - l];
    uint32_t n = label_arity(f);
    peek_types(c, label_types(f), n);
    cut_cmp_t cut = cut_condition(c, &cond);
    size_t rel;
    if (branch_in_place(c, l)) {
        size_t inst = emit_cond_jump(c, &cond, &cut, true, &rel);
        branch_to(c, l, inst, rel);
    } else {
        size_t inst = emit_cond_jump(c, &cond, &cut, false, &rel);
        emit_branch_stub(c, l);
        patch_here(c, inst, rel);
        seal(c);
    }
    /* br_if pops the label's values and pushes them back with the label's
     * types: on a polymorphic stack that makes values appear (which a
     * later instruction or the block end may then reject). */
    ctrl_t *t = top_ctrl(c);
    uint32_t have = c->height - t->height;
    if (have < n) {
        c->saved = grow(c, c->saved, &c->saved_cap, sizeof *c->saved, have + 1);
        if (have)
            memcpy(c->saved, c->stack + t->height, have * sizeof *c->saved);
        c->height = t->height;
        for (uint32_t i = 0; i < n; i++)
            push(c, label_types(f)[i], K_TEMP);
        for (uint32_t i = 0; i < have; i++) {
            opnd_t *o = &c->stack[c->height - have + i];
            o->kind = c->saved[i].kind;
            o->local = c->saved[i].local;
            o->imm = c->saved[i].imm;
        }
    }
    for (uint32_t i = 0; i < n; i++)
        c->stack[c->height - 1 - i].type = label_types(f)[n - 1 - i];
}

static void op_br_table(comp_t *c)
{
    uint32_t count = rd_u32(&c->r);
    check_reader(c);
    if (count > rd_left(&c->r))
        fail(c, "unexpected end");
    c->labels = grow(c, c->labels, &c->labels_cap, sizeof *c->labels, count + 1);
    for (uint32_t i = 0; i <= count; i++) {
        c->labels[i] = read_label(c);
    }
    opnd_t idx = pop(c, ENG_I32);
    uint32_t arity = label_arity(&c->ctrls[c->nctrl - 1 - c->labels[count]]);
    for (uint32_t i = 0; i <= count; i++) {
        ctrl_t *f = &c->ctrls[c->nctrl - 1 - c->labels[i]];
        if (label_arity(f) != arity)
            fail(c, "type mismatch: br_table labels differ in arity");
        peek_types(c, label_types(f), arity);
    }
    uint32_t s = read_slot(c, &idx);
    size_t inst = emit_op(c, OP_br_table, false);
    emit_word(c, pack(s, count));
    size_t table = c->len;
    for (uint32_t i = 0; i <= count; i++)
        emit_word(c, 0);
    c->stubs = grow(c, c->stubs, &c->stubs_cap, sizeof *c->stubs, c->nctrl);
    for (uint32_t i = 0; i < c->nctrl; i++)
        c->stubs[i] = SIZE_MAX;
    for (uint32_t i = 0; i <= count; i++) {
        uint32_t l = c->labels[i];
        if (branch_in_place(c, l)) {
            branch_to(c, l, inst, table + i);
        } else {
            if (c->stubs[l] == SIZE_MAX) {
                c->stubs[l] = c->len;
                emit_branch_stub(c, l);
            }
            c->code[table + i] = (uint64_t)((int64_t)c->stubs[l] - (int64_t)inst);
        }
    }
    set_unreachable(c);
}

static void op_end(comp_t *c)
{
    ctrl_t *f = top_ctrl(c);
    /* Results: type-check, then put them into their slots. */
    for (uint32_t i = f->nresults; i-- > 0;)
        pop(c, f->results[i]);
    if (c->height != f->height)
        fail(c, "type mismatch: values remain on the stack at the end of a block");
    c->height += f->unreachable ? 0 : f->nresults;
    if (!f->unreachable)
        materialize_from(c, f->height);
    c->height = f->height;

    if (f->kind == C_IF) {
        /* No else: the implicit else passes the params through. */
        if (f->nparams != f->nresults ||
            (f->nparams && memcmp(f->params, f->results, f->nparams) != 0))
            fail(c, "type mismatch: if without else must have matching params and results");
    }
    if (f->kind == C_FUNC) {
        for (uint32_t i = 0; i < f->nresults; i++)
            push(c, f->results[i], K_TEMP);
        if (!f->unreachable)
            emit_return(c, f->nresults);
        for (uint32_t p = f->patches; p != NO_PATCH; p = c->patches[p].next)
            patch_here(c, c->patches[p].inst, c->patches[p].rel);
        /* Branches to the function label were compiled as returns. */
        c->nctrl--;
        return;
    }
    if (f->kind == C_IF)
        patch_here(c, f->if_inst, f->if_rel);
    for (uint32_t p = f->patches; p != NO_PATCH; p = c->patches[p].next)
        patch_here(c, c->patches[p].inst, c->patches[p].rel);
    seal(c);
    uint32_t nr = f->nresults;
    const uint8_t *r = f->results;
    c->nctrl--;
    for (uint32_t i = 0; i < nr; i++)
        push(c, r[i], K_TEMP);
}

static void op_else(comp_t *c)
{
    ctrl_t *f = top_ctrl(c);
    if (f->kind != C_IF)
        fail(c, "else without if");
    for (uint32_t i = f->nresults; i-- > 0;)
        pop(c, f->results[i]);
    if (c->height != f->height)
        fail(c, "type mismatch: values remain on the stack at else");
    if (!f->unreachable) {
        c->height += f->nresults;
        materialize_from(c, f->height);
        c->height = f->height;
    }
    size_t inst = emit_op(c, OP_br, false);
    emit_word(c, 0);
    add_patch(c, f, inst, inst + 1);
    patch_here(c, f->if_inst, f->if_rel);
    seal(c);
    f->kind = C_ELSE;
    f->unreachable = false;
    c->height = f->height;
    for (uint32_t i = 0; i < f->nparams; i++)
        push(c, f->params[i], K_TEMP);
}

/* ---- Instructions with operands ---- */

static void unary(comp_t *c, int op, uint8_t in, uint8_t out)
{
    opnd_t a = pop(c, in);
    uint32_t sa = read_slot(c, &a);
    uint32_t d = push_temp(c, out);
    emit_op(c, op, true);
    emit_word(c, pack(d, sa));
}

static void binary(comp_t *c, int op, int op_imm, uint8_t in, uint8_t out)
{
    opnd_t b = pop(c, in);
    opnd_t a = pop(c, in);
    uint32_t sa = read_slot(c, &a);
    if (op_imm >= 0 && b.kind == K_CONST) {
        uint32_t d = push_temp(c, out);
        emit_op(c, op_imm, true);
        emit_word(c, pack(d, sa));
        emit_word(c, b.imm);
        return;
    }
    uint32_t sb = read_slot(c, &b);
    uint32_t d = push_temp(c, out);
    emit_op(c, op, true);
    emit_word(c, pack(d, sa));
    emit_word(c, sb);
}

/* A value the stack no longer needs changes type without any code. */
static void retype(comp_t *c, uint8_t in, uint8_t out)
{
    opnd_t a = pop(c, in);
    opnd_t *o = push(c, out, a.kind);
    o->local = a.local;
    o->imm = a.imm;
    if (a.kind == K_CONST && out == ENG_I32)
        o->imm = (uint32_t)a.imm;
}

static void load(comp_t *c, int op, uint8_t type, uint32_t natural)
{
    uint32_t off = read_memarg(c, natural);
    opnd_t a = pop(c, ENG_I32);
    uint32_t sa = read_slot(c, &a);
    uint32_t d = push_temp(c, type);
    emit_op(c, op, true);
    emit_word(c, pack(d, sa));
    emit_word(c, off);
}

static void store(comp_t *c, int op, uint8_t type, uint32_t natural)
{
    uint32_t off = read_memarg(c, natural);
    opnd_t v = pop(c, type);
    opnd_t a = pop(c, ENG_I32);
    uint32_t sa = read_slot(c, &a);
    uint32_t sv = read_slot(c, &v);
    emit_op(c, op, false);
    emit_word(c, pack(sa, sv));
    emit_word(c, off);
}

static void op_local_set(comp_t *c, bool tee)
{
    uint32_t x = rd_u32(&c->r);
    check_reader(c);
    if (x >= c->nlocals)
        fail(c, "unknown local");
    uint8_t t = c->local_types[x];
    uint32_t xs = c->local_slot[x];
    opnd_t v = pop(c, t);
    if (v.kind == K_LOCAL && v.local == xs) {
        if (tee)
            push(c, t, K_LOCAL)->local = xs;
        return;
    }
    if (v.kind == K_TEMP && c->last_dst_ok && (uint32_t)c->code[c->last_start + 1] == slot_pos(c, v.pos) &&
        !local_pending(c, xs) && v.pos == entry_pos(c, c->height)) {
        /* Retarget the instruction that produced v. */
        c->code[c->last_start + 1] = (c->code[c->last_start + 1] & ~(uint64_t)0xFFFFFFFF) | xs;
        c->last_dst_ok = false;
        if (tee)
            push(c, t, K_LOCAL)->local = xs;
        return;
    }
    materialize_local(c, xs);
    if (v.kind == K_CONST) {
        emit_const(c, xs, t, v.imm);
        if (tee) {
            opnd_t *o = push(c, t, K_CONST);
            o->imm = v.imm;
        }
        return;
    }
    uint32_t src = v.kind == K_LOCAL ? v.local : slot_pos(c, v.pos);
    emit_copy_typed(c, xs, src, t);
    c->last_dst_ok = false;
    if (tee) {
        if (v.kind == K_LOCAL)
            push(c, t, K_LOCAL)->local = v.local;
        else
            push(c, t, K_TEMP);
    }
}

static void op_call(comp_t *c, const eng_functype_t *ft, bool indirect, uint32_t a, uint32_t b)
{
    opnd_t idx = {0};
    if (indirect)
        idx = pop(c, ENG_I32);
    uint32_t np = ft->nparams;
    peek_types(c, ft->types, np);
    ctrl_t *f = top_ctrl(c);
    uint32_t avail = c->height - f->height;
    uint32_t base = avail >= np ? c->height - np : f->height;
    materialize_from(c, base);
    for (uint32_t i = np; i-- > 0;)
        pop(c, ft->types[i]);
    uint32_t base_pos = entry_pos(c, base);
    uint32_t argslot = slot_pos(c, base_pos);
    if (indirect) {
        uint32_t si = read_slot(c, &idx);
        emit_op(c, OP_call_indirect, false);
        emit_word(c, pack(a, argslot));
        emit_word(c, pack(b, si));
    } else {
        emit_op(c, OP_call, false);
        emit_word(c, pack(a, argslot));
    }
    c->height = base;
    for (uint32_t i = 0; i < ft->nresults; i++)
        push(c, eng_ft_result(ft, i), K_TEMP);
    /* the callee's frame starts at argslot and must hold its params */
    if (base_pos + ft->param_slots > c->max_slots)
        c->max_slots = base_pos + ft->param_slots;
}

static uint8_t read_reftype(comp_t *c)
{
    uint8_t t = rd_u8(&c->r);
    check_reader(c);
    if (!is_ref(t))
        fail(c, "malformed reference type");
    return t;
}

static uint32_t read_table(comp_t *c)
{
    uint32_t t = rd_u32(&c->r);
    check_reader(c);
    if (t >= c->m->ntables)
        fail(c, "unknown table");
    return t;
}

static void zero_byte(comp_t *c)
{
    uint8_t z = rd_u8(&c->r);
    check_reader(c);
    if (z != 0)
        fail(c, "zero byte expected");
}

/* Numeric instructions 0x45..0xC4: op, immediate variant, operand and result
 * types, and arity (1 unary, 2 binary, 0 retype only). */
typedef struct numop {
    int16_t op, op_imm;
    uint8_t in, out, arity;
} numop_t;

#define N1(o, t, r) {OP_##o, -1, ENG_##t, ENG_##r, 1}
#define N2(o, t, r) {OP_##o, -1, ENG_##t, ENG_##r, 2}
#define NI(o, t, r) {OP_##o, OP_##o##i, ENG_##t, ENG_##r, 2}
#define NR(t, r) {-1, -1, ENG_##t, ENG_##r, 0}

static const numop_t numops[0xC5 - 0x45] = {
    /* 0x45 */ N1(eqz32, I32, I32), NI(eq32, I32, I32), NI(ne32, I32, I32), NI(lts32, I32, I32),
    NI(ltu32, I32, I32), NI(gts32, I32, I32), NI(gtu32, I32, I32), NI(les32, I32, I32),
    NI(leu32, I32, I32), NI(ges32, I32, I32), NI(geu32, I32, I32),
    /* 0x50 */ N1(eqz64, I64, I32), N2(eq64, I64, I32), N2(ne64, I64, I32), N2(lts64, I64, I32),
    N2(ltu64, I64, I32), N2(gts64, I64, I32), N2(gtu64, I64, I32), N2(les64, I64, I32),
    N2(leu64, I64, I32), N2(ges64, I64, I32), N2(geu64, I64, I32),
    /* 0x5B */ N2(eqf32, F32, I32), N2(nef32, F32, I32), N2(ltf32, F32, I32), N2(gtf32, F32, I32),
    N2(lef32, F32, I32), N2(gef32, F32, I32),
    /* 0x61 */ N2(eqf64, F64, I32), N2(nef64, F64, I32), N2(ltf64, F64, I32), N2(gtf64, F64, I32),
    N2(lef64, F64, I32), N2(gef64, F64, I32),
    /* 0x67 */ N1(clz32, I32, I32), N1(ctz32, I32, I32), N1(popcnt32, I32, I32),
    NI(add32, I32, I32), NI(sub32, I32, I32), NI(mul32, I32, I32), N2(divs32, I32, I32),
    N2(divu32, I32, I32), N2(rems32, I32, I32), N2(remu32, I32, I32), NI(and32, I32, I32),
    NI(or32, I32, I32), NI(xor32, I32, I32), NI(shl32, I32, I32), NI(shrs32, I32, I32),
    NI(shru32, I32, I32), N2(rotl32, I32, I32), N2(rotr32, I32, I32),
    /* 0x79 */ N1(clz64, I64, I64), N1(ctz64, I64, I64), N1(popcnt64, I64, I64),
    NI(add64, I64, I64), NI(sub64, I64, I64), N2(mul64, I64, I64), N2(divs64, I64, I64),
    N2(divu64, I64, I64), N2(rems64, I64, I64), N2(remu64, I64, I64), NI(and64, I64, I64),
    NI(or64, I64, I64), NI(xor64, I64, I64), NI(shl64, I64, I64), NI(shrs64, I64, I64),
    NI(shru64, I64, I64), N2(rotl64, I64, I64), N2(rotr64, I64, I64),
    /* 0x8B */ N1(absf32, F32, F32), N1(negf32, F32, F32), N1(ceilf32, F32, F32),
    N1(floorf32, F32, F32), N1(truncf32, F32, F32), N1(nearestf32, F32, F32),
    N1(sqrtf32, F32, F32), N2(addf32, F32, F32), N2(subf32, F32, F32), N2(mulf32, F32, F32),
    N2(divf32, F32, F32), N2(minf32, F32, F32), N2(maxf32, F32, F32), N2(copysignf32, F32, F32),
    /* 0x99 */ N1(absf64, F64, F64), N1(negf64, F64, F64), N1(ceilf64, F64, F64),
    N1(floorf64, F64, F64), N1(truncf64, F64, F64), N1(nearestf64, F64, F64),
    N1(sqrtf64, F64, F64), N2(addf64, F64, F64), N2(subf64, F64, F64), N2(mulf64, F64, F64),
    N2(divf64, F64, F64), N2(minf64, F64, F64), N2(maxf64, F64, F64), N2(copysignf64, F64, F64),
    /* 0xA7 */ NR(I64, I32),
    N1(i32_trunc_f32_s, F32, I32), N1(i32_trunc_f32_u, F32, I32), N1(i32_trunc_f64_s, F64, I32),
    N1(i32_trunc_f64_u, F64, I32), N1(i64_extend_i32_s, I32, I64), N1(i64_extend_i32_u, I32, I64),
    N1(i64_trunc_f32_s, F32, I64), N1(i64_trunc_f32_u, F32, I64), N1(i64_trunc_f64_s, F64, I64),
    N1(i64_trunc_f64_u, F64, I64), N1(f32_convert_i32_s, I32, F32),
    N1(f32_convert_i32_u, I32, F32), N1(f32_convert_i64_s, I64, F32),
    N1(f32_convert_i64_u, I64, F32), N1(f32_demote_f64, F64, F32),
    N1(f64_convert_i32_s, I32, F64), N1(f64_convert_i32_u, I32, F64),
    N1(f64_convert_i64_s, I64, F64), N1(f64_convert_i64_u, I64, F64),
    N1(f64_promote_f32, F32, F64),
    /* 0xBC */ NR(F32, I32), NR(F64, I64), NR(I32, F32), NR(I64, F64),
    /* 0xC0 */ N1(i32_extend8_s, I32, I32), N1(i32_extend16_s, I32, I32),
    N1(i64_extend8_s, I64, I64), N1(i64_extend16_s, I64, I64), N1(i64_extend_i32_s, I64, I64),
};

static void op_prefixed(comp_t *c)
{
    eng_module_t *m = c->m;
    uint32_t sub = rd_u32(&c->r);
    check_reader(c);
    static const struct { int op; uint8_t in, out; } sat[8] = {
        {OP_i32_trunc_sat_f32_s, ENG_F32, ENG_I32}, {OP_i32_trunc_sat_f32_u, ENG_F32, ENG_I32},
        {OP_i32_trunc_sat_f64_s, ENG_F64, ENG_I32}, {OP_i32_trunc_sat_f64_u, ENG_F64, ENG_I32},
        {OP_i64_trunc_sat_f32_s, ENG_F32, ENG_I64}, {OP_i64_trunc_sat_f32_u, ENG_F32, ENG_I64},
        {OP_i64_trunc_sat_f64_s, ENG_F64, ENG_I64}, {OP_i64_trunc_sat_f64_u, ENG_F64, ENG_I64},
    };
    if (sub < 8) {
        unary(c, sat[sub].op, sat[sub].in, sat[sub].out);
        return;
    }
    switch (sub) {
    case 8: { /* memory.init */
        uint32_t seg = rd_u32(&c->r);
        check_reader(c);
        zero_byte(c);
        need_memory(c);
        if (!m->has_data_count)
            fail(c, "data count section required");
        if (seg >= m->data_count)
            fail(c, "unknown data segment");
        opnd_t n = pop(c, ENG_I32), s = pop(c, ENG_I32), d = pop(c, ENG_I32);
        uint32_t sd = read_slot(c, &d), ss = read_slot(c, &s), sn = read_slot(c, &n);
        emit_op(c, OP_mem_init, false);
        emit_word(c, pack(sd, ss));
        emit_word(c, pack(sn, seg));
        return;
    }
    case 9: { /* data.drop */
        uint32_t seg = rd_u32(&c->r);
        check_reader(c);
        if (!m->has_data_count)
            fail(c, "data count section required");
        if (seg >= m->data_count)
            fail(c, "unknown data segment");
        emit_op(c, OP_data_drop, false);
        emit_word(c, seg);
        return;
    }
    case 10: /* memory.copy */
    case 11: { /* memory.fill */
        zero_byte(c);
        if (sub == 10)
            zero_byte(c);
        need_memory(c);
        opnd_t n = pop(c, ENG_I32), s = pop(c, ENG_I32), d = pop(c, ENG_I32);
        uint32_t sd = read_slot(c, &d), ss = read_slot(c, &s), sn = read_slot(c, &n);
        emit_op(c, sub == 10 ? OP_mem_copy : OP_mem_fill, false);
        emit_word(c, pack(sd, ss));
        emit_word(c, sn);
        return;
    }
    case 12: { /* table.init elem table */
        uint32_t seg = rd_u32(&c->r);
        check_reader(c);
        uint32_t t = read_table(c);
        if (seg >= m->nelems)
            fail(c, "unknown elem segment");
        if (m->elems[seg].type != m->tables[t].elem)
            fail(c, "type mismatch: element segment and table types differ");
        opnd_t n = pop(c, ENG_I32), s = pop(c, ENG_I32), d = pop(c, ENG_I32);
        uint32_t sd = read_slot(c, &d), ss = read_slot(c, &s), sn = read_slot(c, &n);
        emit_op(c, OP_tbl_init, false);
        emit_word(c, pack(sd, ss));
        emit_word(c, pack(sn, seg));
        emit_word(c, t);
        return;
    }
    case 13: { /* elem.drop */
        uint32_t seg = rd_u32(&c->r);
        check_reader(c);
        if (seg >= m->nelems)
            fail(c, "unknown elem segment");
        emit_op(c, OP_elem_drop, false);
        emit_word(c, seg);
        return;
    }
    case 14: { /* table.copy dst src */
        uint32_t td = read_table(c);
        uint32_t ts = read_table(c);
        if (m->tables[td].elem != m->tables[ts].elem)
            fail(c, "type mismatch: tables of different element types");
        opnd_t n = pop(c, ENG_I32), s = pop(c, ENG_I32), d = pop(c, ENG_I32);
        uint32_t sd = read_slot(c, &d), ss = read_slot(c, &s), sn = read_slot(c, &n);
        emit_op(c, OP_tbl_copy, false);
        emit_word(c, pack(sd, ss));
        emit_word(c, sn);
        emit_word(c, pack(td, ts));
        return;
    }
    case 15: { /* table.grow */
        uint32_t t = read_table(c);
        opnd_t n = pop(c, ENG_I32);
        opnd_t init = pop(c, m->tables[t].elem);
        uint32_t si = read_slot(c, &init), sn = read_slot(c, &n);
        uint32_t d = push_temp(c, ENG_I32);
        emit_op(c, OP_tbl_grow, false);
        emit_word(c, pack(d, si));
        emit_word(c, pack(sn, t));
        return;
    }
    case 16: { /* table.size */
        uint32_t t = read_table(c);
        uint32_t d = push_temp(c, ENG_I32);
        emit_op(c, OP_tbl_size, true);
        emit_word(c, pack(d, t));
        return;
    }
    case 17: { /* table.fill */
        uint32_t t = read_table(c);
        opnd_t n = pop(c, ENG_I32);
        opnd_t v = pop(c, m->tables[t].elem);
        opnd_t i = pop(c, ENG_I32);
        uint32_t si = read_slot(c, &i), sv = read_slot(c, &v), sn = read_slot(c, &n);
        emit_op(c, OP_tbl_fill, false);
        emit_word(c, pack(si, sv));
        emit_word(c, pack(sn, t));
        return;
    }
    default:
        fail(c, "unknown opcode 0xfc");
    }
}

static void compile_body(comp_t *c, const eng_functype_t *ft)
{
    eng_module_t *m = c->m;
    eng_reader_t *r = &c->r;
    push_ctrl(c, C_FUNC, 0, NULL, ft->nresults, ft->types + ft->nparams);

    while (c->nctrl > 0) {
        if (rd_eof(r))
            fail(c, "unexpected end of function body (END opcode expected)");
        uint8_t opc = rd_u8(r);
        switch (opc) {
        case 0x00: /* unreachable */
            emit_op(c, OP_unreachable, false);
            set_unreachable(c);
            break;
        case 0x01: /* nop */
            break;
        case 0x02: /* block */
        case 0x03: /* loop */ {
            uint32_t np, nr;
            const uint8_t *p, *rs;
            read_blocktype(c, &np, &p, &nr, &rs);
            ctrl_t *f = enter_block(c, opc == 0x02 ? C_BLOCK : C_LOOP, np, p, nr, rs);
            seal(c);
            f->loop_pc = c->len;
            break;
        }
        case 0x04: { /* if */
            uint32_t np, nr;
            const uint8_t *p, *rs;
            read_blocktype(c, &np, &p, &nr, &rs);
            opnd_t cond = pop(c, ENG_I32);
            cut_cmp_t cut = cut_condition(c, &cond);
            /* cond's own slot is above every value we materialise now, and
             * a cut comparison only reads slots at or above it or locals;
             * materialising never writes locals. So moving the comparison
             * after these copies is safe. */
            ctrl_t *f = enter_block(c, C_IF, np, p, nr, rs);
            size_t rel;
            f->if_inst = emit_cond_jump(c, &cond, &cut, false, &rel);
            f->if_rel = rel;
            break;
        }
        case 0x05:
            op_else(c);
            break;
        case 0x0B:
            op_end(c);
            break;
        case 0x0C: { /* br */
            uint32_t l = read_label(c);
            ctrl_t *f = &c->ctrls[c->nctrl - 1 - l];
            peek_types(c, label_types(f), label_arity(f));
            emit_branch(c, l);
            set_unreachable(c);
            break;
        }
        case 0x0D:
            op_br_if(c);
            break;
        case 0x0E:
            op_br_table(c);
            break;
        case 0x0F: /* return */
            peek_types(c, ft->types + ft->nparams, ft->nresults);
            emit_return(c, ft->nresults);
            set_unreachable(c);
            break;
        case 0x10: { /* call */
            uint32_t fi = rd_u32(r);
            check_reader(c);
            if (fi >= m->nfuncs)
                fail(c, "unknown function");
            op_call(c, &m->types[m->func_type[fi]], false, fi, 0);
            break;
        }
        case 0x11: { /* call_indirect */
            uint32_t ti = rd_u32(r);
            check_reader(c);
            uint32_t tab = read_table(c);
            if (ti >= m->ntypes)
                fail(c, "unknown type");
            if (m->tables[tab].elem != ENG_FUNCREF)
                fail(c, "type mismatch: call_indirect through a table of externref");
            op_call(c, &m->types[ti], true, ti, tab);
            break;
        }
        case 0x1A: /* drop */
            pop(c, T_ANY);
            break;
        case 0x1B: /* select */
        case 0x1C: { /* select t */
            uint8_t t = T_ANY;
            if (opc == 0x1C) {
                uint32_t n = rd_u32(r);
                check_reader(c);
                if (n != 1)
                    fail(c, "invalid result arity for select");
                t = rd_u8(r);
                check_reader(c);
                if (!is_num(t) && !is_ref(t) && t != ENG_V128)
                    fail(c, "malformed value type");
            }
            opnd_t cond = pop(c, ENG_I32);
            opnd_t b = pop(c, t);
            opnd_t a = pop(c, t);
            if (opc == 0x1B) {
                if (a.type != T_ANY && b.type != T_ANY && a.type != b.type)
                    fail(c, "type mismatch in select");
                t = a.type != T_ANY ? a.type : b.type;
                if (t != T_ANY && !is_num(t) && t != ENG_V128)
                    fail(c, "type mismatch: select without a type needs numeric operands");
            }
            uint32_t sa = read_slot(c, &a), sb = read_slot(c, &b), sc = read_slot(c, &cond);
            uint32_t d = push_temp(c, t);
            emit_op(c, t == ENG_V128 ? OP_select128 : OP_select, true);
            emit_word(c, pack(d, sc));
            emit_word(c, pack(sa, sb));
            break;
        }
        case 0x20: { /* local.get */
            uint32_t x = rd_u32(r);
            check_reader(c);
            if (x >= c->nlocals)
                fail(c, "unknown local");
            push(c, c->local_types[x], K_LOCAL)->local = c->local_slot[x];
            break;
        }
        case 0x21:
            op_local_set(c, false);
            break;
        case 0x22:
            op_local_set(c, true);
            break;
        case 0x23: { /* global.get */
            uint32_t g = rd_u32(r);
            check_reader(c);
            if (g >= m->nglobals)
                fail(c, "unknown global");
            uint32_t d = push_temp(c, m->globals[g].type);
            emit_op(c, m->globals[g].type == ENG_V128 ? OP_global_get128 : OP_global_get, true);
            emit_word(c, pack(d, g));
            break;
        }
        case 0x24: { /* global.set */
            uint32_t g = rd_u32(r);
            check_reader(c);
            if (g >= m->nglobals)
                fail(c, "unknown global");
            if (!m->globals[g].mut)
                fail(c, "global is immutable");
            opnd_t v = pop(c, m->globals[g].type);
            uint32_t s = read_slot(c, &v);
            emit_op(c, m->globals[g].type == ENG_V128 ? OP_global_set128 : OP_global_set, false);
            emit_word(c, pack(g, s));
            break;
        }
        case 0x25: { /* table.get */
            uint32_t t = read_table(c);
            opnd_t i = pop(c, ENG_I32);
            uint32_t si = read_slot(c, &i);
            uint32_t d = push_temp(c, m->tables[t].elem);
            emit_op(c, OP_tbl_get, true);
            emit_word(c, pack(d, si));
            emit_word(c, t);
            break;
        }
        case 0x26: { /* table.set */
            uint32_t t = read_table(c);
            opnd_t v = pop(c, m->tables[t].elem);
            opnd_t i = pop(c, ENG_I32);
            uint32_t si = read_slot(c, &i), sv = read_slot(c, &v);
            emit_op(c, OP_tbl_set, false);
            emit_word(c, pack(si, sv));
            emit_word(c, t);
            break;
        }
        case 0x28: load(c, OP_ld32u, ENG_I32, 2); break;
        case 0x29: load(c, OP_ld64, ENG_I64, 3); break;
        case 0x2A: load(c, OP_ld32u, ENG_F32, 2); break;
        case 0x2B: load(c, OP_ld64, ENG_F64, 3); break;
        case 0x2C: load(c, OP_ld8s, ENG_I32, 0); break;
        case 0x2D: load(c, OP_ld8u, ENG_I32, 0); break;
        case 0x2E: load(c, OP_ld16s, ENG_I32, 1); break;
        case 0x2F: load(c, OP_ld16u, ENG_I32, 1); break;
        case 0x30: load(c, OP_ld8s, ENG_I64, 0); break;
        case 0x31: load(c, OP_ld8u, ENG_I64, 0); break;
        case 0x32: load(c, OP_ld16s, ENG_I64, 1); break;
        case 0x33: load(c, OP_ld16u, ENG_I64, 1); break;
        case 0x34: load(c, OP_ld32s, ENG_I64, 2); break;
        case 0x35: load(c, OP_ld32u, ENG_I64, 2); break;
        case 0x36: store(c, OP_st32, ENG_I32, 2); break;
        case 0x37: store(c, OP_st64, ENG_I64, 3); break;
        case 0x38: store(c, OP_st32, ENG_F32, 2); break;
        case 0x39: store(c, OP_st64, ENG_F64, 3); break;
        case 0x3A: store(c, OP_st8, ENG_I32, 0); break;
        case 0x3B: store(c, OP_st16, ENG_I32, 1); break;
        case 0x3C: store(c, OP_st8, ENG_I64, 0); break;
        case 0x3D: store(c, OP_st16, ENG_I64, 1); break;
        case 0x3E: store(c, OP_st32, ENG_I64, 2); break;
        case 0x3F: { /* memory.size */
            zero_byte(c);
            need_memory(c);
            uint32_t d = push_temp(c, ENG_I32);
            emit_op(c, OP_mem_size, true);
            emit_word(c, d);
            break;
        }
        case 0x40: { /* memory.grow */
            zero_byte(c);
            need_memory(c);
            opnd_t n = pop(c, ENG_I32);
            uint32_t sn = read_slot(c, &n);
            uint32_t d = push_temp(c, ENG_I32);
            emit_op(c, OP_mem_grow, false);
            emit_word(c, pack(d, sn));
            break;
        }
        case 0x41: { /* i32.const */
            int32_t v = rd_s32(r);
            check_reader(c);
            push(c, ENG_I32, K_CONST)->imm = (uint32_t)v;
            break;
        }
        case 0x42: { /* i64.const */
            int64_t v = rd_s64(r);
            check_reader(c);
            push(c, ENG_I64, K_CONST)->imm = (uint64_t)v;
            break;
        }
        case 0x43: { /* f32.const */
            uint32_t v = rd_fixed32(r);
            check_reader(c);
            push(c, ENG_F32, K_CONST)->imm = v;
            break;
        }
        case 0x44: { /* f64.const */
            uint64_t v = rd_fixed64(r);
            check_reader(c);
            push(c, ENG_F64, K_CONST)->imm = v;
            break;
        }
        case 0xD0: { /* ref.null t */
            uint8_t t = read_reftype(c);
            push(c, t, K_CONST)->imm = 0;
            break;
        }
        case 0xD1: { /* ref.is_null */
            opnd_t a = pop(c, T_ANY);
            if (a.type != T_ANY && !is_ref(a.type))
                fail(c, "type mismatch: ref.is_null needs a reference");
            uint32_t sa = read_slot(c, &a);
            uint32_t d = push_temp(c, ENG_I32);
            emit_op(c, OP_ref_is_null, true);
            emit_word(c, pack(d, sa));
            break;
        }
        case 0xD2: { /* ref.func */
            uint32_t fi = rd_u32(r);
            check_reader(c);
            if (fi >= m->nfuncs)
                fail(c, "unknown function");
            if (!m->func_declared || !m->func_declared[fi])
                fail(c, "undeclared function reference");
            uint32_t d = push_temp(c, ENG_FUNCREF);
            emit_op(c, OP_ref_func, true);
            emit_word(c, pack(d, fi));
            break;
        }
        case 0xFC:
            op_prefixed(c);
            break;
        case 0xFD:
            eng_compile_simd(c);
            break;
        default:
            if (opc >= 0x45 && opc <= 0xC4) {
                const numop_t *n = &numops[opc - 0x45];
                if (n->arity == 0)
                    retype(c, n->in, n->out);
                else if (n->arity == 1)
                    unary(c, n->op, n->in, n->out);
                else
                    binary(c, n->op, n->op_imm, n->in, n->out);
                break;
            }
            c->r.p--;
            {
                char msg[64];
                snprintf(msg, sizeof msg, "unknown opcode 0x%02x", opc);
                eng_errf(c->err, c->errlen, "at byte 0x%zx (code section, function %u): %s",
                         rd_offset(&c->r), c->func_index, msg);
                longjmp(c->fail, 1);
            }
        }
    }
    if (!rd_eof(r))
        fail(c, "section size mismatch: bytes after the function's final end");
}

bool eng_compile_func(eng_module_t *m, uint32_t defined_index, const uint8_t *body, size_t len,
                      size_t offset, char *err, size_t errlen)
{
    comp_t *c = calloc(1, sizeof *c);
    if (!c)
        return eng_errf(err, errlen, "out of memory");
    c->m = m;
    c->err = err;
    c->errlen = errlen;
    c->func_index = m->nfunc_imports + defined_index;
    c->h = eng_interp_handlers();
    c->last_op = -1;
    rd_init(&c->r, body, len, offset);
    eng_code_func_t *cf = &m->code[defined_index];
    uint32_t ti = m->func_type[c->func_index];
    const eng_functype_t *ft = &m->types[ti];
    bool ok = false;

    if (setjmp(c->fail) == 0) {
        /* Locals: params first, then the declared groups. */
        uint32_t ngroups = rd_u32(&c->r);
        check_reader(c);
        uint64_t total = ft->nparams;
        const uint8_t *groups = c->r.p;
        for (uint32_t i = 0; i < ngroups; i++) {
            uint32_t n = rd_u32(&c->r);
            rd_u8(&c->r);
            check_reader(c);
            total += n;
            if (total > ENG_MAX_LOCALS)
                fail(c, "too many locals");
        }
        c->nlocals = (uint32_t)total;
        c->local_types = malloc(total ? total : 1);
        c->local_slot = malloc((total ? total : 1) * sizeof *c->local_slot);
        if (!c->local_types || !c->local_slot)
            fail(c, "out of memory");
        if (ft->nparams)
            memcpy(c->local_types, ft->types, ft->nparams);
        eng_reader_t again;
        rd_init(&again, groups, (size_t)(c->r.p - groups), 0);
        uint32_t k = ft->nparams;
        for (uint32_t i = 0; i < ngroups; i++) {
            uint32_t n = rd_u32(&again);
            uint8_t t = rd_u8(&again);
            if (!is_num(t) && !is_ref(t) && t != ENG_V128)
                fail(c, "malformed value type");
            memset(c->local_types + k, t, n);
            k += n;
        }
        uint32_t slots = 0;
        for (uint32_t i = 0; i < c->nlocals; i++) {
            c->local_slot[i] = slots;
            slots += eng_type_slots(c->local_types[i]);
        }
        c->nlocal_slots = slots;
        compile_body(c, ft);
        cf->type_index = ti;
        cf->nlocals = c->nlocal_slots;
        cf->param_slots = ft->param_slots;
        cf->frame_slots = c->nlocal_slots + c->max_slots;
        cf->code = c->code;
        cf->code_len = c->len;
        cf->body_offset = (uint32_t)offset;
        c->code = NULL;
        ok = true;
    }
    free(c->code);
    free(c->local_types);
    free(c->local_slot);
    free(c->stack);
    free(c->ctrls);
    free(c->patches);
    free(c->labels);
    free(c->stubs);
    free(c->saved);
    free(c);
    return ok;
}

void eng_code_func_free(eng_code_func_t *cf)
{
    free(cf->code);
    cf->code = NULL;
}
