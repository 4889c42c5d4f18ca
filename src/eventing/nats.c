/*
 * nats.c — NatsJetStreamSource: a durable pull consumer on a JetStream
 * stream (libnats), as an external feed of the consumer thread.
 *
 * At least once: a message is acked (+ACK) only after its delivery
 * succeeded or it was written to the dead-letter sink. The consumer holds
 * a failing message through its backoff (marking it in progress, which
 * restarts the server's ackWait timer) and retries it; a message we held
 * when the daemon died is redelivered by the server after ackWait (so
 * ackWait must exceed an attempt's timeout; that is checked at apply).
 * Attempts after such a redelivery continue from the server's delivery
 * count (NumDelivered, kept in the consumer's state on disk): each earlier
 * delivery counts as one attempt.
 *
 * Why not NAK with a delay and let the server count every attempt: the
 * Debian pair (libnats 3.4, nats-server 2.9) never redelivers a message
 * NAKed with a delay to a pull consumer; a plain NAK redelivers at once,
 * which would skip the backoff.
 *
 * Pulling: the feed sends its own pull requests ($JS.API.CONSUMER.MSG.NEXT,
 * one open at a time, batch = the free delivery slots, a short expiry) to
 * an inbox of its own and reads that inbox, instead of calling libnats'
 * natsSubscription_Fetch*: in the Debian libnats (3.4) a fetch that finds
 * messages left over from an earlier pull (they arrive after a fetch
 * returned, which the short waits here make common) writes past the array
 * it allocated for the batch (fixed upstream in 3.10, nats.c #749) — the
 * heap corruption a bench run once hit.
 *
 * An item keeps only the message's reply subject ($JS.ACK...), never the
 * natsMsg: acks, "in progress" and naks are published to that subject on
 * whatever connection is current, so nothing an item holds points into a
 * subscription or connection that a reconnect may have freed.
 *
 * Connection loss: the library reconnects by itself (every second, without
 * end); while it does the feed reads nothing. Acks are addressed by the
 * message's reply subject, valid on the new connection, so nothing held
 * across a reconnect is lost or acked twice; an ack that could not be sent
 * makes the server redeliver the message after ackWait (a duplicate, never
 * a loss).
 *
 * Deleting the source deletes its durable consumer on the server (one try;
 * a server down then keeps it), unless spec.consumer named it: a named
 * consumer may be shared and belongs to the user. A source applied again
 * under the same names while the old one is still going away keeps its
 * consumer: feeds register their (server, stream, durable), forget skips a
 * consumer another live feed uses, and creating and deleting consumers
 * take turns (admin_mu), so a delete never lands after a newer create.
 */
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nats/nats.h>

#include "eventing/consumer.h"
#include "eventing/sources.h"

#define NATS_MAX_SERVERS 8
#define NATS_PULL_EXPIRES_MS 100 /* a pull request's life when not idling */
#define NATS_FIRST_WAIT_MS 10    /* wait for a just-requested batch to start */

const char *const ev_nats_fields[] = {"servers", "stream", "subject", "consumer", "ackWait",
                                      "sink",    "delivery", NULL};

typedef struct nats_feed {
    char urls[NATS_MAX_SERVERS][300];
    int nurls;
    char stream[256], subject[256], durable[256];
    char source[800];
    int64_t ack_wait_ms;
    size_t max_bytes;
    natsConnection *nc;
    jsCtx *js;
    natsSubscription *sub; /* a plain subscription on inbox */
    natsInbox *inbox;
    char next_subj[600];   /* $JS.API.CONSUMER.MSG.NEXT.STREAM.DURABLE */
    /* The open pull request: messages it may still bring, and when the
     * server forgets it (monotonic ms). One at a time. */
    int req_left;
    int64_t req_end_ms;
    bool named;                 /* spec.consumer named the durable: never deleted */
    struct nats_feed *live_next; /* the live feeds' list (live_mu) */
} nats_feed_t;

/* Every feed between ev_nats_feed and nats_close, to tell whether a
 * deleted source's consumer is used by a newer one. live_mu is held only
 * for list walks (the loop thread takes it); admin_mu serialises consumer
 * creates and deletes, which are network calls, on consumer threads. */
static pthread_mutex_t live_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t admin_mu = PTHREAD_MUTEX_INITIALIZER;
static nats_feed_t *live;

static void live_add(nats_feed_t *f)
{
    pthread_mutex_lock(&live_mu);
    f->live_next = live;
    live = f;
    pthread_mutex_unlock(&live_mu);
}

