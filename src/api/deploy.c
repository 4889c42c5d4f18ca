/*
 * deploy.c — what the data plane serves: a function as stored handed to
 * it (its routed revisions, env values from Secrets resolved), and a
 * function's old unrouted revisions pruned after an apply. Used by the
 * Service apply (api.c), start-up (api_load_all) and the rollout of a
 * changed Secret or ConfigMap (secrets.c).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/internal.h"
#include "api/manifest.h"
#include "autoscale/autoscale.h"

int api_deploy(api_t *a, const char *name, const st_function_t *f, char *err, size_t errlen)
{
    if (!a->srv) return 0;
    if (!f) {
        srv_function_delete(a->srv, name);
        return 0;
    }
    uint32_t cap = f->nroutes ? f->nroutes : 1;
    api_target_t *t = calloc(cap, sizeof *t);
    srv_revision_t *revs = calloc(cap, sizeof *revs);
    srv_route_t *routes = calloc(cap, sizeof *routes);
    api_env_t *envs = calloc(cap, sizeof *envs); /* env with Secrets' values */
    int rc = -1;
    if (!t || !revs || !routes || !envs) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    int n = api_targets_resolve(f, t, err, errlen);
    if (n < 0) goto out;
    for (int i = 0; i < n; i++) {
        const st_spec_t *sp = &t[i].revision->spec;
        srv_revision_t *r = &revs[i];
        r->name = t[i].revision->name;
        r->digest = sp->image;
        r->env = (const char *const *)sp->env;
        r->nenv = sp->nenv;
        r->allowed_hosts = (const char *const *)sp->allowed_hosts;
        r->nallowed_hosts = sp->nallowed_hosts;
        if (sp->nenv_refs) {
            if (api_env_resolve(a, r->name, sp, &envs[i], err, errlen) != 0) goto out;
            r->env = (const char *const *)envs[i].v;
            r->nenv = envs[i].n;
        }
        r->memory_limit_bytes = sp->memory_limit_bytes;
        r->timeout_ms = sp->timeout_seconds * 1000u;
        r->kv_stores = (const char *const *)sp->kv_stores;
        r->nkv_stores = sp->nkv_stores;
        r->cpu_limit_millis = sp->cpu_limit_millis;
        r->cpu_request_millis = sp->cpu_request_millis;
        r->memory_request_bytes = sp->memory_request_bytes;
        as_config_default(&r->scaling);
        r->scaling.target = sp->target;
        r->scaling.stable_window_ns = (uint64_t)sp->window_seconds * 1000000000ull;
        r->scaling.min_scale = sp->min_scale;
        r->scaling.max_scale = sp->max_scale;
        r->scaling.initial_scale = sp->initial_scale;
        const char *bad = as_config_check(&r->scaling);
        if (bad) {
            snprintf(err, errlen, "revision %s: %s", r->name, bad);
            goto out;
        }
        routes[i].revision = r->name;
        routes[i].percent = t[i].percent;
    }
    rc = srv_function_put(a->srv, name, revs, (uint32_t)n, routes, (uint32_t)n, err, errlen);
out:
    for (uint32_t i = 0; envs && i < cap; i++) api_env_free(&envs[i]);
    free(envs);
    free(t);
    free(revs);
    free(routes);
    return rc;
}



/* After an apply that made a revision: deletes the function's unrouted
 * revisions beyond the bound (docs/api.md), in a transaction of its own
 * (best effort: a failure is logged and the next apply tries again), then
 * drops what only they used: their modules' artefacts on disk and their
 * compiled form in memory. */
void api_revisions_prune(api_t *a, const char *name)
{
    char err[512];
    char **images = NULL;
    size_t n = 0;
    if (st_begin(a->st, err, sizeof err) != ST_OK ||
        st_revisions_prune(a->st, name, a->keep_revisions, &images, &n, err, sizeof err) != ST_OK) {
        st_rollback(a->st);
        fprintf(stderr, "wasmfn: function %s: old revisions not pruned: %s\n", name, err);
        return;
    }
    if (st_commit(a->st, err, sizeof err) != ST_OK) {
        st_rollback(a->st);
        st_names_free(images, n);
        fprintf(stderr, "wasmfn: function %s: old revisions not pruned: %s\n", name, err);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        bool seen = false;
        for (size_t k = 0; k < i && !seen; k++) seen = strcmp(images[k], images[i]) == 0;
        if (seen || st_image_used(a->st, images[i], err, sizeof err) != 0) continue;
        st_artifacts_delete(a->st, images[i]);
        if (a->srv) srv_module_forget(a->srv, images[i]);
    }
    st_names_free(images, n);
}
