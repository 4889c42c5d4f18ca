/*
 * formula.c — scalingModifiers.formula: KEDA composes a ScaledObject's
 * triggers into one metric with an expression in the expr language
 * (github.com/expr-lang/expr), over the triggers' names. This file parses
 * the part of that language a formula over numbers needs, into a tree that
 * the poller evaluates at each poll:
 *
 *   numbers, trigger names ([A-Za-z_][A-Za-z0-9_]*), ( ), unary - + ! not,
 *   ** and ^ (power), * / %, + -, == != < <= > >=, && and, || or,
 *   c ? a : b, ?? (a number is never nil: the left side), and the
 *   functions min(...), max(...), abs, ceil, floor, round.
 *
 * Booleans are 1 and 0. Anything else (strings, arrays, closures, other
 * functions) is refused with the position and what was found, when the
 * ScaledObject is applied. Precedence follows expr's: the ternary lowest,
 * then ??, or, and, comparisons, + -, * / %, unary, power (right to left).
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "keda/keda.h"

#define MAX_NODES 256u
#define MAX_ARGS 16u
#define MAX_DEPTH 64u

enum op {
    OP_NUM, OP_VAR, OP_NEG, OP_NOT, OP_POW, OP_MUL, OP_DIV, OP_MOD, OP_ADD, OP_SUB, OP_EQ,
    OP_NE, OP_LT, OP_LE, OP_GT, OP_GE, OP_AND, OP_OR, OP_COND, OP_MIN, OP_MAX, OP_ABS,
    OP_CEIL, OP_FLOOR, OP_ROUND,
};

typedef struct node {
    enum op op;
    double num;          /* OP_NUM */
    uint32_t var;        /* OP_VAR: the trigger's index */
    uint32_t kid[MAX_ARGS];
    uint32_t nkids;
} node_t;

struct kd_formula {
    node_t nodes[MAX_NODES];
    uint32_t n, root;
};

typedef struct parser {
    kd_formula_t *f;
    const char *text, *p;
    const kd_trigger_t *trig;
    uint32_t ntrig, depth;
    char *err;
    size_t errlen;
    bool failed;
} parser_t;

