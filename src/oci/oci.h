/*
 * oci.h — the OCI distribution client: pulls a WebAssembly module out of a
 * registry image and pushes one as a Wasm OCI artifact. Prefix: oci_.
 * docs/oci.md says which layouts, media types and auth flows it speaks.
 *
 * A pull resolves a reference (oci_ref_parse) to a manifest, through an
 * index when there is one (wasi/wasm, else linux/amd64), then finds the
 * module in one of two layouts:
 *   - the Wasm OCI artifact: a layer of type
 *     application/vnd.wasm.content.layer.v1+wasm is the module itself;
 *   - a plain OCI/Docker image: its layers are tars (gzip or not), one of
 *     which holds the .wasm file the image config's Entrypoint names.
 * Every blob is streamed: its SHA-256 is computed as it arrives and checked
 * against its descriptor, and the module's bytes go to a caller's sink as
 * they are found, so memory stays bounded whatever the image's size.
 *
 * Threads: there is no mutable global state (libcurl's global init runs
 * once, under pthread_once). Each call makes its own connection and token
 * cache, so any number of pulls may run at once on different threads. A
 * call is bounded by oci_options_t.timeout_ms and stops early when
 * *cancel becomes non-zero (checked while waiting on the network).
 */
#ifndef WASMFN_OCI_H
#define WASMFN_OCI_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- references ---- */

#define OCI_DOCKER_HUB "registry-1.docker.io"

/* A parsed image reference: REGISTRY/REPOSITORY[:TAG][@sha256:HEX]. */
typedef struct oci_ref {
    char registry[256];   /* "127.0.0.1:5000", "ghcr.io", OCI_DOCKER_HUB */
    char repository[256]; /* "library/hello", "user/app" */
    char tag[129];        /* "" when the reference names only a digest */
    char digest[72];      /* "sha256:<64 hex>" or "" */
} oci_ref_t;

/* Whether s is a registry reference rather than a local path or a
 * "sha256:" blob name. The rule (docs/oci.md): s is not a path (it does not
 * start with '/', './' or '../' and does not end in ".wasm"), and the part
 * before its first '/' contains a '.' or a ':' or is "localhost". So
 * "registry.example.com/hello:1.0" and "127.0.0.1:5000/fn" are references;
 * "hello.wasm", "dir/f.wasm" and "sha256:..." are not. Docker Hub's short
 * forms ("hello", "user/app") are accepted by oci_ref_parse, but never
 * guessed from a string that could be a file name. */
bool oci_ref_is_registry(const char *s);

/* Parses a reference. Docker Hub's short forms are expanded: "hello" ->
 * registry-1.docker.io/library/hello:latest, "docker.io/user/app" ->
 * registry-1.docker.io/user/app:latest. A reference without tag or digest
 * gets tag "latest". Returns 0, or -1 with a one-line reason in err. */
int oci_ref_parse(const char *s, oci_ref_t *ref, char *err, size_t errlen);

/* Writes "REGISTRY/REPO[:TAG][@DIGEST]" to out (truncated to n). */
void oci_ref_format(const oci_ref_t *ref, char *out, size_t n);

/* ---- options shared by every call ---- */

typedef struct oci_pull_result oci_pull_result_t;

typedef struct oci_options {
    /* Docker config.json to read credentials from; NULL = $DOCKER_CONFIG/
     * config.json, else ~/.docker/config.json (a missing file = none). */
    const char *config_path;
    /* PEM CA certificates trusted on top of the system's; NULL = none. */
    const char *ca_file;
    /* "HOST:PORT" (or "HOST") registries that may be reached over plain
     * HTTP. Loopback registries always may. */
    const char *const *insecure;
    size_t ninsecure;
    /* Credentials that override the config file (push, login); NULL = use
     * the config file's, or none. */
    const char *username, *password;
    /* The module may be at most this many bytes; 0 = OCI_DEFAULT_MAX_MODULE.
     * A tar layer that holds the module may be at most 4 times as large. */
    uint64_t max_module_bytes;
    /* The whole call's deadline in milliseconds; 0 = OCI_DEFAULT_TIMEOUT_MS. */
    uint64_t timeout_ms;
    /* When non-NULL and non-zero, the call stops with OCI_ERR_CANCELLED. */
    const atomic_int *cancel;
    /* A pull's cache (NULL = none): called, on the pulling thread, before
     * a Wasm layer is downloaded with the layer's digest, which is the
     * module's digest (the layer is the module). Returning true means the
     * caller has that module already: the layer is not transferred, the
     * sink gets no bytes, and the result says cached with module_digest =
     * that digest. Not asked for tar layers (their module's digest is only
     * known once extracted). */
    bool (*have_module)(void *ctx, const char *digest, uint64_t size);
    void *have_module_ctx;
    /* The cache for plain images (NULL = none): called with have_module's
     * ctx, on the pulling thread, once a manifest with no Wasm layer is in
     * hand and before any tar layer is read. Returning true means the
     * caller has the module this very manifest (its digest names its
     * layers) held before, and fills res's module_digest, module_bytes and
     * module_path: nothing more is transferred, the result says cached and
     * from_tar. The caller learns the pairs from earlier from_tar results. */
    bool (*have_image)(void *ctx, const char *manifest_digest, oci_pull_result_t *res);
} oci_options_t;

