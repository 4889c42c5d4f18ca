/*
 * fn.c — the table of functions by name (a hash table under srv->fns_mu)
 * and a function's lifetime (reference counted, loop thread only). It sits
 * below every other file of the data plane that holds a function:
 * revision.c releases its function here, external.c and stats.c look one
 * up, registry.c adds and removes them.
 */
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>

#include "serving/plane.h"
#include "serving/series.h"

static uint32_t name_hash(const char *s)
{
    uint32_t h = 2166136261u;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 16777619u;
    return h % SRV_FN_BUCKETS;
}

srv_fn_t *srv_fn_find(srv_t *s, const char *name)
{
    for (srv_fn_t *f = s->fns[name_hash(name)]; f; f = f->hnext)
        if (strcmp(f->name, name) == 0) return f;
    return NULL;
}

void srv_fn_link(srv_t *s, srv_fn_t *f)
{
    uint32_t b = name_hash(f->name);
    pthread_mutex_lock(&s->fns_mu);
    f->hnext = s->fns[b];
    s->fns[b] = f;
    pthread_mutex_unlock(&s->fns_mu);
}

void srv_fn_unlink(srv_t *s, srv_fn_t *f)
{
    pthread_mutex_lock(&s->fns_mu);
    srv_fn_t **pp = &s->fns[name_hash(f->name)];
    while (*pp && *pp != f) pp = &(*pp)->hnext;
    if (*pp) *pp = f->hnext;
    f->hnext = NULL;
    pthread_mutex_unlock(&s->fns_mu);
}

void srv_fn_release(srv_fn_t *f)
{
    if (!f || --f->refs > 0) return;
    if (f->log) lr_ring_free(f->log);
    srv_series_free(f->series);
    free(f->revs);
    free(f->route_rev);
    free(f->percent);
    free(f->current);
    free(f->name);
    free(f);
}
