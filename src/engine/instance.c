/*
 * instance.c — instances: import matching, the instance's arrays, segment
 * initialisation and the start function, exports.
 *
 * An instance and the objects it defines are created in a store (store.c),
 * which owns them; a failed instantiation leaves them there (see store.c
 * for why) and returns NULL. image.c makes instances from images with
 * eng_instance_alloc instead of running the segments again.
 */
#include "engine/internal.h"

#include <stdlib.h>

/* ---- Instances ---- */

eng_memory_t *eng_instance_memory(eng_instance_t *inst)
{
    return inst && inst->module->nmems ? inst->mems[0] : NULL;
}

const eng_module_t *eng_instance_module(const eng_instance_t *inst) { return inst->module; }

eng_val_t eng_constexpr_eval(const eng_instance_t *inst, const eng_constexpr_t *ce, uint64_t *hi)
{
    eng_val_t v;
    memset(&v, 0, sizeof v);
    uint64_t h = 0;
    switch (ce->kind) {
    case ENG_CE_CONST: v = ce->val; h = ce->hi; break;
    case ENG_CE_GLOBAL_GET:
        v = inst->globals[ce->index]->val;
        h = inst->globals[ce->index]->val_hi.i64;
        break;
    case ENG_CE_REF_NULL: v.ref = NULL; break;
    case ENG_CE_REF_FUNC: v.ref = inst->funcs[ce->index]; break;
    }
    if (hi)
        *hi = h;
    return v;
}

static const char *kind_name(unsigned k)
{
    switch (k) {
    case ENG_EXTERN_FUNC: return "function";
    case ENG_EXTERN_TABLE: return "table";
    case ENG_EXTERN_MEMORY: return "memory";
    case ENG_EXTERN_GLOBAL: return "global";
    default: return "unknown extern";
    }
}

static const char *type_name(uint8_t t)
{
    switch (t) {
    case ENG_I32: return "i32";
    case ENG_I64: return "i64";
    case ENG_F32: return "f32";
    case ENG_F64: return "f64";
    case ENG_FUNCREF: return "funcref";
    case ENG_EXTERNREF: return "externref";
    default: return "?";
    }
}

static void limits_str(char *buf, size_t n, uint32_t min, uint32_t max)
{
    if (max == ENG_NO_MAX)
        snprintf(buf, n, "%u..", min);
    else
        snprintf(buf, n, "%u..%u", min, max);
}

static bool limits_match(uint32_t min, uint32_t max, const eng_limits_t *want)
{
    if (min < want->min)
        return false;
    if (want->max != ENG_NO_MAX && (max == ENG_NO_MAX || max > want->max))
        return false;
    return true;
}

/* Checks import i against what the module declares. */
static bool import_check(const eng_module_t *m, uint32_t i, const eng_extern_t *ext, char *err, size_t errlen)
{
    const eng_import_t *im = &m->imports[i];
    char want[96], got[96];
    if (ext->kind != im->kind || !ext->u.func) {
        return eng_errf(err, errlen, "incompatible import type for %s.%s: expected %s, got %s", im->module,
                        im->name, kind_name(im->kind), ext->u.func ? kind_name(ext->kind) : "nothing");
    }
    switch (im->kind) {
    case ENG_EXTERN_FUNC: {
        const eng_functype_t *t = &m->types[im->type_index];
        if (!eng_functype_equal(t, ext->u.func->type))
            return eng_errf(err, errlen, "incompatible import type for %s.%s: expected function %s, got %s",
                            im->module, im->name, t->sig, ext->u.func->type->sig);
        return true;
    }
    case ENG_EXTERN_GLOBAL: {
        const eng_global_t *g = ext->u.global;
        if (g->type != im->global.type || g->mut != im->global.mut)
            return eng_errf(err, errlen, "incompatible import type for %s.%s: expected global %s%s, got %s%s",
                            im->module, im->name, im->global.mut ? "mut " : "", type_name(im->global.type),
                            g->mut ? "mut " : "", type_name(g->type));
        return true;
    }
    case ENG_EXTERN_TABLE: {
        const eng_table_t *t = ext->u.table;
        if (t->elem != im->table.elem || !limits_match(t->size, t->max, &im->table.limits)) {
            limits_str(want, sizeof want, im->table.limits.min, im->table.limits.max);
            limits_str(got, sizeof got, t->size, t->max);
            return eng_errf(err, errlen, "incompatible import type for %s.%s: expected table %s %s, got %s %s",
                            im->module, im->name, want, type_name(im->table.elem), got, type_name(t->elem));
        }
        return true;
    }
    case ENG_EXTERN_MEMORY: {
        const eng_memory_t *mem = ext->u.memory;
        if (!limits_match(mem->pages, mem->type_max, &im->memory)) {
            limits_str(want, sizeof want, im->memory.min, im->memory.max);
            limits_str(got, sizeof got, mem->pages, mem->type_max);
            return eng_errf(err, errlen, "incompatible import type for %s.%s: expected memory %s, got %s",
                            im->module, im->name, want, got);
        }
        return true;
    }
    }
    return eng_errf(err, errlen, "import %s.%s has an unknown kind", im->module, im->name);
}

