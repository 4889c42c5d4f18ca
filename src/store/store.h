/*
 * store.h — wasmfn's persistent state in the data directory. Prefix: st_.
 *
 * Layout of DATA (created with mode 0700):
 *   wasmfn.db           SQLite in WAL mode: functions, revisions, routes
 *   blobs/sha256/HEX    modules, content-addressed (the file's SHA-256 is HEX)
 *   artifacts/HEX.compiled
 *                       the module blobs/sha256/HEX compiled by the engine
 *                       (a cache: see st_artifact_put)
 *   artifacts/HEX.native-TARGET
 *                       its native code for one build and CPU, sealed
 *   native.key          the key that seals native code (mode 0600, made by
 *                       runtime/native_key.c)
 *   admin.token         the admin API's bearer token (mode 0600), made at
 *                       the first start from getrandom(2)
 *
 * Durability is the point of this layer: an acknowledged deploy must survive
 * SIGKILL at any moment. Blobs are written to a temporary file, fsync'd,
 * renamed into place and the directory fsync'd, so a blob either exists
 * whole or not at all; reads verify the hash, so a damaged file is reported
 * rather than run. The database runs with synchronous=FULL, so a committed
 * transaction is on disk when st_commit returns.
 *
 * Threads: the database calls are made from one thread (the event loop).
 * st_blob_put/get/exists only touch files and may run on any thread.
 */
#ifndef WASMFN_STORE_H
#define WASMFN_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct st_store st_store_t;

/* "sha256:" + 64 lowercase hex digits. */
#define ST_DIGEST_LEN 71
/* Function names are DNS labels of at most this length, so that revision
 * names ("NAME-00001") stay within the 63 bytes of a label. */
#define ST_NAME_MAX 57
#define ST_REVISION_NAME_MAX 63

/* Return values of the calls below that can fail. */
enum {
    ST_OK = 0,
    ST_ERR = -1,       /* I/O or database error; message in err */
    ST_NOT_FOUND = -2, /* no such blob / function */
    ST_CORRUPT = -3,   /* a blob whose content does not match its name */
};

/* Opens (creating on first use) the data directory dir. Returns NULL with a
 * message naming the path at fault. */
st_store_t *st_open(const char *dir, char *err, size_t errlen);
void st_close(st_store_t *s);
const char *st_dir(const st_store_t *s);
/* The admin token (64 hex characters); lives as long as the store. */
const char *st_admin_token(const st_store_t *s);

/* ---- Blobs ---------------------------------------------------------------- */

/* 0 if digest is "sha256:" followed by 64 lowercase hex digits, else -1. */
int st_digest_check(const char *digest);
/* The digest of bytes, as "sha256:HEX" (out holds ST_DIGEST_LEN + 1). */
void st_digest_of(const uint8_t *bytes, size_t len, char *out);
/* Stores bytes under their digest (written to out, ST_DIGEST_LEN + 1
 * bytes). Durable when it returns ST_OK. Storing an existing blob is a
 * no-op that succeeds. */
int st_blob_put(st_store_t *s, const uint8_t *bytes, size_t len, char *digest_out, char *err,
                size_t errlen);
/* Reads the blob into a malloc'd buffer (caller frees *bytes) after checking
 * its hash: ST_OK, ST_NOT_FOUND, ST_CORRUPT or ST_ERR. */
int st_blob_get(st_store_t *s, const char *digest, uint8_t **bytes, size_t *len, char *err,
                size_t errlen);
bool st_blob_exists(st_store_t *s, const char *digest);

/* A blob written as it arrives (a module pulled from a registry), so it
 * never has to be held whole in memory. open makes a temporary file in the
 * blob directory; write appends to it and hashes it; commit checks that
 * the bytes hash to `digest`, fsyncs them and renames the file into place
 * (a blob already there is kept and the temporary file dropped), and
 * abort removes it. commit and abort free the writer. Any thread. */
typedef struct st_blob_writer st_blob_writer_t;
st_blob_writer_t *st_blob_writer_open(st_store_t *s, char *err, size_t errlen);
int st_blob_writer_write(st_blob_writer_t *w, const uint8_t *bytes, size_t len, char *err,
                         size_t errlen);
