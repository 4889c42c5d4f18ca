/*
 * srcpub.c — publishes test messages to the brokers the source tests run
 * (tests/eventing/sources_tests.sh, bench/eventing/sources.sh), with the
 * same client libraries the daemon links:
 *
 *   srcpub nats URL STREAM SUBJECT FIRST COUNT   JetStream, creating STREAM
 *   srcpub nats-consumers URL STREAM             prints STREAM's consumers'
 *                                                names, one a line
 *   srcpub mqtt HOST PORT TOPIC FIRST COUNT      QoS 1
 *   srcpub amqp URL QUEUE FIRST COUNT            persistent, with confirms,
 *                                                declaring a durable QUEUE
 *   srcpub amqp-get URL QUEUE                    prints the body of every
 *                                                message in QUEUE, taking them
 *   srcpub lock DB MS                            holds the write lock of the
 *                                                SQLite file DB for MS ms
 *                                                (prints "locked" once held)
 *
 * Message n (FIRST <= n < FIRST+COUNT) has the body {"n":n}; with
 * SRCPUB_BIG=K, message K instead carries 2 MiB of padding (larger than
 * the daemon's event limit). With SRCPUB_DLX=1 (amqp) the queue is declared
 * with a dead-letter exchange: rejected messages go to QUEUE.dead (the
 * default exchange, routing key QUEUE.dead). With SRCPUB_RATE=R (mqtt), at most R messages
 * a second, so a test can act while publishing goes on. Exits 0 once every
 * message was confirmed by the broker.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <amqp.h>
#include <amqp_tcp_socket.h>
#include <mosquitto.h>
#include <nats/nats.h>
#include <sqlite3.h>

static char *body_of(long n, int *len)
{
    const char *big = getenv("SRCPUB_BIG");
    static char small[64];
    if (big && atol(big) == n) {
        size_t sz = 2u << 20;
        char *b = malloc(sz + 64);
        int k = snprintf(b, 64, "{\"n\":%ld,\"pad\":\"", n);
        memset(b + k, 'x', sz);
        strcpy(b + k + sz, "\"}");
        *len = (int)strlen(b);
        return b;
    }
    *len = snprintf(small, sizeof small, "{\"n\":%ld}", n);
    return small;
}

static void body_free(char *b)
{
    if (b && strlen(b) > 64)
        free(b);
}

static int pub_nats(char **a, long first, long count)
{
    natsConnection *nc = NULL;
    jsCtx *js = NULL;
    jsErrCode jerr = 0;
    if (natsConnection_ConnectTo(&nc, a[0]) != NATS_OK ||
        natsConnection_JetStream(&js, nc, NULL) != NATS_OK) {
        fprintf(stderr, "srcpub: nats %s: cannot connect\n", a[0]);
        return 1;
    }
    jsStreamConfig sc;
    jsStreamConfig_Init(&sc);
    sc.Name = a[1];
    const char *subj[] = {a[2]};
    sc.Subjects = subj;
    sc.SubjectsLen = 1;
    sc.Storage = js_FileStorage;
    sc.MaxMsgSize = 4 << 20;
    jsStreamInfo *si = NULL;
    if (js_AddStream(&si, js, &sc, NULL, &jerr) != NATS_OK && jerr != JSStreamNameExistErr) {
        fprintf(stderr, "srcpub: stream %s: error %d\n", a[1], (int)jerr);
        return 1;
    }
    jsStreamInfo_Destroy(si);
    for (long n = first; n < first + count; n++) {
        int len;
        char *b = body_of(n, &len);
        natsMsg *m = NULL;
        natsMsg_Create(&m, a[2], NULL, b, len);
        natsMsgHeader_Set(m, "Content-Type", "application/json");
        natsMsgHeader_Set(m, "Tenant", "acme");
        natsStatus s = js_PublishMsgAsync(js, &m, NULL);
        body_free(b);
        if (s != NATS_OK) {
            fprintf(stderr, "srcpub: publish %ld: %s\n", n, natsStatus_GetText(s));
            return 1;
        }
    }
    jsPubOptions po;
    jsPubOptions_Init(&po);
    po.MaxWait = 30000;
    if (js_PublishAsyncComplete(js, &po) != NATS_OK) {
        fprintf(stderr, "srcpub: nats: not every message was confirmed\n");
        return 1;
    }
    jsCtx_Destroy(js);
    natsConnection_Destroy(nc);
    return 0;
}

static int mqtt_acked;
static void on_publish(struct mosquitto *m, void *ud, int mid)
{
    (void)m;
    (void)ud;
    (void)mid;
    mqtt_acked++;
}

static int pub_mqtt(char **a, long first, long count)
{
    mosquitto_lib_init();
    struct mosquitto *m = mosquitto_new(NULL, true, NULL);
    mosquitto_publish_callback_set(m, on_publish);
    /* At most the broker's max_inflight_messages (20 by default): mosquitto
     * 2.0 disconnects a client that sends more ("out of memory"). */
    mosquitto_int_option(m, MOSQ_OPT_SEND_MAXIMUM, 20);
    if (mosquitto_connect(m, a[0], atoi(a[1]), 30) != MOSQ_ERR_SUCCESS) {
        fprintf(stderr, "srcpub: mqtt %s:%s: cannot connect\n", a[0], a[1]);
        return 1;
    }
    const char *rate_s = getenv("SRCPUB_RATE");
    double rate = rate_s ? atof(rate_s) : 0;
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (long n = first; n < first + count; n++) {
        while (rate > 0) { /* paced: message k leaves at k / rate seconds */
            struct timespec t;
            clock_gettime(CLOCK_MONOTONIC, &t);
            double ahead_ms = (double)(n - first) * 1000.0 / rate -
                              ((double)(t.tv_sec - t0.tv_sec) * 1000.0 +
                               (double)(t.tv_nsec - t0.tv_nsec) / 1e6);
            if (ahead_ms <= 0)
                break;
            mosquitto_loop(m, ahead_ms < 1 ? 1 : (int)ahead_ms, 1);
        }
        int len;
        char *b = body_of(n, &len);
        int rc = mosquitto_publish(m, NULL, a[2], len, b, 1, false);
        body_free(b);
        if (rc != MOSQ_ERR_SUCCESS) {
            fprintf(stderr, "srcpub: publish %ld: %s\n", n, mosquitto_strerror(rc));
            return 1;
        }
        mosquitto_loop(m, 0, 1);
    }
    time_t end = time(NULL) + 60;
    while (mqtt_acked < count && time(NULL) < end)
        if (mosquitto_loop(m, 100, 1) != MOSQ_ERR_SUCCESS)
            break;
    if (mqtt_acked < count) {
        fprintf(stderr, "srcpub: mqtt: %d of %ld confirmed\n", mqtt_acked, count);
        return 1;
    }
    mosquitto_disconnect(m);
    mosquitto_loop(m, 10, 1);
    mosquitto_destroy(m);
    return 0;
}

