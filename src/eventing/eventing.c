/*
 * eventing.c — the ev_t object: applied eventing objects, their
 * persistence in DATA/eventing.db, PingSource timers on the loop, broker
 * ingress, and the metrics.
 *
 * Threads: the loop thread owns the object list and writes it under
 * objs_lock (a rwlock); consumer threads only read it (publishing reply
 * events into a broker), holding the read side. Each source and trigger
 * has a consumer thread (consumer.c); with --redis a publisher thread does
 * the XADDs of broker ingress so the loop never waits on Redis, and hands
 * the answers back through a uv_async.
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <hiredis/hiredis.h>
#include <sqlite3.h>

#include "eventing/internal.h"
#include "common/rfc3339.h"

enum { OBJ_PING, OBJ_REDIS, OBJ_BROKER, OBJ_TRIGGER };

static const struct {
    const char *api, *kind;
} kinds[] = {
    [OBJ_PING] = {"sources.knative.dev/v1", "PingSource"},
    [OBJ_REDIS] = {"sources.knative.dev/v1alpha1", "RedisStreamSource"},
    [OBJ_BROKER] = {"eventing.knative.dev/v1", "Broker"},
    [OBJ_TRIGGER] = {"eventing.knative.dev/v1", "Trigger"},
};

typedef struct obj {
    struct obj *next;
    int kind;
    char name[128];
    char *doc;              /* the applied document, compact JSON */
    ev_consumer_t *consumer;
    /* PingSource */
    ev_cron_t cron;
    uv_timer_t *timer;
    int64_t next_fire_ms, last_fire_ms;
    ev_event_t *tmpl;       /* data, datacontenttype, extensions */
    /* Trigger */
    char broker[128];
    ev_filter_t filter;
    bool has_delivery;
    /* Broker */
    ev_delivery_t delivery;
    cJSON *delivery_json;
    struct ev *ev;
} obj_t;

typedef struct ingress_job {
    struct ingress_job *next;
    hs_req_t *req;
    char broker[128];
    ev_event_t *event;
    int status;
    char error[256];
} ingress_job_t;

struct ev {
    uv_loop_t *loop;
    char data_dir[1024];
    char redis_host[256];
    int redis_port; /* 0: no --redis */
    int (*sink_url)(void *, const char *, char *, size_t);
    int (*sink_max_scale)(void *, const char *);
    void *sink_ud;
    size_t max_event_bytes;
    size_t queue_max_bytes_per_trigger, queue_max_bytes;
    size_t queue_bytes; /* held by every memory feed; atomic (any thread) */
    char consumer_name[128];

    sqlite3 *db;
    ev_deliverer_t *deliverer;

    pthread_rwlock_t objs_lock; /* writes: loop thread; reads: consumers */
    obj_t *objs;

    /* metrics (NULL without a registry) */
    mx_family_t *m_events, *m_src_backlog, *m_src_par, *m_trg_backlog, *m_trg_par, *m_ingress;

    /* consumer threads alive (drain waits for 0) */
    pthread_mutex_t live_mu;
    pthread_cond_t live_cv;
    int live;

    /* broker ingress with --redis */
    pthread_t pub_thread;
    bool pub_started;
    pthread_mutex_t pub_mu; /* guards the two queues and pub_stop */
    pthread_cond_t pub_cv;
    ingress_job_t *pub_queue, *pub_done;
    bool pub_stop;
    int pub_pending; /* loop thread: jobs not answered yet */
    uv_async_t *pub_async;
    uv_timer_t *drain_timer;

    bool draining, drained;
    void (*drain_done)(void *);
    void *drain_ud;
    int open_handles;
    bool freed;
};

/* ---- small helpers ---- */

int ev_service_url(ev_t *ev, const char *name, char *url, size_t len)
{
    if (!ev->sink_url)
        return -1;
    return ev->sink_url(ev->sink_ud, name, url, len);
}

int ev_service_max_scale(ev_t *ev, const char *name)
{
    int m = ev->sink_max_scale ? ev->sink_max_scale(ev->sink_ud, name) : 0;
    return m > 0 ? m : 10;
}

ev_deliverer_t *ev_get_deliverer(ev_t *ev) { return ev->deliverer; }
size_t ev_max_event_bytes(ev_t *ev) { return ev->max_event_bytes; }
size_t ev_queue_max_bytes_per_trigger(ev_t *ev) { return ev->queue_max_bytes_per_trigger; }
size_t ev_queue_max_bytes(ev_t *ev) { return ev->queue_max_bytes; }
size_t ev_queue_bytes(ev_t *ev) { return __atomic_load_n(&ev->queue_bytes, __ATOMIC_RELAXED); }

bool ev_queue_reserve(ev_t *ev, size_t bytes)
{
    size_t cur = __atomic_load_n(&ev->queue_bytes, __ATOMIC_RELAXED);
    do {
        if (bytes > ev->queue_max_bytes || cur > ev->queue_max_bytes - bytes)
            return false;
    } while (!__atomic_compare_exchange_n(&ev->queue_bytes, &cur, cur + bytes, true,
                                          __ATOMIC_RELAXED, __ATOMIC_RELAXED));
    return true;
}

void ev_queue_release(ev_t *ev, size_t bytes)
{
    __atomic_fetch_sub(&ev->queue_bytes, bytes, __ATOMIC_RELAXED);
}

const char *ev_redis_host(ev_t *ev, int *port)
{
    if (!ev->redis_port)
        return NULL;
    if (port)
        *port = ev->redis_port;
    return ev->redis_host;
}

void ev_consumer_exited(ev_t *ev)
{
    pthread_mutex_lock(&ev->live_mu);
    ev->live--;
    pthread_cond_broadcast(&ev->live_cv);
    pthread_mutex_unlock(&ev->live_mu);
}

void ev_metric_event(ev_t *ev, bool is_trigger, const char *name, const char *outcome)
{
    if (!ev->m_events)
        return;
    const char *v[] = {is_trigger ? "" : name, is_trigger ? name : "", outcome};
    mx_counter_add(ev->m_events, v, 1);
}

void ev_metric_backlog(ev_t *ev, bool is_trigger, const char *name, double backlog, double parallel)
{
    if (!ev->m_src_backlog)
        return;
    const char *v[] = {name};
    mx_gauge_set(is_trigger ? ev->m_trg_backlog : ev->m_src_backlog, v, backlog);
    mx_gauge_set(is_trigger ? ev->m_trg_par : ev->m_src_par, v, parallel);
}

