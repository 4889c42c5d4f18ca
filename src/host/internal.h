/*
 * internal.h — what the files of src/host/ share: the Redis backend of
 * wasmfn_kv (kv_redis.c), which kv.c dispatches to. Private to src/host/.
 */
#ifndef WASMFN_HOST_INTERNAL_H
#define WASMFN_HOST_INTERNAL_H

#include "host/kv.h"

typedef struct kv_redis kv_redis_t;

/* Checks the URL ("redis://HOST:PORT[/DB]"); connects on first use. */
kv_redis_t *kv_redis_new(const char *url, uint32_t timeout_ms, char *err, size_t errlen);
void kv_redis_free(kv_redis_t *r);

/* The operations of kv.h on Redis, arguments already checked. Each
 * returns a KV_* code. */
uint32_t kv_redis_get(kv_redis_t *r, const char *store, const uint8_t *key, size_t klen,
                      uint8_t *buf, size_t buflen, size_t *vlen, char *err, size_t errlen);
uint32_t kv_redis_set(kv_redis_t *r, const char *store, const uint8_t *key, size_t klen,
                      const uint8_t *val, size_t vlen, uint64_t ttl_ms, char *err, size_t errlen);
uint32_t kv_redis_delete(kv_redis_t *r, const char *store, const uint8_t *key, size_t klen,
                         char *err, size_t errlen);
uint32_t kv_redis_incr(kv_redis_t *r, const char *store, const uint8_t *key, size_t klen,
                       int64_t delta, int64_t *result, char *err, size_t errlen);
uint32_t kv_redis_keys(kv_redis_t *r, const char *store, const uint8_t *prefix, size_t plen,
                       kv_key_fn fn, void *ud, char *err, size_t errlen);

#endif
