/*
 * request.c — the entry points into the data plane: srv_call_submit, the
 * one way to call a function (sync, or async as "Prefer: respond-async"
 * asks), and its HTTP adapters: the data plane's HTTP server (srv_listen,
 * srv_port) whose requests are routed by path or Host, and srv_invoke for
 * the admin API. Broker ingress is handed to eventing.
 */
#define _GNU_SOURCE
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "serving/plane.h"

/* ---- the request entry points ------------------------------------------- */

/* Whether the request carries the preference respond-async (RFC 7240):
 * "Prefer: respond-async" or one of a comma-separated list, any case. */
static bool prefers_async(const hs_req_t *req)
{
    for (size_t k = 0; k < req->nheaders; k++) {
        if (strcasecmp(req->headers[k].name, "Prefer") != 0) continue;
        const char *p = req->headers[k].value;
        while (*p) {
            while (*p == ' ' || *p == '\t' || *p == ',') p++;
            const char *tok = p;
            while (*p && *p != ',' && *p != ';' && *p != '=' && *p != ' ' && *p != '\t') p++;
            if (p - tok == 13 && strncasecmp(tok, "respond-async", 13) == 0) return true;
            while (*p && *p != ',') p++;
        }
    }
    return false;
}

/* Answers a call that never started: a line of text, through done. */
static void answer_text(srv_call_done_fn done, void *ud, int status, bool retry, const char *fmt,
                        ...) __attribute__((format(printf, 5, 6)));
