/*
 * sources.h — the sources that read a broker through its own client
 * library: NatsJetStreamSource (nats.c, libnats), MqttSource (mqtt.c,
 * libmosquitto) and RabbitmqSource (rabbitmq.c, librabbitmq). Each is an
 * external feed (ev_feed_ops_t in consumer.h) under the same consumer
 * thread as RedisStreamSource, so retries, backoff, dead letters,
 * parallelism by backlog and metrics are the consumer's; a feed only
 * reads, settles (ack, nak, reject) and measures its backlog. ext.c holds
 * what the three share. Private to src/eventing/.
 */
#ifndef WASMFN_EVENTING_SOURCES_H
#define WASMFN_EVENTING_SOURCES_H

#include <cjson/cJSON.h>

#include "eventing/internal.h"

struct ev_feed_ops;

/* What a source is built from (apply.c fills it). */
typedef struct ev_source_args {
    const char *name;        /* the object's metadata.name */
    const cJSON *spec;       /* checked by the kind's ev_*_check */
    const char *data_dir;    /* the daemon's --data (MQTT keeps its queue there) */
    const char *node;        /* this daemon's consumer name (wasmfn-HOSTNAME) */
    size_t max_event_bytes;
} ev_source_args_t;

/* A built feed: ops, the feed object (owned by the consumer once started),
 * the CloudEvents source attribute, and a parallelism cap the kind's spec
 * gives (0: none). */
typedef struct ev_source_feed {
    const struct ev_feed_ops *ops;
    void *feed;
    char source[800];
    int max_parallel;
} ev_source_feed_t;

/* Per kind: the spec fields it knows (unknown ones are warned about),
 * a check of a spec (0, or -1 with a message naming the field), and the
 * feed of a checked spec (0, or -1 with err). */
extern const char *const ev_nats_fields[];
int ev_nats_check(const cJSON *spec, char *err, size_t errlen);
int ev_nats_feed(const ev_source_args_t *a, const ev_delivery_t *d, ev_source_feed_t *out,
                 char *err, size_t errlen);

extern const char *const ev_mqtt_fields[];
int ev_mqtt_check(const cJSON *spec, char *err, size_t errlen);
int ev_mqtt_feed(const ev_source_args_t *a, const ev_delivery_t *d, ev_source_feed_t *out,
                 char *err, size_t errlen);

extern const char *const ev_rabbit_fields[];
int ev_rabbit_check(const cJSON *spec, char *err, size_t errlen);
int ev_rabbit_feed(const ev_source_args_t *a, const ev_delivery_t *d, ev_source_feed_t *out,
                   char *err, size_t errlen);

/* ---- ext.c ---- */

/* A string field of o, or NULL. */
static inline const char *ev_src_str(const cJSON *o, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* The CloudEvent of a broker message. A message that carries an event
 * (ce-specversion header, or Content-Type application/cloudevents+json)
 * is that event. Otherwise: id, source, type as given, subject (the
 * CloudEvents attribute: the topic or subject the message came on), time
 * (Unix ms, 0: none), Content-Type header -> datacontenttype, every other
 * header whose lower-cased name is a valid extension name (a-z0-9, at
 * most 20, not a context attribute) -> that extension, body -> data.
 * NULL with the reason in err (larger than max_bytes, malformed). */
ev_event_t *ev_ext_event(const char *id, const char *source, const char *type, const char *subject,
                         int64_t time_ms, const ev_header_t *h, size_t nh, const void *body,
                         size_t len, size_t max_bytes, char *err, size_t errlen);

/* Servers: a string, or a list of strings, at field; each "SCHEME://HOST:PORT"
 * (or "HOST:PORT"). Fills up to max host/port pairs; returns how many, or -1
 * with err. */
int ev_ext_servers(const cJSON *v, const char *field, const char *scheme, int dflt_port,
                   char (*hosts)[256], int *ports, int max, char *err, size_t errlen);

/* A spec field that must be a non-empty string of at most max bytes when
 * present (required: also when absent). 0 or -1 with err. */
int ev_ext_string(const cJSON *spec, const char *field, size_t max, bool required, char *err,
                  size_t errlen);

#endif
