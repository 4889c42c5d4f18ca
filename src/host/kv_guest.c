/*
 * kv_guest.c — the wasmfn_kv import module (kv.h): the host functions a
 * guest calls, over the backend in kv.c.
 *
 * A store handle is the index of the store in the revision's grant plus
 * one: open needs no per-instance table, a handle can name only a granted
 * store, and 0 is never valid. The guest is hostile: every pointer and
 * length is checked against its linear memory before use (a bad one is
 * KV_EINVAL, never a trap or a host read), and sizes are wasm32 size_t
 * (32-bit). Values are read from and written to guest memory in place:
 * the guest is stopped while its host call runs, so nothing moves.
 *
 * The functions work the same in both tiers: the engine calls host
 * functions made with eng_func_new_host from interpreted and native code
 * alike.
 */
#define _GNU_SOURCE
#include "host/kv.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct kv_grant {
    kv_t *kv;       /* may be NULL: nothing can be opened */
    uint32_t n;
    char **names;   /* [n], owned */
};

kv_grant_t *kv_grant_new(kv_t *kv, const char *const *stores, uint32_t n)
{
    kv_grant_t *g = calloc(1, sizeof *g);
    if (!g || (n && !(g->names = calloc(n, sizeof *g->names)))) {
        free(g);
        return NULL;
    }
    g->kv = kv;
    for (uint32_t i = 0; i < n; i++) {
        if (!(g->names[i] = strdup(stores[i]))) {
            kv_grant_free(g);
            return NULL;
        }
        g->n = i + 1;
    }
    return g;
}

void kv_grant_free(kv_grant_t *g)
{
    if (!g) return;
    for (uint32_t i = 0; i < g->n; i++) free(g->names[i]);
    free(g->names);
    free(g);
}

/* ---- guest memory ---------------------------------------------------------- */

typedef struct gmem {
    uint8_t *base;
    uint64_t size;
} gmem_t;

static bool gmem_of(eng_host_call_t *call, gmem_t *m)
{
    eng_memory_t *mem = call->caller ? eng_instance_memory(call->caller) : NULL;
    if (!mem) return false;
    m->base = eng_memory_data(mem);
    m->size = eng_memory_size(mem);
    return true;
}

/* [ptr, ptr+len) inside guest memory; overflow-safe. */
static bool gmem_ok(const gmem_t *m, uint64_t ptr, uint64_t len)
{
    return len <= m->size && ptr <= m->size - len;
}

static void st32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}

static void st64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i));
}

/* The store a handle names, or NULL. */
static const char *handle_store(const kv_grant_t *g, uint32_t h)
{
    if (!g || !g->kv || h == 0 || h > g->n) return NULL;
    return g->names[h - 1];
}

/* What every call but open checks first: the memory, the handle and the
 * key. Returns KV_OK with *store set. */
static uint32_t common_args(eng_host_call_t *call, gmem_t *m, uint32_t h, uint32_t key,
                            uint32_t klen, const char **store)
{
    const kv_grant_t *g = call->env;
    if (!gmem_of(call, m)) return KV_EINVAL;
    if (!(*store = handle_store(g, h))) return KV_EINVAL;
    if (!gmem_ok(m, key, klen)) return KV_EINVAL;
    return KV_OK;
}

/* ---- the functions ------------------------------------------------------- */

/* open(name, name_len, uint32_t *store) */
static eng_trap_t fn_open(eng_host_call_t *call, eng_val_t *a)
{
    const kv_grant_t *g = call->env;
    uint32_t name = a[0].i32, len = a[1].i32, out = a[2].i32;
    gmem_t m;
    uint32_t rc = KV_ENOSTORE;
    if (!gmem_of(call, &m) || !gmem_ok(&m, name, len) || !gmem_ok(&m, out, 4)) {
        rc = KV_EINVAL;
    } else if (g && g->kv) {
        for (uint32_t i = 0; i < g->n; i++) {
            if (strlen(g->names[i]) == len && memcmp(g->names[i], m.base + name, len) == 0) {
                st32(m.base + out, i + 1);
                rc = KV_OK;
                break;
            }
        }
    }
    a[0].i32 = rc;
    return ENG_OK;
}

