/*
 * native_loop.c — counted loops in the native tier.
 *
 * Every loop header counts one fuel event per iteration (native_ir.h,
 * fuel_check), and in guard mode every access is volatile so that an out
 * of bounds one faults where the interpreter traps (native_ir.c). Both
 * are right for any loop and both cost an innermost loop dearly: the
 * count is a decrement and a branch to a call, and the two together stop
 * LLVM from vectorising it (the loop vectoriser takes neither a call in
 * the loop nor a volatile access).
 *
 * An innermost loop whose body is straight-line code (no blocks, calls or
 * memory.grow; branches out are fine) and ends in `br_if 0` on a compare
 * of one local, stepped each iteration by a constant (or, for an ordered
 * compare, by locals the loop does not change: sieve's j += i), with a
 * value the loop does not change, runs a number of iterations the code
 * can bound when it enters: a *counted loop*. Such a loop is run in
 * chunks:
 *
 *   - at each chunk's start, a lower bound of the iterations left is
 *     computed from the local and the limit, and the chunk is the smaller
 *     of it and `bound` (at most 65,536, less for a longer body, so a
 *     chunk runs well under a millisecond);
 *   - the chunk's fuel is counted at once, before it: interruption and
 *     deadlines behave as before, polled as often for the same work;
 *   - the copy of the body that runs the chunk (the *fast copy*) counts
 *     no fuel; its latch counts iterations up to the chunk's size, then
 *     evaluates the loop's own condition to start another chunk or leave.
 *
 * When moreover every memory access's address is an affine form of the
 * locals (c + sum(coef * local), each local either unchanged by the loop
 * or stepped by such a form of unchanged locals), and the loop is one
 * LLVM could vectorise (no other exit, no trap, no float reduction), the
 * chunk's set-up checks the whole range each access will touch against
 * the memory's size. When all are inside, the fast copy's accesses are
 * plain loads and stores at start + k * stride (k the iteration in the
 * chunk, in 64 bits: the check proved that the 32-bit address does not
 * wrap), which cannot fault: LLVM may reorder, delete and vectorise them.
 * When one is not, or fewer than NL_MIN_FAST iterations are left, the
 * rest of the loop runs the ordinary copy, translated a second time, which
 * counts fuel per iteration and faults or checks at the very access the
 * interpreter traps at.
 *
 * nl_analyse() walks the body twice without translating it: once for the
 * locals it writes, once as an abstract interpreter whose values are
 * affine forms (or unknown). A form reads each local as it was at the
 * start of the iteration; a local the body reads before writing it is
 * loop-carried, and must end the iteration as itself plus a form of
 * unchanged locals (an induction variable) for a form that uses it to
 * count.
 */
#include "engine/native_loop.h"

#include <llvm-c/DebugInfo.h>
#include <string.h>

/* ---- Affine forms ---- */

typedef struct {
    bool known;             /* an i32 in affine form; otherwise unknown */
    bool cmp;               /* a compare of form and rhs (pred) */
    uint8_t pred;
    nl_form_t form, rhs;
} aval_t;

static const nl_form_t form_zero;

static bool form_add_term(nl_form_t *a, uint32_t local, uint32_t coef)
{
    for (uint8_t i = 0; i < a->n; i++)
        if (a->local[i] == local) {
            a->coef[i] += coef;
            if (a->coef[i] == 0) {
                a->n--;
                a->local[i] = a->local[a->n];
                a->coef[i] = a->coef[a->n];
            }
            return true;
        }
    if (coef == 0)
        return true;
    if (a->n == NL_TERMS)
        return false;
    a->local[a->n] = local;
    a->coef[a->n++] = coef;
    return true;
}

/* a + mul * b */
static bool form_add(nl_form_t *a, const nl_form_t *b, uint32_t mul)
{
    a->c += mul * b->c;
    for (uint8_t i = 0; i < b->n; i++)
        if (!form_add_term(a, b->local[i], mul * b->coef[i]))
            return false;
    return true;
}

static void form_scale(nl_form_t *a, uint32_t k)
{
    a->c *= k;
    nl_form_t s = *a;
    a->n = 0;
    for (uint8_t i = 0; i < s.n; i++)
        form_add_term(a, s.local[i], k * s.coef[i]);
}

/* Whether two forms have the same locals with the same coefficients. */
static bool same_terms(const nl_form_t *a, const nl_form_t *b)
{
    if (a->n != b->n)
        return false;
    for (uint8_t i = 0; i < a->n; i++) {
        bool found = false;
        for (uint8_t j = 0; j < b->n; j++)
            found |= a->local[i] == b->local[j] && a->coef[i] == b->coef[j];
        if (!found)
            return false;
    }
    return true;
}

static bool same_form(const nl_form_t *a, const nl_form_t *b) { return a->c == b->c && same_terms(a, b); }

/* ---- The analysis ---- */

