/*
 * cloudevent.c — the event type and the CloudEvents 1.0 HTTP protocol
 * binding (binary and structured content modes) and JSON event format.
 *
 * An event is a list of context attributes (name/value strings: the spec's
 * typed attributes all have a canonical string form) plus the data bytes.
 * Binary mode maps attributes to ce-NAME headers and datacontenttype to
 * Content-Type; structured mode is one JSON object. Everything here checks
 * what it reads: header values, JSON from the network, stream entries.
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "common/percent.h"
#include "eventing/internal.h"

ev_event_t *ev_event_new(void)
{
    return calloc(1, sizeof(ev_event_t));
}

void ev_event_free(ev_event_t *e)
{
    if (!e)
        return;
    for (size_t i = 0; i < e->nattrs; i++) {
        free(e->attrs[i].name);
        free(e->attrs[i].value);
    }
    free(e->attrs);
    free(e->data);
    free(e);
}

const char *ev_event_get(const ev_event_t *e, const char *name)
{
    for (size_t i = 0; i < e->nattrs; i++)
        if (strcmp(e->attrs[i].name, name) == 0)
            return e->attrs[i].value;
    return NULL;
}

int ev_event_set(ev_event_t *e, const char *name, const char *value)
{
    for (size_t i = 0; i < e->nattrs; i++)
        if (strcmp(e->attrs[i].name, name) == 0) {
            if (!value) {
                free(e->attrs[i].name);
                free(e->attrs[i].value);
                e->attrs[i] = e->attrs[--e->nattrs];
                return 0;
            }
            char *v = strdup(value);
            if (!v)
                return -1;
            free(e->attrs[i].value);
            e->attrs[i].value = v;
            return 0;
        }
    if (!value)
        return 0;
    if (e->nattrs == e->cap) {
        size_t cap = e->cap ? e->cap * 2 : 8;
        ev_attr_t *a = realloc(e->attrs, cap * sizeof *a);
        if (!a)
            return -1;
        e->attrs = a;
        e->cap = cap;
    }
    char *n = strdup(name), *v = strdup(value);
    if (!n || !v) {
        free(n);
        free(v);
        return -1;
    }
    e->attrs[e->nattrs].name = n;
    e->attrs[e->nattrs].value = v;
    e->nattrs++;
    return 0;
}

int ev_event_set_data(ev_event_t *e, const void *data, size_t len)
{
    uint8_t *d = NULL;
    if (len) {
        d = malloc(len);
        if (!d)
            return -1;
        memcpy(d, data, len);
    }
    free(e->data);
    e->data = d;
    e->data_len = len;
    return 0;
}

ev_event_t *ev_event_clone(const ev_event_t *e)
{
    ev_event_t *c = ev_event_new();
    if (!c)
        return NULL;
    for (size_t i = 0; i < e->nattrs; i++)
        if (ev_event_set(c, e->attrs[i].name, e->attrs[i].value))
            goto fail;
    if (ev_event_set_data(c, e->data, e->data_len))
        goto fail;
    return c;
fail:
    ev_event_free(c);
    return NULL;
}

size_t ev_event_bytes(const ev_event_t *e)
{
    size_t n = sizeof *e + e->cap * sizeof(ev_attr_t) + e->data_len;
    for (size_t i = 0; i < e->nattrs; i++)
        n += strlen(e->attrs[i].name) + strlen(e->attrs[i].value) + 2;
    return n;
}

static bool attr_name_ok(const char *n)
{
    size_t len = strlen(n);
    if (len == 0 || len > 64)
        return false;
    for (const char *p = n; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9')))
            return false;
    return true;
}

int ev_event_validate(const ev_event_t *e, size_t max_bytes, char *err, size_t errlen)
{
    const char *sv = ev_event_get(e, "specversion");
    if (!sv) {
        snprintf(err, errlen, "missing required attribute specversion");
        return -1;
    }
    if (strcmp(sv, "1.0") != 0) {
        snprintf(err, errlen, "specversion \"%.20s\" is not supported (want 1.0)", sv);
        return -1;
    }
    static const char *const required[] = {"id", "source", "type"};
    for (size_t i = 0; i < 3; i++) {
        const char *v = ev_event_get(e, required[i]);
        if (!v || !*v) {
            snprintf(err, errlen, "missing required attribute %s", required[i]);
            return -1;
        }
    }
    size_t total = e->data_len;
    for (size_t i = 0; i < e->nattrs; i++) {
        if (!attr_name_ok(e->attrs[i].name)) {
            snprintf(err, errlen, "attribute name \"%.40s\" must be lower-case letters and digits",
                     e->attrs[i].name);
            return -1;
        }
        total += strlen(e->attrs[i].name) + strlen(e->attrs[i].value);
    }
    if (max_bytes && total > max_bytes) {
        snprintf(err, errlen, "event of %zu bytes is larger than the limit of %zu", total,
                 max_bytes);
        return -1;
    }
    return 0;
}

/* ---- HTTP binding ---- */

