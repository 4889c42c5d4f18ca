/*
 * http_internal.h — what the files of outbound HTTP share (http_out.h is
 * the public side): a transfer, which the guest's side (http_out.c) makes
 * and the client thread (http_client.c) runs, and the policy's layout
 * (http_allow.c).
 *
 * A transfer has two owners while it is in flight, the guest's context
 * and the client thread, counted in `refs` (under the client's mu); the
 * last to let go frees it. The guest's side fills the request, submits
 * it, and reads the response only once `done` is set (under mu); the
 * client thread writes the response fields before setting `done` and
 * never touches them after. A guest that stops waiting (its deadline)
 * cancels: the client thread then drops the transfer without finishing
 * it, and never wakes a waker the guest has let go of (`waker` is cleared
 * under mu).
 */
#ifndef WASMFN_HOST_HTTP_INTERNAL_H
#define WASMFN_HOST_HTTP_INTERNAL_H

#include <curl/curl.h>
#include <pthread.h>

#include "host/http_out.h"

typedef struct ho_header {
    char *name;  /* lower case */
    char *value;
} ho_header_t;

typedef struct ho_xfer {
    struct ho_xfer *next;        /* the client's submit or cancel queue */
    struct ho_xfer *prev_active, *next_active; /* the client's running list */
    /* The request: written by the guest's side before submit. */
    CURL *easy;
    CURLU *url;
    struct curl_slist *hdrs;
    char method[33];
    uint8_t *body;
    size_t body_len;
    bool explicit_ip;            /* the allowed entry names the address */
    size_t max_body;             /* response bytes it may hold */
    long timeout_ms;
    /* Guarded by the client's mu. */
    int refs;
    bool done, cancelled;
    void *waker;                 /* woken when done; NULL once the guest let go */
    const ho_wait_ops_t *ops;
    /* The response: written by the client thread until done. */
    CURLcode rc;
    long status;
    bool refused;                /* an address was refused (open-socket check) */
    bool too_large;              /* body or headers beyond their limits */
    ho_header_t *headers;
    uint32_t nheaders, headers_cap;
    size_t header_bytes;
    uint8_t *resp;
    size_t resp_len, resp_cap;
    char errbuf[CURL_ERROR_SIZE];
    /* Once it is a session (the guest's alone). */
    uint32_t handle;
    size_t read_pos;
} ho_xfer_t;

/* http_client.c */
/* Prepares x->easy with every option but the request's own (URL, method,
 * headers, body, which the caller sets). -1 when out of memory. */
int ho_xfer_prepare(ho_xfer_t *x);
/* Hands x to the client thread (two references from now on: the caller's
 * and the thread's). -1 when the client is stopping (nothing taken). */
int ho_client_submit(ho_client_t *c, ho_xfer_t *x, void *waker, const ho_wait_ops_t *ops);
/* The guest's side is done with x: detaches its waker, cancels it if it
 * is still running, drops the caller's reference. */
void ho_client_release(ho_client_t *c, ho_xfer_t *x);
/* Whether x is done (under the client's mu). */
bool ho_client_done(ho_client_t *c, ho_xfer_t *x);
void ho_xfer_free(ho_xfer_t *x);
mx_family_t *ho_client_metric(ho_client_t *c);

/* http_allow.c */
/* ho_policy_allows for a URL already parsed. */
int ho_policy_check(const ho_policy_t *p, CURLU *u, bool *explicit_ip);

#endif
