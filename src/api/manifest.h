/*
 * manifest.h — Knative Service documents: validation into a revision spec
 * and traffic routes (manifest.c), and applying them to the store as new
 * immutable revisions (apply.c). Prefix: api_.
 *
 * Separate from api.h so the rules can be unit-tested without a server:
 * the apply step takes the data plane as a callback.
 */
#ifndef WASMFN_API_MANIFEST_H
#define WASMFN_API_MANIFEST_H

#include <stdbool.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "store/store.h"

/* Defaults for what a manifest leaves out (docs/api.md, REVISION). */
#define API_DEFAULT_MEMORY_BYTES (128ull << 20)
#define API_DEFAULT_TIMEOUT_SECONDS 30u
#define API_MAX_TIMEOUT_SECONDS 3600u
#define API_DEFAULT_MAX_SCALE 0u /* unbounded */
#define API_DEFAULT_INITIAL_SCALE 1u
#define API_DEFAULT_TARGET 1.0
#define API_DEFAULT_WINDOW_SECONDS 60u
#define API_MAX_CPU_MILLIS 1000000u /* resources.*.cpu: at most 1000 CPUs */

/* A validated serving.knative.dev/v1 Service. */
typedef struct api_service {
    char *name;
    st_spec_t spec;        /* defaults resolved */
    st_route_t *traffic;   /* as written; none = 100% to the latest revision */
    uint32_t ntraffic;
    char **warnings;       /* "FIELD: what was ignored" */
    uint32_t nwarnings;
} api_service_t;

/* Validates one manifest document (the YAML's shape, as JSON). An image
 * that is a registry reference (oci_ref_is_registry) is checked and left
 * in spec.image_ref with spec.image NULL: the caller resolves it to a
 * module (and fills spec.image and spec.image_digest) before applying.
 * Returns 0,
 * or -1 with "FIELD.PATH: what is wrong" in err (an unsupported kind names
 * `kind`). Unknown fields are ignored, each with a warning. Does not look
 * at the store: whether the image and named revisions exist is checked by
 * api_service_apply. */
int api_service_parse(const cJSON *doc, api_service_t *out, char *err, size_t errlen);
void api_service_free(api_service_t *s);

/* Parses a manifest sent as JSON, strictly: the body must be valid UTF-8
 * (RFC 8259 §8.1), hold no NUL character (raw, or written \u0000 in a
 * string: cJSON would silently cut the string there, so "a\u0000b" would
 * name function "a"), and hold nothing but whitespace after the document.
 * Returns the document (cJSON_Delete it), or NULL with one line in err
 * naming the fault and its byte offset. */
cJSON *api_json_parse(const void *body, size_t len, char *err, size_t errlen);

/* Parsers for the value syntaxes manifests use, exposed for tests.
 * Kubernetes quantities ("64Mi", "1Gi", "128M", "0.5Gi", "1e6", "1048576")
 * in bytes, rounded up; and Go-style durations ("60s", "2m", "1m30s",
 * "1h") in nanoseconds. Return 0, or -1 on bad syntax or overflow. */
int api_quantity_parse(const char *s, uint64_t *bytes);
int api_duration_parse(const char *s, uint64_t *ns);

/* Makes the data plane serve function name as f describes (f NULL: stop
 * serving it). Returns 0, or -1 with a message naming the revision. */
typedef int (*api_deploy_fn)(void *ud, const char *name, const st_function_t *f, char *err,
                             size_t errlen);

typedef struct api_apply_result {
    char revision[ST_REVISION_NAME_MAX + 1]; /* the latest revision afterwards */
    bool created;                            /* a new revision was made */
    int status;                              /* on failure: the HTTP status to answer */
} api_apply_result_t;

/* Applies svc in one transaction: a new revision NAME-NNNNN when the
 * template differs from the latest revision's (or there is none), then the
 * routes. The result is handed to deploy before the commit; if deploy
 * fails the transaction is rolled back, so a deploy is never half-applied.
 * The commit is durable when this returns 0 (if the commit itself fails,
 * deploy is called again with the previous state to undo it). */
int api_service_apply(st_store_t *st, const api_service_t *svc, int64_t now, api_deploy_fn deploy,
                      void *ud, api_apply_result_t *res, char *err, size_t errlen);

/* One traffic target of a function, resolved: latestRevision routes name
 * the latest revision, routes to the same revision are merged, 0% routes
 * dropped. */
typedef struct api_target {
    const st_revision_t *revision; /* points into the st_function_t */
    uint32_t percent;
} api_target_t;

/* Fills out (room for f->nroutes entries, or 1 if it has none) and returns
 * the count; a function without routes sends 100% to its latest revision.
 * Returns -1 if a route names a revision f does not have. */
int api_targets_resolve(const st_function_t *f, api_target_t *out, char *err, size_t errlen);

#endif
