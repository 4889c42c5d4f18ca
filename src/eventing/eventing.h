/*
 * eventing.h — event-driven functions: CloudEvents 1.0 over HTTP, sources
 * (PingSource cron schedules, RedisStreamSource consumer groups), Broker and
 * Trigger, delivery with retries, backoff and dead-letter sinks, scaling of
 * delivery parallelism by backlog (KEDA's model). Prefix: ev_.
 *
 * The daemon owns one ev_t. Everything in this header is called on the
 * thread that runs the uv loop given in ev_config_t; eventing does its
 * blocking work (HTTP deliveries with libcurl, Redis with hiredis) on its own
 * threads and never blocks the loop, except for short SQLite writes when an
 * object is applied or a PingSource fires.
 *
 * Persistence: applied objects and each PingSource's last fire time live in
 * DATA/eventing.db (SQLite, WAL), a database of eventing's own beside the
 * registry's wasmfn.db. With --redis, broker events live in Redis streams
 * (wasmfn:broker:NAME) and survive a restart; without it brokers are in
 * memory and accepted-but-undelivered events are lost with the process.
 */
#ifndef WASMFN_EVENTING_EVENTING_H
#define WASMFN_EVENTING_EVENTING_H

#include <stddef.h>
#include <cjson/cJSON.h>
#include <uv.h>

#include "http/http.h"
#include "common/metrics.h"

typedef struct ev ev_t;

/* Service sinks are functions of this process (ev_config_t.service_call).
 * done reports how the function answered, on the loop thread: its status,
 * headers and body (valid during the callback only), or status 0 with a
 * one-line reason as the body when it could not be called (no such
 * service). The shape of srv_call_done_fn, so the daemon passes it on. */
typedef void (*ev_service_done_fn)(void *ctx, int status, const hs_header_t *headers,
                                   size_t nheaders, const void *body, size_t len);
/* Calls Service `service` with one event as the data plane would serve
 * `POST /fn/SERVICE/` carrying it in binary content mode: the ce-* and
 * Content-Type headers, the data as the body (valid until done runs), the
 * attempt's timeout. Called on the loop thread; done must run exactly
 * once, on the loop thread, possibly before service_call returns. */
typedef void (*ev_service_call_fn)(void *ud, const char *service, const hs_header_t *headers,
                                   size_t nheaders, const uint8_t *body, size_t len,
                                   uint32_t timeout_ms, ev_service_done_fn done, void *ctx);

typedef struct ev_config {
    uv_loop_t *loop;      /* the daemon's loop; ev_ calls happen on its thread */
    const char *data_dir; /* DATA: eventing keeps DATA/eventing.db */
    const char *redis_url; /* "redis://HOST:PORT" from --redis, or NULL (brokers
                            * in memory) */
    /* Deliveries to a sink `ref` to a Service: an in-process call (no
     * socket, no delivery thread; local.c). NULL: such attempts fail
     * ("no Services here") and are retried. */
    ev_service_call_fn service_call;
    void *sink_ud;            /* for service_call and sink_max_scale */
    /* Optional: the max-scale of a Service (caps a source's delivery
     * parallelism, DESIGN.md §6); NULL or a return <= 0 means 10. Called from
     * eventing's threads. */
    int (*sink_max_scale)(void *ud, const char *service_name);
    mx_registry_t *metrics; /* may be NULL (no metrics) */
    size_t max_event_bytes; /* 0: 1 MiB; larger events are rejected (400) */
    /* Bounds on the bytes of events held in memory (brokers without
     * --redis, PingSources): queued, in flight or waiting for a retry, per
     * trigger or source and for all of them together. An event beyond
     * either is refused: ingress answers 503 with Retry-After.
     * 0: the defaults EV_QUEUE_BYTES_PER_TRIGGER, EV_QUEUE_BYTES. */
    size_t max_queue_bytes_per_trigger;
    size_t max_queue_bytes;
    /* Spans of deliveries (trace/trace.h; docs/observability.md): each
     * attempt a CLIENT span under the event's trace, from its traceparent
     * extension (set at the source when missing). NULL: none recorded and
     * no traceparent set. */
    struct tr_tracer *tracer;
} ev_config_t;

#define EV_QUEUE_BYTES_PER_TRIGGER ((size_t)64 << 20)
#define EV_QUEUE_BYTES ((size_t)256 << 20)

/* Opens DATA/eventing.db, registers eventing's metric families, and starts
 * every object applied before (sources resume where they stopped; a
 * PingSource does not replay ticks missed while the daemon was down).
 * Returns NULL and a one-line message in err on failure. */
ev_t *ev_new(const ev_config_t *c, char *err, size_t errlen);

/* Applies one manifest document (the YAML's shape as JSON) of kind
 *   sources.knative.dev/v1 PingSource,
 *   sources.knative.dev/v1alpha1 RedisStreamSource,
 *   eventing.knative.dev/v1 Broker or Trigger.
 * Returns 0 and writes the answer's JSON into out
 *   {"kind":K,"name":N,"created":true|false,"warnings":[...]}
 * (created is false when an identical object existed), or returns -1 and
 * writes a one-line error naming the field ("spec.schedule: ...") into out.
 * The object is persisted before 0 is returned. */
int ev_apply(ev_t *ev, const cJSON *doc, char *out, size_t len);

/* True when ev_apply handles documents of this apiVersion/kind. */
int ev_handles_kind(const char *api_version, const char *kind);

/* Deletes an object; kind is "PingSource", "RedisStreamSource", "Broker"
 * or "Trigger" (case-insensitive). Returns 0, or -1 when there is none. */
int ev_delete(ev_t *ev, const char *kind, const char *name);

/* Every object as a JSON array of
 *   {"kind":K,"apiVersion":A,"name":N,"spec":{...},"status":{...}}
 * malloc'd; the caller frees. */
char *ev_list_json(ev_t *ev);

/* The data plane routes POST /events/BROKER here (binary or structured
 * CloudEvent). Answers 202 once the event is accepted (in Redis when
 * --redis is given), 400 {"error":REASON} for a bad CloudEvent, 404 for an
 * unknown broker, 405 for another method, 503 when Redis is unreachable or
 * eventing is draining, 503 with Retry-After when a memory broker's
 * trigger (or all of them together) holds its bound of queued bytes. The response may be sent later, from the loop. */
void ev_broker_ingress(ev_t *ev, const char *broker, hs_req_t *req);

/* Stops sources and ingress, lets in-flight delivery attempts finish
 * (attempts waiting for a retry stay pending in Redis and are picked up
 * after the restart), closes eventing's loop handles, then calls done(ud)
 * on the loop thread. */
void ev_drain(ev_t *ev, void (*done)(void *ud), void *ud);

/* The first time schedule expr (a PingSource schedule: 5 or 6 fields,
 * macros, @every, CRON_TZ=) fires strictly after after_ms (Unix ms) in
 * time zone tz (NULL or "" = UTC): Unix ms, -1 when it never fires within
 * 5 years, -2 when expr or tz is bad (then err says which field). Any
 * thread. */
int64_t ev_cron_next_fire(const char *expr, const char *tz, int64_t after_ms, char *err,
                          size_t errlen);

/* Frees everything. Call after ev_drain's done ran. Without a drain it
 * stops the threads itself; the loop must then run once more so the
 * handles' close callbacks release the rest. */
void ev_free(ev_t *ev);

#endif
