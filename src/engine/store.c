/*
 * store.c — stores and what lives in them: linear memories, tables,
 * globals and host functions (instance.c makes instances in a store).
 *
 * Ownership: a store owns every object created in it and frees them all in
 * eng_store_free; nothing here is freed one by one. That is also what the
 * spec needs when instantiation fails half-way: element segments applied
 * before the failure stay in (possibly imported) tables and point at
 * functions of the failed instance, so that instance must live on. We keep
 * it in the store and only return NULL to the caller.
 *
 * Linear memory: each memory reserves address space for its largest
 * possible size (its maximum, capped by the store's limit and 4 GiB) with
 * PROT_NONE, and grows by making pages readable and writable in place. The
 * base address never moves, so the interpreter may cache it across calls,
 * and fresh pages come from the kernel already zeroed. Reservations are
 * slots from a process-wide pool (slots.c): freeing a store hands them back
 * reset, and the next memory reuses them without a new mmap. A memory made
 * from an image (image.c) goes back to the image instead, through the
 * release function the image left in it, so this file does not depend on
 * images (image.c builds on it).
 */
#include "engine/internal.h"

#include <stdlib.h>
#include <sys/mman.h>

typedef struct store_obj {
    uint8_t kind;
    void *p;
} store_obj_t;

struct eng_store {
    uint32_t limit_pages;   /* largest memory, in pages (<= ENG_LIMIT_PAGES) */
    size_t nobjs, cap;
    store_obj_t *objs;      /* everything created here, in creation order */
};

/* ---- Stores ---- */

eng_store_t *eng_store_new(void)
{
    eng_store_t *s = calloc(1, sizeof *s);
    if (s)
        s->limit_pages = ENG_LIMIT_PAGES;
    return s;
}

void eng_store_set_memory_limit(eng_store_t *s, uint64_t max_bytes)
{
    uint64_t pages = max_bytes / ENG_PAGE_BYTES;
    if (max_bytes == 0 || pages > ENG_LIMIT_PAGES)
        pages = ENG_LIMIT_PAGES;
    s->limit_pages = (uint32_t)pages;
}

uint32_t eng_store_limit_pages(const eng_store_t *s) { return s->limit_pages; }

bool eng_store_add(eng_store_t *s, uint8_t kind, void *p)
{
    if (s->nobjs == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 16;
        store_obj_t *o = realloc(s->objs, cap * sizeof *o);
        if (!o)
            return false;
        s->objs = o;
        s->cap = cap;
    }
    s->objs[s->nobjs].kind = kind;
    s->objs[s->nobjs].p = p;
    s->nobjs++;
    return true;
}

static void memory_free(eng_memory_t *m)
{
    if (m->data && m->reserved) {
        uint64_t used = m->accessible > m->size ? m->accessible : m->size;
        if (m->image)
            m->image_release(m->image, m->data, m->reserved, used);
        else
            eng_slot_release(m->data, m->reserved, used);
    }
    free(m);
}

static void func_free(eng_func_t *f)
{
    free(f); /* a host function's type lives in the same block */
}

static void table_free(eng_table_t *t)
{
    free(t->elems);
    free(t);
}

static void instance_free(eng_instance_t *inst)
{
    const eng_module_t *m = inst->module;
    if (inst->elem_refs) {
        for (uint32_t i = 0; i < m->nelems; i++)
            free(inst->elem_refs[i]);
    }
    free(inst->funcs); /* the block holding every array */
    free(inst);
}

void eng_store_free(eng_store_t *s)
{
    if (!s)
        return;
    for (size_t i = s->nobjs; i-- > 0;) {
        void *p = s->objs[i].p;
        switch (s->objs[i].kind) {
        case ENG_OBJ_FUNC: func_free(p); break;
        case ENG_OBJ_MEMORY: memory_free(p); break;
        case ENG_OBJ_TABLE: table_free(p); break;
        case ENG_OBJ_GLOBAL: free(p); break;
        case ENG_OBJ_INSTANCE: instance_free(p); break;
        }
    }
    free(s->objs);
    free(s);
}

/* ---- Memories ---- */

eng_memory_t *eng_memory_new(eng_store_t *s, uint32_t min_pages, uint32_t max_pages)
{
    bool no_slot;
    return eng_memory_new_slot(s, min_pages, max_pages, false, &no_slot);
}

