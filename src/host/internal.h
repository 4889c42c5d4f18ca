/*
 * internal.h — what the files of src/host/ share: the Redis backend of
 * wasmfn_kv (kv_redis.c), which kv.c dispatches to. Private to src/host/.
 */
#ifndef WASMFN_HOST_INTERNAL_H
#define WASMFN_HOST_INTERNAL_H

#include "host/kv.h"
#include "host/wait.h"

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

/* ---- Redis calls off the guest's worker (kv_park.c) ---- */

typedef struct kv_park kv_park_t;

/* A call to make on a pool thread: the caller embeds it in its own struct
 * holding copies of the arguments and room for the results. */
typedef struct kv_job {
    void (*run)(struct kv_job *j);  /* the blocking call, on a pool thread */
    void (*free)(struct kv_job *j); /* frees the whole job */
    /* The pool's (under its mu). */
    struct kv_job *next;
    void *waker;
    bool done, abandoned;
} kv_job_t;

/* A pool whose callers park on ops' wakers. NULL when out of memory. */
kv_park_t *kv_park_new(const ho_wait_ops_t *ops);
/* Joins the threads after they finish the queued jobs. */
void kv_park_free(kv_park_t *p);
/* Runs j->run on a pool thread while the guest on x parks. Returns 0 when
 * the call was made (its results are in j, which the caller frees), -1
 * when x must stop (interrupted, or its deadline) before it was: the pool
 * owns j from then on and frees it with j->free. */
int kv_park_run(kv_park_t *p, kv_job_t *j, eng_exec_t *x);

/* The pool the guest binding parks its Redis calls on, or NULL: no Redis
 * backend, or no wait ops (the calls then block their thread). */
kv_park_t *kv_parker(kv_t *kv);

#endif
