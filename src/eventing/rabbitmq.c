/*
 * rabbitmq.c — RabbitmqSource (Knative's sources.knative.dev/v1alpha1
 * shape): a consumer on a RabbitMQ queue (librabbitmq) with manual acks and
 * a prefetch window, as an external feed of the consumer thread.
 *
 * At least once: a delivery is acked (basic.ack) only after the sink
 * answered 2xx or the event was written to the dead-letter sink. Retries
 * hold the message (unacked, so it counts against the prefetch) while the
 * consumer waits out the backoff; if the daemon dies, the broker requeues
 * every unacked message and delivers it again. Attempts after such a
 * redelivery continue from the queue's x-delivery-count header where the
 * broker keeps one (quorum queues); a classic queue only says
 * "redelivered", so there the count starts again.
 *
 * Dead letters: with spec.delivery.deadLetterSink the event goes there and
 * is acked. Without one, an event whose attempts are used up is rejected
 * (basic.nack, requeue=false), so a queue with a dead-letter exchange
 * (x-dead-letter-exchange, or a policy) routes it there; a queue without
 * one drops it, as RabbitMQ does.
 *
 * A broker that goes silent (no RST) is noticed by TCP keepalive and a TCP
 * user timeout (RABBIT_KEEP*), not by AMQP heartbeats (see rabbit_connect).
 *
 * Connection loss: the feed reconnects (the consumer retries every second)
 * and bumps its generation; delivery tags of the old connection are never
 * acked on the new one (they would name other messages) — the broker
 * requeued those messages and delivers them again: a duplicate, never a
 * loss or a double ack.
 */
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>

#include <amqp.h>
#include <amqp_tcp_socket.h>

#include "eventing/consumer.h"
#include "eventing/sources.h"

#define RABBIT_MAX_HEADERS 64
/* A silent peer (host gone, a partition: no RST) is noticed by TCP itself:
 * keepalive probes after 30 s idle, every 10 s, 3 unanswered end it; data
 * not acknowledged for 60 s (an ack sent into the void) ends it too. */
#define RABBIT_KEEPIDLE_S 30
#define RABBIT_KEEPINTVL_S 10
#define RABBIT_KEEPCNT 3
#define RABBIT_USER_TIMEOUT_MS 60000

const char *const ev_rabbit_fields[] = {"broker", "rabbitmqResourcesConfig", "sink", "delivery",
                                        NULL};

typedef struct rabbit_feed {
    char url[1024];   /* amqp://USER:PASS@HOST:PORT/VHOST (kept for reconnects) */
    char where[300];  /* host:port, for messages (no credentials) */
    char queue[256], exchange[256];
    bool predeclared;
    int prefetch;
    size_t max_bytes;
    char source[800];
    amqp_connection_state_t conn;
    bool up;
    unsigned gen; /* bumped per connection: tags of older ones are stale */
} rabbit_feed_t;

static const cJSON *resources(const cJSON *spec)
{
    return cJSON_GetObjectItemCaseSensitive(spec, "rabbitmqResourcesConfig");
}

static int parallelism_of(const cJSON *spec)
{
    const cJSON *p = cJSON_GetObjectItemCaseSensitive(resources(spec), "parallelism");
    return cJSON_IsNumber(p) ? (int)p->valuedouble : 0;
}

