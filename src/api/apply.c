/*
 * apply.c — applies a validated Service to the store and the data plane as
 * one step that either happens completely or not at all.
 *
 * Order matters for crash safety and for "never half-applied":
 *   1. BEGIN IMMEDIATE; add a revision if the template changed; set routes.
 *   2. Hand the resulting function to the data plane (deploy). If its
 *      module cannot be loaded, ROLLBACK: the store never saw the change and
 *      the data plane (which changes nothing on error) still serves the old.
 *   3. COMMIT (durable: synchronous=FULL), then answer 2xx.
 * A SIGKILL before 3 loses an unacknowledged apply; after it, the restart
 * loads the committed state. Only a failing COMMIT needs undoing in the
 * data plane, which deploy is called again for, with the previous state.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/manifest.h"

int api_targets_resolve(const st_function_t *f, api_target_t *out, char *err, size_t errlen)
{
    if (f->nroutes == 0) {
        const st_revision_t *r = f->latest_revision ? st_function_revision(f, f->latest_revision)
                                                    : NULL;
        if (!r) {
            snprintf(err, errlen, "function %s has no revision", f->name);
            return -1;
        }
        out[0].revision = r;
        out[0].percent = 100;
        return 1;
    }
    int n = 0;
    for (uint32_t i = 0; i < f->nroutes; i++) {
        const st_route_t *rt = &f->routes[i];
        const char *name = rt->latest ? f->latest_revision : rt->revision;
        const st_revision_t *r = name ? st_function_revision(f, name) : NULL;
        if (!r) {
            snprintf(err, errlen, "function %s: traffic[%u] names revision %s, which it does not have",
                     f->name, i, name ? name : "(latest, but there is none)");
            return -1;
        }
        if (rt->percent == 0) continue;
        int j = 0;
        while (j < n && out[j].revision != r) j++;
        if (j < n) {
            out[j].percent += rt->percent;
        } else {
            out[n].revision = r;
            out[n].percent = rt->percent;
            n++;
        }
    }
    if (n == 0) {
        snprintf(err, errlen, "function %s: no route carries any traffic", f->name);
        return -1;
    }
    return n;
}

int api_service_apply(st_store_t *st, const api_service_t *svc, int64_t now, api_deploy_fn deploy,
                      void *ud, api_apply_result_t *res, char *err, size_t errlen)
{
    memset(res, 0, sizeof *res);
    res->status = 500;
    if (!st_blob_exists(st, svc->spec.image)) {
        res->status = 400;
        snprintf(err, errlen,
                 "spec.template.spec.containers[0].image: %s is not an uploaded module (POST it "
                 "to /v1/blobs first)",
                 svc->spec.image);
        return -1;
    }
    if (st_begin(st, err, errlen) != ST_OK) return -1;

    st_function_t old, cur;
    memset(&cur, 0, sizeof cur);
    bool had = false;
    int g = st_function_get(st, svc->name, &old, err, errlen);
    if (g == ST_ERR) goto rollback;
    had = g == ST_OK;

    const st_revision_t *latest =
        had && old.latest_revision ? st_function_revision(&old, old.latest_revision) : NULL;
    if (!latest || !st_spec_equal(&latest->spec, &svc->spec)) {
        if (st_revision_add(st, svc->name, &svc->spec, now, res->revision, err, errlen) != ST_OK)
            goto rollback;
        res->created = true;
    } else {
        snprintf(res->revision, sizeof res->revision, "%s", latest->name);
    }

    st_route_t def = {.revision = NULL, .latest = true, .percent = 100};
    const st_route_t *routes = svc->ntraffic ? svc->traffic : &def;
    uint32_t nroutes = svc->ntraffic ? svc->ntraffic : 1;
    if (st_routes_set(st, svc->name, routes, nroutes, err, errlen) != ST_OK) goto rollback;

    if (st_function_get(st, svc->name, &cur, err, errlen) != ST_OK) goto rollback;
    for (uint32_t i = 0; i < svc->ntraffic; i++) {
        const char *rn = svc->traffic[i].revision;
        if (rn && !st_function_revision(&cur, rn)) {
            res->status = 400;
            snprintf(err, errlen, "spec.traffic[%u].revisionName: %s has no revision %s", i,
                     svc->name, rn);
            goto rollback;
        }
    }

    if (deploy && deploy(ud, svc->name, &cur, err, errlen) != 0) {
        res->status = 400;
        goto rollback;
    }
    if (st_commit(st, err, errlen) != ST_OK) {
        st_rollback(st);
        res->status = 500;
        char ignored[256];
        if (deploy) deploy(ud, svc->name, had ? &old : NULL, ignored, sizeof ignored);
        goto fail;
    }
    if (had) st_function_free(&old);
    st_function_free(&cur);
    res->status = 200;
    return 0;

rollback:
    st_rollback(st);
fail:
    if (had) st_function_free(&old);
    st_function_free(&cur);
    res->created = false;
    return -1;
}