typedef struct {
    fx_t *f;
    eng_reader_t r;
    uint32_t nwritten;
    uint32_t written[NL_MAX_WRITTEN];
    bool set[NL_MAX_WRITTEN];       /* written already in this iteration */
    bool carried[NL_MAX_WRITTEN];   /* read before written: loop-carried */
    nl_form_t value[NL_MAX_WRITTEN];
    bool value_known[NL_MAX_WRITTEN];
    nl_form_t step[NL_MAX_WRITTEN]; /* carried and stepped by an invariant form */
    bool stepped[NL_MAX_WRITTEN];
    aval_t *stack;
    uint32_t sp, scap;
    bool unvectorisable;            /* an exit, a trap, a float carried along */
} an_t;

static int written_index(const an_t *a, uint32_t local)
{
    for (uint32_t i = 0; i < a->nwritten; i++)
        if (a->written[i] == local)
            return (int)i;
    return -1;
}

static bool an_push(an_t *a, aval_t v)
{
    if (a->sp == a->scap)
        return false;
    a->stack[a->sp++] = v;
    return true;
}

static bool an_pop(an_t *a, aval_t *v)
{
    if (a->sp == 0)
        return false;
    *v = a->stack[--a->sp];
    return true;
}

static aval_t unknown(void) { return (aval_t){0}; }

static aval_t known(nl_form_t form) { return (aval_t){.known = true, .form = form}; }

static uint32_t load_size(uint8_t opc)
{
    static const uint8_t size[] = {4, 8, 4, 8, 1, 1, 2, 2, 1, 1, 2, 2, 4, 4, /* stores: */
                                   4, 8, 4, 8, 1, 2, 1, 2, 4};
    return size[opc - 0x28];
}

/* The immediates of the instructions a counted loop may hold; false for
 * any other instruction (or a truncated one). */
static bool skip_allowed(eng_reader_t *r, uint8_t opc)
{
    switch (opc) {
    case 0x01: case 0x1A: case 0x1B:
        break;
    case 0x0D: case 0x20: case 0x21: case 0x22: case 0x23: case 0x24:
        rd_u32(r);
        break;
    case 0x1C: {
        uint32_t n = rd_u32(r);
        if (n > rd_left(r))
            return false;
        rd_bytes(r, n);
        break;
    }
    case 0x3F: rd_u8(r); break;
    case 0x41: rd_s32(r); break;
    case 0x42: rd_s64(r); break;
    case 0x43: rd_fixed32(r); break;
    case 0x44: rd_fixed64(r); break;
    case 0xFC:
        if (rd_u32(r) > 7) /* only the saturating truncations */
            return false;
        break;
    default:
        if (opc >= 0x28 && opc <= 0x3E) {
            rd_u32(r);
            rd_u32(r);
        } else if (!(opc >= 0x45 && opc <= 0xC4)) {
            return false;
        }
        break;
    }
    return rd_ok(r);
}

/* Pass 1: the body is straight-line code of allowed instructions whose
 * only branch back is a br_if 0 just before its end; collects the locals
 * it writes. Leaves a->r after the end. */
static bool scan_body(an_t *a)
{
    bool last_was_back = false;
    for (;;) {
        if (rd_eof(&a->r) || (size_t)(a->r.p - a->f->r.p) > NL_MAX_BODY)
            return false;
        uint8_t opc = rd_u8(&a->r);
        if (opc == 0x0B)
            return last_was_back;
        last_was_back = false;
        eng_reader_t at = a->r;
        if (!skip_allowed(&a->r, opc))
            return false;
        if (opc == 0x0D) {
            uint32_t depth = rd_u32(&at);
            if (depth == 0) {
                if (rd_eof(&a->r) || *a->r.p != 0x0B)
                    return false;
                last_was_back = true;
            }
        } else if (opc == 0x21 || opc == 0x22) {
            uint32_t l = rd_u32(&at);
            if (l >= a->f->nlocals)
                return false;
            if (written_index(a, l) < 0) {
                if (a->nwritten == NL_MAX_WRITTEN)
                    return false;
                a->written[a->nwritten++] = l;
            }
        }
    }
}

static aval_t read_local(an_t *a, uint32_t l)
{
    int w = written_index(a, l);
    uint8_t t = a->f->ltypes[l];
    if (w >= 0 && !a->set[w] && (t == ENG_F32 || t == ENG_F64))
        a->unvectorisable = true; /* a float reduction: LLVM keeps its order */
    if (t != ENG_I32)
        return unknown();
    if (w >= 0 && a->set[w])
        return a->value_known[w] ? known(a->value[w]) : unknown();
    if (w >= 0)
        a->carried[w] = true;
    nl_form_t v = form_zero;
    form_add_term(&v, l, 1);
    return known(v);
}

static void write_local(an_t *a, uint32_t l, const aval_t *v)
{
    int w = written_index(a, l);
    a->set[w] = true;
    a->value_known[w] = v->known && !v->cmp;
    a->value[w] = v->form;
}

static void record_access(nl_loop_t *lp, const aval_t *addr, uint32_t offset,
                          uint32_t size, bool store)
{
    if (!addr->known || addr->cmp || lp->nacc == NL_MAX_ACCESS) {
        lp->affine = false;
        return;
    }
    nl_access_t *acc = &lp->acc[lp->nacc++];
    acc->addr = addr->form;
    acc->offset = offset;
    acc->size = size;
    acc->store = store;
}

