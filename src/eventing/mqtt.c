/*
 * mqtt.c — MqttSource: a QoS 1 subscription in a persistent session
 * (libmosquitto, MQTT 3.1.1 or 5), optionally shared ($share/GROUP/TOPIC),
 * as an external feed of the consumer thread.
 *
 * MQTT has no "ack after processing": a QoS 1 message belongs to the client
 * once it sends PUBACK. libmosquitto sends that PUBACK itself, so the feed
 * runs the library's loop by hand (mosquitto_threaded_set: packets are
 * queued, not written, until we call mosquitto_loop_write) and keeps this
 * order for every read:
 *
 *   read packets -> append the messages to the source's durable queue
 *   (store/msgqueue.h: one SQLite transaction, fsync'd) -> write, which
 *   sends their PUBACKs.
 *
 * A kill -9 before the commit loses nothing: no PUBACK left, and the broker
 * redelivers the messages to the persistent session (clean_session=false,
 * a stable client id; MQTT 5: session expiry "never") when we reconnect. A
 * kill -9 after it loses nothing either: the queue is on disk, and a
 * restarted source delivers what it holds before anything new. A message
 * leaves the queue once its event was delivered or dead-lettered, so
 * delivery is at least once. Failed attempts are recorded in the queue
 * before each retry, so a restart continues the count (an attempt cut
 * short by the crash itself is not counted).
 *
 * Deleting the source (forget) ends its session at the broker (a
 * clean-session connect under the same client id, then DISCONNECT: the
 * broker drops the subscription and what it queued for it) and removes the
 * queue file with what it still held. A replacement (apply of a changed
 * spec) or a new source of the same name waits until the old feed has let
 * go of the queue file (queue_claim), so the two never share it and the
 * forget of one never ends the session of the next.
 *
 * Bounds: the feed stops reading from the broker while its queue holds
 * MQTT_QUEUE_MAX messages (the broker keeps the rest, up to its own
 * max_queued_messages); a message larger than the daemon's event limit is
 * queued without its body and dead-lettered with the reason.
 */
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <mosquitto.h>
#include <mqtt_protocol.h>

#include "eventing/consumer.h"
#include "eventing/sources.h"
#include "store/msgqueue.h"

#define MQTT_MAX_SERVERS 8
#define MQTT_QUEUE_MAX 10000 /* messages held on disk before we stop reading */
#define MQTT_READ_MAX 1000   /* packets read per pump: bounds a batch */
#define MQTT_KEEPALIVE_S 30

const char *const ev_mqtt_fields[] = {"servers", "topic",    "group", "clientId",
                                      "protocolVersion", "sink", "delivery", NULL};

typedef struct mqtt_feed {
    char hosts[MQTT_MAX_SERVERS][256];
    int ports[MQTT_MAX_SERVERS], nservers, server;
    char topic[256], sub[400], client_id[300];
    int version; /* MQTT_PROTOCOL_V311 or MQTT_PROTOCOL_V5 */
    char qpath[1200];
    size_t max_bytes;
    char source[800];
    struct mosquitto *m;
    bool connected, conn_done;
    bool forgetting;             /* connecting only to end the session */
    bool claimed;                /* holds qpath in the claims (queue_claim) */
    int conn_rc;
    st_mq_t *q;
    long stored;                 /* rows in the queue */
    uint64_t taken;              /* highest seq handed to the consumer */
    st_mq_msg_t *batch;          /* received, not yet committed (owned copies) */
    size_t nbatch, capbatch;
    bool batch_oom;
    uint64_t *dels;              /* settled, not yet removed */
    size_t ndels, capdels;
    ev_consumer_t *c;            /* during a take */
} mqtt_feed_t;

/* The queue files open in this process: a feed claims its file before it
 * opens it and lets go after closing (and, when forgetting, removing) it.
 * Guarded by claims_mu; a handful of entries, so a list. */
