/*
 * cache.c — the module cache's callbacks (srv_new hands them to rt_cache):
 * a module's .wasm and its serialised and native artefacts read and written
 * through srv_config_t's store functions, and a background native compile
 * ending, which lets the revisions of that module drop their interpreted
 * warm instances. Also srv_module_tier, the cache's answer for the admin
 * API.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <string.h>

#include "serving/plane.h"

/* The module cache's callbacks, onto the srv_config's. */
int srv_cache_load_blob(void *ud, const char *digest, uint8_t **bytes, size_t *len, char *err,
                           size_t errlen)
{
    srv_t *s = ud;
    return s->load_blob(s->load_blob_ud, digest, bytes, len, err, errlen);
}

int srv_cache_artifact_get(void *ud, const char *digest, uint8_t **bytes, size_t *len,
                              char *err, size_t errlen)
{
    srv_t *s = ud;
    return s->artifact_get(s->artifact_ud, digest, bytes, len, err, errlen);
}

int srv_cache_artifact_put(void *ud, const char *digest, const uint8_t *bytes, size_t len,
                              char *err, size_t errlen)
{
    srv_t *s = ud;
    return s->artifact_put(s->artifact_ud, digest, bytes, len, err, errlen);
}

int srv_cache_native_get(void *ud, const char *digest, uint8_t **bytes, size_t *len, char *err,
                            size_t errlen)
{
    srv_t *s = ud;
    return s->native_get(s->artifact_ud, digest, bytes, len, err, errlen);
}

int srv_cache_native_put(void *ud, const char *digest, const uint8_t *bytes, size_t len,
                            char *err, size_t errlen)
{
    srv_t *s = ud;
    return s->native_put(s->artifact_ud, digest, bytes, len, err, errlen);
}

/* A background native compile ended (loop thread). */
void srv_cache_native_done(void *ud, const char *digest, bool ok, uint64_t ns, const char *err)
{
    srv_t *s = ud;
    if (s->m_compile_seconds) mx_histogram_observe(s->m_compile_seconds, NULL, (double)ns / 1e9);
    if (s->m_compiles) {
        const char *lv[] = {ok ? "ok" : "failed"};
        mx_counter_add(s->m_compiles, lv, 1);
    }
    if (ok) {
        fprintf(stderr, "wasmfn: %s: native code ready (compiled in %.1f s)\n", digest,
                (double)ns / 1e9);
        /* Idle instances made before are interpreted: let them go, so the
         * next requests get native ones (made from the image in a
         * microsecond; the autoscaler warms new ones at its next tick). */
        for (srv_rev_t *r = s->revs; r; r = r->all_next) {
            if (r->mod && strcmp(r->digest, digest) == 0) {
                srv_rev_free_warm(r);
                srv_rev_tier_gauge(s, r);
                srv_rev_gauges(s, r);
            }
        }
    }
    else
        fprintf(stderr, "wasmfn: %s: native code failed, staying in the interpreter: %s\n",
                digest, err ? err : "?");
}

const char *srv_module_tier(srv_t *s, const char *digest, const char **detail)
{
    return rt_cache_tier(s->cache, digest, detail);
}
