/*
 * revision.c — one revision's life: its module (dropped at zero, loaded
 * back on a worker when a call arrives), its warm pool (kept at the
 * autoscaler's `desired`), and its retirement when a deploy replaces it.
 * It is below call.c: the calls queued on a revision are dispatched or
 * failed from here through srv_t's call_dispatch and call_finish_text.
 */
#define _GNU_SOURCE
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "host/kv.h"
#include "serving/plane.h"

/* wasmfn's own log lines about a revision (not about one invocation). */
static const lr_tags_t wasmfn_line = {NULL, NULL, LR_WASMFN};

/* Copies a string vector into one block (a revision's env, allowed hosts
 * and key-value stores). */
static char **strv_dup(const char *const *v, uint32_t n)
{
    size_t bytes = (n + 1) * sizeof(char *);
    for (uint32_t i = 0; i < n; i++) bytes += strlen(v[i]) + 1;
    char **out = malloc(bytes);
    if (!out) return NULL;
    char *p = (char *)(out + n + 1);
    for (uint32_t i = 0; i < n; i++) {
        size_t l = strlen(v[i]) + 1;
        memcpy(p, v[i], l);
        out[i] = p;
        p += l;
    }
    out[n] = NULL;
    return out;
}

void srv_rev_free_warm(srv_rev_t *r)
{
    for (uint32_t i = 0; i < r->nwarm; i++) rt_instance_free(r->warm[i]);
    srv_node_sub(r->srv, r, r->nwarm);
    r->nwarm = 0;
}

void srv_rev_release(srv_rev_t *r)
{
    if (!r || --r->refs > 0) return;
    srv_t *s = r->srv;
    if (r->all_prev) r->all_prev->all_next = r->all_next;
    else if (s->revs == r) s->revs = r->all_next;
    if (r->all_next) r->all_next->all_prev = r->all_prev;
    srv_rev_free_warm(r);
    free(r->warm);
    if (r->scaler) as_scaler_free(r->scaler);
    rt_module_release(r->mod);
    if (!s->freeing) srv_cache_gauges(s);
    free(r->env);
    free(r->allowed_hosts);
    ho_policy_unref(r->http_policy);
    kv_grant_free(r->kv);
    free(r->kv_stores);
    free(r->digest);
    free(r->name);
    srv_fn_t *f = r->fn;
    free(r);
    srv_fn_release(f);
}

/* Takes a revision out of service: no new calls, no warm instances. It
 * stays on srv->revs (the sweep still times out its queued calls) until
 * its last call ends. */
void srv_rev_retire(srv_t *s, srv_rev_t *r)
{
    if (r->retired) return;
    r->retired = true;
    srv_rev_free_warm(r);
    srv_rev_gauges(s, r);
    srv_rev_release(r); /* its function's reference */
}

void srv_rev_conc_update(srv_rev_t *r, uint64_t now)
{
    if (now > r->conc_since_ns)
        r->conc_area += (double)(r->busy + r->queue.n) * (double)(now - r->conc_since_ns);
    r->conc_since_ns = now;
}

/* A revision at zero (nothing warm, warming, running or queued, and
 * desired 0) unpins its module, so that the cache's bound applies to it.
 * Call wherever those counts may have fallen to zero, once no instance of
 * the module is left (calls free theirs before being answered). */
void srv_rev_unpin_if_idle(srv_t *s, srv_rev_t *r)
{
    if (!r->mod || r->load || r->desired || r->nwarm || r->warming || r->busy || r->queue.n ||
        s->freeing)
        return;
    rt_module_release(r->mod);
    r->mod = NULL;
    srv_cache_gauges(s);
}

static void load_work(rt_job_t *j, eng_exec_t *x)
{
    srv_load_t *l = j->ud;
    rt_module_load_run(l->ml, x);
}

void srv_load_unlink(srv_t *s, srv_load_t *l)
{
    if (l->prev) l->prev->next = l->next;
    else s->loads = l->next;
    if (l->next) l->next->prev = l->prev;
    l->prev = l->next = NULL;
}