typedef struct claim {
    struct claim *next;
    char path[1200];
} claim_t;
static pthread_mutex_t claims_mu = PTHREAD_MUTEX_INITIALIZER;
static claim_t *claims;

static bool queue_claim(const char *path)
{
    pthread_mutex_lock(&claims_mu);
    bool free_now = true;
    for (claim_t *c = claims; c; c = c->next)
        free_now = free_now && strcmp(c->path, path) != 0;
    claim_t *c = free_now ? calloc(1, sizeof *c) : NULL;
    if (c) {
        snprintf(c->path, sizeof c->path, "%s", path);
        c->next = claims;
        claims = c;
    }
    pthread_mutex_unlock(&claims_mu);
    return c != NULL;
}

static void queue_unclaim(const char *path)
{
    pthread_mutex_lock(&claims_mu);
    for (claim_t **pp = &claims; *pp; pp = &(*pp)->next) {
        if (strcmp((*pp)->path, path) == 0) {
            claim_t *c = *pp;
            *pp = c->next;
            free(c);
            break;
        }
    }
    pthread_mutex_unlock(&claims_mu);
}

static pthread_once_t mqtt_once = PTHREAD_ONCE_INIT;
static void mqtt_lib_init(void)
{
    mosquitto_lib_init();
}

static int version_of(const cJSON *spec)
{
    const char *v = ev_src_str(spec, "protocolVersion");
    return v && strcmp(v, "5") == 0 ? MQTT_PROTOCOL_V5 : MQTT_PROTOCOL_V311;
}

int ev_mqtt_check(const cJSON *spec, char *err, size_t errlen)
{
    char hosts[MQTT_MAX_SERVERS][256];
    int ports[MQTT_MAX_SERVERS];
    if (ev_ext_servers(cJSON_GetObjectItemCaseSensitive(spec, "servers"), "spec.servers", "mqtt",
                       1883, hosts, ports, MQTT_MAX_SERVERS, err, errlen) < 0)
        return -1;
    if (ev_ext_string(spec, "topic", 250, true, err, errlen) ||
        ev_ext_string(spec, "group", 100, false, err, errlen) ||
        ev_ext_string(spec, "clientId", 200, false, err, errlen) ||
        ev_ext_string(spec, "protocolVersion", 8, false, err, errlen))
        return -1;
    const char *g = ev_src_str(spec, "group");
    if (g && strpbrk(g, "/+#")) {
        snprintf(err, errlen, "spec.group: a share name has no '/', '+' or '#'");
        return -1;
    }
    const char *v = ev_src_str(spec, "protocolVersion");
    if (v && strcmp(v, "3.1.1") != 0 && strcmp(v, "5") != 0) {
        snprintf(err, errlen, "spec.protocolVersion: \"3.1.1\" (default) or \"5\"");
        return -1;
    }
    return 0;
}

/* ---- receiving ---- */

static char *headers_json(const struct mosquitto_message *msg, const mosquitto_property *props)
{
    if (!props)
        return NULL;
    cJSON *o = cJSON_CreateObject();
    char *ct = NULL;
    if (mosquitto_property_read_string(props, MQTT_PROP_CONTENT_TYPE, &ct, false)) {
        cJSON_AddStringToObject(o, "Content-Type", ct);
        free(ct);
    }
    char *name = NULL, *value = NULL;
    bool skip = false;
    for (const mosquitto_property *p = props;
         (p = mosquitto_property_read_string_pair(p, MQTT_PROP_USER_PROPERTY, &name, &value,
                                                  skip));
         skip = true) {
        if (!cJSON_GetObjectItemCaseSensitive(o, name))
            cJSON_AddStringToObject(o, name, value);
        free(name);
        free(value);
        name = value = NULL;
    }
    (void)msg;
    char *s = o->child ? cJSON_PrintUnformatted(o) : NULL;
    cJSON_Delete(o);
    return s;
}

