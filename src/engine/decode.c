/*
 * decode.c — WebAssembly 2.0 binary modules -> eng_module_t.
 *
 * One pass over the sections in their required order, validating as it goes:
 * indices are checked against the index spaces built so far, constant
 * expressions are checked for kind and type, limits and names are checked as
 * the spec says. Function bodies are handed to eng_compile_func (compile.c)
 * one by one, once everything they may refer to is known.
 *
 * Every section is read through its own bounded reader (reader.h), so a
 * construct can never run past its section into the next; overruns surface as
 * "unexpected end of section or function" and leftovers as "section size
 * mismatch". All failures leave through dec_fail(), which writes one message
 * "at byte 0x.. (NAME section): WHAT", and eng_module_new then frees whatever
 * was built: eng_module_free copes with any partially filled module.
 *
 * Custom sections never make a module invalid beyond their own framing (the
 * section name must be well-formed UTF-8). The "name" section's function-name
 * subsection is read best-effort after all other sections.
 */
#include "engine/internal.h"

#include <openssl/evp.h>
#include "engine/reader.h"

#include <stdatomic.h>
#include <stdlib.h>

/* Section ids and the position each must take in a module. */
enum {
    SEC_CUSTOM = 0, SEC_TYPE = 1, SEC_IMPORT = 2, SEC_FUNCTION = 3, SEC_TABLE = 4,
    SEC_MEMORY = 5, SEC_GLOBAL = 6, SEC_EXPORT = 7, SEC_START = 8, SEC_ELEMENT = 9,
    SEC_CODE = 10, SEC_DATA = 11, SEC_DATACOUNT = 12,
};

static const char *const section_names[] = {
    "custom", "type", "import", "function", "table", "memory", "global",
    "export", "start", "element", "code", "data", "data count",
};

/* Order rank: data count (12) sits between element (9) and code (10). */
static int section_rank(unsigned id)
{
    if (id <= SEC_ELEMENT)
        return (int)id;
    if (id == SEC_DATACOUNT)
        return 10;
    return (int)id + 1; /* code 11, data 12 */
}

typedef struct dec {
    eng_module_t *m;
    eng_reader_t r;          /* the current section */
    const char *sec;         /* its name, for messages */
    char *err;
    size_t errlen;
} dec_t;