#define OCI_DEFAULT_MAX_MODULE (256ull << 20)
#define OCI_DEFAULT_TIMEOUT_MS 300000ull

/* What a call can fail with; the message says more. */
typedef enum oci_status {
    OCI_OK = 0,
    OCI_ERR_ARGS,       /* a bad reference, option or input file */
    OCI_ERR_NETWORK,    /* unknown host, refused connection, TLS failure */
    OCI_ERR_AUTH,       /* 401/403; the message names the realm */
    OCI_ERR_NOT_FOUND,  /* no such tag, digest or repository */
    OCI_ERR_NO_WASM,    /* the image holds no Wasm module we can find */
    OCI_ERR_TOO_LARGE,  /* a manifest, blob or the module is over its limit */
    OCI_ERR_DIGEST,     /* a blob or manifest does not hash to its digest */
    OCI_ERR_PROTOCOL,   /* the registry answered something we cannot use */
    OCI_ERR_IO,         /* the sink or a local file failed */
    OCI_ERR_TIMEOUT,    /* past options.timeout_ms */
    OCI_ERR_CANCELLED,  /* *options.cancel was set */
} oci_status_t;

/* ---- pull ---- */

/* Receives the module's bytes in order, as they are read. Returns 0 to go
 * on, non-zero to stop the pull with OCI_ERR_IO. The bytes are only
 * trustworthy once oci_pull returns OCI_OK: a digest mismatch can be found
 * after the last byte (write to a temporary file, commit on OCI_OK). */
typedef int (*oci_sink_fn)(void *ctx, const uint8_t *data, size_t len);

struct oci_pull_result {
    char manifest_digest[72]; /* the resolved image manifest (what a tag names now) */
    char index_digest[72];    /* the index it was picked from, or "" */
    char module_digest[72];   /* "sha256:HEX" of the module's bytes */
    uint64_t module_bytes;
    bool from_tar;            /* the module came out of a plain image's tar layer */
    bool cached;              /* have_module or have_image said yes: no layer was transferred */
    char module_path[256];    /* for from_tar: the file's path in the layer */
};

/* Pulls the module of ref, handing its bytes to sink. On OCI_OK fills res.
 * On failure writes one line to err naming what failed (the reference, the
 * blob, the registry's realm), and what the sink got must be discarded. */
oci_status_t oci_pull(const oci_ref_t *ref, const oci_options_t *opts, oci_sink_fn sink,
                      void *ctx, oci_pull_result_t *res, char *err, size_t errlen);

/* oci_pull into a file: written to PATH.part (mode 0644) and renamed to
 * path on success, removed on failure. */
oci_status_t oci_pull_file(const oci_ref_t *ref, const oci_options_t *opts, const char *path,
                           oci_pull_result_t *res, char *err, size_t errlen);

/* ---- push ---- */

typedef struct oci_push_result {
    char manifest_digest[72]; /* the pushed manifest: REF@this pins it */
    char module_digest[72];
} oci_push_result_t;

/* Uploads module (len bytes, a Wasm binary) as a Wasm OCI artifact: config
 * application/vnd.wasm.config.v0+json, one layer
 * application/vnd.wasm.content.layer.v1+wasm titled `title` (may be NULL),
 * and an OCI image manifest under ref's tag. Blobs the registry already has
 * are not sent again. The manifest holds no time stamp, so pushing the same
 * module twice gives the same manifest digest. */
oci_status_t oci_push(const oci_ref_t *ref, const oci_options_t *opts, const uint8_t *module,
                      size_t len, const char *title, oci_push_result_t *res, char *err,
                      size_t errlen);

/* ---- credentials ---- */

/* Checks user/password against the registry at host (HOST[:PORT]): its
 * /v2/ endpoint, through the basic or the bearer-token flow it asks for.
 * opts->username/password are ignored. Returns OCI_OK or a failure. */
oci_status_t oci_login_check(const char *host, const char *user, const char *password,
                             const oci_options_t *opts, char *err, size_t errlen);

/* Stores user:password for host in the Docker config file `path` (NULL =
 * the default oci_options_t.config_path describes), keeping everything else
 * in it; the file is written with mode 0600 (and its directory made 0700).
 * When the file names a credential helper for host (credHelpers, else
 * credsStore), the helper stores them instead and the file is left alone.
 * where gets the file's path or "credential helper docker-credential-NAME".
 * Returns 0, or -1 with a reason in err. */
int oci_creds_store(const char *path, const char *host, const char *user, const char *password,
                    char *where, size_t wherelen, char *err, size_t errlen);

/* The default config path (see config_path above) into out; -1 if neither
 * $DOCKER_CONFIG nor $HOME is set. */
int oci_creds_default_path(char *out, size_t n);

/* A short name of a status ("auth", "not-found", ...), for logs. */
const char *oci_status_name(oci_status_t s);

#endif
