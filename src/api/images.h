/*
 * images.h — resolving an `image:` that is a registry reference into a
 * module in the blob store (docs/oci.md, "In the daemon"). Prefix:
 * api_image_.
 *
 * Separate from api.c because it runs on a worker thread: it touches only
 * the blob files (st_blob_*, safe on any thread) and the OCI client, never
 * the database or the event loop.
 */
#ifndef WASMFN_API_IMAGES_H
#define WASMFN_API_IMAGES_H

#include <stdbool.h>
#include <stdint.h>

#include "oci/oci.h"
#include "store/store.h"

/* What a reference resolved to. */
typedef struct api_image {
    char module_digest[ST_DIGEST_LEN + 1]; /* the module, now in the blob store */
    char manifest_digest[72];              /* the image manifest the reference named */
    uint64_t module_bytes;
    bool cached;                           /* the module was stored already: no layer moved */
} api_image_t;

/* Pulls the module of registry reference `image` into st's blob store:
 * streamed into a temporary file that is committed under the module's
 * SHA-256 only once every digest checked, so a failed pull leaves
 * nothing. opts is the daemon's (credentials, CAs, insecure hosts, size
 * limit, timeout, cancel flag); a module the store holds already is not
 * transferred (opts' have_module is set here). Blocking: call it on a
 * worker thread. Returns the HTTP status to answer with: 200, or on
 * failure (with one line in err naming the reference and what failed)
 * what api_image_status says. */
int api_image_pull(st_store_t *st, const oci_options_t *opts, const char *image, api_image_t *out,
                   char *err, size_t errlen);

/* The HTTP status for a failed pull (docs/api.md, "Images from
 * registries"): 400 when the image is at fault (bad reference, unknown
 * tag or repository, no Wasm module, too large), 502 when the registry is
 * (unreachable, refused our credentials, served bytes that do not match
 * their digest, spoke nonsense), 504 on the timeout, 503 when the daemon
 * is stopping, 500 when our own disk failed. */
int api_image_status(oci_status_t s);

#endif