/* i32 arithmetic on forms; anything else gives an unknown value. */
static aval_t arith(uint8_t opc, const aval_t *x, const aval_t *y)
{
    if (!x->known || !y->known || x->cmp || y->cmp)
        return unknown();
    nl_form_t r = x->form;
    switch (opc) {
    case 0x6A: /* add */
        return form_add(&r, &y->form, 1) ? known(r) : unknown();
    case 0x6B: /* sub */
        return form_add(&r, &y->form, UINT32_MAX) ? known(r) : unknown();
    case 0x6C: /* mul by a constant */
        if (y->form.n == 0) {
            form_scale(&r, y->form.c);
            return known(r);
        }
        if (x->form.n == 0) {
            r = y->form;
            form_scale(&r, x->form.c);
            return known(r);
        }
        return unknown();
    case 0x74: /* shl by a constant */
        if (y->form.n != 0)
            return unknown();
        form_scale(&r, 1u << (y->form.c & 31));
        return known(r);
    default:
        return unknown();
    }
}

/* i32 compares, as predicates of x against y; eq and the rest: none. */
static int cmp_pred(uint8_t opc)
{
    switch (opc) {
    case 0x47: return NL_NE;
    case 0x48: return NL_LTS;
    case 0x49: return NL_LTU;
    case 0x4A: return NL_GTS;
    case 0x4B: return NL_GTU;
    case 0x4C: return NL_LES;
    case 0x4D: return NL_LEU;
    case 0x4E: return NL_GES;
    case 0x4F: return NL_GEU;
    default: return -1;
    }
}

/* pred(x, y) as pred'(y, x). */
static uint8_t flip(uint8_t p)
{
    static const uint8_t flipped[] = {
        [NL_NE] = NL_NE, [NL_LTU] = NL_GTU, [NL_LTS] = NL_GTS, [NL_LEU] = NL_GEU, [NL_LES] = NL_GES,
        [NL_GTU] = NL_LTU, [NL_GTS] = NL_LTS, [NL_GEU] = NL_LEU, [NL_GES] = NL_LES};
    return flipped[p];
}

/* Pass 2: the abstract interpretation. Leaves the latch's condition in
 * *cond. */
static bool interpret(an_t *a, nl_loop_t *lp, aval_t *cond)
{
    eng_reader_t *r = &a->r;
    for (;;) {
        uint8_t opc = rd_u8(r);
        aval_t x, y, z;
        switch (opc) {
        case 0x0B:
            return false; /* scan_body saw the br_if 0 first */
        case 0x01:
            break;
        case 0x0D: {
            uint32_t depth = rd_u32(r);
            if (!an_pop(a, &x))
                return false;
            if (depth == 0) {
                *cond = x;
                return a->sp == 0;
            }
            a->unvectorisable = true; /* a loop with two exits */
            break;
        }
        case 0x1A:
            if (!an_pop(a, &x))
                return false;
            break;
        case 0x1B: case 0x1C:
            if (opc == 0x1C)
                rd_bytes(r, rd_u32(r));
            if (!an_pop(a, &x) || !an_pop(a, &y) || !an_pop(a, &z) || !an_push(a, unknown()))
                return false;
            break;
        case 0x20: {
            uint32_t l = rd_u32(r);
            if (l >= a->f->nlocals || !an_push(a, read_local(a, l)))
                return false;
            break;
        }
        case 0x21: case 0x22: {
            uint32_t l = rd_u32(r);
            if (!an_pop(a, &x))
                return false;
            write_local(a, l, &x);
            if (opc == 0x22 && !an_push(a, x))
                return false;
            break;
        }
        case 0x23:
            rd_u32(r);
            if (!an_push(a, unknown()))
                return false;
            break;
        case 0x24:
            rd_u32(r);
            if (!an_pop(a, &x))
                return false;
            break;
        case 0x3F:
            rd_u8(r);
            if (!an_push(a, unknown()))
                return false;
            break;
        case 0x41: {
            nl_form_t c = form_zero;
            c.c = (uint32_t)rd_s32(r);
            if (!an_push(a, known(c)))
                return false;
            break;
        }
        case 0x42: rd_s64(r); if (!an_push(a, unknown())) return false; break;
        case 0x43: rd_fixed32(r); if (!an_push(a, unknown())) return false; break;
        case 0x44: rd_fixed64(r); if (!an_push(a, unknown())) return false; break;
        case 0xFC:
            rd_u32(r);
            if (!an_pop(a, &x) || !an_push(a, unknown()))
                return false;
            break;
        default:
            if (opc >= 0x28 && opc <= 0x35) {
                rd_u32(r);
                uint32_t off = rd_u32(r);
                if (!an_pop(a, &x) || !an_push(a, unknown()))
                    return false;
                record_access(lp, &x, off, load_size(opc), false);
            } else if (opc >= 0x36 && opc <= 0x3E) {
                rd_u32(r);
                uint32_t off = rd_u32(r);
                if (!an_pop(a, &y) || !an_pop(a, &x))
                    return false;
                record_access(lp, &x, off, load_size(opc), true);
            } else if ((opc >= 0x6D && opc <= 0x70) || (opc >= 0x7F && opc <= 0x82) ||
                       (opc >= 0xA8 && opc <= 0xAB) || (opc >= 0xAE && opc <= 0xB1)) {
                /* division and conversions that may trap: a branch out */
                a->unvectorisable = true;
                if (opc >= 0xA8) {
                    if (!an_pop(a, &x) || !an_push(a, unknown()))
                        return false;
                } else if (!an_pop(a, &y) || !an_pop(a, &x) || !an_push(a, unknown())) {
                    return false;
                }
            } else if (opc == 0x45 || opc == 0x50 || (opc >= 0x67 && opc <= 0x69) ||
                       (opc >= 0x79 && opc <= 0x7B) || (opc >= 0x8B && opc <= 0x91) ||
                       (opc >= 0x99 && opc <= 0x9F) || opc >= 0xA7) {
                if (!an_pop(a, &x) || !an_push(a, unknown()))
                    return false;
            } else {
                if (!an_pop(a, &y) || !an_pop(a, &x))
                    return false;
                int p = cmp_pred(opc);
                aval_t v = unknown();
                if (p >= 0 && x.known && y.known && !x.cmp && !y.cmp)
                    v = (aval_t){.known = true, .cmp = true, .pred = (uint8_t)p, .form = x.form,
                                 .rhs = y.form};
                else
                    v = arith(opc, &x, &y);
                if (!an_push(a, v))
                    return false;
            }
            break;
        }
        if (!rd_ok(r))
            return false;
    }
}

