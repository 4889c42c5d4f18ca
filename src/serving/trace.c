/*
 * trace.c — what a call tells observers: its trace context (W3C
 * traceparent honoured on the way in, passed to the guest as
 * HTTP_TRACEPARENT), its spans when it ends (OpenTelemetry's FaaS
 * conventions), and the Server-Timing header of its answer. All on the
 * loop thread; the worker only stamps guest_ns and guest_end_ns.
 *
 * A call's time line, every stamp from eng_now_ns():
 *
 *   start_ns            arrival on the data plane
 *   start_ns + load_ns  its revision's module is loaded (load_ns 0: it was)
 *   run_ns              a worker takes the call
 *   run_ns + cold_ns    a fresh instance is ready (cold_ns 0: warm)
 *   guest_ns..guest_end_ns  the guest runs
 *   now                 the answer is handed to the connection
 *
 * so queue = run_ns - start_ns - load_ns, cold = load_ns + cold_ns and
 * run = guest_end_ns - guest_ns never add up to more than now - start_ns.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/strcopy.h"
#include "serving/plane.h"

/* faas.trigger: events arrive as CloudEvents over HTTP (binary mode, or
 * structured with their own content type); a PingSource's are timer
 * events, every other source's pubsub. */
static const char *call_trigger(const hs_req_t *req)
{
    const char *type = hs_req_header(req, "ce-type");
    const char *ctype = hs_req_header(req, "Content-Type");
    if (!type && !(ctype && strncasecmp(ctype, "application/cloudevents", 23) == 0))
        return "http";
    return type && strcmp(type, "dev.knative.sources.ping") == 0 ? "timer" : "pubsub";
}

void srv_call_trace_start(srv_t *s, srv_call_t *c, const hs_req_t *req)
{
    cm_strcopy(c->method, sizeof c->method, req->method);
    const char *target = req->target ? req->target : "";
    cm_strncopy(c->url_path, sizeof c->url_path, target, strcspn(target, "?"));
    cm_strcopy(c->client_addr, sizeof c->client_addr, req->remote_addr);
    c->trigger = call_trigger(req);
    if (c->inv) {
        cm_strcopy(c->invocation_id, sizeof c->invocation_id, srv_inv_id(c->inv));
    } else {
        /* Not a syscall per request: the ids only need to be unique. */
        uint8_t rnd[SRV_INV_ID_LEN / 2];
        tr_random_bytes(rnd, sizeof rnd);
        tr_hex(rnd, sizeof rnd, c->invocation_id);
    }
    const char *tp = hs_req_header(req, "traceparent");
    c->tr_has_parent = tr_traceparent_parse(tp, &c->tr_parent) == 0;
    c->trace_id[0] = '\0';
    if (!s->tracer) {
        /* Nothing recorded: the guest sees the client's headers as sent;
         * log lines still carry the client's trace id. */
        if (c->tr_has_parent) tr_hex(c->tr_parent.trace_id, 16, c->trace_id);
        return;
    }
    tr_ctx_new(s->tracer, c->tr_has_parent ? &c->tr_parent : NULL, &c->tr_ctx);
    tr_hex(c->tr_ctx.trace_id, 16, c->trace_id);
    char tp_out[TR_TRACEPARENT_LEN + 1];
    tr_traceparent_format(&c->tr_ctx, tp_out);
    memcpy(stpcpy(c->traceparent_env, "HTTP_TRACEPARENT="), tp_out, sizeof tp_out);
    srv_cgi_env_put(c->env, &c->nenv, c->traceparent_env);
    /* tracestate belongs to the client's trace: without a valid parent it
     * is not parsed (W3C), and a malformed one is not passed on. */
    const char *ts = hs_req_header(req, "tracestate");
    if (ts && (!c->tr_has_parent || !tr_tracestate_valid(ts)))
        srv_cgi_env_put(c->env, &c->nenv, "HTTP_TRACESTATE");
}

/* The phases of a call (see the time line above), in ns; 0 for those it
 * did not reach. */
typedef struct call_phases {
    uint64_t queue, load, cold, run;
} call_phases_t;

static call_phases_t call_phases(const srv_call_t *c, uint64_t now_ns)
{
    call_phases_t p = {0};
    uint64_t dispatched = c->run_ns ? c->run_ns : now_ns;
    p.load = c->load_ns;
    if (dispatched > c->start_ns + p.load) p.queue = dispatched - c->start_ns - p.load;
    if (c->run_ns) p.cold = c->cold_ns;
    if (c->guest_ns && c->guest_end_ns > c->guest_ns) p.run = c->guest_end_ns - c->guest_ns;
    return p;
}