bool eng_imports_check(const eng_module_t *m, const eng_extern_t *imports, uint32_t n, char *err,
                       size_t errlen)
{
    if (n != m->nimports)
        return eng_errf(err, errlen, "the module has %u imports, %u were given", m->nimports, n);
    for (uint32_t i = 0; i < n; i++)
        if (!import_check(m, i, &imports[i], err, errlen))
            return false;
    return true;
}

/* Lays arrays out in one block: *off advances past n items of size sz,
 * aligned to 8 bytes; returns the array's offset. */
static size_t block_take(size_t *off, size_t n, size_t sz)
{
    size_t at = *off;
    *off += (n ? n : 1) * sz;
    *off = (*off + 7) & ~(size_t)7;
    return at;
}

eng_instance_t *eng_instance_alloc(eng_store_t *s, const eng_module_t *m, const eng_extern_t *imports)
{
    eng_instance_t *inst = calloc(1, sizeof *inst);
    if (!inst)
        return NULL;
    if (!eng_store_add(s, ENG_OBJ_INSTANCE, inst)) {
        free(inst);
        return NULL;
    }
    inst->module = m;
    inst->store = s;
    uint32_t ndefined = m->nfuncs - m->nfunc_imports;
    uint32_t ngdef = m->nglobals - m->nglobal_imports;
    size_t off = 0;
    size_t o_funcs = block_take(&off, m->nfuncs, sizeof(eng_func_t *));
    size_t o_fobjs = block_take(&off, ndefined, sizeof(eng_func_t));
    size_t o_gobjs = block_take(&off, ngdef, sizeof(eng_global_t));
    size_t o_tables = block_take(&off, m->ntables, sizeof(eng_table_t *));
    size_t o_mems = block_take(&off, m->nmems, sizeof(eng_memory_t *));
    size_t o_globals = block_take(&off, m->nglobals, sizeof(eng_global_t *));
    size_t o_erefs = block_take(&off, m->nelems, sizeof(void **));
    size_t o_elen = block_take(&off, m->nelems, sizeof(uint32_t));
    size_t o_dd = block_take(&off, m->ndatas, sizeof(bool));
    char *b = calloc(1, off);
    if (!b)
        return NULL; /* the instance stays in the store with funcs == NULL */
    inst->funcs = (eng_func_t **)(b + o_funcs);
    inst->func_objs = (eng_func_t *)(b + o_fobjs);
    inst->global_objs = (eng_global_t *)(b + o_gobjs);
    inst->tables = (eng_table_t **)(b + o_tables);
    inst->mems = (eng_memory_t **)(b + o_mems);
    inst->globals = (eng_global_t **)(b + o_globals);
    inst->elem_refs = (void ***)(b + o_erefs);
    inst->elem_len = (uint32_t *)(b + o_elen);
    inst->data_dropped = (bool *)(b + o_dd);

    /* Imports fill the front of each index space. */
    uint32_t fi = 0, ti = 0, mi = 0, gi = 0;
    for (uint32_t i = 0; i < m->nimports; i++) {
        switch (imports[i].kind) {
        case ENG_EXTERN_FUNC: inst->funcs[fi++] = imports[i].u.func; break;
        case ENG_EXTERN_TABLE: inst->tables[ti++] = imports[i].u.table; break;
        case ENG_EXTERN_MEMORY: inst->mems[mi++] = imports[i].u.memory; break;
        case ENG_EXTERN_GLOBAL: inst->globals[gi++] = imports[i].u.global; break;
        }
    }
    for (uint32_t j = 0; j < ndefined; j++) {
        eng_func_t *f = &inst->func_objs[j];
        uint32_t idx = m->nfunc_imports + j;
        f->type = &m->types[m->func_type[idx]];
        f->type_key = f->type->key;
        f->inst = inst;
        f->code = &m->code[j];
        f->index = idx;
        inst->funcs[idx] = f;
    }
    for (uint32_t j = 0; j < ngdef; j++) {
        eng_global_t *g = &inst->global_objs[j];
        g->type = m->globals[m->nglobal_imports + j].type;
        g->mut = m->globals[m->nglobal_imports + j].mut;
        inst->globals[m->nglobal_imports + j] = g;
    }
    eng_native_link_instance(inst);
    return inst;
}