static obj_t *obj_find(ev_t *ev, int kind, const char *name)
{
    for (obj_t *o = ev->objs; o; o = o->next)
        if (o->kind == kind && strcmp(o->name, name) == 0)
            return o;
    return NULL;
}

static void filter_free(ev_filter_t *f)
{
    for (size_t i = 0; i < f->n; i++) {
        free(f->attrs[i].name);
        free(f->attrs[i].value);
    }
    free(f->attrs);
    f->attrs = NULL;
    f->n = 0;
}

static void timer_closed(uv_handle_t *h)
{
    ev_t *ev = h->data;
    free(h);
    ev->open_handles--;
    if (ev->freed && ev->open_handles == 0)
        free(ev);
}

static void obj_free(obj_t *o, bool deleted)
{
    if (o->consumer)
        ev_consumer_stop(o->consumer, deleted && o->kind == OBJ_TRIGGER);
    if (o->timer) {
        uv_timer_stop(o->timer);
        o->timer->data = o->ev;
        uv_close((uv_handle_t *)o->timer, timer_closed);
    }
    ev_event_free(o->tmpl);
    filter_free(&o->filter);
    cJSON_Delete(o->delivery_json);
    free(o->doc);
    free(o);
}

/* ---- persistence ---- */

static int db_exec(ev_t *ev, const char *sql)
{
    char *msg = NULL;
    if (sqlite3_exec(ev->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        fprintf(stderr, "eventing: sqlite: %s\n", msg ? msg : "?");
        sqlite3_free(msg);
        return -1;
    }
    return 0;
}

static int db_put(ev_t *ev, const obj_t *o)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(ev->db, "INSERT OR REPLACE INTO objects(kind,name,doc) VALUES(?,?,?)",
                           -1, &st, NULL) != SQLITE_OK)
        return -1;
    sqlite3_bind_text(st, 1, kinds[o->kind].kind, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, o->name, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, o->doc, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? 0 : -1;
}

static void db_del(ev_t *ev, int kind, const char *name)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(ev->db, "DELETE FROM objects WHERE kind=? AND name=?", -1, &st, NULL) ==
        SQLITE_OK) {
        sqlite3_bind_text(st, 1, kinds[kind].kind, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, name, -1, SQLITE_STATIC);
        sqlite3_step(st);
        sqlite3_finalize(st);
    }
    if (kind == OBJ_PING &&
        sqlite3_prepare_v2(ev->db, "DELETE FROM ping_state WHERE name=?", -1, &st, NULL) ==
            SQLITE_OK) {
        sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
        sqlite3_step(st);
        sqlite3_finalize(st);
    }
}

static int64_t db_last_fire(ev_t *ev, const char *name)
{
    sqlite3_stmt *st;
    int64_t v = 0;
    if (sqlite3_prepare_v2(ev->db, "SELECT last_fire_ms FROM ping_state WHERE name=?", -1, &st,
                           NULL) != SQLITE_OK)
        return 0;
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    if (sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return v;
}

static void db_set_last_fire(ev_t *ev, const char *name, int64_t ms)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(ev->db,
                           "INSERT OR REPLACE INTO ping_state(name,last_fire_ms) VALUES(?,?)", -1,
                           &st, NULL) != SQLITE_OK)
        return;
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, ms);
    sqlite3_step(st);
    sqlite3_finalize(st);
}

/* ---- building objects from documents ---- */

#define FAIL(...)                                                                                  \
    do {                                                                                           \
        snprintf(err, errlen, __VA_ARGS__);                                                        \
        goto fail;                                                                                 \
    } while (0)

static void warn_unknown(const cJSON *obj, const char *path, const char *const *known,
                         cJSON *warnings)
{
    if (!cJSON_IsObject(obj) || !warnings)
        return;
    for (const cJSON *it = obj->child; it; it = it->next) {
        bool ok = false;
        for (size_t i = 0; known[i]; i++)
            if (strcmp(it->string, known[i]) == 0)
                ok = true;
        if (!ok) {
            char w[300];
            snprintf(w, sizeof w, "%s.%.200s: unknown field, ignored", path, it->string);
            cJSON_AddItemToArray(warnings, cJSON_CreateString(w));
        }
    }
}

