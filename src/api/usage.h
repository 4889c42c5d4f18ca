/*
 * usage.h — GET /v1/usage on the admin API (docs/metering.md): usage and
 * cost per function from the metering subsystem. Prefix: api_.
 *
 * The admin router calls api_usage_handle for the path /v1/usage after it
 * has checked the bearer token. Runs on the event loop thread; the answer
 * is sent before it returns (one SQLite query, plus the in-memory rows).
 */
#ifndef WASMFN_API_USAGE_H
#define WASMFN_API_USAGE_H

#include <stddef.h>
#include <stdint.h>

#include "http/http.h"
#include "metering/metering.h"

/* GET /v1/usage?function=NAME&since=T&until=T&step=D. since and until are
 * RFC 3339 timestamps, "now", or durations meaning that long ago ("1h");
 * since defaults to the beginning of time, until to now. step is a
 * duration in whole minutes ("1m", "1h"); without it, one object per
 * function covers the whole window. 200 with the JSON array of
 * mtr_usage_json; 400 {"error": "..."} naming the bad parameter; 405 for
 * methods other than GET/HEAD; 503 when m is NULL (metering is off). */
void api_usage_handle(mtr_t *m, hs_req_t *req);

/* The same without HTTP (for tests and other front ends): query is the
 * raw query string ("since=1h&step=1m", percent-encoded), now_ns the
 * current time. Returns the HTTP status; *body is the malloc'd JSON body
 * (the array, or {"error": ...}), or NULL when out of memory. */
int api_usage_query(mtr_t *m, const char *query, int64_t now_ns, char **body);

#endif