/* Header values are percent-encoded where they hold characters outside
 * printable ASCII (CloudEvents HTTP binding 3.1.3.2): decoded best-effort. */
static char *pct_decode(const char *s)
{
    size_t n = strlen(s);
    char *o = malloc(n + 1);
    if (o)
        cm_pct_decode(s, n, o, CM_PCT_LENIENT);
    return o;
}

static char *pct_encode(const char *s)
{
    char *o = malloc(strlen(s) * 3 + 1);
    if (o)
        cm_pct_encode(s, o);
    return o;
}

static const char *find_header(const ev_header_t *h, size_t nh, const char *name)
{
    for (size_t i = 0; i < nh; i++)
        if (strcasecmp(h[i].name, name) == 0)
            return h[i].value;
    return NULL;
}

static bool is_structured(const char *ct)
{
    return ct && strncasecmp(ct, "application/cloudevents+json", 28) == 0;
}

bool ev_http_has_event(const ev_header_t *h, size_t nh)
{
    return find_header(h, nh, "ce-specversion") || is_structured(find_header(h, nh, "content-type"));
}

ev_event_t *ev_event_from_http(const ev_header_t *h, size_t nh, const uint8_t *body, size_t len,
                               size_t max_bytes, char *err, size_t errlen)
{
    const char *ct = find_header(h, nh, "content-type");
    if (ct && strncasecmp(ct, "application/cloudevents-batch+json", 34) == 0) {
        snprintf(err, errlen, "batched content mode is not supported");
        return NULL;
    }
    if (is_structured(ct))
        return ev_event_from_json((const char *)body, len, max_bytes, err, errlen);
    if (!find_header(h, nh, "ce-specversion")) {
        snprintf(err, errlen, "not a CloudEvent: no ce-specversion header and Content-Type is "
                              "not application/cloudevents+json");
        return NULL;
    }
    if (max_bytes && len > max_bytes) {
        snprintf(err, errlen, "event data of %zu bytes is larger than the limit of %zu", len,
                 max_bytes);
        return NULL;
    }
    ev_event_t *e = ev_event_new();
    if (!e)
        goto oom;
    for (size_t i = 0; i < nh; i++) {
        if (strncasecmp(h[i].name, "ce-", 3) != 0)
            continue;
        char name[80];
        size_t n = strlen(h[i].name + 3);
        if (n == 0 || n >= sizeof name) {
            snprintf(err, errlen, "header %.60s: bad attribute name", h[i].name);
            ev_event_free(e);
            return NULL;
        }
        for (size_t k = 0; k <= n; k++)
            name[k] = (char)tolower((unsigned char)h[i].name[3 + k]);
        if (!attr_name_ok(name)) {
            snprintf(err, errlen, "header %.60s: attribute names are letters and digits",
                     h[i].name);
            ev_event_free(e);
            return NULL;
        }
        if (ev_event_get(e, name)) {
            snprintf(err, errlen, "header %.60s appears twice", h[i].name);
            ev_event_free(e);
            return NULL;
        }
        char *v = pct_decode(h[i].value);
        if (!v || ev_event_set(e, name, v)) {
            free(v);
            goto oom;
        }
        free(v);
    }
    if (ct && ev_event_set(e, "datacontenttype", ct))
        goto oom;
    if (ev_event_set_data(e, body, len))
        goto oom;
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

char **ev_event_to_binary_headers(const ev_event_t *e, size_t *n)
{
    char **v = calloc(e->nattrs + 1, sizeof *v);
    size_t k = 0;
    if (!v)
        return NULL;
    for (size_t i = 0; i < e->nattrs; i++) {
        char *val = pct_encode(e->attrs[i].value);
        if (!val)
            goto fail;
        int r;
        if (strcmp(e->attrs[i].name, "datacontenttype") == 0)
            r = asprintf(&v[k], "Content-Type: %s", val);
        else
            r = asprintf(&v[k], "ce-%s: %s", e->attrs[i].name, val);
        free(val);
        if (r < 0)
            goto fail;
        k++;
    }
    *n = k;
    return v;
fail:
    ev_strv_free(v, k);
    return NULL;
}

void ev_strv_free(char **v, size_t n)
{
    if (!v)
        return;
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

/* ---- JSON format ---- */

static bool ct_is_json(const char *ct)
{
    if (!ct)
        return true; /* the JSON format's default for "data" */
    size_t n = strcspn(ct, ";");
    while (n && ct[n - 1] == ' ')
        n--;
    if (n == 16 && strncasecmp(ct, "application/json", 16) == 0)
        return true;
    if (n == 9 && strncasecmp(ct, "text/json", 9) == 0)
        return true;
    return n >= 5 && strncasecmp(ct + n - 5, "+json", 5) == 0;
}

static bool ct_is_text(const char *ct)
{
    return ct && (strncasecmp(ct, "text/", 5) == 0 || strncasecmp(ct, "application/xml", 15) == 0);
}

static bool utf8_valid(const uint8_t *p, size_t n)
{
    size_t i = 0;
    while (i < n) {
        uint8_t c = p[i];
        size_t k;
        if (c < 0x80) {
            if (c == 0)
                return false;
            i++;
            continue;
        } else if ((c & 0xe0) == 0xc0 && c >= 0xc2) {
            k = 1;
        } else if ((c & 0xf0) == 0xe0) {
            k = 2;
        } else if ((c & 0xf8) == 0xf0 && c <= 0xf4) {
            k = 3;
        } else {
            return false;
        }
        if (i + k >= n)
            return false;
        for (size_t j = 1; j <= k; j++)
            if ((p[i + j] & 0xc0) != 0x80)
                return false;
        i += k + 1;
    }
    return true;
}

char *ev_event_to_json(const ev_event_t *e)
{
    cJSON *o = cJSON_CreateObject();
    if (!o)
        return NULL;
    for (size_t i = 0; i < e->nattrs; i++)
        cJSON_AddStringToObject(o, e->attrs[i].name, e->attrs[i].value);
    if (e->data_len) {
        const char *ct = ev_event_get(e, "datacontenttype");
        cJSON *d = NULL;
        if (ct_is_json(ct) && utf8_valid(e->data, e->data_len)) {
            char *tmp = malloc(e->data_len + 1);
            if (tmp) {
                memcpy(tmp, e->data, e->data_len);
                tmp[e->data_len] = 0;
                d = cJSON_Parse(tmp);
                free(tmp);
            }
        }
        if (d) {
            cJSON_AddItemToObject(o, "data", d);
        } else if (ct_is_text(ct) && utf8_valid(e->data, e->data_len)) {
            char *tmp = malloc(e->data_len + 1);
            if (tmp) {
                memcpy(tmp, e->data, e->data_len);
                tmp[e->data_len] = 0;
                cJSON_AddStringToObject(o, "data", tmp);
                free(tmp);
            }
        } else {
            char *b = ev_base64_encode(e->data, e->data_len);
            if (b)
                cJSON_AddStringToObject(o, "data_base64", b);
            free(b);
        }
    }
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return s;
}

ev_event_t *ev_event_from_json(const char *json, size_t len, size_t max_bytes, char *err,
                               size_t errlen)
{
    if (max_bytes && len > max_bytes + 4096) {
        snprintf(err, errlen, "event of %zu bytes is larger than the limit of %zu", len, max_bytes);
        return NULL;
    }
    cJSON *o = cJSON_ParseWithLength(json, len);
    if (!o || !cJSON_IsObject(o)) {
        cJSON_Delete(o);
        snprintf(err, errlen, "structured event: body is not a JSON object");
        return NULL;
    }
    ev_event_t *e = ev_event_new();
    if (!e)
        goto oom;
    const cJSON *data = NULL, *data64 = NULL;
    for (const cJSON *it = o->child; it; it = it->next) {
        if (!it->string)
            continue;
        if (strcmp(it->string, "data") == 0) {
            data = it;
            continue;
        }
        if (strcmp(it->string, "data_base64") == 0) {
            data64 = it;
            continue;
        }
        char num[64];
        const char *v;
        if (cJSON_IsString(it)) {
            v = it->valuestring;
        } else if (cJSON_IsBool(it)) {
            v = cJSON_IsTrue(it) ? "true" : "false";
        } else if (cJSON_IsNumber(it) && it->valuedouble == (double)(long long)it->valuedouble) {
            snprintf(num, sizeof num, "%lld", (long long)it->valuedouble);
            v = num;
        } else if (cJSON_IsNull(it)) {
            continue; /* the format allows null for an absent attribute */
        } else {
            snprintf(err, errlen, "structured event: attribute \"%.40s\" must be a string, "
                                  "integer or boolean",
                     it->string);
            goto bad;
        }
        if (ev_event_set(e, it->string, v))
            goto oom;
    }
    if (data && data64) {
        snprintf(err, errlen, "structured event: both data and data_base64");
        goto bad;
    }
    if (data64) {
        if (!cJSON_IsString(data64)) {
            snprintf(err, errlen, "structured event: data_base64 must be a string");
            goto bad;
        }
        size_t n;
        uint8_t *b = ev_base64_decode(data64->valuestring, &n);
        if (!b) {
            snprintf(err, errlen, "structured event: data_base64 is not base64");
            goto bad;
        }
        free(e->data);
        e->data = b;
        e->data_len = n;
    } else if (data && !cJSON_IsNull(data)) {
        const char *ct = ev_event_get(e, "datacontenttype");
        if (cJSON_IsString(data) && !ct_is_json(ct)) {
            if (ev_event_set_data(e, data->valuestring, strlen(data->valuestring)))
                goto oom;
        } else {
            char *s = cJSON_PrintUnformatted(data);
            if (!s)
                goto oom;
            int r = ev_event_set_data(e, s, strlen(s));
            free(s);
            if (r)
                goto oom;
            if (!ct && ev_event_set(e, "datacontenttype", "application/json"))
                goto oom;
        }
    }
    cJSON_Delete(o);
    if (ev_event_validate(e, max_bytes, err, errlen)) {
        ev_event_free(e);
        return NULL;
    }
    return e;
oom:
    snprintf(err, errlen, "out of memory");
bad:
    cJSON_Delete(o);
    ev_event_free(e);
    return NULL;
}

/* ---- base64 ---- */

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

char *ev_base64_encode(const uint8_t *p, size_t n)
{
    if (n > (SIZE_MAX - 1) / 4 * 3 - 3)
        return NULL;
    char *o = malloc((n + 2) / 3 * 4 + 1), *q = o;
    if (!o)
        return NULL;
    size_t i = 0;
    for (; i + 2 < n; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];
        *q++ = b64[v >> 18];
        *q++ = b64[v >> 12 & 63];
        *q++ = b64[v >> 6 & 63];
        *q++ = b64[v & 63];
    }
    if (i < n) {
        uint32_t v = (uint32_t)p[i] << 16 | (i + 1 < n ? (uint32_t)p[i + 1] << 8 : 0);
        *q++ = b64[v >> 18];
        *q++ = b64[v >> 12 & 63];
        *q++ = i + 1 < n ? b64[v >> 6 & 63] : '=';
        *q++ = '=';
    }
    *q = 0;
    return o;
}

uint8_t *ev_base64_decode(const char *s, size_t *n)
{
    size_t len = strlen(s);
    uint8_t *o = malloc(len / 4 * 3 + 3), *q = o;
    if (!o)
        return NULL;
    uint32_t acc = 0;
    int bits = 0;
    size_t pad = 0;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (c == '=') {
            pad++;
            continue;
        }
        if (pad)
            goto bad; /* data after padding */
        const char *k = c ? strchr(b64, c) : NULL;
        if (!k)
            goto bad;
        acc = acc << 6 | (uint32_t)(k - b64);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            *q++ = (uint8_t)(acc >> bits);
        }
    }
    if (pad > 2 || (len % 4 != 0 && pad) || bits >= 6)
        goto bad;
    *n = (size_t)(q - o);
    return o;
bad:
    free(o);
    return NULL;
}

/* ---- ids and times ---- */

void ev_uuid(char out[37])
{
    uint8_t b[16];
    if (getrandom(b, sizeof b, 0) != (ssize_t)sizeof b) {
        /* Not expected; fall back to time and address entropy. */
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        uint64_t x = (uint64_t)ts.tv_nsec ^ (uint64_t)ts.tv_sec << 30 ^ (uintptr_t)b;
        for (int i = 0; i < 16; i++) {
            x = x * 6364136223846793005ull + 1442695040888963407ull;
            b[i] = (uint8_t)(x >> 56);
        }
    }
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0],
             b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14],
             b[15]);
}

int64_t ev_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t ev_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}
