/*
 * call.c — the call lifecycle: admit (queue or dispatch), run the guest on a
 * worker, answer on the loop, and the sweep that ends calls whose deadline
 * passed while they were queued; a drain ends here with the last call.
 * Everything runs on the loop thread except call_work (a worker), which
 * writes only into its call.
 *
 * Runs on the event loop: a revision whose module may make trial runs
 * (rt_module_trial_safe: it can neither wait nor act outside its
 * instance) has its guests run by the loop thread itself (rt_onloop_run),
 * for at most s->loop_slice_ns, which saves the hand-off to a worker (4–5
 * µs of CPU per request, more than a short guest's whole run). A run that
 * is not over by then, or that would sleep, is given up with nothing of
 * it seen and goes to a worker as any other (call_hand_off); its revision
 * then stays off the loop for a while (SRV_LOOP_BACKOFF_*), so a function
 * that needs longer costs the loop one slice per backoff, not per request.
 * Guests take at most half of each millisecond of the loop
 * (SRV_LOOP_SHARE_NS); past it they go to workers, so many connections
 * of short guests at once neither stall the loop nor leave the workers
 * idle while it saturates.
 */
#define _GNU_SOURCE
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "serving/plane.h"

static void list_push(call_list_t *l, srv_call_t *c)
{
    c->next = NULL;
    c->prev = l->tail;
    if (l->tail) l->tail->next = c;
    else l->head = c;
    l->tail = c;
    l->n++;
}

/* ---- calls -------------------------------------------------------------- */

srv_call_t *srv_call_alloc(srv_t *s)
{
    srv_call_t *c = s->free_calls;
    if (c) {
        s->free_calls = c->next;
        s->nfree_calls--;
        memset(c, 0, offsetof(srv_call_t, cgi));
        c->cgi.nheaders = 0;
    } else {
        c = calloc(1, sizeof *c);
    }
    return c;
}

void srv_call_free(srv_t *s, srv_call_t *c)
{
    free(c->env);
    free(c->body_copy);
    free(c->res.out);
    if (c->inst) rt_instance_free(c->inst);
    if (s->nfree_calls < SRV_CALL_FREELIST && !s->freeing) {
        c->next = s->free_calls;
        s->free_calls = c;
        s->nfree_calls++;
    } else {
        free(c);
    }
}
static void call_log(srv_call_t *c, const char *fmt, ...)
{
    srv_fn_t *f = c->rev->fn;
    if (!f->log) return;
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (n < 0) return;
    if ((size_t)n >= sizeof line) n = sizeof line - 1;
    lr_tags_t tags = {c->invocation_id, c->trace_id, LR_WASMFN};
    lr_ring_append_tagged(f->log, c->rev->name, &tags, line, (size_t)n);
}

/* Records a call that reached a guest: from the guest's start (run_ns) to
 * the response being handed to the connection. */
static void call_meter(srv_t *s, srv_call_t *c, int status, uint64_t now, int64_t wall_ns)
{
    int64_t dur = (int64_t)(now - c->run_ns);
    mtr_invocation_t inv = {
        .function = c->rev->fn->name,
        .revision = c->rev->name,
        .start_ns = wall_ns - dur,
        .duration_ns = dur,
        .cpu_ns = (int64_t)c->res.cpu_ns,
        .peak_memory_bytes = c->res.peak_memory_bytes,
        .memory_limit_bytes = c->rev->memory_limit_bytes,
        .cold_start = c->cold,
        .outcome = status == 504 ? MTR_TIMEOUT : status >= 500 ? MTR_ERROR : MTR_OK,
    };
    mtr_record(s->mtr, &inv);
}