/* ST_OK, ST_CORRUPT (the bytes do not hash to digest: nothing is kept) or
 * ST_ERR. */
int st_blob_writer_commit(st_blob_writer_t *w, const char *digest, char *err, size_t errlen);
void st_blob_writer_abort(st_blob_writer_t *w);

/* ---- Compiled artefacts ---------------------------------------------------- */

/* Derived files kept next to a module: its compiled form, so that a module
 * is compiled once per data directory rather than once per start. They are
 * a cache: written atomically (temporary file + rename) but not fsync'd,
 * because whoever reads one verifies it (the engine's format carries its
 * own SHA-256) and rebuilds it from the module when it is missing, damaged
 * or stale. digest names the module ("sha256:HEX"); the file is
 * artifacts/HEX.compiled. Any thread. */
int st_artifact_put(st_store_t *s, const char *digest, const uint8_t *bytes, size_t len,
                    char *err, size_t errlen);
/* ST_OK with a malloc'd copy (caller frees *bytes), ST_NOT_FOUND or ST_ERR. */
int st_artifact_get(st_store_t *s, const char *digest, uint8_t **bytes, size_t *len, char *err,
                    size_t errlen);
/* The same for other kinds of derived file, artifacts/HEX.KIND (KIND of
 * lowercase letters, digits and '-'; "compiled" is the one above). Native
 * code is kind "native-TARGET" (TARGET names the build and CPU it is for,
 * engine.h); writing HEX.A-X deletes HEX.A-Y for any other Y, so code for
 * an earlier build does not pile up. The engine checks what it reads
 * (native code carries an HMAC, see engine.h). */
int st_artifact_get_kind(st_store_t *s, const char *digest, const char *kind, uint8_t **bytes,
                         size_t *len, char *err, size_t errlen);
int st_artifact_put_kind(st_store_t *s, const char *digest, const char *kind,
                         const uint8_t *bytes, size_t len, char *err, size_t errlen);
/* Deletes every artefact derived from module digest (artifacts/HEX.*):
 * its compiled form and native code, once no revision runs it. The blob
 * itself stays (an apply may name it again). Any thread. */
void st_artifacts_delete(st_store_t *s, const char *digest);

/* ---- Functions, revisions, routes ---------------------------------------- */

/* An env value taken from a Secret or a ConfigMap (valueFrom.secretKeyRef,
 * configMapKeyRef). The revision records the reference and the version of
 * the object it was made with, never the value (store/secrets.h). */
typedef struct st_env_ref {
    char *name;          /* the env variable */
    bool secret;         /* a Secret (else a ConfigMap) */
    char *object;        /* its name */
    char *key;           /* the key in its data */
    bool optional;       /* a missing object or key leaves the variable unset */
    int64_t version;     /* the object's version when the revision was made; 0 = none existed */
} st_env_ref_t;

/* What a revision runs with: its template, with every default resolved (so
 * two specs are the same template exactly when st_spec_equal says so). */
typedef struct st_spec {
    char *image;                 /* "sha256:HEX": the module */
    /* When the manifest named a registry image (docs/oci.md): the
     * reference as written ("registry.example.com/hello:1.0") and the
     * image manifest it resolved to ("sha256:HEX") when the revision was
     * made; both NULL for a module from a file or a sha256: blob. */
    char *image_ref;
    char *image_digest;
    char **env;                  /* "KEY=VALUE", in manifest order */
    uint32_t nenv;
    uint64_t memory_limit_bytes;
    uint32_t timeout_seconds;
    uint32_t min_scale, max_scale; /* max 0 = unbounded */
    uint32_t initial_scale;
    double target;               /* concurrent requests per instance */
    uint32_t window_seconds;     /* the autoscaler's stable window */
    /* Outbound HTTP destinations ("https://api.example.com", checked by
     * ho_allowed_host_check), in annotation order; none = no outbound. */
    char **allowed_hosts;
    uint32_t nallowed_hosts;
    /* Host APIs (store/spec_host.c keeps them): the wasmfn_kv stores the
     * revision may open, as the annotation wasmfn.dev/kv-stores names
     * them, and its env values from Secrets and ConfigMaps. */
    char **kv_stores;
    uint32_t nkv_stores;
    st_env_ref_t *env_refs;
    uint32_t nenv_refs;
    /* resources.limits.cpu and requests.cpu in thousandths of a CPU, and
     * requests.memory in bytes; 0 = not set. Kept in the table
     * revision_resources (a row only when one is set). */
    uint32_t cpu_limit_millis, cpu_request_millis;
    uint64_t memory_request_bytes;
} st_spec_t;