static void load_done(rt_job_t *j)
{
    srv_load_t *l = j->ud;
    srv_t *s = l->srv;
    srv_rev_t *r = l->rev;
    srv_load_unlink(s, l);
    r->load = NULL;
    char e[256];
    rt_load_source_t src;
    rt_module_t *m = rt_cache_load_finish(s->cache, l->ml, &src, e, sizeof e);
    free(l);
    if (m && rt_module_check_limit(m, r->memory_limit_bytes, e, sizeof e) != 0) {
        rt_module_release(m);
        m = NULL;
    }
    /* Every call queued now waited for the module: a cold start. */
    uint64_t now = eng_now_ns();
    for (srv_call_t *c = r->queue.head; c; c = c->next) {
        c->cold = true;
        c->load_ns = now - c->start_ns;
    }
    if (m) {
        srv_module_loads_count(s, src);
        r->mod = m; /* NULL until now: srv_rev_module_get starts no find while loading */
        srv_cache_gauges(s);
        srv_rev_pump(s, r);
        srv_rev_refill(s, r);
    } else {
        char line[400];
        int n = snprintf(line, sizeof line, "wasmfn: cannot load module %s: %s", r->digest, e);
        if (r->fn->log) lr_ring_append_tagged(r->fn->log, r->name, &wasmfn_line, line, n > 0 ? (size_t)n : 0);
        r->warm_failed = true; /* the next call or tick tries again */
        while (r->queue.head) {
            srv_call_t *c = r->queue.head;
            srv_rev_conc_update(r, now);
            srv_list_remove(&r->queue, c);
            srv_call_count_cold(s, c);
            s->call_finish_text(s, c, 502, "function %s: cannot load module %s: %s\n",
                                r->fn->name, r->digest, e);
        }
    }
    srv_rev_gauges(s, r);
    srv_rev_unpin_if_idle(s, r);
    srv_rev_release(r);
}

/* Gets r's module back: 1 when r has it (it was still cached), 0 when it
 * is being loaded on a worker (load_done dispatches the queued calls), -1
 * when out of memory. */
int srv_rev_module_get(srv_t *s, srv_rev_t *r)
{
    if (r->mod) return 1;
    if (r->load) return 0;
    rt_module_t *m = rt_cache_find(s->cache, r->digest);
    if (m) {
        r->mod = m;
        srv_cache_gauges(s);
        return 1;
    }
    srv_load_t *l = calloc(1, sizeof *l);
    if (!l || !(l->ml = rt_module_load_new(s->cache, r->digest))) {
        free(l);
        return -1;
    }
    rt_module_load_limits(l->ml, r->memory_limit_bytes, (uint64_t)r->timeout_ms * 1000000ull);
    l->srv = s;
    l->rev = r;
    r->refs++;
    r->load = l;
    l->next = s->loads;
    if (s->loads) s->loads->prev = l;
    s->loads = l;
    l->job.work = load_work;
    l->job.done = load_done;
    l->job.ud = l;
    rt_pool_submit(s->pool, &l->job, true); /* requests wait for it */
    return 0;
}

/* ---- warm instances ----------------------------------------------------- */

static void warm_work(rt_job_t *j, eng_exec_t *x)
{
    srv_warm_t *w = j->ud;
    srv_rev_t *r = w->rev;
    rt_instance_config_t cfg = {
        .name = r->fn->name,
        .env = (const char *const *)r->env,
        .nenv = r->nenv,
        .memory_limit_bytes = r->memory_limit_bytes,
        .http_client = r->srv->outbound,
        .http_policy = r->http_policy,
        .kv = r->kv,
        .deadline_ns = eng_now_ns() + (uint64_t)r->timeout_ms * 1000000ull,
    };
    w->inst = rt_instance_new(r->mod, &cfg, x, w->err, sizeof w->err);
}

/* What the autoscaler wants, within the revision's share of the node's
 * budget (srv_node_share). */
static uint32_t rev_warm_target(const srv_rev_t *r)
{
    uint32_t want = srv_rev_warm_want(r);
    return want < r->warm_allowed ? want : r->warm_allowed;
}