static int amqp_ok(amqp_connection_state_t c, const char *what)
{
    amqp_rpc_reply_t r = amqp_get_rpc_reply(c);
    if (r.reply_type != AMQP_RESPONSE_NORMAL) {
        fprintf(stderr, "srcpub: amqp %s failed (%d)\n", what, r.reply_type);
        return 0;
    }
    return 1;
}

static amqp_connection_state_t amqp_open(const char *url_in)
{
    struct amqp_connection_info ci;
    char url[1024];
    snprintf(url, sizeof url, "%s", url_in);
    if (amqp_parse_url(url, &ci) != AMQP_STATUS_OK)
        return NULL;
    amqp_connection_state_t c = amqp_new_connection();
    amqp_socket_t *s = amqp_tcp_socket_new(c);
    if (amqp_socket_open(s, ci.host, ci.port) != AMQP_STATUS_OK) {
        fprintf(stderr, "srcpub: amqp %s:%d: cannot connect\n", ci.host, ci.port);
        amqp_destroy_connection(c);
        return NULL;
    }
    amqp_rpc_reply_t r = amqp_login(c, ci.vhost, 0, 131072, 0, AMQP_SASL_METHOD_PLAIN, ci.user,
                                    ci.password);
    amqp_channel_open(c, 1);
    if (r.reply_type != AMQP_RESPONSE_NORMAL ||
        amqp_get_rpc_reply(c).reply_type != AMQP_RESPONSE_NORMAL) {
        fprintf(stderr, "srcpub: amqp login failed\n");
        amqp_destroy_connection(c);
        return NULL;
    }
    return c;
}