/* Whether every local of the form is unchanged by the loop or stepped by
 * an invariant form; *per_iter is what one iteration adds to the form (a
 * form of locals the loop does not change). */
static bool form_moves(const an_t *a, const nl_form_t *form, nl_form_t *per_iter)
{
    *per_iter = form_zero;
    for (uint8_t i = 0; i < form->n; i++) {
        int w = written_index(a, form->local[i]);
        if (w < 0)
            continue;
        if (!a->stepped[w] || !form_add(per_iter, &a->step[w], form->coef[i]))
            return false;
    }
    return true;
}

/* Whether the form reads no local the loop writes. */
static bool invariant(const an_t *a, const nl_form_t *form)
{
    for (uint8_t i = 0; i < form->n; i++)
        if (written_index(a, form->local[i]) >= 0)
            return false;
    return true;
}

bool nl_analyse(fx_t *f, nl_loop_t *lp)
{
    memset(lp, 0, sizeof *lp);
    lp->body = f->r;
    lp->affine = true;
    aval_t stack[64];
    an_t a = {.f = f, .r = f->r, .stack = stack, .scap = 64};
    if (!scan_body(&a))
        return false;
    size_t len = (size_t)(a.r.p - f->r.p);
    a.r = f->r;
    aval_t cond = unknown();
    if (!interpret(&a, lp, &cond) || !cond.known)
        return false;

    /* Which carried locals are induction variables. */
    for (uint32_t i = 0; i < a.nwritten; i++) {
        if (!a.carried[i] || !a.value_known[i])
            continue;
        nl_form_t step = a.value[i];
        if (form_add_term(&step, a.written[i], UINT32_MAX) && invariant(&a, &step)) {
            a.stepped[i] = true;
            a.step[i] = step;
        }
    }

    /* The latch: pred(iv + step, limit), the limit unchanged by the loop. */
    nl_form_t lhs = cond.form, rhs = form_zero;
    uint8_t pred = NL_NE;
    if (cond.cmp) {
        rhs = cond.rhs;
        pred = cond.pred;
    }
    if (!invariant(&a, &rhs)) {
        nl_form_t t = lhs;
        lhs = rhs;
        rhs = t;
        pred = flip(pred);
        if (!invariant(&a, &rhs))
            return false;
    }
    /* The compared value must be iv + step: what the iteration leaves in
     * an induction variable. */
    int w = -1;
    for (uint8_t i = 0; i < lhs.n && w < 0; i++) {
        int c = written_index(&a, lhs.local[i]);
        nl_form_t rest = lhs;
        if (c >= 0 && lhs.coef[i] == 1 && a.stepped[c] && form_add_term(&rest, lhs.local[i], UINT32_MAX) &&
            same_form(&rest, &a.step[c])) {
            w = c;
            lp->iv = lhs.local[i];
        }
    }
    if (w < 0)
        return false;
    bool lt = pred == NL_LTU || pred == NL_LTS || pred == NL_LEU || pred == NL_LES;
    if (a.step[w].n) {
        /* A step of locals (sieve's j += i): its sign is known only when
         * the loop runs, so nl_enter takes the direction from the compare
         * and sends a step the other way to the ordinary copy. With `ne`
         * the count would depend on the step dividing the distance: left
         * to constant steps. */
        if (pred == NL_NE)
            return false;
        lp->var_step = true;
        lp->step_form = a.step[w];
    } else {
        int32_t step = (int32_t)a.step[w].c;
        if (step == 0 || step > 32768 || step < -32768)
            return false;
        if (pred != NL_NE && lt != (step > 0))
            return false;
        lp->step = step;
    }
    lp->pred = pred;
    lp->limit = rhs;
    size_t b = ((size_t)1 << 20) / (len ? len : 1);
    lp->bound = b > 65536 ? 65536 : (uint32_t)b;

    /* The plain accesses are for LLVM's vectoriser (otherwise volatile
     * ones cost about the same): a loop it cannot vectorise anyway (an
     * exit besides the latch, a trap, a float carried from one iteration
     * to the next) keeps its checked accesses, and is spared the range
     * checks and a second copy of its body. */
    if (a.unvectorisable)
        lp->affine = false;
    /* Strides: an access whose form uses a carried local that is not an
     * induction variable leaves the loop checked. */
    for (uint32_t i = 0; i < lp->nacc && lp->affine; i++)
        lp->affine = form_moves(&a, &lp->acc[i].addr, &lp->acc[i].stride);
    /* A store to an address that does not move (nbody's b[i].vx -= ...)
     * makes each iteration depend on the last through memory, and LLVM's
     * vectoriser refuses the loop: checked accesses. */
    for (uint32_t i = 0; i < lp->nacc && lp->affine; i++)
        if (lp->acc[i].store && lp->acc[i].stride.n == 0 && lp->acc[i].stride.c == 0)
            lp->affine = false;
    return true;
}