int ev_rabbit_check(const cJSON *spec, char *err, size_t errlen)
{
    const char *b = ev_src_str(spec, "broker");
    if (!b || strncmp(b, "amqp://", 7) != 0 || strlen(b) >= 1000) {
        snprintf(err, errlen, "spec.broker: required, like amqp://USER:PASSWORD@HOST:5672/VHOST");
        return -1;
    }
    char copy[1024];
    snprintf(copy, sizeof copy, "%s", b);
    struct amqp_connection_info ci;
    if (amqp_parse_url(copy, &ci) != AMQP_STATUS_OK) {
        snprintf(err, errlen, "spec.broker: not an amqp:// URL");
        return -1;
    }
    const cJSON *rc = resources(spec);
    if (!cJSON_IsObject(rc)) {
        snprintf(err, errlen, "spec.rabbitmqResourcesConfig: required, with queueName");
        return -1;
    }
    static const char *const known[] = {"queueName", "exchangeName", "predeclared", "parallelism",
                                        "vhost", NULL};
    for (const cJSON *it = rc->child; it; it = it->next) {
        bool ok = false;
        for (int i = 0; known[i]; i++)
            ok = ok || strcmp(it->string, known[i]) == 0;
        if (!ok) {
            snprintf(err, errlen, "spec.rabbitmqResourcesConfig.%.60s: unknown field", it->string);
            return -1;
        }
    }
    if (ev_ext_string(rc, "queueName", 250, true, err, errlen) ||
        ev_ext_string(rc, "exchangeName", 250, false, err, errlen)) {
        char tmp[256];
        snprintf(tmp, sizeof tmp, "%s", err + 5); /* "spec." -> the full path */
        snprintf(err, errlen, "spec.rabbitmqResourcesConfig.%s", tmp);
        return -1;
    }
    const cJSON *pre = cJSON_GetObjectItemCaseSensitive(rc, "predeclared");
    if (pre && !cJSON_IsBool(pre)) {
        snprintf(err, errlen, "spec.rabbitmqResourcesConfig.predeclared: must be true or false");
        return -1;
    }
    const cJSON *par = cJSON_GetObjectItemCaseSensitive(rc, "parallelism");
    if (par && (!cJSON_IsNumber(par) || par->valuedouble < 1 || par->valuedouble > 1000 ||
                par->valuedouble != (int)par->valuedouble)) {
        snprintf(err, errlen, "spec.rabbitmqResourcesConfig.parallelism: an integer 1..1000");
        return -1;
    }
    const char *vh = ev_src_str(rc, "vhost");
    if (vh && strcmp(vh, ci.vhost) != 0 && strcmp(ci.vhost, "/") != 0) {
        snprintf(err, errlen, "spec.rabbitmqResourcesConfig.vhost: \"%.60s\" differs from the "
                              "one in spec.broker", vh);
        return -1;
    }
    return 0;
}

static void rabbit_teardown(rabbit_feed_t *f, bool graceful)
{
    if (f->conn) {
        if (graceful && f->up)
            amqp_connection_close(f->conn, AMQP_REPLY_SUCCESS);
        amqp_destroy_connection(f->conn);
    }
    f->conn = NULL;
    f->up = false;
}

static bool rabbit_up(void *fp)
{
    return ((rabbit_feed_t *)fp)->up;
}

/* An RPC's outcome as one line; "" when it succeeded. */
static void reply_text(amqp_rpc_reply_t r, char *out, size_t len)
{
    out[0] = 0;
    switch (r.reply_type) {
    case AMQP_RESPONSE_NORMAL:
        return;
    case AMQP_RESPONSE_NONE:
        snprintf(out, len, "no reply");
        return;
    case AMQP_RESPONSE_LIBRARY_EXCEPTION:
        snprintf(out, len, "%s", amqp_error_string2(r.library_error));
        return;
    case AMQP_RESPONSE_SERVER_EXCEPTION:
        if (r.reply.id == AMQP_CHANNEL_CLOSE_METHOD) {
            amqp_channel_close_t *m = r.reply.decoded;
            snprintf(out, len, "%.*s", (int)m->reply_text.len, (char *)m->reply_text.bytes);
        } else if (r.reply.id == AMQP_CONNECTION_CLOSE_METHOD) {
            amqp_connection_close_t *m = r.reply.decoded;
            snprintf(out, len, "%.*s", (int)m->reply_text.len, (char *)m->reply_text.bytes);
        } else {
            snprintf(out, len, "server error (method %08x)", r.reply.id);
        }
        return;
    }
}

