/*
 * http_out.c — the guest's side of outbound HTTP: the five functions of
 * `wasi_experimental_http` (req, close, header_get, headers_get_all,
 * body_read) and the per-instance sessions they work on (http_out.h).
 *
 * The interface is deislabs' (witx/wasi_experimental_http.witx): every
 * function returns a u32 error code, strings and buffers are (pointer,
 * length) pairs in the guest's memory 0, `req` writes a u16 status and a
 * u32 handle, the others write a size (u32 in wasm32) of bytes written.
 * Headers travel as "name:value\n" lines both ways; response header names
 * are lower case (as the reference implementation's header map gives
 * them).
 *
 * Every guest pointer and length is checked against the memory's current
 * size before anything is read or written (HO_MEMORY_ACCESS_ERROR),
 * including the result pointers, which are checked before a request is
 * made, so a request is never made whose result the guest cannot receive.
 *
 * A request is copied out of guest memory (URL, method, headers, body)
 * into a transfer that the client thread runs (http_client.c) while the
 * guest parks on its context's waker; the whole response is held by the
 * host until the guest closes the handle, within HO_MAX_RESPONSE_BYTES per
 * instance. Outcomes are counted in wasmfn_outbound_requests_total:
 * ok (a response, whatever its status), denied (HO_DESTINATION_NOT_ALLOWED),
 * limited (a limit: sessions, body or header sizes), failed (the request
 * could not be made or was bad), timeout (the guest's deadline passed
 * while it waited).
 *
 * Traces: during a traced run (ho_ctx_set_trace) every request that is
 * sent is a CLIENT span under the invocation's SERVER span, from its
 * submission to its answer, and carries that span's `traceparent` so the
 * upstream continues the trace. A request refused before it is sent (the
 * allowed list, a bad argument, a limit) makes no span: nothing went out.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/cond.h"
#include "common/utf8.h"
#include "host/http_internal.h"

/* A blocking wait for guests not on a fiber (ops NULL): a condition
 * variable, re-checking the exec every 10 ms. */
typedef struct plain_waker {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool signaled;
} plain_waker_t;

static void *plain_new(void)
{
    plain_waker_t *k = calloc(1, sizeof *k);
    if (!k) return NULL;
    pthread_mutex_init(&k->mu, NULL);
    cm_cond_init_monotonic(&k->cv);
    return k;
}

static void plain_free(void *p)
{
    plain_waker_t *k = p;
    if (!k) return;
    pthread_mutex_destroy(&k->mu);
    pthread_cond_destroy(&k->cv);
    free(k);
}

static void plain_wake(void *p)
{
    plain_waker_t *k = p;
    pthread_mutex_lock(&k->mu);
    k->signaled = true;
    pthread_cond_broadcast(&k->cv);
    pthread_mutex_unlock(&k->mu);
}

static int plain_wait(void *p, eng_exec_t *x, uint64_t until_ns)
{
    plain_waker_t *k = p;
    for (;;) {
        if (eng_exec_should_stop(x)) return -1;
        uint64_t now = eng_now_ns();
        pthread_mutex_lock(&k->mu);
        if (k->signaled) {
            k->signaled = false;
            pthread_mutex_unlock(&k->mu);
            return 0;
        }
        if (now >= until_ns) {
            pthread_mutex_unlock(&k->mu);
            return 1;
        }
        uint64_t at = until_ns - now > 10000000u ? now + 10000000u : until_ns;
        cm_cond_wait_until_ns(&k->cv, &k->mu, at);
        pthread_mutex_unlock(&k->mu);
    }
}

static const ho_wait_ops_t plain_ops = {plain_new, plain_free, plain_wake, plain_wait};

/* ---- the context ------------------------------------------------------------ */

typedef struct ho_binding ho_binding_t;