/* ---- Code ---- */

static LLVMValueRef eval(fx_t *f, const nl_form_t *form)
{
    LLVMValueRef v = c32(f, form->c);
    for (uint8_t i = 0; i < form->n; i++) {
        LLVMValueRef l = LLVMBuildLoad2(f->b, f->nc->t_i32, f->locals[form->local[i]], "");
        v = LLVMBuildAdd(f->b, v, LLVMBuildMul(f->b, l, c32(f, form->coef[i]), ""), "");
    }
    return v;
}

static LLVMValueRef zext64(fx_t *f, LLVMValueRef v) { return LLVMBuildZExt(f->b, v, f->nc->t_i64, ""); }
static LLVMValueRef sext64(fx_t *f, LLVMValueRef v) { return LLVMBuildSExt(f->b, v, f->nc->t_i64, ""); }

static LLVMValueRef cmp_iv(fx_t *f, uint8_t pred, LLVMValueRef iv, LLVMValueRef limit)
{
    static const LLVMIntPredicate p[] = {
        [NL_NE] = LLVMIntNE, [NL_LTU] = LLVMIntULT, [NL_LTS] = LLVMIntSLT, [NL_LEU] = LLVMIntULE,
        [NL_LES] = LLVMIntSLE, [NL_GTU] = LLVMIntUGT, [NL_GTS] = LLVMIntSGT, [NL_GEU] = LLVMIntUGE,
        [NL_GES] = LLVMIntSGE};
    return LLVMBuildICmp(f->b, p[pred], iv, limit, "");
}

/* A lower bound (>= 1) of the iterations a loop with a constant step
 * runs from here, the latch going on while pred(iv + step * k, limit):
 * the first k - 1 latches go on. Capped at lp->bound. */
static LLVMValueRef iterations(fx_t *f, nl_loop_t *lp, LLVMValueRef iv, LLVMValueRef limit)
{
    LLVMBuilderRef b = f->b;
    uint64_t s = (uint64_t)(lp->step < 0 ? -(int64_t)lp->step : lp->step);
    LLVMValueRef one = c64(f, 1), bound = c64(f, lp->bound), n;
    bool up = lp->step > 0;
    if (lp->pred == NL_NE) {
        /* iv reaches limit after d / s steps when s divides the distance
         * d; otherwise (or for d = 0) only after wrapping around 2^32,
         * more than 2^17 steps (|step| <= 2^15): more than any chunk. */
        LLVMValueRef d = zext64(f, up ? LLVMBuildSub(b, limit, iv, "") : LLVMBuildSub(b, iv, limit, ""));
        LLVMValueRef exact = LLVMBuildAnd(b, LLVMBuildICmp(b, LLVMIntNE, d, c64(f, 0), ""),
                                          LLVMBuildICmp(b, LLVMIntEQ, LLVMBuildURem(b, d, c64(f, s), ""),
                                                        c64(f, 0), ""), "");
        n = LLVMBuildSelect(b, exact, LLVMBuildUDiv(b, d, c64(f, s), ""), bound, "");
    } else {
        bool sign = lp->pred == NL_LTS || lp->pred == NL_LES || lp->pred == NL_GTS || lp->pred == NL_GES;
        bool incl = lp->pred == NL_LEU || lp->pred == NL_LES || lp->pred == NL_GEU || lp->pred == NL_GES;
        LLVMValueRef i64 = sign ? sext64(f, iv) : zext64(f, iv);
        LLVMValueRef l64 = sign ? sext64(f, limit) : zext64(f, limit);
        /* Going up: the latch goes on while iv + k*s < limit (<=: while
         * iv + k*s <= limit), so k - 1 latches go on for k =
         * ceil((limit - iv) / s) (floor(...) + 1); down, mirrored. With
         * iv already past the limit, one iteration. None of the sums
         * before that k wraps: they stay short of the limit. */
        LLVMValueRef dist = up ? LLVMBuildSub(b, l64, i64, "") : LLVMBuildSub(b, i64, l64, "");
        LLVMValueRef ahead = LLVMBuildICmp(b, incl ? LLVMIntSGE : LLVMIntSGT, dist, c64(f, 0), "");
        LLVMValueRef k = incl ? LLVMBuildAdd(b, LLVMBuildUDiv(b, dist, c64(f, s), ""), one, "")
                              : LLVMBuildUDiv(b, LLVMBuildAdd(b, dist, c64(f, s - 1), ""), c64(f, s), "");
        n = LLVMBuildSelect(b, ahead, k, one, "");
    }
    return LLVMBuildSelect(b, LLVMBuildICmp(b, LLVMIntULT, n, bound, ""), n, bound, "");
}