static void live_remove(nats_feed_t *f)
{
    pthread_mutex_lock(&live_mu);
    for (nats_feed_t **p = &live; *p; p = &(*p)->live_next)
        if (*p == f) {
            *p = f->live_next;
            break;
        }
    pthread_mutex_unlock(&live_mu);
}

/* Does a feed other than f use f's consumer? */
static bool live_shared(const nats_feed_t *f)
{
    bool shared = false;
    pthread_mutex_lock(&live_mu);
    for (const nats_feed_t *o = live; o && !shared; o = o->live_next)
        shared = o != f && strcmp(o->urls[0], f->urls[0]) == 0 &&
                 strcmp(o->stream, f->stream) == 0 && strcmp(o->durable, f->durable) == 0;
    pthread_mutex_unlock(&live_mu);
    return shared;
}

/* Stream and durable names may not hold '.', '*', '>' or white space. */
static bool nats_name_ok(const char *s)
{
    return *s && strcspn(s, ".*> \t\r\n") == strlen(s);
}

static int64_t ack_wait_of(const cJSON *spec, const ev_delivery_t *d)
{
    const char *aw = ev_src_str(spec, "ackWait");
    if (aw)
        return ev_iso_duration_ms(aw);
    return d->timeout_ms + 10000; /* the default leaves an attempt its whole timeout */
}

int ev_nats_check(const cJSON *spec, char *err, size_t errlen)
{
    char hosts[NATS_MAX_SERVERS][256];
    int ports[NATS_MAX_SERVERS];
    if (ev_ext_servers(cJSON_GetObjectItemCaseSensitive(spec, "servers"), "spec.servers", "nats",
                       4222, hosts, ports, NATS_MAX_SERVERS, err, errlen) < 0)
        return -1;
    if (ev_ext_string(spec, "stream", 200, true, err, errlen) ||
        ev_ext_string(spec, "subject", 250, false, err, errlen) ||
        ev_ext_string(spec, "consumer", 200, false, err, errlen))
        return -1;
    if (!nats_name_ok(ev_src_str(spec, "stream"))) {
        snprintf(err, errlen, "spec.stream: a stream name has no '.', '*', '>' or spaces");
        return -1;
    }
    const char *cons = ev_src_str(spec, "consumer");
    if (cons && !nats_name_ok(cons)) {
        snprintf(err, errlen, "spec.consumer: a durable name has no '.', '*', '>' or spaces");
        return -1;
    }
    ev_delivery_t d;
    if (ev_delivery_parse(cJSON_GetObjectItemCaseSensitive(spec, "delivery"), "spec.delivery", &d,
                          err, errlen))
        return -1;
    const char *aw = ev_src_str(spec, "ackWait");
    if ((aw || cJSON_GetObjectItemCaseSensitive(spec, "ackWait")) &&
        (!aw || ev_iso_duration_ms(aw) <= 0)) {
        snprintf(err, errlen, "spec.ackWait: must be an ISO 8601 duration like PT30S");
        return -1;
    }
    if (ack_wait_of(spec, &d) <= d.timeout_ms) {
        snprintf(err, errlen,
                 "spec.ackWait: must be longer than spec.delivery.timeout (%lld ms), or the "
                 "server redelivers a message while its attempt runs",
                 (long long)d.timeout_ms);
        return -1;
    }
    return 0;
}

static void nats_teardown(nats_feed_t *f)
{
    /* Destroy, not Unsubscribe: the durable consumer stays on the server
     * (we bound to it; the library only deletes consumers it created). */
    if (f->sub)
        natsSubscription_Destroy(f->sub);
    if (f->js)
        jsCtx_Destroy(f->js);
    if (f->nc)
        natsConnection_Destroy(f->nc);
    if (f->inbox)
        natsInbox_Destroy(f->inbox);
    f->sub = NULL;
    f->js = NULL;
    f->nc = NULL;
    f->inbox = NULL;
    f->req_left = 0;
}

static bool nats_up(void *fp)
{
    nats_feed_t *f = fp;
    return f->sub && natsConnection_Status(f->nc) == NATS_CONN_STATUS_CONNECTED;
}

