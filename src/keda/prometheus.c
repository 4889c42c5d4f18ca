/*
 * prometheus.c — the prometheus trigger: one instant query against the
 * Prometheus HTTP API (GET SERVER/api/v1/query?query=Q), as KEDA's
 * Prometheus scaler makes it. The answer must hold one sample (a vector
 * of one element, or a scalar); an empty vector, or a value that is not a
 * number (NaN, Inf), is 0 with ignoreNullValues (the default) and an
 * error without; more than one element is an error (the query must
 * aggregate, e.g. sum(...)).
 */
#define _GNU_SOURCE
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "keda/internal.h"

/* A sample [timestamp, "value"]: its value. */
static int sample_value(const cJSON *s, bool ignore_null, double *value, char *err, size_t errlen)
{
    const cJSON *v = cJSON_GetArrayItem(s, 1);
    if (!cJSON_IsArray(s) || !cJSON_IsString(v)) {
        snprintf(err, errlen, "a sample is not [time, \"value\"]");
        return -1;
    }
    char *end;
    double d = strtod(v->valuestring, &end);
    if (*end || !isfinite(d)) {
        if (ignore_null) {
            *value = 0;
            return 1;
        }
        snprintf(err, errlen, "the value \"%.40s\" is not a finite number (ignoreNullValues is false)",
                 v->valuestring);
        return -1;
    }
    *value = d;
    return 0;
}

int kd_prometheus_value(const char *body, bool ignore_null, double *value, char *err,
                        size_t errlen)
{
    cJSON *j = cJSON_Parse(body);
    int rc = -1;
    const cJSON *st = cJSON_GetObjectItemCaseSensitive(j, "status");
    const cJSON *data = cJSON_GetObjectItemCaseSensitive(j, "data");
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(data, "resultType");
    const cJSON *res = cJSON_GetObjectItemCaseSensitive(data, "result");
    if (!cJSON_IsObject(j)) {
        snprintf(err, errlen, "the answer is not JSON");
    } else if (!cJSON_IsString(st) || strcmp(st->valuestring, "success") != 0) {
        const cJSON *e = cJSON_GetObjectItemCaseSensitive(j, "error");
        snprintf(err, errlen, "query failed: %.200s",
                 cJSON_IsString(e) ? e->valuestring : "no error given");
    } else if (cJSON_IsString(type) && strcmp(type->valuestring, "scalar") == 0) {
        rc = sample_value(res, ignore_null, value, err, errlen);
    } else if (!cJSON_IsString(type) || strcmp(type->valuestring, "vector") != 0 ||
               !cJSON_IsArray(res)) {
        snprintf(err, errlen, "the result is a %s, not a vector or scalar",
                 cJSON_IsString(type) ? type->valuestring : "?");
    } else if (cJSON_GetArraySize(res) == 0) {
        if (ignore_null) {
            *value = 0;
            rc = 1;
        } else {
            snprintf(err, errlen, "the result is empty (ignoreNullValues is false)");
        }
    } else if (cJSON_GetArraySize(res) > 1) {
        snprintf(err, errlen, "the query returns %d series; it must return one (aggregate it)",
                 cJSON_GetArraySize(res));
    } else {
        rc = sample_value(cJSON_GetObjectItemCaseSensitive(res->child, "value"), ignore_null, value,
                          err, errlen);
    }
    cJSON_Delete(j);
    return rc;
}

int kd_read_prometheus(const kd_trigger_t *t, double *value, char *err, size_t errlen)
{
    char *q = kd_url_escape(t->query), *url = NULL;
    size_t n = strlen(t->url);
    while (n && t->url[n - 1] == '/') n--;
    if (!q || asprintf(&url, "%.*s/api/v1/query?query=%s", (int)n, t->url, q) < 0) {
        free(q);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    free(q);
    char *body = NULL, e[300], shown[256];
    long status = 0;
    kd_url_redact(t->url, shown, sizeof shown); /* no password in a message */
    kd_http_req_t rq = {.url = url, .bearer = t->bearer, .user = t->username,
                        .pass = t->password, .headers = t->headers, .unsafe = t->unsafe_ssl};
    int rc = kd_http_get(&rq, &body, &status, e, sizeof e);
    free(url);
    if (rc != 0) {
        snprintf(err, errlen, "prometheus %s: %s", shown, e);
        return -1;
    }
    if (status != 200 && status != 400 && status != 422) {
        /* 400 and 422 carry Prometheus's JSON error, read below. */
        snprintf(err, errlen, "prometheus %s: HTTP %ld", shown, status);
        free(body);
        return -1;
    }
    rc = kd_prometheus_value(body, t->ignore_null, value, e, sizeof e);
    free(body);
    if (rc < 0) {
        snprintf(err, errlen, "prometheus %s: %s", shown, e);
        return -1;
    }
    return 0;
}
