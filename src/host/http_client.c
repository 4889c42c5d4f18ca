/*
 * http_client.c — the client thread of outbound HTTP (http_out.h,
 * ho_client_t): every guest's request runs here.
 *
 * One thread drives libcurl's multi interface (as eventing's delivery
 * thread does), so any number of requests run at once without a thread
 * each, connections are kept alive and reused, names are resolved by
 * libcurl's threaded resolver, and no worker or loop thread ever waits on
 * the network. A guest's side submits a transfer and parks; this thread
 * finishes it and wakes the guest (http_internal.h has the ownership
 * rules).
 *
 * Security-relevant options, on every transfer: only http and https; no
 * redirects followed (the guest gets the 3xx and its Location, and a new
 * request to follow it is checked like any other); no proxy from the
 * environment (a proxy would make the address check below meaningless);
 * and the open-socket callback, which sees the address libcurl is about
 * to connect to and refuses a non-public one unless the allowed entry
 * named it (http_allow.c). TLS verifies peers against the system's CAs
 * (libcurl's default bundle).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "host/http_internal.h"

struct ho_client {
    pthread_t thread;
    pthread_mutex_t mu;          /* guards the queues, stop, and every transfer's refs/done/waker */
    ho_xfer_t *submits, *submits_tail, *cancels;
    bool stop;
    CURLM *multi;                /* the thread's alone */
    ho_xfer_t *active;           /* in the multi handle; the thread's alone */
    mx_family_t *m_requests;
};

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static void curl_init_once(void) { curl_global_init(CURL_GLOBAL_ALL); }

void ho_xfer_free(ho_xfer_t *x)
{
    if (!x) return;
    if (x->easy) curl_easy_cleanup(x->easy);
    curl_url_cleanup(x->url);
    curl_slist_free_all(x->hdrs);
    free(x->body);
    for (uint32_t i = 0; i < x->nheaders; i++) {
        free(x->headers[i].name);
        free(x->headers[i].value);
    }
    free(x->headers);
    free(x->resp);
    free(x);
}

/* ---- libcurl callbacks (client thread) ------------------------------------ */

static size_t on_body(char *p, size_t size, size_t n, void *ud)
{
    ho_xfer_t *x = ud;
    size_t len = size * n;
    if (len > x->max_body - x->resp_len) {
        x->too_large = true;
        return 0; /* ends the transfer with CURLE_WRITE_ERROR */
    }
    if (x->resp_len + len > x->resp_cap) {
        size_t cap = x->resp_cap ? x->resp_cap : 4096;
        while (cap < x->resp_len + len) cap *= 2;
        if (cap > x->max_body) cap = x->max_body;
        uint8_t *r = realloc(x->resp, cap);
        if (!r) return 0;
        x->resp = r;
        x->resp_cap = cap;
    }
    memcpy(x->resp + x->resp_len, p, len);
    x->resp_len += len;
    return len;
}

static void headers_clear(ho_xfer_t *x)
{
    for (uint32_t i = 0; i < x->nheaders; i++) {
        free(x->headers[i].name);
        free(x->headers[i].value);
    }
    x->nheaders = 0;
    x->header_bytes = 0;
}

static size_t on_header(char *p, size_t size, size_t n, void *ud)
{
    ho_xfer_t *x = ud;
    size_t len = size * n;
    if (len >= 5 && memcmp(p, "HTTP/", 5) == 0) {
        headers_clear(x); /* a new response (after 100 Continue) */
        return len;
    }
    const char *colon = memchr(p, ':', len);
    if (!colon || colon == p) return len; /* the blank line, or not a header */
    if (x->nheaders >= HO_MAX_HEADERS || len > HO_MAX_HEADER_BYTES - x->header_bytes) {
        x->too_large = true;
        return 0;
    }
    size_t nl = (size_t)(colon - p);
    const char *v = colon + 1;
    size_t vl = len - nl - 1;
    while (vl && (*v == ' ' || *v == '\t')) v++, vl--;
    while (vl && (v[vl - 1] == '\r' || v[vl - 1] == '\n' || v[vl - 1] == ' ' || v[vl - 1] == '\t'))
        vl--;
    if (x->nheaders == x->headers_cap) {
        uint32_t cap = x->headers_cap ? x->headers_cap * 2 : 16;
        ho_header_t *h = realloc(x->headers, cap * sizeof *h);
        if (!h) return 0;
        x->headers = h;
        x->headers_cap = cap;
    }
    char *name = strndup(p, nl), *value = strndup(v, vl);
    if (!name || !value) {
        free(name);
        free(value);
        return 0;
    }
    for (char *c = name; *c; c++)
        if (*c >= 'A' && *c <= 'Z') *c = (char)(*c - 'A' + 'a');
    x->headers[x->nheaders].name = name;
    x->headers[x->nheaders].value = value;
    x->nheaders++;
    x->header_bytes += len;
    return len;
}

