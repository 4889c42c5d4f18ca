/*
 * metricsapi.c — the metrics-api trigger: GET the trigger's URL, and take
 * the number at valueLocation in the answer, as KEDA's Metrics API scaler
 * does. In JSON (the default format), valueLocation is a GJSON path; the
 * part of GJSON that names one value is what is understood here
 * (kd_json_path_value): keys, array indexes and a final '#' (an array's
 * length). GJSON's queries, wildcards and modifiers are refused when the
 * ScaledObject is applied. In YAML, the same path through mappings and
 * sequences (kd_yaml_path_value); in Prometheus's text format, a series
 * selector (exposition.c).
 *
 * Credentials (authMode): an API key in a header or a query parameter,
 * basic, bearer, or a TLS client certificate (tls); a CA of the trigger's
 * own with any of them. They are never put in an error message.
 */
#define _GNU_SOURCE
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "common/quantity.h"
#include "keda/internal.h"

/* The next component of path at *p (its escapes removed) into out; false
 * at the end. */
static bool next_key(const char **p, char *out, size_t n)
{
    if (!**p) return false;
    size_t len = 0;
    const char *s = *p;
    for (; *s && *s != '.'; s++) {
        if (*s == '\\' && s[1]) s++;
        if (len + 1 < n) out[len++] = *s;
    }
    out[len] = '\0';
    *p = *s ? s + 1 : s;
    return true;
}

/* An array index: all digits, below the array's size. */
static bool index_of(const char *k, int size, int *out)
{
    if (!*k || strspn(k, "0123456789") != strlen(k) || strlen(k) > 9) return false;
    int i = atoi(k);
    if (i >= size) return false;
    *out = i;
    return true;
}

/* Text that is a number or a Kubernetes quantity ("250m", "1Gi"). */
static int text_number(const char *s, const char *path, double *value, char *err, size_t errlen)
{
    char *end;
    double d = strtod(s, &end);
    if (*s && !*end && isfinite(d)) {
        *value = d;
        return 0;
    }
    long double q;
    if (cm_quantity_parse(s, &q) == 0 && isfinite((double)q)) {
        *value = (double)q;
        return 0;
    }
    snprintf(err, errlen, "%s is \"%.40s\", not a number or quantity", path, s);
    return -1;
}

static int number_of(const cJSON *v, const char *path, double *value, char *err, size_t errlen)
{
    if (cJSON_IsNumber(v)) {
        *value = v->valuedouble;
        return 0;
    }
    if (cJSON_IsString(v)) return text_number(v->valuestring, path, value, err, errlen);
    snprintf(err, errlen, "%s is not a number", path);
    return -1;
}

int kd_json_path_value(const char *body, const char *path, double *value, char *err,
                       size_t errlen)
{
    cJSON *j = cJSON_Parse(body);
    if (!j) {
        snprintf(err, errlen, "the answer is not JSON");
        return -1;
    }
    const cJSON *v = j;
    const char *p = path;
    char key[KD_MAX_LOCATION + 1];
    int rc = -1;
    while (next_key(&p, key, sizeof key)) {
        int i;
        if (cJSON_IsArray(v) && strcmp(key, "#") == 0 && !*p) {
            *value = cJSON_GetArraySize(v);
            rc = 0;
            goto out;
        }
        if (cJSON_IsArray(v) && index_of(key, cJSON_GetArraySize(v), &i)) {
            v = cJSON_GetArrayItem(v, i);
        } else if (cJSON_IsObject(v) && cJSON_GetObjectItemCaseSensitive(v, key)) {
            v = cJSON_GetObjectItemCaseSensitive(v, key);
        } else {
            snprintf(err, errlen, "valueLocation %s: no %.60s in the answer", path, key);
            goto out;
        }
    }
    char where[300];
    snprintf(where, sizeof where, "valueLocation %s", path);
    rc = number_of(v, where, value, err, errlen);
out:
    cJSON_Delete(j);
    return rc;
}

/* The node under key in a mapping node, or NULL. */
static yaml_node_t *yaml_member(yaml_document_t *d, yaml_node_t *map, const char *key)
{
    size_t klen = strlen(key);
    for (yaml_node_pair_t *pr = map->data.mapping.pairs.start; pr < map->data.mapping.pairs.top;
         pr++) {
        yaml_node_t *k = yaml_document_get_node(d, pr->key);
        if (k && k->type == YAML_SCALAR_NODE && k->data.scalar.length == klen &&
            memcmp(k->data.scalar.value, key, klen) == 0)
            return yaml_document_get_node(d, pr->value);
    }
    return NULL;
}

