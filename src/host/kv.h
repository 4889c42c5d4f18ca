/*
 * kv.h — wasmfn_kv, the key-value host API (docs/host-kv.md): named stores
 * a revision is granted (the annotation wasmfn.dev/kv-stores), kept in the
 * node's SQLite (src/store/kv.h) or, when the daemon runs with --redis, in
 * Redis so that several nodes share them. Prefix: kv_.
 *
 * Two parts:
 *   - the backend, kv_t: the operations with their limits, on any thread
 *     (guests on workers; the admin API from libuv's threadpool);
 *   - the guest binding: kv_import_resolve makes the wasmfn_kv host
 *     functions for one instance against a kv_grant_t (the revision's
 *     stores), checking every guest pointer and length.
 *
 * Every call blocks its thread for one SQLite transaction or one Redis
 * round trip (bounded by a timeout): never call it on the loop thread. A
 * guest's call on Redis runs on a thread of its own while the guest parks
 * (kv_config_t.wait).
 */
#ifndef WASMFN_HOST_KV_H
#define WASMFN_HOST_KV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engine/engine.h"
#include "host/wait.h"

#define KV_MODULE_NAME "wasmfn_kv"

/* What every wasmfn_kv function returns (DESIGN §3). */
enum {
    KV_OK = 0,
    KV_ENOSTORE = 1,   /* no such store, or not granted to this revision */
    KV_ENOTFOUND = 2,  /* no such key (or it expired) */
    KV_ETOOSMALL = 3,  /* the buffer is too small; the size needed is written */
    KV_ELIMIT = 4,     /* key, value or store over its limit */
    KV_EINVAL = 5,     /* bad pointer, length, handle or key; incr on a non-number */
    KV_ESTORAGE = 6,   /* the backend failed (logged on the daemon's stderr) */
};

/* Defaults of the limits (`wasmfn serve --kv-max-*`, docs/host-kv.md). */
#define KV_DEFAULT_MAX_KEY_BYTES 1024u
#define KV_DEFAULT_MAX_VALUE_BYTES (1u << 20)
#define KV_DEFAULT_MAX_STORE_BYTES (64ull << 20)
#define KV_DEFAULT_MAX_STORE_KEYS 100000ull
/* Store names: 1 to KV_STORE_NAME_MAX of [a-z0-9_.-]; at most
 * KV_MAX_GRANTS per revision. */
#define KV_STORE_NAME_MAX 63u
#define KV_MAX_GRANTS 16u

typedef struct kv_limits {
    uint32_t max_key_bytes;    /* 0 = default */
    uint32_t max_value_bytes;  /* 0 = default */
    uint64_t max_store_bytes;  /* 0 = default; keys + values (SQLite backend) */
    uint64_t max_store_keys;   /* 0 = default (SQLite backend) */
} kv_limits_t;

typedef struct kv_config {
    const char *data_dir;     /* the SQLite backend's DATA/kv.db */
    const char *redis_url;    /* "redis://HOST:PORT[/DB]": the Redis backend instead */
    kv_limits_t limits;
    uint32_t redis_timeout_ms; /* per command; 0 = 2000 */
    uint32_t sweep_interval_ms; /* expired entries deleted (SQLite); 0 = 30 s */
    /* Redis: guests' calls run on threads of their own while the guest
     * parks on these wakers (the runtime's: rt_link_wait_ops), so a slow
     * Redis holds no worker. NULL: a call blocks its guest's thread. */
    const ho_wait_ops_t *wait;
} kv_config_t;

typedef struct kv kv_t;

/* Opens the backend (for Redis: checks the URL; connections are made on
 * first use). NULL with a message. */
kv_t *kv_new(const kv_config_t *c, char *err, size_t errlen);
void kv_free(kv_t *kv);
/* "sqlite" or "redis". */
const char *kv_backend_name(const kv_t *kv);
const kv_limits_t *kv_limits(const kv_t *kv);

/* True when name is a valid store name. */
bool kv_store_name_ok(const char *name, size_t len);

/* The operations, any thread but the loop's. Keys are 1..max_key_bytes
 * bytes without '\n' (keys() separates them with it), values up to
 * max_value_bytes. Each returns a KV_* code; err (may be NULL) gets a
 * one-line reason for KV_ELIMIT, KV_EINVAL and KV_ESTORAGE, never a
 * value. */
uint32_t kv_get(kv_t *kv, const char *store, const uint8_t *key, size_t klen, uint8_t *buf,
                size_t buflen, size_t *vlen, char *err, size_t errlen);
uint32_t kv_set(kv_t *kv, const char *store, const uint8_t *key, size_t klen, const uint8_t *val,
                size_t vlen, uint64_t ttl_ms, char *err, size_t errlen);
uint32_t kv_delete(kv_t *kv, const char *store, const uint8_t *key, size_t klen, char *err,
                   size_t errlen);
uint32_t kv_incr(kv_t *kv, const char *store, const uint8_t *key, size_t klen, int64_t delta,
                 int64_t *result, char *err, size_t errlen);
/* Calls fn for each key of store starting with prefix until it returns
 * non-zero (SQLite: in byte order; Redis: in SCAN order). */
typedef int (*kv_key_fn)(void *ud, const uint8_t *key, size_t klen);
uint32_t kv_keys(kv_t *kv, const char *store, const uint8_t *prefix, size_t plen, kv_key_fn fn,
                 void *ud, char *err, size_t errlen);
/* Calls fn for each store holding entries, with its key count and bytes.
 * KV_ESTORAGE with "not available" for Redis. */
typedef void (*kv_store_fn)(void *ud, const char *store, uint64_t keys, uint64_t bytes);
uint32_t kv_stores(kv_t *kv, kv_store_fn fn, void *ud, char *err, size_t errlen);

/* ---- the guest binding --------------------------------------------------- */

/* The stores one revision may open: immutable once made, shared by its
 * instances (which must not outlive it). kv may be NULL (no backend: every
 * open answers KV_ENOSTORE), and so may a grant (nothing granted). */
typedef struct kv_grant kv_grant_t;
/* Copies the names. NULL when out of memory. */
kv_grant_t *kv_grant_new(kv_t *kv, const char *const *stores, uint32_t n);
void kv_grant_free(kv_grant_t *g);

typedef enum kv_resolve {
    KV_RESOLVE_OK = 0,     /* *out is filled */
    KV_RESOLVE_NOT_KV = 1, /* the import's module is not wasmfn_kv */
    KV_RESOLVE_ERROR = -1, /* a wasmfn_kv import we cannot satisfy; see err */
} kv_resolve_t;

/* Resolves one import against wasmfn_kv, making the host function in store
 * s. g may be NULL. Errors name the import and its expected type. */
kv_resolve_t kv_import_resolve(const kv_grant_t *g, eng_store_t *s, const eng_extern_desc_t *imp,
                               eng_extern_t *out, char *err, size_t errlen);

#endif