/* Opens f->nc and f->js; reconnects without end when keep is set. */
static natsStatus nats_open(nats_feed_t *f, bool keep)
{
    natsOptions *o = NULL;
    const char *urls[NATS_MAX_SERVERS];
    for (int i = 0; i < f->nurls; i++)
        urls[i] = f->urls[i];
    natsStatus s = natsOptions_Create(&o);
    if (s == NATS_OK)
        s = natsOptions_SetServers(o, urls, f->nurls);
    if (s == NATS_OK)
        s = natsOptions_SetTimeout(o, 2000);
    if (s == NATS_OK)
        s = natsOptions_SetMaxReconnect(o, keep ? -1 : 0);
    if (s == NATS_OK)
        s = natsOptions_SetReconnectWait(o, 1000);
    if (s == NATS_OK)
        s = natsOptions_SetName(o, "wasmfn");
    if (s == NATS_OK)
        s = natsConnection_Connect(&f->nc, o);
    natsOptions_Destroy(o);
    if (s == NATS_OK)
        s = natsConnection_JetStream(&f->js, f->nc, NULL);
    return s;
}

static int nats_connect(void *fp, ev_consumer_t *c, char *err, size_t len)
{
    nats_feed_t *f = fp;
    (void)c;
    if (f->nc && f->sub && natsConnection_Status(f->nc) != NATS_CONN_STATUS_CLOSED) {
        snprintf(err, len, "nats %s: reconnecting", f->urls[0]);
        return -1; /* the library is at it */
    }
    nats_teardown(f);
    natsStatus s = nats_open(f, true);
    if (s != NATS_OK) {
        snprintf(err, len, "nats %s: %s", f->urls[0], natsStatus_GetText(s));
        nats_teardown(f);
        return -1;
    }
    jsErrCode jerr = 0;
    jsConsumerConfig cc;
    jsConsumerConfig_Init(&cc);
    cc.Durable = f->durable;
    cc.AckPolicy = js_AckExplicit;
    cc.AckWait = f->ack_wait_ms * 1000000;
    cc.MaxDeliver = -1; /* we count attempts and dead-letter ourselves */
    cc.FilterSubject = f->subject[0] ? f->subject : NULL;
    jsConsumerInfo *ci = NULL;
    if (s == NATS_OK) {
        pthread_mutex_lock(&admin_mu);
        s = js_AddConsumer(&ci, f->js, f->stream, &cc, NULL, &jerr);
        if (s != NATS_OK && jerr != JSStreamNotFoundErr) {
            /* It exists with other settings (an earlier apply): update. */
            jerr = 0;
            s = js_UpdateConsumer(&ci, f->js, f->stream, &cc, NULL, &jerr);
        }
        pthread_mutex_unlock(&admin_mu);
    }
    jsConsumerInfo_Destroy(ci);
    if (s == NATS_OK)
        s = natsInbox_Create(&f->inbox);
    if (s == NATS_OK)
        s = natsConnection_SubscribeSync(&f->sub, f->nc, f->inbox);
    if (s != NATS_OK) {
        if (jerr == JSStreamNotFoundErr)
            snprintf(err, len, "nats %s: stream %s not found", f->urls[0], f->stream);
        else
            snprintf(err, len, "nats %s: consumer %s on stream %s: %s (%d)", f->urls[0],
                     f->durable, f->stream, natsStatus_GetText(s), (int)jerr);
        nats_teardown(f);
        return -1;
    }
    return 0;
}

/* The headers of m as name/value pairs (first value of each); *n gets the
 * count. The strings belong to m. */
static ev_header_t *msg_headers(natsMsg *m, size_t *n)
{
    const char **keys = NULL;
    int count = 0;
    *n = 0;
    if (natsMsgHeader_Keys(m, &keys, &count) != NATS_OK || count <= 0)
        return NULL;
    ev_header_t *h = calloc((size_t)count, sizeof *h);
    for (int i = 0; h && i < count; i++) {
        const char *v = NULL;
        if (natsMsgHeader_Get(m, keys[i], &v) == NATS_OK && v)
            h[(*n)++] = (ev_header_t){keys[i], v};
    }
    free((void *)keys);
    return h;
}

/* Asks the server for up to batch messages, delivered to our inbox within
 * expires_ms. 0, or -1 when it could not be sent. */
static int pull_request(nats_feed_t *f, int batch, int expires_ms)
{
    char body[96];
    snprintf(body, sizeof body, "{\"batch\":%d,\"expires\":%lld}", batch,
             (long long)expires_ms * 1000000);
    if (natsConnection_PublishRequestString(f->nc, f->next_subj, f->inbox, body) != NATS_OK)
        return -1;
    f->req_left = batch;
    f->req_end_ms = ev_mono_ms() + expires_ms;
    return 0;
}

