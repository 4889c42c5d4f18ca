/*
 * invocations.c — outcomes of asynchronous invocations (`Prefer:
 * respond-async`, DESIGN.md §4): a record per accepted invocation, found by
 * its id for `GET /v1/invocations/ID` on the admin API.
 *
 * Memory is bounded: a record keeps at most SRV_INV_BODY_MAX bytes of the
 * response body (the rest is cut and the record says so), and the store
 * keeps at most `max_records` records and `max_bytes` bytes of headers and
 * bodies. Beyond either cap, and for completed records older than the
 * retention (1 hour by default), the oldest completed records are dropped
 * first; pending ones are never dropped (their number is bounded where
 * they are admitted, serving.c's async_refuse). Records live in one list in order of acceptance and
 * in a hash table by id. Loop thread only: no lock.
 */
#define _GNU_SOURCE
#include "common/rfc3339.h"
#include "common/utf8.h"
#include "serving/internal.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#define INV_BUCKETS 16384

struct srv_inv {
    char id[SRV_INV_ID_LEN + 1];
    char *function, *revision;
    bool done, truncated;
    int status;
    hs_header_t *headers;   /* names and values in one block with the body */
    size_t nheaders;
    uint8_t *body;
    size_t body_len, bytes;
    int64_t accepted_ms, started_ms, finished_ms; /* Unix time; 0 = not yet */
    uint64_t finished_mono;
    srv_inv_t *older, *newer; /* acceptance order */
    srv_inv_t *hnext;
};

struct srv_inv_store {
    uint32_t max_records, n;
    size_t max_bytes, bytes;
    uint64_t retention_ns;
    srv_inv_t *oldest, *newest;
    srv_inv_t *buckets[INV_BUCKETS];
};

static int64_t unix_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static uint64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint32_t id_hash(const char *id)
{
    uint32_t h = 2166136261u;
    for (; *id; id++) h = (h ^ (uint8_t)*id) * 16777619u;
    return h % INV_BUCKETS;
}

srv_inv_store_t *srv_inv_store_new(uint32_t max_records, size_t max_bytes, uint64_t retention_ns)
{
    srv_inv_store_t *st = calloc(1, sizeof *st);
    if (!st) return NULL;
    st->max_records = max_records ? max_records : SRV_INV_MAX_RECORDS;
    st->max_bytes = max_bytes ? max_bytes : SRV_INV_MAX_BYTES;
    st->retention_ns = retention_ns ? retention_ns : SRV_INV_RETENTION_NS;
    return st;
}

static void inv_free(srv_inv_t *v)
{
    free(v->function);
    free(v->revision);
    free(v->headers);
    free(v);
}

/* Unlinks v from both structures and frees it. */
static void inv_drop(srv_inv_store_t *st, srv_inv_t *v)
{
    srv_inv_t **pp = &st->buckets[id_hash(v->id)];
    while (*pp && *pp != v) pp = &(*pp)->hnext;
    if (*pp) *pp = v->hnext;
    if (v->older) v->older->newer = v->newer;
    else st->oldest = v->newer;
    if (v->newer) v->newer->older = v->older;
    else st->newest = v->older;
    st->n--;
    st->bytes -= v->bytes;
    inv_free(v);
}

/* Drops expired completed records, then the oldest completed ones while a
 * cap is exceeded. */
static void inv_evict(srv_inv_store_t *st)
{
    uint64_t now = mono_ns();
    for (srv_inv_t *v = st->oldest, *next; v; v = next) {
        next = v->newer;
        bool over = st->n > st->max_records || st->bytes > st->max_bytes;
        if (!over) {
            /* Only expiry: stop at the first record that stays (the rest
             * were accepted later, so they are mostly younger). */
            if (!v->done || now - v->finished_mono <= st->retention_ns) break;
            inv_drop(st, v);
        } else if (v->done) {
            inv_drop(st, v);
        }
    }
}

void srv_inv_store_free(srv_inv_store_t *st)
{
    if (!st) return;
    for (srv_inv_t *v = st->oldest, *next; v; v = next) {
        next = v->newer;
        inv_free(v);
    }
    free(st);
}

srv_inv_t *srv_inv_new(srv_inv_store_t *st, const char *function, const char *revision)
{
    srv_inv_t *v = calloc(1, sizeof *v);
    if (!v) return NULL;
    uint8_t rnd[SRV_INV_ID_LEN / 2];
    if (getrandom(rnd, sizeof rnd, 0) != (ssize_t)sizeof rnd ||
        !(v->function = strdup(function)) || !(v->revision = strdup(revision))) {
        inv_free(v);
        return NULL;
    }
    for (size_t k = 0; k < sizeof rnd; k++) snprintf(v->id + 2 * k, 3, "%02x", rnd[k]);
    v->accepted_ms = unix_ms();
    v->older = st->newest;
    if (st->newest) st->newest->newer = v;
    else st->oldest = v;
    st->newest = v;
    uint32_t h = id_hash(v->id);
    v->hnext = st->buckets[h];
    st->buckets[h] = v;
    st->n++;
    inv_evict(st);
    return v;
}