static int get_amqp(char **a)
{
    amqp_connection_state_t c = amqp_open(a[0]);
    if (!c)
        return 1;
    for (;;) {
        amqp_rpc_reply_t r = amqp_basic_get(c, 1, amqp_cstring_bytes(a[1]), 1);
        if (r.reply_type != AMQP_RESPONSE_NORMAL) {
            fprintf(stderr, "srcpub: amqp basic.get %s failed\n", a[1]);
            return 1;
        }
        if (r.reply.id != AMQP_BASIC_GET_OK_METHOD)
            break; /* get-empty */
        amqp_message_t m;
        if (amqp_read_message(c, 1, &m, 0).reply_type != AMQP_RESPONSE_NORMAL)
            return 1;
        printf("%.*s\n", (int)m.body.len, (char *)m.body.bytes);
        amqp_destroy_message(&m);
        amqp_maybe_release_buffers(c);
    }
    amqp_connection_close(c, AMQP_REPLY_SUCCESS);
    amqp_destroy_connection(c);
    return 0;
}

static int pub_amqp(char **a, long first, long count)
{
    struct amqp_connection_info ci;
    char url[1024];
    snprintf(url, sizeof url, "%s", a[0]);
    if (amqp_parse_url(url, &ci) != AMQP_STATUS_OK)
        return 1;
    amqp_connection_state_t c = amqp_new_connection();
    amqp_socket_t *s = amqp_tcp_socket_new(c);
    if (amqp_socket_open(s, ci.host, ci.port) != AMQP_STATUS_OK) {
        fprintf(stderr, "srcpub: amqp %s:%d: cannot connect\n", ci.host, ci.port);
        return 1;
    }
    amqp_rpc_reply_t r = amqp_login(c, ci.vhost, 0, 131072, 0, AMQP_SASL_METHOD_PLAIN, ci.user,
                                    ci.password);
    if (r.reply_type != AMQP_RESPONSE_NORMAL) {
        fprintf(stderr, "srcpub: amqp login failed\n");
        return 1;
    }
    amqp_channel_open(c, 1);
    if (!amqp_ok(c, "channel.open"))
        return 1;
    amqp_table_t args = amqp_empty_table;
    amqp_table_entry_t dlx[2];
    char dead[300];
    snprintf(dead, sizeof dead, "%s.dead", a[1]);
    if (getenv("SRCPUB_DLX")) {
        amqp_queue_declare(c, 1, amqp_cstring_bytes(dead), 0, 1, 0, 0, amqp_empty_table);
        if (!amqp_ok(c, "queue.declare (dead letters)"))
            return 1;
        dlx[0].key = amqp_cstring_bytes("x-dead-letter-exchange");
        dlx[0].value.kind = AMQP_FIELD_KIND_UTF8;
        dlx[0].value.value.bytes = amqp_cstring_bytes("");
        dlx[1].key = amqp_cstring_bytes("x-dead-letter-routing-key");
        dlx[1].value.kind = AMQP_FIELD_KIND_UTF8;
        dlx[1].value.value.bytes = amqp_cstring_bytes(dead);
        args = (amqp_table_t){2, dlx};
    }
    amqp_queue_declare(c, 1, amqp_cstring_bytes(a[1]), 0, 1, 0, 0, args);
    if (!amqp_ok(c, "queue.declare"))
        return 1;
    amqp_confirm_select(c, 1);
    if (!amqp_ok(c, "confirm.select"))
        return 1;
    long acked = 0;
    for (long n = first; n < first + count; n++) {
        int len;
        char *b = body_of(n, &len);
        amqp_basic_properties_t p = {0};
        p._flags = AMQP_BASIC_DELIVERY_MODE_FLAG | AMQP_BASIC_CONTENT_TYPE_FLAG |
                   AMQP_BASIC_MESSAGE_ID_FLAG;
        p.delivery_mode = 2;
        p.content_type = amqp_cstring_bytes("application/json");
        char id[32];
        snprintf(id, sizeof id, "m-%ld", n);
        p.message_id = amqp_cstring_bytes(id);
        amqp_bytes_t body = {(size_t)len, b};
        int rc = amqp_basic_publish(c, 1, amqp_empty_bytes, amqp_cstring_bytes(a[1]), 0, 0, &p,
                                    body);
        body_free(b);
        if (rc != AMQP_STATUS_OK) {
            fprintf(stderr, "srcpub: publish %ld failed\n", n);
            return 1;
        }
    }
    /* Confirms: basic.ack frames, possibly "multiple", not necessarily in
     * order (a large message may be confirmed after later ones): a flag per
     * delivery tag (1..count). */
    unsigned char *confirmed = calloc((size_t)count + 1, 1);
    if (!confirmed)
        return 1;
    while (acked < count) {
        amqp_frame_t f;
        struct timeval tv = {30, 0};
        if (amqp_simple_wait_frame_noblock(c, &f, &tv) != AMQP_STATUS_OK) {
            fprintf(stderr, "srcpub: amqp: %ld of %ld confirmed\n", acked, count);
            return 1;
        }
        if (f.frame_type != AMQP_FRAME_METHOD)
            continue;
        if (f.payload.method.id == AMQP_BASIC_ACK_METHOD) {
            amqp_basic_ack_t *ack = f.payload.method.decoded;
            long tag = (long)ack->delivery_tag, lo = ack->multiple ? 1 : tag;
            for (long t = lo; t <= tag && t <= count; t++)
                if (t >= 1 && !confirmed[t]) {
                    confirmed[t] = 1;
                    acked++;
                }
        } else {
            fprintf(stderr, "srcpub: amqp: the broker answered method %08x after %ld confirms\n",
                    f.payload.method.id, acked);
            return 1;
        }
    }
    free(confirmed);
    amqp_channel_close(c, 1, AMQP_REPLY_SUCCESS);
    amqp_connection_close(c, AMQP_REPLY_SUCCESS);
    amqp_destroy_connection(c);
    return 0;
}

