/*
 * internal.h — what the files of src/oci/ share and nobody else sees: a
 * session with one registry (session.c: transport, TLS policy, the
 * basic and bearer-token auth flows), credentials (creds.c), and the blob
 * reader that verifies digests and unpacks tar layers (layer.c).
 */
#ifndef WASMFN_OCI_INTERNAL_H
#define WASMFN_OCI_INTERNAL_H

#include <stdio.h>

#include <openssl/evp.h>

#include "common/buf.h"

#include "oci/oci.h"

/* ---- growable buffer ---- */

/* The client's buffers are common/buf.h's cm_buf_t. */

/* ---- credentials (creds.c) ---- */

typedef struct oci_creds {
    bool found;
    char user[256];
    char password[1024];
    char source[1100]; /* "FILE" or "the command line": said in auth errors */
} oci_creds_t;

/* Looks up host's credentials in opts (explicit ones first), else the
 * config file. Returns 0 (c->found tells), or -1 with err when the file
 * exists but cannot be read or parsed. */
int oci_creds_lookup(const oci_options_t *opts, const char *host, oci_creds_t *c, char *err,
                     size_t errlen);

/* ---- credential helpers (credhelper.c) ---- */

/* Is name usable as docker-credential-NAME (letters, digits, - _ .)? */
bool oci_credhelper_name_ok(const char *name);

/* Asks docker-credential-NAME for server's credentials: 1 found (c filled,
 * c->source names the helper), 0 the helper has none, -1 with err when it
 * cannot be run, fails or answers nonsense. */
int oci_credhelper_get(const char *name, const char *server, oci_creds_t *c, char *err,
                       size_t errlen);

/* Stores user and password for server with docker-credential-NAME. */
int oci_credhelper_store(const char *name, const char *server, const char *user,
                         const char *password, char *err, size_t errlen);

/* Base64 ("user:pass" -> "dXNlcjpwYXNz"); out must hold 4*ceil(n/3)+1. */
void oci_base64(const void *in, size_t n, char *out);

/* ---- a session with one registry (session.c) ---- */

/* Receives a 2xx response's body. Returns 0 to go on, -1 to abort the
 * transfer (the callback records why in its own context). */
typedef int (*oci_body_fn)(void *ctx, const char *data, size_t n);

typedef struct oci_sess {
    const oci_options_t *opts;
    char host[256];
    char base[300];       /* "https://HOST" or "http://HOST" */
    char repo[256];
    const char *actions;  /* "pull" or "pull,push": the token scope asked for */
    oci_creds_t creds;
    char authz[4096];     /* "Authorization: ..." header line, or "" */
    char scope[512];      /* the scope the current bearer token holds */
    char realm[512];      /* of the last challenge, for messages */
    void *curl;           /* CURL *, reused (keep-alive) */
    uint64_t deadline_ms; /* CLOCK_MONOTONIC */
    int last_curl;        /* CURLcode of the last transfer */
    char *err;
    size_t errlen;
} oci_sess_t;

typedef struct oci_http_req {
    const char *method;         /* "GET", "HEAD", "POST", "PUT" */
    const char *url;            /* "/v2/..." (on base) or an absolute URL */
    const char *const *headers; /* extra "K: V" lines */
    size_t nheaders;
    const void *body;           /* request body or NULL */
    size_t body_len;
    oci_body_fn on_body;        /* NULL = keep a 2xx body in resp->body */
    void *ctx;
    size_t max_body;            /* for a kept body: more fails with OCI_ERR_TOO_LARGE */
} oci_http_req_t;

typedef struct oci_http_resp {
    long status;
    cm_buf_t body;             /* a kept 2xx body, or the first 64 KiB of an error's */
    char content_type[256];
    char location[2048];
    char docker_digest[80];     /* Docker-Content-Digest */
    char www_auth[2048];
    long long content_length;   /* -1 when not given */
    bool aborted;               /* on_body returned -1 */
} oci_http_resp_t;

/* Opens a session with host for repo (may be "" for /v2/ only), asking for
 * `actions` on it. Probes GET /v2/: HTTPS first, plain HTTP only for
 * loopback and insecure hosts whose TLS handshake fails; then
 * authenticates as the registry's challenge asks. Messages go to err. */
oci_status_t oci_sess_open(oci_sess_t *s, const oci_options_t *opts, const char *host,
                           const char *repo, const char *actions, char *err, size_t errlen);
void oci_sess_close(oci_sess_t *s);

/* Sends one request with the session's auth, renewing a bearer token once
 * when the registry asks for another scope. OCI_OK means an HTTP answer
 * came (look at resp->status; a 401/403 has already been turned into
 * OCI_ERR_AUTH with a message). Free resp with oci_http_resp_free. */
oci_status_t oci_sess_do(oci_sess_t *s, const oci_http_req_t *req, oci_http_resp_t *resp);
void oci_http_resp_free(oci_http_resp_t *r);

/* Writes "WHAT: HTTP STATUS: the registry's error message" to s->err and
 * returns the status a non-2xx answer maps to (404 -> OCI_ERR_NOT_FOUND). */
oci_status_t oci_sess_http_error(oci_sess_t *s, const char *what, const oci_http_resp_t *r);

/* Sets s->err and returns st. */
oci_status_t oci_sess_fail(oci_sess_t *s, oci_status_t st, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* ---- digests ---- */

/* "sha256:" + 64 hex of the context's state (finalises it). */
void oci_digest_final(EVP_MD_CTX *md, char out[72]);
void oci_digest_bytes(const void *p, size_t n, char out[72]);

/* ---- blobs (layer.c) ---- */

/* Where a blob's content goes once verified-as-it-streams. */
typedef enum oci_blob_kind {
    OCI_BLOB_RAW, /* the blob is the module: all bytes to the sink */
    OCI_BLOB_TAR, /* a tar (gzip or not): the entry `want_path` to the sink */
} oci_blob_kind_t;

typedef struct oci_blob_job {
    const char *digest;     /* expected "sha256:..." */
    uint64_t size;          /* from the descriptor */
    uint64_t max_size;      /* the blob may be at most this */
    oci_blob_kind_t kind;
    const char *want_path;  /* OCI_BLOB_TAR: the path inside, no leading '/' */
    uint64_t max_module;    /* the module may be at most this */
    oci_sink_fn sink;
    void *ctx;
    /* out */
    bool found;             /* OCI_BLOB_TAR: the entry was there */
    bool whiteout;          /* OCI_BLOB_TAR: the layer deletes it (".wh.NAME") */
    uint64_t module_bytes;
    char module_digest[72];
} oci_blob_job_t;

/* Downloads /v2/REPO/blobs/DIGEST through the session, verifying size and
 * digest while streaming, and feeds the job's sink. */
oci_status_t oci_blob_fetch(oci_sess_t *s, oci_blob_job_t *job);

/* Downloads a small blob (a config) into out, verified. */
oci_status_t oci_blob_get_small(oci_sess_t *s, const char *digest, uint64_t size,
                                size_t max, cm_buf_t *out);

#endif