struct ho_ctx {
    ho_client_t *client;         /* NULL: every request refused */
    ho_policy_t *policy;         /* a reference */
    char *function;
    const ho_wait_ops_t *ops;
    void *waker;                 /* made at the first request */
    ho_xfer_t *sessions[HO_MAX_SESSIONS]; /* open handles; NULL = free slot */
    uint32_t next_handle;
    size_t held_bytes;           /* response bodies of open sessions */
    ho_binding_t *bindings;      /* one per function of the interface */
    tr_tracer_t *tracer;         /* the current run's trace (ho_ctx_set_trace) */
    tr_ctx_t trace;
    bool traced;
};

ho_ctx_t *ho_ctx_new(ho_client_t *client, ho_policy_t *policy, const char *function,
                     const ho_wait_ops_t *ops)
{
    ho_ctx_t *h = calloc(1, sizeof *h);
    if (!h || !(h->function = strdup(function ? function : ""))) {
        free(h);
        return NULL;
    }
    h->client = client;
    h->policy = policy;
    ho_policy_ref(policy);
    h->ops = ops ? ops : &plain_ops;
    h->next_handle = 1;
    return h;
}

static void session_close(ho_ctx_t *h, uint32_t slot)
{
    ho_xfer_t *x = h->sessions[slot];
    h->sessions[slot] = NULL;
    h->held_bytes -= x->resp_len;
    ho_xfer_free(x); /* done: the client thread has let go of it */
}

void ho_ctx_free(ho_ctx_t *h)
{
    if (!h) return;
    for (uint32_t i = 0; i < HO_MAX_SESSIONS; i++)
        if (h->sessions[i]) session_close(h, i);
    if (h->waker) h->ops->waker_free(h->waker);
    ho_policy_unref(h->policy);
    free(h->function);
    free(h->bindings);
    free(h);
}

void ho_ctx_set_trace(ho_ctx_t *h, tr_tracer_t *tracer, const tr_ctx_t *ctx)
{
    if (!h) return;
    h->traced = ctx != NULL;
    h->tracer = ctx ? tracer : NULL;
    if (ctx) h->trace = *ctx;
}

static void count(ho_ctx_t *h, const char *outcome)
{
    mx_family_t *f = ho_client_metric(h->client);
    if (!f) return;
    const char *lv[] = {h->function, outcome};
    mx_counter_add(f, lv, 1);
}

/* ---- guest memory ------------------------------------------------------------ */

typedef struct gmem {
    uint8_t *base;
    uint64_t size;
} gmem_t;

static bool mem_ok(const gmem_t *m, uint32_t ptr, uint64_t len)
{
    return len <= m->size && ptr <= m->size - len;
}

static void st32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}

/* RFC 9110 token characters (methods, header names). */
static bool is_tchar(uint8_t c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c && strchr("!#$%&'*+-.^_`|~", c));
}

/* ---- req ------------------------------------------------------------------------ */

/* The request headers ("name:value" lines; blank lines skipped) into x's
 * list. Headers whose framing libcurl owns (Content-Length,
 * Transfer-Encoding, Connection, Expect) are dropped; a body without a
 * Content-Type is sent without one. */
