/*
 * images.c — a registry reference to a module in the blob store, on a
 * worker thread (api.c queues it, so the event loop keeps serving while a
 * registry is slow).
 *
 * The module is streamed: the OCI client verifies each blob's digest as it
 * arrives and hands the module's bytes to a sink that appends them to a
 * temporary blob file. Only when oci_pull returns OCI_OK (every digest
 * checked, which for a blob can only be known after its last byte) is the
 * file committed under the module's SHA-256, which the store computes once
 * more itself. Memory stays bounded whatever the image's size.
 *
 * The cache by digest: the Wasm layer of a Wasm OCI artifact is the module,
 * so its digest is the module's blob name; when the store has that blob the
 * layer is not downloaded at all (oci_options_t.have_module). Re-applying a
 * manifest whose tag did not move costs one manifest GET. A plain image's
 * module is only known once its tar layer is read, so the daemon remembers
 * which module each such manifest held (oci_options_t.have_image): the
 * last IMAGE_CACHE_SLOTS, in memory (a restart forgets them: the next pull
 * reads the layer again).
 */
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "api/images.h"

typedef struct pull_sink {
    st_store_t *st;
    st_blob_writer_t *w; /* opened at the first byte: a cached pull opens none */
    char err[512];
} pull_sink_t;

static int sink_write(void *ctx, const uint8_t *data, size_t len)
{
    pull_sink_t *p = ctx;
    if (!p->w && !(p->w = st_blob_writer_open(p->st, p->err, sizeof p->err))) return -1;
    return st_blob_writer_write(p->w, data, len, p->err, sizeof p->err) == ST_OK ? 0 : -1;
}

static bool have_module(void *ctx, const char *digest, uint64_t size)
{
    (void)size;
    return st_blob_exists(ctx, digest);
}

#define IMAGE_CACHE_SLOTS 64

typedef struct image_slot {
    char manifest[72];
    char module[72];
    char path[256];
    uint64_t bytes;
} image_slot_t;

/* Process-wide: pulls run on any pool thread. */
static pthread_mutex_t image_mu = PTHREAD_MUTEX_INITIALIZER;
static image_slot_t image_cache[IMAGE_CACHE_SLOTS];
static unsigned image_next;

static bool have_image(void *ctx, const char *manifest_digest, oci_pull_result_t *res)
{
    image_slot_t hit = {0};
    pthread_mutex_lock(&image_mu);
    for (unsigned i = 0; i < IMAGE_CACHE_SLOTS; i++)
        if (image_cache[i].manifest[0] && strcmp(image_cache[i].manifest, manifest_digest) == 0)
            hit = image_cache[i];
    pthread_mutex_unlock(&image_mu);
    if (!hit.manifest[0] || !st_blob_exists(ctx, hit.module)) return false;
    snprintf(res->module_digest, sizeof res->module_digest, "%s", hit.module);
    snprintf(res->module_path, sizeof res->module_path, "%s", hit.path);
    res->module_bytes = hit.bytes;
    return true;
}

static void image_remember(const oci_pull_result_t *res)
{
    pthread_mutex_lock(&image_mu);
    image_slot_t *e = &image_cache[image_next++ % IMAGE_CACHE_SLOTS];
    snprintf(e->manifest, sizeof e->manifest, "%s", res->manifest_digest);
    snprintf(e->module, sizeof e->module, "%s", res->module_digest);
    snprintf(e->path, sizeof e->path, "%s", res->module_path);
    e->bytes = res->module_bytes;
    pthread_mutex_unlock(&image_mu);
}

int api_image_status(oci_status_t s)
{
    switch (s) {
    case OCI_OK: return 200;
    case OCI_ERR_ARGS:
    case OCI_ERR_NOT_FOUND:
    case OCI_ERR_NO_WASM:
    case OCI_ERR_TOO_LARGE: return 400;
    case OCI_ERR_NETWORK:
    case OCI_ERR_AUTH:
    case OCI_ERR_DIGEST:
    case OCI_ERR_PROTOCOL: return 502;
    case OCI_ERR_TIMEOUT: return 504;
    case OCI_ERR_CANCELLED: return 503;
    case OCI_ERR_IO: return 500;
    }
    return 500;
}

int api_image_pull(st_store_t *st, const oci_options_t *opts, const char *image, api_image_t *out,
                   char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    oci_ref_t ref;
    if (oci_ref_parse(image, &ref, err, errlen) != 0) return 400;
    oci_options_t o = *opts;
    o.have_module = have_module;
    o.have_module_ctx = st;
    o.have_image = have_image;
    pull_sink_t sink = {.st = st};
    oci_pull_result_t res;
    oci_status_t s = oci_pull(&ref, &o, sink_write, &sink, &res, err, errlen);
    if (s == OCI_ERR_IO && sink.err[0]) {
        /* The sink failed: say why (the client only knows that it did). */
        snprintf(err, errlen, "%s: cannot store the module: %s", image, sink.err);
    }
    if (s != OCI_OK) {
        st_blob_writer_abort(sink.w);
        return api_image_status(s);
    }
    if (res.cached) {
        st_blob_writer_abort(sink.w); /* none: no byte came */
    } else {
        if (!sink.w && !(sink.w = st_blob_writer_open(st, sink.err, sizeof sink.err))) {
            snprintf(err, errlen, "%s: cannot store the module: %s", image, sink.err);
            return 500;
        }
        int c = st_blob_writer_commit(sink.w, res.module_digest, sink.err, sizeof sink.err);
        if (c != ST_OK) {
            snprintf(err, errlen, "%s: %s", image, sink.err);
            return c == ST_CORRUPT ? 502 : 500;
        }
        if (res.from_tar) image_remember(&res);
    }
    snprintf(out->module_digest, sizeof out->module_digest, "%s", res.module_digest);
    snprintf(out->manifest_digest, sizeof out->manifest_digest, "%s", res.manifest_digest);
    out->module_bytes = res.module_bytes;
    out->cached = res.cached;
    return 200;
}
