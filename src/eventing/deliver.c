/*
 * deliver.c — the delivery thread: every HTTP POST of an event to a sink.
 *
 * One thread drives libcurl's multi interface, so any number of deliveries
 * run at once without a thread each, connections to a sink are kept alive
 * and reused, and no consumer or loop thread ever waits on the network.
 * Consumers queue an attempt (ev_deliverer_post) and get its result through
 * a callback on this thread; retries and backoff are the consumer's
 * business — this file makes exactly one attempt per call.
 *
 * Events go out in binary content mode (ce-* headers), as Knative delivers
 * them. A 2xx answer that itself carries an event (ce-specversion header or
 * a structured body) is parsed into a reply event for the consumer.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "common/buf.h"
#include "eventing/internal.h"

typedef struct job {
    struct job *next;
    char *url;
    struct curl_slist *hdrs;
    uint8_t *body;
    size_t body_len;
    int64_t timeout_ms;
    ev_attempt_done_fn done;
    void *ud;
    CURL *easy;
    /* the response */
    cm_buf_t resp;
    size_t resp_max;
    ev_header_t *rh;
    size_t nrh, caprh;
    char errbuf[CURL_ERROR_SIZE];
} job_t;

struct ev_deliverer {
    pthread_t thread;
    pthread_mutex_t mu; /* guards queue and stop */
    job_t *queue, *queue_tail;
    bool stop;
    CURLM *multi;
    size_t max_bytes;
};

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static void curl_init_once(void)
{
    curl_global_init(CURL_GLOBAL_ALL);
}

static void job_free(job_t *j)
{
    if (!j)
        return;
    if (j->easy)
        curl_easy_cleanup(j->easy);
    curl_slist_free_all(j->hdrs);
    free(j->url);
    free(j->body);
    cm_buf_free(&j->resp);
    for (size_t i = 0; i < j->nrh; i++) {
        free((char *)j->rh[i].name);
        free((char *)j->rh[i].value);
    }
    free(j->rh);
    free(j);
}

static size_t on_body(char *p, size_t size, size_t n, void *ud)
{
    job_t *j = ud;
    size_t len = size * n;
    if (len > j->resp_max - j->resp.len)
        return len; /* keep what fits; a too-large reply is ignored later */
    if (cm_buf_reserve_upto(&j->resp, len, j->resp_max) != 0)
        return 0;
    cm_buf_append(&j->resp, p, len); /* room was made: cannot fail */
    return len;
}

static size_t on_header(char *p, size_t size, size_t n, void *ud)
{
    job_t *j = ud;
    size_t len = size * n;
    if (len >= 5 && strncmp(p, "HTTP/", 5) == 0) {
        /* A new response (after 100 Continue): forget earlier headers. */
        for (size_t i = 0; i < j->nrh; i++) {
            free((char *)j->rh[i].name);
            free((char *)j->rh[i].value);
        }
        j->nrh = 0;
        return len;
    }
    const char *colon = memchr(p, ':', len);
    if (!colon || j->nrh >= 256)
        return len;
    size_t nl = (size_t)(colon - p);
    const char *v = colon + 1;
    size_t vl = len - nl - 1;
    while (vl && (*v == ' ' || *v == '\t'))
        v++, vl--;
    while (vl && (v[vl - 1] == '\r' || v[vl - 1] == '\n' || v[vl - 1] == ' '))
        vl--;
    if (j->nrh == j->caprh) {
        size_t cap = j->caprh ? j->caprh * 2 : 16;
        ev_header_t *h = realloc(j->rh, cap * sizeof *h);
        if (!h)
            return 0;
        j->rh = h;
        j->caprh = cap;
    }
    j->rh[j->nrh].name = strndup(p, nl);
    j->rh[j->nrh].value = strndup(v, vl);
    j->nrh++;
    return len;
}

