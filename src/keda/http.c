/*
 * http.c — the one HTTP GET the triggers that speak HTTP use (Prometheus's
 * query API, RabbitMQ's management API, metrics-api's URL): libcurl, bounded in time
 * (KD_TRIGGER_TIMEOUT_MS) and in size (KD_MAX_BODY_BYTES), http and https
 * only (with a client certificate when the trigger has one), no redirects (a server that moved is a configuration to fix, and
 * following one would send the credentials elsewhere).
 */
#define _GNU_SOURCE
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "keda/internal.h"

typedef struct body {
    char *data;
    size_t len;
    bool too_big;
} body_t;

static size_t on_data(char *p, size_t size, size_t n, void *ud)
{
    body_t *b = ud;
    size_t add = size * n;
    if (b->len + add > KD_MAX_BODY_BYTES) {
        b->too_big = true;
        return 0; /* curl stops with CURLE_WRITE_ERROR */
    }
    char *d = realloc(b->data, b->len + add + 1);
    if (!d) return 0;
    memcpy(d + b->len, p, add);
    b->data = d;
    b->len += add;
    d[b->len] = '\0';
    return add;
}

void kd_url_redact(const char *url, char *out, size_t n)
{
    const char *scheme = strstr(url, "://");
    const char *host = scheme ? scheme + 3 : url;
    const char *end = host + strcspn(host, "/?#");
    const char *at = memchr(host, '@', (size_t)(end - host));
    if (!at) {
        snprintf(out, n, "%s", url);
        return;
    }
    snprintf(out, n, "%.*s***%s", (int)(host - url), url, at);
}

char *kd_url_escape(const char *s)
{
    size_t n = strlen(s);
    char *out = malloc(n * 3 + 1), *o = out;
    if (!out) return NULL;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
            strchr("-._~", *p))
            *o++ = (char)*p;
        else
            o += sprintf(o, "%%%02X", *p);
    }
    *o = '\0';
    return out;
}

/* PEM text as a blob libcurl copies. */
static void set_blob(CURL *c, CURLoption opt, const char *pem)
{
    struct curl_blob blob = {.data = (void *)pem, .len = strlen(pem), .flags = CURL_BLOB_COPY};
    curl_easy_setopt(c, opt, &blob);
}

int kd_http_get(const kd_http_req_t *rq, char **body_out, long *status, char *err, size_t errlen)
{
    const char *url = rq->url, *bearer = rq->bearer, *headers = rq->headers;
    const char *header_name = rq->header_name, *header_value = rq->header_value;
    *body_out = NULL;
    CURL *c = curl_easy_init();
    if (!c) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    body_t b = {0};
    struct curl_slist *h = NULL;
    char *line = NULL;
    if (bearer && asprintf(&line, "Authorization: Bearer %s", bearer) >= 0) {
        h = curl_slist_append(h, line);
        free(line);
    }
    if (header_name && header_value && !strpbrk(header_name, "\r\n:") &&
        !strpbrk(header_value, "\r\n") && asprintf(&line, "%s: %s", header_name, header_value) >= 0) {
        h = curl_slist_append(h, line);
        free(line);
    }
    if (headers) {
        /* customHeaders: "K=V,K2=V2", as KEDA writes them. */
        char *copy = strdup(headers), *save = NULL;
        for (char *kv = copy ? strtok_r(copy, ",", &save) : NULL; kv; kv = strtok_r(NULL, ",", &save)) {
            char *eq = strchr(kv, '=');
            if (!eq || strpbrk(kv, "\r\n")) continue;
            *eq = '\0';
            if (asprintf(&line, "%s: %s", kv, eq + 1) >= 0) {
                h = curl_slist_append(h, line);
                free(line);
            }
        }
        free(copy);
    }
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)KD_TRIGGER_TIMEOUT_MS);
#if LIBCURL_VERSION_NUM >= 0x075500
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
#else
    curl_easy_setopt(c, CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
    if (h) curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    if (rq->user) {
        curl_easy_setopt(c, CURLOPT_USERNAME, rq->user);
        curl_easy_setopt(c, CURLOPT_PASSWORD, rq->pass ? rq->pass : "");
    }
    if (rq->unsafe) {
        curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 0L);
        curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 0L);
    }
    if (rq->ca) set_blob(c, CURLOPT_CAINFO_BLOB, rq->ca);
    if (rq->cert) {
        set_blob(c, CURLOPT_SSLCERT_BLOB, rq->cert);
        curl_easy_setopt(c, CURLOPT_SSLCERTTYPE, "PEM");
    }
    if (rq->key) {
        set_blob(c, CURLOPT_SSLKEY_BLOB, rq->key);
        curl_easy_setopt(c, CURLOPT_SSLKEYTYPE, "PEM");
    }
    CURLcode rc = curl_easy_perform(c);
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, status);
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    if (rc != CURLE_OK) {
        if (b.too_big) snprintf(err, errlen, "answer larger than %u bytes", KD_MAX_BODY_BYTES);
        else snprintf(err, errlen, "%s", curl_easy_strerror(rc));
        free(b.data);
        return -1;
    }
    *body_out = b.data ? b.data : strdup("");
    return 0;
}
