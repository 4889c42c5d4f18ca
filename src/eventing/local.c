/*
 * local.c — deliveries to Services of this process, without a socket.
 *
 * A Service sink is a function of the same daemon, so an attempt need not
 * become an HTTP request to our own data plane (a URL, the delivery
 * thread, a loopback connection, the HTTP parser): the consumer thread
 * hands the attempt to the loop thread (a bounded locked queue and a
 * uv_async), the loop calls the daemon's ev_config_t.service_call (the
 * data plane's srv_call_submit), and the answer goes back to the consumer
 * through the same ev_attempt_done_fn that deliver.c calls. The event is
 * turned into exactly the request deliver.c would send (binary content
 * mode: the ce-* headers, Content-Type, the data as the body), so the
 * guest sees the same CGI variables.
 *
 * The loop thread does no parsing: a 2xx answer that carries an event is
 * copied as it is (ev_raw_reply_t) and parsed by the consumer thread.
 * Queued attempts are bounded (EV_LOCAL_MAX_QUEUED: beyond it an attempt
 * fails at once and is retried after its backoff), and the loop takes at
 * most EV_LOCAL_BATCH of them per wake-up so that a burst of events does
 * not hold it while requests wait.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eventing/internal.h"
#include "trace/trace.h"

#define EV_LOCAL_MAX_QUEUED 10000
#define EV_LOCAL_BATCH 256

typedef struct local_job {
    struct local_job *next;
    char service[256];
    char **lines;            /* "Name: value" (ev_event_to_binary_headers), split in place */
    size_t nlines;
    hs_header_t *h;
    size_t nh;               /* the lines, and traceparent when the attempt is traced */
    char traceparent[TR_TRACEPARENT_LEN + 1];
    uint8_t *body;
    size_t body_len;
    uint32_t timeout_ms;
    size_t max_reply_bytes;
    ev_attempt_done_fn done;
    void *ud;
} local_job_t;

struct ev_local {
    uv_async_t async;        /* loop thread: take the queue */
    ev_service_call_fn call;
    void *call_ud;
    size_t max_reply_bytes;
    pthread_mutex_t mu;      /* guards the queue, nqueued and stopped */
    local_job_t *queue, *tail;
    size_t nqueued;
    bool stopped;
};

struct ev_raw_reply {
    ev_header_t *h;
    size_t nh;
    uint8_t *body;
    size_t len;
    char from[272];          /* "service NAME" */
};

static void job_free(local_job_t *j)
{
    if (!j)
        return;
    ev_strv_free(j->lines, j->nlines);
    free(j->h);
    free(j->body);
    free(j);
}

void ev_raw_reply_free(ev_raw_reply_t *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->nh; i++) {
        free((char *)r->h[i].name);
        free((char *)r->h[i].value);
    }
    free(r->h);
    free(r->body);
    free(r);
}

ev_event_t *ev_raw_reply_parse(ev_raw_reply_t *r, size_t max_bytes)
{
    char err[256];
    ev_event_t *e = ev_event_from_http(r->h, r->nh, r->body, r->len, max_bytes, err, sizeof err);
    if (!e)
        fprintf(stderr, "eventing: ignoring a bad reply event from %s: %s\n", r->from, err);
    ev_raw_reply_free(r);
    return e;
}

/* A copy of an answer that carries an event, for the consumer to parse;
 * NULL when there is none (or no memory: the reply is then lost, as a
 * reply too large for deliver.c's buffer is). */