static void answer_text(srv_call_done_fn done, void *ud, int status, bool retry, const char *fmt,
                        ...)
{
    char body[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(body, sizeof body, fmt, ap);
    va_end(ap);
    if (n < 0) n = 0;
    if ((size_t)n >= sizeof body) n = sizeof body - 1;
    hs_header_t h[2] = {{"Content-Type", "text/plain; charset=utf-8"}, {"Retry-After", "1"}};
    done(ud, status, h, retry ? 2 : 1, body, (size_t)n);
}

/* An asynchronous call is answered before it runs, so nothing else holds
 * back a client that sends them faster than they run (with max-scale 0
 * none even waits in a queue): each pending one keeps its request body.
 * When taking len more bytes would pass a bound on pending calls or their
 * bytes, of revision r or of the process, answers 503 with Retry-After,
 * counts it and returns true. */
static bool async_refuse(srv_t *s, srv_fn_t *f, srv_rev_t *r, size_t len, srv_call_done_fn done,
                         void *ud)
{
    const char *limit;
    char why[160];
    if (r->async_pending >= s->async_rev_max_pending) {
        limit = "revision";
        snprintf(why, sizeof why, "%u asynchronous invocations of revision %s are pending",
                 r->async_pending, r->name);
    } else if (len > s->async_rev_max_bytes - r->async_bytes) {
        limit = "revision";
        snprintf(why, sizeof why,
                 "asynchronous invocations of revision %s pending with %llu bytes of bodies "
                 "(at most %llu)", r->name, (unsigned long long)r->async_bytes,
                 (unsigned long long)s->async_rev_max_bytes);
    } else if (s->async_pending >= s->async_max_pending) {
        limit = "process";
        snprintf(why, sizeof why, "%u asynchronous invocations are pending", s->async_pending);
    } else if (len > s->async_max_bytes - s->async_bytes) {
        limit = "process";
        snprintf(why, sizeof why,
                 "asynchronous invocations pending with %llu bytes of bodies (at most %llu)",
                 (unsigned long long)s->async_bytes, (unsigned long long)s->async_max_bytes);
    } else {
        return false;
    }
    if (s->mx && !f->deleted) {
        const char *lv[] = {f->name, r->name, limit};
        const char *lc[] = {f->name, r->name, "503"};
        if (s->m_async_rejected) mx_counter_add(s->m_async_rejected, lv, 1);
        if (s->m_requests) mx_counter_add(s->m_requests, lc, 1);
    }
    answer_text(done, ud, 503, true, "function %s: %s; retry later\n", f->name, why);
    return true;
}

/* Takes c off the caller's hands: its body copied, its outcome kept as an
 * invocation record, the caller answered 202 now. false when out of
 * memory (nothing answered). */
static bool call_go_async(srv_t *s, srv_call_t *c, srv_fn_t *f, srv_rev_t *r)
{
    if (!c->body_len || (c->body_copy = malloc(c->body_len)))
        c->inv = srv_inv_new(s->invs, f->name, r->name);
    if (!c->inv) return false;
    /* An asynchronous call's invocation id is its record's. */
    snprintf(c->invocation_id, sizeof c->invocation_id, "%s", srv_inv_id(c->inv));
    if (c->body_len) memcpy(c->body_copy, c->body, c->body_len);
    c->body = c->body_copy;
    r->async_pending++;
    r->async_bytes += c->body_len;
    s->async_pending++;
    s->async_bytes += c->body_len;
    if (s->m_async_pending) mx_gauge_set(s->m_async_pending, r->labels, r->async_pending);
    char loc[64], body[128];
    snprintf(loc, sizeof loc, "/v1/invocations/%s", srv_inv_id(c->inv));
    int n = snprintf(body, sizeof body, "{\"id\":\"%s\",\"location\":\"%s\"}\n",
                     srv_inv_id(c->inv), loc);
    hs_header_t h[3] = {{"Content-Type", "application/json"}, {"Location", loc},
                        {"Preference-Applied", "respond-async"}};
    c->done(c->done_ud, 202, h, 3, body, (size_t)n);
    c->done = NULL;
    return true;
}

srv_call_t *srv_call_submit(srv_t *s, const srv_call_req_t *rq, srv_call_done_fn done, void *ud)
{
    srv_fn_t *f = srv_fn_find(s, rq->function);
    if (!f || f->nroutes == 0) {
        answer_text(done, ud, 404, false, "no function '%.100s'\n", rq->function);
        return NULL;
    }
    const char *path_raw = rq->path ? rq->path : "";
    const char *query = rq->query ? rq->query : "";
    char stackbuf[1024];
    size_t plen = strlen(path_raw);
    char *path_info = plen < sizeof stackbuf ? stackbuf : malloc(plen + 1);
    if (!path_info) {
        answer_text(done, ud, 500, false, "out of memory\n");
        return NULL;
    }
    if (cm_pct_decode(path_raw, plen, path_info, 0) < 0) {
        if (path_info != stackbuf) free(path_info);
        answer_text(done, ud, 400, false, "bad percent-encoding in the request path\n");
        return NULL;
    }
    srv_rev_t *r = f->route_rev[srv_split_pick(f->current, f->percent, f->nroutes)];
    if (rq->async && async_refuse(s, f, r, rq->body_len, done, ud)) {
        if (path_info != stackbuf) free(path_info);
        return NULL;
    }
    char script[SRV_NAME_MAX + 8] = "";
    if (!rq->by_host) snprintf(script, sizeof script, "/fn/%s", f->name);
    /* The CGI environment is built from a request as the HTTP server
     * would have parsed it; an in-process call gets the loopback
     * connection the same call over the data plane would have had. */
    char *uri = NULL;
    if (!rq->request_uri &&
        asprintf(&uri, "%s%s%s%s", script, path_raw, *query ? "?" : "", query) < 0)
        uri = NULL;
    hs_req_t view = {
        .method = rq->method,
        .target = rq->request_uri ? rq->request_uri : uri,
        .path = path_raw,
        .query = query,
        .headers = rq->headers,
        .nheaders = rq->nheaders,
        .body = rq->body,
        .body_len = rq->body_len,
        .remote_addr = rq->remote_addr ? rq->remote_addr : "127.0.0.1",
        .remote_port = rq->remote_port,
        .local_addr = rq->local_addr ? rq->local_addr : "127.0.0.1",
        .local_port = rq->local_port ? rq->local_port : srv_port(s),
        .http_minor = rq->request_uri ? rq->http_minor : 1,
    };
    srv_call_t *c = view.target ? srv_call_alloc(s) : NULL;
    uint32_t nenv = 0;
    char **env = c ? srv_cgi_env_new(&view, script, path_info, &nenv) : NULL;
    if (path_info != stackbuf) free(path_info);
    if (!env) {
        free(uri);
        if (c) srv_call_free(s, c);
        answer_text(done, ud, 500, false, "out of memory\n");
        return NULL;
    }
    c->srv = s;
    c->done = done;
    c->done_ud = ud;
    c->body = rq->body;
    c->body_len = rq->body_len;
    c->rev = r;
    c->env = env;
    c->nenv = nenv;
    /* Its trace (the client's traceparent honoured) and invocation id,
     * read from the request before an asynchronous call answers it: the
     * answer may free the request view points into. */
    srv_call_trace_start(s, c, &view);
    free(uri); /* view.target, when it was built here */
    if (rq->async && !call_go_async(s, c, f, r)) {
        srv_call_free(s, c);
        answer_text(done, ud, 500, false, "out of memory\n");
        return NULL;
    }
    r->refs++;
    c->start_ns = eng_now_ns();
    c->timeout_ms = rq->timeout_ms && rq->timeout_ms < r->timeout_ms ? rq->timeout_ms : r->timeout_ms;
    c->deadline_ns = c->start_ns + (uint64_t)c->timeout_ms * 1000000ull;
    if (s->ncalls++ == 0) uv_timer_start(&s->sweep, srv_on_sweep, SRV_SWEEP_MS, SRV_SWEEP_MS);
    bool async = c->inv != NULL;
    /* Admission may answer at once (503) and free c: the flag tells. */
    bool finished = false;
    c->finished = &finished;
    srv_call_admit(s, c);
    if (finished) return NULL;
    c->finished = NULL; /* also for an asynchronous call, which outlives this frame */
    return async ? NULL : c;
}

/* ---- HTTP requests ------------------------------------------------------- */

static void answer_http(void *ud, int status, const hs_header_t *h, size_t nh, const void *body,
                        size_t len)
{
    hs_respond(ud, status, h, nh, body, len);
}

/* script_name: "/fn/NAME" for path routes, "" for Host routes. */
static void call_http(srv_t *s, const char *name, bool by_host, const char *path_raw,
                      hs_req_t *req)
{
    srv_call_req_t rq = {
        .function = name,
        .method = req->method,
        .path = path_raw,
        .query = req->query,
        .headers = req->headers,
        .nheaders = req->nheaders,
        .body = req->body,
        .body_len = req->body_len,
        .async = prefers_async(req),
        .by_host = by_host,
        .request_uri = req->target,
        .remote_addr = req->remote_addr ? req->remote_addr : "",
        .local_addr = req->local_addr ? req->local_addr : "",
        .remote_port = req->remote_port,
        .local_port = req->local_port,
        .http_minor = req->http_minor,
    };
    srv_call_t *c = srv_call_submit(s, &rq, answer_http, req);
    if (c) hs_req_on_abort(req, srv_call_on_abort, c);
}

static void srv_on_request(hs_req_t *req, void *ud)
{
    srv_t *s = ud;
    char name[SRV_NAME_MAX];
    const char *rest;
    if (srv_route_host(hs_req_header(req, "Host"), s->domain, name, sizeof name) == 0) {
        call_http(s, name, true, req->path, req);
    } else if (srv_route_path(req->path, name, sizeof name, &rest) == 0) {
        call_http(s, name, false, rest, req);
    } else if (s->events_fn && strncmp(req->path, "/events/", 8) == 0) {
        /* /events/BROKER: the broker's ingress (Knative's broker-ingress). */
        const char *b = req->path + 8;
        size_t n = strcspn(b, "/");
        if (n == 0 || n >= sizeof name || b[n] != '\0') {
            hs_respond_text(req, 404, "no broker here: use /events/BROKER\n");
            return;
        }
        memcpy(name, b, n);
        name[n] = '\0';
        s->events_fn(s->events_ud, name, req);
    } else {
        hs_respond_text(req, 404,
                        "no function here: use /fn/NAME/... or Host: NAME.default.DOMAIN\n");
    }
}

/* The data plane's HTTP server, whose handler is srv_on_request (drained
 * and closed by serving.c). */
int srv_listen(srv_t *s, const char *host_port, char *err, size_t errlen)
{
    if (s->http) {
        snprintf(err, errlen, "the data plane is already listening");
        return -1;
    }
    s->http = hs_server_new(s->loop, &s->limits, srv_on_request, s);
    if (!s->http) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    if (hs_server_listen(s->http, host_port, err, errlen) != 0) {
        hs_server_close(s->http, NULL, NULL);
        s->http = NULL;
        return -1;
    }
    return 0;
}

uint16_t srv_port(const srv_t *s) { return s->http ? hs_server_port(s->http) : 0; }

void srv_set_events_ingress(srv_t *s, void (*fn)(void *ud, const char *broker, hs_req_t *req),
                            void *ud)
{
    s->events_fn = fn;
    s->events_ud = ud;
}

void srv_invoke(srv_t *s, const char *name, const char *path_info, hs_req_t *req)
{
    call_http(s, name, false, path_info ? path_info : "", req);
}

char *srv_invocation_json(srv_t *s, const char *id) { return srv_inv_json(s->invs, id); }