/* A writer that holds a source queue's lock: the daemon's next commit to it
 * fails (SQLITE_BUSY after its busy timeout), as on a full or failing disk. */
static int lock_db(const char *path, long ms)
{
    sqlite3 *db = NULL;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK ||
        sqlite3_exec(db, "BEGIN EXCLUSIVE", NULL, NULL, NULL) != SQLITE_OK) {
        fprintf(stderr, "srcpub: lock %s: %s\n", path, db ? sqlite3_errmsg(db) : "no memory");
        return 1;
    }
    printf("locked\n");
    fflush(stdout);
    struct timespec t = {ms / 1000, (ms % 1000) * 1000000};
    nanosleep(&t, NULL);
    sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
    sqlite3_close(db);
    return 0;
}

static int nats_consumers(char **a)
{
    natsConnection *nc = NULL;
    jsCtx *js = NULL;
    jsErrCode jerr = 0;
    jsConsumerNamesList *l = NULL;
    if (natsConnection_ConnectTo(&nc, a[0]) != NATS_OK ||
        natsConnection_JetStream(&js, nc, NULL) != NATS_OK) {
        fprintf(stderr, "srcpub: nats %s: cannot connect\n", a[0]);
        return 1;
    }
    natsStatus s = js_ConsumerNames(&l, js, a[1], NULL, &jerr);
    if (s != NATS_OK && s != NATS_NOT_FOUND) {
        fprintf(stderr, "srcpub: consumers of %s: %s (%d)\n", a[1], natsStatus_GetText(s), (int)jerr);
        return 1;
    }
    for (int i = 0; l && i < l->Count; i++)
        printf("%s\n", l->List[i]);
    jsConsumerNamesList_Destroy(l);
    jsCtx_Destroy(js);
    natsConnection_Destroy(nc);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 4 && strcmp(argv[1], "nats-consumers") == 0)
        return nats_consumers(argv + 2);
    if (argc == 4 && strcmp(argv[1], "amqp-get") == 0)
        return get_amqp(argv + 2);
    if (argc == 4 && strcmp(argv[1], "lock") == 0)
        return lock_db(argv[2], atol(argv[3]));
    if (argc == 7 && strcmp(argv[1], "nats") == 0)
        return pub_nats(argv + 2, atol(argv[5]), atol(argv[6]));
    if (argc == 7 && strcmp(argv[1], "mqtt") == 0)
        return pub_mqtt(argv + 2, atol(argv[5]), atol(argv[6]));
    if (argc == 6 && strcmp(argv[1], "amqp") == 0)
        return pub_amqp(argv + 2, atol(argv[4]), atol(argv[5]));
    fprintf(stderr, "usage: srcpub nats URL STREAM SUBJECT FIRST COUNT\n"
                    "       srcpub nats-consumers URL STREAM\n"
                    "       srcpub mqtt HOST PORT TOPIC FIRST COUNT\n"
                    "       srcpub amqp URL QUEUE FIRST COUNT\n"
                    "       srcpub amqp-get URL QUEUE\n"
                    "       srcpub lock DB MS\n");
    return 2;
}