static ev_raw_reply_t *raw_copy(const local_job_t *j, const hs_header_t *h, size_t nh,
                                const void *body, size_t len)
{
    ev_header_t *eh = nh ? malloc(nh * sizeof *eh) : NULL;
    if (nh && !eh)
        return NULL;
    for (size_t i = 0; i < nh; i++)
        eh[i] = (ev_header_t){h[i].name, h[i].value};
    bool has = ev_http_has_event(eh, nh);
    free(eh);
    if (!has)
        return NULL;
    if (len > j->max_reply_bytes) {
        fprintf(stderr, "eventing: ignoring a reply event from service %s: %zu bytes, more than "
                        "the limit of %zu\n", j->service, len, j->max_reply_bytes);
        return NULL;
    }
    ev_raw_reply_t *r = calloc(1, sizeof *r);
    if (!r || !(r->h = calloc(nh ? nh : 1, sizeof *r->h)) || (len && !(r->body = malloc(len))))
        goto oom;
    for (size_t i = 0; i < nh; i++) {
        r->h[i].name = strdup(h[i].name);
        r->h[i].value = strdup(h[i].value);
        r->nh = i + 1;
        if (!r->h[i].name || !r->h[i].value)
            goto oom;
    }
    if (len)
        memcpy(r->body, body, len);
    r->len = len;
    snprintf(r->from, sizeof r->from, "service %s", j->service);
    return r;
oom:
    fprintf(stderr, "eventing: reply event from service %s lost: out of memory\n", j->service);
    ev_raw_reply_free(r);
    return NULL;
}

/* service_call's done: on the loop thread. */
static void on_called(void *ctx, int status, const hs_header_t *h, size_t nh, const void *body,
                      size_t len)
{
    local_job_t *j = ctx;
    ev_attempt_result_t r = {.status = status};
    if (!status)
        snprintf(r.error, sizeof r.error, "%.*s", len ? (int)(len < 255 ? len : 255) : 15,
                 len ? (const char *)body : "the call failed");
    else if (status >= 200 && status <= 299)
        r.raw = raw_copy(j, h, nh, body, len);
    j->done(j->ud, &r);
    job_free(j);
}

static void fail_job(local_job_t *j, const char *why)
{
    ev_attempt_result_t r = {0};
    snprintf(r.error, sizeof r.error, "%s", why);
    j->done(j->ud, &r);
    job_free(j);
}

static void on_async(uv_async_t *a)
{
    ev_local_t *l = a->data;
    pthread_mutex_lock(&l->mu);
    local_job_t *batch = l->queue, *last = NULL;
    size_t n = 0;
    for (local_job_t *j = batch; j && n < EV_LOCAL_BATCH; j = j->next, n++)
        last = j;
    if (last) {
        l->queue = last->next;
        if (!l->queue)
            l->tail = NULL;
        last->next = NULL;
        l->nqueued -= n;
    }
    bool more = l->queue != NULL;
    pthread_mutex_unlock(&l->mu);
    if (more)
        uv_async_send(&l->async); /* the rest after whatever else is waiting */
    while (batch) {
        local_job_t *j = batch;
        batch = j->next;
        j->next = NULL;
        l->call(l->call_ud, j->service, j->h, j->nh, j->body, j->body_len, j->timeout_ms,
                on_called, j);
    }
}

ev_local_t *ev_local_new(uv_loop_t *loop, ev_service_call_fn call, void *ud,
                         size_t max_reply_bytes)
{
    ev_local_t *l = calloc(1, sizeof *l);
    if (!l)
        return NULL;
    l->call = call;
    l->call_ud = ud;
    l->max_reply_bytes = max_reply_bytes;
    pthread_mutex_init(&l->mu, NULL);
    if (uv_async_init(loop, &l->async, on_async) != 0) {
        pthread_mutex_destroy(&l->mu);
        free(l);
        return NULL;
    }
    l->async.data = l;
    return l;
}

