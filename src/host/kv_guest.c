/*
 * kv_guest.c — the wasmfn_kv import module (kv.h): the host functions a
 * guest calls, over the backend in kv.c.
 *
 * A store handle is the index of the store in the revision's grant plus
 * one: open needs no per-instance table, a handle can name only a granted
 * store, and 0 is never valid. The guest is hostile: every pointer and
 * length is checked against its linear memory before use (a bad one is
 * KV_EINVAL, never a trap or a host read), and sizes are wasm32 size_t
 * (32-bit). On SQLite, values are read from and written to guest memory in
 * place: the guest is stopped while its host call runs, so nothing moves.
 * On Redis the call runs on a thread of kv_park.c while the guest parks:
 * it works on copies (a gjob_t), and the results are copied into guest
 * memory afterwards, checked against the memory as it is then.
 *
 * The functions work the same in both tiers: the engine calls host
 * functions made with eng_func_new_host from interpreted and native code
 * alike.
 */
#define _GNU_SOURCE
#include "host/kv.h"
#include "host/internal.h"

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

/* ---- calls on Redis, made on a pool thread --------------------------------- */

enum { OP_GET, OP_SET, OP_DELETE, OP_INCR, OP_KEYS };

typedef struct gjob {
    kv_job_t job;
    kv_t *kv;
    int op;
    char store[KV_STORE_NAME_MAX + 1];
    uint8_t *key;       /* the key, or keys' prefix (a copy) */
    size_t klen;
    uint8_t *val;       /* set: the value (a copy); get: room for it; keys: the list */
    size_t vlen;        /* set: its length; get, keys: the room */
    uint64_t ttl;
    int64_t delta, res;
    uint64_t need;      /* get: the value's length; keys: the list's */
    size_t room;        /* keys: bytes allocated at val */
    bool oom;           /* keys: the list could not grow */
    uint32_t rc;
} gjob_t;

/* keys() on a job: the list grows (doubling) while it fits the guest's
 * buffer (vlen), then only its length is counted. */
static int job_keys_add(void *ud, const uint8_t *key, size_t klen)
{
    gjob_t *j = ud;
    uint64_t at = j->need + (j->need ? 1 : 0);
    if (at + klen <= j->vlen && !j->oom) {
        if (at + klen > j->room) {
            size_t room = j->room ? j->room : 4096;
            while (room < at + klen) room *= 2;
            if (room > j->vlen) room = j->vlen;
            uint8_t *v = realloc(j->val, room);
            if (!v) {
                j->oom = true;
                return 1;
            }
            j->val = v;
            j->room = room;
        }
        if (j->need) j->val[j->need] = '\n';
        memcpy(j->val + at, key, klen);
    }
    j->need = at + klen;
    return 0;
}

static void gjob_run(kv_job_t *jj)
{
    gjob_t *j = (gjob_t *)jj;
    size_t vlen = 0;
    switch (j->op) {
    case OP_GET:
        j->rc = kv_get(j->kv, j->store, j->key, j->klen, j->val, j->vlen, &vlen, NULL, 0);
        j->need = vlen;
        break;
    case OP_SET:
        j->rc = kv_set(j->kv, j->store, j->key, j->klen, j->val, j->vlen, j->ttl, NULL, 0);
        break;
    case OP_DELETE: j->rc = kv_delete(j->kv, j->store, j->key, j->klen, NULL, 0); break;
    case OP_INCR:
        j->rc = kv_incr(j->kv, j->store, j->key, j->klen, j->delta, &j->res, NULL, 0);
        break;
    default:
        j->rc = kv_keys(j->kv, j->store, j->key, j->klen, job_keys_add, j, NULL, 0);
        if (j->oom) j->rc = KV_ESTORAGE;
        break;
    }
}

static void gjob_free(kv_job_t *jj)
{
    gjob_t *j = (gjob_t *)jj;
    free(j->key);
    free(j->val);
    free(j);
}

/* A job for op with a copy of the key (or prefix); NULL when out of
 * memory. val/vlen: a copy of what set stores, or room for the results. */
static gjob_t *gjob_new(const kv_grant_t *g, int op, const char *store, const uint8_t *key,
                        size_t klen, const uint8_t *val, size_t vlen)
{
    gjob_t *j = calloc(1, sizeof *j);
    if (!j) return NULL;
    j->job.run = gjob_run;
    j->job.free = gjob_free;
    j->kv = g->kv;
    j->op = op;
    snprintf(j->store, sizeof j->store, "%s", store);
    j->key = malloc(klen ? klen : 1);
    j->val = op == OP_KEYS ? NULL : malloc(vlen ? vlen : 1); /* keys: grown as they come */
    if (!j->key || (op != OP_KEYS && !j->val)) {
        gjob_free(&j->job);
        return NULL;
    }
    if (klen) memcpy(j->key, key, klen);
    if (val && vlen) memcpy(j->val, val, vlen);
    j->klen = klen;
    j->vlen = vlen;
    return j;
}

