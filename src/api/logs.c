/*
 * logs.c — GET /v1/functions/NAME/logs: the function's log ring as text.
 * `logs?follow=1` responses stay open: a uv timer per follower polls the
 * function's log ring and streams new lines as chunks. api_shutdown ends
 * them, since a server drains only responses that end.
 */
#define _GNU_SOURCE
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "api/internal.h"
#include "api/images.h"
#include "api/usage.h"
#include "api/manifest.h"
#include "common/jsonerr.h"
#include "common/logring.h"
#include "common/rfc3339.h"
#include "engine/engine.h"

/* ---- Logs ------------------------------------------------------------------- */

struct follower {
    uv_timer_t timer;
    api_t *api;
    hs_req_t *req;       /* NULL once the response has ended */
    char name[ST_NAME_MAX + 2];
    lr_ring_t *ring;     /* the ring read last (a re-created function has a new one) */
    uint64_t next_seq;
    bool json;           /* format=json: lr_ring_read_json's lines */
    follower_t *next, *prev;
};

static void follower_closed(uv_handle_t *h) { free(h->data); }

/* Ends the response and releases the follower. */
static void follower_end(follower_t *f)
{
    if (!f->req) return;
    hs_req_t *r = f->req;
    f->req = NULL;
    hs_req_on_abort(r, NULL, NULL);
    if (f->prev) f->prev->next = f->next;
    else f->api->followers = f->next;
    if (f->next) f->next->prev = f->prev;
    uv_timer_stop(&f->timer);
    uv_close((uv_handle_t *)&f->timer, follower_closed);
    hs_respond_end(r);
}

static void follower_abort(hs_req_t *r, void *ud)
{
    (void)r;
    follower_end(ud);
}

static void follower_tick(uv_timer_t *t)
{
    follower_t *f = t->data;
    lr_ring_t *ring = f->api->srv ? srv_function_logs(f->api->srv, f->name) : NULL;
    if (!ring) { /* deleted */
        follower_end(f);
        return;
    }
    if (ring != f->ring) {
        f->ring = ring;
        f->next_seq = 0;
    }
    size_t len = 0;
    char *text = f->json ? lr_ring_read_json(ring, f->name, f->next_seq, 0, &f->next_seq, &len)
                         : lr_ring_read(ring, f->next_seq, 0, &f->next_seq, &len);
    int rc = 0;
    if (text && len) rc = hs_respond_chunk(f->req, text, len);
    free(text);
    if (rc != 0) follower_end(f);
}

void api_handle_logs(api_t *a, hs_req_t *r, const char *name)
{
    st_function_t fn;
    if (!api_get_function(a, r, name, &fn)) return;
    st_function_free(&fn);
    char v[32];
    size_t tail = DEFAULT_TAIL;
    if (hs_query_param(r->query, "tail", v, sizeof v) == 1) {
        char *end;
        unsigned long long n = strtoull(v, &end, 10);
        if (!*v || *end || n > 1000000) {
            hs_respond_errorf(r, 400, "tail: '%s' is not a line count", v);
            return;
        }
        tail = (size_t)n;
    }
    bool follow = hs_query_param(r->query, "follow", v, sizeof v) == 1 &&
                  (strcmp(v, "1") == 0 || strcmp(v, "true") == 0 || *v == '\0');
    /* format=json: one JSON object per line (docs/api.md). */
    bool json = false;
    if (hs_query_param(r->query, "format", v, sizeof v) == 1) {
        if (strcmp(v, "json") == 0) {
            json = true;
        } else if (strcmp(v, "text") != 0) {
            hs_respond_errorf(r, 400, "format: '%s' is not text or json", v);
            return;
        }
    }
    lr_ring_t *ring = a->srv ? srv_function_logs(a->srv, name) : NULL;
    uint64_t next = 0;
    size_t len = 0;
    char *text = !ring ? NULL
                 : json ? lr_ring_read_json(ring, name, 0, tail, &next, &len)
                        : lr_ring_read(ring, 0, tail, &next, &len);
    hs_header_t h = {"Content-Type", json ? "application/x-ndjson" : "text/plain; charset=utf-8"};
    if (!follow) {
        hs_respond(r, 200, &h, 1, text ? text : "", text ? len : 0);
        free(text);
        return;
    }
    follower_t *f = calloc(1, sizeof *f);
    if (!f) {
        free(text);
        hs_respond_errorf(r, 500, "out of memory");
        return;
    }
    f->api = a;
    f->req = r;
    snprintf(f->name, sizeof f->name, "%s", name);
    f->ring = ring;
    f->next_seq = next;
    f->json = json;
    uv_timer_init(a->loop, &f->timer);
    f->timer.data = f;
    f->next = a->followers;
    if (f->next) f->next->prev = f;
    a->followers = f;
    hs_respond_start(r, 200, &h, 1);
    int rc = text && len ? hs_respond_chunk(r, text, len) : 0;
    free(text);
    if (rc != 0) {
        follower_end(f);
        return;
    }
    hs_req_on_abort(r, follower_abort, f);
    uv_timer_start(&f->timer, follower_tick, FOLLOW_POLL_MS, FOLLOW_POLL_MS);
}

void api_shutdown(api_t *a)
{
    atomic_store(&a->stopping, 1);
    while (a->followers) follower_end(a->followers);
}
