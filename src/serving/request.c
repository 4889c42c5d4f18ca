/*
 * request.c — the entry points into the data plane: HTTP requests routed
 * by path or Host (sync, or async with "Prefer: respond-async"), broker
 * ingress handed to eventing, and srv_invoke for the admin API.
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

/* An asynchronous call is answered before it runs, so nothing else holds
 * back a client that sends them faster than they run (with max-scale 0
 * none even waits in a queue): each pending one keeps its request body.
 * When taking req would pass a bound on pending calls or their bytes, of
 * revision r or of the process, answers 503 with Retry-After, counts it
 * and returns true. */
static bool async_refuse(srv_t *s, srv_fn_t *f, srv_rev_t *r, hs_req_t *req)
{
    const char *limit;
    char why[160];
    size_t len = req->body_len;
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
    char body[256];
    int n = snprintf(body, sizeof body, "function %s: %s; retry later\n", f->name, why);
    if (n < 0) n = 0;
    if ((size_t)n >= sizeof body) n = sizeof body - 1;
    hs_header_t h[2] = {{"Content-Type", "text/plain; charset=utf-8"}, {"Retry-After", "1"}};
    hs_respond(req, 503, h, 2, body, (size_t)n);
    return true;
}

/* script_name: "/fn/NAME" for path routes, "" for Host routes. */
static void srv_call_start(srv_t *s, const char *name, bool by_host, const char *path_raw,
                           hs_req_t *req)
{
    srv_fn_t *f = srv_fn_find(s, name);
    if (!f || f->nroutes == 0) {
        char body[160];
        snprintf(body, sizeof body, "no function '%s'\n", name);
        hs_respond_text(req, 404, body);
        return;
    }
    char stackbuf[1024];
    size_t plen = strlen(path_raw);
    char *path_info = plen < sizeof stackbuf ? stackbuf : malloc(plen + 1);
    if (!path_info) {
        hs_respond_text(req, 500, "out of memory\n");
        return;
    }
    if (cm_pct_decode(path_raw, plen, path_info, 0) < 0) {
        if (path_info != stackbuf) free(path_info);
        hs_respond_text(req, 400, "bad percent-encoding in the request path\n");
        return;
    }
    srv_rev_t *r = f->route_rev[srv_split_pick(f->current, f->percent, f->nroutes)];
    bool async = prefers_async(req);
    if (async && async_refuse(s, f, r, req)) {
        if (path_info != stackbuf) free(path_info);
        return;
    }
    char script[SRV_NAME_MAX + 8] = "";
    if (!by_host) snprintf(script, sizeof script, "/fn/%s", f->name);
    srv_call_t *c = srv_call_alloc(s);
    uint32_t nenv = 0;
    char **env = c ? srv_cgi_env_new(req, script, path_info, &nenv) : NULL;
    if (path_info != stackbuf) free(path_info);
    if (!env) {
        if (c) srv_call_free(s, c);
        hs_respond_text(req, 500, "out of memory\n");
        return;
    }
    c->srv = s;
    c->req = req;
    c->body = req->body;
    c->body_len = req->body_len;
    c->rev = r;
    c->env = env;
    c->nenv = nenv;
    if (async) {
        /* Answer now; the call keeps a copy of the body and reports its
         * outcome to the invocation record instead of the client. */
        if (!req->body_len || (c->body_copy = malloc(req->body_len)))
            c->inv = srv_inv_new(s->invs, f->name, r->name);
        if (!c->inv) {
            srv_call_free(s, c);
            hs_respond_text(req, 500, "out of memory\n");
            return;
        }
        srv_call_trace_start(s, c, req);
        if (req->body_len) memcpy(c->body_copy, req->body, req->body_len);
        c->body = c->body_copy;
        c->req = NULL;
        r->async_pending++;
        r->async_bytes += req->body_len;
        s->async_pending++;
        s->async_bytes += req->body_len;
        if (s->m_async_pending) mx_gauge_set(s->m_async_pending, r->labels, r->async_pending);
        char loc[64], body[128];
        snprintf(loc, sizeof loc, "/v1/invocations/%s", srv_inv_id(c->inv));
        int n = snprintf(body, sizeof body, "{\"id\":\"%s\",\"location\":\"%s\"}\n",
                         srv_inv_id(c->inv), loc);
        hs_header_t h[3] = {{"Content-Type", "application/json"}, {"Location", loc},
                            {"Preference-Applied", "respond-async"}};
        hs_respond(req, 202, h, 3, body, (size_t)n);
    } else {
        srv_call_trace_start(s, c, req);
    }
    r->refs++;
    c->start_ns = eng_now_ns();
    c->deadline_ns = c->start_ns + (uint64_t)r->timeout_ms * 1000000ull;
    if (s->ncalls++ == 0) uv_timer_start(&s->sweep, srv_on_sweep, SRV_SWEEP_MS, SRV_SWEEP_MS);
    if (!c->req) {
        srv_call_admit(s, c);
        return;
    }
    hs_req_on_abort(req, srv_call_on_abort, c);
    if (c->aborted) {
        /* hs_req_on_abort ran the callback at once: the client is gone. */
        srv_call_finish(s, c, 499, NULL, 0, NULL, 0);
        return;
    }
    srv_call_admit(s, c);
}

void srv_on_request(hs_req_t *req, void *ud)
{
    srv_t *s = ud;
    char name[SRV_NAME_MAX];
    const char *rest;
    if (srv_route_host(hs_req_header(req, "Host"), s->domain, name, sizeof name) == 0) {
        srv_call_start(s, name, true, req->path, req);
    } else if (srv_route_path(req->path, name, sizeof name, &rest) == 0) {
        srv_call_start(s, name, false, rest, req);
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

void srv_set_events_ingress(srv_t *s, void (*fn)(void *ud, const char *broker, hs_req_t *req),
                            void *ud)
{
    s->events_fn = fn;
    s->events_ud = ud;
}

void srv_invoke(srv_t *s, const char *name, const char *path_info, hs_req_t *req)
{
    srv_call_start(s, name, false, path_info ? path_info : "", req);
}

char *srv_invocation_json(srv_t *s, const char *id) { return srv_inv_json(s->invs, id); }