/* One message from the inbox, within wait_ms. 1 when it was a message
 * taken or dropped, 0 when there was none (or only a status: 404, 408, 409
 * end a pull request, which req_end_ms covers), -1 on a closed connection. */
static int take_next(nats_feed_t *f, ev_consumer_t *c, int wait_ms, int *taken)
{
    natsMsg *m = NULL;
    natsStatus s = natsSubscription_NextMsg(&m, f->sub, wait_ms);
    if (s == NATS_TIMEOUT)
        return 0;
    if (s != NATS_OK)
        return natsConnection_Status(f->nc) == NATS_CONN_STATUS_CLOSED ? -1 : 0;
    const char *reply = natsMsg_GetReply(m);
    if (!reply || strncmp(reply, "$JS.ACK.", 8) != 0) {
        natsMsg_Destroy(m); /* a status message of the pull protocol */
        return 1;
    }
    if (f->req_left > 0)
        f->req_left--;
    jsMsgMetaData *meta = NULL;
    char *rs = strdup(reply);
    if (!rs || natsMsg_GetMetaData(&meta, m) != NATS_OK) {
        if (!rs)
            natsConnection_PublishString(f->nc, reply, "-NAK"); /* out of memory: later */
        else
            natsConnection_PublishString(f->nc, reply, "+TERM"); /* unreadable: never again */
        free(rs);
        natsMsg_Destroy(m);
        return 1;
    }
    char id[32];
    snprintf(id, sizeof id, "%llu", (unsigned long long)meta->Sequence.Stream);
    int prior = meta->NumDelivered > 1 ? (int)(meta->NumDelivered - 1) : 0;
    if (meta->NumDelivered > 100000)
        prior = 100000;
    int64_t time_ms = meta->Timestamp / 1000000;
    jsMsgMetaData_Destroy(meta);
    size_t nh;
    ev_header_t *h = msg_headers(m, &nh);
    char err[256] = "";
    ev_event_t *e = ev_ext_event(id, f->source, "dev.wasmfn.sources.natsjetstream",
                                 natsMsg_GetSubject(m), time_ms, h, nh, natsMsg_GetData(m),
                                 (size_t)natsMsg_GetDataLength(m), f->max_bytes, err, sizeof err);
    free(h);
    natsMsg_Destroy(m);
    int r = ev_cons_take(c, id, e, err, prior, rs, 0, 0);
    if (r <= 0) {
        if (r < 0)
            natsConnection_PublishString(f->nc, rs, "-NAK");
        free(rs); /* r == 0: a copy we hold already; it settles the message */
        return 1;
    }
    (*taken)++;
    return 1;
}

static int nats_fetch(void *fp, ev_consumer_t *c, int max, int wait_ms)
{
    nats_feed_t *f = fp;
    if (!f->sub)
        return -1;
    if (max <= 0)
        return 0; /* what arrived waits in the inbox (at most one batch) */
    int n = 0, r = 1;
    /* What arrived already, then a new request if none is open. */
    while (n < max && (r = take_next(f, c, 0, &n)) > 0)
        ;
    if (r < 0)
        return -1;
    if (n < max && (f->req_left == 0 || ev_mono_ms() >= f->req_end_ms) &&
        pull_request(f, max - n, wait_ms > NATS_PULL_EXPIRES_MS ? wait_ms : NATS_PULL_EXPIRES_MS))
        return natsConnection_Status(f->nc) == NATS_CONN_STATUS_CLOSED ? -1 : n;
    /* Nothing yet: wait a little for the first (idle: wait_ms). */
    int wait = n > 0 ? 0 : wait_ms > 0 ? wait_ms : NATS_FIRST_WAIT_MS;
    while (n < max && (r = take_next(f, c, wait, &n)) > 0)
        wait = 0;
    return r < 0 ? -1 : n;
}

static void nats_ack(void *fp, item_t *it)
{
    nats_feed_t *f = fp;
    if (!it->msg)
        return;
    if (f->nc)
        natsConnection_PublishString(f->nc, it->msg, "+ACK");
    free(it->msg);
    it->msg = NULL;
}

static bool nats_retry(void *fp, item_t *it, int64_t delay_ms)
{
    nats_feed_t *f = fp;
    (void)delay_ms;
    /* We keep it through the backoff: restart the server's ackWait timer.
     * A backoff longer than ackWait makes the server redeliver a copy,
     * which ev_cons_take recognises (same stream sequence) and drops. */
    if (it->msg && f->nc)
        natsConnection_PublishString(f->nc, it->msg, "+WPI");
    return false;
}

