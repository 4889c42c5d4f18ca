/*
 * kv.h — the data of the key-value stores guests use through wasmfn_kv
 * (src/host/kv.h), in DATA/kv.db. Prefix: st_kv_. The store owns the table
 * and its durability (db.h: WAL, synchronous=FULL, so a value is on disk
 * once st_kv_set returns); the host API checks grants, sizes and guest
 * memory.
 *
 * Keys and values are bytes (keys compare as memcmp); a store is a name
 * (host/kv.h says which names are valid). An entry with expires_ms > 0 is
 * gone, for every read, once the wall clock passes it; st_kv_sweep deletes
 * such rows later. Each store's entry count and bytes (key + value) are
 * kept in kv_usage, in the same transaction as every write, so the size
 * limits cost one row read.
 *
 * Threads: any. One connection, and one mutex around every call (SQLite's
 * own locking would serialise the writers anyway; the mutex also makes
 * read-check-write sequences such as incr atomic).
 */
#ifndef WASMFN_STORE_KV_H
#define WASMFN_STORE_KV_H

#include <stddef.h>
#include <stdint.h>

typedef struct st_kv st_kv_t;

/* Results besides ST_OK, ST_ERR and ST_NOT_FOUND (store.h). */
enum {
    ST_KV_LIMIT = -4,      /* the write would take the store past a limit */
    ST_KV_NOT_NUMBER = -5, /* incr on a value that is not a decimal int64, or overflow */
};

/* A store's bounds; 0 = none. Expired entries not yet swept count until
 * a write that would exceed a bound sweeps that store first. */
typedef struct st_kv_limits {
    uint64_t max_store_bytes; /* keys + values */
    uint64_t max_store_keys;
} st_kv_limits_t;

/* Opens (creating) DATA/kv.db. NULL with a message naming the file. */
st_kv_t *st_kv_open(const char *data_dir, char *err, size_t errlen);
void st_kv_close(st_kv_t *kv);

/* Copies the value of key into buf when it fits (buflen >= its length)
 * and sets *vlen to its length either way: ST_OK or ST_NOT_FOUND. */
int st_kv_get(st_kv_t *kv, const char *store, const uint8_t *key, size_t klen, int64_t now_ms,
              uint8_t *buf, size_t buflen, size_t *vlen, char *err, size_t errlen);
/* Creates or replaces an entry; expires_ms 0 = never. ST_OK (durable),
 * ST_KV_LIMIT or ST_ERR. */
int st_kv_set(st_kv_t *kv, const char *store, const uint8_t *key, size_t klen,
              const uint8_t *val, size_t vlen, int64_t expires_ms,
              const st_kv_limits_t *lim, int64_t now_ms, char *err, size_t errlen);
/* ST_OK, ST_NOT_FOUND (no live entry) or ST_ERR. */
int st_kv_delete(st_kv_t *kv, const char *store, const uint8_t *key, size_t klen, int64_t now_ms,
                 char *err, size_t errlen);
/* Adds delta to the decimal value of key (a missing or expired key counts
 * as 0 and gets no expiry; a live one keeps its own) and stores the sum as
 * decimal text. ST_OK with *result, ST_KV_NOT_NUMBER, ST_KV_LIMIT or
 * ST_ERR. Atomic: concurrent increments never lose one. */
int st_kv_incr(st_kv_t *kv, const char *store, const uint8_t *key, size_t klen, int64_t delta,
               const st_kv_limits_t *lim, int64_t now_ms, int64_t *result, char *err,
               size_t errlen);
/* Calls fn for each live key of store that starts with prefix, in byte
 * order, until it returns non-zero. ST_OK or ST_ERR. The key is valid
 * during the call only; fn must not call back into kv. */
typedef int (*st_kv_key_fn)(void *ud, const uint8_t *key, size_t klen);
int st_kv_keys(st_kv_t *kv, const char *store, const uint8_t *prefix, size_t plen,
               int64_t now_ms, st_kv_key_fn fn, void *ud, char *err, size_t errlen);
/* Calls fn for each store that has entries (expired ones included until
 * swept), by name, with its key count and bytes. */
typedef void (*st_kv_store_fn)(void *ud, const char *store, uint64_t keys, uint64_t bytes);
int st_kv_stores(st_kv_t *kv, st_kv_store_fn fn, void *ud, char *err, size_t errlen);
/* Deletes up to max_rows expired entries (of every store), updating the
 * usage rows; *deleted says how many. ST_OK or ST_ERR. */
int st_kv_sweep(st_kv_t *kv, int64_t now_ms, uint32_t max_rows, uint32_t *deleted, char *err,
                size_t errlen);

#endif
