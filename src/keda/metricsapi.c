/*
 * metricsapi.c — the metrics-api trigger: GET the trigger's URL, and take
 * the number at valueLocation in the JSON answer, as KEDA's Metrics API
 * scaler does. valueLocation is a GJSON path; the part of GJSON that
 * names one value is what is understood here (kd_json_path_value): keys,
 * array indexes and a final '#' (an array's length). GJSON's queries,
 * wildcards and modifiers are refused when the ScaledObject is applied.
 *
 * Credentials (authMode): an API key in a header or a query parameter,
 * basic, or bearer; they are never put in an error message.
 */
#define _GNU_SOURCE
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

static int number_of(const cJSON *v, const char *path, double *value, char *err, size_t errlen)
{
    if (cJSON_IsNumber(v)) {
        *value = v->valuedouble;
        return 0;
    }
    if (cJSON_IsString(v)) {
        char *end;
        double d = strtod(v->valuestring, &end);
        if (*v->valuestring && !*end && isfinite(d)) {
            *value = d;
            return 0;
        }
        long double q;
        if (cm_quantity_parse(v->valuestring, &q) == 0 && isfinite((double)q)) {
            *value = (double)q;
            return 0;
        }
        snprintf(err, errlen, "%s is \"%.40s\", not a number or quantity", path, v->valuestring);
        return -1;
    }
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
    int rc = kd_http_get(url, t->bearer, t->username, t->password, NULL,
                         header ? t->key_param : NULL, header ? t->api_key : NULL, t->unsafe_ssl,
                         &body, &status, e, sizeof e);
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
    rc = kd_json_path_value(body, t->location, value, e, sizeof e);
    free(body);
    if (rc != 0) {
        snprintf(err, errlen, "metrics-api %s: %s", shown, e);
        return -1;
    }
    return 0;
}