static const char *str_field(const cJSON *o, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static int annotation_int(const cJSON *doc, const char *key, const char *alt, int dflt, char *err,
                          size_t errlen)
{
    const cJSON *md = cJSON_GetObjectItemCaseSensitive(doc, "metadata");
    const cJSON *an = cJSON_GetObjectItemCaseSensitive(md, "annotations");
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(an, key);
    if (!v && alt)
        v = cJSON_GetObjectItemCaseSensitive(an, alt);
    if (!v)
        return dflt;
    long n = -1;
    if (cJSON_IsString(v)) {
        char *end;
        n = strtol(v->valuestring, &end, 10);
        if (*end || end == v->valuestring)
            n = -1;
    } else if (cJSON_IsNumber(v)) {
        n = (long)v->valuedouble;
    }
    if (n < 0 || n > 100000) {
        snprintf(err, errlen, "metadata.annotations.%s: must be a non-negative integer", key);
        return -2;
    }
    return (int)n;
}

static bool name_ok(const char *n)
{
    size_t len = strlen(n);
    if (len == 0 || len > 63)
        return false;
    for (const char *p = n; *p; p++)
        if (!(islower((unsigned char)*p) || isdigit((unsigned char)*p) || *p == '-' || *p == '.'))
            return false;
    return true;
}

/* Parses the spec of o->kind from doc into o (no threads started). */
static int obj_parse(ev_t *ev, obj_t *o, const cJSON *doc, cJSON *warnings, char *err,
                     size_t errlen)
{
    const cJSON *spec = cJSON_GetObjectItemCaseSensitive(doc, "spec");
    if (spec && !cJSON_IsObject(spec))
        FAIL("spec: must be an object");
    switch (o->kind) {
    case OBJ_PING: {
        static const char *const known[] = {"schedule", "timezone", "data", "dataBase64",
                                            "contentType", "sink", "delivery", "ceOverrides",
                                            NULL};
        warn_unknown(spec, "spec", known, warnings);
        const char *sched = str_field(spec, "schedule");
        if (!sched)
            FAIL("spec.schedule: required (a cron schedule like \"*/5 * * * *\")");
        const cJSON *tzj = cJSON_GetObjectItemCaseSensitive(spec, "timezone");
        if (tzj && !cJSON_IsString(tzj))
            FAIL("spec.timezone: must be a string");
        const char *tz = tzj ? tzj->valuestring : NULL;
        if (tz && *tz && !ev_tz_valid(tz))
            FAIL("spec.timezone: unknown time zone \"%.60s\"", tz);
        char cerr[200];
        if (ev_cron_parse(sched, tz, &o->cron, cerr, sizeof cerr))
            FAIL("spec.schedule: %s", cerr);
        o->tmpl = ev_event_new();
        if (!o->tmpl)
            FAIL("out of memory");
        const char *ct = str_field(spec, "contentType");
        const char *data = str_field(spec, "data");
        const char *data64 = str_field(spec, "dataBase64");
        if (data && data64)
            FAIL("spec.data: give data or dataBase64, not both");
        if (data) {
            ev_event_set_data(o->tmpl, data, strlen(data));
        } else if (data64) {
            size_t n;
            uint8_t *b = ev_base64_decode(data64, &n);
            if (!b)
                FAIL("spec.dataBase64: not valid base64");
            free(o->tmpl->data);
            o->tmpl->data = b;
            o->tmpl->data_len = n;
        }
        if (ct)
            ev_event_set(o->tmpl, "datacontenttype", ct);
        const cJSON *ext = cJSON_GetObjectItemCaseSensitive(
            cJSON_GetObjectItemCaseSensitive(spec, "ceOverrides"), "extensions");
        for (const cJSON *it = ext ? ext->child : NULL; it; it = it->next) {
            if (!cJSON_IsString(it))
                FAIL("spec.ceOverrides.extensions.%.60s: must be a string", it->string);
            ev_event_set(o->tmpl, it->string, it->valuestring);
        }
        break;
    }
    case OBJ_REDIS: {
        static const char *const known[] = {"address", "stream",   "group",        "sink",
                                            "delivery", "consumer", "claimMinIdle", "startFrom",
                                            NULL};
        warn_unknown(spec, "spec", known, warnings);
        const char *addr = str_field(spec, "address");
        char host[256], stream[8];
        int port;
        if (!addr || ev_redis_url_parse(addr, host, sizeof host, &port, stream, sizeof stream))
            FAIL("spec.address: required, like redis://HOST:PORT");
        if (!str_field(spec, "stream") || !str_field(spec, "stream")[0])
            FAIL("spec.stream: required");
        if (strlen(str_field(spec, "stream")) > 400)
            FAIL("spec.stream: too long");
        const char *g = str_field(spec, "group");
        if (g && (!*g || strlen(g) > 200))
            FAIL("spec.group: must be a non-empty string of at most 200 bytes");
        const char *cons = str_field(spec, "consumer");
        if (cons && (!*cons || strlen(cons) > 120))
            FAIL("spec.consumer: must be a non-empty string of at most 120 bytes");
        const char *idle = str_field(spec, "claimMinIdle");
        if (idle && ev_iso_duration_ms(idle) <= 0)
            FAIL("spec.claimMinIdle: must be an ISO 8601 duration like PT60S");
        const char *from = str_field(spec, "startFrom");
        if (from && strcmp(from, "0") != 0 && strcmp(from, "$") != 0)
            FAIL("spec.startFrom: must be \"0\" (the whole stream) or \"$\" (new entries)");
        break;
    }
    case OBJ_BROKER: {
        static const char *const known[] = {"delivery", "config", NULL};
        warn_unknown(spec, "spec", known, warnings);
        if (ev_delivery_parse(cJSON_GetObjectItemCaseSensitive(spec, "delivery"), "spec.delivery",
                              &o->delivery, err, errlen))
            return -1;
        const cJSON *d = cJSON_GetObjectItemCaseSensitive(spec, "delivery");
        if (d)
            o->delivery_json = cJSON_Duplicate(d, 1);
        break;
    }
    case OBJ_TRIGGER: {
        static const char *const known[] = {"broker", "filter", "subscriber", "delivery", NULL};
        warn_unknown(spec, "spec", known, warnings);
        const char *b = str_field(spec, "broker");
        if (!b)
            b = "default";
        if (!name_ok(b))
            FAIL("spec.broker: \"%.60s\" is not a valid name", b);
        snprintf(o->broker, sizeof o->broker, "%s", b);
        const cJSON *filter = cJSON_GetObjectItemCaseSensitive(spec, "filter");
        const cJSON *attrs = cJSON_GetObjectItemCaseSensitive(filter, "attributes");
        if (filter && !cJSON_IsObject(filter))
            FAIL("spec.filter: must be an object");
        if (attrs && !cJSON_IsObject(attrs))
            FAIL("spec.filter.attributes: must be an object");
        int n = attrs ? cJSON_GetArraySize(attrs) : 0;
        if (n) {
            o->filter.attrs = calloc((size_t)n, sizeof(ev_attr_t));
            if (!o->filter.attrs)
                FAIL("out of memory");
        }
        for (const cJSON *it = attrs ? attrs->child : NULL; it; it = it->next) {
            if (!cJSON_IsString(it))
                FAIL("spec.filter.attributes.%.60s: must be a string", it->string);
            o->filter.attrs[o->filter.n].name = strdup(it->string);
            o->filter.attrs[o->filter.n].value = strdup(it->valuestring);
            o->filter.n++;
        }
        o->has_delivery = cJSON_GetObjectItemCaseSensitive(spec, "delivery") != NULL;
        break;
    }
    }
    if (o->kind != OBJ_BROKER) {
        ev_sink_t sink;
        const char *sink_field = o->kind == OBJ_TRIGGER ? "subscriber" : "sink";
        char path[32];
        snprintf(path, sizeof path, "spec.%s", sink_field);
        if (ev_sink_parse(cJSON_GetObjectItemCaseSensitive(spec, sink_field), path, &sink, err,
                          errlen))
            return -1;
        ev_delivery_t d;
        if (ev_delivery_parse(cJSON_GetObjectItemCaseSensitive(spec, "delivery"), "spec.delivery",
                              &d, err, errlen))
            return -1;
    }
    if (annotation_int(doc, "autoscaling.knative.dev/target", NULL, 0, err, errlen) == -2 ||
        annotation_int(doc, "autoscaling.knative.dev/max-scale", "autoscaling.knative.dev/maxScale",
                       0, err, errlen) == -2)
        return -1;
    (void)ev;
    return 0;
fail:
    return -1;
}

/* ---- PingSource timers ---- */

static void ping_arm(obj_t *o);

static void ping_fire(uv_timer_t *t)
{
    obj_t *o = t->data;
    ev_t *ev = o->ev;
    int64_t now = ev_now_ms();
    if (now + 2 < o->next_fire_ms) {
        ping_arm(o); /* early (wall clock moved): wait the rest */
        return;
    }
    int64_t fire = o->next_fire_ms;
    ev_event_t *e = ev_event_clone(o->tmpl);
    if (e) {
        char id[37], tm[32], src[256];
        ev_uuid(id);
        cm_rfc3339_format((fire) * 1000000, CM_RFC3339_MILLIS, tm, sizeof tm);
        snprintf(src, sizeof src, "/apis/v1/namespaces/default/pingsources/%s", o->name);
        ev_event_set(e, "specversion", "1.0");
        ev_event_set(e, "id", id);
        ev_event_set(e, "source", src);
        ev_event_set(e, "type", "dev.knative.sources.ping");
        ev_event_set(e, "time", tm);
        char err[256];
        if (o->consumer && ev_consumer_push(o->consumer, e, err, sizeof err))
            fprintf(stderr, "eventing: pingsource %s: tick dropped: %s\n", o->name, err);
        ev_event_free(e);
    }
    o->last_fire_ms = fire;
    db_set_last_fire(ev, o->name, fire);
    o->next_fire_ms = ev_cron_next(&o->cron, now > fire ? now : fire, fire);
    ping_arm(o);
}

static void ping_arm(obj_t *o)
{
    if (o->next_fire_ms < 0 || o->ev->draining)
        return;
    int64_t delay = o->next_fire_ms - ev_now_ms();
    if (delay < 0)
        delay = 0;
    uv_timer_start(o->timer, ping_fire, (uint64_t)delay, 0);
}

/* ---- starting objects ---- */

static const ev_delivery_t *broker_delivery(ev_t *ev, const char *broker)
{
    obj_t *b = obj_find(ev, OBJ_BROKER, broker);
    return b ? &b->delivery : NULL;
}

static int obj_start(ev_t *ev, obj_t *o, const cJSON *doc, char *err, size_t errlen)
{
    const cJSON *spec = cJSON_GetObjectItemCaseSensitive(doc, "spec");
    if (o->kind == OBJ_BROKER)
        return 0;
    ev_consumer_config_t cc = {0};
    cc.name = o->name;
    cc.is_trigger = o->kind == OBJ_TRIGGER;
    const char *sink_field = o->kind == OBJ_TRIGGER ? "subscriber" : "sink";
    ev_sink_parse(cJSON_GetObjectItemCaseSensitive(spec, sink_field), "", &cc.sink, err, errlen);
    ev_delivery_parse(cJSON_GetObjectItemCaseSensitive(spec, "delivery"), "", &cc.delivery, err,
                      errlen);
    cc.target = annotation_int(doc, "autoscaling.knative.dev/target", NULL, 0, err, errlen);
    cc.max_parallel = annotation_int(doc, "autoscaling.knative.dev/max-scale",
                                     "autoscaling.knative.dev/maxScale", 0, err, errlen);
    char host[256], stream[512], group[300], src[800], start_id[32];
    switch (o->kind) {
    case OBJ_PING: {
        if (cc.target <= 0)
            cc.target = 1;
        int64_t now = ev_now_ms();
        o->last_fire_ms = db_last_fire(ev, o->name);
        int64_t anchor = o->last_fire_ms ? o->last_fire_ms : now;
        /* Never replay: the next tick is the first after now. */
        o->next_fire_ms = ev_cron_next(&o->cron, now, anchor);
        o->timer = malloc(sizeof *o->timer);
        if (!o->timer)
            return -1;
        uv_timer_init(ev->loop, o->timer);
        o->timer->data = o;
        ev->open_handles++;
        break;
    }
    case OBJ_REDIS: {
        int port;
        ev_redis_url_parse(str_field(spec, "address"), host, sizeof host, &port, NULL, 0);
        cc.host = host;
        cc.port = port;
        snprintf(stream, sizeof stream, "%s", str_field(spec, "stream"));
        cc.stream = stream;
        const char *g = str_field(spec, "group");
        snprintf(group, sizeof group, "%s", g ? g : o->name);
        cc.group = group;
        const char *cons = str_field(spec, "consumer");
        cc.consumer = cons ? cons : ev->consumer_name;
        const char *from = str_field(spec, "startFrom");
        cc.start_id = from ? from : "0";
        const char *idle = str_field(spec, "claimMinIdle");
        cc.claim_min_idle_ms = idle ? ev_iso_duration_ms(idle) : 60000;
        cc.raw_entries = true;
        snprintf(src, sizeof src, "redis://%s:%d/%s", host, port, stream);
        cc.source_attr = src;
        break;
    }
    case OBJ_TRIGGER: {
        if (!o->has_delivery) {
            const ev_delivery_t *bd = broker_delivery(ev, o->broker);
            if (bd)
                cc.delivery = *bd;
        }
        cc.reply_broker = o->broker;
        snprintf(src, sizeof src, "broker:%s", o->broker);
        cc.source_attr = src;
        if (ev->redis_port) {
            cc.host = ev->redis_host;
            cc.port = ev->redis_port;
            snprintf(stream, sizeof stream, "wasmfn:broker:%s", o->broker);
            cc.stream = stream;
            snprintf(group, sizeof group, "wasmfn-trigger-%s", o->name);
            cc.group = group;
            cc.consumer = ev->consumer_name;
            /* A new trigger sees the events accepted from now on: its group
             * starts at the apply time (less a second for clock skew with
             * the Redis server), not at "$" when its thread gets there. */
            snprintf(start_id, sizeof start_id, "%lld-0", (long long)(ev_now_ms() - 1000));
            cc.start_id = start_id;
            cc.claim_min_idle_ms = 60000;
            cc.filter = &o->filter;
        }
        break;
    }
    }
    pthread_mutex_lock(&ev->live_mu);
    ev->live++;
    pthread_mutex_unlock(&ev->live_mu);
    o->consumer = ev_consumer_start(ev, &cc);
    if (!o->consumer) {
        ev_consumer_exited(ev);
        snprintf(err, errlen, "cannot start a consumer thread");
        return -1;
    }
    if (o->kind == OBJ_PING)
        ping_arm(o);
    return 0;
}

/* ---- apply / delete / list ---- */

int ev_handles_kind(const char *api_version, const char *kind)
{
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++)
        if (api_version && kind && strcmp(api_version, kinds[i].api) == 0 &&
            strcmp(kind, kinds[i].kind) == 0)
            return 1;
    return 0;
}