eng_instance_t *eng_instance_new(eng_store_t *s, const eng_module_t *m, const eng_extern_t *imports,
                                 uint32_t nimports, eng_exec_t *x, char *err, size_t errlen)
{
    if (err && errlen)
        err[0] = 0;
    if (!eng_imports_check(m, imports, nimports, err, errlen))
        return NULL;
    eng_instance_t *inst = eng_instance_alloc(s, m, imports);
    if (!inst) {
        eng_errf(err, errlen, "out of memory");
        return NULL;
    }
    for (uint32_t i = m->ntable_imports; i < m->ntables; i++) {
        const eng_tabletype_t *tt = &m->tables[i];
        inst->tables[i] = eng_table_new(s, (eng_valtype_t)tt->elem, tt->limits.min, tt->limits.max, NULL);
        if (!inst->tables[i]) {
            eng_errf(err, errlen, "table %u: cannot allocate %u elements (the limit is %u)", i,
                     tt->limits.min, ENG_MAX_TABLE_ELEMS);
            return NULL;
        }
    }
    for (uint32_t i = m->nmem_imports; i < m->nmems; i++) {
        const eng_limits_t *l = &m->mems[i];
        /* Guard-mode native code needs a guard slot (else: interpreted). */
        bool no_slot = false;
        inst->mems[i] = eng_memory_new_slot(s, l->min, l->max, i == 0 && inst->native_guard, &no_slot);
        if (!inst->mems[i] && no_slot) {
            eng_native_unlink_instance(inst);
            inst->mems[i] = eng_memory_new_slot(s, l->min, l->max, false, &no_slot);
        }
        if (!inst->mems[i]) {
            eng_errf(err, errlen, "memory %u: cannot allocate %u pages (the store's limit is %u pages)", i,
                     l->min, eng_store_limit_pages(s));
            return NULL;
        }
    }
    if (m->nmems)
        inst->mem0_data = inst->mems[0]->data;
    for (uint32_t i = m->nglobal_imports; i < m->nglobals; i++)
        inst->globals[i]->val = eng_constexpr_eval(inst, &m->global_init[i], &inst->globals[i]->val_hi.i64);

    /* Evaluate every segment's references; declarative ones are dropped at
     * once (they only declare functions for ref.func). */
    for (uint32_t i = 0; i < m->nelems; i++) {
        const eng_elem_t *e = &m->elems[i];
        if (e->mode == ENG_SEG_DECLARATIVE || e->count == 0)
            continue;
        void **refs = malloc((size_t)e->count * sizeof *refs);
        if (!refs) {
            eng_errf(err, errlen, "out of memory");
            return NULL;
        }
        for (uint32_t k = 0; k < e->count; k++)
            refs[k] = eng_constexpr_eval(inst, &e->items[k], NULL).ref;
        inst->elem_refs[i] = refs;
        inst->elem_len[i] = e->count;
    }

    /* Active element segments, in order: table.init then elem.drop. A
     * failure leaves earlier segments applied, as the spec requires. */
    for (uint32_t i = 0; i < m->nelems; i++) {
        const eng_elem_t *e = &m->elems[i];
        if (e->mode != ENG_SEG_ACTIVE)
            continue;
        eng_table_t *t = inst->tables[e->table];
        uint32_t off = eng_constexpr_eval(inst, &e->offset, NULL).i32;
        uint32_t n = inst->elem_len[i];
        if ((uint64_t)off + n > t->size) {
            eng_errf(err, errlen, "out of bounds table access: element segment %u (offset %u, %u elements) "
                     "does not fit table %u of %u elements", i, off, n, e->table, t->size);
            return NULL;
        }
        if (n)
            memcpy(t->elems + off, inst->elem_refs[i], (size_t)n * sizeof(void *));
        free(inst->elem_refs[i]);
        inst->elem_refs[i] = NULL;
        inst->elem_len[i] = 0;
    }

    /* Active data segments: memory.init then data.drop. */
    for (uint32_t i = 0; i < m->ndatas; i++) {
        const eng_data_t *d = &m->datas[i];
        if (d->mode != ENG_SEG_ACTIVE)
            continue;
        eng_memory_t *mem = inst->mems[d->memory];
        uint32_t off = eng_constexpr_eval(inst, &d->offset, NULL).i32;
        if ((uint64_t)off + d->len > mem->size) {
            eng_errf(err, errlen, "out of bounds memory access: data segment %u (offset %u, %u bytes) "
                     "does not fit memory %u of %llu bytes", i, off, d->len, d->memory,
                     (unsigned long long)mem->size);
            return NULL;
        }
        if (d->len)
            memcpy(mem->data + off, d->bytes, d->len);
        inst->data_dropped[i] = true;
    }

    if (m->has_start) {
        eng_func_t *f = inst->funcs[m->start];
        if (!x) {
            eng_errf(err, errlen, "the module has a start function but no execution context was given");
            return NULL;
        }
        if (eng_call(x, f, NULL, NULL) != ENG_OK) {
            const char *msg = eng_exec_trap_message(x);
            eng_errf(err, errlen, "start function trapped: %s", msg ? msg : "trap");
            return NULL;
        }
    }
    return inst;
}

