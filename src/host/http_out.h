/*
 * http_out.h — outbound HTTP for guests: the `wasi_experimental_http`
 * import module (deislabs' published interface, as WAGI and early Spin
 * implement it), the per-revision list of allowed destinations, and the
 * client thread that makes the requests. Prefix: ho_. docs/host-http.md is
 * the user's page.
 *
 * Three objects:
 *
 *   ho_client_t  one per daemon: a thread driving libcurl's multi interface,
 *                so any number of guests' requests run at once without a
 *                thread each and no worker ever waits on the network.
 *   ho_policy_t  one per revision, immutable once made: the destinations
 *                its guests may call (scheme, host, port), shared by its
 *                instances through a reference count.
 *   ho_ctx_t     one per instance: its open sessions (response handles),
 *                the host functions its imports are bound to, and how its
 *                guest waits (ho_wait_ops_t: the runtime parks the guest's
 *                fiber, so a guest waiting for a response holds no worker).
 *
 * A guest's `req` checks the URL against the policy (refused: error 7, no
 * connection made), copies the request out of guest memory, hands it to the
 * client thread and parks until the response is complete or the guest's
 * deadline passes (the guest then stops as at any deadline, and the
 * request is abandoned). Names are resolved by libcurl; every address it
 * is about to connect to is checked in its open-socket callback, so the
 * connection goes to the address that was checked: private, loopback,
 * link-local and other non-public addresses are refused unless the
 * allowed entry names that address literally.
 *
 * Threads: ho_ctx_t is used by the thread running its instance; the
 * client's thread owns every transfer; ho_policy_t is read-only.
 */
#ifndef WASMFN_HOST_HTTP_OUT_H
#define WASMFN_HOST_HTTP_OUT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/metrics.h"
#include "engine/engine.h"
#include "host/wait.h"
#include "trace/trace.h"

#define HO_MODULE_NAME "wasi_experimental_http"

/* The interface's error codes (its witx `http_error`, u32). */
enum {
    HO_OK = 0,
    HO_INVALID_HANDLE = 1,
    HO_MEMORY_NOT_FOUND = 2,
    HO_MEMORY_ACCESS_ERROR = 3,
    HO_BUFFER_TOO_SMALL = 4,
    HO_HEADER_NOT_FOUND = 5,
    HO_UTF8_ERROR = 6,
    HO_DESTINATION_NOT_ALLOWED = 7,
    HO_INVALID_METHOD = 8,
    HO_INVALID_ENCODING = 9,
    HO_INVALID_URL = 10,
    HO_REQUEST_ERROR = 11,
    HO_RUNTIME_ERROR = 12,
    HO_TOO_MANY_SESSIONS = 13,
};

/* Limits (docs/host-http.md says what a guest gets beyond each). */
#define HO_MAX_SESSIONS 8u                    /* open handles per instance */
#define HO_MAX_REQUEST_BODY_BYTES (8u << 20)  /* one request's body */
#define HO_MAX_RESPONSE_BYTES (16u << 20)     /* bodies held per instance */
#define HO_MAX_HEADERS 100u                   /* request headers, and response headers */
#define HO_MAX_HEADER_BYTES (64u << 10)       /* a response's headers together */
#define HO_MAX_URL_BYTES 8192u
#define HO_MAX_ALLOWED_HOSTS 64u              /* entries of one revision's list */
#define HO_CONNECT_TIMEOUT_MS 10000u
#define HO_DEFAULT_TIMEOUT_MS 60000u          /* a request when the guest has no deadline */

/* ---- allowed destinations ------------------------------------------------ */

typedef struct ho_policy ho_policy_t;

/* Checks one allowed-hosts entry ("https://api.example.com",
 * "http://127.0.0.1:9000", "http://[::1]:8080": scheme http or https, a
 * host, an optional port, nothing else but an optional trailing "/").
 * Returns 0, or -1 with what is wrong in err. */
int ho_allowed_host_check(const char *entry, char *err, size_t errlen);
/* A policy from n entries (each checked as above): a new reference, or
 * NULL with the entry at fault in err. n 0 makes a policy that allows
 * nothing. */
ho_policy_t *ho_policy_new(const char *const *entries, uint32_t n, char *err, size_t errlen);
void ho_policy_ref(ho_policy_t *p);
void ho_policy_unref(ho_policy_t *p); /* any thread; NULL is fine */

/* Decisions, exposed for tests. ho_policy_allows: whether url (scheme,
 * host, port) matches an entry; *explicit_ip tells whether that entry names
 * an IP address literally (then any address class is allowed). Returns
 * HO_OK, HO_INVALID_URL or HO_DESTINATION_NOT_ALLOWED.
 * ho_addr_is_public: whether a connection to this address (struct sockaddr
 * of family AF_INET or AF_INET6) may be made for a host given by name. */
int ho_policy_allows(const ho_policy_t *p, const char *url, bool *explicit_ip);
struct sockaddr;
bool ho_addr_is_public(const struct sockaddr *sa);

/* ---- the client thread ----------------------------------------------------- */

typedef struct ho_client ho_client_t;

/* Starts the client thread. mx (may be NULL) gets the family
 * wasmfn_outbound_requests_total{function,outcome}. Returns NULL with a
 * message on failure. */
ho_client_t *ho_client_new(mx_registry_t *mx, char *err, size_t errlen);
/* Abandons every transfer (their guests see HO_REQUEST_ERROR) and joins
 * the thread. Instances must be gone (their contexts freed) first. */
void ho_client_free(ho_client_t *c);
/* Removes function's series from the metric (it was deleted). */
void ho_client_forget(ho_client_t *c, const char *function);

/* ---- per instance ---------------------------------------------------------- */

/* How a guest waits for its response: ho_wait_ops_t (host/wait.h). */

typedef struct ho_ctx ho_ctx_t;

/* A context for one instance of function `function` (copied; the metric's
 * label). client NULL or policy NULL: every request is refused with
 * HO_DESTINATION_NOT_ALLOWED (instances made while a module is imaged).
 * ops NULL: the guest's thread blocks while it waits (wasmfn run). Takes a
 * reference to policy. NULL when out of memory. */
ho_ctx_t *ho_ctx_new(ho_client_t *client, ho_policy_t *policy, const char *function,
                     const ho_wait_ops_t *ops);
/* Closes every session and abandons a request in flight. Any thread, once
 * the instance no longer runs. */
void ho_ctx_free(ho_ctx_t *h);
/* The trace the guest's requests belong to, for the run about to start
 * (the invocation's SERVER span, ctx copied); NULL ctx clears it. While
 * set, each request the guest makes is a CLIENT span under ctx (recorded
 * by tracer when ctx is sampled) and carries that span as its W3C
 * `traceparent` header, unless the guest set one itself. Warm instances
 * are made before their call is known, hence per run. h may be NULL. */
void ho_ctx_set_trace(ho_ctx_t *h, tr_tracer_t *tracer, const tr_ctx_t *ctx);

/* Resolves one import of module wasi_experimental_http against h: makes
 * the host function in store s. Returns 0, or -1 with a message naming the
 * import (an unknown name, or a type other than the interface's). */
int ho_import_resolve(ho_ctx_t *h, eng_store_t *s, const eng_extern_desc_t *imp,
                      eng_extern_t *out, char *err, size_t errlen);

#endif