static int kind_index(const char *kind)
{
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++)
        if (kind && strcasecmp(kind, kinds[i].kind) == 0)
            return (int)i;
    return -1;
}

/* Builds, persists (when persist) and starts an object; replaces an
 * existing one of the same kind and name. */
static int apply_doc(ev_t *ev, const cJSON *doc, bool persist, bool *created, cJSON *warnings,
                     char *err, size_t errlen)
{
    const char *api = str_field(doc, "apiVersion");
    const char *kind = str_field(doc, "kind");
    if (!api)
        FAIL("apiVersion: required");
    if (!kind)
        FAIL("kind: required");
    int k = kind_index(kind);
    if (k < 0 || strcmp(api, kinds[k].api) != 0)
        FAIL("kind: %.60s %.60s is not an eventing kind (PingSource sources.knative.dev/v1, "
             "RedisStreamSource sources.knative.dev/v1alpha1, Broker and Trigger "
             "eventing.knative.dev/v1)",
             api, kind);
    const char *name = str_field(cJSON_GetObjectItemCaseSensitive(doc, "metadata"), "name");
    if (!name)
        FAIL("metadata.name: required");
    if (!name_ok(name))
        FAIL("metadata.name: \"%.60s\" must be lower-case letters, digits, '-' and '.', at most "
             "63",
             name);
    if (ev->draining)
        FAIL("eventing is shutting down");
    char *text = cJSON_PrintUnformatted(doc);
    if (!text)
        FAIL("out of memory");
    obj_t *old = obj_find(ev, k, name);
    if (old && strcmp(old->doc, text) == 0) {
        free(text);
        *created = false;
        return 0;
    }
    obj_t *o = calloc(1, sizeof *o);
    if (!o) {
        free(text);
        FAIL("out of memory");
    }
    o->kind = k;
    o->ev = ev;
    o->doc = text;
    snprintf(o->name, sizeof o->name, "%s", name);
    if (obj_parse(ev, o, doc, warnings, err, errlen)) {
        obj_free(o, false);
        return -1;
    }
    if (persist && db_put(ev, o)) {
        obj_free(o, false);
        FAIL("cannot save %s %s: %s", kinds[k].kind, name, sqlite3_errmsg(ev->db));
    }
    /* Swap under the write lock, then start outside it. */
    pthread_rwlock_wrlock(&ev->objs_lock);
    obj_t **pp = &ev->objs;
    while (*pp && *pp != old)
        pp = &(*pp)->next;
    if (old)
        *pp = old->next;
    o->next = ev->objs;
    ev->objs = o;
    pthread_rwlock_unlock(&ev->objs_lock);
    if (old)
        obj_free(old, false);
    *created = true;
    if (obj_start(ev, o, doc, err, errlen))
        return -1;
    /* Triggers without their own delivery follow their broker's. */
    if (k == OBJ_BROKER) {
        for (obj_t *t = ev->objs; t; t = t->next) {
            if (t->kind != OBJ_TRIGGER || t->has_delivery || strcmp(t->broker, name) != 0)
                continue;
            if (t->consumer)
                ev_consumer_stop(t->consumer, false);
            t->consumer = NULL;
            cJSON *tdoc = cJSON_Parse(t->doc);
            char e2[256];
            if (tdoc && obj_start(ev, t, tdoc, e2, sizeof e2))
                fprintf(stderr, "eventing: trigger %s: %s\n", t->name, e2);
            cJSON_Delete(tdoc);
        }
    }
    return 0;
fail:
    return -1;
}