static uint32_t headers_parse(ho_xfer_t *x, const uint8_t *s, size_t n)
{
    uint32_t count = 0;
    bool has_ctype = false;
    size_t i = 0;
    while (i < n) {
        const uint8_t *nl = memchr(s + i, '\n', n - i);
        size_t end = nl ? (size_t)(nl - s) : n, len = end - i;
        const uint8_t *line = s + i;
        i = end + 1;
        if (len && line[len - 1] == '\r') len--;
        if (len == 0) continue;
        const uint8_t *colon = memchr(line, ':', len);
        if (!colon || colon == line) return HO_INVALID_ENCODING;
        size_t nlen = (size_t)(colon - line);
        for (size_t k = 0; k < nlen; k++)
            if (!is_tchar(line[k])) return HO_INVALID_ENCODING;
        const uint8_t *v = colon + 1;
        size_t vlen = len - nlen - 1;
        while (vlen && (*v == ' ' || *v == '\t')) v++, vlen--;
        for (size_t k = 0; k < vlen; k++)
            if (v[k] == '\r' || v[k] == 0 || v[k] == 0x7f || (v[k] < 0x20 && v[k] != '\t'))
                return HO_INVALID_ENCODING;
        if (++count > HO_MAX_HEADERS) return HO_INVALID_ENCODING;
        static const char *const dropped[] = {"content-length", "transfer-encoding",
                                              "connection", "expect"};
        bool drop = false;
        for (size_t k = 0; k < sizeof dropped / sizeof *dropped; k++)
            if (strlen(dropped[k]) == nlen && strncasecmp((const char *)line, dropped[k], nlen) == 0)
                drop = true;
        if (drop) continue;
        if (nlen == 12 && strncasecmp((const char *)line, "content-type", 12) == 0) has_ctype = true;
        char *h;
        /* "Name;" is libcurl's way of sending a header with an empty value. */
        if (vlen ? asprintf(&h, "%.*s: %.*s", (int)nlen, line, (int)vlen, v) < 0
                 : asprintf(&h, "%.*s;", (int)nlen, line) < 0)
            return HO_RUNTIME_ERROR;
        struct curl_slist *l = curl_slist_append(x->hdrs, h);
        free(h);
        if (!l) return HO_RUNTIME_ERROR;
        x->hdrs = l;
    }
    static const char *const always[] = {"Expect:", "Content-Type:"};
    for (int k = 0; k < (has_ctype ? 1 : 2); k++) {
        struct curl_slist *l = curl_slist_append(x->hdrs, always[k]);
        if (!l) return HO_RUNTIME_ERROR;
        x->hdrs = l;
    }
    return HO_OK;
}

/* Copies the request out of guest memory into a new transfer (*out), or
 * returns the error code. */
static uint32_t req_build(ho_ctx_t *h, const gmem_t *m, const eng_val_t *a, ho_xfer_t **out,
                          const char **outcome)
{
    uint32_t url_ptr = a[0].i32, url_len = a[1].i32, meth_ptr = a[2].i32, meth_len = a[3].i32;
    uint32_t hdr_ptr = a[4].i32, hdr_len = a[5].i32, body_ptr = a[6].i32, body_len = a[7].i32;
    *outcome = "failed";
    if (!mem_ok(m, url_ptr, url_len) || !mem_ok(m, meth_ptr, meth_len) ||
        !mem_ok(m, hdr_ptr, hdr_len) || !mem_ok(m, body_ptr, body_len) ||
        !mem_ok(m, a[8].i32, 2) || !mem_ok(m, a[9].i32, 4))
        return HO_MEMORY_ACCESS_ERROR;
    const uint8_t *url = m->base + url_ptr, *meth = m->base + meth_ptr, *hdr = m->base + hdr_ptr;
    if (!cm_utf8_valid(url, url_len) || !cm_utf8_valid(meth, meth_len) || !cm_utf8_valid(hdr, hdr_len))
        return HO_UTF8_ERROR;
    if (url_len == 0 || url_len > HO_MAX_URL_BYTES || memchr(url, 0, url_len))
        return HO_INVALID_URL;
    uint32_t nopen = 0;
    for (uint32_t i = 0; i < HO_MAX_SESSIONS; i++) nopen += h->sessions[i] != NULL;
    if (nopen >= HO_MAX_SESSIONS) {
        *outcome = "limited";
        return HO_TOO_MANY_SESSIONS;
    }
    ho_xfer_t *x = calloc(1, sizeof *x);
    if (!x || !(x->url = curl_url())) {
        free(x);
        return HO_RUNTIME_ERROR;
    }
    uint32_t rc = HO_RUNTIME_ERROR;
    char *u = strndup((const char *)url, url_len);
    if (!u) goto fail;
    CURLUcode uc = curl_url_set(x->url, CURLUPART_URL, u, 0);
    free(u);
    if (uc != CURLUE_OK) {
        rc = uc == CURLUE_OUT_OF_MEMORY ? HO_RUNTIME_ERROR : HO_INVALID_URL;
        goto fail;
    }
    /* The allowed list before anything else about the request: a refused
     * destination costs nothing and is never contacted. */
    rc = ho_policy_check(h->client ? h->policy : NULL, x->url, &x->explicit_ip);
    if (rc == HO_DESTINATION_NOT_ALLOWED) *outcome = "denied";
    if (rc != HO_OK) goto fail;
    rc = HO_INVALID_METHOD;
    if (meth_len == 0 || meth_len >= sizeof x->method) goto fail;
    for (uint32_t i = 0; i < meth_len; i++)
        if (!is_tchar(meth[i])) goto fail;
    memcpy(x->method, meth, meth_len);
    x->method[meth_len] = 0;
    for (char *c = x->method; *c; c++)
        if (*c >= 'a' && *c <= 'z') *c = (char)(*c - 'a' + 'A');
    /* CONNECT would make a tunnel and TRACE echo credentials back. */
    if (strcmp(x->method, "CONNECT") == 0 || strcmp(x->method, "TRACE") == 0) goto fail;
    if (body_len > HO_MAX_REQUEST_BODY_BYTES) {
        *outcome = "limited";
        rc = HO_REQUEST_ERROR;
        goto fail;
    }
    if ((rc = headers_parse(x, hdr, hdr_len)) != HO_OK) goto fail;
    rc = HO_RUNTIME_ERROR;
    if (body_len) {
        if (!(x->body = malloc(body_len))) goto fail;
        memcpy(x->body, m->base + body_ptr, body_len);
        x->body_len = body_len;
    }
    if (ho_xfer_prepare(x) != 0) goto fail;
    x->max_body = HO_MAX_RESPONSE_BYTES - h->held_bytes;
    CURL *e = x->easy;
    curl_easy_setopt(e, CURLOPT_CURLU, x->url);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, x->hdrs);
    if (strcmp(x->method, "HEAD") == 0) {
        curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
    } else {
        curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, x->method);
        if (x->body_len || strcmp(x->method, "POST") == 0 || strcmp(x->method, "PUT") == 0) {
            curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)x->body_len);
            curl_easy_setopt(e, CURLOPT_POSTFIELDS, x->body ? (char *)x->body : "");
        }
    }
    *out = x;
    return HO_OK;
