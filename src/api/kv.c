/*
 * kv.c — the admin API's view of the key-value stores (docs/api.md,
 * "Key-value stores"):
 *
 *   GET    /v1/kv                       stores with their key count and bytes
 *   GET    /v1/kv/STORE?prefix=P&limit=N  its keys
 *   GET    /v1/kv/STORE/KEY             the value (raw bytes)
 *   PUT    /v1/kv/STORE/KEY?ttl_ms=N    sets it (the body)
 *   DELETE /v1/kv/STORE/KEY
 *
 * KEY is percent-encoded in the path. Every call reaches SQLite or Redis,
 * so it runs on libuv's threadpool (uv_queue_work), never on the loop:
 * an fsync or a slow Redis must not stall the admin API or the data
 * plane. Keys are listed percent-encoded where they hold bytes that JSON
 * text or a URL path could not carry as they are (cm_pct_encode), so a
 * listed key can be pasted into the path.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "api/internal.h"
#include "common/buf.h"
#include "common/percent.h"
#include "host/kv.h"

#define LIST_DEFAULT 1000
#define LIST_MAX 10000

typedef enum { OP_STORES, OP_KEYS, OP_GET, OP_PUT, OP_DELETE } kv_op_t;

typedef struct kv_job {
    uv_work_t work;
    api_t *api;
    hs_req_t *req;
    kv_op_t op;
    char store[KV_STORE_NAME_MAX + 1];
    char *key;            /* decoded; KEY ops */
    size_t klen;
    char *prefix;         /* decoded; OP_KEYS */
    uint32_t limit;
    uint64_t ttl_ms;
    /* Results. */
    uint32_t rc;
    char err[512];
    uint8_t *val;         /* OP_GET */
    size_t vlen;
    cJSON *json;          /* OP_STORES, OP_KEYS */
} kv_job_t;

static int status_of(uint32_t rc)
{
    switch (rc) {
    case KV_OK: return 200;
    case KV_ENOTFOUND: return 404;
    case KV_ELIMIT: return 413;
    case KV_EINVAL: return 400;
    default: return 503;
    }
}

static void add_store(void *ud, const char *store, uint64_t keys, uint64_t bytes)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "store", store);
    cJSON_AddNumberToObject(o, "keys", (double)keys);
    cJSON_AddNumberToObject(o, "bytes", (double)bytes);
    cJSON_AddItemToArray(ud, o);
}

typedef struct key_list {
    cJSON *arr;
    uint32_t n, limit;
    bool truncated;
} key_list_t;

static int add_key(void *ud, const uint8_t *key, size_t klen)
{
    key_list_t *l = ud;
    if (l->n == l->limit) {
        l->truncated = true;
        return 1;
    }
    char *raw = strndup((const char *)key, klen);
    char *enc = raw ? malloc(3 * klen + 1) : NULL;
    if (enc) {
        /* A NUL inside the key ends raw early: encode it by hand. */
        size_t o = 0;
        for (size_t i = 0; i < klen; i++) {
            if (key[i] == 0) {
                memcpy(enc + o, "%00", 3);
                o += 3;
            } else {
                char one[2] = {(char)key[i], 0}, e[4];
                size_t n = cm_pct_encode(one, e);
                memcpy(enc + o, e, n);
                o += n;
            }
        }
        enc[o] = '\0';
        cJSON_AddItemToArray(l->arr, cJSON_CreateString(enc));
    }
    free(raw);
    free(enc);
    l->n++;
    return 0;
}

