/*
 * usage.c — GET /v1/usage: parses the query string (function, since,
 * until, step), asks the metering subsystem for the report and answers
 * with it. Kept apart from api.c so the admin router only needs one call.
 */
#define _GNU_SOURCE
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/usage.h"
#include "common/jsonerr.h"

static char *error_body(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *error_body(const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return cm_json_error(msg); /* which keeps echoed query values valid JSON */
}

int api_usage_query(mtr_t *m, const char *query, int64_t now_ns, char **body)
{
    *body = NULL;
    if (!m) {
        *body = error_body("usage metering is not enabled on this daemon");
        return 503;
    }
    if (!query) query = "";
    char function[256], since_s[128], until_s[128], step_s[64], err[256];
    int64_t since = INT64_MIN + 1, until = now_ns, step = 0;
    bool have_function = false;

    int rc = hs_query_param(query, "function", function, sizeof function);
    if (rc < 0) {
        *body = error_body("query parameter function: bad percent-encoding or longer than %zu bytes",
                           sizeof function - 1);
        return 400;
    }
    have_function = rc == 1 && function[0];

    rc = hs_query_param(query, "since", since_s, sizeof since_s);
    if (rc == 0) snprintf(since_s, sizeof since_s, "the beginning");
    if (rc < 0 || (rc == 1 && mtr_parse_time(since_s, now_ns, &since, err, sizeof err) != 0)) {
        *body = error_body("query parameter since: %s", rc < 0 ? "malformed" : err);
        return 400;
    }
    rc = hs_query_param(query, "until", until_s, sizeof until_s);
    if (rc == 0) snprintf(until_s, sizeof until_s, "now");
    if (rc < 0 || (rc == 1 && mtr_parse_time(until_s, now_ns, &until, err, sizeof err) != 0)) {
        *body = error_body("query parameter until: %s", rc < 0 ? "malformed" : err);
        return 400;
    }
    rc = hs_query_param(query, "step", step_s, sizeof step_s);
    if (rc < 0 || (rc == 1 && mtr_parse_duration(step_s, &step, err, sizeof err) != 0)) {
        *body = error_body("query parameter step: %s", rc < 0 ? "malformed" : err);
        return 400;
    }
    if (rc == 1 && (step <= 0 || step % 60000000000LL != 0)) {
        *body = error_body("query parameter step: '%s' is not a whole number of minutes "
                           "(usage is kept per minute; try 1m, 1h, 1d)", step_s);
        return 400;
    }
    if (since > until) {
        *body = error_body("query parameters since/until: since (%s) is after until (%s)",
                           since_s, until_s);
        return 400;
    }
    char *json = mtr_usage_json(m, have_function ? function : NULL, since, until, step, err,
                                sizeof err);
    if (!json) {
        *body = error_body("%s", err);
        return 500;
    }
    *body = json;
    return 200;
}

void api_usage_handle(mtr_t *m, hs_req_t *req)
{
    if (strcmp(req->method, "GET") != 0 && strcmp(req->method, "HEAD") != 0) {
        hs_respond_method_not_allowed(req, "GET, HEAD");
        return;
    }
    char *body = NULL;
    int status = api_usage_query(m, req->query, mtr_now_ns(), &body);
    hs_respond_json(req, status, body ? body : CM_JSON_ERROR_OOM);
    free(body);
}