bool st_spec_equal(const st_spec_t *a, const st_spec_t *b);
/* Deep copy into dst (which the caller then owns); -1 when out of memory. */
int st_spec_copy(st_spec_t *dst, const st_spec_t *src);
void st_spec_free(st_spec_t *s);

typedef struct st_revision {
    char name[ST_REVISION_NAME_MAX + 1]; /* "hello-00002" */
    uint32_t seq;                        /* 2 */
    int64_t created;                     /* Unix seconds */
    st_spec_t spec;
} st_revision_t;

/* A traffic target. revision is NULL when latest is set: such a route
 * follows the function's newest revision. */
typedef struct st_route {
    char *revision;
    bool latest;
    uint32_t percent;
} st_route_t;

typedef struct st_function {
    char *name;
    int64_t created;             /* Unix seconds */
    char *latest_revision;       /* NULL when it has none */
    st_revision_t *revisions;    /* oldest first */
    uint32_t nrevisions;
    st_route_t *routes;          /* in manifest order */
    uint32_t nroutes;
} st_function_t;

/* The revision named name in f, or NULL. */
const st_revision_t *st_function_revision(const st_function_t *f, const char *name);
void st_function_free(st_function_t *f);

/* Transactions. Writes outside one are each their own transaction. begin
 * takes the write lock (BEGIN IMMEDIATE); commit returns only once the
 * transaction is durable. */
int st_begin(st_store_t *s, char *err, size_t errlen);
int st_commit(st_store_t *s, char *err, size_t errlen);
void st_rollback(st_store_t *s);

/* Fills *out (caller frees with st_function_free): ST_OK or ST_NOT_FOUND. */
int st_function_get(st_store_t *s, const char *name, st_function_t *out, char *err,
                    size_t errlen);
/* Every function's name, sorted; *names is a malloc'd array of malloc'd
 * strings (free with st_names_free). */
int st_function_names(st_store_t *s, char ***names, size_t *n, char *err, size_t errlen);
void st_names_free(char **names, size_t n);
/* Adds a revision to function name (creating the function, with no routes,
 * if it does not exist) and makes it the latest. Its name is NAME-NNNNN
 * with the next number for that function, written to rev_name
 * (ST_REVISION_NAME_MAX + 1 bytes). Numbers are never reused while the
 * function exists. */
int st_revision_add(st_store_t *s, const char *name, const st_spec_t *spec, int64_t now,
                    char *rev_name, char *err, size_t errlen);
/* Replaces the function's routes. */
int st_routes_set(st_store_t *s, const char *name, const st_route_t *routes, uint32_t n,
                  char *err, size_t errlen);
/* Deletes the function with its revisions and routes: ST_OK or ST_NOT_FOUND. */
int st_function_delete(st_store_t *s, const char *name, char *err, size_t errlen);
/* Deletes function name's oldest revisions that no route names, keeping
 * the newest `keep` of them; the latest revision and every revision a
 * route names (even at 0%) always stay. The deleted revisions' images
 * ("sha256:HEX", one per revision, repeats possible) go to *images, *n of
 * them (free with st_names_free). ST_OK or ST_ERR (nothing deleted). */
int st_revisions_prune(st_store_t *s, const char *name, uint32_t keep, char ***images, size_t *n,
                       char *err, size_t errlen);
/* 1 when a revision of any function runs module digest, 0 when none
 * does, -1 on error. */
int st_image_used(st_store_t *s, const char *digest, char *err, size_t errlen);

#endif
