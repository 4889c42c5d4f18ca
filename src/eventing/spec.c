/*
 * spec.c — the parts of Knative manifests that several eventing kinds
 * share: sinks (ref or uri), the delivery spec, Redis addresses, and the
 * trigger filter's exact-match test. Errors name the field path, e.g.
 * "spec.delivery.backoffDelay: ...".
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "eventing/internal.h"

int ev_redis_url_parse(const char *url, char *host, size_t hostlen, int *port, char *stream,
                       size_t streamlen)
{
    const char *p = url;
    if (strncmp(p, "redis://", 8) == 0)
        p += 8;
    const char *at = strchr(p, '@'); /* user:password@ is not supported */
    const char *slash = strchr(p, '/');
    if (at && (!slash || at < slash))
        return -1;
    size_t hp = slash ? (size_t)(slash - p) : strlen(p);
    const char *colon = memchr(p, ':', hp);
    size_t hl = colon ? (size_t)(colon - p) : hp;
    if (hl == 0 || hl >= hostlen)
        return -1;
    memcpy(host, p, hl);
    host[hl] = 0;
    *port = 6379;
    if (colon) {
        char *end;
        long v = strtol(colon + 1, &end, 10);
        if (end != p + hp || v <= 0 || v > 65535)
            return -1;
        *port = (int)v;
    }
    if (stream) {
        const char *s = slash ? slash + 1 : "";
        if (strlen(s) >= streamlen)
            return -1;
        strcpy(stream, s);
    }
    return 0;
}

int ev_sink_parse(const cJSON *j, const char *path, ev_sink_t *s, char *err, size_t errlen)
{
    memset(s, 0, sizeof *s);
    if (!cJSON_IsObject(j)) {
        snprintf(err, errlen, "%s: must be an object with ref or uri", path);
        return -1;
    }
    const cJSON *ref = cJSON_GetObjectItemCaseSensitive(j, "ref");
    const cJSON *uri = cJSON_GetObjectItemCaseSensitive(j, "uri");
    if (ref && uri) {
        snprintf(err, errlen, "%s: give ref or uri, not both", path);
        return -1;
    }
    if (ref) {
        const cJSON *kind = cJSON_GetObjectItemCaseSensitive(ref, "kind");
        const cJSON *name = cJSON_GetObjectItemCaseSensitive(ref, "name");
        if (!cJSON_IsString(name) || !name->valuestring[0] ||
            strlen(name->valuestring) >= sizeof s->name) {
            snprintf(err, errlen, "%s.ref.name: must be a non-empty string", path);
            return -1;
        }
        const char *k = cJSON_IsString(kind) ? kind->valuestring : "Service";
        if (strcmp(k, "Service") == 0) {
            s->kind = EV_SINK_SERVICE;
        } else if (strcmp(k, "Broker") == 0) {
            s->kind = EV_SINK_BROKER;
        } else {
            snprintf(err, errlen, "%s.ref.kind: \"%.40s\" is not supported (Service or Broker)",
                     path, k);
            return -1;
        }
        strcpy(s->name, name->valuestring);
        return 0;
    }
    if (!cJSON_IsString(uri)) {
        snprintf(err, errlen, "%s: needs ref or uri", path);
        return -1;
    }
    const char *u = uri->valuestring;
    if (strlen(u) >= sizeof s->url) {
        snprintf(err, errlen, "%s.uri: too long", path);
        return -1;
    }
    strcpy(s->url, u);
    if (strncmp(u, "http://", 7) == 0 || strncmp(u, "https://", 8) == 0) {
        s->kind = EV_SINK_HTTP;
        return 0;
    }
    if (strncmp(u, "redis://", 8) == 0) {
        s->kind = EV_SINK_REDIS;
        if (ev_redis_url_parse(u, s->host, sizeof s->host, &s->port, s->stream,
                               sizeof s->stream) ||
            !s->stream[0]) {
            snprintf(err, errlen, "%s.uri: want redis://HOST:PORT/STREAM", path);
            return -1;
        }
        return 0;
    }
    snprintf(err, errlen, "%s.uri: \"%.60s\" is not http://, https:// or redis://", path, u);
    return -1;
}

int ev_delivery_parse(const cJSON *j, const char *path, ev_delivery_t *d, char *err, size_t errlen)
{
    memset(d, 0, sizeof *d);
    d->retry = 0;
    d->policy = EV_BACKOFF_EXPONENTIAL;
    d->delay_ms = 200;
    d->timeout_ms = 30000;
    if (!j || cJSON_IsNull(j))
        return 0;
    if (!cJSON_IsObject(j)) {
        snprintf(err, errlen, "%s: must be an object", path);
        return -1;
    }
    const cJSON *v;
    if ((v = cJSON_GetObjectItemCaseSensitive(j, "retry"))) {
        if (!cJSON_IsNumber(v) || v->valuedouble < 0 || v->valuedouble > 100 ||
            v->valuedouble != (int)v->valuedouble) {
            snprintf(err, errlen, "%s.retry: must be an integer from 0 to 100", path);
            return -1;
        }
        d->retry = (int)v->valuedouble;
    }
    if ((v = cJSON_GetObjectItemCaseSensitive(j, "backoffPolicy"))) {
        if (cJSON_IsString(v) && strcmp(v->valuestring, "linear") == 0) {
            d->policy = EV_BACKOFF_LINEAR;
        } else if (cJSON_IsString(v) && strcmp(v->valuestring, "exponential") == 0) {
            d->policy = EV_BACKOFF_EXPONENTIAL;
        } else {
            snprintf(err, errlen, "%s.backoffPolicy: must be linear or exponential", path);
            return -1;
        }
    }
    if ((v = cJSON_GetObjectItemCaseSensitive(j, "backoffDelay"))) {
        int64_t ms = cJSON_IsString(v) ? ev_iso_duration_ms(v->valuestring) : -1;
        if (ms < 0) {
            snprintf(err, errlen, "%s.backoffDelay: must be an ISO 8601 duration like PT0.5S",
                     path);
            return -1;
        }
        d->delay_ms = ms;
    }
    if ((v = cJSON_GetObjectItemCaseSensitive(j, "timeout"))) {
        int64_t ms = cJSON_IsString(v) ? ev_iso_duration_ms(v->valuestring) : -1;
        if (ms <= 0) {
            snprintf(err, errlen, "%s.timeout: must be a positive ISO 8601 duration like PT30S",
                     path);
            return -1;
        }
        d->timeout_ms = ms;
    }
    if ((v = cJSON_GetObjectItemCaseSensitive(j, "deadLetterSink"))) {
        char sub[128];
        snprintf(sub, sizeof sub, "%s.deadLetterSink", path);
        if (ev_sink_parse(v, sub, &d->dead_letter, err, errlen))
            return -1;
    }
    return 0;
}

bool ev_filter_match(const ev_filter_t *f, const ev_event_t *e)
{
    if (!f)
        return true;
    for (size_t i = 0; i < f->n; i++) {
        const char *v = ev_event_get(e, f->attrs[i].name);
        if (!v || strcmp(v, f->attrs[i].value) != 0)
            return false;
    }
    return true;
}
