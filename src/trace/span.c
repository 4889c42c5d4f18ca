/*
 * span.c — building a span record and encoding it as one OTLP JSON span
 * object (opentelemetry-proto's trace.proto under the OTLP JSON mapping:
 * traceId and spanId as lower-case hex strings, times as decimal strings
 * of Unix nanoseconds, enums as numbers, int64 values as strings).
 *
 * Everything is written into fixed buffers inside tr_span_t, escaped as it
 * is added, so a span costs no allocation and its encoding is bounded by
 * TR_SPAN_JSON_MAX (the size of a queue slot).
 */
#include "trace/trace.h"
#include "trace/internal.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "common/jsonstr.h"

/* Escapes s into out (cap bytes of room, then a NUL), cut at a character
 * boundary. */
static void escape_into(char *out, size_t cap, const char *s)
{
    size_t n = s ? cm_json_escape(s, strlen(s), out, cap, NULL) : 0;
    out[n] = '\0';
}

void tr_span_init(tr_span_t *s, tr_tracer_t *t, const tr_ctx_t *ctx, const uint8_t *parent_id,
                  const char *name, tr_kind_t kind, uint64_t start_unix_ns)
{
    s->tracer = t && tr_ctx_sampled(ctx) ? t : NULL;
    s->ctx = *ctx;
    if (parent_id) memcpy(s->parent_id, parent_id, 8);
    else memset(s->parent_id, 0, 8);
    s->kind = (uint8_t)kind;
    s->status = TR_STATUS_UNSET;
    s->start_unix_ns = start_unix_ns;
    s->message[0] = '\0';
    s->attrs_len = 0;
    s->dropped_attrs = 0;
    if (s->tracer) escape_into(s->name, TR_NAME_MAX, name);
    else s->name[0] = '\0';
}

void tr_span_start(tr_span_t *s, tr_tracer_t *t, const tr_ctx_t *parent, const char *name,
                   tr_kind_t kind, uint64_t start_unix_ns)
{
    tr_ctx_t c;
    tr_ctx_new(t, parent, &c);
    tr_span_init(s, t, &c, parent ? parent->span_id : NULL, name, kind, start_unix_ns);
}

/* Appends ",{"key":KEY,"value":{TYPE:" ... the caller's value ... "}}". The
 * whole attribute goes in or, when it does not fit, none of it. */
static void attr_add(tr_span_t *s, const char *key, const char *type, const char *value,
                     bool quote)
{
    if (!s->tracer) return;
    char k[128];
    escape_into(k, sizeof k - 1, key);
    size_t need = strlen(k) + strlen(type) + strlen(value) + 32;
    if (need > TR_ATTRS_MAX - s->attrs_len) {
        s->dropped_attrs++;
        return;
    }
    int n = snprintf(s->attrs + s->attrs_len, TR_ATTRS_MAX - s->attrs_len,
                     ",{\"key\":\"%s\",\"value\":{\"%s\":%s%s%s}}", k, type, quote ? "\"" : "",
                     value, quote ? "\"" : "");
    if (n > 0 && (size_t)n < TR_ATTRS_MAX - s->attrs_len) s->attrs_len += (size_t)n;
    else s->dropped_attrs++;
}

void tr_span_attr_str(tr_span_t *s, const char *key, const char *value)
{
    if (!s->tracer) return;
    char v[TR_ATTR_VALUE_MAX + 1];
    escape_into(v, TR_ATTR_VALUE_MAX, value ? value : "");
    attr_add(s, key, "stringValue", v, true);
}

void tr_span_attr_int(tr_span_t *s, const char *key, int64_t value)
{
    char v[24];
    snprintf(v, sizeof v, "%" PRId64, value);
    attr_add(s, key, "intValue", v, true); /* int64 is a string in proto3 JSON */
}

void tr_span_attr_double(tr_span_t *s, const char *key, double value)
{
    char v[40];
    if (isfinite(value)) {
        snprintf(v, sizeof v, "%.17g", value);
        attr_add(s, key, "doubleValue", v, false);
    } else {
        snprintf(v, sizeof v, "%s", isnan(value) ? "NaN" : value > 0 ? "Infinity" : "-Infinity");
        attr_add(s, key, "doubleValue", v, true);
    }
}

void tr_span_attr_bool(tr_span_t *s, const char *key, bool value)
{
    attr_add(s, key, "boolValue", value ? "true" : "false", false);
}

void tr_span_set_status(tr_span_t *s, tr_status_t status, const char *message)
{
    s->status = (uint8_t)status;
    if (s->tracer) escape_into(s->message, TR_STATUS_MAX, message);
}

int tr_span_encode(const tr_span_t *s, uint64_t end_unix_ns, char *out, size_t cap)
{
    char tid[33], sid[17], pid[17];
    tr_hex(s->ctx.trace_id, 16, tid);
    tr_hex(s->ctx.span_id, 8, sid);
    tr_hex(s->parent_id, 8, pid);
    bool root = strcmp(pid, "0000000000000000") == 0;
    if (end_unix_ns < s->start_unix_ns) end_unix_ns = s->start_unix_ns;
    int n = snprintf(out, cap,
                     "{\"traceId\":\"%s\",\"spanId\":\"%s\"%s%s%s,\"name\":\"%s\",\"kind\":%u,"
                     "\"startTimeUnixNano\":\"%" PRIu64 "\",\"endTimeUnixNano\":\"%" PRIu64 "\","
                     "\"attributes\":[%s],\"droppedAttributesCount\":%u,"
                     "\"status\":{\"code\":%u%s%s%s}}",
                     tid, sid, root ? "" : ",\"parentSpanId\":\"", root ? "" : pid,
                     root ? "" : "\"", s->name, (unsigned)s->kind, s->start_unix_ns, end_unix_ns,
                     s->attrs_len ? s->attrs + 1 : "", s->dropped_attrs, (unsigned)s->status,
                     s->message[0] ? ",\"message\":\"" : "", s->message,
                     s->message[0] ? "\"" : "");
    return n > 0 && (size_t)n < cap ? n : -1;
}

void tr_span_end(tr_span_t *s, uint64_t end_unix_ns)
{
    if (!s->tracer) return;
    char json[TR_SPAN_JSON_MAX];
    int n = tr_span_encode(s, end_unix_ns, json, sizeof json);
    if (n > 0) tr_queue_push(s->tracer, json, (size_t)n);
    s->tracer = NULL; /* ended: a second end records nothing */
}

/* ---- outbound calls ------------------------------------------------------ */

void tr_client_begin(tr_span_t *s, tr_tracer_t *t, const tr_ctx_t *parent, const char *method,
                     const char *url, char traceparent[TR_TRACEPARENT_LEN + 1])
{
    tr_span_start(s, t, parent, method ? method : "HTTP", TR_KIND_CLIENT, tr_unix_now_ns());
    tr_span_attr_str(s, "http.request.method", method);
    tr_span_attr_str(s, "url.full", url);
    tr_traceparent_format(&s->ctx, traceparent);
}

void tr_client_end(tr_span_t *s, int status, const char *error)
{
    if (status > 0) tr_span_attr_int(s, "http.response.status_code", status);
    if (status <= 0 || status >= 400) {
        char msg[64];
        if (status > 0) snprintf(msg, sizeof msg, "HTTP %d", status);
        tr_span_set_status(s, TR_STATUS_ERROR, status > 0 ? msg : error);
    }
    tr_span_end(s, tr_unix_now_ns());
}
