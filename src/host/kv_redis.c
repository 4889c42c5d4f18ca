/*
 * kv_redis.c — wasmfn_kv on Redis (internal.h), for daemons started with
 * --redis so that the nodes of a cluster share their stores.
 *
 * Entry KEY of store S is the Redis string "wasmfn:kv:S:KEY"; the store
 * name's characters ([a-z0-9_.-]) are never glob-special, so a SCAN MATCH
 * on "wasmfn:kv:S:" + escaped prefix + "*" lists a store. GET, SET (PX for
 * a TTL: Redis expires it), DEL and INCRBY (atomic in Redis, decimal text)
 * map one to one.
 *
 * Connections: a small pool of blocking hiredis contexts, each used by
 * one thread at a time and given back after the call; one that failed is
 * dropped. A call blocks its thread for one round trip, bounded by the
 * command timeout: a guest's call runs on a thread of kv_park.c while the
 * guest parks, the admin API's on libuv's threadpool.
 */
#define _GNU_SOURCE
#include "host/internal.h"

#include <hiredis/hiredis.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define POOL_MAX 16
#define KEY_PREFIX "wasmfn:kv:"

struct kv_redis {
    char host[256];
    int port;
    int db;
    struct timeval timeout;
    pthread_mutex_t mu;              /* guards idle and nidle */
    redisContext *idle[POOL_MAX];
    int nidle;
};

static void seterr(char *err, size_t errlen, const char *what, const char *detail)
{
    if (err && errlen) snprintf(err, errlen, "redis: %s: %s", what, detail);
}

kv_redis_t *kv_redis_new(const char *url, uint32_t timeout_ms, char *err, size_t errlen)
{
    const char *p = url;
    if (strncmp(p, "redis://", 8) != 0) {
        seterr(err, errlen, url, "not a redis://HOST:PORT URL");
        return NULL;
    }
    p += 8;
    if (strchr(p, '@')) {
        seterr(err, errlen, url, "credentials in the URL are not supported");
        return NULL;
    }
    kv_redis_t *r = calloc(1, sizeof *r);
    if (!r) {
        seterr(err, errlen, url, "out of memory");
        return NULL;
    }
    size_t hl = strcspn(p, ":/");
    if (hl >= sizeof r->host) hl = sizeof r->host - 1;
    memcpy(r->host, p, hl);
    if (!hl) snprintf(r->host, sizeof r->host, "127.0.0.1");
    p += strcspn(p, ":/");
    r->port = 6379;
    if (*p == ':') {
        char *end;
        long v = strtol(p + 1, &end, 10);
        if (end == p + 1 || v < 1 || v > 65535 || (*end && *end != '/')) {
            seterr(err, errlen, url, "the port is not a number from 1 to 65535");
            free(r);
            return NULL;
        }
        r->port = (int)v;
        p = end;
    }
    if (*p == '/' && p[1]) {
        char *end;
        long v = strtol(p + 1, &end, 10);
        if (*end || v < 0 || v > 1000000) {
            seterr(err, errlen, url, "the database is not a number");
            free(r);
            return NULL;
        }
        r->db = (int)v;
    }
    r->timeout.tv_sec = timeout_ms / 1000;
    r->timeout.tv_usec = (suseconds_t)(timeout_ms % 1000) * 1000;
    pthread_mutex_init(&r->mu, NULL);
    return r;
}

void kv_redis_free(kv_redis_t *r)
{
    if (!r) return;
    for (int i = 0; i < r->nidle; i++) redisFree(r->idle[i]);
    pthread_mutex_destroy(&r->mu);
    free(r);
}

static redisContext *conn_get(kv_redis_t *r, char *err, size_t errlen)
{
    pthread_mutex_lock(&r->mu);
    redisContext *c = r->nidle ? r->idle[--r->nidle] : NULL;
    pthread_mutex_unlock(&r->mu);
    if (c) return c;
    c = redisConnectWithTimeout(r->host, r->port, r->timeout);
    if (!c || c->err) {
        seterr(err, errlen, "connect", c ? c->errstr : "out of memory");
        if (c) redisFree(c);
        return NULL;
    }
    redisSetTimeout(c, r->timeout);
    if (r->db) {
        redisReply *rep = redisCommand(c, "SELECT %d", r->db);
        bool ok = rep && rep->type == REDIS_REPLY_STATUS;
        seterr(err, errlen, "SELECT", rep && rep->type == REDIS_REPLY_ERROR ? rep->str : c->errstr);
        if (rep) freeReplyObject(rep);
        if (!ok) {
            redisFree(c);
            return NULL;
        }
    }
    return c;
}

