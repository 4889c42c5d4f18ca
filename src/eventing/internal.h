/*
 * internal.h — what eventing's files share among themselves (and with the
 * unit tests in tests/eventing/). Not part of the public interface.
 *
 *   cron.c        cron expressions and next-fire computation in a time zone
 *   duration.c    ISO 8601 and Go-style durations, retry backoff arithmetic
 *   cloudevent.c  the event type, CloudEvents HTTP binding and JSON format
 *   deliver.c     the delivery thread: HTTP POSTs with libcurl's multi API
 *   local.c       deliveries to Services of this process (no socket)
 *   consumer.c    a consumer thread per source/trigger: reads a feed (Redis
 *                 stream with a consumer group, or an in-memory queue),
 *                 delivers with retries, acks, dead-letters, scales
 *   eventing.c    ev_t and its parts (objects, apply, ping, broker, drain:
 *                 core.h); persistence in store/events.c
 */
#ifndef WASMFN_EVENTING_INTERNAL_H
#define WASMFN_EVENTING_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "common/metrics.h"
#include "eventing/eventing.h"

/* ---------------- durations (duration.c) ---------------- */

/* ISO 8601 duration ("PT0.5S", "P1DT2H", "PT1M30S", "P2W") in
 * milliseconds; Y counts 365 days and M (before T) 30 days. Returns -1 for
 * anything else, including negative or overflowing values. */
int64_t ev_iso_duration_ms(const char *s);

/* Go-style duration ("1h30m", "10s", "1.5s", "500ms") in milliseconds, as
 * used by "@every". Returns -1 when malformed, zero or overflowing. */
int64_t ev_go_duration_ms(const char *s);

typedef enum { EV_BACKOFF_EXPONENTIAL = 0, EV_BACKOFF_LINEAR = 1 } ev_backoff_t;

/* The wait before retry number `retry` (1 for the first retry), as
 * Knative states it: linear delay*retry, exponential delay*2^retry.
 * Saturates at one hour. */
int64_t ev_backoff_ms(ev_backoff_t policy, int64_t delay_ms, int retry);

/* ---------------- cron (cron.c) ---------------- */

typedef struct ev_cron {
    uint64_t sec, min;   /* bit n set: value n matches */
    uint32_t hour, dom;  /* dom bits 1..31 */
    uint16_t mon;        /* bits 1..12 */
    uint8_t dow;         /* bits 0..6, Sunday 0 */
    bool dom_star, dow_star, hour_star;
    int64_t every_ms;    /* "@every D": > 0, and the fields above are unused */
    char tz[64];         /* "" means UTC */
} ev_cron_t;

/* Parses a schedule: 5 fields (min hour dom mon dow) or 6 (sec first),
 * lists, ranges, steps, month and weekday names, "?" for dom/dow, macros
 * (@yearly @annually @monthly @weekly @daily @midnight @hourly), "@every
 * DURATION", and an optional "CRON_TZ=Zone " or "TZ=Zone " prefix. tz (may
 * be NULL or "") is the schedule's time zone unless the prefix names one.
 * Returns 0, or -1 with a message naming the bad field in err. */
int ev_cron_parse(const char *expr, const char *tz, ev_cron_t *c, char *err, size_t errlen);

/* The first fire time strictly after after_ms (Unix ms), in ms; -1 when
 * there is none within 5 years (e.g. "0 0 30 2 *"). For @every, the first
 * anchor_ms + k*every after after_ms (anchor_ms: the last fire, or the
 * start). Semantics at DST changes (the ones ISC cron has): a wall time
 * skipped by a spring-forward fires at the first instant after the gap, and
 * a wall time that occurs twice at a fall-back fires once, unless the hour
 * field is "*" (then every absolute time that matches fires). */
int64_t ev_cron_next(const ev_cron_t *c, int64_t after_ms, int64_t anchor_ms);

/* True when zone names a TZif file in the time zone database. */
bool ev_tz_valid(const char *zone);

/* ---------------- CloudEvents (cloudevent.c) ---------------- */

typedef struct ev_attr {
    char *name;  /* lower case a-z0-9 */
    char *value;
} ev_attr_t;

/* One event. Context attributes (specversion, id, source, type and the
 * optional and extension ones) live in attrs; datacontenttype too. */
