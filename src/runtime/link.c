/*
 * link.c — a module's imports bound to WASI and the host APIs (link.h).
 *
 * WASI resolves what is its own; every other import is looked up by
 * module name among the host APIs (outbound HTTP, then key-value stores,
 * which answer "not mine" for a module name they do not own). An API's
 * per-instance context is made at its first import, so an instance of a
 * module that does not use it costs nothing more.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/link.h"
#include "runtime/runtime.h"

/* A guest waiting for its outbound response or a Redis reply parks on the
 * runtime's wakers (pool.c): on a fiber its worker runs others meanwhile. */
static void *waker_new(void) { return rt_waker_new(); }
static void waker_free(void *k) { rt_waker_free(k); }
static void waker_wake(void *k) { rt_waker_wake(k); }
static int waker_wait(void *k, eng_exec_t *x, uint64_t until_ns)
{
    return rt_waker_wait(k, x, until_ns);
}
static const ho_wait_ops_t fiber_wait = {waker_new, waker_free, waker_wake, waker_wait};

const ho_wait_ops_t *rt_link_wait_ops(void) { return &fiber_wait; }

static const char *kind_name(eng_extern_kind_t k)
{
    switch (k) {
    case ENG_EXTERN_FUNC: return "func";
    case ENG_EXTERN_TABLE: return "table";
    case ENG_EXTERN_MEMORY: return "memory";
    default: return "global";
    }
}

int16_t *rt_link_plan_new(const eng_module_t *m)
{
    uint32_t n = eng_module_import_count(m);
    int16_t *plan = n ? malloc(n * sizeof *plan) : NULL;
    for (uint32_t i = 0; plan && i < n; i++) {
        eng_extern_desc_t d;
        eng_module_import(m, i, &d);
        plan[i] = (int16_t)wasi_import_index(&d);
    }
    return plan;
}

int rt_link_imports(const rt_link_t *l, eng_store_t *s, const eng_module_t *m,
                    eng_extern_t *imports, char *err, size_t errlen)
{
    uint32_t n = eng_module_import_count(m);
    for (uint32_t i = 0; i < n; i++) {
        if (l->plan && l->plan[i] >= 0) {
            wasi_resolve_t r = wasi_import_bind(l->wasi, s, l->plan[i], &imports[i], err, errlen);
            if (r != WASI_RESOLVE_OK) return -1;
            continue;
        }
        eng_extern_desc_t d;
        eng_module_import(m, i, &d);
        wasi_resolve_t r = wasi_import_resolve(l->wasi, s, &d, &imports[i], err, errlen);
        if (r == WASI_RESOLVE_ERROR) return -1;
        if (r == WASI_RESOLVE_OK) continue;
        if (strcmp(d.module, HO_MODULE_NAME) == 0 && l->http) {
            if (!*l->http &&
                !(*l->http = ho_ctx_new(l->http_client, l->http_policy, l->function, &fiber_wait))) {
                snprintf(err, errlen, "out of memory");
                return -1;
            }
            if (ho_import_resolve(*l->http, s, &d, &imports[i], err, errlen) != 0) return -1;
            continue;
        }
        kv_resolve_t k = kv_import_resolve(l->kv, s, &d, &imports[i], err, errlen);
        if (k == KV_RESOLVE_OK) continue;
        if (k == KV_RESOLVE_ERROR) return -1;
        snprintf(err, errlen, "unknown import %s.%s (%s%s%s)", d.module, d.name, kind_name(d.kind),
                 d.type && d.type[0] ? " " : "", d.type ? d.type : "");
        return -1;
    }
    return 0;
}

/* WASI functions a trial run may call (link.h). Left out: poll_oneoff
 * (it sleeps), the path_* calls and the fd_* calls that only make sense
 * on a file (serving's instances have no preopened directory today, but a
 * run that could touch a file must never be repeated), sock_*, and
 * anything not listed. */
static const char *const trial_safe[] = {
    "args_get",       "args_sizes_get",      "environ_get",         "environ_sizes_get",
    "clock_res_get",  "clock_time_get",      "fd_close",            "fd_fdstat_get",
    "fd_fdstat_set_flags", "fd_filestat_get", "fd_prestat_get",     "fd_prestat_dir_name",
    "fd_read",        "fd_seek",             "fd_tell",             "fd_write",
    "fd_sync",        "fd_datasync",         "proc_exit",           "random_get",
    "sched_yield",
};

bool rt_link_trial_safe(const eng_module_t *m)
{
    uint32_t n = eng_module_import_count(m);
    for (uint32_t i = 0; i < n; i++) {
        eng_extern_desc_t d;
        eng_module_import(m, i, &d);
        if (d.kind != ENG_EXTERN_FUNC || strcmp(d.module, WASI_MODULE_NAME) != 0) return false;
        bool ok = false;
        for (size_t k = 0; k < sizeof trial_safe / sizeof *trial_safe && !ok; k++)
            ok = strcmp(d.name, trial_safe[k]) == 0;
        if (!ok) return false;
    }
    return true;
}
