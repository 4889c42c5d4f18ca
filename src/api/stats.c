/*
 * stats.c — the admin API's endpoints for the dashboard (docs/api.md,
 * "Dashboard data"): GET /v1/stats (the node's capacity and a summary per
 * function), GET /v1/functions/NAME/series (its last hour in 10-second
 * samples) and GET /v1/functions/NAME/invocations (its recent calls). The
 * numbers are kept by the data plane (serving/stats.c); this file parses
 * the query and answers. Every answer is bounded: at most 360 samples, 50
 * calls, one summary per function.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/internal.h"
#include "common/duration.h"

#define WINDOW_MAX_S 3600u

/* Reads the query parameter window (a duration, 1s..1h) into *out_s, or
 * def_s when absent. Answers 400 itself and returns false when bad. */
static bool window_param(hs_req_t *r, uint32_t def_s, uint32_t *out_s)
{
    char v[32], err[160];
    int rc = hs_query_param(r->query, "window", v, sizeof v);
    *out_s = def_s;
    if (rc == 0) return true;
    int64_t ns = 0;
    if (rc < 0 || cm_duration_parse(v, 0, &ns, err, sizeof err) != 0) {
        hs_respond_errorf(r, 400, "window: %s", rc < 0 ? "malformed or too long" : err);
        return false;
    }
    if (ns < 1000000000LL || ns > (int64_t)WINDOW_MAX_S * 1000000000LL) {
        hs_respond_errorf(r, 400, "window: '%s' is not between 1s and 1h (samples are kept for an hour)", v);
        return false;
    }
    *out_s = (uint32_t)(ns / 1000000000LL);
    return true;
}

static void respond_owned(hs_req_t *r, char *json)
{
    if (!json) {
        hs_respond_errorf(r, 500, "out of memory");
        return;
    }
    hs_respond_json(r, 200, json);
    free(json);
}

static bool get_only(hs_req_t *r)
{
    if (strcmp(r->method, "GET") == 0 || strcmp(r->method, "HEAD") == 0) return true;
    hs_respond_method_not_allowed(r, "GET, HEAD");
    return false;
}

void api_handle_stats(api_t *a, hs_req_t *r)
{
    uint32_t window;
    if (!get_only(r) || !window_param(r, 60, &window)) return;
    if (!a->srv) return hs_respond_errorf(r, 503, "the data plane is not running");
    respond_owned(r, srv_stats_json(a->srv, window));
}

void api_handle_series(api_t *a, hs_req_t *r, const char *name)
{
    uint32_t window;
    if (!get_only(r) || !window_param(r, WINDOW_MAX_S, &window)) return;
    st_function_t f;
    if (!api_get_function(a, r, name, &f)) return;
    st_function_free(&f);
    if (!a->srv) return hs_respond_errorf(r, 503, "the data plane is not running");
    respond_owned(r, srv_function_series_json(a->srv, name, window));
}

void api_handle_recent(api_t *a, hs_req_t *r, const char *name)
{
    if (!get_only(r)) return;
    char v[16];
    uint32_t limit = 50;
    int rc = hs_query_param(r->query, "limit", v, sizeof v);
    if (rc != 0) {
        char *end = NULL;
        unsigned long n = rc == 1 ? strtoul(v, &end, 10) : 0;
        if (rc < 0 || !*v || *end || n < 1 || n > 50) {
            hs_respond_errorf(r, 400, "limit: '%s' is not a count from 1 to 50",
                              rc < 0 ? "(malformed)" : v);
            return;
        }
        limit = (uint32_t)n;
    }
    st_function_t f;
    if (!api_get_function(a, r, name, &f)) return;
    st_function_free(&f);
    if (!a->srv) return hs_respond_errorf(r, 503, "the data plane is not running");
    respond_owned(r, srv_function_recent_json(a->srv, name, limit));
}