/* get(store, key, key_len, buf, buf_len, size_t *written) */
static eng_trap_t fn_get(eng_host_call_t *call, eng_val_t *a)
{
    const kv_grant_t *g = call->env;
    uint32_t buf = a[3].i32, buflen = a[4].i32, written = a[5].i32;
    gmem_t m;
    const char *store;
    uint32_t rc = common_args(call, &m, a[0].i32, a[1].i32, a[2].i32, &store);
    if (rc == KV_OK && (!gmem_ok(&m, buf, buflen) || !gmem_ok(&m, written, 4))) rc = KV_EINVAL;
    if (rc == KV_OK) {
        size_t vlen = 0;
        rc = kv_get(g->kv, store, m.base + a[1].i32, a[2].i32, m.base + buf, buflen, &vlen, NULL, 0);
        if (rc == KV_OK) {
            st32(m.base + written, vlen > UINT32_MAX ? UINT32_MAX : (uint32_t)vlen);
            if (vlen > buflen) rc = KV_ETOOSMALL;
        }
    }
    a[0].i32 = rc;
    return ENG_OK;
}

/* set(store, key, key_len, val, val_len, uint64_t ttl_ms) */
static eng_trap_t fn_set(eng_host_call_t *call, eng_val_t *a)
{
    const kv_grant_t *g = call->env;
    uint32_t val = a[3].i32, vlen = a[4].i32;
    uint64_t ttl = a[5].i64;
    gmem_t m;
    const char *store;
    uint32_t rc = common_args(call, &m, a[0].i32, a[1].i32, a[2].i32, &store);
    if (rc == KV_OK && !gmem_ok(&m, val, vlen)) rc = KV_EINVAL;
    if (rc == KV_OK)
        rc = kv_set(g->kv, store, m.base + a[1].i32, a[2].i32, m.base + val, vlen, ttl, NULL, 0);
    a[0].i32 = rc;
    return ENG_OK;
}

/* delete(store, key, key_len) */
static eng_trap_t fn_delete(eng_host_call_t *call, eng_val_t *a)
{
    const kv_grant_t *g = call->env;
    gmem_t m;
    const char *store;
    uint32_t rc = common_args(call, &m, a[0].i32, a[1].i32, a[2].i32, &store);
    if (rc == KV_OK) rc = kv_delete(g->kv, store, m.base + a[1].i32, a[2].i32, NULL, 0);
    a[0].i32 = rc;
    return ENG_OK;
}

/* incr(store, key, key_len, int64_t delta, int64_t *result) */
static eng_trap_t fn_incr(eng_host_call_t *call, eng_val_t *a)
{
    const kv_grant_t *g = call->env;
    int64_t delta = (int64_t)a[3].i64;
    uint32_t out = a[4].i32;
    gmem_t m;
    const char *store;
    uint32_t rc = common_args(call, &m, a[0].i32, a[1].i32, a[2].i32, &store);
    if (rc == KV_OK && !gmem_ok(&m, out, 8)) rc = KV_EINVAL;
    if (rc == KV_OK) {
        int64_t res = 0;
        rc = kv_incr(g->kv, store, m.base + a[1].i32, a[2].i32, delta, &res, NULL, 0);
        if (rc == KV_OK) st64(m.base + out, (uint64_t)res);
    }
    a[0].i32 = rc;
    return ENG_OK;
}

/* keys() fills the guest's buffer while the keys fit and counts on. */
typedef struct keys_fill {
    uint8_t *buf;
    uint64_t cap, need;
} keys_fill_t;