/* "NAME;dur=MS" with ms to 3 decimals (the nearest µs) at o, which has
 * room (at most 28 bytes); returns the end. Integer digits, not printf's
 * %.3f: this runs for every response, and formatting doubles was 2% of
 * the daemon's time serving a hello (docs/benchmarks.md). */
static char *timing_put(char *o, const char *name, uint64_t ns)
{
    uint64_t us = ns / 1000 + (ns % 1000 >= 500);
    char digits[24], *d = digits + sizeof digits;
    for (int i = 0; i < 4 || us; i++) {
        if (i == 3) *--d = '.';
        *--d = (char)('0' + us % 10);
        us /= 10;
    }
    o = stpcpy(o, name);
    o = stpcpy(o, ";dur=");
    memcpy(o, d, (size_t)(digits + sizeof digits - d));
    return o + (digits + sizeof digits - d);
}

void srv_call_server_timing(const srv_call_t *c, uint64_t now_ns, char out[SRV_TIMING_LEN])
{
    call_phases_t p = call_phases(c, now_ns);
    char *o = timing_put(out, "queue", p.queue);
    o = timing_put(stpcpy(o, ", "), "cold", p.load + p.cold);
    o = timing_put(stpcpy(o, ", "), "run", p.run);
    *o = '\0';
}

static void child_span(srv_t *s, srv_call_t *c, const char *name, uint64_t from_mono,
                       uint64_t len_ns, uint64_t mono_to_unix)
{
    tr_span_t sp;
    tr_span_start(&sp, s->tracer, &c->tr_ctx, name, TR_KIND_INTERNAL, from_mono + mono_to_unix);
    tr_span_end(&sp, from_mono + len_ns + mono_to_unix);
}

void srv_call_trace_end(srv_t *s, srv_call_t *c, int status, uint64_t now_ns)
{
    if (!s->tracer || !tr_ctx_sampled(&c->tr_ctx)) return;
    srv_rev_t *r = c->rev;
    /* One offset for the whole call, so its spans nest exactly. */
    uint64_t to_unix = tr_unix_from_mono_ns(now_ns) - now_ns;
    call_phases_t p = call_phases(c, now_ns);

    if (p.load) child_span(s, c, "module load", c->start_ns, p.load, to_unix);
    child_span(s, c, "queue", c->start_ns + p.load, p.queue, to_unix);
    if (c->run_ns && c->cold) child_span(s, c, "instantiate", c->run_ns, p.cold, to_unix);
    if (p.run) child_span(s, c, "run", c->guest_ns, p.run, to_unix);

    char name[SRV_NAME_MAX + 32];
    snprintf(name, sizeof name, "%s /fn/%s", c->method, r->fn->name);
    tr_span_t sp;
    tr_span_init(&sp, s->tracer, &c->tr_ctx, c->tr_has_parent ? c->tr_parent.span_id : NULL, name,
                 TR_KIND_SERVER, c->start_ns + to_unix);
    tr_span_attr_str(&sp, "faas.name", r->fn->name);
    tr_span_attr_str(&sp, "faas.version", r->name);
    tr_span_attr_bool(&sp, "faas.coldstart", c->cold);
    tr_span_attr_str(&sp, "faas.invocation_id", c->invocation_id);
    tr_span_attr_str(&sp, "faas.trigger", c->trigger ? c->trigger : "http");
    tr_span_attr_str(&sp, "http.request.method", c->method);
    tr_span_attr_int(&sp, "http.response.status_code", c->aborted ? 499 : status);
    if (c->url_path[0]) tr_span_attr_str(&sp, "url.path", c->url_path);
    if (c->client_addr[0]) tr_span_attr_str(&sp, "client.address", c->client_addr);
    if (c->inv) tr_span_attr_bool(&sp, "wasmfn.async", true);
    /* A server span is in error for 5xx answers only (semantic
     * conventions: a 4xx is the client's fault). */
    if (status >= 500) {
        char msg[64];
        snprintf(msg, sizeof msg, "HTTP %d", status);
        tr_span_set_status(&sp, TR_STATUS_ERROR, msg);
    }
    tr_span_end(&sp, now_ns + to_unix);
}
