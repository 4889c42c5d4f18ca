/*
 * internal.h — pieces of the data plane that are pure functions, shared by
 * serving.c and the unit tests (tests/serving/): the WAGI mapping (CGI
 * environment, CGI response parsing) in wagi.c and
 * routing (Host and path routes, traffic splits) in route.c.
 */
#ifndef WASMFN_SERVING_INTERNAL_H
#define WASMFN_SERVING_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "http/http.h"

/* ---- WAGI (wagi.c) ------------------------------------------------------ */

/* Builds the CGI environment for a request, as DESIGN.md §3 and
 * docs/serving.md list it: REQUEST_METHOD, SCRIPT_NAME, PATH_INFO (given
 * already decoded), QUERY_STRING, CONTENT_TYPE, CONTENT_LENGTH,
 * SERVER_NAME, SERVER_PORT, SERVER_PROTOCOL, SERVER_SOFTWARE,
 * GATEWAY_INTERFACE, REMOTE_ADDR, REMOTE_PORT, REQUEST_URI and one HTTP_*
 * per request header name (repeated headers joined with ", ", Cookie with
 * "; "; Content-Type, Content-Length and Proxy are not copied: the first
 * two have their own variables, and HTTP_PROXY would be read by guests as
 * a proxy setting — "httpoxy").
 * Returns one malloc'd block (free it with free()) holding a NULL-terminated
 * array of "KEY=VALUE" strings, and the count in *n; NULL when out of
 * memory. */
char **srv_cgi_env_new(const hs_req_t *req, const char *script_name, const char *path_info,
                       uint32_t *n);

/* Entries srv_cgi_env_new leaves free after the last, for srv_cgi_env_put. */
#define SRV_CGI_ENV_SPARE 2
/* Sets one variable of an environment from srv_cgi_env_new: var is
 * "KEY=VALUE" (not copied: it must outlive env) and replaces the entry for
 * KEY, or is appended (at most SRV_CGI_ENV_SPARE times per environment);
 * var "KEY" without '=' removes KEY. Keeps env NULL-terminated and *n its
 * count. (The data plane sets HTTP_TRACEPARENT to the span of the call.) */
void srv_cgi_env_put(char **env, uint32_t *n, const char *var);

#define SRV_CGI_MAX_HEADERS 100
#define SRV_CGI_MAX_HEADER_BYTES (64u << 10)

typedef struct srv_cgi_response {
    int status;                     /* from Status:, else 302 with Location:, else 200 */
    hs_header_t headers[SRV_CGI_MAX_HEADERS]; /* without Status; point into the buffer */
    size_t nheaders;
    const uint8_t *body;
    size_t body_len;
} srv_cgi_response_t;

/* Parses a guest's stdout as a CGI response: header lines ("Name: value",
 * ending in LF or CRLF), a blank line, then the body. Writes NULs into buf
 * (the headers point into it). Returns 0, or -1 with a message naming the
 * fault (line number and what is wrong) when the output is not a CGI
 * response: no blank line, no header at all, a line without a colon, a
 * bad header name, a control character in a value, a bad Status. */
int srv_cgi_parse(uint8_t *buf, size_t len, srv_cgi_response_t *r, char *err, size_t errlen);

/* ---- routing (route.c) -------------------------------------------------- */

/* Host routing: if host (a Host header, maybe with ":PORT") is
 * "NAME.default.DOMAIN" (case-insensitive), copies NAME (lower-cased) into
 * name and returns 0; else -1. */
int srv_route_host(const char *host, const char *domain, char *name, size_t namelen);

/* Path routing: if path is "/fn/NAME" or "/fn/NAME/REST" (still
 * percent-encoded), copies NAME into name and sets *rest to "/REST" (or ""
 * when there is none) and returns 0; else -1. */
int srv_route_path(const char *path, char *name, size_t namelen, const char **rest);

/* Traffic splits by smooth weighted round-robin (as nginx balances
 * upstreams): every route gains its percent, the one with the most credit
 * wins and pays 100. Over any 100 consecutive picks each route is chosen
 * exactly `percent` times, interleaved as evenly as possible. current[] is
 * the state (n entries, start at 0); percents must add up to 100. */
uint32_t srv_split_pick(int32_t *current, const uint32_t *percent, uint32_t n);

/* A function name as Knative accepts it (a DNS-1035 label: lower-case
 * letters, digits and '-', starting with a letter, at most 63). */
bool srv_name_valid(const char *name);

/* ---- asynchronous invocations (invocations.c) --------------------------- */

#define SRV_INV_ID_LEN 32                          /* hex characters */
#define SRV_INV_BODY_MAX (1u << 20)                /* response bytes kept per record */
#define SRV_INV_MAX_RECORDS 100000u
#define SRV_INV_MAX_BYTES ((size_t)256 << 20)      /* headers and bodies of all records */
#define SRV_INV_RETENTION_NS (3600ull * 1000000000ull) /* completed records: 1 hour */

typedef struct srv_inv_store srv_inv_store_t;
typedef struct srv_inv srv_inv_t;

/* 0 for any argument means the default above. */
srv_inv_store_t *srv_inv_store_new(uint32_t max_records, size_t max_bytes, uint64_t retention_ns);
void srv_inv_store_free(srv_inv_store_t *st);
/* A pending record with a fresh random id; NULL when out of memory. */
srv_inv_t *srv_inv_new(srv_inv_store_t *st, const char *function, const char *revision);
const char *srv_inv_id(const srv_inv_t *v);
/* Records the outcome (copied; the body cut at SRV_INV_BODY_MAX).
 * run_ago_ns: how long ago the guest started running (0 = it never ran). */
void srv_inv_finish(srv_inv_store_t *st, srv_inv_t *v, int status, const hs_header_t *h, size_t nh,
                    const void *body, size_t len, uint64_t run_ago_ns);
/* The record as JSON (malloc'd), or NULL if there is no such id (never
 * was, or dropped). */
char *srv_inv_json(srv_inv_store_t *st, const char *id);

#endif