/* Gives c back to the pool, or frees it when it failed (its stream may
 * hold half a reply) or the pool is full. */
static void conn_put(kv_redis_t *r, redisContext *c, bool ok)
{
    if (ok && !c->err) {
        pthread_mutex_lock(&r->mu);
        if (r->nidle < POOL_MAX) {
            r->idle[r->nidle++] = c;
            c = NULL;
        }
        pthread_mutex_unlock(&r->mu);
    }
    if (c) redisFree(c);
}

/* "wasmfn:kv:STORE:" + key, malloc'd. */
static char *full_key(const char *store, const uint8_t *key, size_t klen, size_t *len)
{
    size_t sl = strlen(store), pl = strlen(KEY_PREFIX);
    char *k = malloc(pl + sl + 1 + klen + 1);
    if (!k) return NULL;
    memcpy(k, KEY_PREFIX, pl);
    memcpy(k + pl, store, sl);
    k[pl + sl] = ':';
    if (klen) memcpy(k + pl + sl + 1, key, klen);
    *len = pl + sl + 1 + klen;
    return k;
}

/* Runs one command on a pooled connection. The reply (NULL on failure,
 * with err set) is the caller's to free. */
static redisReply *run(kv_redis_t *r, const char *what, char *err, size_t errlen, const char *fmt,
                       ...)
{
    redisContext *c = conn_get(r, err, errlen);
    if (!c) return NULL;
    va_list ap;
    va_start(ap, fmt);
    redisReply *rep = redisvCommand(c, fmt, ap);
    va_end(ap);
    if (!rep) seterr(err, errlen, what, c->errstr[0] ? c->errstr : "no reply");
    conn_put(r, c, rep != NULL);
    return rep;
}

static uint32_t storage_error(const char *op, const char *store, const char *msg)
{
    fprintf(stderr, "wasmfn: kv: %s in store %s: %s\n", op, store, msg);
    return KV_ESTORAGE;
}

/* A command that got no reply or not the one it expects: e names the fault
 * (run() set it when there was no reply; otherwise Redis's own error, or
 * "unexpected reply"), which is logged; KV_ESTORAGE. */
static uint32_t reply_error(const char *op, const char *cmd, const char *store,
                            const redisReply *rep, char *e, size_t elen)
{
    if (rep)
        snprintf(e, elen, "redis: %s: %s", cmd,
                 rep->type == REDIS_REPLY_ERROR ? rep->str : "unexpected reply");
    return storage_error(op, store, e);
}

uint32_t kv_redis_get(kv_redis_t *r, const char *store, const uint8_t *key, size_t klen,
                      uint8_t *buf, size_t buflen, size_t *vlen, char *err, size_t errlen)
{
    size_t kl;
    char *k = full_key(store, key, klen, &kl);
    char e[512] = "";
    if (!k) return KV_ESTORAGE;
    redisReply *rep = run(r, "GET", e, sizeof e, "GET %b", k, kl);
    free(k);
    uint32_t rc;
    if (rep && rep->type == REDIS_REPLY_NIL) {
        rc = KV_ENOTFOUND;
    } else if (rep && rep->type == REDIS_REPLY_STRING) {
        *vlen = rep->len;
        if (rep->len && rep->len <= buflen) memcpy(buf, rep->str, rep->len);
        rc = KV_OK;
    } else {
        rc = reply_error("get", "GET", store, rep, e, sizeof e);
    }
    if (rc == KV_ESTORAGE && err) snprintf(err, errlen, "%s", e);
    if (rep) freeReplyObject(rep);
    return rc;
}

uint32_t kv_redis_set(kv_redis_t *r, const char *store, const uint8_t *key, size_t klen,
                      const uint8_t *val, size_t vlen, uint64_t ttl_ms, char *err, size_t errlen)
{
    size_t kl;
    char *k = full_key(store, key, klen, &kl);
    char e[512] = "";
    if (!k) return KV_ESTORAGE;
    /* hiredis's %b wants a non-NULL pointer even for zero bytes. */
    const void *v = vlen ? (const void *)val : "";
    redisReply *rep = ttl_ms ? run(r, "SET", e, sizeof e, "SET %b %b PX %llu", k, kl, v, vlen,
                                   (unsigned long long)ttl_ms)
                             : run(r, "SET", e, sizeof e, "SET %b %b", k, kl, v, vlen);
    free(k);
    uint32_t rc = KV_OK;
    if (!rep || rep->type != REDIS_REPLY_STATUS) rc = reply_error("set", "SET", store, rep, e, sizeof e);
    if (rc == KV_ESTORAGE && err) snprintf(err, errlen, "%s", e);
    if (rep) freeReplyObject(rep);
    return rc;
}

