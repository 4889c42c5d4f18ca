/*
 * internal.h — what the trace subsystem's files share (and the unit tests
 * in tests/trace/). Not part of the public interface.
 *
 *   context.c  W3C trace context, ids, the sampler
 *   clock.c    Unix-time span clocks
 *   span.c     span records and their OTLP JSON encoding
 *   tracer.c   the bounded queue and the exporter thread (OTLP/HTTP)
 */
#ifndef WASMFN_TRACE_INTERNAL_H
#define WASMFN_TRACE_INTERNAL_H

#include "trace/trace.h"

/* The ratio new traces are sampled with (tracer.c). */
double tr_tracer_ratio(const tr_tracer_t *t);
/* Copies one encoded span into t's queue, or drops and counts it when the
 * queue is full or the tracer is stopping (tracer.c). */
void tr_queue_push(tr_tracer_t *t, const char *json, size_t len);
/* Writes s, ended at end_unix_ns, as an OTLP JSON span object into out;
 * returns its length, or -1 when it does not fit in cap (span.c). */
int tr_span_encode(const tr_span_t *s, uint64_t end_unix_ns, char *out, size_t cap);
/* The body of one export request: resourceSpans with one resource (the
 * service) and one scope holding the n spans given (each one encoded
 * span), malloc'd (tracer.c). */
char *tr_export_body(const char *service_name, const char *const *spans, const size_t *lens,
                     size_t n, size_t *len);

#endif
