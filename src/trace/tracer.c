/*
 * tracer.c — the tracer: a bounded queue of encoded spans and the exporter
 * thread that posts them, in batches, to an OTLP/HTTP collector
 * (ENDPOINT/v1/traces, Content-Type application/json).
 *
 * The queue is a ring of fixed slots (TR_SPAN_JSON_MAX bytes each)
 * allocated once, so recording a span is a memcpy under a mutex, never an
 * allocation and never a wait: whoever ends a span is on a request's path
 * (the loop thread, a consumer thread), and a slow or dead collector must
 * cost it nothing. When the ring is full the span is dropped and counted.
 *
 * The exporter wakes when a batch is full or TR_FLUSH_MS after the last
 * export, copies up to TR_BATCH_SPANS spans out (freeing their slots at
 * once), and posts them. As the OTLP/HTTP specification says, a transport
 * error and answers 429, 502, 503 and 504 are worth retrying; it retries up
 * to TR_EXPORT_ATTEMPTS in all, backing off, and then drops the batch
 * (counted) rather than let spans pile up behind a collector that is down.
 */
#define _GNU_SOURCE
#include "trace/trace.h"
#include "trace/internal.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

#include "common/buf.h"
#include "common/jsonstr.h"

struct tr_tracer {
    char *url;                /* ENDPOINT/v1/traces */
    char *service_name;
    double ratio;             /* immutable after tr_tracer_new */
    pthread_t thread;
    pthread_mutex_t mu;       /* guards the ring and stop */
    pthread_cond_t cv;        /* signalled on a full batch and on stop */
    char *slots;              /* cap slots of TR_SPAN_JSON_MAX bytes */
    uint16_t *lens;
    uint32_t cap, head, count;
    bool stop;
    mx_family_t *m_exported, *m_dropped;
};

double tr_tracer_ratio(const tr_tracer_t *t) { return t->ratio; }

static void count_dropped(tr_tracer_t *t, const char *reason, size_t n)
{
    const char *lv[] = {reason};
    if (t->m_dropped && n) mx_counter_add(t->m_dropped, lv, (double)n);
}

void tr_queue_push(tr_tracer_t *t, const char *json, size_t len)
{
    if (len > TR_SPAN_JSON_MAX) return; /* tr_span_encode never makes one */
    pthread_mutex_lock(&t->mu);
    if (t->count == t->cap || t->stop) {
        pthread_mutex_unlock(&t->mu);
        count_dropped(t, "queue_full", 1);
        return;
    }
    uint32_t k = (t->head + t->count) % t->cap;
    memcpy(t->slots + (size_t)k * TR_SPAN_JSON_MAX, json, len);
    t->lens[k] = (uint16_t)len;
    if (++t->count >= TR_BATCH_SPANS) pthread_cond_signal(&t->cv);
    pthread_mutex_unlock(&t->mu);
}

/* ---- the export body ----------------------------------------------------- */

static void json_str(cm_buf_t *b, const char *s)
{
    size_t n = strlen(s);
    if (cm_buf_reserve(b, CM_JSON_ESCAPE_MAX(n) + 2) != 0) return;
    b->data[b->len++] = '"';
    b->len += cm_json_escape(s, n, b->data + b->len, CM_JSON_ESCAPE_MAX(n), NULL);
    b->data[b->len++] = '"';
    b->data[b->len] = '\0';
}

static void resource_attr(cm_buf_t *b, bool first, const char *key, const char *value)
{
    cm_buf_str(b, first ? "{\"key\":" : ",{\"key\":");
    json_str(b, key);
    cm_buf_str(b, ",\"value\":{\"stringValue\":");
    json_str(b, value);
    cm_buf_str(b, "}}");
}

char *tr_export_body(const char *service_name, const char *const *spans, const size_t *lens,
                     size_t n, size_t *len)
{
    char host[256] = "";
    if (gethostname(host, sizeof host - 1) != 0) host[0] = '\0';
    cm_buf_t b = {0};
    cm_buf_str(&b, "{\"resourceSpans\":[{\"resource\":{\"attributes\":[");
    resource_attr(&b, true, "service.name", service_name ? service_name : "wasmfn");
    if (host[0]) resource_attr(&b, false, "host.name", host);
    cm_buf_str(&b, "]},\"scopeSpans\":[{\"scope\":{\"name\":\"wasmfn\"},\"spans\":[");
    for (size_t k = 0; k < n; k++) {
        if (k) cm_buf_append(&b, ",", 1);
        cm_buf_append(&b, spans[k], lens[k]);
    }
    cm_buf_str(&b, "]}]}]}");
    if (b.oom) {
        cm_buf_free(&b);
        return NULL;
    }
    if (len) *len = b.len;
    return cm_buf_take(&b);
}