/* Answers a call (unless answered) and frees it; metrics count it. */
void srv_call_finish(srv_t *s, srv_call_t *c, int status, const hs_header_t *h, size_t nh,
                        const void *body, size_t len)
{
    srv_rev_t *r = c->rev;
    uint64_t now = eng_now_ns();
    struct timespec wall;
    clock_gettime(CLOCK_REALTIME, &wall);
    int64_t wall_ns = (int64_t)wall.tv_sec * 1000000000LL + wall.tv_nsec;
    srv_call_trace_end(s, c, status, now);
    if (s->mx && !r->fn->deleted) {
        mx_series_add(srv_rev_requests(s, r, c->aborted ? 499 : status), 1);
        mx_series_observe(srv_rev_series(s, r, SRV_RS_DURATION), (double)(now - c->start_ns) / 1e9);
    }
    if (s->mtr && c->run_ns)
        call_meter(s, c, status, now, wall_ns);
    srv_stats_call(s, c, status, now, wall_ns);
    if (c->inv) {
        srv_inv_finish(s->invs, c->inv, status, h, nh, body, len,
                       c->run_ns ? now - c->run_ns : 0);
        r->async_pending--;
        r->async_bytes -= c->body_len;
        s->async_pending--;
        s->async_bytes -= c->body_len;
        if (s->m_async_pending && !r->fn->deleted)
            mx_gauge_set(s->m_async_pending, r->labels, r->async_pending);
    }
    else if (s->server_timing && nh < SRV_CGI_MAX_HEADERS + 4) {
        /* The guest's headers and ours (docs/observability.md). */
        hs_header_t all[SRV_CGI_MAX_HEADERS + 5];
        char timing[SRV_TIMING_LEN];
        srv_call_server_timing(c, now, timing);
        if (nh) memcpy(all, h, nh * sizeof *h);
        all[nh] = (hs_header_t){"Server-Timing", timing};
        c->done(c->done_ud, status, all, nh + 1, body, len);
    } else {
        c->done(c->done_ud, status, h, nh, body, len);
    }
    if (c->finished) *c->finished = true;
    if (--s->ncalls == 0 && !s->freeing) uv_timer_stop(&s->sweep);
    srv_call_free(s, c);
    srv_rev_release(r);
    srv_check_drained(s);
}

