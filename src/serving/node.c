/*
 * node.c — the node's budget of live instances (srv_config_t.max_instances)
 * and its fair sharing between revisions: how many instances the whole
 * process may hold, how much of that warm (idle) instances may take, and
 * which revision gives one back when a cold start needs room.
 */
#define _GNU_SOURCE
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "serving/plane.h"
#include <sys/resource.h>

/* ---- the node's budget -------------------------------------------------- */

/* What one instance of r reserves: its memory's slot, the memory limit
 * rounded up to a power of two (engine/image.c's size classes). */
static uint64_t rev_instance_as(const srv_rev_t *r)
{
    uint64_t b = 64u << 10;
    while (b < r->memory_limit_bytes && b < (1ull << 40)) b <<= 1;
    return b;
}

void srv_node_add(srv_t *s, const srv_rev_t *r, uint32_t n)
{
    s->live += n;
    s->live_as_bytes += n * rev_instance_as(r);
}

void srv_node_sub(srv_t *s, const srv_rev_t *r, uint32_t n)
{
    s->live -= n;
    s->live_as_bytes -= n * rev_instance_as(r);
}

/* Whether one more instance of r fits within `limit` instances (and the
 * address space). */
bool srv_node_room(const srv_t *s, const srv_rev_t *r, uint32_t limit)
{
    return s->live < limit && s->live_as_bytes + rev_instance_as(r) <= s->budget_as_bytes;
}

uint32_t srv_node_warm_budget(const srv_t *s)
{
    uint64_t w = (uint64_t)s->budget_instances * SRV_WARM_SHARE_NUM / SRV_WARM_SHARE_DEN;
    return w ? (uint32_t)w : 1;
}

/* A cold start for r finds the node full: frees an idle warm instance of
 * the revision holding the most (a request comes before a spare). Returns
 * whether r's instance fits now. */
bool srv_node_reclaim(srv_t *s, srv_rev_t *r)
{
    srv_rev_t *most = NULL;
    for (srv_rev_t *o = s->revs; o; o = o->all_next)
        if (o->nwarm && (!most || o->nwarm > most->nwarm)) most = o;
    if (!most) return false;
    rt_instance_free(most->warm[--most->nwarm]);
    srv_node_sub(s, most, 1);
    srv_rev_gauges(s, most);
    return srv_node_room(s, r, s->budget_instances);
}

static int want_cmp(const void *a, const void *b)
{
    uint32_t x = srv_rev_warm_want(*(srv_rev_t *const *)a), y = srv_rev_warm_want(*(srv_rev_t *const *)b);
    return x < y ? -1 : x > y;
}

/* Shares the warm part of the node's budget among the revisions that want
 * warm instances, max-min fairly (water-filling): in order of what they
 * want, each gets the lesser of its want and an equal split of what is
 * left. A revision asking for 100,000 thus gets what the others leave, and
 * never starves them. Sets warm_allowed; call after desired changes. */
void srv_node_share(srv_t *s)
{
    uint32_t n = 0;
    for (srv_rev_t *r = s->revs; r; r = r->all_next) {
        r->warm_allowed = 0;
        if (!r->retired && srv_rev_warm_want(r)) n++;
    }
    if (!n) return;
    srv_rev_t **v = malloc(n * sizeof *v);
    if (!v) {
        /* Out of memory: an equal split, without the sort. */
        for (srv_rev_t *r = s->revs; r; r = r->all_next)
            if (!r->retired) r->warm_allowed = srv_node_warm_budget(s) / n;
        return;
    }
    uint32_t k = 0;
    for (srv_rev_t *r = s->revs; r; r = r->all_next)
        if (!r->retired && srv_rev_warm_want(r)) v[k++] = r;
    qsort(v, n, sizeof *v, want_cmp);
    uint64_t left = srv_node_warm_budget(s);
    for (uint32_t i = 0; i < n; i++) {
        uint64_t share = left / (n - i), want = srv_rev_warm_want(v[i]);
        v[i]->warm_allowed = (uint32_t)(want < share ? want : share);
        left -= v[i]->warm_allowed;
    }
    free(v);
}

/* ---- the node's budget, at start ------------------------------------------ */

/* The budget srv_new starts with (srv_config_t.max_instances), logged once
 * so that an operator sees what the node admits and why. */
void srv_node_budget_init(srv_t *s, uint32_t max_instances)
{
    uint64_t maps = 65530; /* the kernel's default */
    FILE *f = fopen("/proc/sys/vm/max_map_count", "r");
    if (f) {
        unsigned long long v;
        if (fscanf(f, "%llu", &v) == 1 && v > 0) maps = v;
        fclose(f);
    }
    uint64_t usable = maps > 2 * SRV_MAPS_RESERVED ? maps - SRV_MAPS_RESERVED : maps / 2;
    uint64_t by_maps = usable / SRV_MAPS_PER_INSTANCE;
    /* Address space: RLIMIT_AS when set, else x86-64's 128 TiB of user
     * space; a quarter is left to the heap, stacks and native code. */
    struct rlimit rl;
    uint64_t as = 1ull << 47;
    bool as_limited = getrlimit(RLIMIT_AS, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY;
    if (as_limited) as = (uint64_t)rl.rlim_cur;
    s->budget_as_bytes = as / 4 * 3;
    uint64_t n = max_instances ? max_instances : by_maps;
    if (n > by_maps) n = by_maps;
    if (n > UINT32_MAX) n = UINT32_MAX;
    s->budget_instances = n ? (uint32_t)n : 1;
    fprintf(stderr,
            "wasmfn: node budget: %u live instances (%s; vm.max_map_count %llu allows %llu at "
            "%u mappings each), %llu GiB of address space for their memories (%s)\n",
            s->budget_instances, max_instances ? "--max-instances" : "from the mappings",
            (unsigned long long)maps, (unsigned long long)by_maps, SRV_MAPS_PER_INSTANCE,
            (unsigned long long)(s->budget_as_bytes >> 30),
            as_limited ? "3/4 of RLIMIT_AS" : "3/4 of the user address space");
}
