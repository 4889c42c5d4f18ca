/*
 * registry.c — the data plane's function registry: functions by name (a
 * table in fn.c), their revisions and routes (traffic split), and
 * srv_function_put/delete/status/logs as the admin API calls them.
 */
#define _GNU_SOURCE
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "serving/plane.h"

/* ---- functions and revisions -------------------------------------------- */

void srv_fn_retire_revs(srv_t *s, srv_fn_t *f)
{
    for (uint32_t i = 0; i < f->nrevs; i++) srv_rev_retire(s, f->revs[i]);
    f->nrevs = 0;
    f->nroutes = 0;
}

int srv_function_put(srv_t *s, const char *name, const srv_revision_t *revs, uint32_t nrevs,
                     const srv_route_t *routes, uint32_t nroutes, char *err, size_t errlen)
{
    if (!srv_name_valid(name)) {
        snprintf(err, errlen, "function name '%s': want lower-case letters, digits and '-', "
                 "starting with a letter, at most 63", name);
        return -1;
    }
    if (nroutes == 0) {
        snprintf(err, errlen, "function %s: no traffic routes", name);
        return -1;
    }
    uint32_t total = 0;
    for (uint32_t i = 0; i < nroutes; i++) {
        bool found = false;
        for (uint32_t k = 0; k < nrevs && !found; k++)
            found = strcmp(routes[i].revision, revs[k].name) == 0;
        if (!found) {
            snprintf(err, errlen, "function %s: route %u names unknown revision %s", name, i,
                     routes[i].revision);
            return -1;
        }
        if (routes[i].percent > 100) {
            snprintf(err, errlen, "function %s: route %u: percent %u is over 100", name, i,
                     routes[i].percent);
            return -1;
        }
        total += routes[i].percent;
    }
    if (total != 100) {
        snprintf(err, errlen, "function %s: traffic percents add up to %u, not 100", name, total);
        return -1;
    }
    for (uint32_t k = 0; k < nrevs; k++) {
        const char *e = as_config_check(&revs[k].scaling);
        if (e) {
            snprintf(err, errlen, "revision %s: %s", revs[k].name, e);
            return -1;
        }
        for (uint32_t i = 0; i < revs[k].nenv; i++) {
            if (!strchr(revs[k].env[i], '=')) {
                snprintf(err, errlen, "revision %s: env entry '%s' is not KEY=VALUE",
                         revs[k].name, revs[k].env[i]);
                return -1;
            }
        }
    }

    srv_fn_t *old = srv_fn_find(s, name);
    srv_fn_t *f = old;
    if (!f) {
        f = calloc(1, sizeof *f);
        if (!f || !(f->name = strdup(name)) || !(f->log = lr_ring_new(SRV_LOG_RING_BYTES))) {
            if (f) free(f->name);
            free(f);
            snprintf(err, errlen, "out of memory");
            return -1;
        }
        f->refs = 1;
    }
    /* Build the new revision set; on any error nothing changes. */
    srv_rev_t **nr = calloc(nrevs ? nrevs : 1, sizeof *nr);
    bool *reused = calloc(nrevs ? nrevs : 1, sizeof *reused);
    srv_rev_t **route_rev = calloc(nroutes, sizeof *route_rev);
    uint32_t *percent = calloc(nroutes, sizeof *percent);
    int32_t *current = calloc(nroutes, sizeof *current);
    if (!nr || !reused || !route_rev || !percent || !current) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    for (uint32_t k = 0; k < nrevs; k++) {
        for (uint32_t i = 0; old && i < old->nrevs && !nr[k]; i++) {
            if (srv_rev_matches(old->revs[i], &revs[k])) {
                nr[k] = old->revs[i];
                reused[k] = true;
            }
        }
        if (!nr[k] && !(nr[k] = srv_rev_new(s, f, &revs[k], err, errlen))) goto fail;
    }
    for (uint32_t i = 0; i < nroutes; i++) {
        for (uint32_t k = 0; k < nrevs; k++)
            if (strcmp(routes[i].revision, revs[k].name) == 0) route_rev[i] = nr[k];
        percent[i] = routes[i].percent;
    }
    /* Commit: retire what is gone, configure what stays, start the new. */
    if (old) {
        for (uint32_t i = 0; i < old->nrevs; i++) {
            bool kept = false;
            for (uint32_t k = 0; k < nrevs && !kept; k++) kept = nr[k] == old->revs[i];
            if (!kept) srv_rev_retire(s, old->revs[i]);
        }
    } else {
        srv_fn_link(s, f);
    }
    free(f->revs);
    free(f->route_rev);
    free(f->percent);
    free(f->current);
    f->revs = nr;
    f->nrevs = nrevs;
    f->route_rev = route_rev;
    f->percent = percent;
    f->current = current;
    f->nroutes = nroutes;
    uint64_t now = eng_now_ns();
    for (uint32_t k = 0; k < nrevs; k++) {
        srv_rev_t *r = nr[k];
        if (reused[k]) {
            r->scaling = revs[k].scaling;
            as_scaler_configure(r->scaler, &r->scaling);
            srv_rev_pump(s, r); /* max-scale may have grown */
        } else {
            r->all_next = s->revs;
            if (s->revs) s->revs->all_prev = r;
            s->revs = r;
            as_decision_t d = as_scaler_decide(r->scaler, now, 0);
            r->desired = s->draining ? 0 : d.desired;
        }
    }
    srv_ext_refresh(s, f);
    for (uint32_t k = 0; k < nrevs; k++)
        if (nr[k]->ext_replicas >= 0 && !s->draining) nr[k]->desired = (uint32_t)nr[k]->ext_replicas;
    srv_node_share(s);
    for (uint32_t k = 0; k < nrevs; k++) srv_rev_apply_desired(s, nr[k]);
    free(reused);
    uint32_t max_scale = 0;
    for (uint32_t k = 0; k < nrevs; k++) {
        uint32_t m = nr[k]->scaling.max_scale;
        if (m == 0) { /* one unbounded revision makes the function unbounded */
            max_scale = 0;
            break;
        }
        if (m > max_scale) max_scale = m;
    }
    pthread_mutex_lock(&s->fns_mu);
    f->max_scale = max_scale;
    pthread_mutex_unlock(&s->fns_mu);
    return 0;
fail:
    for (uint32_t k = 0; nr && k < nrevs; k++)
        if (nr[k] && !reused[k]) srv_rev_release(nr[k]);
    free(nr);
    free(reused);
    free(route_rev);
    free(percent);
    free(current);
    if (!old) srv_fn_release(f);
    return -1;
}