uint32_t kv_redis_delete(kv_redis_t *r, const char *store, const uint8_t *key, size_t klen,
                         char *err, size_t errlen)
{
    size_t kl;
    char *k = full_key(store, key, klen, &kl);
    char e[512] = "";
    if (!k) return KV_ESTORAGE;
    redisReply *rep = run(r, "DEL", e, sizeof e, "DEL %b", k, kl);
    free(k);
    uint32_t rc;
    if (rep && rep->type == REDIS_REPLY_INTEGER) rc = rep->integer > 0 ? KV_OK : KV_ENOTFOUND;
    else rc = reply_error("delete", "DEL", store, rep, e, sizeof e);
    if (rc == KV_ESTORAGE && err) snprintf(err, errlen, "%s", e);
    if (rep) freeReplyObject(rep);
    return rc;
}

uint32_t kv_redis_incr(kv_redis_t *r, const char *store, const uint8_t *key, size_t klen,
                       int64_t delta, int64_t *result, char *err, size_t errlen)
{
    size_t kl;
    char *k = full_key(store, key, klen, &kl);
    char e[512] = "";
    if (!k) return KV_ESTORAGE;
    redisReply *rep = run(r, "INCRBY", e, sizeof e, "INCRBY %b %lld", k, kl, (long long)delta);
    free(k);
    uint32_t rc;
    if (rep && rep->type == REDIS_REPLY_INTEGER) {
        *result = rep->integer;
        rc = KV_OK;
    } else if (rep && rep->type == REDIS_REPLY_ERROR && strstr(rep->str, "not an integer")) {
        /* "ERR value is not an integer or out of range", and overflow. */
        snprintf(e, sizeof e, "the value is not a decimal integer, or the sum overflows");
        rc = KV_EINVAL;
    } else {
        rc = reply_error("incr", "INCRBY", store, rep, e, sizeof e);
    }
    if (rc != KV_OK && err) snprintf(err, errlen, "%s", e);
    if (rep) freeReplyObject(rep);
    return rc;
}

uint32_t kv_redis_keys(kv_redis_t *r, const char *store, const uint8_t *prefix, size_t plen,
                       kv_key_fn fn, void *ud, char *err, size_t errlen)
{
    size_t base_len;
    char *base = full_key(store, NULL, 0, &base_len);
    /* The pattern: base, the prefix with glob characters escaped, '*'. */
    char *pat = base ? malloc(base_len + 2 * plen + 2) : NULL;
    char e[512] = "";
    if (!pat) {
        free(base);
        return KV_ESTORAGE;
    }
    memcpy(pat, base, base_len);
    size_t n = base_len;
    for (size_t i = 0; i < plen; i++) {
        if (strchr("*?[]\\", prefix[i]) && prefix[i]) pat[n++] = '\\';
        pat[n++] = (char)prefix[i];
    }
    pat[n++] = '*';
    redisContext *c = conn_get(r, e, sizeof e);
    uint32_t rc = KV_OK;
    char cursor[32] = "0";
    bool stop = false;
    if (!c) rc = storage_error("keys", store, e);
    while (c && rc == KV_OK) {
        redisReply *rep = redisCommand(c, "SCAN %s MATCH %b COUNT 1000", cursor, pat, n);
        if (!rep || rep->type != REDIS_REPLY_ARRAY || rep->elements != 2 ||
            rep->element[0]->type != REDIS_REPLY_STRING ||
            rep->element[1]->type != REDIS_REPLY_ARRAY) {
            if (!rep) seterr(e, sizeof e, "SCAN", c->errstr);
            rc = reply_error("keys", "SCAN", store, rep, e, sizeof e);
            if (rep) freeReplyObject(rep);
            break;
        }
        snprintf(cursor, sizeof cursor, "%s", rep->element[0]->str);
        redisReply *keys = rep->element[1];
        for (size_t i = 0; i < keys->elements && !stop; i++) {
            redisReply *k = keys->element[i];
            if (k->type != REDIS_REPLY_STRING || k->len < base_len) continue;
            stop = fn(ud, (const uint8_t *)k->str + base_len, k->len - base_len) != 0;
        }
        freeReplyObject(rep);
        if (stop || strcmp(cursor, "0") == 0) break;
    }
    if (c) conn_put(r, c, rc == KV_OK);
    if (rc != KV_OK && err) snprintf(err, errlen, "%s", e);
    free(pat);
    free(base);
    return rc;
}