/* Runs j (NULL: it could not be made) on the pool while the guest parks:
 * the call's code, or KV_ESTORAGE with *trap set when the guest must stop
 * first (j then belongs to the pool, which frees it). */
static uint32_t gjob_park(eng_host_call_t *call, gjob_t *j, eng_trap_t *trap)
{
    *trap = ENG_OK;
    if (!j) return KV_ESTORAGE;
    if (kv_park_run(kv_parker(j->kv), &j->job, call->exec) != 0) {
        *trap = ENG_TRAP_DEADLINE;
        return KV_ESTORAGE;
    }
    return j->rc;
}

/* gjob_park for a call with no result but its code; frees j. */
static eng_trap_t gjob_park_free(eng_host_call_t *call, gjob_t *j, uint32_t *rc)
{
    eng_trap_t trap;
    *rc = gjob_park(call, j, &trap);
    if (trap == ENG_OK && j) gjob_free(&j->job);
    return trap;
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
    kv_park_t *park = rc == KV_OK ? kv_parker(g->kv) : NULL;
    if (park) {
        /* Room for a value up to the limit: a larger one cannot be stored. */
        uint32_t lim = kv_limits(g->kv)->max_value_bytes;
        gjob_t *j = gjob_new(g, OP_GET, store, m.base + a[1].i32, a[2].i32, NULL,
                             buflen < lim ? buflen : lim);
        eng_trap_t trap;
        rc = gjob_park(call, j, &trap);
        if (trap != ENG_OK) return trap;
        if (rc == KV_OK && (!gmem_of(call, &m) || !gmem_ok(&m, buf, buflen) || !gmem_ok(&m, written, 4)))
            rc = KV_EINVAL; /* the memory changed while the guest waited */
        if (rc == KV_OK) {
            st32(m.base + written, j->need > UINT32_MAX ? UINT32_MAX : (uint32_t)j->need);
            if (j->need > buflen)
                rc = KV_ETOOSMALL;
            else if (j->need > j->vlen)
                rc = KV_ELIMIT; /* stored by a node with a higher limit */
            else
                memcpy(m.base + buf, j->val, j->need);
        }
        if (j) gjob_free(&j->job);
    } else if (rc == KV_OK) {
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
    kv_park_t *park = rc == KV_OK ? kv_parker(g->kv) : NULL;
    if (park && vlen > kv_limits(g->kv)->max_value_bytes) {
        rc = KV_ELIMIT; /* as kv_set would say, without copying it first */
    } else if (park) {
        gjob_t *j = gjob_new(g, OP_SET, store, m.base + a[1].i32, a[2].i32, m.base + val, vlen);
        if (j) j->ttl = ttl;
        eng_trap_t trap = gjob_park_free(call, j, &rc);
        if (trap != ENG_OK) return trap;
    } else if (rc == KV_OK) {
        rc = kv_set(g->kv, store, m.base + a[1].i32, a[2].i32, m.base + val, vlen, ttl, NULL, 0);
    }
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
    kv_park_t *park = rc == KV_OK ? kv_parker(g->kv) : NULL;
    if (park) {
        gjob_t *j = gjob_new(g, OP_DELETE, store, m.base + a[1].i32, a[2].i32, NULL, 0);
        eng_trap_t trap = gjob_park_free(call, j, &rc);
        if (trap != ENG_OK) return trap;
    } else if (rc == KV_OK) {
        rc = kv_delete(g->kv, store, m.base + a[1].i32, a[2].i32, NULL, 0);
    }
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
    kv_park_t *park = rc == KV_OK ? kv_parker(g->kv) : NULL;
    if (park) {
        gjob_t *j = gjob_new(g, OP_INCR, store, m.base + a[1].i32, a[2].i32, NULL, 0);
        if (j) j->delta = delta;
        eng_trap_t trap;
        rc = gjob_park(call, j, &trap);
        if (trap != ENG_OK) return trap;
        if (rc == KV_OK && (!gmem_of(call, &m) || !gmem_ok(&m, out, 8))) rc = KV_EINVAL;
        if (rc == KV_OK) st64(m.base + out, (uint64_t)j->res);
        if (j) gjob_free(&j->job);
    } else if (rc == KV_OK) {
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
    } else if (kv_parker(g->kv)) {
        gjob_t *j = gjob_new(g, OP_KEYS, store, m.base + prefix, plen, NULL, buflen);
        eng_trap_t trap;
        rc = gjob_park(call, j, &trap);
        if (trap != ENG_OK) return trap;
        if (rc == KV_OK && (!gmem_of(call, &m) || !gmem_ok(&m, buf, buflen) || !gmem_ok(&m, written, 4)))
            rc = KV_EINVAL;
        if (rc == KV_OK) {
            st32(m.base + written, j->need > UINT32_MAX ? UINT32_MAX : (uint32_t)j->need);
            if (j->need > buflen)
                rc = KV_ETOOSMALL;
            else if (j->need)
                memcpy(m.base + buf, j->val, j->need);
        }
        if (j) gjob_free(&j->job);
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