int srv_function_delete(srv_t *s, const char *name)
{
    srv_fn_t *f = srv_fn_find(s, name);
    if (!f) return -1;
    srv_fn_unlink(s, f);
    srv_fn_retire_revs(s, f);
    f->deleted = true;
    if (s->mx) {
        mx_family_t *fams[] = {s->m_requests, s->m_duration, s->m_cold, s->m_cold_duration,
                               s->m_instances, s->m_queue, s->m_loop_runs};
        for (size_t i = 0; i < sizeof fams / sizeof fams[0]; i++)
            if (fams[i]) mx_family_remove_first_label(fams[i], name);
    }
    ho_client_forget(s->outbound, name);
    srv_fn_release(f);
    return 0;
}

int srv_function_status(srv_t *s, const char *name, srv_status_t *out)
{
    srv_fn_t *f = srv_fn_find(s, name);
    if (!f) return -1;
    memset(out, 0, sizeof *out);
    for (uint32_t i = 0; i < f->nrevs; i++) {
        const srv_rev_t *r = f->revs[i];
        out->warm += r->nwarm;
        out->busy += r->busy;
        out->queued += r->queue.n;
        uint32_t want = srv_rev_warm_want(r);
        if (want > r->warm_allowed && !out->warning[0])
            snprintf(out->warning, sizeof out->warning,
                     "revision %s wants %u instances; the node's budget (%u live instances, "
                     "warm ones shared fairly between revisions) allows it %u warm",
                     r->name, r->desired, s->budget_instances, r->warm_allowed);
    }
    return 0;
}

lr_ring_t *srv_function_logs(srv_t *s, const char *name)
{
    srv_fn_t *f = srv_fn_find(s, name);
    return f ? f->log : NULL;
}

uint32_t srv_function_max_scale(srv_t *s, const char *name)
{
    pthread_mutex_lock(&s->fns_mu);
    srv_fn_t *f = srv_fn_find(s, name);
    uint32_t m = f ? f->max_scale : 0;
    pthread_mutex_unlock(&s->fns_mu);
    return m;
}
