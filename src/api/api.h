/*
 * api.h — the admin REST API (docs/api.md) as an HTTP handler. Prefix: api_.
 *
 * The API owns persistence: every change goes to the store (src/store) in
 * a transaction that commits, durably, before the answer, and is handed to
 * the data plane (srv_function_put) inside that transaction so a module the
 * data plane cannot load is refused without a trace. All calls happen on
 * the event loop thread.
 */
#ifndef WASMFN_API_H
#define WASMFN_API_H

#include <stdbool.h>
#include <uv.h>

#include "http/http.h"
#include "common/metrics.h"
#include "eventing/eventing.h"
#include "keda/keda.h"
#include "serving/serving.h"
#include "metering/metering.h"
#include "oci/oci.h"
#include "store/store.h"

typedef struct api api_t;

typedef struct api_config {
    uv_loop_t *loop;
    st_store_t *store;     /* borrowed; outlives the api */
    srv_t *srv;            /* borrowed */
    mx_registry_t *metrics; /* rendered by GET /metrics; borrowed */
    mtr_t *metering;       /* answers GET /v1/usage; borrowed, may be NULL */
    ev_t *eventing;        /* PingSource, RedisStreamSource, Broker, Trigger; may be NULL */
    kd_t *keda;            /* KEDA ScaledObjects; may be NULL (then 503) */
    const char *data_url;  /* "http://127.0.0.1:8080", for FUNCTION.url; copied */
    /* Revisions no route names kept per function (the newest); older ones
     * are deleted after each apply that makes a revision. 0 = default. */
    uint32_t keep_revisions;
    /* How images from registries are pulled (credentials, CAs, insecure
     * hosts, module size limit, timeout); NULL = the OCI client's
     * defaults. Copied, but the strings it points to are borrowed and must
     * outlive the api. */
    const oci_options_t *registry;
    struct kv *kv;         /* wasmfn_kv's stores for /v1/kv; borrowed, may be NULL */
    struct st_secrets *secrets; /* Secrets and ConfigMaps (store/secrets.h); borrowed, may be NULL */
} api_config_t;

#define API_KEEP_REVISIONS_DEFAULT 10u

/* Returns NULL when out of memory. */
api_t *api_new(const api_config_t *c);
void api_free(api_t *a);

/* The hs_handler_fn to give hs_server_new, with the api as its ud. */
void api_handle(hs_req_t *req, void *ud);
/* The hs_head_fn to give hs_server_on_head on the same server: a request
 * under /v1/ without the token gets its 401 before its body is read (an
 * unauthenticated client cannot make the daemon buffer a large body). */
bool api_head_check(hs_req_t *req, void *ud);

/* Hands every stored function to the data plane. Functions that fail to
 * load are reported on stderr, one line each, and skipped (the others
 * serve). Returns the number that failed, or -1 if the store failed. */
int api_load_all(api_t *a, char *err, size_t errlen);

/* What GET /readyz answers: 200 once set, 503 before and after. */
void api_set_ready(api_t *a, bool ready);
/* Eventing has been freed (after its drain): its endpoints answer 503. */
void api_set_eventing_gone(api_t *a);

/* Ends the open `logs?follow=1` streams, so the admin server can close. */
void api_shutdown(api_t *a);

/* A constant-time comparison of a presented bearer credential with the
 * token (exposed for tests): true if they are equal. */
bool api_token_equal(const char *presented, const char *token);

#endif