static int fail(parser_t *ps, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(parser_t *ps, const char *fmt, ...)
{
    if (ps->failed) return -1;
    ps->failed = true;
    char what[160];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    snprintf(ps->err, ps->errlen, "at %u: %s", (unsigned)(ps->p - ps->text) + 1, what);
    return -1;
}

static void skip(parser_t *ps)
{
    while (isspace((unsigned char)*ps->p)) ps->p++;
}

/* Consumes tok (and the spaces before it) when it comes next; a word
 * must not run on into an identifier. */
static bool eat(parser_t *ps, const char *tok)
{
    skip(ps);
    size_t n = strlen(tok);
    if (strncmp(ps->p, tok, n) != 0) return false;
    if (isalpha((unsigned char)tok[0]) && (isalnum((unsigned char)ps->p[n]) || ps->p[n] == '_'))
        return false;
    ps->p += n;
    return true;
}

static int add(parser_t *ps, enum op op, uint32_t a, uint32_t b)
{
    if (ps->f->n == MAX_NODES) return fail(ps, "more than %u terms", MAX_NODES);
    node_t *nd = &ps->f->nodes[ps->f->n];
    memset(nd, 0, sizeof *nd);
    nd->op = op;
    nd->kid[0] = a;
    nd->kid[1] = b;
    nd->nkids = 2;
    return (int)ps->f->n++;
}

static int parse_ternary(parser_t *ps);

static const struct {
    const char *name;
    enum op op;
    int nargs; /* -1: one or more */
} funcs[] = {
    {"min", OP_MIN, -1},    {"max", OP_MAX, -1},     {"abs", OP_ABS, 1},
    {"ceil", OP_CEIL, 1},   {"floor", OP_FLOOR, 1},  {"round", OP_ROUND, 1},
};

static int parse_call(parser_t *ps, const char *name, size_t len)
{
    size_t f = 0;
    while (f < sizeof funcs / sizeof funcs[0] &&
           !(strlen(funcs[f].name) == len && strncmp(funcs[f].name, name, len) == 0))
        f++;
    if (f == sizeof funcs / sizeof funcs[0]) {
        ps->p = name; /* the error points at the name */
        return fail(ps, "function %.*s is not supported (min, max, abs, ceil, floor, round)",
                    (int)len, name);
    }
    int me = add(ps, funcs[f].op, 0, 0);
    if (me < 0) return -1;
    uint32_t n = 0;
    if (!eat(ps, ")")) {
        do {
            if (n == MAX_ARGS) return fail(ps, "more than %u arguments", MAX_ARGS);
            int a = parse_ternary(ps);
            if (a < 0) return -1;
            ps->f->nodes[me].kid[n++] = (uint32_t)a;
        } while (eat(ps, ","));
        if (!eat(ps, ")")) return fail(ps, "expected ',' or ')'");
    }
    if ((funcs[f].nargs < 0 && n == 0) || (funcs[f].nargs > 0 && n != (uint32_t)funcs[f].nargs))
        return fail(ps, "%s takes %s", funcs[f].name,
                    funcs[f].nargs < 0 ? "one or more numbers" : "one number");
    ps->f->nodes[me].nkids = n;
    return me;
}

static int parse_primary(parser_t *ps)
{
    skip(ps);
    const char *s = ps->p;
    if (eat(ps, "(")) {
        int e = parse_ternary(ps);
        if (e < 0) return -1;
        if (!eat(ps, ")")) return fail(ps, "expected ')'");
        return e;
    }
    if (isdigit((unsigned char)*s) || (*s == '.' && isdigit((unsigned char)s[1]))) {
        char *end;
        double d = strtod(s, &end);
        if (!isfinite(d)) return fail(ps, "number out of range");
        ps->p = end;
        int me = add(ps, OP_NUM, 0, 0);
        if (me >= 0) ps->f->nodes[me].num = d;
        return me;
    }
    if (isalpha((unsigned char)*s) || *s == '_') {
        size_t len = 1;
        while (isalnum((unsigned char)s[len]) || s[len] == '_') len++;
        ps->p = s + len;
        if (eat(ps, "(")) return parse_call(ps, s, len);
        if ((len == 4 && strncmp(s, "true", 4) == 0) || (len == 5 && strncmp(s, "false", 5) == 0)) {
            int me = add(ps, OP_NUM, 0, 0);
            if (me >= 0) ps->f->nodes[me].num = len == 4;
            return me;
        }
        for (uint32_t i = 0; i < ps->ntrig; i++)
            if (strlen(ps->trig[i].name) == len && strncmp(ps->trig[i].name, s, len) == 0) {
                int me = add(ps, OP_VAR, 0, 0);
                if (me >= 0) ps->f->nodes[me].var = i;
                return me;
            }
        ps->p = s;
        return fail(ps, "%.*s is not the name of a trigger of this ScaledObject", (int)len, s);
    }
    if (!*s) return fail(ps, "the formula ends where a number or a trigger's name was expected");
    return fail(ps, "'%c' is not supported here (a number, a trigger's name, a function or '(')",
                *s);
}

static int parse_unary(parser_t *ps)
{
    if (++ps->depth > MAX_DEPTH) return fail(ps, "nested more than %u deep", MAX_DEPTH);
    int r;
    if (eat(ps, "-")) {
        r = parse_unary(ps);
        r = r < 0 ? -1 : add(ps, OP_NEG, (uint32_t)r, 0);
    } else if (eat(ps, "+")) {
        r = parse_unary(ps);
    } else if (eat(ps, "not") || (skip(ps), ps->p[0] == '!' && ps->p[1] != '=' && eat(ps, "!"))) {
        r = parse_unary(ps);
        r = r < 0 ? -1 : add(ps, OP_NOT, (uint32_t)r, 0);
    } else {
        r = parse_primary(ps);
        if (r >= 0 && (eat(ps, "**") || eat(ps, "^"))) {
            int e = parse_unary(ps); /* right to left: 2 ** 3 ** 2 is 2 ** 9 */
            r = e < 0 ? -1 : add(ps, OP_POW, (uint32_t)r, (uint32_t)e);
        }
    }
    ps->depth--;
    return r;
}

/* One level of left-to-right binary operators: tokens[i] makes ops[i]. */
static int parse_level(parser_t *ps, int (*next)(parser_t *), const char *const *tokens,
                       const enum op *ops)
{
    int l = next(ps);
    while (l >= 0) {
        size_t i = 0;
        while (tokens[i] && !eat(ps, tokens[i])) i++;
        if (!tokens[i]) break;
        int r = next(ps);
        l = r < 0 ? -1 : add(ps, ops[i], (uint32_t)l, (uint32_t)r);
    }
    return l;
}

static int parse_mul(parser_t *ps)
{
    static const char *const t[] = {"*", "/", "%", NULL};
    static const enum op o[] = {OP_MUL, OP_DIV, OP_MOD};
    /* "**" is the power, taken by parse_unary before "*" is looked at. */
    return parse_level(ps, parse_unary, t, o);
}

static int parse_add(parser_t *ps)
{
    static const char *const t[] = {"+", "-", NULL};
    static const enum op o[] = {OP_ADD, OP_SUB};
    return parse_level(ps, parse_mul, t, o);
}

static int parse_cmp(parser_t *ps)
{
    static const char *const t[] = {"==", "!=", "<=", ">=", "<", ">", NULL};
    static const enum op o[] = {OP_EQ, OP_NE, OP_LE, OP_GE, OP_LT, OP_GT};
    return parse_level(ps, parse_add, t, o);
}

static int parse_and(parser_t *ps)
{
    static const char *const t[] = {"&&", "and", NULL};
    static const enum op o[] = {OP_AND, OP_AND};
    return parse_level(ps, parse_cmp, t, o);
}

static int parse_or(parser_t *ps)
{
    static const char *const t[] = {"||", "or", NULL};
    static const enum op o[] = {OP_OR, OP_OR};
    return parse_level(ps, parse_and, t, o);
}

static int parse_coalesce(parser_t *ps)
{
    int l = parse_or(ps);
    while (l >= 0 && eat(ps, "??")) {
        /* Both sides are checked; a number is never nil, so the left wins. */
        if (parse_or(ps) < 0) return -1;
    }
    return l;
}

static int parse_ternary(parser_t *ps)
{
    if (++ps->depth > MAX_DEPTH) return fail(ps, "nested more than %u deep", MAX_DEPTH);
    int c = parse_coalesce(ps);
    if (c >= 0 && eat(ps, "?")) {
        int a = parse_ternary(ps);
        if (a >= 0 && !eat(ps, ":")) return fail(ps, "expected ':'");
        int b = a < 0 ? -1 : parse_ternary(ps);
        int me = b < 0 ? -1 : add(ps, OP_COND, (uint32_t)a, (uint32_t)b);
        if (me >= 0) {
            ps->f->nodes[me].kid[2] = (uint32_t)c;
            ps->f->nodes[me].nkids = 3;
        }
        c = me;
    }
    ps->depth--;
    return c;
}

kd_formula_t *kd_formula_parse(const char *text, const kd_trigger_t *triggers, uint32_t n,
                               char *err, size_t errlen)
{
    kd_formula_t *f = calloc(1, sizeof *f);
    if (!f) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    parser_t ps = {.f = f, .text = text, .p = text, .trig = triggers, .ntrig = n,
                   .err = err, .errlen = errlen};
    int root = parse_ternary(&ps);
    skip(&ps);
    if (root >= 0 && *ps.p) root = fail(&ps, "'%.20s' is not understood here", ps.p);
    if (root < 0) {
        free(f);
        return NULL;
    }
    f->root = (uint32_t)root;
    return f;
}

static double eval(const kd_formula_t *f, uint32_t i, const double *v)
{
    const node_t *nd = &f->nodes[i];
    double a = 0, b = 0;
    switch (nd->op) {
    case OP_NUM: return nd->num;
    case OP_VAR: return v[nd->var];
    case OP_COND: return eval(f, nd->kid[2], v) != 0 ? eval(f, nd->kid[0], v) : eval(f, nd->kid[1], v);
    case OP_AND: return eval(f, nd->kid[0], v) != 0 && eval(f, nd->kid[1], v) != 0;
    case OP_OR: return eval(f, nd->kid[0], v) != 0 || eval(f, nd->kid[1], v) != 0;
    case OP_MIN:
    case OP_MAX: {
        double r = eval(f, nd->kid[0], v);
        for (uint32_t k = 1; k < nd->nkids; k++) {
            double x = eval(f, nd->kid[k], v);
            if (nd->op == OP_MIN ? x < r : x > r) r = x;
        }
        return r;
    }
    default: break;
    }
    a = eval(f, nd->kid[0], v);
    if (nd->op != OP_NEG && nd->op != OP_NOT && nd->op != OP_ABS && nd->op != OP_CEIL &&
        nd->op != OP_FLOOR && nd->op != OP_ROUND)
        b = eval(f, nd->kid[1], v);
    switch (nd->op) {
    case OP_NEG: return -a;
    case OP_NOT: return a == 0;
    case OP_ABS: return fabs(a);
    case OP_CEIL: return ceil(a);
    case OP_FLOOR: return floor(a);
    case OP_ROUND: return round(a);
    case OP_POW: return pow(a, b);
    case OP_MUL: return a * b;
    case OP_DIV: return a / b;
    case OP_MOD: return fmod(a, b);
    case OP_ADD: return a + b;
    case OP_SUB: return a - b;
    case OP_EQ: return a == b;
    case OP_NE: return a != b;
    case OP_LT: return a < b;
    case OP_LE: return a <= b;
    case OP_GT: return a > b;
    case OP_GE: return a >= b;
    default: return NAN;
    }
}

double kd_formula_eval(const kd_formula_t *f, const double *values)
{
    return eval(f, f->root, values);
}

void kd_formula_free(kd_formula_t *f) { free(f); }
