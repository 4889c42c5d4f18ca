/*
 * instance.c — instance lifecycle and one guest run (runtime.h).
 *
 * An rt_instance is what the data plane calls a warm instance: a store of
 * its own, a WASI context (args [NAME], the revision's env, no preopens)
 * and the instantiated module, ready to run _start. Making one is the cold
 * start; the autoscaler keeps some made in advance. With a module image
 * (module.c) the instance maps the image's memory copy-on-write and copies
 * its globals and tables: microseconds, and nothing of the guest runs. Running consumes it:
 * per-request state (the CGI env, stdin, the deadline, stdout/stderr
 * capture) is added just before _start, and the instance is freed after
 * its one run, so no request ever sees another's memory.
 *
 * stdout is collected into a buffer that grows up to the caller's cap;
 * past it the guest's writes fail with EIO and the result says so. stderr
 * is cut into lines and appended to the function's log ring as they
 * complete (a partial line is kept until its newline or the end).
 */
#define _GNU_SOURCE
#include "runtime/runtime.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "runtime/cpu_clock.h"
#include "runtime/link.h"
#include "wasi/wasi.h"

/* A stderr line longer than this is flushed in pieces. */
#define RT_LOG_LINE_MAX 8192
/* What a trial run may write to stderr; more gives the trial up. */
#define RT_TRIAL_LOG_MAX (16u << 10)

struct rt_instance {
    eng_store_t *store;
    wasi_ctx_t *wasi;
    ho_ctx_t *http;          /* NULL unless the module imports outbound HTTP */
    eng_instance_t *inst;
    eng_func_t *start;
    bool trial_safe;         /* rt_module_trial_safe of its module */
};

/* poll_oneoff's clock waits on a pool fiber park the fiber (ud is the
 * exec the guest runs on) instead of sleeping the worker thread. */
static int sleep_hook(void *ud, uint64_t until_ns) { return rt_sleep_until(ud, until_ns); }

static void set_sleep(wasi_ctx_t *w, eng_exec_t *x)
{
    if (rt_in_fiber()) wasi_ctx_set_sleep(w, sleep_hook, x);
    else wasi_ctx_set_sleep(w, NULL, NULL);
}

rt_instance_t *rt_instance_new(const rt_module_t *rm, const rt_instance_config_t *cfg,
                               eng_exec_t *x, char *err, size_t errlen)
{
    const eng_module_t *m = rt_module_engine(rm);
    rt_instance_t *i = calloc(1, sizeof *i);
    uint32_t nimp = eng_module_import_count(m);
    eng_extern_t *imports = calloc(nimp ? nimp : 1, sizeof *imports);
    if (!i || !imports || !(i->store = eng_store_new()) || !(i->wasi = wasi_ctx_new_detached())) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    if (cfg->memory_limit_bytes) eng_store_set_memory_limit(i->store, cfg->memory_limit_bytes);
    const char *argv0 = cfg->name ? cfg->name : "function";
    if (wasi_ctx_set_args(i->wasi, 1, &argv0) != 0) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    if (wasi_ctx_add_envs(i->wasi, cfg->env, cfg->nenv) != 0) {
        /* Which entry (the revision's env was checked at deploy, so this
         * is rare)? */
        uint32_t k = 0;
        while (k < cfg->nenv && strchr(cfg->env[k], '=') && cfg->env[k][0] != '=') k++;
        if (k < cfg->nenv) snprintf(err, errlen, "env entry %u is not KEY=VALUE", k);
        else snprintf(err, errlen, "out of memory");
        goto fail;
    }
    /* The guest's stdio never reaches the daemon's own fds (a detached
     * context): until a request arrives, stdin is empty and output is
     * dropped. */
    rt_link_t link = {.wasi = i->wasi,
                      .http = &i->http,
                      .http_client = cfg->http_client,
                      .http_policy = cfg->http_policy,
                      .function = argv0,
                      .kv = cfg->kv,
                      .plan = rt_module_link_plan(rm)};
    if (rt_link_imports(&link, i->store, m, imports, err, errlen) != 0) goto fail;
    const eng_image_t *img = rt_module_image(rm);
    if (img) {
        i->inst = eng_instance_from_image(i->store, img, imports, nimp, err, errlen);
    } else {
        eng_exec_set_deadline(x, cfg->deadline_ns);
        wasi_ctx_set_deadline(i->wasi, cfg->deadline_ns);
        set_sleep(i->wasi, x);
        i->inst = eng_instance_new(i->store, m, imports, nimp, x, err, errlen);
        eng_exec_set_deadline(x, 0);
    }
    if (!i->inst) goto fail;
    i->trial_safe = rt_module_trial_safe(rm);
    i->start = eng_instance_func(i->inst, "_start");
    if (!i->start) {
        snprintf(err, errlen, "no exported function _start");
        goto fail;
    }
    free(imports);
    return i;
fail:
    free(imports);
    rt_instance_free(i);
    return NULL;
}