static int keys_add(void *ud, const uint8_t *key, size_t klen)
{
    keys_fill_t *f = ud;
    uint64_t at = f->need + (f->need ? 1 : 0);
    if (at + klen <= f->cap) {
        if (f->need) f->buf[f->need] = '\n';
        memcpy(f->buf + at, key, klen);
    }
    f->need = at + klen;
    return 0;
}

/* keys(store, prefix, prefix_len, buf, buf_len, size_t *written) */
static eng_trap_t fn_keys(eng_host_call_t *call, eng_val_t *a)
{
    const kv_grant_t *g = call->env;
    uint32_t prefix = a[1].i32, plen = a[2].i32, buf = a[3].i32, buflen = a[4].i32,
             written = a[5].i32;
    gmem_t m;
    uint32_t rc = KV_OK;
    const char *store = handle_store(g, a[0].i32);
    if (!gmem_of(call, &m) || !store || !gmem_ok(&m, prefix, plen) || !gmem_ok(&m, buf, buflen) ||
        !gmem_ok(&m, written, 4)) {
        rc = KV_EINVAL;
    } else {
        /* The prefix is copied: the keys are written into guest memory
         * while the backend still reads it, and the two may overlap. */
        uint8_t *p = plen ? malloc(plen) : NULL;
        if (plen && !p) {
            rc = KV_ESTORAGE;
        } else {
            if (plen) memcpy(p, m.base + prefix, plen);
            keys_fill_t f = {.buf = m.base + buf, .cap = buflen};
            rc = kv_keys(g->kv, store, p, plen, keys_add, &f, NULL, 0);
            if (rc == KV_OK) {
                st32(m.base + written, f.need > UINT32_MAX ? UINT32_MAX : (uint32_t)f.need);
                if (f.need > buflen) rc = KV_ETOOSMALL;
            }
            free(p);
        }
    }
    a[0].i32 = rc;
    return ENG_OK;
}

/* ---- linking ---------------------------------------------------------------- */

static const struct kv_func {
    const char *name;
    const char *sig;
    eng_host_fn_t fn;
} kv_funcs[] = {
    {"open", "(iii)i", fn_open},
    {"get", "(iiiiii)i", fn_get},
    {"set", "(iiiiiI)i", fn_set},
    {"delete", "(iii)i", fn_delete},
    {"incr", "(iiiIi)i", fn_incr},
    {"keys", "(iiiiii)i", fn_keys},
};

kv_resolve_t kv_import_resolve(const kv_grant_t *g, eng_store_t *s, const eng_extern_desc_t *imp,
                               eng_extern_t *out, char *err, size_t errlen)
{
    if (strcmp(imp->module, KV_MODULE_NAME) != 0) return KV_RESOLVE_NOT_KV;
    for (size_t i = 0; i < sizeof kv_funcs / sizeof kv_funcs[0]; i++) {
        const struct kv_func *f = &kv_funcs[i];
        if (strcmp(f->name, imp->name) != 0) continue;
        if (imp->kind != ENG_EXTERN_FUNC || strcmp(f->sig, imp->type) != 0) {
            snprintf(err, errlen, "import %s.%s has type %s, expected func %s", imp->module,
                     imp->name, imp->kind == ENG_EXTERN_FUNC ? imp->type : "(not a function)",
                     f->sig);
            return KV_RESOLVE_ERROR;
        }
        /* The grant is only read by the host functions: the cast drops a
         * const the engine's void *env cannot carry. */
        eng_func_t *fn = eng_func_new_host(s, f->sig, f->fn, (void *)g);
        if (!fn) {
            snprintf(err, errlen, "cannot make host function %s.%s", imp->module, imp->name);
            return KV_RESOLVE_ERROR;
        }
        out->kind = ENG_EXTERN_FUNC;
        out->u.func = fn;
        return KV_RESOLVE_OK;
    }
    snprintf(err, errlen, "unknown import %s.%s (%s): wasmfn_kv has open, get, set, delete, incr "
                          "and keys", imp->module, imp->name, imp->type ? imp->type : "");
    return KV_RESOLVE_ERROR;
}