static void on_message(struct mosquitto *m, void *ud, const struct mosquitto_message *msg,
                       const mosquitto_property *props)
{
    mqtt_feed_t *f = ud;
    (void)m;
    if (f->forgetting)
        return; /* a clean session has nothing to deliver; nowhere to keep it */
    if (f->nbatch == f->capbatch) {
        size_t cap = f->capbatch ? f->capbatch * 2 : 64;
        st_mq_msg_t *b = realloc(f->batch, cap * sizeof *b);
        if (!b) {
            f->batch_oom = true; /* the connection is dropped unacked (pump) */
            return;
        }
        f->batch = b;
        f->capbatch = cap;
    }
    st_mq_msg_t *e = &f->batch[f->nbatch];
    memset(e, 0, sizeof *e);
    e->topic = strdup(msg->topic ? msg->topic : "");
    e->headers = headers_json(msg, props);
    e->time_ms = ev_now_ms();
    size_t len = msg->payloadlen > 0 ? (size_t)msg->payloadlen : 0;
    if (f->max_bytes && len > f->max_bytes) {
        char why[160];
        snprintf(why, sizeof why, "message of %zu bytes is larger than the limit of %zu", len,
                 f->max_bytes);
        e->bad = strdup(why);
    } else if (len) {
        void *b = malloc(len);
        if (b)
            memcpy(b, msg->payload, len);
        e->body = b;
        e->len = len;
        if (!b)
            f->batch_oom = true;
    }
    if (!e->topic)
        f->batch_oom = true;
    f->nbatch++;
}

static void batch_clear(mqtt_feed_t *f)
{
    for (size_t i = 0; i < f->nbatch; i++) {
        free((void *)f->batch[i].topic);
        free((void *)f->batch[i].headers);
        free((void *)f->batch[i].bad);
        free((void *)f->batch[i].body);
    }
    f->nbatch = 0;
    f->batch_oom = false;
}

static void on_connect(struct mosquitto *m, void *ud, int rc, int flags,
                       const mosquitto_property *props)
{
    mqtt_feed_t *f = ud;
    (void)flags;
    (void)props;
    f->conn_done = true;
    f->conn_rc = rc;
    if (rc == 0) {
        f->connected = true;
        /* Part of the persistent session already after the first time;
         * subscribing again is harmless and covers a session the broker
         * forgot. */
        if (!f->forgetting)
            mosquitto_subscribe(m, NULL, f->sub, 1);
    }
}

static void on_disconnect(struct mosquitto *m, void *ud, int rc)
{
    (void)m;
    (void)rc;
    ((mqtt_feed_t *)ud)->connected = false;
}

static void drop_connection(mqtt_feed_t *f)
{
    /* Destroy without writing: PUBACKs still queued are never sent, so the
     * broker redelivers those messages. */
    if (f->m)
        mosquitto_destroy(f->m);
    f->m = NULL;
    f->connected = false;
    batch_clear(f);
}

/* One round of the library's loop: wait up to wait_ms, read what arrived,
 * commit it to the queue, then write (PUBACKs go out only now). 0, or -1
 * when the connection is gone. */
