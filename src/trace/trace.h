/*
 * trace.h — OpenTelemetry traces: W3C trace context (traceparent,
 * tracestate), span records, a sampler, and an exporter that posts spans to
 * an OTLP/HTTP collector in the JSON encoding. Prefix: tr_.
 *
 * How it fits: the daemon makes one tr_tracer_t when `wasmfn serve
 * --otlp-endpoint URL` is given and hands it to the data plane and to
 * eventing; without the flag they get NULL and record nothing (a NULL
 * tracer is valid everywhere below). A span is built by its owner in a
 * tr_span_t of its own (a stack variable: nothing is allocated) and handed
 * over with tr_span_end, which copies it, already encoded as OTLP JSON,
 * into the tracer's bounded queue. That never blocks: when the queue is
 * full the span is dropped and counted (wasmfn_trace_spans_dropped_total).
 * One exporter thread takes batches from the queue and POSTs them to
 * URL/v1/traces with libcurl, retrying a bounded number of times.
 *
 * Sampling is parent-based: a span whose parent context came from a client
 * (a traceparent header, an event's traceparent extension) is recorded if
 * and only if the parent's sampled flag is set; a new trace is sampled with
 * the configured ratio (decided from its trace id, so every span of a trace
 * gets the same answer). An unsampled span still gets ids, so the context
 * propagates (with the sampled flag clear) to guests and sinks.
 *
 * Thread safety: tr_ctx_*, tr_span_* and tr_traceparent_* may be called on
 * any thread; a tr_span_t belongs to the thread that fills it.
 */
#ifndef WASMFN_TRACE_TRACE_H
#define WASMFN_TRACE_TRACE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/metrics.h"

/* ---- W3C trace context (context.c) -------------------------------------- */

#define TR_TRACEPARENT_LEN 55 /* "00-" 32 hex "-" 16 hex "-" 2 hex */
#define TR_TRACESTATE_MAX 512 /* longer tracestate headers are dropped */
#define TR_FLAG_SAMPLED 0x01

typedef struct tr_ctx {
    uint8_t trace_id[16];
    uint8_t span_id[8];
    uint8_t flags;         /* TR_FLAG_SAMPLED */
} tr_ctx_t;

/* Parses a traceparent header value (W3C Trace Context, level 1). Strict,
 * as the spec asks: version 00 must be exactly 55 characters; a higher
 * version may carry more after a '-'; version ff, upper-case hex, an
 * all-zero trace id or parent id, or any other deviation is invalid.
 * Returns 0 and fills *out (span_id = the parent id), or -1: then the
 * caller starts a new trace and ignores tracestate. */
int tr_traceparent_parse(const char *s, tr_ctx_t *out);
/* Writes "00-TRACEID-SPANID-FLAGS" (TR_TRACEPARENT_LEN chars and a NUL). */
void tr_traceparent_format(const tr_ctx_t *c, char out[TR_TRACEPARENT_LEN + 1]);
/* True when s is a tracestate header value worth passing on: at most
 * TR_TRACESTATE_MAX characters and 32 list members, each key=value with
 * the spec's character sets. */
bool tr_tracestate_valid(const char *s);
/* n random bytes, none of them guaranteed non-zero (ids: a fast per-thread
 * generator seeded from getrandom, not for secrets). */
void tr_random_bytes(uint8_t *out, size_t n);
/* Lower-case hex of n bytes into out (2n characters and a NUL). */
void tr_hex(const uint8_t *b, size_t n, char *out);
bool tr_ctx_sampled(const tr_ctx_t *c);

typedef struct tr_tracer tr_tracer_t;

/* The context of a new span. With a parent: its trace id and flags (the
 * parent-based sampler) and a fresh span id. Without one (NULL): a fresh
 * trace id, sampled by t's ratio (never when t is NULL). */
void tr_ctx_new(const tr_tracer_t *t, const tr_ctx_t *parent, tr_ctx_t *out);

/* ---- spans (span.c) ----------------------------------------------------- */

typedef enum {
    TR_KIND_INTERNAL = 1, /* OTLP's SpanKind numbers */
    TR_KIND_SERVER = 2,
    TR_KIND_CLIENT = 3,
    TR_KIND_PRODUCER = 4,
    TR_KIND_CONSUMER = 5,
} tr_kind_t;

typedef enum { TR_STATUS_UNSET = 0, TR_STATUS_OK = 1, TR_STATUS_ERROR = 2 } tr_status_t;

/* Output bytes (JSON) a span's parts may take; longer names, messages and
 * values are cut at a character boundary, and attributes beyond the room
 * are dropped (and counted in the span's droppedAttributesCount). */
