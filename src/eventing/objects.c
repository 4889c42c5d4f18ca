/*
 * objects.c — eventing objects (PingSource, RedisStreamSource, Broker,
 * Trigger) parsed from their manifests into obj_t, every error naming the
 * field at fault, and freed.
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

const ev_kind_name_t ev_kinds[OBJ_NKINDS] = {
    [OBJ_PING] = {"sources.knative.dev/v1", "PingSource"},
    [OBJ_REDIS] = {"sources.knative.dev/v1alpha1", "RedisStreamSource"},
    [OBJ_BROKER] = {"eventing.knative.dev/v1", "Broker"},
    [OBJ_TRIGGER] = {"eventing.knative.dev/v1", "Trigger"},
    [OBJ_NATS] = {"sources.wasmfn.dev/v1alpha1", "NatsJetStreamSource"},
    [OBJ_MQTT] = {"sources.wasmfn.dev/v1alpha1", "MqttSource"},
    [OBJ_RABBIT] = {"sources.knative.dev/v1alpha1", "RabbitmqSource"},
};

obj_t *ev_obj_find(ev_t *ev, int kind, const char *name)
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

void ev_timer_closed(uv_handle_t *h)
{
    ev_t *ev = h->data;
    free(h);
    ev->open_handles--;
    if (ev->freed && ev->open_handles == 0)
        free(ev);
}

void ev_obj_free(obj_t *o, bool deleted)
{
    if (o->consumer)
        /* A deleted trigger drops its group, a deleted MqttSource its
         * session and queue file (mqtt.c), a deleted NatsJetStreamSource
         * its durable consumer (nats.c). */
        ev_consumer_stop(o->consumer, deleted && (o->kind == OBJ_TRIGGER || o->kind == OBJ_MQTT ||
                                                  o->kind == OBJ_NATS));
    if (o->timer) {
        uv_timer_stop(o->timer);
        o->timer->data = o->ev;
        uv_close((uv_handle_t *)o->timer, ev_timer_closed);
    }
    ev_event_free(o->tmpl);
    filter_free(&o->filter);
    cJSON_Delete(o->delivery_json);
    free(o->doc);
    free(o);
}

/* ---- building objects from documents ---- */


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

const char *ev_str_field(const cJSON *o, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

int ev_annotation_int(const cJSON *doc, const char *key, const char *alt, int dflt, char *err,
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

bool ev_name_ok(const char *n)
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
int ev_obj_parse(ev_t *ev, obj_t *o, const cJSON *doc, cJSON *warnings, char *err,
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
        const char *sched = ev_str_field(spec, "schedule");
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
        const char *ct = ev_str_field(spec, "contentType");
        const char *data = ev_str_field(spec, "data");
        const char *data64 = ev_str_field(spec, "dataBase64");
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
        const char *addr = ev_str_field(spec, "address");
        char host[256], stream[8];
        int port;
        if (!addr || ev_redis_url_parse(addr, host, sizeof host, &port, stream, sizeof stream))
            FAIL("spec.address: required, like redis://HOST:PORT");
        if (!ev_str_field(spec, "stream") || !ev_str_field(spec, "stream")[0])
            FAIL("spec.stream: required");
        if (strlen(ev_str_field(spec, "stream")) > 400)
            FAIL("spec.stream: too long");
        const char *g = ev_str_field(spec, "group");
        if (g && (!*g || strlen(g) > 200))
            FAIL("spec.group: must be a non-empty string of at most 200 bytes");
        const char *cons = ev_str_field(spec, "consumer");
        if (cons && (!*cons || strlen(cons) > 120))
            FAIL("spec.consumer: must be a non-empty string of at most 120 bytes");
        const char *idle = ev_str_field(spec, "claimMinIdle");
        if (idle && ev_iso_duration_ms(idle) <= 0)
            FAIL("spec.claimMinIdle: must be an ISO 8601 duration like PT60S");
        const char *from = ev_str_field(spec, "startFrom");
        if (from && strcmp(from, "0") != 0 && strcmp(from, "$") != 0)
            FAIL("spec.startFrom: must be \"0\" (the whole stream) or \"$\" (new entries)");
        break;
    }
    case OBJ_NATS:
    case OBJ_MQTT:
    case OBJ_RABBIT: {
        const char *const *known = o->kind == OBJ_NATS   ? ev_nats_fields
                                   : o->kind == OBJ_MQTT ? ev_mqtt_fields
                                                         : ev_rabbit_fields;
        warn_unknown(spec, "spec", known, warnings);
        int rc = o->kind == OBJ_NATS   ? ev_nats_check(spec, err, errlen)
                 : o->kind == OBJ_MQTT ? ev_mqtt_check(spec, err, errlen)
                                       : ev_rabbit_check(spec, err, errlen);
        if (rc)
            return -1;
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
        const char *b = ev_str_field(spec, "broker");
        if (!b)
            b = "default";
        if (!ev_name_ok(b))
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
    if (ev_annotation_int(doc, "autoscaling.knative.dev/target", NULL, 0, err, errlen) == -2 ||
        ev_annotation_int(doc, "autoscaling.knative.dev/max-scale", "autoscaling.knative.dev/maxScale",
                       0, err, errlen) == -2)
        return -1;
    (void)ev;
    return 0;
fail:
    return -1;
}
