/*
 * apply.c — applying, deleting and listing eventing objects (the admin
 * API's calls), and starting the consumer of each applied object.
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <hiredis/hiredis.h>

#include "common/rfc3339.h"
#include "eventing/core.h"
#include "eventing/sources.h"

/* ---- starting objects ---- */

static const ev_delivery_t *broker_delivery(ev_t *ev, const char *broker)
{
    obj_t *b = ev_obj_find(ev, OBJ_BROKER, broker);
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
    cc.target = ev_annotation_int(doc, "autoscaling.knative.dev/target", NULL, 0, err, errlen);
    cc.max_parallel = ev_annotation_int(doc, "autoscaling.knative.dev/max-scale",
                                     "autoscaling.knative.dev/maxScale", 0, err, errlen);
    char host[256], stream[512], group[300], src[800], start_id[32];
    switch (o->kind) {
    case OBJ_PING: {
        if (cc.target <= 0)
            cc.target = 1;
        int64_t now = ev_now_ms();
        o->last_fire_ms = st_events_last_fire(ev->store, o->name);
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
        ev_redis_url_parse(ev_str_field(spec, "address"), host, sizeof host, &port, NULL, 0);
        cc.host = host;
        cc.port = port;
        snprintf(stream, sizeof stream, "%s", ev_str_field(spec, "stream"));
        cc.stream = stream;
        const char *g = ev_str_field(spec, "group");
        snprintf(group, sizeof group, "%s", g ? g : o->name);
        cc.group = group;
        const char *cons = ev_str_field(spec, "consumer");
        cc.consumer = cons ? cons : ev->consumer_name;
        const char *from = ev_str_field(spec, "startFrom");
        cc.start_id = from ? from : "0";
        const char *idle = ev_str_field(spec, "claimMinIdle");
        cc.claim_min_idle_ms = idle ? ev_iso_duration_ms(idle) : 60000;
        cc.raw_entries = true;
        snprintf(src, sizeof src, "redis://%s:%d/%s", host, port, stream);
        cc.source_attr = src;
        break;
    }
    case OBJ_NATS:
    case OBJ_MQTT:
    case OBJ_RABBIT: {
        ev_source_args_t a = {o->name, spec, ev->data_dir, ev->consumer_name,
                              ev->max_event_bytes};
        ev_source_feed_t sf;
        int rc = o->kind == OBJ_NATS   ? ev_nats_feed(&a, &cc.delivery, &sf, err, errlen)
                 : o->kind == OBJ_MQTT ? ev_mqtt_feed(&a, &cc.delivery, &sf, err, errlen)
                                       : ev_rabbit_feed(&a, &cc.delivery, &sf, err, errlen);
        if (rc)
            return -1;
        cc.ext_ops = sf.ops;
        cc.ext = sf.feed;
        snprintf(src, sizeof src, "%s", sf.source);
        cc.source_attr = src;
        if (cc.max_parallel <= 0)
            cc.max_parallel = sf.max_parallel;
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
    o->consumer = ev_consumer_start(&ev->cctx, &cc);
    if (!o->consumer) {
        ev_ctx_exited(ev);
        snprintf(err, errlen, "cannot start a consumer thread");
        return -1;
    }
    if (o->kind == OBJ_PING)
        ev_ping_arm(o);
    return 0;
}

/* ---- apply / delete / list ---- */

int ev_handles_kind(const char *api_version, const char *kind)
{
    for (size_t i = 0; i < sizeof ev_kinds / sizeof ev_kinds[0]; i++)
        if (api_version && kind && strcmp(api_version, ev_kinds[i].api) == 0 &&
            strcmp(kind, ev_kinds[i].kind) == 0)
            return 1;
    return 0;
}

static int kind_index(const char *kind)
{
    for (size_t i = 0; i < sizeof ev_kinds / sizeof ev_kinds[0]; i++)
        if (kind && strcasecmp(kind, ev_kinds[i].kind) == 0)
            return (int)i;
    return -1;
}

/* Builds, persists (when persist) and starts an object; replaces an
 * existing one of the same kind and name. */
int ev_apply_doc(ev_t *ev, const cJSON *doc, bool persist, bool *created, cJSON *warnings,
                     char *err, size_t errlen)
{
    const char *api = ev_str_field(doc, "apiVersion");
    const char *kind = ev_str_field(doc, "kind");
    if (!api)
        FAIL("apiVersion: required");
    if (!kind)
        FAIL("kind: required");
    int k = kind_index(kind);
    if (k < 0 || strcmp(api, ev_kinds[k].api) != 0)
        FAIL("kind: %.60s %.60s is not an eventing kind (PingSource sources.knative.dev/v1, "
             "RedisStreamSource and RabbitmqSource sources.knative.dev/v1alpha1, "
             "NatsJetStreamSource and MqttSource sources.wasmfn.dev/v1alpha1, Broker and Trigger "
             "eventing.knative.dev/v1)",
             api, kind);
    const char *name = ev_str_field(cJSON_GetObjectItemCaseSensitive(doc, "metadata"), "name");
    if (!name)
        FAIL("metadata.name: required");
    if (!ev_name_ok(name))
        FAIL("metadata.name: \"%.60s\" must be lower-case letters, digits, '-' and '.', at most "
             "63",
             name);
    if (ev->draining)
        FAIL("eventing is shutting down");
    char *text = cJSON_PrintUnformatted(doc);
    if (!text)
        FAIL("out of memory");
    obj_t *old = ev_obj_find(ev, k, name);
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
    if (ev_obj_parse(ev, o, doc, warnings, err, errlen)) {
        ev_obj_free(o, false);
        return -1;
    }
    char dberr[256];
    if (persist && st_events_put(ev->store, ev_kinds[k].kind, o->name, o->doc, dberr, sizeof dberr)) {
        ev_obj_free(o, false);
        FAIL("cannot save %s %s: %s", ev_kinds[k].kind, name, dberr);
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
        ev_obj_free(old, false);
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
    if (ev_apply_doc(ev, doc, true, &created, warnings, err, sizeof err)) {
        cJSON_Delete(warnings);
        snprintf(out, len, "%s", err);
        return -1;
    }
    cJSON *r = cJSON_CreateObject();
    cJSON_AddStringToObject(r, "kind", ev_str_field(doc, "kind"));
    cJSON_AddStringToObject(r, "name",
                            ev_str_field(cJSON_GetObjectItemCaseSensitive(doc, "metadata"), "name"));
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
    obj_t *o = ev_obj_find(ev, k, name);
    if (!o)
        return -1;
    pthread_rwlock_wrlock(&ev->objs_lock);
    obj_t **pp = &ev->objs;
    while (*pp != o)
        pp = &(*pp)->next;
    *pp = o->next;
    pthread_rwlock_unlock(&ev->objs_lock);
    st_events_delete(ev->store, ev_kinds[k].kind, name);
    if (k == OBJ_PING)
        st_events_forget_fire(ev->store, name);
    if (ev->m_src_backlog) {
        mx_family_t *fb = k == OBJ_TRIGGER ? ev->m_trg_backlog : ev->m_src_backlog;
        mx_family_t *fp = k == OBJ_TRIGGER ? ev->m_trg_par : ev->m_src_par;
        if (k != OBJ_BROKER) {
            mx_family_remove_first_label(fb, name);
            mx_family_remove_first_label(fp, name);
        }
    }
    ev_obj_free(o, true);
    return 0;
}

char *ev_list_json(ev_t *ev)
{
    cJSON *arr = cJSON_CreateArray();
    for (obj_t *o = ev->objs; o; o = o->next) {
        cJSON *doc = cJSON_Parse(o->doc);
        cJSON *it = cJSON_CreateObject();
        cJSON_AddStringToObject(it, "kind", ev_kinds[o->kind].kind);
        cJSON_AddStringToObject(it, "apiVersion", ev_kinds[o->kind].api);
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

/* ---- the consumers' context callbacks (ev_consumer_ctx_t) ---- */

/* The consumers' context callbacks (ev_consumer_ctx_t). */
int ev_ctx_publish(void *ud, const char *broker, const ev_event_t *e, redisContext *redis,
                          char *err, size_t errlen)
{
    return ev_broker_publish(ud, broker, e, redis, err, errlen);
}

void ev_ctx_exited(void *ud)
{
    ev_t *ev = ud;
    pthread_mutex_lock(&ev->live_mu);
    ev->live--;
    pthread_cond_broadcast(&ev->live_cv);
    pthread_mutex_unlock(&ev->live_mu);
}