static int pump(mqtt_feed_t *f, int wait_ms)
{
    bool reading = f->stored < MQTT_QUEUE_MAX;
    struct pollfd p = {mosquitto_socket(f->m), (short)((reading ? POLLIN : 0) |
                                                       (mosquitto_want_write(f->m) ? POLLOUT : 0)),
                       0};
    if (p.fd < 0)
        goto lost;
    if (poll(&p, 1, wait_ms) < 0)
        p.revents = 0;
    if (p.revents & (POLLERR | POLLHUP))
        p.revents |= POLLIN; /* the read reports it */
    for (int k = 0; reading && (p.revents & POLLIN) && k < MQTT_READ_MAX; k++) {
        if (mosquitto_loop_read(f->m, 1) != MOSQ_ERR_SUCCESS)
            goto lost;
        p.events = POLLIN;
        p.revents = 0;
        if (poll(&p, 1, 0) <= 0)
            break;
    }
    if (f->batch_oom) {
        fprintf(stderr, "eventing: mqtt %s: out of memory; reconnecting\n", f->source);
        goto lost;
    }
    if (f->nbatch) {
        char err[256];
        if (st_mq_append(f->q, f->batch, f->nbatch, err, sizeof err)) {
            fprintf(stderr, "eventing: mqtt %s: %s; reconnecting\n", f->source, err);
            goto lost;
        }
        f->stored += (long)f->nbatch;
        batch_clear(f);
    }
    if (mosquitto_want_write(f->m) && mosquitto_loop_write(f->m, 1) != MOSQ_ERR_SUCCESS)
        goto lost;
    if (mosquitto_loop_misc(f->m) != MOSQ_ERR_SUCCESS)
        goto lost;
    return 0;
lost:
    drop_connection(f);
    return -1;
}

/* ---- the feed ---- */

static bool mqtt_up(void *fp)
{
    mqtt_feed_t *f = fp;
    return f->m && f->connected;
}

static int mqtt_connect(void *fp, ev_consumer_t *c, char *err, size_t len)
{
    mqtt_feed_t *f = fp;
    (void)c;
    pthread_once(&mqtt_once, mqtt_lib_init);
    if (!f->claimed && !(f->claimed = queue_claim(f->qpath))) {
        snprintf(err, len, "mqtt: the queue %s is still held by the source's previous instance",
                 f->qpath);
        return -1; /* it lets go once its in-flight deliveries ended */
    }
    if (!f->q && !f->forgetting) {
        f->q = st_mq_open(f->qpath, err, len);
        if (!f->q)
            return -1;
        f->stored = st_mq_count(f->q);
    }
    drop_connection(f);
    const char *host = f->hosts[f->server];
    int port = f->ports[f->server];
    f->server = (f->server + 1) % f->nservers; /* the next try, the next server */
    f->m = mosquitto_new(f->client_id, f->forgetting, f); /* clean session only to end it */
    if (!f->m) {
        snprintf(err, len, "mqtt: out of memory");
        return -1;
    }
    mosquitto_threaded_set(f->m, true); /* we run the loop: see the top */
    mosquitto_int_option(f->m, MOSQ_OPT_PROTOCOL_VERSION, f->version);
    mosquitto_connect_v5_callback_set(f->m, on_connect);
    mosquitto_disconnect_callback_set(f->m, on_disconnect);
    mosquitto_message_v5_callback_set(f->m, on_message);
    f->conn_done = false;
    int rc;
    if (f->version == MQTT_PROTOCOL_V5 && !f->forgetting) {
        mosquitto_property *props = NULL;
        mosquitto_property_add_int32(&props, MQTT_PROP_SESSION_EXPIRY_INTERVAL, UINT32_MAX);
        rc = mosquitto_connect_bind_v5(f->m, host, port, MQTT_KEEPALIVE_S, NULL, props);
        mosquitto_property_free_all(&props);
    } else {
        /* v5 without a session expiry: the session ends with the connection */
        rc = mosquitto_connect_bind_v5(f->m, host, port, MQTT_KEEPALIVE_S, NULL, NULL);
    }
    if (rc != MOSQ_ERR_SUCCESS) {
        snprintf(err, len, "mqtt %s:%d: %s", host, port, mosquitto_strerror(rc));
        drop_connection(f);
        return -1;
    }
    int64_t end = ev_mono_ms() + 3000;
    while (!f->conn_done && ev_mono_ms() < end)
        if (pump(f, 50))
            break;
    if (!f->m || !f->connected) {
        if (f->conn_done && f->conn_rc)
            snprintf(err, len, "mqtt %s:%d: %s", host, port,
                     f->version == MQTT_PROTOCOL_V5 ? mosquitto_reason_string(f->conn_rc)
                                                    : mosquitto_connack_string(f->conn_rc));
        else
            snprintf(err, len, "mqtt %s:%d: no CONNACK", host, port);
        drop_connection(f);
        return -1;
    }
    return 0;
}