/* ---- posting ------------------------------------------------------------- */

typedef enum { POST_OK, POST_RETRY, POST_FAIL } post_outcome_t;

static size_t discard_body(char *p, size_t size, size_t n, void *ud)
{
    (void)p;
    (void)ud;
    return size * n;
}

static post_outcome_t post(tr_tracer_t *t, CURL *easy, const char *body, size_t len)
{
    struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
    if (h) {
        struct curl_slist *h2 = curl_slist_append(h, "Expect:");
        if (h2) h = h2;
    }
    curl_easy_reset(easy);
    curl_easy_setopt(easy, CURLOPT_URL, t->url);
    curl_easy_setopt(easy, CURLOPT_POST, 1L);
    curl_easy_setopt(easy, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
    curl_easy_setopt(easy, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, TR_EXPORT_TIMEOUT_MS);
    curl_easy_setopt(easy, CURLOPT_CONNECTTIMEOUT_MS, 2000L);
    curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, discard_body);
    curl_easy_setopt(easy, CURLOPT_PROTOCOLS_STR, "http,https");
    CURLcode rc = curl_easy_perform(easy);
    curl_slist_free_all(h);
    if (rc != CURLE_OK) return POST_RETRY;
    long code = 0;
    curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &code);
    if (code >= 200 && code < 300) return POST_OK;
    if (code == 429 || code == 502 || code == 503 || code == 504) return POST_RETRY;
    return POST_FAIL;
}

static void deadline_after(struct timespec *ts, long ms)
{
    clock_gettime(CLOCK_REALTIME, ts);
    ts->tv_sec += ms / 1000;
    ts->tv_nsec += (ms % 1000) * 1000000L;
    if (ts->tv_nsec >= 1000000000L) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000L;
    }
}

static void *exporter_main(void *arg)
{
    tr_tracer_t *t = arg;
    uint32_t batch_cap = t->cap < TR_BATCH_SPANS ? t->cap : TR_BATCH_SPANS;
    char *batch = malloc((size_t)batch_cap * TR_SPAN_JSON_MAX);
    const char **ptrs = malloc(batch_cap * sizeof *ptrs);
    size_t *lens = malloc(batch_cap * sizeof *lens);
    CURL *easy = curl_easy_init();
    uint64_t stop_deadline = 0;
    for (;;) {
        pthread_mutex_lock(&t->mu);
        if (!t->stop && t->count < TR_BATCH_SPANS) {
            struct timespec ts;
            deadline_after(&ts, TR_FLUSH_MS);
            while (!t->stop && t->count < TR_BATCH_SPANS &&
                   pthread_cond_timedwait(&t->cv, &t->mu, &ts) != ETIMEDOUT)
                continue;
        }
        bool stopping = t->stop;
        uint32_t n = t->count < batch_cap ? t->count : batch_cap;
        if (!batch || !ptrs || !lens || !easy) n = 0;
        for (uint32_t k = 0; k < n; k++) {
            uint32_t slot = (t->head + k) % t->cap;
            memcpy(batch + (size_t)k * TR_SPAN_JSON_MAX, t->slots + (size_t)slot * TR_SPAN_JSON_MAX,
                   t->lens[slot]);
            ptrs[k] = batch + (size_t)k * TR_SPAN_JSON_MAX;
            lens[k] = t->lens[slot];
        }
        t->head = (t->head + n) % t->cap;
        t->count -= n;
        uint32_t left = t->count;
        pthread_mutex_unlock(&t->mu);

        if (stopping && !stop_deadline)
            stop_deadline = tr_unix_now_ns() + (uint64_t)TR_EXPORT_TIMEOUT_MS * 1000000ull;
        if (n == 0 && (!batch || !ptrs || !lens || !easy)) {
            /* Out of memory at start: nothing can be sent; count what
             * waits as dropped rather than keep it. */
            pthread_mutex_lock(&t->mu);
            n = t->count;
            t->head = 0;
            t->count = 0;
            pthread_mutex_unlock(&t->mu);
            count_dropped(t, "export_failed", n);
            if (stopping) break;
            continue;
        }
        if (n) {
            size_t len = 0;
            char *body = tr_export_body(t->service_name, ptrs, lens, n, &len);
            post_outcome_t out = body ? POST_RETRY : POST_FAIL;
            for (int attempt = 1; body; attempt++) {
                out = post(t, easy, body, len);
                if (out != POST_RETRY || attempt >= TR_EXPORT_ATTEMPTS || stopping) break;
                /* Back off (250 ms, then 500 ms); a stop cuts it short. */
                pthread_mutex_lock(&t->mu);
                struct timespec ts;
                deadline_after(&ts, 250L << (attempt - 1));
                while (!t->stop && pthread_cond_timedwait(&t->cv, &t->mu, &ts) != ETIMEDOUT)
                    continue;
                stopping = t->stop;
                pthread_mutex_unlock(&t->mu);
            }
            free(body);
            if (out == POST_OK) {
                if (t->m_exported) mx_counter_add(t->m_exported, NULL, (double)n);
            } else {
                count_dropped(t, "export_failed", n);
            }
        }
        if (stopping && (left == 0 || tr_unix_now_ns() >= stop_deadline)) {
            pthread_mutex_lock(&t->mu);
            count_dropped(t, "export_failed", t->count);
            t->count = 0;
            pthread_mutex_unlock(&t->mu);
            break;
        }
    }
    if (easy) curl_easy_cleanup(easy);
    free(batch);
    free(ptrs);
    free(lens);
    return NULL;
}