/* The chunk of a loop stepped by a form of locals (lp->var_step), or a
 * branch to `slow` when the step does not go towards the limit or fewer
 * than m = NL_MIN_FAST iterations are left. Going up by s > 0, the latch
 * goes on while iv + k*s < limit (<=), so the loop runs K = floor(e / s)
 * + 1 more iterations, e the distance less one (the distance): K >= m
 * exactly when e >= (m - 1) * s, with no division. Only the last chunk of
 * a long loop divides. Down, mirrored. As with a constant step, no sum
 * before the K-th reaches the limit, so none wraps; in 64 bits nothing
 * overflows: |e| < 2^32, s <= 2^31, bound < 2^17. */
static LLVMValueRef chunk_var_step(fx_t *f, nl_loop_t *lp, LLVMValueRef iv, LLVMBasicBlockRef slow)
{
    LLVMBuilderRef b = f->b;
    uint8_t p = lp->pred;
    bool up = p == NL_LTU || p == NL_LTS || p == NL_LEU || p == NL_LES;
    bool sign = p == NL_LTS || p == NL_LES || p == NL_GTS || p == NL_GES;
    bool incl = p == NL_LEU || p == NL_LES || p == NL_GEU || p == NL_GES;
    LLVMValueRef step = sext64(f, eval(f, &lp->step_form));
    LLVMValueRef s = up ? step : LLVMBuildNeg(b, step, "");
    LLVMValueRef i64 = sign ? sext64(f, iv) : zext64(f, iv);
    LLVMValueRef l64 = sign ? sext64(f, lp->limit_v) : zext64(f, lp->limit_v);
    LLVMValueRef e = up ? LLVMBuildSub(b, l64, i64, "") : LLVMBuildSub(b, i64, l64, "");
    if (!incl)
        e = LLVMBuildSub(b, e, c64(f, 1), "");
    LLVMValueRef min = LLVMBuildMul(b, s, c64(f, NL_MIN_FAST - 1), "");
    LLVMValueRef go = LLVMBuildAnd(b, LLVMBuildICmp(b, LLVMIntSGT, s, c64(f, 0), ""),
                                   LLVMBuildICmp(b, LLVMIntSGE, e, min, ""), "");
    LLVMBasicBlockRef enough = new_bb(f), divide = new_bb(f), join = new_bb(f);
    LLVMBuildCondBr(b, go, enough, slow);
    LLVMPositionBuilderAtEnd(b, enough);
    LLVMValueRef full = LLVMBuildICmp(b, LLVMIntSGE, e, LLVMBuildMul(b, s, c64(f, lp->bound - 1), ""), "");
    LLVMBuildCondBr(b, full, join, divide);
    LLVMPositionBuilderAtEnd(b, divide);
    LLVMValueRef k = LLVMBuildAdd(b, LLVMBuildUDiv(b, e, s, ""), c64(f, 1), "");
    LLVMBuildBr(b, join);
    LLVMPositionBuilderAtEnd(b, join);
    LLVMValueRef n = LLVMBuildPhi(b, f->nc->t_i64, "");
    LLVMValueRef vals[2] = {c64(f, lp->bound), k};
    LLVMBasicBlockRef from[2] = {enough, divide};
    LLVMAddIncoming(n, vals, from, 2);
    return n;
}

/* Whether the accesses of a group stay inside the memory for the chunk's
 * iterations 0 .. last (i1); sets their start and step_v. A group is the
 * accesses whose addresses differ only in their constant (the fields of
 * one struct, a[i] and a[i + 1]) and move by the same stride: one check
 * covers them, from the lowest constant to the highest end.
 *
 * The 32-bit address of access j at iteration k is base + d_j + k *
 * stride modulo 2^32 (base: the form with the lowest constant, d_j >= 0
 * the distance of j's constant from it, the stride read as signed). When
 * every such sum, as an integer, lies within the memory, it is below 2^32
 * and the address is the sum itself. In 64 bits nothing overflows:
 * d_j < 2^32, |stride| <= 2^31, last < 2^16. */
