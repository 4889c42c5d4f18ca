/*
 * consumer.h — a consumer's insides (ev_consumer_t, its items), shared by
 * consumer.c, feed.c, attempt.c, outcome.c, items.c and redis.c. Private to those files; the rest of
 * eventing sees ev_consumer_* in internal.h.
 */
#ifndef WASMFN_EVENTING_CONSUMER_H
#define WASMFN_EVENTING_CONSUMER_H

#include <cjson/cJSON.h>
#include <hiredis/hiredis.h>

#include "eventing/internal.h"
#include "trace/trace.h"

#define MEM_QUEUE_MAX 100000
#define RETRY_MAX 20000
#define DLQ_MARKER_TTL_S 604800

typedef struct item {
    struct item *next;            /* done list or retry list */
    struct item *live_prev, *live_next; /* every item of this consumer */
    struct ev_consumer *c;
    char id[64];                  /* stream entry id (or memory sequence) */
    ev_event_t *event;            /* NULL: a bad entry (reason in error) */
    size_t bytes;                 /* memory feeds: the event's share of mem_bytes */
    int attempts;
    bool to_dlq;                  /* the next step is the dead-letter write */
    int64_t due_ms;               /* retry time (monotonic) */
    int status;
    char error[256];
    char url[1024];
    ev_event_t *reply;
    /* The attempt under way (trace.c): its span's context, parent and
     * start, built into a span when it ends; traceparent is sent with it. */
    bool traced;
    tr_ctx_t tr_ctx;
    uint8_t tr_parent[8];
    uint64_t tr_start_ns;
    char traceparent[TR_TRACEPARENT_LEN + 1];
    /* external feeds (sources.h): the feed's handle of the message (a
     * natsMsg, an AMQP delivery tag, a queue row) and the feed's
     * connection generation it came on (stale tags are never acked) */
    void *msg;
    uint64_t tag;
    unsigned gen;
    ev_raw_reply_t *raw;          /* a reply still to parse (local.c) */
} item_t;

/* An external feed: a broker the consumer reads through a library of its
 * own (nats.c, rabbitmq.c, mqtt.c). Every call comes from the consumer's
 * thread; f is the feed object the consumer owns (ev_consumer_config_t.ext). */
typedef struct ev_feed_ops {
    const char *what; /* "nats", for log lines */
    /* (Re)connects; 0, or -1 with a one-line reason in err. */
    int (*connect)(void *f, ev_consumer_t *c, char *err, size_t len);
    bool (*up)(void *f); /* connected now */
    /* Takes at most max messages, waiting at most wait_ms for the first,
     * each through ev_cons_take. Returns how many, or -1 when the
     * connection was lost (up() turns false; connect() runs again). */
    int (*fetch)(void *f, ev_consumer_t *c, int max, int wait_ms);
    /* The event was delivered or dead-lettered: settle it at the broker. */
    void (*ack)(void *f, item_t *it);
    /* Optional: the broker redelivers it after delay_ms and counts the
     * attempts itself. True when it did (it->msg is released). */
    bool (*retry)(void *f, item_t *it, int64_t delay_ms);
    /* Optional: attempts exhausted and no deadLetterSink: hand it back to
     * the broker's own dead-lettering. True when it did. */
    bool (*reject)(void *f, item_t *it);
    /* The item goes away unsettled (stop, shutdown): free it->msg; the
     * broker redelivers it. */
    void (*release)(void *f, item_t *it);
    long (*backlog)(void *f, ev_consumer_t *c); /* -1: unknown now */
    /* Optional: the source was deleted (not replaced, not shut down): drop
     * what it keeps at the broker and on disk. Runs just before close. */
    void (*forget)(void *f);
    void (*close)(void *f);                      /* disconnects and frees f */
} ev_feed_ops_t;

struct ev_consumer {
    const ev_consumer_ctx_t *ctx; /* shared, outlives every consumer */
    /* configuration (immutable after start) */
    bool is_trigger, raw, memory;
    char name[256], host[256], stream[512], group[256], consumer[256], start_id[32];
    char attempts_key[800], source_attr[800], reply_broker[256];
    int port;
    int64_t claim_min_idle_ms;
    ev_filter_t filter;
    ev_sink_t sink;
    ev_delivery_t delivery;
    int target, max_parallel;
    const ev_feed_ops_t *ext_ops; /* external feeds: ops and the feed (owned) */
    void *ext;