fail:
    ho_xfer_free(x);
    return rc;
}

/* Starts the CLIENT span of request x (a traced run) and, unless the
 * guest set its own, adds the span's traceparent to the request's
 * headers. url.full leaves out any user and password the URL holds. */
static void trace_begin(ho_ctx_t *h, ho_xfer_t *x, tr_span_t *sp)
{
    char *url = NULL;
    CURLU *u = curl_url_dup(x->url);
    if (u) {
        curl_url_set(u, CURLUPART_USER, NULL, 0);
        curl_url_set(u, CURLUPART_PASSWORD, NULL, 0);
        if (curl_url_get(u, CURLUPART_URL, &url, 0) != CURLUE_OK) url = NULL;
        curl_url_cleanup(u);
    }
    char tp[TR_TRACEPARENT_LEN + 1];
    tr_client_begin(sp, h->tracer, &h->trace, x->method, url ? url : "", tp);
    curl_free(url);
    for (const struct curl_slist *l = x->hdrs; l; l = l->next)
        if (strncasecmp(l->data, "traceparent", 11) == 0 &&
            (l->data[11] == ':' || l->data[11] == ';'))
            return; /* the guest's own, kept: it may continue a trace of its own */
    char line[sizeof "traceparent: " + TR_TRACEPARENT_LEN];
    snprintf(line, sizeof line, "traceparent: %s", tp);
    struct curl_slist *l = curl_slist_append(x->hdrs, line);
    if (!l) return; /* out of memory: the request goes without it */
    x->hdrs = l;
    curl_easy_setopt(x->easy, CURLOPT_HTTPHEADER, x->hdrs);
}

/* The function's deadline passed while x was out: x is let go, the span
 * (if traced) ends, and the guest traps. */
static uint32_t req_deadline(ho_ctx_t *h, ho_xfer_t *x, tr_span_t *span, eng_trap_t *trap)
{
    ho_client_release(h->client, x);
    count(h, "timeout");
    if (span) tr_client_end(span, 0, "no answer before the function's deadline");
    *trap = ENG_TRAP_DEADLINE;
    return HO_REQUEST_ERROR;
}