static void kv_work(uv_work_t *w)
{
    kv_job_t *j = w->data;
    kv_t *kv = j->api->kv;
    const uint8_t *key = (const uint8_t *)j->key;
    switch (j->op) {
    case OP_STORES:
        j->json = cJSON_CreateArray();
        j->rc = kv_stores(kv, add_store, j->json, j->err, sizeof j->err);
        break;
    case OP_KEYS: {
        key_list_t l = {.arr = cJSON_CreateArray(), .limit = j->limit};
        j->rc = kv_keys(kv, j->store, (const uint8_t *)j->prefix, strlen(j->prefix), add_key, &l,
                        j->err, sizeof j->err);
        j->json = cJSON_CreateObject();
        cJSON_AddStringToObject(j->json, "store", j->store);
        cJSON_AddItemToObject(j->json, "keys", l.arr);
        cJSON_AddBoolToObject(j->json, "truncated", l.truncated);
        break;
    }
    case OP_GET: {
        /* The value's size is known only after a first read: read into a
         * buffer of the largest value allowed. */
        size_t cap = kv_limits(kv)->max_value_bytes;
        j->val = malloc(cap ? cap : 1);
        if (!j->val) {
            j->rc = KV_ESTORAGE;
            snprintf(j->err, sizeof j->err, "out of memory");
            break;
        }
        j->rc = kv_get(kv, j->store, key, j->klen, j->val, cap, &j->vlen, j->err, sizeof j->err);
        if (j->rc == KV_OK && j->vlen > cap) {
            /* Stored before the limit was lowered: read it whole. */
            uint8_t *big = realloc(j->val, j->vlen);
            if (!big) {
                j->rc = KV_ESTORAGE;
                snprintf(j->err, sizeof j->err, "out of memory");
                break;
            }
            j->val = big;
            cap = j->vlen;
            j->rc = kv_get(kv, j->store, key, j->klen, j->val, cap, &j->vlen, j->err, sizeof j->err);
            if (j->rc == KV_OK && j->vlen > cap) j->rc = KV_ESTORAGE;
        }
        break;
    }
    case OP_PUT:
        j->rc = kv_set(kv, j->store, key, j->klen, j->req->body, j->req->body_len, j->ttl_ms,
                       j->err, sizeof j->err);
        break;
    case OP_DELETE:
        j->rc = kv_delete(kv, j->store, key, j->klen, j->err, sizeof j->err);
        break;
    }
}

static void kv_job_free(kv_job_t *j)
{
    free(j->key);
    free(j->prefix);
    free(j->val);
    cJSON_Delete(j->json);
    free(j);
}

static void kv_done(uv_work_t *w, int status)
{
    kv_job_t *j = w->data;
    hs_req_t *r = j->req;
    if (status != 0) {
        hs_respond_errorf(r, 503, "the key-value call was cancelled");
    } else if (j->rc == KV_ENOTFOUND) {
        hs_respond_errorf(r, 404, "store %s has no such key", j->store);
    } else if (j->rc != KV_OK) {
        hs_respond_errorf(r, status_of(j->rc), "store %s: %s", j->store,
                          j->err[0] ? j->err : "failed");
    } else if (j->op == OP_GET) {
        hs_header_t h = {"Content-Type", "application/octet-stream"};
        hs_respond(r, 200, &h, 1, j->val, j->vlen);
    } else if (j->op == OP_STORES || j->op == OP_KEYS) {
        char *s = cJSON_PrintUnformatted(j->json);
        if (s) hs_respond_json(r, 200, s);
        else hs_respond_errorf(r, 500, "out of memory");
        free(s);
    } else {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "store", j->store);
        char *enc = malloc(3 * j->klen + 1);
        if (enc) {
            cm_pct_encode(j->key, enc);
            cJSON_AddStringToObject(o, j->op == OP_PUT ? "set" : "deleted", enc);
        }
        free(enc);
        if (j->op == OP_PUT) cJSON_AddNumberToObject(o, "bytes", (double)r->body_len);
        char *s = cJSON_PrintUnformatted(o);
        cJSON_Delete(o);
        if (s) hs_respond_json(r, 200, s);
        else hs_respond_errorf(r, 500, "out of memory");
        free(s);
    }
    kv_job_free(j);
}