static job_t *job_new(const char *url, const ev_event_t *e, int64_t timeout_ms, size_t max_bytes,
                      const char *traceparent)
{
    job_t *j = calloc(1, sizeof *j);
    if (!j)
        return NULL;
    j->url = strdup(url);
    j->timeout_ms = timeout_ms > 0 ? timeout_ms : 30000;
    j->resp_max = max_bytes ? max_bytes : 1 << 20;
    size_t nh = 0;
    char **h = ev_event_to_binary_headers(e, &nh);
    if (!j->url || !h)
        goto fail;
    for (size_t i = 0; i < nh; i++) {
        struct curl_slist *s = curl_slist_append(j->hdrs, h[i]);
        if (!s)
            goto fail_h;
        j->hdrs = s;
    }
    if (!ev_event_get(e, "datacontenttype"))
        j->hdrs = curl_slist_append(j->hdrs, "Content-Type:");
    j->hdrs = curl_slist_append(j->hdrs, "Expect:");
    if (traceparent) {
        char tp[128];
        snprintf(tp, sizeof tp, "traceparent: %s", traceparent);
        struct curl_slist *s = curl_slist_append(j->hdrs, tp);
        if (!s)
            goto fail_h;
        j->hdrs = s;
    }
    ev_strv_free(h, nh);
    if (e->data_len) {
        j->body = malloc(e->data_len);
        if (!j->body)
            goto fail;
        memcpy(j->body, e->data, e->data_len);
        j->body_len = e->data_len;
    }
    j->easy = curl_easy_init();
    if (!j->easy)
        goto fail;
    curl_easy_setopt(j->easy, CURLOPT_URL, j->url);
    curl_easy_setopt(j->easy, CURLOPT_POST, 1L);
    curl_easy_setopt(j->easy, CURLOPT_POSTFIELDS, j->body ? (char *)j->body : "");
    curl_easy_setopt(j->easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)j->body_len);
    curl_easy_setopt(j->easy, CURLOPT_HTTPHEADER, j->hdrs);
    curl_easy_setopt(j->easy, CURLOPT_TIMEOUT_MS, (long)j->timeout_ms);
    curl_easy_setopt(j->easy, CURLOPT_CONNECTTIMEOUT_MS, 5000L);
    curl_easy_setopt(j->easy, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(j->easy, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(j->easy, CURLOPT_WRITEDATA, j);
    curl_easy_setopt(j->easy, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(j->easy, CURLOPT_HEADERDATA, j);
    curl_easy_setopt(j->easy, CURLOPT_ERRORBUFFER, j->errbuf);
    curl_easy_setopt(j->easy, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(j->easy, CURLOPT_PRIVATE, j);
    return j;
fail_h:
    ev_strv_free(h, nh);
fail:
    job_free(j);
    return NULL;
}

/* Fills r from a finished transfer. */
static void job_result(job_t *j, CURLcode rc, ev_attempt_result_t *r, size_t max_bytes)
{
    memset(r, 0, sizeof *r);
    if (rc != CURLE_OK) {
        snprintf(r->error, sizeof r->error, "%s", j->errbuf[0] ? j->errbuf : curl_easy_strerror(rc));
        return;
    }
    long code = 0;
    curl_easy_getinfo(j->easy, CURLINFO_RESPONSE_CODE, &code);
    r->status = (int)code;
    if (code >= 200 && code < 300 && ev_http_has_event(j->rh, j->nrh)) {
        char err[256];
        r->reply = ev_event_from_http(j->rh, j->nrh, (const uint8_t *)j->resp.data, j->resp.len,
                                      max_bytes, err, sizeof err);
        if (!r->reply)
            fprintf(stderr, "eventing: ignoring a bad reply event from %s: %s\n", j->url, err);
    }
}

static void *deliverer_main(void *arg)
{
    ev_deliverer_t *d = arg;
    int running = 0;
    for (;;) {
        pthread_mutex_lock(&d->mu);
        job_t *q = d->queue;
        d->queue = d->queue_tail = NULL;
        bool stop = d->stop;
        pthread_mutex_unlock(&d->mu);
        while (q) {
            job_t *next = q->next;
            if (curl_multi_add_handle(d->multi, q->easy) == CURLM_OK) {
                running++;
            } else {
                ev_attempt_result_t r = {0};
                snprintf(r.error, sizeof r.error, "cannot start the transfer");
                q->done(q->ud, &r);
                job_free(q);
            }
            q = next;
        }
        if (stop && running == 0)
            break;
        int still = 0;
        curl_multi_perform(d->multi, &still);
        CURLMsg *m;
        int left;
        while ((m = curl_multi_info_read(d->multi, &left))) {
            if (m->msg != CURLMSG_DONE)
                continue;
            job_t *j = NULL;
            curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&j);
            CURLcode rc = m->data.result;
            curl_multi_remove_handle(d->multi, m->easy_handle);
            running--;
            ev_attempt_result_t r;
            job_result(j, rc, &r, d->max_bytes);
            j->done(j->ud, &r);
            job_free(j);
        }
        curl_multi_poll(d->multi, NULL, 0, 1000, NULL);
    }
    return NULL;
}

ev_deliverer_t *ev_deliverer_new(size_t max_event_bytes)
{
    pthread_once(&curl_once, curl_init_once);
    ev_deliverer_t *d = calloc(1, sizeof *d);
    if (!d)
        return NULL;
    pthread_mutex_init(&d->mu, NULL);
    d->max_bytes = max_event_bytes;
    d->multi = curl_multi_init();
    if (!d->multi) {
        free(d);
        return NULL;
    }
    /* Half the data plane's default cap on connections from one address
     * (wasmfn serve --max-connections-per-ip, 256): deliveries to local
     * functions come from 127.0.0.1 like other local clients, and must
     * not be the ones refused at accept. */
    curl_multi_setopt(d->multi, CURLMOPT_MAX_HOST_CONNECTIONS, 128L);
    if (pthread_create(&d->thread, NULL, deliverer_main, d)) {
        curl_multi_cleanup(d->multi);
        free(d);
        return NULL;
    }
    return d;
}

int ev_deliverer_post(ev_deliverer_t *d, const char *url, const ev_event_t *e, int64_t timeout_ms,
                      const char *traceparent, ev_attempt_done_fn done, void *ud)
{
    job_t *j = job_new(url, e, timeout_ms, d->max_bytes, traceparent);
    if (!j)
        return -1;
    j->done = done;
    j->ud = ud;
    pthread_mutex_lock(&d->mu);
    if (d->stop) {
        pthread_mutex_unlock(&d->mu);
        job_free(j);
        return -1;
    }
    if (d->queue_tail)
        d->queue_tail->next = j;
    else
        d->queue = j;
    d->queue_tail = j;
    pthread_mutex_unlock(&d->mu);
    curl_multi_wakeup(d->multi);
    return 0;
}

void ev_deliverer_free(ev_deliverer_t *d)
{
    if (!d)
        return;
    pthread_mutex_lock(&d->mu);
    d->stop = true;
    pthread_mutex_unlock(&d->mu);
    curl_multi_wakeup(d->multi);
    pthread_join(d->thread, NULL);
    curl_multi_cleanup(d->multi);
    pthread_mutex_destroy(&d->mu);
    free(d);
}

int ev_http_post_sync(const char *url, const ev_event_t *e, int64_t timeout_ms, char *err,
                      size_t errlen)
{
    pthread_once(&curl_once, curl_init_once);
    job_t *j = job_new(url, e, timeout_ms, 1 << 16, NULL);
    if (!j) {
        snprintf(err, errlen, "out of memory");
        return 0;
    }
    CURLcode rc = curl_easy_perform(j->easy);
    ev_attempt_result_t r;
    job_result(j, rc, &r, 0);
    ev_event_free(r.reply);
    job_free(j);
    if (!r.status)
        snprintf(err, errlen, "%s", r.error);
    return r.status;
}