bool eng_instance_export(eng_instance_t *inst, const char *name, eng_extern_t *out)
{
    return eng_instance_export_n(inst, name, strlen(name), out);
}

bool eng_instance_export_n(eng_instance_t *inst, const char *name, size_t len, eng_extern_t *out)
{
    const eng_module_t *m = inst->module;
    for (uint32_t i = 0; i < m->nexports; i++) {
        const eng_export_t *e = &m->exports[i];
        if (e->name_len != len || memcmp(e->name, name, len) != 0)
            continue;
        out->kind = (eng_extern_kind_t)e->kind;
        switch (e->kind) {
        case ENG_EXTERN_FUNC: out->u.func = inst->funcs[e->index]; break;
        case ENG_EXTERN_TABLE: out->u.table = inst->tables[e->index]; break;
        case ENG_EXTERN_MEMORY: out->u.memory = inst->mems[e->index]; break;
        case ENG_EXTERN_GLOBAL: out->u.global = inst->globals[e->index]; break;
        }
        return true;
    }
    return false;
}

eng_func_t *eng_instance_func(eng_instance_t *inst, const char *name)
{
    eng_extern_t ext;
    if (!eng_instance_export(inst, name, &ext) || ext.kind != ENG_EXTERN_FUNC)
        return NULL;
    return ext.u.func;
}