/* The address check: libcurl calls this for every connection it opens,
 * with the address it resolved. */
static curl_socket_t on_open_socket(void *ud, curlsocktype purpose, struct curl_sockaddr *a)
{
    ho_xfer_t *x = ud;
    if (purpose != CURLSOCKTYPE_IPCXN) return CURL_SOCKET_BAD;
    if (!x->explicit_ip && !ho_addr_is_public(&a->addr)) {
        x->refused = true;
        return CURL_SOCKET_BAD;
    }
    return socket(a->family, a->socktype | SOCK_CLOEXEC, a->protocol);
}

int ho_xfer_prepare(ho_xfer_t *x)
{
    pthread_once(&curl_once, curl_init_once);
    if (!(x->easy = curl_easy_init())) return -1;
    CURL *e = x->easy;
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(e, CURLOPT_PROXY, "");
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)HO_CONNECT_TIMEOUT_MS);
    curl_easy_setopt(e, CURLOPT_OPENSOCKETFUNCTION, on_open_socket);
    curl_easy_setopt(e, CURLOPT_OPENSOCKETDATA, x);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, x);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, x);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, x->errbuf);
    curl_easy_setopt(e, CURLOPT_PRIVATE, x);
    return 0;
}

/* ---- the thread ------------------------------------------------------------ */

/* Drops one reference. mu held; returns whether x is to be freed (by the
 * caller, after letting go of mu). */
static bool xfer_unref_locked(ho_xfer_t *x) { return --x->refs == 0; }

/* Ends x (the thread's side): done, its guest woken, the thread's
 * reference dropped. */
static void xfer_finish(ho_client_t *c, ho_xfer_t *x)
{
    pthread_mutex_lock(&c->mu);
    x->done = true;
    if (x->waker) x->ops->wake(x->waker);
    bool last = xfer_unref_locked(x);
    pthread_mutex_unlock(&c->mu);
    if (last) ho_xfer_free(x);
}

static void active_remove(ho_client_t *c, ho_xfer_t *x)
{
    if (x->prev_active) x->prev_active->next_active = x->next_active;
    else c->active = x->next_active;
    if (x->next_active) x->next_active->prev_active = x->prev_active;
    x->prev_active = x->next_active = NULL;
}

static void *client_main(void *arg)
{
    ho_client_t *c = arg;
    for (;;) {
        pthread_mutex_lock(&c->mu);
        ho_xfer_t *q = c->submits, *cq = c->cancels;
        c->submits = c->submits_tail = c->cancels = NULL;
        bool stop = c->stop;
        pthread_mutex_unlock(&c->mu);
        while (q) {
            ho_xfer_t *next = q->next;
            q->next = NULL;
            if (stop || curl_multi_add_handle(c->multi, q->easy) != CURLM_OK) {
                q->rc = CURLE_ABORTED_BY_CALLBACK;
                xfer_finish(c, q);
            } else {
                q->next_active = c->active;
                if (c->active) c->active->prev_active = q;
                c->active = q;
            }
            q = next;
        }
        /* Cancelled by their guests: taken out of the multi handle unless
         * they ended meanwhile (only this thread sets done, so reading it
         * here needs no lock), then the cancel's reference is dropped. */
        while (cq) {
            ho_xfer_t *next = cq->next;
            cq->next = NULL;
            if (!cq->done) {
                curl_multi_remove_handle(c->multi, cq->easy);
                active_remove(c, cq);
                xfer_finish(c, cq);
            }
            pthread_mutex_lock(&c->mu);
            bool last = xfer_unref_locked(cq);
            pthread_mutex_unlock(&c->mu);
            if (last) ho_xfer_free(cq);
            cq = next;
        }
        if (stop) {
            while (c->active) {
                ho_xfer_t *x = c->active;
                curl_multi_remove_handle(c->multi, x->easy);
                active_remove(c, x);
                x->rc = CURLE_ABORTED_BY_CALLBACK;
                xfer_finish(c, x);
            }
            break;
        }
        int still = 0;
        curl_multi_perform(c->multi, &still);
        CURLMsg *m;
        int left;
        while ((m = curl_multi_info_read(c->multi, &left))) {
            if (m->msg != CURLMSG_DONE) continue;
            ho_xfer_t *x = NULL;
            curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&x);
            x->rc = m->data.result;
            curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &x->status);
            curl_multi_remove_handle(c->multi, x->easy);
            active_remove(c, x);
            xfer_finish(c, x);
        }
        curl_multi_poll(c->multi, NULL, 0, 1000, NULL);
    }
    return NULL;
}