/* ---- the tracer ---------------------------------------------------------- */

tr_tracer_t *tr_tracer_new(const tr_config_t *c, char *err, size_t errlen)
{
    const char *ep = c->endpoint;
    if (!ep || (strncmp(ep, "http://", 7) != 0 && strncmp(ep, "https://", 8) != 0) ||
        !ep[strncmp(ep, "http://", 7) == 0 ? 7 : 8]) {
        snprintf(err, errlen, "--otlp-endpoint: '%s' is not an http:// or https:// URL",
                 ep ? ep : "");
        return NULL;
    }
    for (const char *p = ep; *p; p++) {
        if ((unsigned char)*p <= ' ' || *p == 0x7f) {
            snprintf(err, errlen, "--otlp-endpoint: the URL has a space or control character");
            return NULL;
        }
    }
    if (!(c->sample_ratio >= 0.0 && c->sample_ratio <= 1.0)) {
        snprintf(err, errlen, "--trace-sample-ratio: %g is not between 0 and 1", c->sample_ratio);
        return NULL;
    }
    tr_tracer_t *t = calloc(1, sizeof *t);
    if (!t) goto oom;
    t->ratio = c->sample_ratio;
    t->cap = c->queue_spans ? c->queue_spans : TR_DEFAULT_QUEUE_SPANS;
    size_t eplen = strlen(ep);
    while (eplen && ep[eplen - 1] == '/') eplen--;
    if (asprintf(&t->url, "%.*s/v1/traces", (int)eplen, ep) < 0) {
        t->url = NULL;
        goto oom;
    }
    t->service_name = strdup(c->service_name ? c->service_name : "wasmfn");
    t->slots = malloc((size_t)t->cap * TR_SPAN_JSON_MAX);
    t->lens = calloc(t->cap, sizeof *t->lens);
    if (!t->service_name || !t->slots || !t->lens) goto oom;
    pthread_mutex_init(&t->mu, NULL);
    pthread_cond_init(&t->cv, NULL);
    if (c->metrics) {
        t->m_exported = mx_family_new(c->metrics, "wasmfn_trace_spans_exported_total",
                                      "Spans the OTLP collector accepted.", MX_COUNTER, NULL,
                                      NULL, 0);
        const char *reason[] = {"reason", NULL};
        t->m_dropped = mx_family_new(c->metrics, "wasmfn_trace_spans_dropped_total",
                                     "Spans dropped: the export queue was full (queue_full) or "
                                     "the collector did not take them (export_failed).",
                                     MX_COUNTER, reason, NULL, 0);
    }
    curl_global_init(CURL_GLOBAL_ALL);
    if (pthread_create(&t->thread, NULL, exporter_main, t) != 0) {
        snprintf(err, errlen, "cannot start the trace exporter thread");
        pthread_mutex_destroy(&t->mu);
        pthread_cond_destroy(&t->cv);
        goto fail;
    }
    return t;
oom:
    snprintf(err, errlen, "out of memory");
fail:
    if (t) {
        free(t->url);
        free(t->service_name);
        free(t->slots);
        free(t->lens);
        free(t);
    }
    return NULL;
}

void tr_tracer_free(tr_tracer_t *t)
{
    if (!t) return;
    pthread_mutex_lock(&t->mu);
    t->stop = true;
    pthread_cond_signal(&t->cv);
    pthread_mutex_unlock(&t->mu);
    pthread_join(t->thread, NULL);
    pthread_mutex_destroy(&t->mu);
    pthread_cond_destroy(&t->cv);
    free(t->url);
    free(t->service_name);
    free(t->slots);
    free(t->lens);
    free(t);
}