int ev_apply(ev_t *ev, const cJSON *doc, char *out, size_t len)
{
    cJSON *warnings = cJSON_CreateArray();
    bool created = false;
    char err[512];
    if (!cJSON_IsObject(doc)) {
        cJSON_Delete(warnings);
        snprintf(out, len, "document: must be an object");
        return -1;
    }
    if (apply_doc(ev, doc, true, &created, warnings, err, sizeof err)) {
        cJSON_Delete(warnings);
        snprintf(out, len, "%s", err);
        return -1;
    }
    cJSON *r = cJSON_CreateObject();
    cJSON_AddStringToObject(r, "kind", str_field(doc, "kind"));
    cJSON_AddStringToObject(r, "name",
                            str_field(cJSON_GetObjectItemCaseSensitive(doc, "metadata"), "name"));
    cJSON_AddBoolToObject(r, "created", created);
    cJSON_AddItemToObject(r, "warnings", warnings);
    char *s = cJSON_PrintUnformatted(r);
    cJSON_Delete(r);
    snprintf(out, len, "%s", s ? s : "{}");
    free(s);
    return 0;
}

int ev_delete(ev_t *ev, const char *kind, const char *name)
{
    int k = kind_index(kind);
    if (k < 0 || !name)
        return -1;
    obj_t *o = obj_find(ev, k, name);
    if (!o)
        return -1;
    pthread_rwlock_wrlock(&ev->objs_lock);
    obj_t **pp = &ev->objs;
    while (*pp != o)
        pp = &(*pp)->next;
    *pp = o->next;
    pthread_rwlock_unlock(&ev->objs_lock);
    db_del(ev, k, name);
    if (ev->m_src_backlog) {
        mx_family_t *fb = k == OBJ_TRIGGER ? ev->m_trg_backlog : ev->m_src_backlog;
        mx_family_t *fp = k == OBJ_TRIGGER ? ev->m_trg_par : ev->m_src_par;
        if (k != OBJ_BROKER) {
            mx_family_remove_first_label(fb, name);
            mx_family_remove_first_label(fp, name);
        }
    }
    obj_free(o, true);
    return 0;
}

char *ev_list_json(ev_t *ev)
{
    cJSON *arr = cJSON_CreateArray();
    for (obj_t *o = ev->objs; o; o = o->next) {
        cJSON *doc = cJSON_Parse(o->doc);
        cJSON *it = cJSON_CreateObject();
        cJSON_AddStringToObject(it, "kind", kinds[o->kind].kind);
        cJSON_AddStringToObject(it, "apiVersion", kinds[o->kind].api);
        cJSON_AddStringToObject(it, "name", o->name);
        cJSON *spec = cJSON_DetachItemFromObjectCaseSensitive(doc, "spec");
        cJSON_AddItemToObject(it, "spec", spec ? spec : cJSON_CreateObject());
        cJSON_Delete(doc);
        cJSON *st = cJSON_AddObjectToObject(it, "status");
        if (o->consumer) {
            long backlog, delivered, dead;
            int par;
            ev_consumer_stats(o->consumer, &backlog, &par, &delivered, &dead);
            cJSON_AddNumberToObject(st, "backlog", (double)backlog);
            cJSON_AddNumberToObject(st, "parallelism", par);
            cJSON_AddNumberToObject(st, "delivered", (double)delivered);
            cJSON_AddNumberToObject(st, "deadLettered", (double)dead);
        }
        if (o->kind == OBJ_PING) {
            char tm[32];
            if (o->next_fire_ms > 0) {
                cm_rfc3339_format((o->next_fire_ms) * 1000000, CM_RFC3339_MILLIS, tm, sizeof tm);
                cJSON_AddStringToObject(st, "nextFire", tm);
            }
            if (o->last_fire_ms > 0) {
                cm_rfc3339_format((o->last_fire_ms) * 1000000, CM_RFC3339_MILLIS, tm, sizeof tm);
                cJSON_AddStringToObject(st, "lastFire", tm);
            }
        }
        if (o->kind == OBJ_BROKER)
            cJSON_AddStringToObject(st, "address", ev->redis_port ? "redis" : "memory");
        cJSON_AddItemToArray(arr, it);
    }
    char *s = cJSON_PrintUnformatted(arr);
    cJSON_Delete(arr);
    return s;
}