    pthread_t thread;
    pthread_mutex_t mu; /* guards everything below up to the thread-only part */
    pthread_cond_t cv;
    bool stop, forget; /* forget: destroy the consumer group on the way out */
    item_t *done, *done_tail;
    ev_event_t **mem;   /* memory feed: ring of queued events */
    size_t mem_head, mem_len, mem_cap;
    size_t mem_bytes;   /* events pushed and not yet freed (queued or live items) */
    size_t mem_max_bytes; /* immutable */
    uint64_t mem_seq;
    long stat_backlog, stat_delivered, stat_dead;
    int stat_parallel;

    /* thread-only */
    redisContext *rc, *rc_sink, *rc_broker;
    item_t *retry;
    size_t nretry;
    int inflight;
    item_t *live;
    int64_t next_claim_ms, next_backlog_ms;
    long backlog;
    int parallel;
};

/* ---- shared between the consumer's files ---- */

/* items.c */
bool ev_cons_queue_reserve(const ev_consumer_ctx_t *x, size_t bytes);
void ev_cons_queue_release(const ev_consumer_ctx_t *x, size_t bytes);
int ev_cons_service_max_scale(const ev_consumer_ctx_t *x, const char *name);
void ev_cons_metric_backlog(const ev_consumer_ctx_t *x, bool is_trigger, const char *name,
                           double backlog, double parallel);
item_t *ev_cons_item_new(ev_consumer_t *c, const char *id);
void ev_cons_mem_release(ev_consumer_t *c, size_t bytes);
void ev_cons_item_free(item_t *it);
bool ev_cons_item_is_live(ev_consumer_t *c, const char *id);
void ev_cons_metric(ev_consumer_t *c, const char *outcome);
int ev_cons_max_attempts(const ev_consumer_t *c);

/* redis.c */
redisReply *ev_cons_cmd_argv(redisContext *rc, int argc, const char **argv, const size_t *lens);
redisReply *ev_cons_cmdv(redisContext *rc, const char **argv);
bool ev_cons_reply_ok(redisReply *r);
void ev_cons_conn_check(redisContext **rcp);

/* outcome.c */
void ev_cons_ack(ev_consumer_t *c, item_t *it);
redisContext *ev_cons_sink_conn(ev_consumer_t *c, const char *host, int port, char *err, size_t len);
int ev_cons_publish_to_broker(ev_consumer_t *c, const char *broker, const ev_event_t *e, char *err,
                             size_t len);
int ev_cons_xadd_event(redisContext *rc, const char *stream, const ev_event_t *e,
                      const char *const *extra, char *err, size_t len);
int ev_cons_dead_letter(ev_consumer_t *c, item_t *it, const char *reason);

/* ext.c: an external feed's message becomes an item and its first attempt.
 * e NULL: a bad message, dead-lettered at once with bad (the reason).
 * prior_attempts: attempts the broker says were made before (redeliveries).
 * msg, tag, gen: the feed's handle (item_t). Takes e. Returns 1, 0 when the
 * message is already live here (the caller releases msg), -1 out of memory. */
int ev_cons_take(ev_consumer_t *c, const char *id, ev_event_t *e, const char *bad,
                 int prior_attempts, void *msg, uint64_t tag, unsigned gen);

/* attempt.c */
void ev_cons_attempt(ev_consumer_t *c, item_t *it);
void ev_cons_handle_result(ev_consumer_t *c, item_t *it);

/* trace.c: an attempt's span. begin gives the event a trace when it has
 * none (its traceparent extension) and starts a CLIENT span under it;
 * end records the outcome (it->status, it->error) and ends it. */
void ev_trace_attempt_begin(ev_consumer_t *c, item_t *it);
void ev_trace_attempt_end(ev_consumer_t *c, item_t *it);

/* feed.c */
int ev_cons_read_group(ev_consumer_t *c, const char *from, int count, int block_ms);
void ev_cons_recover_own(ev_consumer_t *c);
void ev_cons_autoclaim(ev_consumer_t *c);
void ev_cons_ensure_group(ev_consumer_t *c);
long ev_cons_redis_backlog(ev_consumer_t *c);

#endif
