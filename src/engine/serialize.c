/*
 * serialize.c — compiled modules to bytes and back (engine.h,
 * eng_module_serialize / eng_module_deserialize).
 *
 * Why: compiling a module costs milliseconds and grows with its size;
 * loading the compiled form is a few copies and one linear check. The
 * runtime keeps compiled modules in a bounded cache and reloads an evicted
 * one from this form (runtime/module.c), so a function scaled to zero never
 * waits for the compiler.
 *
 * The internal code holds handler addresses, which differ per process
 * (ASLR) and per build. The serialised code therefore stores each
 * instruction's op number in its first word; loading maps it back through
 * eng_interp_handlers(). Instruction boundaries come from the operand
 * shapes in ops.h (ENG_OP_SHAPES), which also say what every operand is,
 * so loading checks each one: slot numbers against the frame, function,
 * type, table, global and segment indices against the module, branch
 * offsets against the function's instruction starts, memory offsets
 * against 32 bits. Module structures get the checks decode.c makes.
 *
 * Layout (little-endian, fixed width):
 *   "WFNCMOD\0"  u32 format version  16-byte engine build id
 *   the SHA-256 of the module's bytes (eng_module_t.sha256)
 *   the module's structures (types, imports, index spaces, globals,
 *   exports, start, element and data segments, declared functions, names)
 *   each defined function's header and code
 *   SHA-256 of everything before it (32 bytes)
 *
 * The build id is a hash of the op list, the shapes, ENG_SERIAL_ABI and
 * the sizes the code depends on: an artefact from another build of the
 * engine is refused ("stale") and the embedder recompiles.
 *
 * What the checks do not do: re-establish the type safety the validator
 * proved at compile time (which slot holds a reference at which point).
 * The hash makes accidental damage (truncation, bit rot, a half-written
 * file) harmless; a file deliberately forged with a matching hash by
 * someone who can write the data directory is outside what this layer
 * defends against (such a writer can change the database as well). The
 * structural checks still stop every out-of-bounds read or write the
 * interpreter would otherwise make from bad operands.
 */
#include "engine/internal.h"
#include "engine/ops.h"
#include "engine/reader.h"

#include <openssl/evp.h>
#include <pthread.h>
#include <stdlib.h>

_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
               "serialised code is copied as little-endian words");

/* Bump when an op's meaning or the code's conventions change without the
 * op list or shapes changing: old artefacts then count as stale. */
#define ENG_SERIAL_ABI 1
#define SER_VERSION 3u /* 3: v128 (constant expressions carry 16 bytes) */
/* A constant expression: kind, type, index, 16 bytes of value. */
#define SER_CONSTEXPR_BYTES (1 + 1 + 4 + 16)
#define SER_MAGIC "WFNCMOD"    /* 7 chars + NUL = 8 bytes */
#define SER_ID_BYTES 16
#define SER_HASH_BYTES 32
#define SER_HEADER_BYTES (8 + 4 + SER_ID_BYTES + 32)
/* Frame sizes the compiler can produce are bounded by locals plus the
 * body's length; this bound only keeps hostile numbers far from overflow. */
#define SER_MAX_FRAME (1u << 26)

/* ---- op shapes and the build id ---- */

static const char *const op_shapes[OP_COUNT] = {
#define SER_SHAPE(n, s) [OP_##n] = s,
    ENG_OP_SHAPES(SER_SHAPE)
#undef SER_SHAPE
};
static const char *const op_names[OP_COUNT] = {
#define SER_NAME(n) [OP_##n] = #n,
    ENG_OPS(SER_NAME)
#undef SER_NAME
};

typedef struct handler_entry {
    uintptr_t addr;
    uint32_t op;
} handler_entry_t;

static struct {
    pthread_once_t once;
    bool ok;                           /* every op (but exit) has a shape */
    uint8_t id[SER_ID_BYTES];
    handler_entry_t sorted[OP_COUNT];  /* handler address -> op */
    const void *const *handlers;
    uint8_t words[OP_COUNT];           /* instruction length (br_table: without labels) */
    /* The shapes compiled for the loader's fast path (see r_code). */
    struct {
        uint8_t nchecks;
        bool slow;                     /* checked by inst_ok instead */
        bool memory;                   /* needs a memory */
        uint8_t rel_word;              /* the word holding its branch offset, or 0 */
        struct {
            uint8_t word, part, limit; /* part: 0 whole, 1 LO, 2 HI; limit: LIM_* */
        } check[8];
    } fast[OP_COUNT];
} ser = {.once = PTHREAD_ONCE_INIT};

/* What an operand is checked against, per function (r_code's lim[]). */
enum { LIM_SLOT, LIM_SLOT2, LIM_ARG, LIM_OFF32, LIM_FUNC, LIM_TYPE, LIM_TABLE, LIM_GLOBAL, LIM_DATA, LIM_ELEM,
       LIM_COUNT, LIM_NONE = 0xFF };

static uint8_t limit_of(char k)
{
    switch (k) {
    case 's': case 'S': return LIM_SLOT;
    case 'v': return LIM_SLOT2;
    case 'a': return LIM_ARG;
    case 'O': return LIM_OFF32;
    case 'f': return LIM_FUNC;
    case 't': return LIM_TYPE;
    case 'T': case 'F': return LIM_TABLE;
    case 'g': case 'G': return LIM_GLOBAL;
    case 'd': case 'D': return LIM_DATA;
    case 'e': case 'E': return LIM_ELEM;
    default: return LIM_NONE; /* i I - n R: anything goes, or checked elsewhere */
    }
}

static bool is_memory_op(int op)
{
    return (op >= OP_ld8s && op <= OP_st64) || (op >= OP_mem_size && op <= OP_mem_init) ||
           op == OP_v_load || op == OP_v_store || op == OP_v_load_lane || op == OP_v_store_lane;
}

static int entry_cmp(const void *a, const void *b)
{
    uintptr_t x = ((const handler_entry_t *)a)->addr, y = ((const handler_entry_t *)b)->addr;
    return x < y ? -1 : x > y;
}