const char *srv_inv_id(const srv_inv_t *v) { return v->id; }

void srv_inv_finish(srv_inv_store_t *st, srv_inv_t *v, int status, const hs_header_t *h, size_t nh,
                    const void *body, size_t len, uint64_t run_ago_ns)
{
    if (len > SRV_INV_BODY_MAX) {
        len = SRV_INV_BODY_MAX;
        v->truncated = true;
    }
    size_t bytes = nh * sizeof(hs_header_t) + len + 1;
    for (size_t k = 0; k < nh; k++) bytes += strlen(h[k].name) + strlen(h[k].value) + 2;
    char *b = malloc(bytes);
    if (b) {
        hs_header_t *hh = (hs_header_t *)b;
        char *p = b + nh * sizeof(hs_header_t);
        for (size_t k = 0; k < nh; k++) {
            size_t a = strlen(h[k].name) + 1, c = strlen(h[k].value) + 1;
            hh[k].name = memcpy(p, h[k].name, a);
            p += a;
            hh[k].value = memcpy(p, h[k].value, c);
            p += c;
        }
        if (len) memcpy(p, body, len);
        v->headers = hh;
        v->nheaders = nh;
        v->body = (uint8_t *)p;
        v->body_len = len;
        v->bytes = bytes;
        st->bytes += bytes;
    } else {
        v->truncated = len > 0;
    }
    v->status = status;
    v->done = true;
    v->finished_ms = unix_ms();
    v->finished_mono = mono_ns();
    v->started_ms = run_ago_ns ? v->finished_ms - (int64_t)(run_ago_ns / 1000000) : 0;
    inv_evict(st);
}

static srv_inv_t *inv_find(srv_inv_store_t *st, const char *id)
{
    inv_evict(st);
    for (srv_inv_t *v = st->buckets[id_hash(id)]; v; v = v->hnext)
        if (strcmp(v->id, id) == 0) return v;
    return NULL;
}

static char *base64(const uint8_t *s, size_t n)
{
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    char *out = malloc((n + 2) / 3 * 4 + 1), *p = out;
    if (!out) return NULL;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)s[i] << 16 | (i + 1 < n ? (uint32_t)s[i + 1] << 8 : 0) |
                     (i + 2 < n ? s[i + 2] : 0);
        *p++ = tab[v >> 18];
        *p++ = tab[(v >> 12) & 63];
        *p++ = i + 1 < n ? tab[(v >> 6) & 63] : '=';
        *p++ = i + 2 < n ? tab[v & 63] : '=';
    }
    *p = 0;
    return out;
}

char *srv_inv_json(srv_inv_store_t *st, const char *id)
{
    srv_inv_t *v = inv_find(st, id);
    if (!v) return NULL;
    cJSON *o = cJSON_CreateObject();
    char ts[40];
    cJSON_AddStringToObject(o, "id", v->id);
    cJSON_AddStringToObject(o, "function", v->function);
    cJSON_AddStringToObject(o, "revision", v->revision);
    cJSON_AddStringToObject(o, "state", v->done ? "completed" : "pending");
    cm_rfc3339_format((v->accepted_ms) * 1000000, CM_RFC3339_MILLIS, ts, sizeof ts);
    cJSON_AddStringToObject(o, "accepted_at", ts);
    if (v->done) {
        if (v->started_ms) {
            cm_rfc3339_format((v->started_ms) * 1000000, CM_RFC3339_MILLIS, ts, sizeof ts);
            cJSON_AddStringToObject(o, "started_at", ts);
        }
        cm_rfc3339_format((v->finished_ms) * 1000000, CM_RFC3339_MILLIS, ts, sizeof ts);
        cJSON_AddStringToObject(o, "finished_at", ts);
        cJSON_AddNumberToObject(o, "status", v->status);
        cJSON *hs = cJSON_AddArrayToObject(o, "headers");
        for (size_t k = 0; k < v->nheaders; k++) {
            cJSON *h = cJSON_CreateObject();
            cJSON_AddStringToObject(h, "name", v->headers[k].name);
            cJSON_AddStringToObject(h, "value", v->headers[k].value);
            cJSON_AddItemToArray(hs, h);
        }
        bool text = !v->body_len || (!memchr(v->body, 0, v->body_len) &&
                                     cm_utf8_valid(v->body, v->body_len));
        if (text) {
            char *b = malloc(v->body_len + 1);
            if (b) {
                if (v->body_len) memcpy(b, v->body, v->body_len);
                b[v->body_len] = 0;
                cJSON_AddStringToObject(o, "body", b);
                free(b);
            }
        } else {
            char *b = base64(v->body, v->body_len);
            if (b) cJSON_AddStringToObject(o, "body_base64", b);
            free(b);
        }
        cJSON_AddBoolToObject(o, "body_truncated", v->truncated);
    }
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return s;
}