static void warm_done(rt_job_t *j)
{
    srv_warm_t *w = j->ud;
    srv_t *s = w->srv;
    srv_rev_t *r = w->rev;
    r->warming--;
    if (!w->inst) {
        char line[320];
        int n = snprintf(line, sizeof line, "wasmfn: cannot instantiate: %s", w->err);
        if (r->fn->log) lr_ring_append_tagged(r->fn->log, r->name, &wasmfn_line, line, n > 0 ? (size_t)n : 0);
        r->warm_failed = true;
        srv_node_sub(s, r, 1);
    } else if (r->retired || s->draining || s->freeing || r->nwarm >= rev_warm_target(r)) {
        rt_instance_free(w->inst);
        srv_node_sub(s, r, 1);
    } else {
        if (r->nwarm == r->warm_cap) {
            uint32_t cap = r->warm_cap ? r->warm_cap * 2 : 4;
            rt_instance_t **n = realloc(r->warm, cap * sizeof *n);
            if (!n) {
                rt_instance_free(w->inst);
                srv_node_sub(s, r, 1);
                goto out;
            }
            r->warm = n;
            r->warm_cap = cap;
        }
        r->warm[r->nwarm++] = w->inst;
        srv_rev_gauges(s, r);
    }
out:
    free(w);
    srv_rev_refill(s, r);
    srv_rev_unpin_if_idle(s, r);
    srv_rev_release(r);
}

/* Starts background instantiations until warm + warming reaches the warm
 * target. */
void srv_rev_refill(srv_t *s, srv_rev_t *r)
{
    if (r->retired || s->draining || s->freeing || r->warm_failed) return;
    if (r->nwarm + r->warming >= rev_warm_target(r)) return;
    if (!r->mod && srv_rev_module_get(s, r) != 1) return; /* load_done refills */
    uint32_t warm_budget = srv_node_warm_budget(s);
    while (r->nwarm + r->warming < rev_warm_target(r) && srv_node_room(s, r, warm_budget)) {
        srv_warm_t *w = calloc(1, sizeof *w);
        if (!w) return;
        w->srv = s;
        w->rev = r;
        r->refs++;
        r->warming++;
        srv_node_add(s, r, 1);
        w->job.work = warm_work;
        w->job.done = warm_done;
        w->job.ud = w;
        rt_pool_submit(s->pool, &w->job, false);
    }
}

/* Keeps the warm pool at its target: frees extras, starts missing ones. */
void srv_rev_apply_desired(srv_t *s, srv_rev_t *r)
{
    while (r->nwarm > rev_warm_target(r)) {
        rt_instance_free(r->warm[--r->nwarm]);
        srv_node_sub(s, r, 1);
    }
    if (r->nwarm == 0 && r->warm_cap > 16) {
        free(r->warm);
        r->warm = NULL;
        r->warm_cap = 0;
    }
    r->warm_failed = false;
    srv_rev_refill(s, r);
    srv_rev_gauges(s, r);
    srv_rev_unpin_if_idle(s, r);
}

/* Dispatches queued calls while the revision has room (through
 * s->call_dispatch: call.c is above this file). */
void srv_rev_pump(srv_t *s, srv_rev_t *r)
{
    if (!r->mod) return; /* load_done pumps */
    uint32_t max = srv_rev_max_busy(r);
    while (r->queue.head && (max == 0 || r->busy < max)) {
        srv_call_t *c = r->queue.head;
        srv_rev_conc_update(r, eng_now_ns());
        srv_list_remove(&r->queue, c);
        s->call_dispatch(s, c);
    }
}

/* Same module, env and limits: the existing revision object is kept (with
 * its warm instances and scaling history). */
bool srv_rev_matches(const srv_rev_t *r, const srv_revision_t *d)
{
    if (strcmp(r->name, d->name) != 0 || strcmp(r->digest, d->digest) != 0)
        return false;
    uint64_t mem = d->memory_limit_bytes ? d->memory_limit_bytes : SRV_DEFAULT_MEMORY;
    uint32_t to = d->timeout_ms ? d->timeout_ms : SRV_DEFAULT_TIMEOUT_MS;
    if (r->memory_limit_bytes != mem || r->timeout_ms != to || r->nenv != d->nenv ||
        r->cpu_limit_millis != d->cpu_limit_millis)
        return false;
    for (uint32_t i = 0; i < d->nenv; i++)
        if (strcmp(r->env[i], d->env[i]) != 0) return false;
    if (r->nallowed_hosts != d->nallowed_hosts) return false;
    for (uint32_t i = 0; i < d->nallowed_hosts; i++)
        if (strcmp(r->allowed_hosts[i], d->allowed_hosts[i]) != 0) return false;
    if (r->nkv_stores != d->nkv_stores) return false;
    for (uint32_t i = 0; i < d->nkv_stores; i++)
        if (strcmp(r->kv_stores[i], d->kv_stores[i]) != 0) return false;
    return true;
}