/* Fails at an explicit offset with a formatted message. */
static bool dec_failf_at(dec_t *d, size_t off, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static bool dec_failf_at(dec_t *d, size_t off, const char *fmt, ...)
{
    char msg[ENG_ERR_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return eng_errf(d->err, d->errlen, "at byte 0x%zx (%s section): %s", off, d->sec, msg);
}

/* Reports the reader's recorded error. Running out of bytes inside a
 * section is named as the spec's reference interpreter names it. */
static bool dec_reader_fail(dec_t *d)
{
    const char *msg = d->r.error ? d->r.error : "unexpected end";
    if (strcmp(msg, "unexpected end") == 0)
        msg = "unexpected end of section or function";
    return dec_failf_at(d, d->r.error_offset, "%s", msg);
}

/* Checks the reader after a construct: true if all is well. */
#define DEC_CHECK(d) do { if (!rd_ok(&(d)->r)) return dec_reader_fail(d); } while (0)

/* Reads a vector count and checks it could fit in what is left (every
 * element takes at least one byte), so counts never drive huge allocations. */
static bool dec_count(dec_t *d, uint32_t *out)
{
    size_t off = rd_offset(&d->r);
    uint32_t n = rd_u32(&d->r);
    DEC_CHECK(d);
    if (n > rd_left(&d->r))
        return dec_failf_at(d, off, "unexpected end of section or function (count %u exceeds the section)", n);
    *out = n;
    return true;
}

/* ---- Names ---- */

/* Strict UTF-8: no overlongs, no surrogates, nothing above U+10FFFF. */
static bool utf8_valid(const uint8_t *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        uint8_t c = s[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t len;
        uint32_t cp, min;
        if ((c & 0xE0) == 0xC0) {
            len = 2; cp = c & 0x1F; min = 0x80;
        } else if ((c & 0xF0) == 0xE0) {
            len = 3; cp = c & 0x0F; min = 0x800;
        } else if ((c & 0xF8) == 0xF0) {
            len = 4; cp = c & 0x07; min = 0x10000;
        } else {
            return false;
        }
        if (n - i < len)
            return false;
        for (size_t k = 1; k < len; k++) {
            if ((s[i + k] & 0xC0) != 0x80)
                return false;
            cp = (cp << 6) | (s[i + k] & 0x3F);
        }
        if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            return false;
        i += len;
    }
    return true;
}

/* Reads a name; returns its bytes (not NUL-terminated) and length. */
static bool dec_name_raw(dec_t *d, const uint8_t **p, uint32_t *len)
{
    size_t off = rd_offset(&d->r);
    uint32_t n = rd_u32(&d->r);
    DEC_CHECK(d);
    if (n > rd_left(&d->r))
        return dec_failf_at(d, off, "length out of bounds (name of %u bytes)", n);
    const uint8_t *b = rd_bytes(&d->r, n);
    DEC_CHECK(d);
    if (!utf8_valid(b, n))
        return dec_failf_at(d, off, "malformed UTF-8 encoding");
    *p = b;
    *len = n;
    return true;
}

static char *dup_bytes(const uint8_t *p, size_t n)
{
    char *s = malloc(n + 1);
    if (s) {
        if (n)
            memcpy(s, p, n);
        s[n] = 0;
    }
    return s;
}

static bool dec_oom(dec_t *d)
{
    return dec_failf_at(d, rd_offset(&d->r), "out of memory");
}

static bool dec_name(dec_t *d, char **out)
{
    const uint8_t *p;
    uint32_t n;
    if (!dec_name_raw(d, &p, &n))
        return false;
    *out = dup_bytes(p, n);
    return *out ? true : dec_oom(d);
}

/* ---- Types ---- */

static char valtype_letter(uint8_t t)
{
    switch (t) {
    case ENG_I32: return 'i';
    case ENG_I64: return 'I';
    case ENG_F32: return 'f';
    case ENG_F64: return 'F';
    case ENG_V128: return 'v';
    case ENG_EXTERNREF: return 'r';
    case ENG_FUNCREF: return 'R';
    default: return '?';
    }
}

static bool dec_valtype(dec_t *d, uint8_t *out)
{
    size_t off = rd_offset(&d->r);
    uint8_t b = rd_u8(&d->r);
    DEC_CHECK(d);
    switch (b) {
    case ENG_I32: case ENG_I64: case ENG_F32: case ENG_F64:
    case ENG_FUNCREF: case ENG_EXTERNREF: case ENG_V128:
        *out = b;
        return true;
    default:
        return dec_failf_at(d, off, "malformed value type 0x%02x", b);
    }
}

static bool dec_reftype(dec_t *d, uint8_t *out)
{
    size_t off = rd_offset(&d->r);
    uint8_t b = rd_u8(&d->r);
    DEC_CHECK(d);
    if (b != ENG_FUNCREF && b != ENG_EXTERNREF)
        return dec_failf_at(d, off, "malformed reference type 0x%02x", b);
    *out = b;
    return true;
}

/* limits ::= 0x00 min | 0x01 min max. `bound` is the largest value allowed
 * for either (65536 pages for memories). */
static bool dec_limits(dec_t *d, eng_limits_t *l, bool memory)
{
    size_t off = rd_offset(&d->r);
    uint8_t flags = rd_u8(&d->r);
    DEC_CHECK(d);
    if (flags > 1)
        return dec_failf_at(d, off, "malformed limits flags 0x%02x%s", flags,
                            memory && (flags == 2 || flags == 3) ? " (shared memory is not supported)" : "");
    l->min = rd_u32(&d->r);
    l->max = ENG_NO_MAX;
    bool has_max = flags == 1;
    uint32_t max = has_max ? rd_u32(&d->r) : 0;
    DEC_CHECK(d);
    if (memory) {
        if (l->min > ENG_MAX_PAGES || (has_max && max > ENG_MAX_PAGES))
            return dec_failf_at(d, off, "memory size must be at most 65536 pages (4GiB)");
    }
    if (has_max) {
        if (max < l->min)
            return dec_failf_at(d, off, "size minimum must not be greater than maximum");
        l->max = max;
    }
    return true;
}

static bool dec_tabletype(dec_t *d, eng_tabletype_t *t)
{
    return dec_reftype(d, &t->elem) && dec_limits(d, &t->limits, false);
}

static bool dec_globaltype(dec_t *d, eng_globaltype_t *g)
{
    if (!dec_valtype(d, &g->type))
        return false;
    size_t off = rd_offset(&d->r);
    uint8_t mut = rd_u8(&d->r);
    DEC_CHECK(d);
    if (mut > 1)
        return dec_failf_at(d, off, "malformed mutability 0x%02x", mut);
    g->mut = mut == 1;
    return true;
}

static const char *valtype_name(uint8_t t)
{
    switch (t) {
    case ENG_I32: return "i32";
    case ENG_I64: return "i64";
    case ENG_F32: return "f32";
    case ENG_F64: return "f64";
    case ENG_V128: return "v128";
    case ENG_FUNCREF: return "funcref";
    case ENG_EXTERNREF: return "externref";
    default: return "?";
    }
}

/* ---- Constant expressions ---- */

static void mark_declared(eng_module_t *m, uint32_t f)
{
    if (m->func_declared && f < m->nfuncs)
        m->func_declared[f] = 1;
}

static bool is_const_opcode(uint8_t op)
{
    return op == 0x41 || op == 0x42 || op == 0x43 || op == 0x44 || op == 0x23 || op == 0xD0 ||
           op == 0xD2 || op == 0xFD;
}

/* Reads one constant expression producing `expect`. In WebAssembly 2.0 it
 * is exactly one of t.const, ref.null, ref.func or global.get of an
 * imported immutable global, followed by end. */
static bool dec_constexpr(dec_t *d, uint8_t expect, eng_constexpr_t *ce)
{
    eng_module_t *m = d->m;
    memset(ce, 0, sizeof *ce);
    size_t off = rd_offset(&d->r);
    uint8_t op = rd_u8(&d->r);
    DEC_CHECK(d);
    switch (op) {
    case 0x41:
        ce->kind = ENG_CE_CONST;
        ce->type = ENG_I32;
        ce->val.i32 = (uint32_t)rd_s32(&d->r);
        break;
    case 0x42:
        ce->kind = ENG_CE_CONST;
        ce->type = ENG_I64;
        ce->val.i64 = (uint64_t)rd_s64(&d->r);
        break;
    case 0x43: {
        ce->kind = ENG_CE_CONST;
        ce->type = ENG_F32;
        uint32_t bits = rd_fixed32(&d->r);
        memcpy(&ce->val.f32, &bits, 4);
        break;
    }
    case 0x44: {
        ce->kind = ENG_CE_CONST;
        ce->type = ENG_F64;
        uint64_t bits = rd_fixed64(&d->r);
        memcpy(&ce->val.f64, &bits, 8);
        break;
    }
    case 0x23: {
        ce->kind = ENG_CE_GLOBAL_GET;
        ce->index = rd_u32(&d->r);
        DEC_CHECK(d);
        /* Only imported globals are visible to constant expressions. */
        if (ce->index >= m->nglobal_imports)
            return dec_failf_at(d, off, "unknown global %u", ce->index);
        if (m->globals[ce->index].mut)
            return dec_failf_at(d, off, "constant expression required (global %u is mutable)", ce->index);
        ce->type = m->globals[ce->index].type;
        break;
    }
    case 0xD0:
        ce->kind = ENG_CE_REF_NULL;
        if (!dec_reftype(d, &ce->type))
            return false;
        break;
    case 0xD2:
        ce->kind = ENG_CE_REF_FUNC;
        ce->type = ENG_FUNCREF;
        ce->index = rd_u32(&d->r);
        DEC_CHECK(d);
        if (ce->index >= m->nfuncs)
            return dec_failf_at(d, off, "unknown function %u", ce->index);
        mark_declared(m, ce->index);
        break;
    case 0x0B:
        return dec_failf_at(d, off, "type mismatch: empty constant expression, expected %s",
                            valtype_name(expect));
    case 0xFD: { /* v128.const, the only SIMD instruction that is constant */
        uint32_t sub = rd_u32(&d->r);
        DEC_CHECK(d);
        if (sub != 0x0C)
            return dec_failf_at(d, off, "constant expression required (opcode 0xfd 0x%02x)", sub);
        ce->kind = ENG_CE_CONST;
        ce->type = ENG_V128;
        ce->val.i64 = rd_fixed64(&d->r);
        ce->hi = rd_fixed64(&d->r);
        break;
    }
    default:
        return dec_failf_at(d, off, "constant expression required (opcode 0x%02x)", op);
    }
    DEC_CHECK(d);
    size_t end_off = rd_offset(&d->r);
    uint8_t end = rd_u8(&d->r);
    DEC_CHECK(d);
    if (end != 0x0B) {
        if (is_const_opcode(end))
            return dec_failf_at(d, end_off, "type mismatch: constant expression leaves more than one value");
        return dec_failf_at(d, end_off, "constant expression required (opcode 0x%02x)", end);
    }
    if (ce->type != expect)
        return dec_failf_at(d, off, "type mismatch: constant expression of type %s, expected %s",
                            valtype_name(ce->type), valtype_name(expect));
    return true;
}

/* ---- Sections ---- */

static bool sec_type(dec_t *d)
{
    eng_module_t *m = d->m;
    uint32_t n;
    if (!dec_count(d, &n))
        return false;
    m->types = calloc(n ? n : 1, sizeof *m->types);
    if (!m->types)
        return dec_oom(d);
    for (uint32_t i = 0; i < n; i++) {
        size_t off = rd_offset(&d->r);
        uint8_t form = rd_u8(&d->r);
        DEC_CHECK(d);
        if (form != 0x60) {
            /* 0x80 and up would be a multi-byte LEB where one byte belongs. */
            if (form & 0x80)
                return dec_failf_at(d, off, "integer representation too long (function type form 0x%02x)", form);
            return dec_failf_at(d, off, "malformed function type 0x%02x", form);
        }
        eng_functype_t *t = &m->types[i];
        uint32_t np, nr;
        if (!dec_count(d, &np))
            return false;
        uint8_t *pt = malloc(np ? np : 1);
        if (!pt)
            return dec_oom(d);
        for (uint32_t k = 0; k < np; k++) {
            if (!dec_valtype(d, &pt[k])) {
                free(pt);
                return false;
            }
        }
        if (!dec_count(d, &nr)) {
            free(pt);
            return false;
        }
        t->types = realloc(pt, (size_t)np + nr + 1);
        if (!t->types) {
            free(pt);
            return dec_oom(d);
        }
        m->ntypes = i + 1;
        t->nparams = np;
        for (uint32_t k = 0; k < nr; k++)
            if (!dec_valtype(d, &t->types[np + k]))
                return false;
        t->nresults = nr;
        t->sig = malloc((size_t)np + nr + 3);
        if (!t->sig)
            return dec_oom(d);
        eng_functype_write_sig(t);
    }
    return true;
}

void eng_functype_write_sig(eng_functype_t *t)
{
    t->param_slots = t->result_slots = 0;
    for (uint32_t k = 0; k < t->nparams + t->nresults; k++)
        *(k < t->nparams ? &t->param_slots : &t->result_slots) += eng_type_slots(t->types[k]);
    char *s = t->sig;
    *s++ = '(';
    for (uint32_t k = 0; k < t->nparams; k++)
        *s++ = valtype_letter(t->types[k]);
    *s++ = ')';
    for (uint32_t k = 0; k < t->nresults; k++)
        *s++ = valtype_letter(t->types[t->nparams + k]);
    *s = 0;
    t->key = eng_functype_key(t);
}

/* Appends to a growable array of the module; sizes are bounded by the
 * section size, so the counts cannot overflow. */
static bool grow_array(void **arr, uint32_t n, size_t elem)
{
    void *p = realloc(*arr, ((size_t)n + 1) * elem);
    if (!p)
        return false;
    *arr = p;
    return true;
}

static bool sec_import(dec_t *d)
{
    eng_module_t *m = d->m;
    uint32_t n;
    if (!dec_count(d, &n))
        return false;
    m->imports = calloc(n ? n : 1, sizeof *m->imports);
    if (!m->imports)
        return dec_oom(d);
    for (uint32_t i = 0; i < n; i++) {
        eng_import_t *im = &m->imports[i];
        m->nimports = i + 1;
        if (!dec_name(d, &im->module) || !dec_name(d, &im->name))
            return false;
        size_t off = rd_offset(&d->r);
        uint8_t kind = rd_u8(&d->r);
        DEC_CHECK(d);
        im->kind = kind;
        switch (kind) {
        case ENG_EXTERN_FUNC: {
            size_t toff = rd_offset(&d->r);
            im->type_index = rd_u32(&d->r);
            DEC_CHECK(d);
            if (im->type_index >= m->ntypes)
                return dec_failf_at(d, toff, "unknown type %u", im->type_index);
            if (m->nfuncs >= ENG_MAX_FUNCS)
                return dec_failf_at(d, off, "too many functions");
            if (!grow_array((void **)&m->func_type, m->nfuncs, sizeof *m->func_type))
                return dec_oom(d);
            m->func_type[m->nfuncs++] = im->type_index;
            m->nfunc_imports++;
            break;
        }
        case ENG_EXTERN_TABLE:
            if (!dec_tabletype(d, &im->table))
                return false;
            if (!grow_array((void **)&m->tables, m->ntables, sizeof *m->tables))
                return dec_oom(d);
            m->tables[m->ntables++] = im->table;
            m->ntable_imports++;
            break;
        case ENG_EXTERN_MEMORY:
            if (!dec_limits(d, &im->memory, true))
                return false;
            if (m->nmems >= 1)
                return dec_failf_at(d, off, "multiple memories");
            if (!grow_array((void **)&m->mems, m->nmems, sizeof *m->mems))
                return dec_oom(d);
            m->mems[m->nmems++] = im->memory;
            m->nmem_imports++;
            break;
        case ENG_EXTERN_GLOBAL:
            if (!dec_globaltype(d, &im->global))
                return false;
            if (!grow_array((void **)&m->globals, m->nglobals, sizeof *m->globals))
                return dec_oom(d);
            m->globals[m->nglobals++] = im->global;
            m->nglobal_imports++;
            break;
        default:
            return dec_failf_at(d, off, "malformed import kind 0x%02x", kind);
        }
    }
    return true;
}

static bool sec_function(dec_t *d)
{
    eng_module_t *m = d->m;
    uint32_t n;
    if (!dec_count(d, &n))
        return false;
    if ((uint64_t)m->nfuncs + n > ENG_MAX_FUNCS)
        return dec_failf_at(d, rd_offset(&d->r), "too many functions (%u)", n);
    uint32_t *ft = realloc(m->func_type, ((size_t)m->nfuncs + n + 1) * sizeof *ft);
    if (!ft)
        return dec_oom(d);
    m->func_type = ft;
    for (uint32_t i = 0; i < n; i++) {
        size_t off = rd_offset(&d->r);
        uint32_t t = rd_u32(&d->r);
        DEC_CHECK(d);
        if (t >= m->ntypes)
            return dec_failf_at(d, off, "unknown type %u", t);
        m->func_type[m->nfuncs++] = t;
    }
    return true;
}

static bool sec_table(dec_t *d)
{
    eng_module_t *m = d->m;
    uint32_t n;
    if (!dec_count(d, &n))
        return false;
    eng_tabletype_t *t = realloc(m->tables, ((size_t)m->ntables + n + 1) * sizeof *t);
    if (!t)
        return dec_oom(d);
    m->tables = t;
    for (uint32_t i = 0; i < n; i++) {
        if (!dec_tabletype(d, &m->tables[m->ntables]))
            return false;
        m->ntables++;
    }
    return true;
}

static bool sec_memory(dec_t *d)
{
    eng_module_t *m = d->m;
    uint32_t n;
    if (!dec_count(d, &n))
        return false;
    eng_limits_t *l = realloc(m->mems, ((size_t)m->nmems + n + 1) * sizeof *l);
    if (!l)
        return dec_oom(d);
    m->mems = l;
    for (uint32_t i = 0; i < n; i++) {
        size_t off = rd_offset(&d->r);
        if (!dec_limits(d, &m->mems[m->nmems], true))
            return false;
        if (m->nmems >= 1)
            return dec_failf_at(d, off, "multiple memories");
        m->nmems++;
    }
    return true;
}

static bool sec_global(dec_t *d)
{
    eng_module_t *m = d->m;
    uint32_t n;
    if (!dec_count(d, &n))
        return false;
    size_t total = (size_t)m->nglobals + n;
    eng_globaltype_t *g = realloc(m->globals, (total + 1) * sizeof *g);
    if (!g)
        return dec_oom(d);
    m->globals = g;
    m->global_init = calloc(total + 1, sizeof *m->global_init);
    if (!m->global_init)
        return dec_oom(d);
    for (uint32_t i = 0; i < n; i++) {
        uint32_t gi = m->nglobals;
        if (!dec_globaltype(d, &m->globals[gi]))
            return false;
        if (!dec_constexpr(d, m->globals[gi].type, &m->global_init[gi]))
            return false;
        m->nglobals++;
    }
    return true;
}

typedef struct name_slice {
    const uint8_t *p;
    uint32_t len;
    size_t off;
} name_slice_t;

static int name_slice_cmp(const void *a, const void *b)
{
    const name_slice_t *x = a, *y = b;
    uint32_t n = x->len < y->len ? x->len : y->len;
    int c = n ? memcmp(x->p, y->p, n) : 0;
    if (c)
        return c;
    if (x->len != y->len)
        return x->len < y->len ? -1 : 1;
    return x->off < y->off ? -1 : x->off > y->off;
}

static bool sec_export(dec_t *d)
{
    eng_module_t *m = d->m;
    uint32_t n;
    if (!dec_count(d, &n))
        return false;
    m->exports = calloc(n ? n : 1, sizeof *m->exports);
    name_slice_t *names = malloc((n ? n : 1) * sizeof *names);
    if (!m->exports || !names) {
        free(names);
        return dec_oom(d);
    }
    bool ok = true;
    for (uint32_t i = 0; i < n && ok; i++) {
        eng_export_t *e = &m->exports[i];
        names[i].off = rd_offset(&d->r);
        if (!dec_name_raw(d, &names[i].p, &names[i].len)) {
            ok = false;
            break;
        }
        e->name = dup_bytes(names[i].p, names[i].len);
        e->name_len = (uint32_t)names[i].len;
        m->nexports = i + 1;
        if (!e->name) {
            ok = dec_oom(d);
            break;
        }
        size_t off = rd_offset(&d->r);
        e->kind = rd_u8(&d->r);
        e->index = rd_u32(&d->r);
        if (!rd_ok(&d->r)) {
            ok = dec_reader_fail(d);
            break;
        }
        switch (e->kind) {
        case ENG_EXTERN_FUNC:
            if (e->index >= m->nfuncs)
                ok = dec_failf_at(d, off, "unknown function %u", e->index);
            else
                mark_declared(m, e->index);
            break;
        case ENG_EXTERN_TABLE:
            if (e->index >= m->ntables)
                ok = dec_failf_at(d, off, "unknown table %u", e->index);
            break;
        case ENG_EXTERN_MEMORY:
            if (e->index >= m->nmems)
                ok = dec_failf_at(d, off, "unknown memory %u", e->index);
            break;
        case ENG_EXTERN_GLOBAL:
            if (e->index >= m->nglobals)
                ok = dec_failf_at(d, off, "unknown global %u", e->index);
            break;
        default:
            ok = dec_failf_at(d, off, "malformed export kind 0x%02x", e->kind);
        }
    }
    if (ok && n > 1) {
        /* Names may hold U+0000, so compare them as byte strings. */
        qsort(names, n, sizeof *names, name_slice_cmp);
        for (uint32_t i = 1; i < n && ok; i++) {
            if (names[i].len == names[i - 1].len &&
                (names[i].len == 0 || memcmp(names[i].p, names[i - 1].p, names[i].len) == 0))
                ok = dec_failf_at(d, names[i].off, "duplicate export name \"%.*s\"",
                                  (int)(names[i].len > 64 ? 64 : names[i].len), (const char *)names[i].p);
        }
    }
    free(names);
    return ok;
}

static bool sec_start(dec_t *d)
{
    eng_module_t *m = d->m;
    size_t off = rd_offset(&d->r);
    uint32_t f = rd_u32(&d->r);
    DEC_CHECK(d);
    if (f >= m->nfuncs)
        return dec_failf_at(d, off, "unknown function %u", f);
    const eng_functype_t *t = &m->types[m->func_type[f]];
    if (t->nparams || t->nresults)
        return dec_failf_at(d, off, "start function %u must have type [] -> [], has %s", f, t->sig);
    m->has_start = true;
    m->start = f;
    return true;
}

static bool sec_element(dec_t *d)
{
    eng_module_t *m = d->m;
    uint32_t n;
    if (!dec_count(d, &n))
        return false;
    m->elems = calloc(n ? n : 1, sizeof *m->elems);
    if (!m->elems)
        return dec_oom(d);
    for (uint32_t i = 0; i < n; i++) {
        eng_elem_t *e = &m->elems[i];
        m->nelems = i + 1;
        size_t off = rd_offset(&d->r);
        uint32_t flags = rd_u32(&d->r);
        DEC_CHECK(d);
        if (flags > 7)
            return dec_failf_at(d, off, "malformed elements segment kind %u", flags);
        bool exprs = flags & 4;
        if (flags & 1)
            e->mode = (flags & 2) ? ENG_SEG_DECLARATIVE : ENG_SEG_PASSIVE;
        else
            e->mode = ENG_SEG_ACTIVE;
        e->type = ENG_FUNCREF;
        if (e->mode == ENG_SEG_ACTIVE) {
            size_t toff = (flags & 2) ? rd_offset(&d->r) : off; /* table 0 is implicit */
            e->table = (flags & 2) ? rd_u32(&d->r) : 0;
            DEC_CHECK(d);
            if (e->table >= m->ntables)
                return dec_failf_at(d, toff, "unknown table %u", e->table);
            if (!dec_constexpr(d, ENG_I32, &e->offset))
                return false;
        }
        /* Flags 0 and 4 imply funcref; the others name the kind. */
        if (flags & 3) {
            if (exprs) {
                if (!dec_reftype(d, &e->type))
                    return false;
            } else {
                size_t koff = rd_offset(&d->r);
                uint8_t kind = rd_u8(&d->r);
                DEC_CHECK(d);
                if (kind != 0)
                    return dec_failf_at(d, koff, "malformed element kind 0x%02x", kind);
            }
        }
        if (e->mode == ENG_SEG_ACTIVE && m->tables[e->table].elem != e->type)
            return dec_failf_at(d, off, "type mismatch: %s segment for a table of %s",
                                valtype_name(e->type), valtype_name(m->tables[e->table].elem));
        uint32_t cnt;
        if (!dec_count(d, &cnt))
            return false;
        e->items = calloc(cnt ? cnt : 1, sizeof *e->items);
        if (!e->items)
            return dec_oom(d);
        for (uint32_t k = 0; k < cnt; k++) {
            eng_constexpr_t *ce = &e->items[k];
            if (exprs) {
                if (!dec_constexpr(d, e->type, ce))
                    return false;
            } else {
                size_t foff = rd_offset(&d->r);
                ce->kind = ENG_CE_REF_FUNC;
                ce->type = ENG_FUNCREF;
                ce->index = rd_u32(&d->r);
                DEC_CHECK(d);
                if (ce->index >= m->nfuncs)
                    return dec_failf_at(d, foff, "unknown function %u", ce->index);
                mark_declared(m, ce->index);
            }
            e->count = k + 1;
        }
    }
    return true;
}

static bool sec_datacount(dec_t *d)
{
    d->m->data_count = rd_u32(&d->r);
    DEC_CHECK(d);
    d->m->has_data_count = true;
    return true;
}

static bool sec_code(dec_t *d)
{
    eng_module_t *m = d->m;
    uint32_t ndefined = m->nfuncs - m->nfunc_imports;
    size_t off = rd_offset(&d->r);
    uint32_t n = rd_u32(&d->r);
    DEC_CHECK(d);
    if (n != ndefined)
        return dec_failf_at(d, off, "function and code section have inconsistent lengths (%u functions, %u bodies)",
                            ndefined, n);
    m->code = calloc(ndefined ? ndefined : 1, sizeof *m->code);
    if (!m->code)
        return dec_oom(d);
    for (uint32_t i = 0; i < n; i++) {
        size_t boff = rd_offset(&d->r);
        uint32_t size = rd_u32(&d->r);
        DEC_CHECK(d);
        if (size > rd_left(&d->r))
            return dec_failf_at(d, boff, "unexpected end of section or function (body of %u bytes)", size);
        size_t body_off = rd_offset(&d->r);
        const uint8_t *body = rd_bytes(&d->r, size);
        DEC_CHECK(d);
        if (!eng_compile_func(m, i, body, size, body_off, d->err, d->errlen))
            return false;
    }
    return true;
}

static bool sec_data(dec_t *d)
{
    eng_module_t *m = d->m;
    size_t off = rd_offset(&d->r);
    uint32_t n;
    if (!dec_count(d, &n))
        return false;
    if (m->has_data_count && n != m->data_count)
        return dec_failf_at(d, off, "data count and data section have inconsistent lengths (%u and %u)",
                            m->data_count, n);
    m->datas = calloc(n ? n : 1, sizeof *m->datas);
    if (!m->datas)
        return dec_oom(d);
    for (uint32_t i = 0; i < n; i++) {
        eng_data_t *s = &m->datas[i];
        m->ndatas = i + 1;
        size_t foff = rd_offset(&d->r);
        uint32_t flags = rd_u32(&d->r);
        DEC_CHECK(d);
        if (flags > 2)
            return dec_failf_at(d, foff, "malformed data segment kind %u", flags);
        s->mode = flags == 1 ? ENG_SEG_PASSIVE : ENG_SEG_ACTIVE;
        if (s->mode == ENG_SEG_ACTIVE) {
            size_t moff = flags == 2 ? rd_offset(&d->r) : foff; /* memory 0 is implicit in flags 0 */
            s->memory = flags == 2 ? rd_u32(&d->r) : 0;
            DEC_CHECK(d);
            if (s->memory >= m->nmems)
                return dec_failf_at(d, moff, "unknown memory %u", s->memory);
            if (!dec_constexpr(d, ENG_I32, &s->offset))
                return false;
        }
        size_t loff = rd_offset(&d->r);
        uint32_t len = rd_u32(&d->r);
        DEC_CHECK(d);
        if (len > rd_left(&d->r))
            return dec_failf_at(d, loff, "unexpected end of section or function (data of %u bytes)", len);
        const uint8_t *p = rd_bytes(&d->r, len);
        DEC_CHECK(d);
        s->bytes = malloc(len ? len : 1);
        if (!s->bytes)
            return dec_oom(d);
        if (len)
            memcpy(s->bytes, p, len);
        s->len = len;
    }
    return true;
}

/* The "name" custom section, function names only. Best effort: anything
 * malformed ends the parse quietly and keeps what was read. */
static void parse_name_section(eng_module_t *m, const uint8_t *p, size_t len, size_t base)
{
    eng_reader_t r;
    rd_init(&r, p, len, base);
    while (rd_ok(&r) && !rd_eof(&r)) {
        uint8_t id = rd_u8(&r);
        uint32_t size = rd_u32(&r);
        if (!rd_ok(&r) || size > rd_left(&r))
            return;
        const uint8_t *sub = rd_bytes(&r, size);
        if (id != 1)
            continue;
        eng_reader_t s;
        rd_init(&s, sub, size, 0);
        uint32_t n = rd_u32(&s);
        if (!rd_ok(&s) || m->nfuncs == 0)
            return;
        if (!m->func_names) {
            m->func_names = calloc(m->nfuncs, sizeof *m->func_names);
            if (!m->func_names)
                return;
        }
        for (uint32_t i = 0; i < n; i++) {
            uint32_t idx = rd_u32(&s);
            uint32_t nlen = rd_u32(&s);
            if (!rd_ok(&s) || nlen > rd_left(&s))
                return;
            const uint8_t *name = rd_bytes(&s, nlen);
            if (idx >= m->nfuncs || m->func_names[idx] || !utf8_valid(name, nlen))
                continue;
            m->func_names[idx] = dup_bytes(name, nlen);
        }
        return;
    }
}

static bool ensure_declared(dec_t *d)
{
    eng_module_t *m = d->m;
    if (!m->func_declared) {
        m->func_declared = calloc(m->nfuncs ? m->nfuncs : 1, 1);
        if (!m->func_declared)
            return dec_oom(d);
    }
    return true;
}

static bool decode(dec_t *d, const uint8_t *bytes, size_t len)
{
    eng_module_t *m = d->m;
    static const uint8_t magic[4] = {0x00, 0x61, 0x73, 0x6D};
    d->sec = "header";
    if (len < 4)
        return eng_errf(d->err, d->errlen, "at byte 0x%zx (module header): unexpected end", len);
    if (memcmp(bytes, magic, 4) != 0)
        return eng_errf(d->err, d->errlen, "at byte 0x0 (module header): magic header not detected");
    if (len < 8)
        return eng_errf(d->err, d->errlen, "at byte 0x%zx (module header): unexpected end", len);
    if (bytes[4] != 1 || bytes[5] || bytes[6] || bytes[7])
        return eng_errf(d->err, d->errlen, "at byte 0x4 (module header): unknown binary version");

    eng_reader_t top;
    rd_init(&top, bytes + 8, len - 8, 8);
    int last_rank = 0;
    const uint8_t *names_p = NULL;
    size_t names_len = 0, names_off = 0;
    bool seen_code = false, seen_data = false;

    while (!rd_eof(&top)) {
        size_t sec_off = rd_offset(&top);
        uint8_t id = rd_u8(&top);
        size_t size_off = rd_offset(&top);
        uint32_t size = rd_u32(&top);
        if (!rd_ok(&top))
            return eng_errf(d->err, d->errlen, "at byte 0x%zx (section header): %s", top.error_offset,
                            top.error);
        if (id > SEC_DATACOUNT)
            return eng_errf(d->err, d->errlen, "at byte 0x%zx (section header): malformed section id %u",
                            sec_off, id);
        if (size > rd_left(&top))
            return eng_errf(d->err, d->errlen,
                            "at byte 0x%zx (%s section): length out of bounds (section of %u bytes, %zu left)",
                            size_off, section_names[id], size, rd_left(&top));
        const uint8_t *body = rd_bytes(&top, size);
        size_t body_off = (size_t)(body - bytes);
        d->sec = section_names[id];
        rd_init(&d->r, body, size, body_off);

        if (id != SEC_CUSTOM) {
            int rank = section_rank(id);
            if (rank <= last_rank)
                return eng_errf(d->err, d->errlen,
                                "at byte 0x%zx (%s section): unexpected content after last section "
                                "(section out of order or repeated)", sec_off, d->sec);
            last_rank = rank;
        }
        /* Everything a body or a segment may name is known from here on. */
        if (id >= SEC_GLOBAL && id != SEC_CUSTOM && !ensure_declared(d))
            return false;

        bool ok = true;
        switch (id) {
        case SEC_CUSTOM: {
            const uint8_t *np;
            uint32_t nlen;
            if (!dec_name_raw(d, &np, &nlen))
                return false;
            if (nlen == 4 && memcmp(np, "name", 4) == 0) {
                names_p = d->r.p;
                names_len = rd_left(&d->r);
                names_off = rd_offset(&d->r);
            }
            d->r.p = d->r.end; /* contents are not ours to judge */
            break;
        }
        case SEC_TYPE: ok = sec_type(d); break;
        case SEC_IMPORT: ok = sec_import(d); break;
        case SEC_FUNCTION: ok = sec_function(d); break;
        case SEC_TABLE: ok = sec_table(d); break;
        case SEC_MEMORY: ok = sec_memory(d); break;
        case SEC_GLOBAL: ok = sec_global(d); break;
        case SEC_EXPORT: ok = sec_export(d); break;
        case SEC_START: ok = sec_start(d); break;
        case SEC_ELEMENT: ok = sec_element(d); break;
        case SEC_DATACOUNT: ok = sec_datacount(d); break;
        case SEC_CODE:
            seen_code = true;
            ok = sec_code(d);
            break;
        case SEC_DATA:
            seen_data = true;
            ok = sec_data(d);
            break;
        }
        if (!ok)
            return false;
        if (!rd_ok(&d->r))
            return dec_reader_fail(d);
        if (!rd_eof(&d->r))
            return dec_failf_at(d, rd_offset(&d->r), "section size mismatch (%zu bytes left over)",
                                rd_left(&d->r));
    }

    d->sec = "end of module";
    if (!ensure_declared(d))
        return false;
    uint32_t ndefined = m->nfuncs - m->nfunc_imports;
    if (!seen_code && ndefined > 0)
        return eng_errf(d->err, d->errlen,
                        "at byte 0x%zx (end of module): function and code section have inconsistent "
                        "lengths (%u functions, no code section)", len, ndefined);
    if (!seen_data && m->has_data_count && m->data_count != 0)
        return eng_errf(d->err, d->errlen,
                        "at byte 0x%zx (end of module): data count and data section have inconsistent "
                        "lengths (%u and no data section)", len, m->data_count);
    if (names_p)
        parse_name_section(m, names_p, names_len, names_off);
    return true;
}

static _Atomic uint64_t modules_compiled;

uint64_t eng_module_compiles(void) { return modules_compiled; }

eng_module_t *eng_module_new(const uint8_t *bytes, size_t len, char *err, size_t errlen)
{
    if (err && errlen)
        err[0] = 0;
    eng_module_t *m = calloc(1, sizeof *m);
    if (!m) {
        eng_errf(err, errlen, "out of memory");
        return NULL;
    }
    dec_t d = {.m = m, .err = err, .errlen = errlen};
    if (!bytes)
        len = 0;
    if (!decode(&d, bytes ? bytes : (const uint8_t *)"", len)) {
        if (err && errlen && !err[0])
            eng_errf(err, errlen, "invalid module");
        eng_module_free(m);
        return NULL;
    }
    /* What native code is checked against (native_load.c). */
    EVP_Digest(bytes ? bytes : (const uint8_t *)"", len, m->sha256, NULL, EVP_sha256(), NULL);
    modules_compiled++;
    return m;
}

void eng_module_free(eng_module_t *m)
{
    if (!m)
        return;
    eng_native_free(m->native);
    for (uint32_t i = 0; i < m->ntypes; i++) {
        free(m->types[i].types);
        free(m->types[i].sig);
    }
    free(m->types);
    for (uint32_t i = 0; i < m->nimports; i++) {
        free(m->imports[i].module);
        free(m->imports[i].name);
    }
    free(m->imports);
    free(m->func_type);
    free(m->tables);
    free(m->mems);
    free(m->globals);
    free(m->global_init);
    for (uint32_t i = 0; i < m->nexports; i++)
        free(m->exports[i].name);
    free(m->exports);
    for (uint32_t i = 0; i < m->nelems; i++)
        free(m->elems[i].items);
    free(m->elems);
    for (uint32_t i = 0; i < m->ndatas; i++)
        free(m->datas[i].bytes);
    free(m->datas);
    if (m->code) {
        uint32_t ndefined = m->nfuncs - m->nfunc_imports;
        for (uint32_t i = 0; i < ndefined; i++)
            eng_code_func_free(&m->code[i]);
        free(m->code);
    }
    free(m->func_declared);
    if (m->func_names) {
        for (uint32_t i = 0; i < m->nfuncs; i++)
            free(m->func_names[i]);
        free(m->func_names);
    }
    free(m);
}

/* ---- Descriptors ---- */

uint32_t eng_module_import_count(const eng_module_t *m) { return m->nimports; }
uint32_t eng_module_export_count(const eng_module_t *m) { return m->nexports; }

static const char *global_type_string(eng_globaltype_t g)
{
    static const char *const plain[] = {"i", "I", "f", "F", "r", "R"};
    static const char *const mut[] = {"mut i", "mut I", "mut f", "mut F", "mut r", "mut R"};
    int k;
    switch (g.type) {
    case ENG_I32: k = 0; break;
    case ENG_I64: k = 1; break;
    case ENG_F32: k = 2; break;
    case ENG_F64: k = 3; break;
    case ENG_EXTERNREF: k = 4; break;
    case ENG_FUNCREF: k = 5; break;
    default: return "";
    }
    return g.mut ? mut[k] : plain[k];
}

void eng_module_import(const eng_module_t *m, uint32_t i, eng_extern_desc_t *out)
{
    memset(out, 0, sizeof *out);
    if (i >= m->nimports)
        return;
    const eng_import_t *im = &m->imports[i];
    out->module = im->module;
    out->name = im->name;
    out->kind = (eng_extern_kind_t)im->kind;
    switch (im->kind) {
    case ENG_EXTERN_FUNC: out->type = m->types[im->type_index].sig; break;
    case ENG_EXTERN_GLOBAL: out->type = global_type_string(im->global); break;
    default: out->type = ""; break;
    }
}

void eng_module_export(const eng_module_t *m, uint32_t i, eng_extern_desc_t *out)
{
    memset(out, 0, sizeof *out);
    if (i >= m->nexports)
        return;
    const eng_export_t *e = &m->exports[i];
    out->name = e->name;
    out->kind = (eng_extern_kind_t)e->kind;
    switch (e->kind) {
    case ENG_EXTERN_FUNC: out->type = m->types[m->func_type[e->index]].sig; break;
    case ENG_EXTERN_GLOBAL: out->type = global_type_string(m->globals[e->index]); break;
    default: out->type = ""; break;
    }
}
