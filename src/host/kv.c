/*
 * kv.c — the wasmfn_kv backend (kv.h): argument and limit checks shared by
 * guests and the admin API, then SQLite (src/store/kv.h) or Redis
 * (kv_redis.c).
 *
 * TTLs are absolute wall-clock times (CLOCK_REALTIME ms), so an entry's
 * expiry survives a restart. With SQLite a sweeper thread deletes expired
 * rows every sweep interval (reads already hide them; the sweep gives
 * their room back); Redis expires keys itself (SET PX).
 */
#define _GNU_SOURCE
#include "host/kv.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/cond.h"
#include "host/internal.h"
#include "store/kv.h"
#include "store/store.h"

struct kv {
    kv_limits_t lim;       /* defaults resolved */
    st_kv_t *db;           /* SQLite, or */
    kv_redis_t *redis;     /* Redis */
    kv_park_t *park;       /* Redis: the threads guests' calls run on (kv_park.c) */
    /* The sweeper (SQLite only). */
    pthread_t sweeper;
    bool sweeper_started;
    pthread_mutex_t mu;    /* guards stop */
    pthread_cond_t cv;
    bool stop;
    uint32_t sweep_ms;
};

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void seterr(char *err, size_t errlen, const char *fmt, const char *a)
{
    if (err && errlen) snprintf(err, errlen, fmt, a);
}

static void *sweeper_main(void *arg)
{
    kv_t *kv = arg;
    pthread_mutex_lock(&kv->mu);
    while (!kv->stop) {
        struct timespec until;
        clock_gettime(CLOCK_MONOTONIC, &until);
        until.tv_sec += kv->sweep_ms / 1000;
        until.tv_nsec += (long)(kv->sweep_ms % 1000) * 1000000;
        if (until.tv_nsec >= 1000000000) until.tv_sec++, until.tv_nsec -= 1000000000;
        pthread_cond_timedwait(&kv->cv, &kv->mu, &until);
        if (kv->stop) break;
        pthread_mutex_unlock(&kv->mu);
        /* Batches of 1,000 rows, each its own short transaction, so guests
         * never wait long behind a sweep. */
        uint32_t n;
        char err[512];
        do {
            if (st_kv_sweep(kv->db, now_ms(), 1000, &n, err, sizeof err) != ST_OK) {
                fprintf(stderr, "wasmfn: kv: sweeping expired entries: %s\n", err);
                break;
            }
        } while (n == 1000 && !__atomic_load_n(&kv->stop, __ATOMIC_RELAXED));
        pthread_mutex_lock(&kv->mu);
    }
    pthread_mutex_unlock(&kv->mu);
    return NULL;
}

kv_t *kv_new(const kv_config_t *c, char *err, size_t errlen)
{
    kv_t *kv = calloc(1, sizeof *kv);
    if (!kv) {
        seterr(err, errlen, "%s", "out of memory");
        return NULL;
    }
    kv->lim = c->limits;
    if (!kv->lim.max_key_bytes) kv->lim.max_key_bytes = KV_DEFAULT_MAX_KEY_BYTES;
    if (!kv->lim.max_value_bytes) kv->lim.max_value_bytes = KV_DEFAULT_MAX_VALUE_BYTES;
    if (!kv->lim.max_store_bytes) kv->lim.max_store_bytes = KV_DEFAULT_MAX_STORE_BYTES;
    if (!kv->lim.max_store_keys) kv->lim.max_store_keys = KV_DEFAULT_MAX_STORE_KEYS;
    kv->sweep_ms = c->sweep_interval_ms ? c->sweep_interval_ms : 30000;
    pthread_mutex_init(&kv->mu, NULL);
    cm_cond_init_monotonic(&kv->cv);
    if (c->redis_url) {
        kv->redis = kv_redis_new(c->redis_url, c->redis_timeout_ms ? c->redis_timeout_ms : 2000,
                                 err, errlen);
        if (!kv->redis) goto fail;
        if (c->wait && !(kv->park = kv_park_new(c->wait))) {
            seterr(err, errlen, "%s", "out of memory");
            goto fail;
        }
        return kv;
    }
    kv->db = st_kv_open(c->data_dir, err, errlen);
    if (!kv->db) goto fail;
    if (pthread_create(&kv->sweeper, NULL, sweeper_main, kv) != 0) {
        seterr(err, errlen, "%s", "cannot start the expiry sweeper thread");
        goto fail;
    }
    kv->sweeper_started = true;
    return kv;
fail:
    kv_free(kv);
    return NULL;
}

