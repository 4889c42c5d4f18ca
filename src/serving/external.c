/*
 * external.c — a function's instance count decided outside the data plane
 * (serving.h, srv_function_set_replicas): KEDA's ScaledObject (src/keda)
 * holds a Service at N replicas, and the revision's own autoscaler steps
 * aside until it is handed back. Also the usage KEDA's cpu and memory
 * triggers read (srv_function_usage).
 *
 * Replicas are kept by function name in a short list (s->ext), not on the
 * function, because a ScaledObject may name a Service before it is deployed
 * and outlives its redeploys; every revision caches its share in
 * ext_replicas, refreshed when the list or the function's routes change
 * (srv_ext_refresh). The tick (serving.c) and admission (call.c, through
 * srv_rev_max_busy in plane.h) read only that field.
 */
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>

#include "serving/plane.h"

typedef struct srv_ext {
    char *name;
    int32_t replicas;
    struct srv_ext *next;
} srv_ext_t;

static srv_ext_t *ext_find(srv_t *s, const char *name)
{
    for (srv_ext_t *e = s->ext; e; e = e->next)
        if (strcmp(e->name, name) == 0) return e;
    return NULL;
}

/* A revision's share of the function's replicas: by its traffic percent,
 * rounded up, so that 3 replicas over a 90/10 split are 3 and 1 (KEDA
 * scales one Deployment; here each routed revision is one). */
static int32_t rev_share(const srv_fn_t *f, const srv_rev_t *r, int32_t replicas)
{
    if (replicas <= 0) return replicas;
    uint32_t pct = 0;
    for (uint32_t i = 0; i < f->nroutes; i++)
        if (f->route_rev[i] == r) pct += f->percent[i];
    if (pct == 0) return 0;
    uint64_t n = ((uint64_t)replicas * pct + 99) / 100;
    return n ? (int32_t)n : 1;
}

void srv_ext_refresh(srv_t *s, srv_fn_t *f)
{
    const srv_ext_t *e = ext_find(s, f->name);
    uint32_t cpu = 0;
    uint64_t mem = 0;
    for (uint32_t i = 0; i < f->nrevs; i++) {
        srv_rev_t *r = f->revs[i];
        r->ext_replicas = e ? rev_share(f, r, e->replicas) : -1;
        uint32_t c = r->cpu_request_millis ? r->cpu_request_millis : r->cpu_limit_millis;
        uint64_t m = r->memory_request_bytes ? r->memory_request_bytes : r->memory_limit_bytes;
        if (c > cpu) cpu = c;
        if (m > mem) mem = m;
    }
    atomic_store(&f->cpu_request_millis, cpu);
    atomic_store(&f->memory_request_bytes, mem);
}

void srv_ext_account(srv_rev_t *r, uint64_t cpu_ns, uint64_t memory_bytes, uint64_t run_ns)
{
    srv_fn_t *f = r->fn;
    atomic_fetch_add(&f->cpu_ns, cpu_ns);
    atomic_fetch_add(&f->memory_kib_ms, (memory_bytes >> 10) * (run_ns / 1000000u));
}

int srv_function_set_replicas(srv_t *s, const char *name, int32_t replicas)
{
    srv_ext_t *e = ext_find(s, name);
    if (replicas < 0) {
        if (!e) return 0;
        for (srv_ext_t **pp = &s->ext; *pp; pp = &(*pp)->next) {
            if (*pp == e) {
                *pp = e->next;
                break;
            }
        }
        free(e->name);
        free(e);
    } else if (e) {
        if (e->replicas == replicas) return 0;
        e->replicas = replicas;
    } else {
        e = calloc(1, sizeof *e);
        if (!e || !(e->name = strdup(name))) {
            free(e);
            return -1;
        }
        e->replicas = replicas;
        e->next = s->ext;
        s->ext = e;
    }
    srv_fn_t *f = srv_fn_find(s, name);
    if (!f) return 0;
    srv_ext_refresh(s, f);
    /* Now rather than at the next tick; handed back, a revision keeps what
     * it has until its autoscaler's next decision. */
    if (replicas < 0) return 0;
    for (uint32_t i = 0; i < f->nrevs; i++) {
        srv_rev_t *r = f->revs[i];
        if (!s->draining) r->desired = (uint32_t)r->ext_replicas;
    }
    srv_node_share(s);
    for (uint32_t i = 0; i < f->nrevs; i++) {
        srv_rev_apply_desired(s, f->revs[i]);
        srv_rev_pump(s, f->revs[i]); /* the bound may have grown */
    }
    return 0;
}

int srv_function_usage(srv_t *s, const char *name, srv_usage_t *out)
{
    memset(out, 0, sizeof *out);
    pthread_mutex_lock(&s->fns_mu);
    srv_fn_t *f = srv_fn_find(s, name);
    if (f) {
        out->cpu_ns = atomic_load(&f->cpu_ns);
        out->memory_kib_ms = atomic_load(&f->memory_kib_ms);
        out->cpu_request_millis = atomic_load(&f->cpu_request_millis);
        out->memory_request_bytes = atomic_load(&f->memory_request_bytes);
    }
    pthread_mutex_unlock(&s->fns_mu);
    return f ? 0 : -1;
}

void srv_ext_free(srv_t *s)
{
    while (s->ext) {
        srv_ext_t *e = s->ext;
        s->ext = e->next;
        free(e->name);
        free(e);
    }
}