typedef struct ev_event {
    ev_attr_t *attrs;
    size_t nattrs, cap;
    uint8_t *data;
    size_t data_len;
} ev_event_t;

ev_event_t *ev_event_new(void);
void ev_event_free(ev_event_t *e);
ev_event_t *ev_event_clone(const ev_event_t *e);
/* Roughly the memory e holds: data, attributes and their bookkeeping. */
size_t ev_event_bytes(const ev_event_t *e);
const char *ev_event_get(const ev_event_t *e, const char *name);
/* Sets (replaces) an attribute; value NULL removes it. 0 or -1 (OOM). */
int ev_event_set(ev_event_t *e, const char *name, const char *value);
int ev_event_set_data(ev_event_t *e, const void *data, size_t len);
/* Checks specversion 1.0, non-empty id/source/type, attribute names, and
 * the size limit (0: none). 0 or -1 with the reason in err. */
int ev_event_validate(const ev_event_t *e, size_t max_bytes, char *err, size_t errlen);

/* A header as the HTTP binding sees it. */
typedef struct ev_header {
    const char *name, *value;
} ev_header_t;

/* Reads an event from an HTTP message: structured mode when Content-Type
 * is application/cloudevents+json, binary mode when ce-specversion is
 * present. Validates it. Returns NULL with the reason in err. */
ev_event_t *ev_event_from_http(const ev_header_t *h, size_t nh, const uint8_t *body, size_t len,
                               size_t max_bytes, char *err, size_t errlen);
/* True when an HTTP message looks like it carries an event at all. */
bool ev_http_has_event(const ev_header_t *h, size_t nh);

/* Binary mode: "ce-NAME: VALUE" lines (values percent-encoded where the
 * binding asks) plus "Content-Type: ..." when datacontenttype is set, as a
 * malloc'd array of malloc'd "Name: value" strings; *n gets the count. */
char **ev_event_to_binary_headers(const ev_event_t *e, size_t *n);
void ev_strv_free(char **v, size_t n);

/* Structured mode (the JSON event format): malloc'd JSON text. data goes
 * as JSON when datacontenttype is JSON and the bytes parse, as a string
 * when it is text and valid UTF-8, else as data_base64. */
char *ev_event_to_json(const ev_event_t *e);
ev_event_t *ev_event_from_json(const char *json, size_t len, size_t max_bytes, char *err,
                               size_t errlen);

/* base64 (RFC 4648, with padding). */
char *ev_base64_encode(const uint8_t *p, size_t n);
/* Returns malloc'd bytes and their count, or NULL when malformed. */
uint8_t *ev_base64_decode(const char *s, size_t *n);

/* A new unique event id (random, UUID v4 form) into out[37]. */
void ev_uuid(char out[37]);
int64_t ev_now_ms(void);
int64_t ev_mono_ms(void);

/* ---------------- sinks and delivery specs ---------------- */

typedef enum {
    EV_SINK_NONE = 0,
    EV_SINK_SERVICE, /* ref to a Service: an in-process call (local.c) */
    EV_SINK_BROKER,  /* ref to a Broker: published internally */
    EV_SINK_HTTP,    /* uri http(s)://... */
    EV_SINK_REDIS,   /* uri redis://HOST:PORT/STREAM: XADD */
} ev_sink_kind_t;

typedef struct ev_sink {
    ev_sink_kind_t kind;
    char name[256];   /* service or broker */
    char url[1024];   /* http uri, or the redis uri as given */
    char host[256];   /* redis */
    int port;
    char stream[256];
} ev_sink_t;

typedef struct ev_delivery {
    int retry;               /* retries after the first attempt */
    ev_backoff_t policy;
    int64_t delay_ms;
    int64_t timeout_ms;      /* per attempt */
    ev_sink_t dead_letter;   /* kind NONE: failed events are dropped */
} ev_delivery_t;

/* Parses a sink object ({ref:{kind,name}} or {uri}) at path (for errors). */
struct cJSON;
int ev_sink_parse(const struct cJSON *j, const char *path, ev_sink_t *s, char *err, size_t errlen);
/* "redis://HOST:PORT[/STREAM]" -> parts; stream may be NULL. */
int ev_redis_url_parse(const char *url, char *host, size_t hostlen, int *port, char *stream,
                       size_t streamlen);
