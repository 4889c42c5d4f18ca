/*
 * prepare.c — modules loaded before a deploy (srv_module_prepare): the
 * admin API waits for the module to load (and a native artefact to be
 * looked up) on a worker before it answers, so a deploy that cannot start
 * fails at once. Uploads (srv_module_upload) are the same load from the
 * uploaded bytes: the compile that validates them is the one the data
 * plane keeps.
 */
#define _GNU_SOURCE
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "serving/plane.h"

/* ---- modules loaded before a deploy ------------------------------------- */


static void prep_work(rt_job_t *j, eng_exec_t *x)
{
    srv_prep_t *p = j->ud;
    rt_module_load_run(p->ml, x);
}

void srv_prep_unlink(srv_t *s, srv_prep_t *p)
{
    if (p->prev) p->prev->next = p->next;
    else s->preps = p->next;
    if (p->next) p->next->prev = p->prev;
    p->prev = p->next = NULL;
}

/* Hands m (held, or NULL with the reason in e) to done, then lets it go:
 * whatever done deployed holds its own reference by then. */
static void prep_report(srv_t *s, rt_module_t *m, uint64_t memory_limit_bytes,
                        srv_prepare_fn done, void *ud, char *e, size_t elen)
{
    if (m && rt_module_check_limit(m, memory_limit_bytes, e, elen) != 0) {
        rt_module_release(m);
        m = NULL;
    }
    if (done) done(ud, m ? NULL : e);
    rt_module_release(m);
    srv_cache_gauges(s);
}

static void prep_done(rt_job_t *j)
{
    srv_prep_t *p = j->ud;
    srv_t *s = p->srv;
    srv_prep_unlink(s, p);
    char e[256];
    rt_load_source_t src;
    if (!p->done) {
        /* An upload (or a cancelled prepare). */
        bool invalid = rt_module_load_invalid(p->ml);
        rt_module_t *m = rt_cache_load_finish(s->cache, p->ml, &src, e, sizeof e);
        if (m) srv_module_loads_count(s, src);
        rt_module_release(m);
        srv_cache_gauges(s);
        if (p->up_done) p->up_done(p->ud, m ? 0 : invalid ? -1 : 1, m ? NULL : e);
        free(p);
        return;
    }
    rt_module_t *m = rt_cache_load_finish(s->cache, p->ml, &src, e, sizeof e);
    if (m) srv_module_loads_count(s, src);
    srv_prepare_fn done = p->done;
    void *ud = p->ud;
    uint64_t mem = p->memory_limit_bytes;
    free(p);
    prep_report(s, m, mem, done, ud, e, sizeof e);
}

/* Tracks p in s->preps and submits its job. Urgent: a user waits for it.
 * Its guest code (start function, wizer.initialize) runs on a fiber,
 * switched out while requests wait, and stops at the limits p->ml got. */
static void prep_start(srv_t *s, srv_prep_t *p)
{
    p->next = s->preps;
    if (s->preps) s->preps->prev = p;
    s->preps = p;
    p->job.work = prep_work;
    p->job.done = prep_done;
    p->job.ud = p;
    rt_pool_submit(s->pool, &p->job, true);
}

int srv_module_prepare(srv_t *s, const char *digest, uint64_t memory_limit_bytes,
                       uint32_t timeout_ms, srv_prepare_fn done, void *ud)
{
    uint64_t mem = memory_limit_bytes ? memory_limit_bytes : SRV_DEFAULT_MEMORY;
    uint32_t to = timeout_ms ? timeout_ms : SRV_DEFAULT_TIMEOUT_MS;
    rt_module_t *m = rt_cache_find(s->cache, digest);
    if (m) {
        char e[256];
        prep_report(s, m, mem, done, ud, e, sizeof e);
        return 0;
    }
    srv_prep_t *p = calloc(1, sizeof *p);
    if (!p || !(p->ml = rt_module_load_new(s->cache, digest))) {
        free(p);
        return -1;
    }
    rt_module_load_limits(p->ml, mem, (uint64_t)to * 1000000ull);
    p->srv = s;
    p->memory_limit_bytes = mem;
    p->done = done;
    p->ud = ud;
    prep_start(s, p);
    return 0;
}

int srv_module_upload(srv_t *s, const char *digest, const uint8_t *bytes, size_t len,
                      srv_upload_fn done, void *ud)
{
    rt_module_t *m = rt_cache_find(s->cache, digest);
    if (m) {
        /* The same bytes were compiled and checked before. */
        rt_module_release(m);
        done(ud, 0, NULL);
        return 0;
    }
    srv_prep_t *p = calloc(1, sizeof *p);
    if (!p || !(p->ml = rt_module_load_bytes(s->cache, digest, bytes, len))) {
        free(p);
        return -1;
    }
    /* The upload's client waits for this: an initialiser (start function,
     * wizer.initialize) gets a second here. One that needs longer, or
     * more memory, is not kept, and is made at deploy under its
     * revision's own limits, which also judge one that never ends. */
    rt_module_load_limits(p->ml, SRV_DEFAULT_MEMORY, SRV_UPLOAD_INIT_TIMEOUT_MS * 1000000ull);
    p->srv = s;
    p->up_done = done;
    p->ud = ud;
    prep_start(s, p);
    return 0;
}

void srv_module_prepare_cancel(srv_t *s, void *ud)
{
    for (srv_prep_t *p = s->preps; p; p = p->next)
        if (p->ud == ud) p->done = NULL, p->up_done = NULL;
}

void srv_module_forget(srv_t *s, const char *digest)
{
    if (rt_cache_forget(s->cache, digest)) srv_cache_gauges(s);
}