ho_client_t *ho_client_new(mx_registry_t *mx, char *err, size_t errlen)
{
    pthread_once(&curl_once, curl_init_once);
    ho_client_t *c = calloc(1, sizeof *c);
    if (!c || !(c->multi = curl_multi_init())) {
        free(c);
        snprintf(err, errlen, "outbound HTTP: out of memory");
        return NULL;
    }
    pthread_mutex_init(&c->mu, NULL);
    /* Connections per destination: beyond this, libcurl queues the
     * transfers (they still count against their guests' deadlines). */
    curl_multi_setopt(c->multi, CURLMOPT_MAX_HOST_CONNECTIONS, 64L);
    curl_multi_setopt(c->multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, 1024L);
    if (mx) {
        static const char *const labels[] = {"function", "outcome", NULL};
        c->m_requests = mx_family_new(mx, "wasmfn_outbound_requests_total",
                                      "Outbound HTTP requests made by guests "
                                      "(wasi_experimental_http), by outcome.",
                                      MX_COUNTER, labels, NULL, 0);
    }
    int r = pthread_create(&c->thread, NULL, client_main, c);
    if (r != 0) {
        snprintf(err, errlen, "outbound HTTP: cannot start its thread: %s", strerror(r));
        curl_multi_cleanup(c->multi);
        pthread_mutex_destroy(&c->mu);
        free(c);
        return NULL;
    }
    return c;
}

void ho_client_free(ho_client_t *c)
{
    if (!c) return;
    pthread_mutex_lock(&c->mu);
    c->stop = true;
    pthread_mutex_unlock(&c->mu);
    curl_multi_wakeup(c->multi);
    pthread_join(c->thread, NULL);
    curl_multi_cleanup(c->multi);
    pthread_mutex_destroy(&c->mu);
    free(c);
}

mx_family_t *ho_client_metric(ho_client_t *c) { return c ? c->m_requests : NULL; }

void ho_client_forget(ho_client_t *c, const char *function)
{
    if (c && c->m_requests) mx_family_remove_first_label(c->m_requests, function);
}

int ho_client_submit(ho_client_t *c, ho_xfer_t *x, void *waker, const ho_wait_ops_t *ops)
{
    pthread_mutex_lock(&c->mu);
    if (c->stop) {
        pthread_mutex_unlock(&c->mu);
        return -1;
    }
    x->refs = 2;
    x->waker = waker;
    x->ops = ops;
    x->next = NULL;
    if (c->submits_tail) c->submits_tail->next = x;
    else c->submits = x;
    c->submits_tail = x;
    pthread_mutex_unlock(&c->mu);
    curl_multi_wakeup(c->multi);
    return 0;
}

bool ho_client_done(ho_client_t *c, ho_xfer_t *x)
{
    pthread_mutex_lock(&c->mu);
    bool d = x->done;
    pthread_mutex_unlock(&c->mu);
    return d;
}

void ho_client_release(ho_client_t *c, ho_xfer_t *x)
{
    pthread_mutex_lock(&c->mu);
    x->waker = NULL;
    bool cancel = !x->done && !x->cancelled;
    bool last = false;
    if (cancel) {
        /* The caller's reference goes with the cancel: the thread drops
         * it once it has seen the cancel. */
        x->cancelled = true;
        x->next = c->cancels;
        c->cancels = x;
    } else {
        last = xfer_unref_locked(x);
    }
    pthread_mutex_unlock(&c->mu);
    if (cancel) curl_multi_wakeup(c->multi);
    if (last) ho_xfer_free(x);
}