/* Parses a delivery object (NULL: defaults) at path. */
int ev_delivery_parse(const struct cJSON *j, const char *path, ev_delivery_t *d, char *err,
                      size_t errlen);

/* ---------------- the delivery thread (deliver.c) ---------------- */

typedef struct ev_deliverer ev_deliverer_t;

/* A 2xx answer that carries an event, not parsed yet (local.c hands it
 * over so that the loop thread parses nothing). */
typedef struct ev_raw_reply ev_raw_reply_t;
/* Parses r (then frees it): the reply event, or NULL (logged) when bad. */
ev_event_t *ev_raw_reply_parse(ev_raw_reply_t *r, size_t max_bytes);
void ev_raw_reply_free(ev_raw_reply_t *r);

/* The outcome of one HTTP attempt. */
typedef struct ev_attempt_result {
    int status;           /* HTTP status, 0 when the request failed */
    char error[256];      /* transport error, or "" */
    ev_event_t *reply;    /* a valid reply event in a 2xx response, or NULL;
                           * owned by the receiver */
    ev_raw_reply_t *raw;  /* or the reply still to parse (owned by the receiver) */
} ev_attempt_result_t;

/* done runs on the delivery thread; it must be quick (queue and signal). */
typedef void (*ev_attempt_done_fn)(void *ud, ev_attempt_result_t *r);

ev_deliverer_t *ev_deliverer_new(size_t max_event_bytes);
/* Queues one POST of e (copied) to url in binary mode, with a traceparent
 * header when traceparent is not NULL (the attempt's span). */
int ev_deliverer_post(ev_deliverer_t *d, const char *url, const ev_event_t *e, int64_t timeout_ms,
                      const char *traceparent, ev_attempt_done_fn done, void *ud);
/* Finishes the transfers under way, then stops and frees. */
void ev_deliverer_free(ev_deliverer_t *d);

/* A blocking POST (used for http dead-letter sinks, from consumer threads).
 * Returns the status or 0 with err. */
int ev_http_post_sync(const char *url, const ev_event_t *e, int64_t timeout_ms, char *err,
                      size_t errlen);

/* ---------------- Services of this process (local.c) ---------------- */

typedef struct ev_local ev_local_t;

/* On the loop thread: calls go through call (ev_config_t.service_call);
 * replies larger than max_reply_bytes are ignored. NULL when out of
 * memory. */
ev_local_t *ev_local_new(uv_loop_t *loop, ev_service_call_fn call, void *ud,
                         size_t max_reply_bytes);
/* Any thread: queues one attempt to deliver e (copied) to Service
 * `service`; done runs on the loop thread, quick as deliver.c's. -1 when
 * the queue is full (EV_LOCAL_MAX_QUEUED attempts), stopped or out of
 * memory. */
int ev_local_post(ev_local_t *l, const char *service, const ev_event_t *e, int64_t timeout_ms,
                  const char *traceparent, ev_attempt_done_fn done, void *ud);
/* A blocking ev_local_post (dead letters, from consumer threads): the
 * status, or 0 with err. Never on the loop thread. */
int ev_local_post_sync(ev_local_t *l, const char *service, const ev_event_t *e,
                       int64_t timeout_ms, char *err, size_t errlen);
/* Refuses new attempts and fails the queued ones (their done runs now,
 * on the calling thread). */
void ev_local_stop(ev_local_t *l);
/* Loop thread: stops, closes the handle, frees once closed. */
void ev_local_close(ev_local_t *l);

/* ---------------- consumers (consumer.c) ---------------- */

typedef struct ev_consumer ev_consumer_t;

typedef struct ev_filter {
    ev_attr_t *attrs; /* exact match of every one */
    size_t n;
} ev_filter_t;

bool ev_filter_match(const ev_filter_t *f, const ev_event_t *e);