static LLVMValueRef group_in_bounds(fx_t *f, nl_loop_t *lp, uint32_t first, bool *done,
                                    LLVMValueRef last, LLVMValueRef size)
{
    LLVMBuilderRef b = f->b;
    nl_access_t *g = &lp->acc[first];
    int32_t cmin = (int32_t)g->addr.c;
    for (uint32_t j = first; j < lp->nacc; j++) {
        nl_access_t *a = &lp->acc[j];
        if (!done[j] && same_terms(&a->addr, &g->addr) && same_form(&a->stride, &g->stride) &&
            (int32_t)a->addr.c < cmin)
            cmin = (int32_t)a->addr.c;
    }
    nl_form_t low = g->addr;
    low.c = (uint32_t)cmin;
    LLVMValueRef base = zext64(f, eval(f, &low));
    LLVMValueRef step = sext64(f, eval(f, &g->stride));
    int64_t end = 0;
    for (uint32_t j = first; j < lp->nacc; j++) {
        nl_access_t *a = &lp->acc[j];
        if (done[j] || !same_terms(&a->addr, &g->addr) || !same_form(&a->stride, &g->stride))
            continue;
        done[j] = true;
        int64_t d = (int64_t)(int32_t)a->addr.c - cmin;
        a->start = d ? LLVMBuildAdd(b, base, c64(f, (uint64_t)d), "") : base;
        a->step_v = step;
        if (d + a->offset + a->size > end)
            end = d + a->offset + a->size;
    }
    LLVMValueRef span = LLVMBuildNSWMul(b, last, step, "");
    LLVMValueRef zero = c64(f, 0);
    LLVMValueRef down = LLVMBuildICmp(b, LLVMIntSLT, span, zero, "");
    LLVMValueRef lo = LLVMBuildAdd(b, base, LLVMBuildSelect(b, down, span, zero, ""), "");
    LLVMValueRef hi = LLVMBuildAdd(b, LLVMBuildAdd(b, base, LLVMBuildSelect(b, down, zero, span, ""), ""),
                                   c64(f, (uint64_t)end), "");
    return LLVMBuildAnd(b, LLVMBuildICmp(b, LLVMIntSGE, lo, zero, ""),
                        LLVMBuildICmp(b, LLVMIntULE, hi, size, ""), "");
}

void nl_enter(fx_t *f, nl_loop_t *lp, LLVMBasicBlockRef fast_hdr)
{
    LLVMBuilderRef b = f->b;
    lp->k = new_alloca(f, f->nc->t_i64);
    lp->left = new_alloca(f, f->nc->t_i32);
    lp->outer = new_bb(f);
    lp->slow = new_bb(f);
    lp->after = new_bb(f);
    LLVMBuildBr(b, lp->outer);
    LLVMPositionBuilderAtEnd(b, lp->outer);

    LLVMValueRef iv = LLVMBuildLoad2(b, f->nc->t_i32, f->locals[lp->iv], "");
    lp->limit_v = eval(f, &lp->limit);
    LLVMBasicBlockRef fast = new_bb(f), rest = new_bb(f);
    /* A loop with fewer than NL_MIN_FAST iterations left runs them in the
     * ordinary copy: a chunk's set-up (and a vectorised loop's own, its
     * overlap checks and scalar remainder) would not pay off. So does the
     * rest of a loop whose chunk could leave the memory. The length first,
     * on a branch of its own: a loop of a few iterations, as most loops of
     * real programs are, skips the range checks. Every entry takes this
     * branch: running the first iterations of each entry in the ordinary
     * copy (a peel) made matmul's inner loop 10% slower (docs/engine.md). */
    bool plain = lp->affine && lp->nacc;
    if (lp->var_step) {
        lp->chunk = chunk_var_step(f, lp, iv, rest);
    } else {
        lp->chunk = iterations(f, lp, iv, lp->limit_v);
        LLVMBasicBlockRef enough = new_bb(f);
        LLVMBuildCondBr(b, LLVMBuildICmp(b, LLVMIntULT, lp->chunk, c64(f, NL_MIN_FAST), ""), rest, enough);
        LLVMPositionBuilderAtEnd(b, enough);
    }
    if (plain) {
        LLVMValueRef last = LLVMBuildSub(b, lp->chunk, c64(f, 1), ""), size = mem_size(f);
        bool done[NL_MAX_ACCESS] = {0};
        LLVMValueRef ok = NULL;
        for (uint32_t i = 0; i < lp->nacc; i++) {
            if (done[i])
                continue;
            LLVMValueRef in = group_in_bounds(f, lp, i, done, last, size);
            ok = ok ? LLVMBuildAnd(b, ok, in, "") : in;
        }
        LLVMValueRef br = LLVMBuildCondBr(b, LLVMBuildNot(b, ok, ""), rest, fast);
        LLVMSetMetadata(br, f->nc->k_prof, f->nc->md_unlikely);
    } else {
        LLVMBuildBr(b, fast);
    }
    /* The ordinary copy runs the rest of the loop: its latch comes back
     * here only after 2^32 iterations (nl_slow_latch). */
    LLVMPositionBuilderAtEnd(b, rest);
    LLVMBuildStore(b, c32(f, 0), lp->left);
    LLVMBuildBr(b, lp->slow);
    LLVMPositionBuilderAtEnd(b, fast);
    fuel_charge(f, lp->chunk);
    LLVMBuildStore(b, c64(f, 0), lp->k);
    LLVMBuildBr(b, fast_hdr);
    lp->next = 0;
}