void srv_call_finish_text(srv_t *s, srv_call_t *c, int status, const char *fmt, ...)
{
    char body[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(body, sizeof body, fmt, ap);
    va_end(ap);
    if (n < 0) n = 0;
    if ((size_t)n >= sizeof body) n = sizeof body - 1;
    hs_header_t h[2] = {{"Content-Type", "text/plain; charset=utf-8"}, {"Retry-After", "1"}};
    srv_call_finish(s, c, status, h, status == 503 ? 2 : 1, body, (size_t)n);
}

static void call_work(rt_job_t *j, eng_exec_t *x)
{
    srv_call_t *c = j->ud;
    srv_rev_t *r = c->rev;
    c->run_ns = eng_now_ns();
    uint64_t guest_ns = c->run_ns; /* clocks are read once where they can be: 3% of a hello's CPU */
    if (!c->inst) {
        rt_instance_config_t cfg = {
            .name = r->fn->name,
            .env = (const char *const *)r->env,
            .nenv = r->nenv,
            .memory_limit_bytes = r->memory_limit_bytes,
            .http_client = r->srv->outbound,
            .http_policy = r->http_policy,
            .kv = r->kv,
            .deadline_ns = c->deadline_ns,
        };
        c->inst = rt_instance_new(r->mod, &cfg, x, c->err, sizeof c->err);
        guest_ns = eng_now_ns();
        c->cold_ns = guest_ns - c->run_ns;
        c->cold = true;
        if (!c->inst) {
            c->inst_failed = true;
            return;
        }
    }
    rt_request_t rq = {
        .env = (const char *const *)c->env,
        .nenv = c->nenv,
        .stdin_bytes = c->body,
        .stdin_len = c->body_len,
        .deadline_ns = c->deadline_ns,
        .max_stdout_bytes = SRV_MAX_STDOUT,
        .log = r->fn->log,
        .log_source = r->name,
    };
    lr_tags_t tags = {c->invocation_id, c->trace_id, LR_STDERR};
    rq.log_tags = &tags;
    if (r->srv->tracer) { /* c->tr_ctx is set (srv_call_trace_start) */
        rq.tracer = r->srv->tracer;
        rq.trace = &c->tr_ctx;
    }
    c->guest_ns = guest_ns;
    if (c->on_loop) rq.trial_until_ns = guest_ns + r->srv->loop_slice_ns;
    rt_instance_run(c->inst, x, &rq, &c->res);
    c->guest_end_ns = eng_now_ns();
    rt_instance_free(c->inst);
    c->inst = NULL;
    if (c->res.abandoned) return; /* call_done hands it to a worker */
    if ((c->res.trap == ENG_OK || c->res.trap == ENG_TRAP_EXIT) && !c->res.out_overflow)
        c->cgi_ok = srv_cgi_parse(c->res.out, c->res.out_len, &c->cgi, c->err, sizeof c->err) == 0;
}

/* Leaves the running state (the instance slot is free again). */
static void call_undispatch(srv_t *s, srv_call_t *c, uint64_t now)
{
    srv_rev_t *r = c->rev;
    srv_rev_conc_update(r, now);
    srv_list_remove(&r->running, c);
    r->busy--;
    srv_node_sub(s, r, 1);
    c->state = CALL_NEW;
}

static void loop_count(srv_t *s, srv_rev_t *r, srv_rev_series_t k)
{
    if (r->fn->deleted) return;
    mx_series_add(srv_rev_series(s, r, k), 1);
}

/* A run on the loop was given up: its revision stays off the loop for a
 * while, and nothing of the run counts (its CPU is not billed: the guest
 * runs again from the start, or not at all if the call ended meanwhile). */
static void call_give_up(srv_call_t *c)
{
    srv_rev_t *r = c->rev;
    uint64_t b = r->loop_backoff_ns * 2;
    if (b < SRV_LOOP_BACKOFF_MIN_NS) b = SRV_LOOP_BACKOFF_MIN_NS;
    if (b > SRV_LOOP_BACKOFF_MAX_NS) b = SRV_LOOP_BACKOFF_MAX_NS;
    r->loop_backoff_ns = b;
    r->loop_after_ns = eng_now_ns() + b;
    c->on_loop = false;
    c->run_ns = 0;
    c->cold = false;
    memset(&c->res, 0, sizeof c->res);
}

/* ... and the call goes to a worker, on a fresh instance (the one the run
 * used is spent). */
static void call_hand_off(srv_t *s, srv_call_t *c)
{
    loop_count(s, c->rev, SRV_RS_LOOP_HANDED_OFF);
    rt_pool_submit(s->pool, &c->job, true);
}

/* Whether r's next guest may run on the loop thread. */
static bool loop_may_run(srv_t *s, const srv_rev_t *r)
{
    if (!s->onloop || !r->mod || !rt_module_trial_safe(r->mod)) return false;
    uint64_t tick = uv_now(s->loop);
    if (tick != s->loop_tick) {
        s->loop_tick = tick;
        s->loop_spent_ns = 0;
    }
    if (s->loop_spent_ns >= SRV_LOOP_SHARE_NS) return false;
    if (r->loop_after_ns && eng_now_ns() < r->loop_after_ns) return false;
    /* A CPU limit smaller than a slice per period would be overrun. */
    return !r->cpu_limit_millis ||
           (uint64_t)r->cpu_limit_millis * (RT_CPU_PERIOD_NS / 1000u) >= s->loop_slice_ns;
}

static void call_done(rt_job_t *j)
{
    srv_call_t *c = j->ud;
    srv_t *s = c->srv;
    srv_rev_t *r = c->rev;
    if (c->on_loop && c->res.abandoned) {
        call_give_up(c);
        if (!c->aborted && !s->freeing) {
            call_hand_off(s, c);
            return;
        }
    } else if (c->on_loop) {
        r->loop_backoff_ns = 0;
        loop_count(s, r, SRV_RS_LOOP_RAN);
    }
    uint64_t now = eng_now_ns();
    call_undispatch(s, c, now);
    if (c->run_ns)
        srv_ext_account(r, c->res.cpu_ns, c->res.peak_memory_bytes, now - c->run_ns);
    r->refs++; /* keep r across srv_call_finish */
    const char *fname = r->fn->name;

    srv_call_count_cold(s, c);
    if (c->aborted) {
        srv_call_finish(s, c, 499, NULL, 0, NULL, 0);
    } else if (c->inst_failed) {
        if (now >= c->deadline_ns) {
            call_log(c, "wasmfn: timed out after %u ms (instantiating)", c->timeout_ms);
            srv_call_finish_text(s, c, 504, "function %s timed out after %u ms\n", fname,
                             c->timeout_ms);
        } else if (strstr(c->err, "cannot reserve") || strstr(c->err, "cannot commit") ||
                   strstr(c->err, "out of memory")) {
            /* The node, not the function, is short of memory or mappings:
             * worth retrying (docs/serving.md, "Node budget"). */
            call_log(c, "wasmfn: cannot instantiate: %s", c->err);
            srv_call_finish_text(s, c, 503, "function %s: no room for an instance: %s\n", fname,
                             c->err);
        } else {
            call_log(c, "wasmfn: cannot instantiate: %s", c->err);
            srv_call_finish_text(s, c, 502, "function %s failed to start: %s\n", fname, c->err);
        }
    } else if (c->res.trap == ENG_TRAP_DEADLINE) {
        call_log(c, "wasmfn: timed out after %u ms", c->timeout_ms);
        srv_call_finish_text(s, c, 504, "function %s timed out after %u ms\n", fname, c->timeout_ms);
    } else if (c->res.trap != ENG_OK && c->res.trap != ENG_TRAP_EXIT) {
        call_log(c, "wasmfn: trap: %s", c->res.message);
        srv_call_finish_text(s, c, 502, "function %s trapped: %s\n", fname, c->res.message);
    } else if (c->res.out_overflow) {
        call_log(c, "wasmfn: response larger than %u bytes", SRV_MAX_STDOUT);
        srv_call_finish_text(s, c, 502, "function %s wrote a response larger than %u bytes\n", fname,
                         SRV_MAX_STDOUT);
    } else if (!c->cgi_ok) {
        if (c->res.trap == ENG_TRAP_EXIT && c->res.exit_code != 0)
            call_log(c, "wasmfn: exited with code %d and no valid CGI response: %s",
                     c->res.exit_code, c->err);
        else
            call_log(c, "wasmfn: bad CGI response: %s", c->err);
        srv_call_finish_text(s, c, 502, "function %s returned a bad CGI response: %s\n", fname,
                         c->err);
    } else {
        if (c->res.trap == ENG_TRAP_EXIT && c->res.exit_code != 0)
            call_log(c, "wasmfn: exited with code %d", c->res.exit_code);
        srv_call_finish(s, c, c->cgi.status, c->cgi.headers, c->cgi.nheaders, c->cgi.body,
                    c->cgi.body_len);
    }
    srv_rev_pump(s, r);
    srv_rev_refill(s, r);
    srv_rev_gauges(s, r);
    srv_rev_unpin_if_idle(s, r);
    srv_rev_release(r);
}

void srv_call_dispatch(srv_t *s, srv_call_t *c)
{
    srv_rev_t *r = c->rev;
    uint64_t now = eng_now_ns();
    srv_rev_conc_update(r, now);
    r->busy++;
    c->state = CALL_DISPATCHED;
    list_push(&r->running, c);
    /* A warm instance becomes a busy one: the node's count stays. */
    c->inst = r->nwarm ? r->warm[--r->nwarm] : NULL;
    if (!c->inst) srv_node_add(s, r, 1);
    c->job.work = call_work;
    c->job.done = call_done;
    c->job.cpu_limit_millis = r->cpu_limit_millis;
    c->job.ud = c;
    c->on_loop = loop_may_run(s, r);
    if (c->on_loop) {
        rt_onloop_run(s->onloop, &c->job);
        s->loop_spent_ns += eng_now_ns() - now;
    } else rt_pool_submit(s->pool, &c->job, true);
    srv_rev_refill(s, r);
    srv_rev_gauges(s, r);
}

/* Puts c at the end of its revision's queue. */
static void call_enqueue(srv_t *s, srv_call_t *c)
{
    srv_rev_t *r = c->rev;
    srv_rev_conc_update(r, eng_now_ns());
    c->state = CALL_QUEUED;
    list_push(&r->queue, c);
    srv_rev_gauges(s, r);
}

void srv_call_admit(srv_t *s, srv_call_t *c)
{
    srv_rev_t *r = c->rev;
    uint32_t max = srv_rev_max_busy(r);
    int got = srv_rev_module_get(s, r);
    if (got < 0) {
        srv_call_finish_text(s, c, 503, "function %s: out of memory loading module %s\n",
                         r->fn->name, r->digest);
        return;
    }
    if (got == 0) {
        /* Waiting for the module: as many calls as could run, plus the
         * queue. (Nothing runs while it loads.) */
        uint64_t room = (max ? (uint64_t)max : UINT32_MAX) + s->queue_cap;
        if (r->queue.n >= room) {
            srv_call_finish_text(s, c, 503,
                             "function %s: its module is loading and %u requests are waiting\n",
                             r->fn->name, r->queue.n);
            return;
        }
        call_enqueue(s, c);
        return;
    }
    if (max && r->busy >= max) {
        if (r->queue.n >= s->queue_cap) {
            srv_call_finish_text(s, c, 503,
                             "function %s: all %u instances busy and %u requests queued\n",
                             r->fn->name, max, r->queue.n);
            return;
        }
        call_enqueue(s, c);
        return;
    }
    if (!r->nwarm && !srv_node_room(s, r, s->budget_instances) && !srv_node_reclaim(s, r)) {
        srv_call_finish_text(s, c, 503,
                         "function %s: the node is at its budget of %u live instances\n",
                         r->fn->name, s->budget_instances);
        return;
    }
    srv_call_dispatch(s, c);
}

/* A dispatched call that has not started is pulled back; returns true if
 * it was (the caller then answers it). */
static bool call_recall(srv_t *s, srv_call_t *c)
{
    if (!rt_pool_cancel(s->pool, &c->job)) return false;
    srv_rev_t *r = c->rev;
    call_undispatch(s, c, eng_now_ns());
    /* A warm instance it took is still unused: give it back. */
    if (c->inst && !r->retired && r->nwarm < r->warm_cap) {
        r->warm[r->nwarm++] = c->inst;
        c->inst = NULL;
        srv_node_add(s, r, 1);
    }
    return true;
}

void srv_call_on_abort(hs_req_t *req, void *ud)
{
    (void)req;
    srv_call_t *c = ud;
    srv_call_cancel(c->srv, c);
}

void srv_call_cancel(srv_t *s, srv_call_t *c)
{
    srv_rev_t *r = c->rev;
    c->aborted = true;
    if (c->state == CALL_QUEUED) {
        srv_rev_conc_update(r, eng_now_ns());
        srv_list_remove(&r->queue, c);
        r->refs++;
        srv_call_finish(s, c, 499, NULL, 0, NULL, 0);
        srv_rev_gauges(s, r);
        srv_rev_unpin_if_idle(s, r);
        srv_rev_release(r);
    } else if (c->state == CALL_DISPATCHED) {
        if (call_recall(s, c)) {
            r->refs++;
            srv_call_finish(s, c, 499, NULL, 0, NULL, 0);
            srv_rev_pump(s, r);
            srv_rev_gauges(s, r);
            srv_rev_unpin_if_idle(s, r);
            srv_rev_release(r);
        } else {
            rt_pool_interrupt(s->pool, &c->job);
        }
    }
}

/* Every SRV_SWEEP_MS: 504 for calls whose deadline passed while queued or
 * before a worker picked them up; interrupt running ones (their exec has
 * the same deadline, this only makes sure). */
void srv_on_sweep(uv_timer_t *t)
{
    srv_t *s = t->data;
    uint64_t now = eng_now_ns();
    for (srv_rev_t *r = s->revs, *rnext; r; r = rnext) {
        rnext = r->all_next;
        r->refs++;
        while (r->queue.head && r->queue.head->deadline_ns <= now) {
            srv_call_t *c = r->queue.head;
            srv_rev_conc_update(r, now);
            srv_list_remove(&r->queue, c);
            if (r->load) {
                call_log(c, "wasmfn: timed out after %u ms (waiting for module %s to load)",
                         c->timeout_ms, r->digest);
                srv_call_finish_text(s, c, 504,
                                 "function %s timed out after %u ms waiting for its module to "
                                 "load\n", r->fn->name, c->timeout_ms);
            } else {
                call_log(c, "wasmfn: timed out after %u ms (queued)", c->timeout_ms);
                srv_call_finish_text(s, c, 504,
                                 "function %s timed out after %u ms waiting for an instance\n",
                                 r->fn->name, c->timeout_ms);
            }
            srv_rev_gauges(s, r);
        }
        for (srv_call_t *c = r->running.head, *next; c; c = next) {
            next = c->next;
            if (c->deadline_ns > now) continue;
            if (call_recall(s, c)) {
                call_log(c, "wasmfn: timed out after %u ms (waiting for a worker)", c->timeout_ms);
                srv_call_finish_text(s, c, 504, "function %s timed out after %u ms\n", r->fn->name,
                                 c->timeout_ms);
                srv_rev_pump(s, r);
                srv_rev_gauges(s, r);
            } else if (!c->interrupted) {
                c->interrupted = true;
                rt_pool_interrupt(s->pool, &c->job);
            }
        }
        srv_rev_unpin_if_idle(s, r);
        rnext = r->all_next; /* read before r may be freed */
        srv_rev_release(r);
    }
}

/* ---- the drain's end ----------------------------------------------------- */

static void srv_on_drained(uv_timer_t *t)
{
    srv_t *s = t->data;
    void (*done)(void *) = s->drain_done;
    s->drain_done = NULL;
    if (done) done(s->drain_ud); /* may call srv_free */
}

/* A drain (srv_drain) ends when the data plane's port is closed and the
 * last call has been answered: srv_call_finish and serving.c ask here.
 * The callback runs from a timer of its own rather than from deep inside
 * a call's completion, so it may free everything. */
void srv_check_drained(srv_t *s)
{
    if (!s->draining || !s->http_closed || s->ncalls || !s->drain_done || s->freeing) return;
    uv_ref((uv_handle_t *)&s->drained);
    uv_timer_start(&s->drained, srv_on_drained, 0, 0);
}