/* ---- brokers ---- */

int ev_broker_publish(ev_t *ev, const char *broker, const ev_event_t *e, redisContext *redis,
                      char *err, size_t errlen)
{
    pthread_rwlock_rdlock(&ev->objs_lock);
    bool exists = false;
    for (obj_t *o = ev->objs; o; o = o->next)
        if (o->kind == OBJ_BROKER && strcmp(o->name, broker) == 0)
            exists = true;
    if (!exists) {
        pthread_rwlock_unlock(&ev->objs_lock);
        snprintf(err, errlen, "no broker %.100s", broker);
        return -1;
    }
    if (!ev->redis_port) {
        /* Every matching trigger gets a copy. Check them all first, so that
         * an event refused for lack of room reaches none of them (a client
         * retrying it then makes no duplicates). Consumers only ever free
         * room meanwhile; two publishers at once may both pass the check,
         * and then the push itself refuses. */
        size_t bytes = ev_event_bytes(e), n = 0;
        const char *full = NULL;
        for (obj_t *o = ev->objs; o; o = o->next)
            if (o->kind == OBJ_TRIGGER && o->consumer && strcmp(o->broker, broker) == 0 &&
                ev_filter_match(&o->filter, e)) {
                n++;
                if (!full && !ev_consumer_has_room(o->consumer, bytes))
                    full = o->name;
            }
        if (full) {
            pthread_rwlock_unlock(&ev->objs_lock);
            snprintf(err, errlen,
                     "broker %.100s: trigger %.100s holds its bound of %zu queued bytes; "
                     "retry later", broker, full, ev->queue_max_bytes_per_trigger);
            return EV_PUBLISH_FULL;
        }
        size_t used = ev_queue_bytes(ev);
        if (n && (used > ev->queue_max_bytes || bytes * n > ev->queue_max_bytes - used)) {
            pthread_rwlock_unlock(&ev->objs_lock);
            snprintf(err, errlen,
                     "broker %.100s: memory brokers hold their bound of %zu queued bytes; "
                     "retry later", broker, ev->queue_max_bytes);
            return EV_PUBLISH_FULL;
        }
        int rc = 0;
        for (obj_t *o = ev->objs; o; o = o->next)
            if (o->kind == OBJ_TRIGGER && o->consumer && strcmp(o->broker, broker) == 0 &&
                ev_filter_match(&o->filter, e) && ev_consumer_push(o->consumer, e, err, errlen))
                rc = EV_PUBLISH_FULL;
        pthread_rwlock_unlock(&ev->objs_lock);
        return rc;
    }
    pthread_rwlock_unlock(&ev->objs_lock);
    if (!redis) {
        snprintf(err, errlen, "broker %.100s: no redis connection", broker);
        return -1;
    }
    char *json = ev_event_to_json(e);
    if (!json) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    char stream[200];
    snprintf(stream, sizeof stream, "wasmfn:broker:%s", broker);
    const char *argv[] = {"XADD", stream, "MAXLEN", "~", "1000000", "*", "event", json};
    redisReply *r = redisCommandArgv(redis, 8, argv, NULL);
    free(json);
    if (!r || r->type == REDIS_REPLY_ERROR) {
        snprintf(err, errlen, "XADD %s: %.150s", stream, r ? r->str : redis->errstr);
        freeReplyObject(r);
        return -1;
    }
    freeReplyObject(r);
    return 0;
}

static void *publisher_main(void *arg)
{
    ev_t *ev = arg;
    redisContext *rc = NULL;
    for (;;) {
        pthread_mutex_lock(&ev->pub_mu);
        while (!ev->pub_queue && !ev->pub_stop)
            pthread_cond_wait(&ev->pub_cv, &ev->pub_mu);
        ingress_job_t *j = ev->pub_queue;
        if (!j) {
            pthread_mutex_unlock(&ev->pub_mu);
            break;
        }
        ev->pub_queue = j->next;
        pthread_mutex_unlock(&ev->pub_mu);
        if (!rc)
            rc = ev_redis_connect(ev->redis_host, ev->redis_port, j->error, sizeof j->error);
        if (rc && ev_broker_publish(ev, j->broker, j->event, rc, j->error, sizeof j->error) == 0)
            j->status = 202;
        else
            j->status = 503;
        if (rc && rc->err) {
            redisFree(rc);
            rc = NULL;
        }
        pthread_mutex_lock(&ev->pub_mu);
        j->next = ev->pub_done;
        ev->pub_done = j;
        pthread_mutex_unlock(&ev->pub_mu);
        uv_async_send(ev->pub_async);
    }
    if (rc)
        redisFree(rc);
    return NULL;
}

/* Sent with a 503 when a memory broker's queues are full for now. */
static const hs_header_t RETRY_AFTER = {"Retry-After", "1"};

static void ingress_metric(ev_t *ev, const char *broker, const char *outcome)
{
    if (!ev->m_ingress)
        return;
    const char *v[] = {broker, outcome};
    mx_counter_add(ev->m_ingress, v, 1);
}

static void maybe_drained(ev_t *ev);

static void pub_async_cb(uv_async_t *a)
{
    ev_t *ev = a->data;
    pthread_mutex_lock(&ev->pub_mu);
    ingress_job_t *j = ev->pub_done;
    ev->pub_done = NULL;
    pthread_mutex_unlock(&ev->pub_mu);
    while (j) {
        ingress_job_t *next = j->next;
        if (j->status == 202) {
            ingress_metric(ev, j->broker, "accepted");
            hs_respond(j->req, 202, NULL, 0, NULL, 0);
        } else {
            ingress_metric(ev, j->broker, "failed");
            hs_respond_error(j->req, 503, NULL, 0, j->error);
        }
        ev->pub_pending--;
        ev_event_free(j->event);
        free(j);
        j = next;
    }
    maybe_drained(ev);
}

