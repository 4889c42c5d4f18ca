/*
 * trace.c — the spans of event deliveries (docs/observability.md).
 *
 * An event's trace lives in the event itself, in the CloudEvents
 * distributed tracing extension (the `traceparent` attribute, sent as
 * ce-traceparent): broker ingress fills it from the request's traceparent
 * header when the event has none, and the first delivery attempt of an
 * event still without one starts a new trace (a CONSUMER span named after
 * the source or trigger) and sets it. Every attempt is then a CLIENT span
 * under the event's context, and its POST carries the attempt's own
 * traceparent header, so the function's SERVER span on the data plane is
 * the attempt's child: retries of one event are siblings in one trace.
 *
 * The extension is set on the consumer's copy of the event; a stream
 * entry in Redis keeps what it was written with, so after a restart the
 * retries of an event that had none start a new trace.
 * (The ~70 bytes it adds to an event in a memory feed are not counted
 * against the feed's byte bound, which was charged when it was queued.)
 *
 * Runs on consumer threads (ev_consumer_ctx_t.tracer is shared and
 * thread-safe); the loop thread for ingress.
 */
#include <stdio.h>
#include <string.h>

#include "eventing/consumer.h"

/* The event's context from its traceparent extension; -1 when it has none
 * or a malformed one. */
static int event_ctx(const ev_event_t *e, tr_ctx_t *out)
{
    return tr_traceparent_parse(ev_event_get(e, "traceparent"), out);
}

void ev_trace_ingress(struct tr_tracer *t, ev_event_t *e, const hs_req_t *req)
{
    tr_ctx_t c;
    if (!t || event_ctx(e, &c) == 0) return;
    const char *tp = hs_req_header(req, "traceparent");
    if (tr_traceparent_parse(tp, &c) != 0) return;
    char v[TR_TRACEPARENT_LEN + 1];
    tr_traceparent_format(&c, v);
    ev_event_set(e, "traceparent", v);
    const char *ts = hs_req_header(req, "tracestate");
    ev_event_set(e, "tracestate", ts && tr_tracestate_valid(ts) ? ts : NULL);
}

void ev_trace_attempt_begin(ev_consumer_t *c, item_t *it)
{
    struct tr_tracer *t = c->ctx->tracer;
    it->traced = false;
    it->traceparent[0] = '\0';
    if (!t || !it->event) return;
    uint64_t now = tr_unix_now_ns();
    tr_ctx_t ev_ctx;
    if (event_ctx(it->event, &ev_ctx) != 0) {
        /* The event's trace starts here. */
        tr_span_t root;
        tr_span_start(&root, t, NULL, c->name, TR_KIND_CONSUMER, now);
        tr_span_attr_str(&root, "cloudevents.event_id", ev_event_get(it->event, "id"));
        tr_span_attr_str(&root, "cloudevents.event_type", ev_event_get(it->event, "type"));
        tr_span_attr_str(&root, "cloudevents.event_source", ev_event_get(it->event, "source"));
        ev_ctx = root.ctx;
        char v[TR_TRACEPARENT_LEN + 1];
        tr_traceparent_format(&ev_ctx, v);
        if (ev_event_set(it->event, "traceparent", v) != 0) return;
        tr_span_end(&root, now);
    }
    tr_ctx_new(t, &ev_ctx, &it->tr_ctx);
    memcpy(it->tr_parent, ev_ctx.span_id, 8);
    it->tr_start_ns = now;
    it->traced = true;
    tr_traceparent_format(&it->tr_ctx, it->traceparent);
}

void ev_trace_attempt_end(ev_consumer_t *c, item_t *it)
{
    if (!it->traced) return;
    it->traced = false;
    char name[300];
    snprintf(name, sizeof name, "%s deliver", c->name);
    tr_span_t s;
    tr_span_init(&s, c->ctx->tracer, &it->tr_ctx, it->tr_parent, name, TR_KIND_CLIENT,
                 it->tr_start_ns);
    tr_span_attr_str(&s, "cloudevents.event_id", ev_event_get(it->event, "id"));
    tr_span_attr_str(&s, "cloudevents.event_type", ev_event_get(it->event, "type"));
    tr_span_attr_int(&s, "wasmfn.delivery.attempt", it->attempts);
    tr_span_attr_int(&s, "wasmfn.delivery.max_attempts", ev_cons_max_attempts(c));
    if (it->url[0]) tr_span_attr_str(&s, "url.full", it->url);
    if (it->status) tr_span_attr_int(&s, "http.response.status_code", it->status);
    if (it->status < 200 || it->status > 299) {
        char msg[300];
        if (it->status) snprintf(msg, sizeof msg, "HTTP %d", it->status);
        else snprintf(msg, sizeof msg, "%s", it->error[0] ? it->error : "delivery failed");
        tr_span_set_status(&s, TR_STATUS_ERROR, msg);
    }
    tr_span_end(&s, tr_unix_now_ns());
}