static int rabbit_connect(void *fp, ev_consumer_t *c, char *err, size_t len)
{
    rabbit_feed_t *f = fp;
    (void)c;
    rabbit_teardown(f, false);
    char copy[1024], why[256] = "";
    snprintf(copy, sizeof copy, "%s", f->url);
    struct amqp_connection_info ci;
    amqp_default_connection_info(&ci);
    amqp_parse_url(copy, &ci); /* checked at apply */
    f->conn = amqp_new_connection();
    amqp_socket_t *sock = f->conn ? amqp_tcp_socket_new(f->conn) : NULL;
    struct timeval tv = {2, 0};
    if (!sock) {
        snprintf(why, sizeof why, "out of memory");
        goto fail;
    }
    int st = amqp_socket_open_noblock(sock, ci.host, ci.port, &tv);
    if (st != AMQP_STATUS_OK) {
        snprintf(why, sizeof why, "%s", amqp_error_string2(st));
        goto fail;
    }
    struct timeval rpc = {5, 0};
    amqp_set_rpc_timeout(f->conn, &rpc);
    /* AMQP heartbeats off: librabbitmq sends them only from inside its own
     * calls, and the thread makes none while every delivery slot is busy, so
     * the broker would close a healthy connection. TCP keepalive instead. */
    int fd = amqp_socket_get_sockfd(sock), on = 1, idle = RABBIT_KEEPIDLE_S,
        intvl = RABBIT_KEEPINTVL_S, cnt = RABBIT_KEEPCNT, uto = RABBIT_USER_TIMEOUT_MS;
    setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof on);
    setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof idle);
    setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof intvl);
    setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof cnt);
    setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &uto, sizeof uto);
    amqp_rpc_reply_t r = amqp_login(f->conn, ci.vhost, 0, 131072, 0, AMQP_SASL_METHOD_PLAIN,
                                    ci.user, ci.password);
    reply_text(r, why, sizeof why);
    if (why[0])
        goto fail;
    f->up = true;
    /* Channel 1 consumes; channel 2 answers backlog questions (a passive
     * declare of a missing queue closes its channel, not the consumer's). */
    for (amqp_channel_t ch = 1; ch <= 2; ch++) {
        amqp_channel_open(f->conn, ch);
        reply_text(amqp_get_rpc_reply(f->conn), why, sizeof why);
        if (why[0])
            goto fail;
    }
    amqp_bytes_t q = amqp_cstring_bytes(f->queue);
    if (!f->predeclared) {
        amqp_queue_declare(f->conn, 1, q, 0, 1, 0, 0, amqp_empty_table);
        reply_text(amqp_get_rpc_reply(f->conn), why, sizeof why);
        if (!why[0] && f->exchange[0]) {
            amqp_queue_bind(f->conn, 1, q, amqp_cstring_bytes(f->exchange),
                            amqp_cstring_bytes("#"), amqp_empty_table);
            reply_text(amqp_get_rpc_reply(f->conn), why, sizeof why);
        }
        if (why[0])
            goto fail;
    }
    amqp_basic_qos(f->conn, 1, 0, (uint16_t)f->prefetch, 0);
    reply_text(amqp_get_rpc_reply(f->conn), why, sizeof why);
    if (!why[0]) {
        amqp_basic_consume(f->conn, 1, q, amqp_empty_bytes, 0, 0, 0, amqp_empty_table);
        reply_text(amqp_get_rpc_reply(f->conn), why, sizeof why);
    }
    if (why[0])
        goto fail;
    f->gen++;
    return 0;
fail:
    snprintf(err, len, "rabbitmq %s queue %s: %s", f->where, f->queue, why);
    rabbit_teardown(f, false);
    return -1;
}

/* String-valued headers of a message (the strings point into it). */
static size_t msg_headers(const amqp_basic_properties_t *p, ev_header_t *h, char (*names)[64],
                          char (*vals)[512], int *delivery_count)
{
    size_t n = 0;
    if (p->_flags & AMQP_BASIC_CONTENT_TYPE_FLAG) {
        snprintf(vals[n], 512, "%.*s", (int)p->content_type.len, (char *)p->content_type.bytes);
        h[n] = (ev_header_t){"Content-Type", vals[n]};
        n++;
    }
    if (!(p->_flags & AMQP_BASIC_HEADERS_FLAG))
        return n;
    for (int i = 0; i < p->headers.num_entries && n < RABBIT_MAX_HEADERS; i++) {
        const amqp_table_entry_t *e = &p->headers.entries[i];
        snprintf(names[n], 64, "%.*s", (int)e->key.len, (char *)e->key.bytes);
        if (strcmp(names[n], "x-delivery-count") == 0) {
            /* Quorum queues: earlier deliveries (an int of some width). */
            const amqp_field_value_t *v = &e->value;
            long long dc = 0;
            switch (v->kind) {
            case AMQP_FIELD_KIND_I64: dc = v->value.i64; break;
            case AMQP_FIELD_KIND_U64: dc = (long long)v->value.u64; break;
            case AMQP_FIELD_KIND_I32: dc = v->value.i32; break;
            case AMQP_FIELD_KIND_U32: dc = v->value.u32; break;
            case AMQP_FIELD_KIND_I16: dc = v->value.i16; break;
            default: break;
            }
            *delivery_count = dc < 0 ? 0 : dc > 100000 ? 100000 : (int)dc;
            continue;
        }
        if (e->value.kind != AMQP_FIELD_KIND_UTF8 && e->value.kind != AMQP_FIELD_KIND_BYTES)
            continue;
        snprintf(vals[n], 512, "%.*s", (int)e->value.value.bytes.len,
                 (char *)e->value.value.bytes.bytes);
        h[n] = (ev_header_t){names[n], vals[n]};
        n++;
    }
    return n;
}