void ev_broker_ingress(ev_t *ev, const char *broker, hs_req_t *req)
{
    if (strcmp(req->method, "POST") != 0) {
        hs_header_t allow = {"Allow", "POST"};
        hs_respond(req, 405, &allow, 1, NULL, 0);
        return;
    }
    if (ev->draining) {
        hs_respond_error(req, 503, NULL, 0, "shutting down");
        return;
    }
    if (!broker || !obj_find(ev, OBJ_BROKER, broker)) {
        hs_respond_error(req, 404, NULL, 0, "no such broker");
        return;
    }
    ev_header_t *h = calloc(req->nheaders + 1, sizeof *h);
    if (!h) {
        hs_respond_error(req, 503, NULL, 0, "out of memory");
        return;
    }
    for (size_t i = 0; i < req->nheaders; i++) {
        h[i].name = req->headers[i].name;
        h[i].value = req->headers[i].value;
    }
    char err[256];
    ev_event_t *e = ev_event_from_http(h, req->nheaders, req->body, req->body_len,
                                       ev->max_event_bytes, err, sizeof err);
    free(h);
    if (!e) {
        ingress_metric(ev, broker, "rejected");
        hs_respond_error(req, 400, NULL, 0, err);
        return;
    }
    if (!ev->redis_port) {
        int r = ev_broker_publish(ev, broker, e, NULL, err, sizeof err);
        ev_event_free(e);
        if (r == EV_PUBLISH_FULL) {
            ingress_metric(ev, broker, "full");
            hs_respond_error(req, 503, &RETRY_AFTER, 1, err);
            return;
        }
        if (r) {
            ingress_metric(ev, broker, "failed");
            hs_respond_error(req, 503, NULL, 0, err);
            return;
        }
        ingress_metric(ev, broker, "accepted");
        hs_respond(req, 202, NULL, 0, NULL, 0);
        return;
    }
    ingress_job_t *j = calloc(1, sizeof *j);
    if (!j) {
        ev_event_free(e);
        hs_respond_error(req, 503, NULL, 0, "out of memory");
        return;
    }
    j->req = req;
    j->event = e;
    snprintf(j->broker, sizeof j->broker, "%s", broker);
    ev->pub_pending++;
    pthread_mutex_lock(&ev->pub_mu);
    ingress_job_t **pp = &ev->pub_queue;
    while (*pp)
        pp = &(*pp)->next;
    *pp = j;
    pthread_cond_signal(&ev->pub_cv);
    pthread_mutex_unlock(&ev->pub_mu);
}

/* ---- lifecycle ---- */

ev_t *ev_new(const ev_config_t *c, char *err, size_t errlen)
{
    ev_t *ev = calloc(1, sizeof *ev);
    if (!ev) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    ev->loop = c->loop;
    snprintf(ev->data_dir, sizeof ev->data_dir, "%s", c->data_dir ? c->data_dir : ".");
    ev->sink_url = c->sink_url;
    ev->sink_max_scale = c->sink_max_scale;
    ev->sink_ud = c->sink_ud;
    ev->max_event_bytes = c->max_event_bytes ? c->max_event_bytes : 1 << 20;
    ev->queue_max_bytes_per_trigger =
        c->max_queue_bytes_per_trigger ? c->max_queue_bytes_per_trigger : EV_QUEUE_BYTES_PER_TRIGGER;
    ev->queue_max_bytes = c->max_queue_bytes ? c->max_queue_bytes : EV_QUEUE_BYTES;
    pthread_rwlock_init(&ev->objs_lock, NULL);
    pthread_mutex_init(&ev->live_mu, NULL);
    pthread_cond_init(&ev->live_cv, NULL);
    pthread_mutex_init(&ev->pub_mu, NULL);
    pthread_cond_init(&ev->pub_cv, NULL);
    char hostname[64] = "local";
    gethostname(hostname, sizeof hostname - 1);
    snprintf(ev->consumer_name, sizeof ev->consumer_name, "wasmfn-%s", hostname);
    if (c->redis_url) {
        if (ev_redis_url_parse(c->redis_url, ev->redis_host, sizeof ev->redis_host,
                               &ev->redis_port, NULL, 0)) {
            snprintf(err, errlen, "--redis: \"%s\" is not redis://HOST:PORT", c->redis_url);
            goto fail;
        }
    }
    char path[1100];
    snprintf(path, sizeof path, "%s/eventing.db", ev->data_dir);
    if (sqlite3_open(path, &ev->db) != SQLITE_OK) {
        snprintf(err, errlen, "%s: %s", path, ev->db ? sqlite3_errmsg(ev->db) : "cannot open");
        goto fail;
    }
    sqlite3_busy_timeout(ev->db, 5000);
    if (db_exec(ev, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"
                    "CREATE TABLE IF NOT EXISTS objects(kind TEXT NOT NULL, name TEXT NOT NULL, "
                    "doc TEXT NOT NULL, PRIMARY KEY(kind, name));"
                    "CREATE TABLE IF NOT EXISTS ping_state(name TEXT PRIMARY KEY, "
                    "last_fire_ms INTEGER NOT NULL);")) {
        snprintf(err, errlen, "%s: cannot create eventing's tables", path);
        goto fail;
    }
    if (c->metrics) {
        static const char *const ev_labels[] = {"source", "trigger", "outcome", NULL};
        static const char *const src_labels[] = {"source", NULL};
        static const char *const trg_labels[] = {"trigger", NULL};
        static const char *const in_labels[] = {"broker", "outcome", NULL};
        ev->m_events = mx_family_new(c->metrics, "wasmfn_events_total",
                                     "Events by source or trigger and outcome "
                                     "(delivered, retried, dead_lettered, dropped).",
                                     MX_COUNTER, ev_labels, NULL, 0);
        ev->m_src_backlog = mx_family_new(c->metrics, "wasmfn_source_backlog",
                                          "Entries a source has not delivered yet (lag + pending).",
                                          MX_GAUGE, src_labels, NULL, 0);
        ev->m_src_par = mx_family_new(c->metrics, "wasmfn_source_parallelism",
                                      "Concurrent deliveries a source runs: ceil(backlog/target), "
                                      "capped by max-scale.",
                                      MX_GAUGE, src_labels, NULL, 0);
        ev->m_trg_backlog = mx_family_new(c->metrics, "wasmfn_trigger_backlog",
                                          "Events a trigger has not delivered yet.", MX_GAUGE,
                                          trg_labels, NULL, 0);
        ev->m_trg_par = mx_family_new(c->metrics, "wasmfn_trigger_parallelism",
                                      "Concurrent deliveries a trigger runs.", MX_GAUGE,
                                      trg_labels, NULL, 0);
        ev->m_ingress = mx_family_new(c->metrics, "wasmfn_broker_events_total",
                                      "Events posted to a broker's ingress by outcome.",
                                      MX_COUNTER, in_labels, NULL, 0);
        if (!ev->m_events || !ev->m_src_backlog || !ev->m_src_par || !ev->m_trg_backlog ||
            !ev->m_trg_par || !ev->m_ingress) {
            snprintf(err, errlen, "cannot register eventing's metrics");
            goto fail;
        }
    }
    ev->deliverer = ev_deliverer_new(ev->max_event_bytes);
    if (!ev->deliverer) {
        snprintf(err, errlen, "cannot start the delivery thread");
        goto fail;
    }
    if (ev->redis_port) {
        ev->pub_async = malloc(sizeof *ev->pub_async);
        if (!ev->pub_async || uv_async_init(ev->loop, ev->pub_async, pub_async_cb)) {
            free(ev->pub_async);
            ev->pub_async = NULL;
            snprintf(err, errlen, "cannot create the ingress async handle");
            goto fail;
        }
        ev->pub_async->data = ev;
        ev->open_handles++;
        if (pthread_create(&ev->pub_thread, NULL, publisher_main, ev)) {
            snprintf(err, errlen, "cannot start the ingress thread");
            goto fail;
        }
        ev->pub_started = true;
    }
    /* Brokers first, so triggers find their broker's delivery spec. */
    for (int pass = 0; pass < 2; pass++) {
        sqlite3_stmt *st;
        if (sqlite3_prepare_v2(ev->db, "SELECT kind, name, doc FROM objects ORDER BY kind, name",
                               -1, &st, NULL) != SQLITE_OK)
            break;
        while (sqlite3_step(st) == SQLITE_ROW) {
            const char *kind = (const char *)sqlite3_column_text(st, 0);
            bool is_broker = kind && strcmp(kind, "Broker") == 0;
            if (is_broker != (pass == 0))
                continue;
            const char *text = (const char *)sqlite3_column_text(st, 2);
            cJSON *doc = text ? cJSON_Parse(text) : NULL;
            bool created;
            char e2[512];
            if (!doc || apply_doc(ev, doc, false, &created, NULL, e2, sizeof e2))
                fprintf(stderr, "eventing: cannot restore %s %s: %s\n", kind,
                        (const char *)sqlite3_column_text(st, 1), doc ? e2 : "bad JSON");
            cJSON_Delete(doc);
        }
        sqlite3_finalize(st);
    }
    return ev;
fail:
    ev->drained = true;
    ev_free(ev);
    return NULL;
}