static void take_one(void *ud, const st_mq_msg_t *m)
{
    mqtt_feed_t *f = ud;
    f->taken = m->seq;
    char id[340], key[32], err[256] = "";
    snprintf(id, sizeof id, "%s-%llu", f->client_id, (unsigned long long)m->seq);
    snprintf(key, sizeof key, "%llu", (unsigned long long)m->seq);
    ev_header_t h[64];
    size_t nh = 0;
    cJSON *hj = m->headers ? cJSON_Parse(m->headers) : NULL;
    for (const cJSON *it = hj ? hj->child : NULL; it && nh < 64; it = it->next)
        if (cJSON_IsString(it))
            h[nh++] = (ev_header_t){it->string, it->valuestring};
    ev_event_t *e = NULL;
    if (m->bad)
        snprintf(err, sizeof err, "%s", m->bad);
    else
        e = ev_ext_event(id, f->source, "dev.wasmfn.sources.mqtt", m->topic, m->time_ms, h, nh,
                         m->body, m->len, f->max_bytes, err, sizeof err);
    cJSON_Delete(hj);
    ev_cons_take(f->c, key, e, err, m->attempts, NULL, m->seq, 0);
}

static void flush_removals(mqtt_feed_t *f)
{
    if (f->ndels && st_mq_remove(f->q, f->dels, f->ndels) == 0)
        f->ndels = 0; /* on failure they stay listed and are tried again */
}

static int take(mqtt_feed_t *f, ev_consumer_t *c, int max)
{
    f->c = c;
    int n = st_mq_each_after(f->q, f->taken, max, take_one, f);
    f->c = NULL;
    return n < 0 ? 0 : n;
}

static int mqtt_fetch(void *fp, ev_consumer_t *c, int max, int wait_ms)
{
    mqtt_feed_t *f = fp;
    if (!f->m || pump(f, 0))
        return -1;
    flush_removals(f);
    if (max <= 0)
        return 0;
    int n = take(f, c, max);
    if (n == 0 && wait_ms > 0) {
        if (pump(f, wait_ms))
            return -1;
        n = take(f, c, max);
    }
    return n;
}

static void mqtt_ack(void *fp, item_t *it)
{
    mqtt_feed_t *f = fp;
    if (f->ndels == f->capdels) {
        size_t cap = f->capdels ? f->capdels * 2 : 256;
        uint64_t *d = realloc(f->dels, cap * sizeof *d);
        if (!d) {
            st_mq_remove(f->q, &it->tag, 1);
            f->stored--;
            return;
        }
        f->dels = d;
        f->capdels = cap;
    }
    f->dels[f->ndels++] = it->tag;
    f->stored--;
    if (f->ndels >= 256)
        flush_removals(f);
}

static bool mqtt_retry(void *fp, item_t *it, int64_t delay_ms)
{
    mqtt_feed_t *f = fp;
    (void)delay_ms;
    st_mq_set_attempts(f->q, it->tag, it->attempts);
    return false; /* the consumer holds it through the backoff */
}

static void mqtt_release(void *fp, item_t *it)
{
    (void)fp;
    (void)it; /* it stays in the queue for the next run */
}

static long mqtt_backlog(void *fp, ev_consumer_t *c)
{
    (void)c;
    return ((mqtt_feed_t *)fp)->stored;
}