static int take_envelope(rabbit_feed_t *f, ev_consumer_t *c, amqp_envelope_t *env)
{
    const amqp_basic_properties_t *p = &env->message.properties;
    static __thread ev_header_t h[RABBIT_MAX_HEADERS + 1];
    static __thread char names[RABBIT_MAX_HEADERS + 1][64], vals[RABBIT_MAX_HEADERS + 1][512];
    int dc = 0;
    size_t nh = msg_headers(p, h, names, vals, &dc);
    char id[160], tag[32];
    if ((p->_flags & AMQP_BASIC_MESSAGE_ID_FLAG) && p->message_id.len && p->message_id.len < 128)
        snprintf(id, sizeof id, "%.*s", (int)p->message_id.len, (char *)p->message_id.bytes);
    else
        ev_uuid(id); /* no id of its own: a redelivery gets a new one */
    int64_t time_ms = (p->_flags & AMQP_BASIC_TIMESTAMP_FLAG) ? (int64_t)p->timestamp * 1000 : 0;
    char err[256] = "";
    ev_event_t *e = ev_ext_event(id, f->source, "dev.knative.rabbitmq.event", NULL, time_ms, h, nh,
                                 env->message.body.bytes, env->message.body.len, f->max_bytes, err,
                                 sizeof err);
    /* The item's key is the delivery tag: unique on this connection. */
    snprintf(tag, sizeof tag, "r%u-%llu", f->gen, (unsigned long long)env->delivery_tag);
    int r = ev_cons_take(c, tag, e, err, dc, NULL, env->delivery_tag, f->gen);
    if (r < 0)
        amqp_basic_nack(f->conn, 1, env->delivery_tag, 0, 1);
    return r > 0;
}

static int rabbit_fetch(void *fp, ev_consumer_t *c, int max, int wait_ms)
{
    rabbit_feed_t *f = fp;
    if (!f->up)
        return -1; /* the backlog query just now lost the connection */
    int n = 0;
    for (int i = 0; i < max; i++) {
        struct timeval tv = {0, 0};
        if (i == 0 && wait_ms > 0)
            tv = (struct timeval){wait_ms / 1000, (wait_ms % 1000) * 1000};
        amqp_maybe_release_buffers(f->conn);
        amqp_envelope_t env;
        amqp_rpc_reply_t r = amqp_consume_message(f->conn, &env, &tv, 0);
        if (r.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION &&
            r.library_error == AMQP_STATUS_TIMEOUT)
            break;
        if (r.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION &&
            r.library_error == AMQP_STATUS_UNEXPECTED_STATE) {
            /* Not a delivery: a close (queue deleted, broker stopping) or
             * a cancel ends this connection; anything else is skipped. */
            amqp_frame_t fr;
            if (amqp_simple_wait_frame(f->conn, &fr) != AMQP_STATUS_OK ||
                (fr.frame_type == AMQP_FRAME_METHOD &&
                 (fr.payload.method.id == AMQP_CHANNEL_CLOSE_METHOD ||
                  fr.payload.method.id == AMQP_CONNECTION_CLOSE_METHOD ||
                  fr.payload.method.id == AMQP_BASIC_CANCEL_METHOD))) {
                fprintf(stderr, "eventing: rabbitmq %s queue %s: the broker closed the channel\n",
                        f->where, f->queue);
                rabbit_teardown(f, false);
                return -1;
            }
            continue;
        }
        if (r.reply_type != AMQP_RESPONSE_NORMAL) {
            char why[256];
            reply_text(r, why, sizeof why);
            fprintf(stderr, "eventing: rabbitmq %s queue %s: %s\n", f->where, f->queue, why);
            rabbit_teardown(f, false);
            return -1;
        }
        n += take_envelope(f, c, &env);
        amqp_destroy_envelope(&env);
    }
    return n;
}