#define TR_NAME_MAX 128
#define TR_STATUS_MAX 160
#define TR_ATTRS_MAX 1400
#define TR_ATTR_VALUE_MAX 256 /* output bytes of one string value */
#define TR_SPAN_JSON_MAX 2304 /* one encoded span: what a queue slot holds */

typedef struct tr_span {
    tr_tracer_t *tracer;      /* NULL: this span is not recorded */
    tr_ctx_t ctx;             /* the span's own context: propagate this one */
    uint8_t parent_id[8];     /* all zero: a root span */
    uint8_t kind, status;
    uint64_t start_unix_ns;
    char name[TR_NAME_MAX + 1];       /* JSON-escaped already */
    char message[TR_STATUS_MAX + 1];  /* JSON-escaped already */
    char attrs[TR_ATTRS_MAX];         /* ",{...}" per attribute */
    size_t attrs_len;
    uint32_t dropped_attrs;
} tr_span_t;

/* Starts span s with context ctx (from tr_ctx_new) whose parent span is
 * parent_id (8 bytes; NULL for a root) at start_unix_ns. The span is
 * recorded when t is not NULL and ctx is sampled. */
void tr_span_init(tr_span_t *s, tr_tracer_t *t, const tr_ctx_t *ctx, const uint8_t *parent_id,
                  const char *name, tr_kind_t kind, uint64_t start_unix_ns);
/* tr_ctx_new(t, parent) then tr_span_init with parent's span id: a child
 * span of parent, or a root when parent is NULL. */
void tr_span_start(tr_span_t *s, tr_tracer_t *t, const tr_ctx_t *parent, const char *name,
                   tr_kind_t kind, uint64_t start_unix_ns);
/* Attributes (OpenTelemetry semantic conventions: faas.name, ...). key is
 * a literal the caller controls; string values may come from anywhere. */
void tr_span_attr_str(tr_span_t *s, const char *key, const char *value);
void tr_span_attr_int(tr_span_t *s, const char *key, int64_t value);
void tr_span_attr_double(tr_span_t *s, const char *key, double value);
void tr_span_attr_bool(tr_span_t *s, const char *key, bool value);
void tr_span_set_status(tr_span_t *s, tr_status_t status, const char *message);
/* Ends s at end_unix_ns: encodes it and queues it for export (when it is
 * recorded). Never blocks; a full queue drops it and counts the drop. */
void tr_span_end(tr_span_t *s, uint64_t end_unix_ns);

/* Unix time in ns now, and of a CLOCK_MONOTONIC reading (eng_now_ns()). */
uint64_t tr_unix_now_ns(void);
uint64_t tr_unix_from_mono_ns(uint64_t mono_ns);

/* Outbound calls (a host API making an HTTP request for a guest): a CLIENT
 * span under the invocation's context `parent` (the guest's
 * HTTP_TRACEPARENT). tr_client_begin fills s and writes the traceparent to
 * send with the request into traceparent; tr_client_end records the answer
 * (status 0 and error: the request failed) and ends the span. */
void tr_client_begin(tr_span_t *s, tr_tracer_t *t, const tr_ctx_t *parent, const char *method,
                     const char *url, char traceparent[TR_TRACEPARENT_LEN + 1]);
void tr_client_end(tr_span_t *s, int status, const char *error);

/* ---- the tracer and its exporter (tracer.c) ----------------------------- */

#define TR_DEFAULT_QUEUE_SPANS 2048u
#define TR_BATCH_SPANS 512u           /* spans per POST at most */
#define TR_FLUSH_MS 1000u             /* a batch waits at most this long */
#define TR_EXPORT_ATTEMPTS 3          /* per batch, on a failure worth retrying */
#define TR_EXPORT_TIMEOUT_MS 5000L    /* per POST */

typedef struct tr_config {
    const char *endpoint;     /* "http://HOST:PORT[/PREFIX]": spans go to ENDPOINT/v1/traces */
    double sample_ratio;      /* of new traces, 0..1 */
    uint32_t queue_spans;     /* spans waiting for export at most; 0 = TR_DEFAULT_QUEUE_SPANS */
    const char *service_name; /* the resource's service.name; NULL = "wasmfn" */
    mx_registry_t *metrics;   /* may be NULL */
} tr_config_t;

/* Checks the configuration, allocates the queue and starts the exporter
 * thread. Returns NULL with a one-line message (naming the bad flag value)
 * on failure. */
tr_tracer_t *tr_tracer_new(const tr_config_t *c, char *err, size_t errlen);
/* Stops taking spans, exports what is queued (one attempt per batch,
 * about TR_EXPORT_TIMEOUT_MS at most in all), joins the thread and frees. */
void tr_tracer_free(tr_tracer_t *t);

#endif