static void ser_init(void)
{
    ser.handlers = eng_interp_handlers();
    ser.ok = true;
    EVP_MD_CTX *h = EVP_MD_CTX_new();
    if (!h) {
        ser.ok = false;
        return;
    }
    EVP_DigestInit_ex(h, EVP_sha256(), NULL);
    char buf[128];
    int n = snprintf(buf, sizeof buf, "wasmfn-serial abi=%d val=%zu code=%zu ptr=%zu ops=%d;",
                     ENG_SERIAL_ABI, sizeof(eng_val_t), sizeof(eng_code_t), sizeof(void *),
                     (int)OP_COUNT);
    EVP_DigestUpdate(h, buf, (size_t)n);
    for (uint32_t op = 0; op < OP_COUNT; op++) {
        if (op != OP_exit && !op_shapes[op])
            ser.ok = false;
        n = snprintf(buf, sizeof buf, "%s:%s;", op_names[op], op_shapes[op] ? op_shapes[op] : "!");
        EVP_DigestUpdate(h, buf, (size_t)n);
        ser.sorted[op].addr = (uintptr_t)ser.handlers[op];
        ser.sorted[op].op = op;
        ser.words[op] = (uint8_t)(1 + (op_shapes[op] ? strlen(op_shapes[op]) / 2 : 0));
        const char *sh = op_shapes[op] ? op_shapes[op] : "";
        ser.fast[op].memory = is_memory_op((int)op);
        ser.fast[op].slow = op == OP_call || op == OP_call_indirect || op == OP_tbl_copy ||
                            op == OP_tbl_init || strchr(sh, 'F') || strchr(sh, 'G');
        for (uint8_t w = 0; sh[2 * w]; w++) {
            if (sh[2 * w] == 'R')
                ser.fast[op].rel_word = (uint8_t)(1 + w);
            for (uint8_t half = 0; half < 2; half++) {
                bool whole = sh[2 * w + 1] == '_';
                if (whole && half)
                    break;
                uint8_t lim = limit_of(sh[2 * w + half]);
                if (lim == LIM_NONE)
                    continue;
                uint8_t k = ser.fast[op].nchecks++;
                ser.fast[op].check[k].word = (uint8_t)(1 + w);
                ser.fast[op].check[k].part = whole ? 0 : (uint8_t)(1 + half);
                ser.fast[op].check[k].limit = lim;
            }
        }
    }
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned mdlen = 0;
    EVP_DigestFinal_ex(h, md, &mdlen);
    EVP_MD_CTX_free(h);
    memcpy(ser.id, md, SER_ID_BYTES);
    qsort(ser.sorted, OP_COUNT, sizeof ser.sorted[0], entry_cmp);
}

static bool ser_ready(char *err, size_t errlen)
{
    pthread_once(&ser.once, ser_init);
    if (!ser.ok)
        return eng_errf(err, errlen, "engine build error: an op has no shape in ops.h");
    return true;
}

/* The op whose handler is at addr, or -1. */
static int op_of_handler(uint64_t addr)
{
    size_t lo = 0, hi = OP_COUNT;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (ser.sorted[mid].addr == addr)
            return (int)ser.sorted[mid].op;
        if (ser.sorted[mid].addr < addr)
            lo = mid + 1;
        else
            hi = mid;
    }
    return -1;
}

bool eng_serial_shapes_complete(void)
{
    pthread_once(&ser.once, ser_init);
    return ser.ok;
}

/* ---- writing ---- */

typedef struct wbuf {
    uint8_t *p;
    size_t len, cap;
    bool oom;
} wbuf_t;

static void w_bytes(wbuf_t *w, const void *src, size_t n)
{
    if (w->oom)
        return;
    if (w->cap - w->len < n) {
        size_t cap = w->cap ? w->cap : 4096;
        while (cap - w->len < n)
            cap *= 2;
        uint8_t *q = realloc(w->p, cap);
        if (!q) {
            w->oom = true;
            return;
        }
        w->p = q;
        w->cap = cap;
    }
    if (n)
        memcpy(w->p + w->len, src, n);
    w->len += n;
}

