/*
 * link.h — binding a module's imports to the host: WASI preview1, and
 * the host APIs beyond it that a revision is granted (outbound HTTP,
 * src/host/http_out.h; key-value stores, src/host/kv.h). Used for
 * instances (instance.c), for the throwaway instances that check and
 * image a module (module.c), and by `wasmfn run` (src/cli/run.c), so a
 * module links the same everywhere.
 */
#ifndef WASMFN_RUNTIME_LINK_H
#define WASMFN_RUNTIME_LINK_H

#include "host/http_out.h"
#include "host/kv.h"
#include "wasi/wasi.h"

typedef struct rt_link {
    wasi_ctx_t *wasi;
    /* Outbound HTTP: a context is made (into *http, owned by the caller)
     * only when the module imports wasi_experimental_http. client or
     * policy NULL: its requests are refused (HO_DESTINATION_NOT_ALLOWED). */
    ho_ctx_t **http;
    ho_client_t *http_client;
    ho_policy_t *http_policy;
    const char *function;        /* the metric's label */
    /* wasmfn_kv's stores the revision was granted; NULL: none, every
     * open answers "no such store". */
    const kv_grant_t *kv;
    /* rt_link_plan_new of the module, or NULL: every import by name. */
    const int16_t *plan;
} rt_link_t;

/* Which of m's imports are WASI functions, found once per module so that
 * each instance binds them without looking them up (rt_link_t.plan):
 * per import, its index among WASI's functions (wasi_import_index) or
 * -1. NULL when m has no imports or memory ran out. free() it. */
int16_t *rt_link_plan_new(const eng_module_t *m);

/* The runtime's way for a host call to park its guest (wait.h): its
 * fiber's waker (rt_waker_*), a condition variable off a fiber. */
const ho_wait_ops_t *rt_link_wait_ops(void);

/* Resolves every import of m (imports holds eng_module_import_count(m)
 * entries). An import of no known module is an error naming module, name
 * and type. Returns 0 or -1 with the message in err. */
int rt_link_imports(const rt_link_t *l, eng_store_t *s, const eng_module_t *m,
                    eng_extern_t *imports, char *err, size_t errlen);

/* True when every import of m is a WASI function that neither waits nor
 * reaches outside its instance (the list in link.c: arguments, env,
 * clocks, random bytes, stdio, proc_exit), given an instance with no
 * preopens and captured stdio as serving/ makes them. A run of such a
 * module that is given up half-way has had no effect anyone can see, so
 * it can be run again elsewhere (rt_request_t.trial_until_ns). */
bool rt_link_trial_safe(const eng_module_t *m);

#endif