static uint32_t fn_req(ho_ctx_t *h, const gmem_t *m, eng_val_t *a, eng_exec_t *ex,
                       eng_trap_t *trap)
{
    const char *outcome;
    ho_xfer_t *x = NULL;
    uint32_t rc = req_build(h, m, a, &x, &outcome);
    if (rc != HO_OK) {
        count(h, outcome);
        return rc;
    }
    uint64_t deadline = eng_exec_deadline(ex), now = eng_now_ns();
    if (deadline && deadline <= now) {
        ho_xfer_free(x);
        *trap = ENG_TRAP_DEADLINE;
        return HO_REQUEST_ERROR;
    }
    uint64_t left_ms = deadline ? (deadline - now) / 1000000u + 1 : HO_DEFAULT_TIMEOUT_MS;
    curl_easy_setopt(x->easy, CURLOPT_TIMEOUT_MS, (long)left_ms);
    if (!h->waker && !(h->waker = h->ops->waker_new())) {
        ho_xfer_free(x);
        count(h, "failed");
        return HO_RUNTIME_ERROR;
    }
    bool traced = h->traced;
    tr_span_t span;
    if (traced) trace_begin(h, x, &span);
    if (ho_client_submit(h->client, x, h->waker, h->ops) != 0) {
        ho_xfer_free(x);
        count(h, "failed");
        if (traced) tr_client_end(&span, 0, "the outbound client is stopping");
        return HO_RUNTIME_ERROR;
    }
    /* Parked until the client thread is done with it. Wakes may be
     * spurious (a wake meant for an earlier, abandoned request). */
    while (!ho_client_done(h->client, x)) {
        if (h->ops->wait(h->waker, ex, deadline ? deadline : UINT64_MAX) != 0 &&
            !ho_client_done(h->client, x)) {
            return req_deadline(h, x, traced ? &span : NULL, trap);
        }
    }
    if (x->rc == CURLE_OPERATION_TIMEDOUT && deadline &&
        (eng_now_ns() >= deadline || left_ms < HO_CONNECT_TIMEOUT_MS)) {
        /* libcurl's timeout is the function's deadline (plus 1 ms): the
         * deadline, only seen first by the client thread (it happens under
         * load). libcurl may even see it a few milliseconds early, as it
         * starts the transfer's clock from a time it read before. The
         * guest must stop at its deadline, as when its own wait sees it
         * first, not be told request_error and go on; so it waits out what
         * is left. (The 10 s connect timeout, when the deadline is further
         * away, stays an error the guest is told.) */
        while (eng_now_ns() < deadline && h->ops->wait(h->waker, ex, deadline) == 0) {
        }
        return req_deadline(h, x, traced ? &span : NULL, trap);
    }
    if (x->rc != CURLE_OK) {
        /* A refused address ends the transfer too (libcurl could not
         * connect): the guest is told why. With several addresses, a
         * refused one does not matter once another has answered. */
        const char *why = x->refused ? "denied" : x->too_large ? "limited" : "failed";
        if (traced)
            tr_client_end(&span, 0, x->refused ? "the address is not allowed"
                                    : x->too_large ? "the response is over the limits"
                                    : x->errbuf[0] ? x->errbuf : curl_easy_strerror(x->rc));
        ho_client_release(h->client, x);
        count(h, why);
        return why[0] == 'd' ? HO_DESTINATION_NOT_ALLOWED : HO_REQUEST_ERROR;
    }
    if (traced) tr_client_end(&span, (int)x->status, NULL);
    /* The client thread has let go of it: a session from now on. The
     * result pointers were checked before the request; the guest could
     * not run meanwhile, so they still hold. */
    uint32_t slot = 0;
    while (h->sessions[slot]) slot++; /* req_build checked there is one */
    x->handle = h->next_handle++;
    if (h->next_handle == 0) h->next_handle = 1;
    h->sessions[slot] = x;
    h->held_bytes += x->resp_len;
    uint8_t *st = m->base + a[8].i32;
    st[0] = (uint8_t)x->status;
    st[1] = (uint8_t)(x->status >> 8);
    st32(m->base + a[9].i32, x->handle);
    curl_easy_cleanup(x->easy); /* its connection stays in the client's pool */
    x->easy = NULL;
    count(h, "ok");
    return HO_OK;
}