void rt_instance_free(rt_instance_t *i)
{
    if (!i) return;
    if (i->store) eng_store_free(i->store);
    if (i->wasi) wasi_ctx_free(i->wasi);
    ho_ctx_free(i->http);
    free(i);
}

/* ---- stdio capture ------------------------------------------------------ */

typedef struct capture {
    cm_buf_t out;
    size_t out_max;
    bool overflow;
    lr_ring_t *log;
    const char *source;
    const lr_tags_t *tags;
    char *line;   /* RT_LOG_LINE_MAX bytes, allocated at the first stderr
                   * write: most runs never write any, and a parked guest
                   * should not keep two pages for nothing */
    size_t line_len;
    /* A trial run (rt_request_t.trial_until_ns): stderr is held in
     * `held` until the run is known to count, and `given_up` is set when
     * the guest did something a trial must not (x is interrupted then). */
    bool trial, given_up;
    cm_buf_t held;
    eng_exec_t *x;
} capture_t;

static long capture_stdout(void *ud, const uint8_t *data, size_t len)
{
    capture_t *c = ud;
    if (len > c->out_max - c->out.len) {
        c->overflow = true;
        return -1;
    }
    if (cm_buf_reserve_upto(&c->out, len, c->out_max) != 0) return -1;
    cm_buf_append(&c->out, data, len); /* room was made: cannot fail */
    return (long)len;
}

static void capture_flush_line(capture_t *c)
{
    if (c->log && c->line_len) lr_ring_append_tagged(c->log, c->source, c->tags, c->line, c->line_len);
    c->line_len = 0;
}

/* A trial's guest that needs more than a trial allows stops at its next
 * check, and its run is given up. */
static void capture_give_up(capture_t *c)
{
    c->given_up = true;
    eng_exec_interrupt(c->x);
}

static long capture_stderr(void *ud, const uint8_t *data, size_t len)
{
    capture_t *c = ud;
    if (c->trial) {
        if (len > RT_TRIAL_LOG_MAX - c->held.len || cm_buf_append(&c->held, data, len) != 0) {
            capture_give_up(c);
            return -1;
        }
        return (long)len;
    }
    for (size_t k = 0; k < len; k++) {
        if (data[k] == '\n') {
            if (c->line_len == 0 && c->log) lr_ring_append_tagged(c->log, c->source, c->tags, "\n", 1);
            capture_flush_line(c);
            continue;
        }
        if (!c->line && !(c->line = malloc(RT_LOG_LINE_MAX))) return -1;
        if (c->line_len == RT_LOG_LINE_MAX) capture_flush_line(c);
        c->line[c->line_len++] = (char)data[k];
    }
    return (long)len;
}

/* A trial's guest that would sleep is given up instead: the loop thread
 * it runs on must not wait. */
static int trial_sleep(void *ud, uint64_t until_ns)
{
    (void)until_ns;
    capture_give_up(ud);
    return -1;
}