eng_memory_t *eng_memory_new_slot(eng_store_t *s, uint32_t min_pages, uint32_t max_pages, bool guard,
                                  bool *no_slot)
{
    *no_slot = false;
    uint32_t cap = s->limit_pages;
    if (max_pages != ENG_NO_MAX && max_pages < cap)
        cap = max_pages;
    if (min_pages > cap)
        return NULL;
    eng_memory_t *m = calloc(1, sizeof *m);
    if (!m)
        return NULL;
    /* Reserve at least one page so data is never NULL, even for a memory
     * that can never hold a byte (memcpy/memset with NULL is undefined). */
    m->reserved = guard ? ENG_GUARD_RESERVE : (uint64_t)(cap ? cap : 1) * ENG_PAGE_BYTES;
    uint8_t *p = eng_slot_acquire(&m->reserved);
    if (!p) {
        *no_slot = guard;
        free(m);
        return NULL;
    }
    m->data = p;
    m->max_pages = cap;
    m->type_max = max_pages;
    if (min_pages) {
        if (mprotect(p, (size_t)min_pages * ENG_PAGE_BYTES, PROT_READ | PROT_WRITE) != 0) {
            eng_slot_release(p, m->reserved, (uint64_t)min_pages * ENG_PAGE_BYTES);
            free(m);
            return NULL;
        }
    }
    m->pages = min_pages;
    m->size = (uint64_t)min_pages * ENG_PAGE_BYTES;
    m->accessible = m->size;
    if (!eng_store_add(s, ENG_OBJ_MEMORY, m)) {
        memory_free(m);
        return NULL;
    }
    return m;
}

uint8_t *eng_memory_data(eng_memory_t *m) { return m->data; }
uint64_t eng_memory_size(const eng_memory_t *m) { return m->size; }

int64_t eng_memory_grow(eng_memory_t *m, uint32_t delta_pages)
{
    uint32_t old = m->pages;
    if (delta_pages == 0)
        return old;
    if ((uint64_t)old + delta_pages > m->max_pages)
        return -1;
    uint64_t new_size = (uint64_t)(old + delta_pages) * ENG_PAGE_BYTES;
    /* A warm slot (image.c) may be accessible beyond size already, and
     * reads as zeros there. */
    if (new_size > m->accessible) {
        uint64_t from = m->accessible > m->size ? m->accessible : m->size;
        if (mprotect(m->data + from, new_size - from, PROT_READ | PROT_WRITE) != 0)
            return -1;
        m->accessible = new_size;
    }
    m->pages = old + delta_pages;
    m->size = new_size;
    return old;
}

/* ---- Tables ---- */

eng_table_t *eng_table_new(eng_store_t *s, eng_valtype_t elem, uint32_t min, uint32_t max, void *init)
{
    if (elem != ENG_FUNCREF && elem != ENG_EXTERNREF)
        return NULL;
    if (min > ENG_MAX_TABLE_ELEMS || (max != ENG_NO_MAX && max < min))
        return NULL;
    eng_table_t *t = calloc(1, sizeof *t);
    if (!t)
        return NULL;
    t->elems = calloc(min ? min : 1, sizeof *t->elems);
    if (!t->elems) {
        free(t);
        return NULL;
    }
    for (uint32_t i = 0; i < min; i++)
        t->elems[i] = init;
    t->size = min;
    t->max = max;
    t->elem = (uint8_t)elem;
    if (!eng_store_add(s, ENG_OBJ_TABLE, t)) {
        table_free(t);
        return NULL;
    }
    return t;
}

uint32_t eng_table_size(const eng_table_t *t) { return t->size; }

bool eng_table_get(const eng_table_t *t, uint32_t i, void **out)
{
    if (i >= t->size)
        return false;
    *out = t->elems[i];
    return true;
}

bool eng_table_set(eng_table_t *t, uint32_t i, void *ref)
{
    if (i >= t->size)
        return false;
    t->elems[i] = ref;
    return true;
}

int64_t eng_table_grow(eng_table_t *t, uint32_t delta, void *init)
{
    uint32_t old = t->size;
    uint64_t n = (uint64_t)old + delta;
    if (delta == 0)
        return old;
    if ((t->max != ENG_NO_MAX && n > t->max) || n > ENG_MAX_TABLE_ELEMS)
        return -1;
    void **e = realloc(t->elems, (size_t)n * sizeof *e);
    if (!e)
        return -1;
    for (uint64_t i = old; i < n; i++)
        e[i] = init;
    t->elems = e;
    t->size = (uint32_t)n;
    return old;
}

/* ---- Globals ---- */

eng_global_t *eng_global_new(eng_store_t *s, eng_valtype_t type, bool mut, eng_val_t v)
{
    eng_global_t *g = calloc(1, sizeof *g);
    if (!g)
        return NULL;
    g->type = (uint8_t)type;
    g->mut = mut;
    g->val = v;
    if (!eng_store_add(s, ENG_OBJ_GLOBAL, g)) {
        free(g);
        return NULL;
    }
    return g;
}

eng_valtype_t eng_global_type(const eng_global_t *g) { return (eng_valtype_t)g->type; }
eng_val_t eng_global_get(const eng_global_t *g) { return g->val; }
void eng_global_set(eng_global_t *g, eng_val_t v) { g->val = v; }

void eng_global_get_v128(const eng_global_t *g, uint8_t out[16])
{
    memcpy(out, &g->val, 8);
    memcpy(out + 8, &g->val_hi, 8);
}