srv_rev_t *srv_rev_new(srv_t *s, srv_fn_t *f, const srv_revision_t *d, char *err,
                          size_t errlen)
{
    /* From memory, else its serialised form, else the compiler: on this
     * thread, unless srv_module_prepare has loaded it already (the admin
     * API does; loading every function at start does not). */
    char e[256];
    rt_load_source_t src = RT_LOAD_CACHED;
    uint64_t mem = d->memory_limit_bytes ? d->memory_limit_bytes : SRV_DEFAULT_MEMORY;
    uint32_t to = d->timeout_ms ? d->timeout_ms : SRV_DEFAULT_TIMEOUT_MS;
    rt_module_t *m = rt_cache_find(s->cache, d->digest);
    if (!m) {
        rt_module_load_t *l = rt_module_load_new(s->cache, d->digest);
        if (l) {
            rt_module_load_limits(l, mem, (uint64_t)to * 1000000ull);
            rt_module_load_run(l, NULL);
            m = rt_cache_load_finish(s->cache, l, &src, e, sizeof e);
        } else {
            snprintf(e, sizeof e, "out of memory");
        }
    }
    if (m && rt_module_check_limit(m, mem, e, sizeof e) != 0) {
        rt_module_release(m);
        m = NULL;
    }
    if (!m) {
        snprintf(err, errlen, "revision %s: module %s: %s", d->name, d->digest, e);
        return NULL;
    }
    srv_module_loads_count(s, src);
    srv_cache_gauges(s);
    srv_rev_t *r = calloc(1, sizeof *r);
    if (!r || !(r->name = strdup(d->name)) || !(r->digest = strdup(d->digest)) ||
        !(r->env = strv_dup(d->env, d->nenv)) ||
        !(r->allowed_hosts = strv_dup(d->allowed_hosts, d->nallowed_hosts)) ||
        !(r->kv_stores = strv_dup(d->kv_stores, d->nkv_stores)) ||
        !(r->kv = kv_grant_new(s->kv, d->kv_stores, d->nkv_stores))) {
        if (r) {
            free(r->name);
            free(r->digest);
            free(r->env);
            free(r->allowed_hosts);
            free(r->kv_stores);
        }
        free(r);
        rt_module_release(m);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    r->refs = 1; /* the function's */
    r->srv = s;
    r->fn = f;
    f->refs++;
    r->mod = m;
    r->nenv = d->nenv;
    r->nallowed_hosts = d->nallowed_hosts;
    r->nkv_stores = d->nkv_stores;
    r->memory_limit_bytes = d->memory_limit_bytes ? d->memory_limit_bytes : SRV_DEFAULT_MEMORY;
    r->timeout_ms = d->timeout_ms ? d->timeout_ms : SRV_DEFAULT_TIMEOUT_MS;
    r->scaling = d->scaling;
    r->cpu_limit_millis = d->cpu_limit_millis;
    r->cpu_request_millis = d->cpu_request_millis;
    r->memory_request_bytes = d->memory_request_bytes;
    r->ext_replicas = -1;
    r->labels[0] = f->name;
    r->labels[1] = r->name;
    r->shown[0] = r->shown[1] = r->shown[2] = -1;
    uint64_t now = eng_now_ns();
    r->scaler = as_scaler_new(&r->scaling, now);
    r->conc_since_ns = now;
    if (!r->scaler) {
        snprintf(err, errlen, "out of memory");
        srv_rev_release(r);
        return NULL;
    }
    /* Only revisions that list destinations get a policy: without one,
     * every outbound request is refused. */
    if (d->nallowed_hosts) {
        char e2[256];
        r->http_policy = ho_policy_new(d->allowed_hosts, d->nallowed_hosts, e2, sizeof e2);
        if (!r->http_policy) {
            snprintf(err, errlen, "revision %s: allowed hosts: %s", d->name, e2);
            srv_rev_release(r);
            return NULL;
        }
    }
    return r;
}