LLVMValueRef nl_addr(fx_t *f, uint32_t offset)
{
    nl_loop_t *lp = f->fast;
    pop(f);
    if (lp->next >= lp->nacc)
        fail(f, "internal: counted loop lost count of its accesses");
    nl_access_t *acc = &lp->acc[lp->next++];
    if (acc->offset != offset)
        fail(f, "internal: counted loop access out of order");
    LLVMValueRef k = LLVMBuildLoad2(f->b, f->nc->t_i64, lp->k, "");
    LLVMValueRef ea = LLVMBuildAdd(f->b, acc->start,
                                   LLVMBuildNSWMul(f->b, k, acc->step_v, ""), "");
    if (offset)
        ea = LLVMBuildAdd(f->b, ea, c64(f, offset), "");
    return LLVMBuildInBoundsGEP2(f->b, f->nc->t_i8, f->mem_base, &ea, 1, "");
}

/* Loop metadata asking LLVM neither to unroll the loop nor to interleave
 * it: a fresh, self-referential node, as a loop's ID must be. For the fast
 * copy of a loop with a variable step: interleaved by 8, the sieve's store
 * loop kept seven multiples of the step as induction variables of the
 * loop around it, spilled, and the sieve ran slower than without chunks. */
static LLVMValueRef no_unroll(LLVMContextRef ctx)
{
    LLVMMetadataRef self = LLVMTemporaryMDNode(ctx, NULL, 0);
    LLVMMetadataRef unroll = LLVMMDStringInContext2(ctx, "llvm.loop.unroll.disable", 24);
    LLVMMetadataRef il[2] = {LLVMMDStringInContext2(ctx, "llvm.loop.interleave.count", 26),
                             LLVMValueAsMetadata(LLVMConstInt(LLVMInt32TypeInContext(ctx), 1, 0))};
    LLVMMetadataRef ops[3] = {self, LLVMMDNodeInContext2(ctx, &unroll, 1), LLVMMDNodeInContext2(ctx, il, 2)};
    LLVMMetadataRef id = LLVMMDNodeInContext2(ctx, ops, 3);
    LLVMMetadataReplaceAllUsesWith(self, id);
    return LLVMMetadataAsValue(ctx, id);
}

void nl_latch(fx_t *f, LLVMBasicBlockRef fast_hdr, LLVMBasicBlockRef go)
{
    nl_loop_t *lp = f->fast;
    LLVMBuilderRef b = f->b;
    /* The wasm condition is recomputed after the chunk from the local: a
     * value computed in the loop and used after it would stop LLVM's
     * vectoriser. */
    pop(f);
    LLVMValueRef k = LLVMBuildNUWAdd(b, LLVMBuildLoad2(b, f->nc->t_i64, lp->k, ""), c64(f, 1), "");
    LLVMBuildStore(b, k, lp->k);
    LLVMBasicBlockRef done = new_bb(f);
    LLVMValueRef br = LLVMBuildCondBr(b, LLVMBuildICmp(b, LLVMIntNE, k, lp->chunk, ""), fast_hdr, done);
    if (lp->var_step)
        LLVMSetMetadata(br, LLVMGetMDKindIDInContext(f->nc->ctx, "llvm.loop", 9), no_unroll(f->nc->ctx));
    LLVMPositionBuilderAtEnd(b, done);
    LLVMValueRef iv = LLVMBuildLoad2(b, f->nc->t_i32, f->locals[lp->iv], "");
    LLVMBuildCondBr(b, cmp_iv(f, lp->pred, iv, lp->limit_v), lp->outer, go);
    LLVMPositionBuilderAtEnd(b, go);
}

void nl_slow_latch(fx_t *f, nl_loop_t *lp, LLVMBasicBlockRef slow_hdr, LLVMBasicBlockRef go)
{
    /* Loops the set-up sends here seldom come back: a short one ends
     * after fewer than NL_MIN_FAST iterations, one whose range check
     * failed traps at the access that leaves the memory; only a step of
     * locals that is zero or goes the wrong way may run 2^32 iterations,
     * and the set-up then sends it here again. The edge is there for
     * LLVM: with it the set-up and both copies are one loop nest; without
     * it LLVM put the vectorised i-k-j multiply behind overlap checks of
     * more pointers, and the kernel ran 4.4 times slower (docs/engine.md). */
    LLVMBuilderRef b = f->b;
    LLVMValueRef cond = LLVMBuildICmp(b, LLVMIntNE, pop(f), c32(f, 0), "");
    LLVMValueRef left = LLVMBuildSub(b, LLVMBuildLoad2(b, f->nc->t_i32, lp->left, ""), c32(f, 1), "");
    LLVMBuildStore(b, left, lp->left);
    LLVMBasicBlockRef again = new_bb(f);
    LLVMBuildCondBr(b, cond, again, go);
    LLVMPositionBuilderAtEnd(b, again);
    LLVMBuildCondBr(b, LLVMBuildICmp(b, LLVMIntEQ, left, c32(f, 0), ""), lp->outer, slow_hdr);
    LLVMPositionBuilderAtEnd(b, go);
}