void kv_free(kv_t *kv)
{
    if (!kv) return;
    if (kv->sweeper_started) {
        pthread_mutex_lock(&kv->mu);
        __atomic_store_n(&kv->stop, true, __ATOMIC_RELAXED);
        pthread_cond_signal(&kv->cv);
        pthread_mutex_unlock(&kv->mu);
        pthread_join(kv->sweeper, NULL);
    }
    kv_park_free(kv->park); /* its threads may still be in a Redis call */
    st_kv_close(kv->db);
    kv_redis_free(kv->redis);
    pthread_cond_destroy(&kv->cv);
    pthread_mutex_destroy(&kv->mu);
    free(kv);
}

const char *kv_backend_name(const kv_t *kv) { return kv->redis ? "redis" : "sqlite"; }

kv_park_t *kv_parker(kv_t *kv) { return kv ? kv->park : NULL; }

const kv_limits_t *kv_limits(const kv_t *kv) { return &kv->lim; }

bool kv_store_name_ok(const char *name, size_t len)
{
    if (len == 0 || len > KV_STORE_NAME_MAX) return false;
    for (size_t i = 0; i < len; i++) {
        char c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.'))
            return false;
    }
    return true;
}

/* Keys are 1..max_key_bytes bytes without '\n'. */
static uint32_t key_check(const kv_t *kv, const uint8_t *key, size_t klen, char *err,
                          size_t errlen)
{
    if (klen == 0) {
        seterr(err, errlen, "%s", "the key is empty");
        return KV_EINVAL;
    }
    if (klen > kv->lim.max_key_bytes) {
        if (err && errlen)
            snprintf(err, errlen, "the key is %zu bytes, over the limit of %u", klen,
                     kv->lim.max_key_bytes);
        return KV_ELIMIT;
    }
    if (memchr(key, '\n', klen)) {
        seterr(err, errlen, "%s", "the key holds a newline (keys() separates keys with it)");
        return KV_EINVAL;
    }
    return KV_OK;
}

/* A store result as a KV_* code; storage failures are logged (they are
 * the operator's business, not the guest's). */
static uint32_t st_result(int rc, const char *op, const char *store, char *err)
{
    switch (rc) {
    case ST_OK: return KV_OK;
    case ST_NOT_FOUND: return KV_ENOTFOUND;
    case ST_KV_LIMIT: return KV_ELIMIT;
    case ST_KV_NOT_NUMBER: return KV_EINVAL;
    default:
        fprintf(stderr, "wasmfn: kv: %s in store %s: %s\n", op, store, err);
        return KV_ESTORAGE;
    }
}

static st_kv_limits_t store_limits(const kv_t *kv)
{
    st_kv_limits_t l = {.max_store_bytes = kv->lim.max_store_bytes,
                        .max_store_keys = kv->lim.max_store_keys};
    return l;
}

uint32_t kv_get(kv_t *kv, const char *store, const uint8_t *key, size_t klen, uint8_t *buf,
                size_t buflen, size_t *vlen, char *err, size_t errlen)
{
    char e[512] = "";
    uint32_t rc = key_check(kv, key, klen, err, errlen);
    if (rc != KV_OK) return rc;
    if (kv->redis) return kv_redis_get(kv->redis, store, key, klen, buf, buflen, vlen, err, errlen);
    rc = st_result(st_kv_get(kv->db, store, key, klen, now_ms(), buf, buflen, vlen, e, sizeof e),
                   "get", store, e);
    if (rc == KV_ESTORAGE) seterr(err, errlen, "%s", e);
    return rc;
}