static void start(api_t *a, hs_req_t *r, kv_job_t *j)
{
    j->api = a;
    j->req = r;
    j->work.data = j;
    if (uv_queue_work(a->loop, &j->work, kv_work, kv_done) != 0) {
        kv_job_free(j);
        hs_respond_errorf(r, 500, "cannot queue the key-value call");
    }
}

void api_kv_handle(api_t *a, hs_req_t *r, const char *p)
{
    bool get = strcmp(r->method, "GET") == 0 || strcmp(r->method, "HEAD") == 0;
    if (!a->kv) {
        hs_respond_errorf(r, 503, "the key-value stores are not running");
        return;
    }
    kv_job_t *j = calloc(1, sizeof *j);
    if (!j) {
        hs_respond_errorf(r, 500, "out of memory");
        return;
    }
    if (strcmp(p, "/v1/kv") == 0 || strcmp(p, "/v1/kv/") == 0) {
        if (!get) {
            free(j);
            return hs_respond_method_not_allowed(r, "GET, HEAD");
        }
        j->op = OP_STORES;
        return start(a, r, j);
    }
    const char *s = p + 7; /* after "/v1/kv/" */
    size_t sl = strcspn(s, "/");
    if (!kv_store_name_ok(s, sl)) {
        free(j);
        hs_respond_errorf(r, 404, "'%.*s' is not a store name (1-%u of a-z, 0-9, '-', '_', '.')",
                          (int)(sl > 80 ? 80 : sl), s, KV_STORE_NAME_MAX);
        return;
    }
    memcpy(j->store, s, sl);
    j->store[sl] = '\0';
    const char *k = s[sl] == '/' ? s + sl + 1 : NULL;
    if (!k || !*k) {
        if (!get) {
            free(j);
            return hs_respond_method_not_allowed(r, "GET, HEAD");
        }
        char prefix[4096], lim[32];
        int pr = hs_query_param(r->query, "prefix", prefix, sizeof prefix);
        int lr = hs_query_param(r->query, "limit", lim, sizeof lim);
        char *end = NULL;
        unsigned long n = lr == 1 ? strtoul(lim, &end, 10) : LIST_DEFAULT;
        if (pr < 0 || lr < 0 || (lr == 1 && (!*lim || *end || n < 1 || n > LIST_MAX))) {
            free(j);
            hs_respond_errorf(r, 400, "%s", pr < 0 ? "query parameter prefix: bad percent-encoding or too long"
                                                   : "query parameter limit: not a number from 1 to 10000");
            return;
        }
        j->op = OP_KEYS;
        j->limit = (uint32_t)n;
        if (!(j->prefix = strdup(pr == 1 ? prefix : ""))) {
            free(j);
            return hs_respond_errorf(r, 500, "out of memory");
        }
        return start(a, r, j);
    }
    size_t kl = strlen(k);
    j->key = malloc(kl + 1);
    long dl = j->key ? cm_pct_decode(k, kl, j->key, 0) : -1;
    if (dl <= 0) {
        kv_job_free(j);
        hs_respond_errorf(r, 400, "the key in the path is empty or badly percent-encoded");
        return;
    }
    j->klen = (size_t)dl;
    if (get) {
        j->op = OP_GET;
    } else if (strcmp(r->method, "DELETE") == 0) {
        j->op = OP_DELETE;
    } else if (strcmp(r->method, "PUT") == 0) {
        char ttl[32];
        int tr = hs_query_param(r->query, "ttl_ms", ttl, sizeof ttl);
        char *end = NULL;
        unsigned long long t = tr == 1 ? strtoull(ttl, &end, 10) : 0;
        if (tr < 0 || (tr == 1 && (!*ttl || *end))) {
            kv_job_free(j);
            hs_respond_errorf(r, 400, "query parameter ttl_ms: not a number of milliseconds");
            return;
        }
        j->op = OP_PUT;
        j->ttl_ms = t;
    } else {
        kv_job_free(j);
        return hs_respond_method_not_allowed(r, "GET, HEAD, PUT, DELETE");
    }
    start(a, r, j);
}