/* ---- the other four ----------------------------------------------------------- */

static ho_xfer_t *session_find(ho_ctx_t *h, uint32_t handle, uint32_t *slot)
{
    for (uint32_t i = 0; handle && i < HO_MAX_SESSIONS; i++) {
        if (h->sessions[i] && h->sessions[i]->handle == handle) {
            if (slot) *slot = i;
            return h->sessions[i];
        }
    }
    return NULL;
}

static uint32_t fn_close(ho_ctx_t *h, const gmem_t *m, eng_val_t *a, eng_exec_t *ex,
                         eng_trap_t *trap)
{
    (void)m, (void)ex, (void)trap;
    uint32_t slot;
    if (!session_find(h, a[0].i32, &slot)) return HO_INVALID_HANDLE;
    session_close(h, slot);
    return HO_OK;
}

static uint32_t fn_header_get(ho_ctx_t *h, const gmem_t *m, eng_val_t *a, eng_exec_t *ex,
                              eng_trap_t *trap)
{
    (void)ex, (void)trap;
    uint32_t name_ptr = a[1].i32, name_len = a[2].i32, buf_ptr = a[3].i32, buf_len = a[4].i32;
    uint32_t written_ptr = a[5].i32;
    ho_xfer_t *x = session_find(h, a[0].i32, NULL);
    if (!x) return HO_INVALID_HANDLE;
    if (!mem_ok(m, name_ptr, name_len) || !mem_ok(m, buf_ptr, buf_len) ||
        !mem_ok(m, written_ptr, 4))
        return HO_MEMORY_ACCESS_ERROR;
    const uint8_t *name = m->base + name_ptr;
    if (!cm_utf8_valid(name, name_len)) return HO_UTF8_ERROR;
    for (uint32_t i = 0; i < x->nheaders; i++) {
        const ho_header_t *hd = &x->headers[i];
        if (strlen(hd->name) != name_len || strncasecmp(hd->name, (const char *)name, name_len))
            continue;
        size_t vlen = strlen(hd->value);
        /* The needed size is written even when the buffer is too small,
         * so a guest can allocate once and ask again. */
        st32(m->base + written_ptr, (uint32_t)vlen);
        if (vlen > buf_len) return HO_BUFFER_TOO_SMALL;
        memcpy(m->base + buf_ptr, hd->value, vlen);
        return HO_OK;
    }
    return HO_HEADER_NOT_FOUND;
}

static uint32_t fn_headers_get_all(ho_ctx_t *h, const gmem_t *m, eng_val_t *a, eng_exec_t *ex,
                                   eng_trap_t *trap)
{
    (void)ex, (void)trap;
    uint32_t buf_ptr = a[1].i32, buf_len = a[2].i32, written_ptr = a[3].i32;
    ho_xfer_t *x = session_find(h, a[0].i32, NULL);
    if (!x) return HO_INVALID_HANDLE;
    if (!mem_ok(m, buf_ptr, buf_len) || !mem_ok(m, written_ptr, 4)) return HO_MEMORY_ACCESS_ERROR;
    uint64_t need = 0;
    for (uint32_t i = 0; i < x->nheaders; i++)
        need += strlen(x->headers[i].name) + 1 + strlen(x->headers[i].value) + 1;
    st32(m->base + written_ptr, (uint32_t)need); /* bounded by HO_MAX_HEADER_BYTES */
    if (need > buf_len) return HO_BUFFER_TOO_SMALL;
    uint8_t *p = m->base + buf_ptr;
    for (uint32_t i = 0; i < x->nheaders; i++) {
        size_t nl = strlen(x->headers[i].name), vl = strlen(x->headers[i].value);
        memcpy(p, x->headers[i].name, nl);
        p[nl] = ':';
        memcpy(p + nl + 1, x->headers[i].value, vl);
        p[nl + 1 + vl] = '\n';
        p += nl + vl + 2;
    }
    return HO_OK;
}