static void mqtt_forget(void *fp)
{
    mqtt_feed_t *f = fp;
    drop_connection(f); /* unsent PUBACKs stay unsent: nothing is wanted any more */
    if (f->q) {
        st_mq_close(f->q);
        f->q = NULL;
    }
    /* End the session: connect under the same client id with a clean
     * session, then disconnect. Each server is tried once (a broker down now
     * keeps the session until its own expiry: persistent_client_expiration
     * in mosquitto). */
    f->forgetting = true;
    if (!f->claimed)
        f->claimed = queue_claim(f->qpath); /* never connected: the file may be ours still */
    bool ended = false;
    for (int i = 0; i < f->nservers && !ended; i++) {
        char err[256];
        if (mqtt_connect(f, NULL, err, sizeof err) == 0) {
            mosquitto_disconnect(f->m);
            mosquitto_loop_write(f->m, 1);
            ended = true;
        } else {
            fprintf(stderr, "eventing: mqtt %s: ending the session: %s\n", f->source, err);
        }
        drop_connection(f);
    }
    if (f->claimed) {
        char p[1300];
        unlink(f->qpath);
        snprintf(p, sizeof p, "%s-wal", f->qpath);
        unlink(p);
        snprintf(p, sizeof p, "%s-shm", f->qpath);
        unlink(p);
    }
}

static void mqtt_close(void *fp)
{
    mqtt_feed_t *f = fp;
    if (f->m && f->connected) {
        pump(f, 0); /* commit what was read before any PUBACK goes */
        if (f->m) {
            mosquitto_disconnect(f->m); /* the session stays at the broker */
            mosquitto_loop_write(f->m, 1);
        }
    }
    drop_connection(f);
    if (f->q) {
        flush_removals(f);
        st_mq_close(f->q);
    }
    if (f->claimed)
        queue_unclaim(f->qpath);
    free(f->batch);
    free(f->dels);
    free(f);
}

static const ev_feed_ops_t mqtt_ops = {
    .what = "mqtt",
    .connect = mqtt_connect,
    .up = mqtt_up,
    .fetch = mqtt_fetch,
    .ack = mqtt_ack,
    .retry = mqtt_retry,
    .release = mqtt_release,
    .backlog = mqtt_backlog,
    .forget = mqtt_forget,
    .close = mqtt_close,
};

int ev_mqtt_feed(const ev_source_args_t *a, const ev_delivery_t *d, ev_source_feed_t *out,
                 char *err, size_t errlen)
{
    (void)d;
    mqtt_feed_t *f = calloc(1, sizeof *f);
    if (!f) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    f->nservers = ev_ext_servers(cJSON_GetObjectItemCaseSensitive(a->spec, "servers"),
                                 "spec.servers", "mqtt", 1883, f->hosts, f->ports,
                                 MQTT_MAX_SERVERS, err, errlen);
    if (f->nservers < 0) {
        free(f);
        return -1;
    }
    snprintf(f->topic, sizeof f->topic, "%s", ev_src_str(a->spec, "topic"));
    const char *g = ev_src_str(a->spec, "group");
    if (g)
        snprintf(f->sub, sizeof f->sub, "$share/%s/%s", g, f->topic);
    else
        snprintf(f->sub, sizeof f->sub, "%s", f->topic);
    const char *cid = ev_src_str(a->spec, "clientId");
    /* Stable across restarts (the session is keyed by it) and distinct per
     * daemon (node) when several share a group. */
    if (cid)
        snprintf(f->client_id, sizeof f->client_id, "%s", cid);
    else
        snprintf(f->client_id, sizeof f->client_id, "%s-%s", a->node, a->name);
    f->version = version_of(a->spec);
    snprintf(f->qpath, sizeof f->qpath, "%s/sources/mqtt-%s.db", a->data_dir, a->name);
    f->max_bytes = a->max_event_bytes;
    snprintf(f->source, sizeof f->source, "mqtt://%s:%d/%s", f->hosts[0], f->ports[0], f->topic);
    out->ops = &mqtt_ops;
    out->feed = f;
    snprintf(out->source, sizeof out->source, "%s", f->source);
    out->max_parallel = 0;
    return 0;
}