int rt_instance_run(rt_instance_t *i, eng_exec_t *x, const rt_request_t *rq, rt_result_t *res)
{
    memset(res, 0, sizeof *res);
    bool trial = rq->trial_until_ns != 0;
    if (trial && !i->trial_safe) {
        res->abandoned = true;
        res->trap = ENG_TRAP_DEADLINE;
        snprintf(res->message, sizeof res->message, "not a module for trial runs");
        return -1;
    }
    capture_t *cap = calloc(1, sizeof *cap);
    if (!cap) {
        res->trap = ENG_TRAP_HOST;
        snprintf(res->message, sizeof res->message, "out of memory");
        return -1;
    }
    cap->out_max = rq->max_stdout_bytes ? rq->max_stdout_bytes : (16u << 20);
    cap->log = rq->log;
    cap->source = rq->log_source ? rq->log_source : "";
    cap->tags = rq->log_tags;
    cap->trial = trial;
    cap->x = x;
    if (wasi_ctx_add_envs_borrowed(i->wasi, rq->env, rq->nenv) != 0) {
        /* The CGI environment is made by serving/ and always well formed:
         * this is out of memory (or a bad entry, which is dropped). */
        for (uint32_t k = 0; k < rq->nenv; k++) wasi_ctx_add_env(i->wasi, rq->env[k]);
    }
    wasi_ctx_set_stdin_bytes(i->wasi, rq->stdin_bytes ? rq->stdin_bytes : (const uint8_t *)"",
                             rq->stdin_len);
    wasi_ctx_set_output(i->wasi, 1, capture_stdout, cap);
    wasi_ctx_set_output(i->wasi, 2, capture_stderr, cap);
    /* A trial stops at its end or at the request's deadline, whichever
     * comes first. */
    bool trial_first = trial && (rq->deadline_ns == 0 || rq->trial_until_ns < rq->deadline_ns);
    uint64_t deadline = trial_first ? rq->trial_until_ns : rq->deadline_ns;
    eng_exec_set_deadline(x, deadline);
    wasi_ctx_set_deadline(i->wasi, deadline);
    if (trial) wasi_ctx_set_sleep(i->wasi, trial_sleep, cap);
    else set_sleep(i->wasi, x);

    /* On a fiber the thread also runs other guests while this one is
     * parked: their share is subtracted. */
    uint64_t foreign0 = rt_fiber_foreign_cpu_ns();
    uint64_t cpu0 = rt_cpu_thread_ns();
    ho_ctx_set_trace(i->http, rq->tracer, rq->trace);
    eng_trap_t t = eng_call(x, i->start, NULL, NULL);
    ho_ctx_set_trace(i->http, NULL, NULL);
    uint64_t cpu = rt_cpu_thread_ns() - cpu0;
    uint64_t foreign = rt_fiber_foreign_cpu_ns() - foreign0;
    eng_exec_set_deadline(x, 0);
    if (trial && (cap->given_up || (t == ENG_TRAP_DEADLINE && trial_first))) {
        /* Nothing of it is seen: no output, no log lines. */
        res->abandoned = true;
        res->trap = ENG_TRAP_DEADLINE;
        res->cpu_ns = cpu;
        snprintf(res->message, sizeof res->message, "trial run given up");
        cm_buf_free(&cap->out);
        cm_buf_free(&cap->held);
        free(cap->line);
        free(cap);
        return -1;
    }
    if (trial) {
        /* It counts: its stderr goes to the log as a run's would have. */
        cap->trial = false;
        if (cap->held.len) capture_stderr(cap, (const uint8_t *)cap->held.data, cap->held.len);
        cm_buf_free(&cap->held);
    }
    capture_flush_line(cap);
    res->cpu_ns = cpu > foreign ? cpu - foreign : 0;
    eng_memory_t *mem = eng_instance_memory(i->inst);
    res->peak_memory_bytes = mem ? eng_memory_size(mem) : 0;
    res->trap = t;
    if (t == ENG_TRAP_EXIT) res->exit_code = eng_exec_exit_code(x);
    else if (t != ENG_OK) snprintf(res->message, sizeof res->message, "%s", eng_exec_trap_message(x));
    size_t out_len = cap->out.len;
    res->out = (uint8_t *)cm_buf_take(&cap->out);
    res->out_len = res->out ? out_len : 0;
    res->out_overflow = cap->overflow;
    free(cap->line);
    free(cap);
    return (t == ENG_OK || t == ENG_TRAP_EXIT) ? 0 : -1;
}