int kd_yaml_path_value(const char *body, size_t len, const char *path, double *value, char *err,
                       size_t errlen)
{
    yaml_parser_t ps;
    yaml_document_t d;
    if (!yaml_parser_initialize(&ps)) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    yaml_parser_set_input_string(&ps, (const unsigned char *)body, len);
    if (!yaml_parser_load(&ps, &d)) {
        snprintf(err, errlen, "the answer is not YAML: %s at line %zu",
                 ps.problem ? ps.problem : "syntax error", ps.problem_mark.line + 1);
        yaml_parser_delete(&ps);
        return -1;
    }
    yaml_node_t *n = yaml_document_get_root_node(&d);
    const char *p = path;
    char key[KD_MAX_LOCATION + 1];
    int rc = -1;
    if (!n) {
        snprintf(err, errlen, "the answer is empty");
        goto out;
    }
    while (next_key(&p, key, sizeof key)) {
        yaml_node_t *next = NULL;
        int i;
        if (n->type == YAML_SEQUENCE_NODE) {
            int size = (int)(n->data.sequence.items.top - n->data.sequence.items.start);
            if (strcmp(key, "#") == 0 && !*p) {
                *value = size;
                rc = 0;
                goto out;
            }
            if (index_of(key, size, &i))
                next = yaml_document_get_node(&d, n->data.sequence.items.start[i]);
        } else if (n->type == YAML_MAPPING_NODE) {
            next = yaml_member(&d, n, key);
        }
        if (!next) {
            snprintf(err, errlen, "valueLocation %s: no %.60s in the answer", path, key);
            goto out;
        }
        n = next;
    }
    char where[300];
    snprintf(where, sizeof where, "valueLocation %s", path);
    if (n->type != YAML_SCALAR_NODE) {
        snprintf(err, errlen, "%s is not a number", where);
        goto out;
    }
    /* The scalar whole (a NUL inside it is not a number's). */
    const char *sv = (const char *)n->data.scalar.value;
    size_t sl = n->data.scalar.length;
    char *text = memchr(sv, '\0', sl) ? NULL : strndup(sv, sl);
    if (!text) {
        snprintf(err, errlen, "%s is not a number", where);
        goto out;
    }
    rc = text_number(text, where, value, err, errlen);
    free(text);
out:
    yaml_document_delete(&d);
    yaml_parser_delete(&ps);
    return rc;
}

int kd_read_metrics_api(const kd_trigger_t *t, double *value, char *err, size_t errlen)
{
    char *url = NULL;
    if (t->key_in_query && t->api_key) {
        char *k = kd_url_escape(t->key_param), *v = kd_url_escape(t->api_key);
        if (!k || !v ||
            asprintf(&url, "%s%c%s=%s", t->url, strchr(t->url, '?') ? '&' : '?', k, v) < 0)
            url = NULL;
        free(k);
        free(v);
    } else {
        url = strdup(t->url);
    }
    if (!url) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    char *body = NULL, e[300], shown[256];
    long status = 0;
    kd_url_redact(t->url, shown, sizeof shown); /* no password in a message */
    bool header = t->api_key && !t->key_in_query;
    kd_http_req_t rq = {.url = url,
                        .bearer = t->bearer,
                        .user = t->username,
                        .pass = t->password,
                        .header_name = header ? t->key_param : NULL,
                        .header_value = header ? t->api_key : NULL,
                        .unsafe = t->unsafe_ssl,
                        .ca = t->tls_ca,
                        .cert = t->tls_cert,
                        .key = t->tls_key};
    int rc = kd_http_get(&rq, &body, &status, e, sizeof e);
    if (t->api_key) explicit_bzero(url, strlen(url)); /* it may hold the key */
    free(url);
    if (rc != 0) {
        snprintf(err, errlen, "metrics-api %s: %s", shown, e);
        return -1;
    }
    if (status != 200) {
        snprintf(err, errlen, "metrics-api %s: HTTP %ld", shown, status);
        free(body);
        return -1;
    }
    if (t->format == KD_FORMAT_YAML)
        rc = kd_yaml_path_value(body, strlen(body), t->location, value, e, sizeof e);
    else if (t->format == KD_FORMAT_PROMETHEUS)
        rc = kd_exposition_value(body, strlen(body), t->location, value, e, sizeof e);
    else
        rc = kd_json_path_value(body, t->location, value, e, sizeof e);
    free(body);
    if (rc != 0) {
        snprintf(err, errlen, "metrics-api %s: %s", shown, e);
        return -1;
    }
    return 0;
}