typedef struct ev_consumer_config {
    bool is_trigger;          /* metrics label trigger= instead of source= */
    const char *name;
    /* Redis feed: address, stream, group, consumer; or memory when host is
     * NULL (events arrive with ev_consumer_push). */
    const char *host;
    int port;
    const char *stream;
    const char *group;
    const char *consumer;
    const char *start_id;     /* where a new group starts: "0" or "$" */
    int64_t claim_min_idle_ms;
    bool raw_entries;         /* RedisStreamSource: entries are any fields */
    const char *source_attr;  /* ce-source for raw entries */
    const ev_filter_t *filter;
    const char *reply_broker; /* triggers: where reply events go */
    ev_sink_t sink;
    ev_delivery_t delivery;
    int target;               /* backlog per parallel delivery (KEDA) */
    int max_parallel;         /* <= 0: from sink_max_scale, else 10 */
    /* External feeds (NATS JetStream, MQTT, RabbitMQ; sources.h): when ext
     * is set the consumer reads through ext_ops and owns ext (closed when it
     * stops, also when ev_consumer_start fails). host is NULL then. */
    const struct ev_feed_ops *ext_ops;
    void *ext;
} ev_consumer_config_t;

/* Everything a consumer needs from its surroundings, given once to
 * ev_consumer_start instead of calls back into ev_t: eventing.c fills one
 * at ev_new and it outlives every consumer (ev_free waits for them). Read
 * only after that, except *queue_bytes (atomic). */
struct redisContext;
typedef struct ev_consumer_ctx {
    ev_deliverer_t *deliverer;
    ev_local_t *local;        /* Service sinks in this process, or NULL: none */
    size_t max_event_bytes;
    size_t queue_max_bytes_per_trigger, queue_max_bytes;
    size_t *queue_bytes;      /* held by every memory feed together */
    const char *redis_host;   /* --redis, or NULL */
    int redis_port;
    /* Service sinks: their max-scale (ev_config_t's wiring). */
    int (*sink_max_scale)(void *ud, const char *name);
    void *sink_ud;
    /* Metric families, NULL without a registry. */
    mx_family_t *m_events, *m_src_backlog, *m_src_par, *m_trg_backlog, *m_trg_par;
    /* Publishes into a broker (reply events, Broker sinks), from consumer
     * threads; as ev_broker_publish. */
    int (*publish)(void *ud, const char *broker, const ev_event_t *e, struct redisContext *redis,
                   char *err, size_t errlen);
    /* A consumer thread ended (drain accounting); from that thread. */
    void (*exited)(void *ud);
    void *ud;                 /* for publish and exited */
    struct tr_tracer *tracer; /* delivery spans (trace.c), or NULL */
} ev_consumer_ctx_t;

ev_consumer_t *ev_consumer_start(const ev_consumer_ctx_t *ctx, const ev_consumer_config_t *cfg);
/* Memory feeds: queues a copy. Returns 0, or -1 with a one-line reason when
 * the queue is full (by count, by this consumer's bytes, or by the bytes
 * of every memory feed together: ev_queue_reserve) or out of memory. */
int ev_consumer_push(ev_consumer_t *c, const ev_event_t *e, char *err, size_t errlen);
/* Whether bytes more would fit this memory feed's own bounds now. */
bool ev_consumer_has_room(ev_consumer_t *c, size_t bytes);
/* Asks the thread to stop; it finishes in-flight attempts, then exits and
 * frees itself. forget: the object was deleted — drop its Redis consumer
 * group (triggers only: a source's group belongs to the user's stream). */
void ev_consumer_stop(ev_consumer_t *c, bool forget);
/* Backlog and parallelism now (for status). */
void ev_consumer_stats(ev_consumer_t *c, long *backlog, int *parallel, long *delivered,
                       long *dead_lettered);

/* trace.c: broker ingress gives an event without a traceparent extension
 * the request's traceparent (and tracestate) when tracing (t not NULL). */
struct tr_tracer;
void ev_trace_ingress(struct tr_tracer *t, ev_event_t *e, const hs_req_t *req);

/* ---------------- brokers (broker.c) ---------------- */

/* Publishes an event into a broker (reply events, sinks that are Broker
 * refs). Called from consumer threads. redis: a connection the caller owns
 * to the --redis server (may be NULL in memory mode). 0, or -1 or
 * EV_PUBLISH_FULL with err. */
struct redisContext;
#define EV_PUBLISH_FULL (-2) /* memory brokers: no room for it now (err says where) */
int ev_broker_publish(ev_t *ev, const char *broker, const ev_event_t *e, struct redisContext *redis,
                      char *err, size_t errlen);
/* Connects to Redis with a timeout; NULL with err. */
struct redisContext *ev_redis_connect(const char *host, int port, char *err, size_t errlen);

#endif