void eng_global_set_v128(eng_global_t *g, const uint8_t in[16])
{
    memcpy(&g->val, in, 8);
    memcpy(&g->val_hi, in + 8, 8);
}

/* ---- Functions ---- */

static int sig_letter_type(char c)
{
    switch (c) {
    case 'i': return ENG_I32;
    case 'I': return ENG_I64;
    case 'f': return ENG_F32;
    case 'F': return ENG_F64;
    case 'v': return ENG_V128;
    case 'r': return ENG_EXTERNREF;
    case 'R': return ENG_FUNCREF;
    default: return -1;
    }
}

/* The numbers of params and results sig "(PARAMS)RESULTS" declares;
 * false when it is malformed or declares too many. */
static bool sig_counts(const char *sig, size_t *np, size_t *nr)
{
    if (!sig || sig[0] != '(')
        return false;
    const char *close = strchr(sig, ')');
    if (!close)
        return false;
    *np = (size_t)(close - sig - 1);
    *nr = strlen(close + 1);
    return *np + *nr <= ENG_MAX_LOCALS;
}

/* Parses sig (its counts from sig_counts) into t, whose types and sig
 * string go to mem: 2 * (np + nr) + 4 bytes. */
static bool sig_parse(const char *sig, size_t np, size_t nr, eng_functype_t *t, void *mem)
{
    const char *close = sig + 1 + np;
    size_t siglen = np + nr + 2;
    t->types = mem;
    t->sig = (char *)t->types + np + nr + 1;
    memcpy(t->sig, sig, siglen + 1);
    for (size_t i = 0; i < np + nr; i++) {
        int ty = sig_letter_type(i < np ? sig[1 + i] : close[1 + (i - np)]);
        if (ty < 0)
            return false;
        t->types[i] = (uint8_t)ty;
    }
    t->nparams = (uint32_t)np;
    t->nresults = (uint32_t)nr;
    t->param_slots = t->result_slots = 0;
    for (size_t i = 0; i < np + nr; i++)
        *(i < np ? &t->param_slots : &t->result_slots) += eng_type_slots(t->types[i]);
    t->key = eng_functype_key(t);
    return true;
}

static eng_func_t *host_func_add(eng_store_t *s, eng_func_t *f, eng_host_fn_t fn, void *env)
{
    f->type_key = f->type->key;
    f->host = fn;
    f->env = env;
    if (!eng_store_add(s, ENG_OBJ_FUNC, f)) {
        func_free(f);
        return NULL;
    }
    return f;
}

eng_func_t *eng_func_new_host(eng_store_t *s, const char *sig, eng_host_fn_t fn, void *env)
{
    size_t np, nr;
    if (!fn || !sig_counts(sig, &np, &nr))
        return NULL;
    /* One block: the function, its type's bytes, its signature string. */
    eng_func_t *f = calloc(1, sizeof *f + np + nr + 1 + np + nr + 3);
    if (!f)
        return NULL;
    if (!sig_parse(sig, np, nr, &f->own_type, f + 1)) {
        func_free(f);
        return NULL;
    }
    f->type = &f->own_type;
    return host_func_add(s, f, fn, env);
}

struct eng_host_type {
    eng_functype_t t;
};

const eng_host_type_t *eng_host_type_new(const char *sig)
{
    size_t np, nr;
    if (!sig_counts(sig, &np, &nr))
        return NULL;
    eng_host_type_t *h = calloc(1, sizeof *h + np + nr + 1 + np + nr + 3);
    if (!h)
        return NULL;
    if (!sig_parse(sig, np, nr, &h->t, h + 1)) {
        free(h);
        return NULL;
    }
    return h;
}

void eng_host_type_free(const eng_host_type_t *t) { free((void *)t); }

eng_func_t *eng_func_new_host_typed(eng_store_t *s, const eng_host_type_t *t, eng_host_fn_t fn,
                                    void *env)
{
    if (!t || !fn)
        return NULL;
    eng_func_t *f = calloc(1, sizeof *f);
    if (!f)
        return NULL;
    f->type = &t->t;
    return host_func_add(s, f, fn, env);
}

const char *eng_func_signature(const eng_func_t *f) { return f->type->sig; }
uint32_t eng_func_param_count(const eng_func_t *f) { return f->type->nparams; }
uint32_t eng_func_result_count(const eng_func_t *f) { return f->type->nresults; }
uint32_t eng_func_param_slots(const eng_func_t *f) { return f->type->param_slots; }
uint32_t eng_func_result_slots(const eng_func_t *f) { return f->type->result_slots; }
eng_valtype_t eng_func_param_type(const eng_func_t *f, uint32_t i) { return (eng_valtype_t)eng_ft_param(f->type, i); }
eng_valtype_t eng_func_result_type(const eng_func_t *f, uint32_t i) { return (eng_valtype_t)eng_ft_result(f->type, i); }
