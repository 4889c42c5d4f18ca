/*
 * ext.c — what the external feeds (sources.h) share: a broker message
 * turned into a CloudEvent and into a consumer item, and the small spec
 * helpers their kinds use.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/rfc3339.h"
#include "eventing/consumer.h"
#include "eventing/sources.h"

int ev_cons_take(ev_consumer_t *c, const char *id, ev_event_t *e, const char *bad,
                 int prior_attempts, void *msg, uint64_t tag, unsigned gen)
{
    if (ev_cons_item_is_live(c, id)) {
        /* Redelivered while we still hold it (e.g. the broker's ack
         * timer ran out during a long attempt): the copy we hold settles it. */
        ev_event_free(e);
        return 0;
    }
    item_t *it = ev_cons_item_new(c, id);
    if (!it) {
        ev_event_free(e);
        return -1;
    }
    it->msg = msg;
    it->tag = tag;
    it->gen = gen;
    it->event = e;
    it->attempts = prior_attempts > 0 ? prior_attempts : 0;
    if (!e) {
        /* A bad message: dead-letter it at once, never retry it. */
        it->to_dlq = true;
        snprintf(it->error, sizeof it->error, "bad message: %.230s", bad ? bad : "unreadable");
    }
    ev_cons_attempt(c, it);
    return 1;
}

static bool ext_name_ok(const char *n, size_t len)
{
    static const char *const reserved[] = {"id", "source", "specversion", "type",
                                           "datacontenttype", "dataschema", "subject", "time",
                                           "data", "data_base64", NULL};
    if (len == 0 || len > 20)
        return false;
    for (size_t i = 0; i < len; i++)
        if (!(islower((unsigned char)n[i]) || isdigit((unsigned char)n[i])))
            return false;
    for (size_t i = 0; reserved[i]; i++)
        if (strlen(reserved[i]) == len && memcmp(reserved[i], n, len) == 0)
            return false;
    return true;
}

ev_event_t *ev_ext_event(const char *id, const char *source, const char *type, const char *subject,
                         int64_t time_ms, const ev_header_t *h, size_t nh, const void *body,
                         size_t len, size_t max_bytes, char *err, size_t errlen)
{
    if (max_bytes && len > max_bytes) {
        snprintf(err, errlen, "message of %zu bytes is larger than the limit of %zu", len,
                 max_bytes);
        return NULL;
    }
    if (ev_http_has_event(h, nh))
        return ev_event_from_http(h, nh, body, len, max_bytes, err, errlen);
    ev_event_t *e = ev_event_new();
    if (!e || ev_event_set(e, "specversion", "1.0") || ev_event_set(e, "id", id) ||
        ev_event_set(e, "source", source) || ev_event_set(e, "type", type) ||
        (subject && *subject && ev_event_set(e, "subject", subject)) ||
        ev_event_set_data(e, body, len))
        goto oom;
    if (time_ms > 0) {
        char tm[40];
        cm_rfc3339_format(time_ms * 1000000, CM_RFC3339_MILLIS, tm, sizeof tm);
        if (ev_event_set(e, "time", tm))
            goto oom;
    }
    for (size_t i = 0; i < nh; i++) {
        char name[21];
        size_t n = strlen(h[i].name);
        if (strcasecmp(h[i].name, "content-type") == 0) {
            if (ev_event_set(e, "datacontenttype", h[i].value))
                goto oom;
            continue;
        }
        if (n > 20)
            continue;
        for (size_t k = 0; k < n; k++)
            name[k] = (char)tolower((unsigned char)h[i].name[k]);
        name[n] = 0;
        if (ext_name_ok(name, n) && ev_event_set(e, name, h[i].value))
            goto oom;
    }
    if (ev_event_validate(e, max_bytes, err, errlen)) {
        ev_event_free(e);
        return NULL;
    }
    return e;
oom:
    ev_event_free(e);
    snprintf(err, errlen, "out of memory");
    return NULL;
}

static int server_parse(const char *s, const char *scheme, int dflt_port, char *host, int *port)
{
    size_t sl = strlen(scheme);
    if (strncmp(s, scheme, sl) == 0 && strncmp(s + sl, "://", 3) == 0)
        s += sl + 3;
    else if (strstr(s, "://"))
        return -1;
    const char *at = strrchr(s, '@'); /* user:password@ belongs to the caller's URL */
    if (at)
        s = at + 1;
    size_t n = strcspn(s, "/");
    const char *colon = memchr(s, ':', n);
    size_t hl = colon ? (size_t)(colon - s) : n;
    if (hl == 0 || hl >= 256)
        return -1;
    memcpy(host, s, hl);
    host[hl] = 0;
    *port = dflt_port;
    if (colon) {
        char *end;
        long v = strtol(colon + 1, &end, 10);
        if (end != s + n || v <= 0 || v > 65535)
            return -1;
        *port = (int)v;
    }
    return 0;
}

int ev_ext_servers(const cJSON *v, const char *field, const char *scheme, int dflt_port,
                   char (*hosts)[256], int *ports, int max, char *err, size_t errlen)
{
    int n = 0;
    if (cJSON_IsString(v)) {
        /* One string may hold several, comma-separated (as NATS URLs do). */
        char buf[2048];
        snprintf(buf, sizeof buf, "%s", v->valuestring);
        char *save = NULL;
        for (char *t = strtok_r(buf, ", ", &save); t; t = strtok_r(NULL, ", ", &save)) {
            if (n == max) {
                snprintf(err, errlen, "%s: at most %d servers", field, max);
                return -1;
            }
            if (server_parse(t, scheme, dflt_port, hosts[n], &ports[n])) {
                snprintf(err, errlen, "%s: \"%.100s\" is not %s://HOST:PORT", field, t, scheme);
                return -1;
            }
            n++;
        }
    } else if (cJSON_IsArray(v)) {
        for (const cJSON *it = v->child; it; it = it->next) {
            if (n == max) {
                snprintf(err, errlen, "%s: at most %d servers", field, max);
                return -1;
            }
            if (!cJSON_IsString(it) ||
                server_parse(it->valuestring, scheme, dflt_port, hosts[n], &ports[n])) {
                snprintf(err, errlen, "%s[%d]: must be a string %s://HOST:PORT", field, n, scheme);
                return -1;
            }
            n++;
        }
    }
    if (n == 0) {
        snprintf(err, errlen, "%s: required, like %s://127.0.0.1:%d", field, scheme, dflt_port);
        return -1;
    }
    return n;
}

int ev_ext_string(const cJSON *spec, const char *field, size_t max, bool required, char *err,
                  size_t errlen)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(spec, field);
    if (!v && !required)
        return 0;
    if (!cJSON_IsString(v) || !v->valuestring[0] || strlen(v->valuestring) > max) {
        snprintf(err, errlen, "spec.%s: %s a non-empty string of at most %zu bytes", field,
                 v ? "must be" : "required,", max);
        return -1;
    }
    return 0;
}
