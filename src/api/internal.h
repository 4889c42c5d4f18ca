/*
 * internal.h — the api_t object, shared by api.c (routing and endpoints)
 * and logs.c (log streams). Private to src/api/.
 */
#ifndef WASMFN_API_INTERNAL_H
#define WASMFN_API_INTERNAL_H

#include <stdatomic.h>

#include "http/http.h"
#include "store/store.h"

#include "api/api.h"

#define FOLLOW_POLL_MS 200
#define DEFAULT_TAIL 0 /* all the ring holds */

typedef struct follower follower_t;
typedef struct apply_job apply_job_t;

struct api {
    uv_loop_t *loop;
    st_store_t *st;
    srv_t *srv;
    mx_registry_t *mx;
    mtr_t *mtr;
    ev_t *ev;
    kd_t *keda;            /* ScaledObjects (scaledobjects.c), or NULL */
    char *data_url;
    bool ready;
    follower_t *followers; /* open logs?follow=1 streams */
    apply_job_t *applies;  /* Services whose module is being loaded */
    uint32_t keep_revisions;
    oci_options_t registry; /* for pulls: the daemon's options, cancel = &stopping */
    atomic_int stopping;    /* set by api_shutdown: pulls in flight give up */
};

/* Loads function name into f, answering 404/500 itself when it cannot. */
static inline bool api_get_function(api_t *a, hs_req_t *r, const char *name, st_function_t *f)
{
    char err[512];
    int rc = st_function_get(a->st, name, f, err, sizeof err);
    if (rc == ST_NOT_FOUND) {
        hs_respond_errorf(r, 404, "function %s not found", name);
        return false;
    }
    if (rc != ST_OK) {
        hs_respond_errorf(r, 500, "%s", err);
        return false;
    }
    return true;
}

/* logs.c */
void api_handle_logs(api_t *a, hs_req_t *r, const char *name);

#endif