/* The request deliver.c would send for e, as headers and a body. */
static local_job_t *job_new(const char *service, const ev_event_t *e, int64_t timeout_ms,
                            size_t max_reply_bytes, const char *traceparent)
{
    local_job_t *j = calloc(1, sizeof *j);
    if (!j)
        return NULL;
    snprintf(j->service, sizeof j->service, "%s", service);
    j->timeout_ms = timeout_ms > 0 && timeout_ms < UINT32_MAX ? (uint32_t)timeout_ms : 30000;
    j->max_reply_bytes = max_reply_bytes ? max_reply_bytes : 1 << 20;
    j->lines = ev_event_to_binary_headers(e, &j->nlines);
    if (!j->lines || !(j->h = calloc(j->nlines + 1, sizeof *j->h)))
        goto fail;
    for (size_t i = 0; i < j->nlines; i++) {
        char *colon = strchr(j->lines[i], ':');
        if (!colon)
            goto fail;
        *colon = '\0';
        const char *v = colon + 1;
        while (*v == ' ')
            v++;
        j->h[i] = (hs_header_t){j->lines[i], v};
    }
    j->nh = j->nlines;
    if (traceparent && *traceparent) {
        /* The attempt's span is the guest's parent, as over HTTP. */
        snprintf(j->traceparent, sizeof j->traceparent, "%s", traceparent);
        j->h[j->nh++] = (hs_header_t){"traceparent", j->traceparent};
    }
    if (e->data_len) {
        if (!(j->body = malloc(e->data_len)))
            goto fail;
        memcpy(j->body, e->data, e->data_len);
        j->body_len = e->data_len;
    }
    return j;
fail:
    job_free(j);
    return NULL;
}

static int post(ev_local_t *l, local_job_t *j)
{
    pthread_mutex_lock(&l->mu);
    if (l->stopped || l->nqueued >= EV_LOCAL_MAX_QUEUED) {
        pthread_mutex_unlock(&l->mu);
        return -1;
    }
    if (l->tail)
        l->tail->next = j;
    else
        l->queue = j;
    l->tail = j;
    l->nqueued++;
    pthread_mutex_unlock(&l->mu);
    uv_async_send(&l->async);
    return 0;
}

int ev_local_post(ev_local_t *l, const char *service, const ev_event_t *e, int64_t timeout_ms,
                  const char *traceparent, ev_attempt_done_fn done, void *ud)
{
    local_job_t *j = job_new(service, e, timeout_ms, l->max_reply_bytes, traceparent);
    if (!j)
        return -1;
    j->done = done;
    j->ud = ud;
    if (post(l, j) != 0) {
        job_free(j);
        return -1;
    }
    return 0;
}

/* ev_local_post_sync: the waiting consumer thread and its answer. */
typedef struct sync_wait {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool done;
    ev_attempt_result_t r;
} sync_wait_t;

static void sync_done(void *ud, ev_attempt_result_t *r)
{
    sync_wait_t *w = ud;
    pthread_mutex_lock(&w->mu);
    w->r = *r;
    w->done = true;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

int ev_local_post_sync(ev_local_t *l, const char *service, const ev_event_t *e,
                       int64_t timeout_ms, char *err, size_t errlen)
{
    sync_wait_t w = {.done = false};
    pthread_mutex_init(&w.mu, NULL);
    pthread_cond_init(&w.cv, NULL);
    int status = 0;
    if (ev_local_post(l, service, e, timeout_ms, NULL, sync_done, &w) != 0) {
        snprintf(err, errlen, "cannot queue the delivery");
    } else {
        /* Bounded: the data plane answers every call by its deadline, and
         * ev_local_stop fails what the loop has not taken. */
        pthread_mutex_lock(&w.mu);
        while (!w.done)
            pthread_cond_wait(&w.cv, &w.mu);
        pthread_mutex_unlock(&w.mu);
        ev_raw_reply_free(w.r.raw);
        status = w.r.status;
        if (!status)
            snprintf(err, errlen, "%s", w.r.error);
    }
    pthread_cond_destroy(&w.cv);
    pthread_mutex_destroy(&w.mu);
    return status;
}

void ev_local_stop(ev_local_t *l)
{
    if (!l)
        return;
    pthread_mutex_lock(&l->mu);
    l->stopped = true;
    local_job_t *q = l->queue;
    l->queue = l->tail = NULL;
    l->nqueued = 0;
    pthread_mutex_unlock(&l->mu);
    while (q) {
        local_job_t *next = q->next;
        fail_job(q, "eventing is stopping");
        q = next;
    }
}

static void on_closed(uv_handle_t *h)
{
    ev_local_t *l = h->data;
    pthread_mutex_destroy(&l->mu);
    free(l);
}

void ev_local_close(ev_local_t *l)
{
    if (!l)
        return;
    ev_local_stop(l);
    uv_close((uv_handle_t *)&l->async, on_closed);
}