static void rabbit_ack(void *fp, item_t *it)
{
    rabbit_feed_t *f = fp;
    if (!f->up || it->gen != f->gen)
        return; /* stale tag: the broker requeued the message */
    if (amqp_basic_ack(f->conn, 1, it->tag, 0) != AMQP_STATUS_OK)
        rabbit_teardown(f, false);
}

static bool rabbit_reject(void *fp, item_t *it)
{
    rabbit_feed_t *f = fp;
    if (f->up && it->gen == f->gen && amqp_basic_nack(f->conn, 1, it->tag, 0, 0) != AMQP_STATUS_OK)
        rabbit_teardown(f, false);
    return true;
}

static void rabbit_release(void *fp, item_t *it)
{
    (void)fp;
    (void)it; /* nothing held beyond the tag: closing the connection requeues */
}

static long rabbit_backlog(void *fp, ev_consumer_t *c)
{
    rabbit_feed_t *f = fp;
    if (!f->up)
        return -1;
    amqp_queue_declare_ok_t *ok = amqp_queue_declare(f->conn, 2, amqp_cstring_bytes(f->queue), 1,
                                                     0, 0, 0, amqp_empty_table);
    if (!ok) {
        amqp_rpc_reply_t r = amqp_get_rpc_reply(f->conn);
        if (r.reply_type == AMQP_RESPONSE_SERVER_EXCEPTION &&
            r.reply.id == AMQP_CHANNEL_CLOSE_METHOD) {
            /* The queue is gone: answer the close, reopen channel 2. */
            amqp_channel_close_ok_t cok = {0};
            amqp_send_method(f->conn, 2, AMQP_CHANNEL_CLOSE_OK_METHOD, &cok);
            amqp_channel_open(f->conn, 2);
        } else if (r.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION) {
            rabbit_teardown(f, false);
        }
        return -1;
    }
    /* Ready in the queue + delivered to us and not settled (in flight or
     * waiting for a retry): "lag + pending". */
    return (long)ok->message_count + c->inflight + (long)c->nretry;
}

static void rabbit_close(void *fp)
{
    rabbit_feed_t *f = fp;
    rabbit_teardown(f, true);
    free(f);
}

static const ev_feed_ops_t rabbit_ops = {
    .what = "rabbitmq",
    .connect = rabbit_connect,
    .up = rabbit_up,
    .fetch = rabbit_fetch,
    .ack = rabbit_ack,
    .reject = rabbit_reject,
    .release = rabbit_release,
    .backlog = rabbit_backlog,
    .close = rabbit_close,
};

int ev_rabbit_feed(const ev_source_args_t *a, const ev_delivery_t *d, ev_source_feed_t *out,
                   char *err, size_t errlen)
{
    (void)d;
    rabbit_feed_t *f = calloc(1, sizeof *f);
    if (!f) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    snprintf(f->url, sizeof f->url, "%s", ev_src_str(a->spec, "broker"));
    char copy[1024];
    snprintf(copy, sizeof copy, "%s", f->url);
    struct amqp_connection_info ci;
    amqp_default_connection_info(&ci);
    amqp_parse_url(copy, &ci);
    snprintf(f->where, sizeof f->where, "%s:%d", ci.host, ci.port);
    const cJSON *rc = resources(a->spec);
    snprintf(f->queue, sizeof f->queue, "%s", ev_src_str(rc, "queueName"));
    const char *ex = ev_src_str(rc, "exchangeName");
    snprintf(f->exchange, sizeof f->exchange, "%s", ex ? ex : "");
    const cJSON *pre = cJSON_GetObjectItemCaseSensitive(rc, "predeclared");
    f->predeclared = cJSON_IsTrue(pre);
    int par = parallelism_of(a->spec);
    /* Held retries count against the prefetch too: leave room for them. */
    f->prefetch = par > 0 ? par * 2 : 100;
    f->max_bytes = a->max_event_bytes;
    snprintf(f->source, sizeof f->source, "amqp://%s/%s", f->where, f->queue);
    out->ops = &rabbit_ops;
    out->feed = f;
    snprintf(out->source, sizeof out->source, "%s", f->source);
    out->max_parallel = par;
    return 0;
}