uint32_t kv_set(kv_t *kv, const char *store, const uint8_t *key, size_t klen, const uint8_t *val,
                size_t vlen, uint64_t ttl_ms, char *err, size_t errlen)
{
    char e[512] = "";
    uint32_t rc = key_check(kv, key, klen, err, errlen);
    if (rc != KV_OK) return rc;
    if (vlen > kv->lim.max_value_bytes) {
        if (err && errlen)
            snprintf(err, errlen, "the value is %zu bytes, over the limit of %u", vlen,
                     kv->lim.max_value_bytes);
        return KV_ELIMIT;
    }
    /* A TTL beyond a century is a mistake (or an attempt to overflow the
     * expiry time), not a wish. */
    if (ttl_ms > 100ull * 365 * 24 * 3600 * 1000) {
        seterr(err, errlen, "%s", "ttl_ms is over 100 years");
        return KV_EINVAL;
    }
    if (kv->redis) return kv_redis_set(kv->redis, store, key, klen, val, vlen, ttl_ms, err, errlen);
    int64_t now = now_ms();
    st_kv_limits_t l = store_limits(kv);
    int r = st_kv_set(kv->db, store, key, klen, val, vlen, ttl_ms ? now + (int64_t)ttl_ms : 0, &l,
                      now, e, sizeof e);
    rc = st_result(r, "set", store, e);
    if (rc != KV_OK) seterr(err, errlen, "%s", e);
    return rc;
}

uint32_t kv_delete(kv_t *kv, const char *store, const uint8_t *key, size_t klen, char *err,
                   size_t errlen)
{
    char e[512] = "";
    uint32_t rc = key_check(kv, key, klen, err, errlen);
    if (rc != KV_OK) return rc;
    if (kv->redis) return kv_redis_delete(kv->redis, store, key, klen, err, errlen);
    rc = st_result(st_kv_delete(kv->db, store, key, klen, now_ms(), e, sizeof e), "delete", store, e);
    if (rc == KV_ESTORAGE) seterr(err, errlen, "%s", e);
    return rc;
}

uint32_t kv_incr(kv_t *kv, const char *store, const uint8_t *key, size_t klen, int64_t delta,
                 int64_t *result, char *err, size_t errlen)
{
    char e[512] = "";
    uint32_t rc = key_check(kv, key, klen, err, errlen);
    if (rc != KV_OK) return rc;
    if (kv->redis) return kv_redis_incr(kv->redis, store, key, klen, delta, result, err, errlen);
    st_kv_limits_t l = store_limits(kv);
    int r = st_kv_incr(kv->db, store, key, klen, delta, &l, now_ms(), result, e, sizeof e);
    rc = st_result(r, "incr", store, e);
    if (rc != KV_OK) seterr(err, errlen, "%s", e);
    return rc;
}

uint32_t kv_keys(kv_t *kv, const char *store, const uint8_t *prefix, size_t plen, kv_key_fn fn,
                 void *ud, char *err, size_t errlen)
{
    char e[512] = "";
    if (plen > kv->lim.max_key_bytes) return KV_OK; /* no key can start with it */
    if (kv->redis) return kv_redis_keys(kv->redis, store, prefix, plen, fn, ud, err, errlen);
    uint32_t rc = st_result(st_kv_keys(kv->db, store, prefix, plen, now_ms(), fn, ud, e, sizeof e),
                            "keys", store, e);
    if (rc != KV_OK) seterr(err, errlen, "%s", e);
    return rc;
}

uint32_t kv_stores(kv_t *kv, kv_store_fn fn, void *ud, char *err, size_t errlen)
{
    char e[512] = "";
    if (kv->redis) {
        seterr(err, errlen, "%s", "listing stores is not available with the Redis backend");
        return KV_ESTORAGE;
    }
    uint32_t rc = st_result(st_kv_stores(kv->db, fn, ud, e, sizeof e), "stores", "*", e);
    if (rc != KV_OK) seterr(err, errlen, "%s", e);
    return rc;
}