static void stop_everything(ev_t *ev)
{
    ev->draining = true;
    pthread_rwlock_wrlock(&ev->objs_lock);
    obj_t *o = ev->objs;
    ev->objs = NULL;
    pthread_rwlock_unlock(&ev->objs_lock);
    while (o) {
        obj_t *next = o->next;
        obj_free(o, false);
        o = next;
    }
}

static void drain_poll(uv_timer_t *t);

static void maybe_drained(ev_t *ev)
{
    if (!ev->draining || ev->drained || !ev->drain_done)
        return;
    pthread_mutex_lock(&ev->live_mu);
    int live = ev->live;
    pthread_mutex_unlock(&ev->live_mu);
    if (live > 0 || ev->pub_pending > 0)
        return;
    ev->drained = true;
    if (ev->drain_timer) {
        uv_timer_stop(ev->drain_timer);
        ev->drain_timer->data = ev;
        uv_close((uv_handle_t *)ev->drain_timer, timer_closed);
        ev->drain_timer = NULL;
    }
    if (ev->pub_async) {
        ev->pub_async->data = ev;
        uv_close((uv_handle_t *)ev->pub_async, timer_closed);
        ev->pub_async = NULL;
    }
    ev->drain_done(ev->drain_ud);
}

static void drain_poll(uv_timer_t *t)
{
    maybe_drained(t->data);
}

void ev_drain(ev_t *ev, void (*done)(void *), void *ud)
{
    ev->drain_done = done;
    ev->drain_ud = ud;
    stop_everything(ev);
    /* Consumer threads end on their own; poll their count from the loop. */
    ev->drain_timer = malloc(sizeof *ev->drain_timer);
    if (ev->drain_timer) {
        uv_timer_init(ev->loop, ev->drain_timer);
        ev->drain_timer->data = ev;
        ev->open_handles++;
        uv_timer_start(ev->drain_timer, drain_poll, 0, 20);
    }
    maybe_drained(ev);
}

void ev_free(ev_t *ev)
{
    if (!ev)
        return;
    stop_everything(ev);
    /* Wait for consumer threads (bounded by their attempts' timeouts). */
    pthread_mutex_lock(&ev->live_mu);
    while (ev->live > 0)
        pthread_cond_wait(&ev->live_cv, &ev->live_mu);
    pthread_mutex_unlock(&ev->live_mu);
    if (ev->pub_started) {
        pthread_mutex_lock(&ev->pub_mu);
        ev->pub_stop = true;
        pthread_cond_signal(&ev->pub_cv);
        pthread_mutex_unlock(&ev->pub_mu);
        pthread_join(ev->pub_thread, NULL);
    }
    /* Ingress jobs never answered (no drain): answer them now. */
    ingress_job_t *lists[2] = {ev->pub_queue, ev->pub_done};
    for (int i = 0; i < 2; i++)
        for (ingress_job_t *j = lists[i], *n; j; j = n) {
            n = j->next;
            hs_respond_error(j->req, 503, NULL, 0, "shutting down");
            ev_event_free(j->event);
            free(j);
        }
    ev_deliverer_free(ev->deliverer);
    if (ev->db)
        sqlite3_close(ev->db);
    if (ev->drain_timer) {
        uv_timer_stop(ev->drain_timer);
        uv_close((uv_handle_t *)ev->drain_timer, timer_closed);
    }
    if (ev->pub_async)
        uv_close((uv_handle_t *)ev->pub_async, timer_closed);
    ev->freed = true;
    if (ev->open_handles == 0)
        free(ev);
}