static void nats_release(void *fp, item_t *it)
{
    nats_feed_t *f = fp;
    if (f->nc)
        natsConnection_PublishString(f->nc, it->msg, "-NAK"); /* redeliver now, to whoever reads next */
    free(it->msg);
    it->msg = NULL;
}

static long nats_backlog(void *fp, ev_consumer_t *c)
{
    nats_feed_t *f = fp;
    (void)c;
    if (!f->js)
        return -1;
    jsConsumerInfo *ci = NULL;
    jsErrCode jerr = 0;
    jsOptions jo;
    jsOptions_Init(&jo);
    jo.Wait = 2000;
    if (js_GetConsumerInfo(&ci, f->js, f->stream, f->durable, &jo, &jerr) != NATS_OK)
        return -1;
    /* Not yet delivered + delivered and not acked (held, or waiting for a
     * NAK's delay): the same "lag + pending" as a Redis group's. */
    long b = (long)ci->NumPending + (long)ci->NumAckPending;
    jsConsumerInfo_Destroy(ci);
    return b;
}

static void nats_forget(void *fp)
{
    nats_feed_t *f = fp;
    if (f->named)
        return;
    pthread_mutex_lock(&admin_mu);
    if (!live_shared(f)) {
        jsErrCode jerr = 0;
        natsStatus s = f->js ? NATS_OK : nats_open(f, false);
        if (s == NATS_OK)
            s = js_DeleteConsumer(f->js, f->stream, f->durable, NULL, &jerr);
        if (s != NATS_OK && jerr != JSConsumerNotFoundErr && jerr != JSStreamNotFoundErr)
            fprintf(stderr, "eventing: %s: deleting consumer %s: %s (%d)\n", f->source,
                    f->durable, natsStatus_GetText(s), (int)jerr);
    }
    pthread_mutex_unlock(&admin_mu);
}

static void nats_close(void *fp)
{
    nats_feed_t *f = fp;
    live_remove(f);
    nats_teardown(f);
    free(f);
}

static const ev_feed_ops_t nats_ops = {
    .what = "nats",
    .connect = nats_connect,
    .up = nats_up,
    .fetch = nats_fetch,
    .ack = nats_ack,
    .retry = nats_retry,
    .release = nats_release,
    .backlog = nats_backlog,
    .forget = nats_forget,
    .close = nats_close,
};

int ev_nats_feed(const ev_source_args_t *a, const ev_delivery_t *d, ev_source_feed_t *out,
                 char *err, size_t errlen)
{
    nats_feed_t *f = calloc(1, sizeof *f);
    if (!f) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    char hosts[NATS_MAX_SERVERS][256];
    int ports[NATS_MAX_SERVERS];
    int n = ev_ext_servers(cJSON_GetObjectItemCaseSensitive(a->spec, "servers"), "spec.servers",
                           "nats", 4222, hosts, ports, NATS_MAX_SERVERS, err, errlen);
    if (n < 0) {
        free(f);
        return -1;
    }
    for (int i = 0; i < n; i++)
        snprintf(f->urls[i], sizeof f->urls[i], "nats://%.255s:%d", hosts[i], ports[i]);
    f->nurls = n;
    snprintf(f->stream, sizeof f->stream, "%s", ev_src_str(a->spec, "stream"));
    const char *subj = ev_src_str(a->spec, "subject");
    snprintf(f->subject, sizeof f->subject, "%s", subj ? subj : "");
    const char *cons = ev_src_str(a->spec, "consumer");
    snprintf(f->durable, sizeof f->durable, "%s", cons ? cons : a->name);
    f->named = cons != NULL;
    for (char *p = f->durable; *p; p++)
        if (*p == '.')
            *p = '-'; /* object names may hold dots, durable names may not */
    f->ack_wait_ms = ack_wait_of(a->spec, d);
    f->max_bytes = a->max_event_bytes;
    snprintf(f->source, sizeof f->source, "nats://%s:%d/%s", hosts[0], ports[0], f->stream);
    snprintf(f->next_subj, sizeof f->next_subj, "$JS.API.CONSUMER.MSG.NEXT.%s.%s", f->stream,
             f->durable);
    out->ops = &nats_ops;
    out->feed = f;
    snprintf(out->source, sizeof out->source, "%s", f->source);
    out->max_parallel = 0;
    live_add(f);
    return 0;
}