static void w_u8(wbuf_t *w, uint8_t v) { w_bytes(w, &v, 1); }
static void w_u32(wbuf_t *w, uint32_t v)
{
    uint8_t b[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
    w_bytes(w, b, 4);
}
static void w_u64(wbuf_t *w, uint64_t v)
{
    w_u32(w, (uint32_t)v);
    w_u32(w, (uint32_t)(v >> 32));
}
static void w_str(wbuf_t *w, const char *s, size_t n)
{
    w_u32(w, (uint32_t)n);
    w_bytes(w, s, n);
}

static void w_constexpr(wbuf_t *w, const eng_constexpr_t *ce)
{
    w_u8(w, ce->kind);
    w_u8(w, ce->type);
    w_u32(w, ce->index);
    w_u64(w, ce->val.i64);
    w_u64(w, ce->hi);
}

static void w_limits(wbuf_t *w, eng_limits_t l)
{
    w_u32(w, l.min);
    w_u32(w, l.max);
}

/* Length in words of the instruction at code[i] with op `op`, or 0 if it
 * does not fit in n words. */
static size_t inst_len(const eng_code_t *code, size_t i, size_t n, int op)
{
    size_t len = ser.words[op];
    if (op == OP_br_table) {
        if (i + 1 >= n)
            return 0;
        len += (size_t)(code[i + 1] >> 32) + 1;
    }
    return len <= n - i ? len : 0;
}

static bool w_code(wbuf_t *w, const eng_module_t *m, uint32_t fi, char *err, size_t errlen)
{
    const eng_code_func_t *cf = &m->code[fi];
    w_u32(w, cf->type_index);
    w_u32(w, cf->nlocals);
    w_u32(w, cf->frame_slots);
    w_u32(w, cf->body_offset);
    w_u64(w, cf->code_len);
    for (size_t i = 0; i < cf->code_len;) {
        int op = op_of_handler(cf->code[i]);
        if (op < 0 || op == OP_exit)
            return eng_errf(err, errlen,
                            "function %u: word %zu is not an instruction (ops.h shapes disagree "
                            "with the compiler)", m->nfunc_imports + fi, i);
        size_t len = inst_len(cf->code, i, cf->code_len, op);
        if (!len)
            return eng_errf(err, errlen, "function %u: %s at word %zu runs past the end",
                            m->nfunc_imports + fi, op_names[op], i);
        w_u64(w, (uint64_t)op);
        for (size_t k = 1; k < len; k++)
            w_u64(w, cf->code[i + k]);
        i += len;
    }
    return true;
}

bool eng_module_serialize(const eng_module_t *m, uint8_t **out, size_t *len, char *err,
                          size_t errlen)
{
    if (!ser_ready(err, errlen))
        return false;
    wbuf_t w = {0};
    w_bytes(&w, SER_MAGIC, 8);
    w_u32(&w, SER_VERSION);
    w_bytes(&w, ser.id, SER_ID_BYTES);
    w_bytes(&w, m->sha256, 32);

    w_u32(&w, m->ntypes);
    for (uint32_t i = 0; i < m->ntypes; i++) {
        const eng_functype_t *t = &m->types[i];
        w_u32(&w, t->nparams);
        w_u32(&w, t->nresults);
        w_bytes(&w, t->types, (size_t)t->nparams + t->nresults);
    }
    w_u32(&w, m->nimports);
    for (uint32_t i = 0; i < m->nimports; i++) {
        const eng_import_t *im = &m->imports[i];
        w_str(&w, im->module, strlen(im->module));
        w_str(&w, im->name, strlen(im->name));
        w_u8(&w, im->kind);
        w_u32(&w, im->type_index);
        w_u8(&w, im->table.elem);
        w_limits(&w, im->table.limits);
        w_limits(&w, im->memory);
        w_u8(&w, im->global.type);
        w_u8(&w, im->global.mut);
    }
    w_u32(&w, m->nfuncs);
    w_u32(&w, m->nfunc_imports);
    for (uint32_t i = 0; i < m->nfuncs; i++)
        w_u32(&w, m->func_type[i]);
    w_u32(&w, m->ntables);
    w_u32(&w, m->ntable_imports);
    for (uint32_t i = 0; i < m->ntables; i++) {
        w_u8(&w, m->tables[i].elem);
        w_limits(&w, m->tables[i].limits);
    }
    w_u32(&w, m->nmems);
    w_u32(&w, m->nmem_imports);
    for (uint32_t i = 0; i < m->nmems; i++)
        w_limits(&w, m->mems[i]);
    w_u32(&w, m->nglobals);
    w_u32(&w, m->nglobal_imports);
    for (uint32_t i = 0; i < m->nglobals; i++) {
        w_u8(&w, m->globals[i].type);
        w_u8(&w, m->globals[i].mut);
    }
    for (uint32_t i = m->nglobal_imports; i < m->nglobals; i++)
        w_constexpr(&w, &m->global_init[i]);
    w_u32(&w, m->nexports);
    for (uint32_t i = 0; i < m->nexports; i++) {
        w_str(&w, m->exports[i].name, m->exports[i].name_len);
        w_u8(&w, m->exports[i].kind);
        w_u32(&w, m->exports[i].index);
    }
    w_u8(&w, m->has_start);
    w_u32(&w, m->start);
    w_u32(&w, m->nelems);
    for (uint32_t i = 0; i < m->nelems; i++) {
        const eng_elem_t *e = &m->elems[i];
        w_u8(&w, e->mode);
        w_u8(&w, e->type);
        w_u32(&w, e->table);
        w_constexpr(&w, &e->offset);
        w_u32(&w, e->count);
        for (uint32_t k = 0; k < e->count; k++)
            w_constexpr(&w, &e->items[k]);
    }
    w_u8(&w, m->has_data_count);
    w_u32(&w, m->data_count);
    w_u32(&w, m->ndatas);
    for (uint32_t i = 0; i < m->ndatas; i++) {
        const eng_data_t *d = &m->datas[i];
        w_u8(&w, d->mode);
        w_u32(&w, d->memory);
        w_constexpr(&w, &d->offset);
        w_u32(&w, d->len);
        w_bytes(&w, d->bytes, d->len);
    }
    w_u8(&w, m->func_declared != NULL);
    if (m->func_declared)
        w_bytes(&w, m->func_declared, m->nfuncs);
    w_u8(&w, m->func_names != NULL);
    if (m->func_names) {
        for (uint32_t i = 0; i < m->nfuncs; i++) {
            const char *s = m->func_names[i];
            /* 0 = no name; else length + 1 */
            w_u32(&w, s ? (uint32_t)strlen(s) + 1 : 0);
            if (s)
                w_bytes(&w, s, strlen(s));
        }
    }
    uint32_t ndefined = m->nfuncs - m->nfunc_imports;
    for (uint32_t i = 0; i < ndefined; i++) {
        if (!w_code(&w, m, i, err, errlen)) {
            free(w.p);
            return false;
        }
    }
    uint8_t md[EVP_MAX_MD_SIZE];
    unsigned mdlen = 0;
    if (!w.oom && !EVP_Digest(w.p, w.len, md, &mdlen, EVP_sha256(), NULL))
        w.oom = true;
    w_bytes(&w, md, SER_HASH_BYTES);
    if (w.oom) {
        free(w.p);
        return eng_errf(err, errlen, "out of memory");
    }
    *out = w.p;
    *len = w.len;
    return true;
}

/* ---- reading ---- */

typedef struct rctx {
    eng_reader_t r;
    eng_module_t *m;
    char *err;
    size_t errlen;
} rctx_t;

static bool r_fail(rctx_t *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static bool r_fail(rctx_t *c, const char *fmt, ...)
{
    char msg[ENG_ERR_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    size_t off = c->r.error ? c->r.error_offset : rd_offset(&c->r);
    return eng_errf(c->err, c->errlen, "serialised module: at byte 0x%zx: %s", off, msg);
}

static bool r_ok(rctx_t *c)
{
    if (rd_ok(&c->r))
        return true;
    return r_fail(c, "%s", c->r.error);
}

#define R_CHECK(c)                                                                                 \
    do {                                                                                           \
        if (!r_ok(c))                                                                              \
            return false;                                                                          \
    } while (0)

static uint8_t r_u8(rctx_t *c) { return rd_u8(&c->r); }
static uint32_t r_u32(rctx_t *c) { return rd_fixed32(&c->r); }
static uint64_t r_u64(rctx_t *c) { return rd_fixed64(&c->r); }

/* A count of items of at least `each` bytes: refuses counts the remaining
 * bytes cannot hold, so no allocation is sized by a hostile number. */
static bool r_count(rctx_t *c, uint32_t *n, size_t each, const char *what)
{
    *n = r_u32(c);
    R_CHECK(c);
    if (each && *n > rd_left(&c->r) / each)
        return r_fail(c, "%u %s do not fit in the remaining %zu bytes", *n, what, rd_left(&c->r));
    return true;
}

static void *r_alloc(rctx_t *c, size_t n, size_t each)
{
    void *p = calloc(n ? n : 1, each);
    if (!p)
        r_fail(c, "out of memory");
    return p;
}

/* A length-prefixed string, NUL-terminated copy in *out. */
static bool r_str(rctx_t *c, char **out, uint32_t *len_out)
{
    uint32_t n;
    if (!r_count(c, &n, 1, "string bytes"))
        return false;
    const uint8_t *p = rd_bytes(&c->r, n);
    R_CHECK(c);
    char *s = malloc((size_t)n + 1);
    if (!s)
        return r_fail(c, "out of memory");
    memcpy(s, p, n);
    s[n] = 0;
    *out = s;
    if (len_out)
        *len_out = n;
    return true;
}

static bool valtype_ok(uint8_t t)
{
    return t == ENG_I32 || t == ENG_I64 || t == ENG_F32 || t == ENG_F64 || t == ENG_FUNCREF ||
           t == ENG_EXTERNREF || t == ENG_V128;
}
static bool reftype_ok(uint8_t t) { return t == ENG_FUNCREF || t == ENG_EXTERNREF; }

static bool r_limits(rctx_t *c, eng_limits_t *l, bool memory, const char *what)
{
    l->min = r_u32(c);
    l->max = r_u32(c);
    R_CHECK(c);
    if (l->max != ENG_NO_MAX && l->max < l->min)
        return r_fail(c, "%s: minimum %u above maximum %u", what, l->min, l->max);
    if (memory && (l->min > ENG_MAX_PAGES || (l->max != ENG_NO_MAX && l->max > ENG_MAX_PAGES)))
        return r_fail(c, "%s: more than 65536 pages", what);
    return true;
}

/* A constant expression producing `expect`; globals it reads must be below
 * `nvisible`. */
static bool r_constexpr(rctx_t *c, eng_constexpr_t *ce, uint8_t expect, uint32_t nvisible)
{
    const eng_module_t *m = c->m;
    ce->kind = r_u8(c);
    ce->type = r_u8(c);
    ce->index = r_u32(c);
    ce->val.i64 = r_u64(c);
    ce->hi = r_u64(c);
    R_CHECK(c);
    if (ce->type != expect)
        return r_fail(c, "constant expression of type 0x%02x where 0x%02x is expected", ce->type,
                      expect);
    switch (ce->kind) {
    case ENG_CE_CONST:
        if (reftype_ok(ce->type) || !valtype_ok(ce->type))
            return r_fail(c, "constant of type 0x%02x", ce->type);
        break;
    case ENG_CE_GLOBAL_GET:
        if (ce->index >= nvisible || m->globals[ce->index].type != ce->type)
            return r_fail(c, "constant expression reads global %u", ce->index);
        break;
    case ENG_CE_REF_NULL:
        if (!reftype_ok(ce->type))
            return r_fail(c, "ref.null of type 0x%02x", ce->type);
        break;
    case ENG_CE_REF_FUNC:
        if (ce->type != ENG_FUNCREF || ce->index >= m->nfuncs)
            return r_fail(c, "ref.func of function %u", ce->index);
        break;
    default:
        return r_fail(c, "constant expression kind %u", ce->kind);
    }
    return true;
}

/* Checks one half-word or word operand of kind k. */
static bool operand_ok(const eng_module_t *m, const eng_code_func_t *cf, char k, uint64_t v)
{
    switch (k) {
    case 's': case 'S': return v < cf->frame_slots;
    case 'v': return v + 1 < cf->frame_slots;
    case 'a': return v <= cf->frame_slots;
    case 'i': case 'I': case '-': return true;
    case 'O': return v <= UINT32_MAX;
    case 'f': return v < m->nfuncs;
    case 't': return v < m->ntypes;
    case 'T': return v < m->ntables;
    case 'F': return v < m->ntables && m->tables[v].elem == ENG_FUNCREF;
    case 'g': return v < m->nglobals;
    case 'G': return v < m->nglobals && m->globals[v].mut;
    case 'd': case 'D': return v < m->ndatas;
    case 'e': case 'E': return v < m->nelems;
    case 'n': return true; /* bounded by the length check */
    case 'R': return true; /* checked against instruction starts afterwards */
    default: return false;
    }
}

static bool is_terminal(int op)
{
    return op == OP_unreachable || op == OP_br || op == OP_br_table || op == OP_ret ||
           op == OP_ret1;
}

/* Checks the operands of the instruction at code[i] (op numbers still in
 * place of handlers). Branch offsets are left to the caller. */
static bool inst_ok(const eng_module_t *m, const eng_code_func_t *cf, size_t i, int op)
{
    const eng_code_t *code = cf->code;
    if (is_memory_op(op) && m->nmems == 0)
        return false;
    const char *sh = op_shapes[op];
    for (size_t w = 0; sh[2 * w]; w++) {
        uint64_t v = code[i + 1 + w];
        bool ok = sh[2 * w + 1] == '_'
                      ? operand_ok(m, cf, sh[2 * w], v)
                      : operand_ok(m, cf, sh[2 * w], (uint32_t)v) &&
                            operand_ok(m, cf, sh[2 * w + 1], v >> 32);
        if (!ok)
            return false;
    }
    /* What one operand alone cannot say. */
    if (op == OP_call || op == OP_call_indirect) {
        uint32_t argslot = (uint32_t)(code[i + 1] >> 32);
        uint32_t t = op == OP_call ? m->func_type[(uint32_t)code[i + 1]] : (uint32_t)code[i + 1];
        return (uint64_t)argslot + m->types[t].param_slots <= cf->frame_slots;
    }
    if (op == OP_tbl_copy)
        return m->tables[(uint32_t)code[i + 3]].elem == m->tables[(uint32_t)(code[i + 3] >> 32)].elem;
    if (op == OP_tbl_init)
        return m->elems[(uint32_t)(code[i + 2] >> 32)].type == m->tables[code[i + 3]].elem;
    return true;
}

/* Reads, checks and relinks the code of defined function fi.
 *
 * Only instructions reachable from the function's entry are checked: the
 * compiler also emits the dead code that follows an unconditional branch
 * (docs/engine.md, "Polymorphic stack"), whose operands may name slots
 * past the frame. Execution enters a function only at word 0 and resumes
 * only after a call, so an instruction no path reaches never runs. */
static bool r_code(rctx_t *c, uint32_t fi)
{
    eng_module_t *m = c->m;
    eng_code_func_t *cf = &m->code[fi];
    uint32_t fidx = m->nfunc_imports + fi;
    cf->type_index = r_u32(c);
    cf->nlocals = r_u32(c);
    cf->frame_slots = r_u32(c);
    cf->body_offset = r_u32(c);
    uint64_t n = r_u64(c);
    R_CHECK(c);
    if (cf->type_index != m->func_type[fidx])
        return r_fail(c, "function %u: type %u, declared %u", fidx, cf->type_index,
                      m->func_type[fidx]);
    const eng_functype_t *ft = &m->types[cf->type_index];
    cf->param_slots = ft->param_slots;
    if (cf->nlocals < ft->param_slots || cf->nlocals > 2 * ENG_MAX_LOCALS ||
        cf->frame_slots < cf->nlocals || cf->frame_slots < ft->result_slots ||
        cf->frame_slots > SER_MAX_FRAME)
        return r_fail(c, "function %u: frame of %u slots with %u locals", fidx, cf->frame_slots,
                      cf->nlocals);
    if (n == 0 || n > rd_left(&c->r) / 8)
        return r_fail(c, "function %u: %llu code words do not fit", fidx, (unsigned long long)n);
    /* One extra word: an `unreachable` after the end, where a reachable
     * last instruction that falls through would go. */
    cf->code = malloc(((size_t)n + 1) * sizeof *cf->code);
    uint8_t *mark = calloc((size_t)n + 1, 1);     /* 1 = instruction start, 2 = reached */
    size_t *work = malloc(((size_t)n + 1) * sizeof *work);
    if (!cf->code || !mark || !work) {
        free(mark);
        free(work);
        return r_fail(c, "out of memory");
    }
    cf->code_len = (size_t)n;
    /* The format is little-endian, like every host this engine runs on. */
    memcpy(cf->code, rd_bytes(&c->r, (size_t)n * 8), (size_t)n * 8);
    cf->code[n] = OP_unreachable;
    mark[n] = 1;

    const uint64_t lim[LIM_COUNT] = {
        [LIM_SLOT] = cf->frame_slots, [LIM_SLOT2] = cf->frame_slots ? cf->frame_slots - 1u : 0,
        [LIM_ARG] = (uint64_t)cf->frame_slots + 1,
        [LIM_OFF32] = (uint64_t)UINT32_MAX + 1, [LIM_FUNC] = m->nfuncs, [LIM_TYPE] = m->ntypes,
        [LIM_TABLE] = m->ntables, [LIM_GLOBAL] = m->nglobals, [LIM_DATA] = m->ndatas,
        [LIM_ELEM] = m->nelems,
    };
    bool ok = true;
    /* Instruction boundaries, for all of the code. */
    for (size_t i = 0; i < n;) {
        uint64_t opw = cf->code[i];
        int op = opw < OP_COUNT && opw != OP_exit ? (int)opw : -1;
        size_t len = op < 0 ? 0 : inst_len(cf->code, i, n, op);
        if (!len) {
            ok = op < 0 ? r_fail(c, "function %u: word %zu: unknown op %llu", fidx, i,
                                 (unsigned long long)opw)
                        : r_fail(c, "function %u: %s at word %zu runs past the end", fidx,
                                 op_names[op], i);
            break;
        }
        mark[i] = 1;
        i += len;
    }
    /* The reachable instructions, from the entry. */
    size_t nwork = 0;
    work[nwork++] = 0;
    mark[0] |= 2;
    while (ok && nwork) {
        size_t i = work[--nwork];
        if (i == n)
            continue; /* the sentinel */
        int op = (int)cf->code[i];
        size_t len = inst_len(cf->code, i, n, op);
        bool good;
        if (ser.fast[op].slow) {
            good = inst_ok(m, cf, i, op);
        } else {
            good = !(ser.fast[op].memory && m->nmems == 0);
            for (uint8_t k = 0; k < ser.fast[op].nchecks && good; k++) {
                uint64_t v = cf->code[i + ser.fast[op].check[k].word];
                uint8_t part = ser.fast[op].check[k].part;
                v = part == 0 ? v : part == 1 ? (uint32_t)v : v >> 32;
                good = v < lim[ser.fast[op].check[k].limit];
            }
        }
        if (!good) {
            ok = r_fail(c, "function %u: %s at word %zu has an operand out of range", fidx,
                        op_names[op], i);
            break;
        }
        size_t nrel = 0, first = 0;
        if (op == OP_br_table) {
            first = 2;
            nrel = (size_t)(cf->code[i + 1] >> 32) + 1;
        } else if (ser.fast[op].rel_word) {
            first = ser.fast[op].rel_word;
            nrel = 1;
        }
        for (size_t k = 0; k <= nrel && ok; k++) {
            size_t to;
            if (k < nrel) {
                int64_t rel = (int64_t)cf->code[i + first + k];
                if ((rel < 0 && (uint64_t)0 - (uint64_t)rel > i) || (rel > 0 && (uint64_t)rel > n - i) ||
                    !(mark[i + (size_t)rel] & 1)) {
                    ok = r_fail(c, "function %u: %s at word %zu branches %lld words away, not "
                                   "to an instruction", fidx, op_names[op], i, (long long)rel);
                    break;
                }
                to = i + (size_t)rel;
            } else if (!is_terminal(op)) {
                to = i + len;
            } else {
                break;
            }
            if (!(mark[to] & 2)) {
                mark[to] |= 2;
                work[nwork++] = to; /* each position is pushed once: n + 1 fits */
            }
        }
    }
    if (ok) {
        for (size_t i = 0; i <= n; i++)
            if (mark[i] & 1)
                cf->code[i] = (uint64_t)(uintptr_t)ser.handlers[cf->code[i]];
    }
    free(mark);
    free(work);
    return ok;
}

static bool r_module(rctx_t *c)
{
    eng_module_t *m = c->m;
    uint32_t n;

    if (!r_count(c, &n, 8, "types"))
        return false;
    if (!(m->types = r_alloc(c, n, sizeof *m->types)))
        return false;
    m->ntypes = n;
    for (uint32_t i = 0; i < n; i++) {
        eng_functype_t *t = &m->types[i];
        uint32_t np = r_u32(c), nr = r_u32(c);
        R_CHECK(c);
        if ((uint64_t)np + nr > rd_left(&c->r))
            return r_fail(c, "type %u: %u params and %u results do not fit", i, np, nr);
        const uint8_t *p = rd_bytes(&c->r, (size_t)np + nr);
        R_CHECK(c);
        t->types = malloc((size_t)np + nr + 1);
        t->sig = malloc((size_t)np + nr + 3);
        if (!t->types || !t->sig)
            return r_fail(c, "out of memory");
        memcpy(t->types, p, (size_t)np + nr);
        t->nparams = np;
        t->nresults = nr;
        for (uint32_t k = 0; k < np + nr; k++)
            if (!valtype_ok(p[k]))
                return r_fail(c, "type %u: value type 0x%02x", i, p[k]);
        eng_functype_write_sig(t);
    }

    if (!r_count(c, &n, 4 + 4 + 1 + 4 + 1 + 16 + 2, "imports"))
        return false;
    if (!(m->imports = r_alloc(c, n, sizeof *m->imports)))
        return false;
    m->nimports = n;
    uint32_t counts[4] = {0};
    for (uint32_t i = 0; i < n; i++) {
        eng_import_t *im = &m->imports[i];
        if (!r_str(c, &im->module, NULL) || !r_str(c, &im->name, NULL))
            return false;
        im->kind = r_u8(c);
        im->type_index = r_u32(c);
        im->table.elem = r_u8(c);
        R_CHECK(c);
        if (!r_limits(c, &im->table.limits, false, "imported table") ||
            !r_limits(c, &im->memory, true, "imported memory"))
            return false;
        im->global.type = r_u8(c);
        uint8_t mut = r_u8(c);
        R_CHECK(c);
        im->global.mut = mut == 1;
        if (im->kind > ENG_EXTERN_GLOBAL || mut > 1)
            return r_fail(c, "import %u: kind %u", i, im->kind);
        if (im->kind == ENG_EXTERN_FUNC && im->type_index >= m->ntypes)
            return r_fail(c, "import %u: unknown type %u", i, im->type_index);
        if (im->kind == ENG_EXTERN_TABLE && !reftype_ok(im->table.elem))
            return r_fail(c, "import %u: table of 0x%02x", i, im->table.elem);
        if (im->kind == ENG_EXTERN_GLOBAL && !valtype_ok(im->global.type))
            return r_fail(c, "import %u: global of 0x%02x", i, im->global.type);
        counts[im->kind]++;
    }

    /* Index spaces: the imported prefix must agree with the imports. */
    uint32_t nimp;
    if (!r_count(c, &n, 0, "functions"))
        return false;
    nimp = r_u32(c);
    R_CHECK(c);
    if (n > ENG_MAX_FUNCS || nimp != counts[ENG_EXTERN_FUNC] || nimp > n || n > rd_left(&c->r) / 4)
        return r_fail(c, "%u functions with %u imported", n, nimp);
    if (!(m->func_type = r_alloc(c, n, sizeof *m->func_type)))
        return false;
    m->nfuncs = n;
    m->nfunc_imports = nimp;
    for (uint32_t i = 0, k = 0; i < n; i++) {
        m->func_type[i] = r_u32(c);
        R_CHECK(c);
        if (m->func_type[i] >= m->ntypes)
            return r_fail(c, "function %u: unknown type %u", i, m->func_type[i]);
        if (i < nimp) {
            while (m->imports[k].kind != ENG_EXTERN_FUNC)
                k++;
            if (m->imports[k++].type_index != m->func_type[i])
                return r_fail(c, "imported function %u: type disagrees with its import", i);
        }
    }
    if (!r_count(c, &n, 0, "tables"))
        return false;
    nimp = r_u32(c);
    R_CHECK(c);
    if (nimp != counts[ENG_EXTERN_TABLE] || nimp > n || n > rd_left(&c->r) / 9)
        return r_fail(c, "%u tables with %u imported", n, nimp);
    if (!(m->tables = r_alloc(c, n, sizeof *m->tables)))
        return false;
    m->ntables = n;
    m->ntable_imports = nimp;
    for (uint32_t i = 0; i < n; i++) {
        m->tables[i].elem = r_u8(c);
        R_CHECK(c);
        if (!reftype_ok(m->tables[i].elem))
            return r_fail(c, "table %u of 0x%02x", i, m->tables[i].elem);
        if (!r_limits(c, &m->tables[i].limits, false, "table"))
            return false;
    }
    if (!r_count(c, &n, 0, "memories"))
        return false;
    nimp = r_u32(c);
    R_CHECK(c);
    if (nimp != counts[ENG_EXTERN_MEMORY] || nimp > n || n > 1)
        return r_fail(c, "%u memories with %u imported", n, nimp);
    if (!(m->mems = r_alloc(c, n, sizeof *m->mems)))
        return false;
    m->nmems = n;
    m->nmem_imports = nimp;
    for (uint32_t i = 0; i < n; i++)
        if (!r_limits(c, &m->mems[i], true, "memory"))
            return false;
    if (!r_count(c, &n, 0, "globals"))
        return false;
    nimp = r_u32(c);
    R_CHECK(c);
    if (nimp != counts[ENG_EXTERN_GLOBAL] || nimp > n || n > rd_left(&c->r) / 2)
        return r_fail(c, "%u globals with %u imported", n, nimp);
    if (!(m->globals = r_alloc(c, n, sizeof *m->globals)) ||
        !(m->global_init = r_alloc(c, (size_t)n + 1, sizeof *m->global_init)))
        return false;
    m->nglobals = n;
    m->nglobal_imports = nimp;
    for (uint32_t i = 0; i < n; i++) {
        m->globals[i].type = r_u8(c);
        uint8_t mut = r_u8(c);
        R_CHECK(c);
        if (!valtype_ok(m->globals[i].type) || mut > 1)
            return r_fail(c, "global %u: type 0x%02x", i, m->globals[i].type);
        m->globals[i].mut = mut;
    }
    for (uint32_t i = 0, k = 0; i < nimp; i++) {
        while (m->imports[k].kind != ENG_EXTERN_GLOBAL)
            k++;
        if (m->imports[k].global.type != m->globals[i].type ||
            m->imports[k++].global.mut != m->globals[i].mut)
            return r_fail(c, "imported global %u: type disagrees with its import", i);
    }
    for (uint32_t k = 0, ti = 0, mi = 0; k < m->nimports; k++) {
        const eng_import_t *im = &m->imports[k];
        if (im->kind == ENG_EXTERN_TABLE) {
            const eng_tabletype_t *t = &m->tables[ti++];
            if (t->elem != im->table.elem || t->limits.min != im->table.limits.min ||
                t->limits.max != im->table.limits.max)
                return r_fail(c, "imported table %u: type disagrees with its import", ti - 1);
        } else if (im->kind == ENG_EXTERN_MEMORY) {
            const eng_limits_t *l = &m->mems[mi++];
            if (l->min != im->memory.min || l->max != im->memory.max)
                return r_fail(c, "imported memory %u: type disagrees with its import", mi - 1);
        }
    }
    for (uint32_t i = nimp; i < n; i++)
        if (!r_constexpr(c, &m->global_init[i], m->globals[i].type, m->nglobal_imports))
            return false;

    if (!r_count(c, &n, 9, "exports"))
        return false;
    if (!(m->exports = r_alloc(c, n, sizeof *m->exports)))
        return false;
    m->nexports = n;
    for (uint32_t i = 0; i < n; i++) {
        eng_export_t *e = &m->exports[i];
        if (!r_str(c, &e->name, &e->name_len))
            return false;
        e->kind = r_u8(c);
        e->index = r_u32(c);
        R_CHECK(c);
        uint32_t limit = e->kind == ENG_EXTERN_FUNC     ? m->nfuncs
                         : e->kind == ENG_EXTERN_TABLE  ? m->ntables
                         : e->kind == ENG_EXTERN_MEMORY ? m->nmems
                         : e->kind == ENG_EXTERN_GLOBAL ? m->nglobals
                                                        : 0;
        if (e->index >= limit)
            return r_fail(c, "export %u: kind %u index %u", i, e->kind, e->index);
    }
    uint8_t has_start = r_u8(c);
    m->start = r_u32(c);
    R_CHECK(c);
    if (has_start > 1 || (has_start && (m->start >= m->nfuncs ||
                                        m->types[m->func_type[m->start]].nparams ||
                                        m->types[m->func_type[m->start]].nresults)))
        return r_fail(c, "start function %u", m->start);
    m->has_start = has_start;

    if (!r_count(c, &n, 10 + SER_CONSTEXPR_BYTES, "element segments"))
        return false;
    if (!(m->elems = r_alloc(c, n, sizeof *m->elems)))
        return false;
    m->nelems = n;
    for (uint32_t i = 0; i < n; i++) {
        eng_elem_t *e = &m->elems[i];
        e->mode = r_u8(c);
        e->type = r_u8(c);
        e->table = r_u32(c);
        R_CHECK(c);
        if (e->mode > ENG_SEG_DECLARATIVE || !reftype_ok(e->type))
            return r_fail(c, "element segment %u: mode %u type 0x%02x", i, e->mode, e->type);
        if (e->mode == ENG_SEG_ACTIVE &&
            (e->table >= m->ntables || m->tables[e->table].elem != e->type))
            return r_fail(c, "element segment %u: table %u", i, e->table);
        if (e->mode == ENG_SEG_ACTIVE) {
            if (!r_constexpr(c, &e->offset, ENG_I32, m->nglobal_imports))
                return false;
        } else {
            rd_bytes(&c->r, SER_CONSTEXPR_BYTES); /* the unused offset */
            R_CHECK(c);
        }
        uint32_t cnt;
        if (!r_count(c, &cnt, SER_CONSTEXPR_BYTES, "element items"))
            return false;
        if (!(e->items = r_alloc(c, cnt, sizeof *e->items)))
            return false;
        e->count = cnt;
        for (uint32_t k = 0; k < cnt; k++) {
            if (!r_constexpr(c, &e->items[k], e->type, m->nglobal_imports))
                return false;
            if (e->items[k].kind == ENG_CE_CONST)
                return r_fail(c, "element segment %u: item %u is a number", i, k);
        }
    }

    uint8_t has_dc = r_u8(c);
    m->data_count = r_u32(c);
    R_CHECK(c);
    if (!r_count(c, &n, 9 + SER_CONSTEXPR_BYTES, "data segments"))
        return false;
    if (has_dc > 1 || (has_dc && m->data_count != n))
        return r_fail(c, "data count %u for %u segments", m->data_count, n);
    m->has_data_count = has_dc;
    if (!(m->datas = r_alloc(c, n, sizeof *m->datas)))
        return false;
    m->ndatas = n;
    for (uint32_t i = 0; i < n; i++) {
        eng_data_t *d = &m->datas[i];
        d->mode = r_u8(c);
        d->memory = r_u32(c);
        R_CHECK(c);
        if (d->mode > ENG_SEG_PASSIVE || (d->mode == ENG_SEG_ACTIVE && d->memory >= m->nmems))
            return r_fail(c, "data segment %u: mode %u memory %u", i, d->mode, d->memory);
        if (d->mode == ENG_SEG_ACTIVE) {
            if (!r_constexpr(c, &d->offset, ENG_I32, m->nglobal_imports))
                return false;
        } else {
            rd_bytes(&c->r, SER_CONSTEXPR_BYTES);
            R_CHECK(c);
        }
        uint32_t len;
        if (!r_count(c, &len, 1, "data bytes"))
            return false;
        const uint8_t *p = rd_bytes(&c->r, len);
        R_CHECK(c);
        if (!(d->bytes = r_alloc(c, len, 1)))
            return false;
        memcpy(d->bytes, p, len);
        d->len = len;
    }

    uint8_t has = r_u8(c);
    R_CHECK(c);
    if (has > 1)
        return r_fail(c, "declared-functions flag %u", has);
    if (!(m->func_declared = r_alloc(c, m->nfuncs, 1)))
        return false;
    if (has) {
        const uint8_t *p = rd_bytes(&c->r, m->nfuncs);
        R_CHECK(c);
        for (uint32_t i = 0; i < m->nfuncs; i++)
            m->func_declared[i] = p[i] != 0;
    }
    has = r_u8(c);
    R_CHECK(c);
    if (has > 1)
        return r_fail(c, "function-names flag %u", has);
    if (has) {
        if (m->nfuncs > rd_left(&c->r) / 4)
            return r_fail(c, "function names do not fit");
        if (!(m->func_names = r_alloc(c, m->nfuncs, sizeof *m->func_names)))
            return false;
        for (uint32_t i = 0; i < m->nfuncs; i++) {
            uint32_t l = r_u32(c);
            R_CHECK(c);
            if (l == 0)
                continue;
            if (l - 1 > rd_left(&c->r))
                return r_fail(c, "function %u: name of %u bytes does not fit", i, l - 1);
            const uint8_t *p = rd_bytes(&c->r, l - 1);
            R_CHECK(c);
            if (memchr(p, 0, l - 1))
                return r_fail(c, "function %u: name holds a NUL", i);
            if (!(m->func_names[i] = malloc(l)))
                return r_fail(c, "out of memory");
            memcpy(m->func_names[i], p, l - 1);
            m->func_names[i][l - 1] = 0;
        }
    }

    uint32_t ndefined = m->nfuncs - m->nfunc_imports;
    if (ndefined > rd_left(&c->r) / 32)
        return r_fail(c, "%u function bodies do not fit", ndefined);
    if (!(m->code = r_alloc(c, ndefined, sizeof *m->code)))
        return false;
    for (uint32_t i = 0; i < ndefined; i++)
        if (!r_code(c, i))
            return false;
    if (!rd_eof(&c->r))
        return r_fail(c, "%zu bytes after the last function", rd_left(&c->r));
    return true;
}

eng_module_t *eng_module_deserialize(const uint8_t *buf, size_t len, char *err, size_t errlen)
{
    if (err && errlen)
        err[0] = 0;
    if (!ser_ready(err, errlen))
        return NULL;
    if (!buf || len < SER_HEADER_BYTES + SER_HASH_BYTES) {
        eng_errf(err, errlen, "serialised module: %zu bytes is too short", buf ? len : 0);
        return NULL;
    }
    if (memcmp(buf, SER_MAGIC, 8) != 0) {
        eng_errf(err, errlen, "serialised module: bad magic (not a wasmfn compiled module)");
        return NULL;
    }
    uint32_t version = (uint32_t)buf[8] | (uint32_t)buf[9] << 8 | (uint32_t)buf[10] << 16 |
                       (uint32_t)buf[11] << 24;
    if (version != SER_VERSION) {
        eng_errf(err, errlen, "serialised module: stale: format version %u, this engine reads %u",
                 version, SER_VERSION);
        return NULL;
    }
    if (memcmp(buf + 12, ser.id, SER_ID_BYTES) != 0) {
        eng_errf(err, errlen, "serialised module: stale: made by another build of the engine");
        return NULL;
    }
    uint8_t md[EVP_MAX_MD_SIZE];
    unsigned mdlen = 0;
    size_t body = len - SER_HASH_BYTES;
    if (!EVP_Digest(buf, body, md, &mdlen, EVP_sha256(), NULL) ||
        memcmp(md, buf + body, SER_HASH_BYTES) != 0) {
        eng_errf(err, errlen, "serialised module: checksum mismatch (the file is damaged)");
        return NULL;
    }
    eng_module_t *m = calloc(1, sizeof *m);
    if (!m) {
        eng_errf(err, errlen, "out of memory");
        return NULL;
    }
    memcpy(m->sha256, buf + 12 + SER_ID_BYTES, 32);
    rctx_t c = {.m = m, .err = err, .errlen = errlen};
    rd_init(&c.r, buf + SER_HEADER_BYTES, body - SER_HEADER_BYTES, SER_HEADER_BYTES);
    if (!r_module(&c)) {
        if (err && errlen && !err[0])
            eng_errf(err, errlen, "serialised module: invalid");
        eng_module_free(m);
        return NULL;
    }
    return m;
}

size_t eng_module_size_bytes(const eng_module_t *m)
{
    size_t n = sizeof *m + (size_t)m->ntypes * sizeof *m->types +
               (size_t)m->nimports * sizeof *m->imports + (size_t)m->nfuncs * (4 + 1) +
               (size_t)m->nexports * sizeof *m->exports + (size_t)m->nelems * sizeof *m->elems +
               (size_t)m->ndatas * sizeof *m->datas;
    for (uint32_t i = 0; i < m->ntypes; i++)
        n += 2 * ((size_t)m->types[i].nparams + m->types[i].nresults) + 4;
    for (uint32_t i = 0; i < m->nexports; i++)
        n += m->exports[i].name_len + 1;
    for (uint32_t i = 0; i < m->nelems; i++)
        n += (size_t)m->elems[i].count * sizeof(eng_constexpr_t);
    for (uint32_t i = 0; i < m->ndatas; i++)
        n += m->datas[i].len;
    for (uint32_t i = 0; i < m->nfuncs - m->nfunc_imports; i++)
        n += sizeof(eng_code_func_t) + m->code[i].code_len * sizeof(eng_code_t);
    if (m->func_names)
        for (uint32_t i = 0; i < m->nfuncs; i++)
            n += sizeof(char *) + (m->func_names[i] ? strlen(m->func_names[i]) + 1 : 0);
    n += eng_native_size_bytes(__atomic_load_n(&m->native, __ATOMIC_ACQUIRE));
    return n;
}