static uint32_t fn_body_read(ho_ctx_t *h, const gmem_t *m, eng_val_t *a, eng_exec_t *ex,
                             eng_trap_t *trap)
{
    (void)ex, (void)trap;
    uint32_t buf_ptr = a[1].i32, buf_len = a[2].i32, written_ptr = a[3].i32;
    ho_xfer_t *x = session_find(h, a[0].i32, NULL);
    if (!x) return HO_INVALID_HANDLE;
    if (!mem_ok(m, buf_ptr, buf_len) || !mem_ok(m, written_ptr, 4)) return HO_MEMORY_ACCESS_ERROR;
    size_t n = x->resp_len - x->read_pos;
    if (n > buf_len) n = buf_len;
    memcpy(m->base + buf_ptr, x->resp + x->read_pos, n);
    x->read_pos += n;
    st32(m->base + written_ptr, (uint32_t)n);
    return HO_OK;
}

/* ---- linking -------------------------------------------------------------------- */

typedef uint32_t (*ho_impl_t)(ho_ctx_t *h, const gmem_t *m, eng_val_t *a, eng_exec_t *ex,
                              eng_trap_t *trap);

static const struct ho_func {
    const char *name;
    const char *sig;
    ho_impl_t fn;
} ho_funcs[] = {
    {"req", "(iiiiiiiiii)i", fn_req},
    {"close", "(i)i", fn_close},
    {"header_get", "(iiiiii)i", fn_header_get},
    {"headers_get_all", "(iiii)i", fn_headers_get_all},
    {"body_read", "(iiii)i", fn_body_read},
};
#define HO_NFUNCS (sizeof ho_funcs / sizeof ho_funcs[0])

struct ho_binding {
    ho_ctx_t *h;
    ho_impl_t fn;
};

static eng_trap_t ho_trampoline(eng_host_call_t *call, eng_val_t *args)
{
    ho_binding_t *b = call->env;
    eng_memory_t *mem = call->caller ? eng_instance_memory(call->caller) : NULL;
    if (!mem) {
        args[0].i32 = HO_MEMORY_NOT_FOUND;
        return ENG_OK;
    }
    gmem_t m = {eng_memory_data(mem), eng_memory_size(mem)};
    eng_trap_t trap = ENG_OK;
    args[0].i32 = b->fn(b->h, &m, args, call->exec, &trap);
    return trap;
}

int ho_import_resolve(ho_ctx_t *h, eng_store_t *s, const eng_extern_desc_t *imp,
                      eng_extern_t *out, char *err, size_t errlen)
{
    if (imp->kind != ENG_EXTERN_FUNC) {
        snprintf(err, errlen, "import %s.%s is not a function; %s provides only functions",
                 imp->module, imp->name, HO_MODULE_NAME);
        return -1;
    }
    if (!h->bindings && !(h->bindings = calloc(HO_NFUNCS, sizeof *h->bindings))) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    for (size_t i = 0; i < HO_NFUNCS; i++) {
        const struct ho_func *f = &ho_funcs[i];
        if (strcmp(f->name, imp->name) != 0) continue;
        if (strcmp(f->sig, imp->type) != 0) {
            snprintf(err, errlen, "import %s.%s has type %s, expected %s", imp->module, imp->name,
                     imp->type, f->sig);
            return -1;
        }
        h->bindings[i].h = h;
        h->bindings[i].fn = f->fn;
        eng_func_t *fn = eng_func_new_host(s, f->sig, ho_trampoline, &h->bindings[i]);
        if (!fn) {
            snprintf(err, errlen, "cannot make host function %s.%s", imp->module, imp->name);
            return -1;
        }
        out->kind = ENG_EXTERN_FUNC;
        out->u.func = fn;
        return 0;
    }
    snprintf(err, errlen, "unknown import %s.%s (func %s): not a function of %s", imp->module,
             imp->name, imp->type, HO_MODULE_NAME);
    return -1;
}
