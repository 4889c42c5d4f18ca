/*
 * errors.c — JSON error answers (http.h): every API that answers in JSON
 * (admin, usage, broker ingress) sends its errors through here, so they all
 * have the same shape and the same escaping.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/jsonerr.h"
#include "http/http.h"

#define MAX_EXTRA 4

void hs_respond_error(hs_req_t *r, int status, const hs_header_t *extra, size_t nextra,
                      const char *msg)
{
    hs_header_t h[1 + MAX_EXTRA] = {{"Content-Type", "application/json"}};
    if (nextra > MAX_EXTRA) nextra = MAX_EXTRA;
    for (size_t i = 0; i < nextra; i++) h[1 + i] = extra[i];
    char *s = cm_json_error(msg);
    const char *body = s ? s : CM_JSON_ERROR_OOM;
    hs_respond(r, status, h, 1 + nextra, body, strlen(body));
    free(s);
}

void hs_respond_errorf(hs_req_t *r, int status, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    hs_respond_error(r, status, NULL, 0, msg);
}

void hs_respond_method_not_allowed(hs_req_t *r, const char *allow)
{
    hs_header_t h[1] = {{"Allow", allow}};
    char msg[160];
    snprintf(msg, sizeof msg, "method %s not allowed on this path (allowed: %s)", r->method, allow);
    hs_respond_error(r, 405, h, 1, msg);
}
