/*
 * session.c — talking to one registry: the transport (libcurl, one handle
 * per session so concurrent pulls share nothing), which scheme a host gets,
 * and the two auth flows of the distribution spec.
 *
 * Transport policy, as Docker's daemon has it: HTTPS with the system CAs
 * (plus --registry-ca); plain HTTP only for loopback hosts and those the
 * operator lists as insecure, and even then only when the HTTPS handshake
 * fails, so a TLS registry on loopback is still spoken to over TLS.
 *
 * Auth: the first request of a session is GET /v2/, whose 401 carries the
 * challenge. "Basic realm=..." means every request carries the
 * credentials; "Bearer realm=URL,service=S[,scope=...]" means we fetch a
 * token from URL (with the credentials, if any, as basic auth) for the
 * scope repository:REPO:ACTIONS and send it as "Authorization: Bearer".
 * A later 401 asking for another scope (push after pull) fetches a new
 * token once; a second refusal is an error naming the realm.
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <cjson/cJSON.h>
#include <curl/curl.h>

#include "oci/internal.h"

#define MAX_ERROR_BODY 65536
#define MAX_TOKEN_BODY (1u << 20)

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static void curl_init_once(void) { curl_global_init(CURL_GLOBAL_DEFAULT); }

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

oci_status_t oci_sess_fail(oci_sess_t *s, oci_status_t st, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s->err, s->errlen, fmt, ap);
    va_end(ap);
    return st;
}

void oci_http_resp_free(oci_http_resp_t *r)
{
    cm_buf_free(&r->body);
}

/* ---- which hosts may be plain HTTP ---- */

static void host_name(const char *host, char *out, size_t n)
{
    /* "[::1]:5000" -> "::1", "h:5000" -> "h" */
    if (host[0] == '[') {
        const char *end = strchr(host, ']');
        size_t len = end ? (size_t)(end - host - 1) : strlen(host + 1);
        snprintf(out, n, "%.*s", (int)len, host + 1);
        return;
    }
    snprintf(out, n, "%.*s", (int)strcspn(host, ":"), host);
}

static bool plain_http_allowed(const oci_options_t *o, const char *host)
{
    char name[256];
    host_name(host, name, sizeof name);
    if (strcmp(name, "localhost") == 0 || strncmp(name, "127.", 4) == 0 ||
        strcmp(name, "::1") == 0)
        return true;
    for (size_t i = 0; i < o->ninsecure; i++)
        if (strcmp(o->insecure[i], host) == 0 || strcmp(o->insecure[i], name) == 0) return true;
    return false;
}

/* ---- one HTTP exchange ---- */

typedef struct xfer {
    oci_sess_t *s;
    const oci_http_req_t *req;
    oci_http_resp_t *resp;
    bool too_large;
} xfer_t;

static void copy_value(char *dst, size_t n, const char *v, size_t len)
{
    while (len && (v[len - 1] == '\r' || v[len - 1] == '\n' || v[len - 1] == ' ')) len--;
    while (len && *v == ' ') v++, len--;
    if (len >= n) len = n - 1;
    memcpy(dst, v, len);
    dst[len] = 0;
}

static size_t on_header(char *data, size_t size, size_t nmemb, void *p)
{
    xfer_t *x = p;
    size_t n = size * nmemb;
    oci_http_resp_t *r = x->resp;
    /* a new status line (after a redirect or a 100): forget what came before */
    if (n >= 5 && strncmp(data, "HTTP/", 5) == 0) {
        r->content_type[0] = r->location[0] = r->docker_digest[0] = r->www_auth[0] = 0;
        r->content_length = -1;
        return n;
    }
    const char *colon = memchr(data, ':', n);
    if (!colon) return n;
    size_t klen = (size_t)(colon - data), vlen = n - klen - 1;
    const char *v = colon + 1;
#define IS(name) (klen == sizeof name - 1 && strncasecmp(data, name, klen) == 0)
    if (IS("Content-Type"))
        copy_value(r->content_type, sizeof r->content_type, v, vlen);
    else if (IS("Location"))
        copy_value(r->location, sizeof r->location, v, vlen);
    else if (IS("Docker-Content-Digest"))
        copy_value(r->docker_digest, sizeof r->docker_digest, v, vlen);
    else if (IS("WWW-Authenticate"))
        copy_value(r->www_auth, sizeof r->www_auth, v, vlen);
    else if (IS("Content-Length")) {
        char num[32];
        copy_value(num, sizeof num, v, vlen);
        r->content_length = strtoll(num, NULL, 10);
    }
#undef IS
    return n;
}

static size_t on_write(char *data, size_t size, size_t nmemb, void *p)
{
    xfer_t *x = p;
    size_t n = size * nmemb;
    long code = 0;
    curl_easy_getinfo(x->s->curl, CURLINFO_RESPONSE_CODE, &code);
    oci_http_resp_t *r = x->resp;
    if (code >= 200 && code < 300) {
        if (x->req->on_body) {
            if (x->req->on_body(x->req->ctx, data, n) != 0) {
                r->aborted = true;
                return 0;
            }
            return n;
        }
        if (r->body.len + n > x->req->max_body) {
            x->too_large = true;
            return 0;
        }
        return cm_buf_append(&r->body, data, n) == 0 ? n : 0;
    }
    /* an error's body: keep its beginning for the message */
    size_t room = r->body.len < MAX_ERROR_BODY ? MAX_ERROR_BODY - r->body.len : 0;
    if (room) cm_buf_append(&r->body, data, n < room ? n : room);
    return n;
}

static int on_progress(void *p, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un)
{
    (void)dt, (void)dn, (void)ut, (void)un;
    xfer_t *x = p;
    const atomic_int *c = x->s->opts->cancel;
    return c && atomic_load(c) ? 1 : 0;
}

/* One request as it is, with the session's current auth. */
static oci_status_t perform(oci_sess_t *s, const oci_http_req_t *req, oci_http_resp_t *resp,
                            const char *authz)
{
    cm_buf_free(&resp->body);
    memset(resp, 0, sizeof *resp);
    resp->content_length = -1;
    if (s->opts->cancel && atomic_load(s->opts->cancel))
        return oci_sess_fail(s, OCI_ERR_CANCELLED, "cancelled");
    uint64_t now = now_ms();
    if (now >= s->deadline_ms)
        return oci_sess_fail(s, OCI_ERR_TIMEOUT, "timed out after %llu ms",
                             (unsigned long long)(s->opts->timeout_ms ? s->opts->timeout_ms : OCI_DEFAULT_TIMEOUT_MS));
    uint64_t left = s->deadline_ms - now;

    char url[4096];
    if (strncmp(req->url, "http://", 7) == 0 || strncmp(req->url, "https://", 8) == 0)
        snprintf(url, sizeof url, "%s", req->url);
    else
        snprintf(url, sizeof url, "%s%s", s->base, req->url);

    CURL *c = s->curl;
    curl_easy_reset(c);
    xfer_t x = {.s = s, .req = req, .resp = resp};
    struct curl_slist *hl = NULL;
    /* Credentials go only to the registry itself: libcurl also drops a
     * custom Authorization header when a redirect leaves the host (blob
     * downloads are often redirected to a storage service). */
    if (authz && *authz && strncmp(url, s->base, strlen(s->base)) == 0)
        hl = curl_slist_append(hl, authz);
    for (size_t i = 0; i < req->nheaders; i++) hl = curl_slist_append(hl, req->headers[i]);
    if (req->body || strcmp(req->method, "PUT") == 0 || strcmp(req->method, "POST") == 0)
        hl = curl_slist_append(hl, "Expect:");
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hl);
    curl_easy_setopt(c, CURLOPT_USERAGENT, "wasmfn");
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)left);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, (long)(left < 30000 ? left : 30000));
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(c, CURLOPT_MAXREDIRS, 5L);
#if LIBCURL_VERSION_NUM >= 0x075500
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
#endif
    if (s->opts->ca_file) {
        /* The operator's CAs as the bundle file, the system's through the
         * CA directory libcurl was built with: both are trusted. */
        const char *capath = NULL;
#if LIBCURL_VERSION_NUM >= 0x075400
        curl_easy_getinfo(c, CURLINFO_CAPATH, &capath);
#endif
        curl_easy_setopt(c, CURLOPT_CAINFO, s->opts->ca_file);
        if (capath) curl_easy_setopt(c, CURLOPT_CAPATH, capath);
    }
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, &x);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_write);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &x);
    curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(c, CURLOPT_XFERINFODATA, &x);
    curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
    if (strcmp(req->method, "HEAD") == 0)
        curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
    else if (strcmp(req->method, "GET") != 0)
        curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, req->method);
    if (req->body || strcmp(req->method, "PUT") == 0 || strcmp(req->method, "POST") == 0) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, req->body ? req->body : "");
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->body_len);
    }

    CURLcode rc = curl_easy_perform(c);
    s->last_curl = (int)rc;
    curl_slist_free_all(hl);
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &resp->status);
    if (rc == CURLE_OK) return OCI_OK;
    if (resp->aborted) return OCI_ERR_IO; /* the body callback says why */
    if (x.too_large)
        return oci_sess_fail(s, OCI_ERR_TOO_LARGE, "the answer to %s %s is over %zu bytes",
                             req->method, req->url, req->max_body);
    switch (rc) {
    case CURLE_COULDNT_RESOLVE_HOST:
        return oci_sess_fail(s, OCI_ERR_NETWORK, "unknown host '%s' (cannot resolve it)", s->host);
    case CURLE_COULDNT_CONNECT:
        return oci_sess_fail(s, OCI_ERR_NETWORK, "cannot connect to registry %s: %s", s->host,
                             curl_easy_strerror(rc));
    case CURLE_PEER_FAILED_VERIFICATION:
        return oci_sess_fail(s, OCI_ERR_NETWORK,
                             "TLS certificate of %s not trusted (give its CA with --registry-ca)",
                             s->host);
    case CURLE_ABORTED_BY_CALLBACK:
        return oci_sess_fail(s, OCI_ERR_CANCELLED, "cancelled");
    case CURLE_OPERATION_TIMEDOUT:
        if (now_ms() >= s->deadline_ms)
            return oci_sess_fail(s, OCI_ERR_TIMEOUT, "timed out after %llu ms",
                                 (unsigned long long)(s->opts->timeout_ms ? s->opts->timeout_ms : OCI_DEFAULT_TIMEOUT_MS));
        /* fall through */
    default:
        return oci_sess_fail(s, OCI_ERR_NETWORK, "%s %s: %s%s", req->method, url,
                             curl_easy_strerror(rc),
                             rc == CURLE_SSL_CONNECT_ERROR && strncmp(url, "https:", 6) == 0
                                 ? " (a plain-HTTP registry must be listed with --insecure-registry)"
                                 : "");
    }
}

/* ---- auth ---- */

typedef struct challenge {
    char scheme[16]; /* "Basic", "Bearer" */
    char realm[512], service[512], scope[512];
} challenge_t;

/* Parses `Bearer realm="https://auth",service="reg",scope="repository:a:pull,push"`. */
static void parse_challenge(const char *h, challenge_t *ch)
{
    memset(ch, 0, sizeof *ch);
    size_t n = strcspn(h, " ");
    snprintf(ch->scheme, sizeof ch->scheme, "%.*s", (int)n, h);
    const char *p = h + n;
    while (*p) {
        while (*p == ' ' || *p == ',') p++;
        const char *k = p;
        while (*p && *p != '=' && *p != ',') p++;
        size_t klen = (size_t)(p - k);
        if (*p != '=') continue;
        p++;
        char val[512];
        size_t vl = 0;
        if (*p == '"') {
            p++;
            while (*p && *p != '"') {
                if (*p == '\\' && p[1]) p++;
                if (vl < sizeof val - 1) val[vl++] = *p;
                p++;
            }
            if (*p == '"') p++;
        } else {
            while (*p && *p != ',') {
                if (vl < sizeof val - 1) val[vl++] = *p;
                p++;
            }
        }
        val[vl] = 0;
        if (klen == 5 && strncasecmp(k, "realm", 5) == 0)
            snprintf(ch->realm, sizeof ch->realm, "%s", val);
        else if (klen == 7 && strncasecmp(k, "service", 7) == 0)
            snprintf(ch->service, sizeof ch->service, "%s", val);
        else if (klen == 5 && strncasecmp(k, "scope", 5) == 0)
            snprintf(ch->scope, sizeof ch->scope, "%s", val);
    }
}

static oci_status_t auth_refused(oci_sess_t *s, long status)
{
    const char *st = status == 403 ? "403 Forbidden" : "401 Unauthorized";
    char realm[600] = "";
    if (s->realm[0]) snprintf(realm, sizeof realm, " (realm \"%s\")", s->realm);
    if (!s->creds.found)
        return oci_sess_fail(s, OCI_ERR_AUTH,
                             "%s%s: authentication required and there are no credentials for "
                             "%s in %s (wasmfn registry login %s)",
                             st, realm, s->host,
                             s->creds.source[0] ? s->creds.source : "a Docker config", s->host);
    if (status == 403)
        return oci_sess_fail(s, OCI_ERR_AUTH, "%s%s: user '%s' (from %s) may not %s %s", st, realm,
                             s->creds.user, s->creds.source, s->actions ? s->actions : "use",
                             s->repo[0] ? s->repo : s->host);
    return oci_sess_fail(s, OCI_ERR_AUTH,
                         "%s%s: the registry refused the credentials of user '%s' from %s", st,
                         realm, s->creds.user, s->creds.source);
}

static void basic_header(const oci_creds_t *c, char *out, size_t n, const char *prefix)
{
    char pair[1300], b64[1800];
    int len = snprintf(pair, sizeof pair, "%s:%s", c->user, c->password);
    if (len < 0 || (size_t)len >= sizeof pair) len = (int)sizeof pair - 1;
    oci_base64(pair, (size_t)len, b64);
    snprintf(out, n, "%sBasic %s", prefix, b64);
}

/* Fetches a bearer token for scope (may be "") from the challenge's realm. */
static oci_status_t fetch_token(oci_sess_t *s, const challenge_t *ch, const char *scope)
{
    CURL *c = s->curl;
    char *svc = curl_easy_escape(c, ch->service, 0), *sc = curl_easy_escape(c, scope, 0);
    char url[2048];
    snprintf(url, sizeof url, "%s%sservice=%s%s%s", ch->realm, strchr(ch->realm, '?') ? "&" : "?",
             svc ? svc : "", scope[0] ? "&scope=" : "", scope[0] && sc ? sc : "");
    curl_free(svc);
    curl_free(sc);
    if (strncmp(url, "https://", 8) != 0 && strncmp(url, "http://", 7) != 0)
        return oci_sess_fail(s, OCI_ERR_PROTOCOL, "bearer realm \"%s\" is not an http(s) URL",
                             ch->realm);

    char authz[2000] = "";
    if (s->creds.found) basic_header(&s->creds, authz, sizeof authz, "Authorization: ");
    const char *hdrs[1] = {authz};
    oci_http_req_t req = {.method = "GET", .url = url, .headers = hdrs,
                          .nheaders = authz[0] ? 1 : 0, .max_body = MAX_TOKEN_BODY};
    oci_http_resp_t resp = {0};
    oci_status_t st = perform(s, &req, &resp, NULL);
    if (st != OCI_OK) goto out;
    if (resp.status == 401 || resp.status == 403) {
        st = auth_refused(s, resp.status);
        goto out;
    }
    if (resp.status != 200) {
        st = oci_sess_fail(s, OCI_ERR_PROTOCOL, "token service %s answered HTTP %ld", ch->realm,
                           resp.status);
        goto out;
    }
    cJSON *j = cJSON_ParseWithLength(resp.body.data ? resp.body.data : "", resp.body.len);
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(j, "token");
    if (!cJSON_IsString(t)) t = cJSON_GetObjectItemCaseSensitive(j, "access_token");
    if (!cJSON_IsString(t) || strlen(t->valuestring) > sizeof s->authz - 40) {
        st = oci_sess_fail(s, OCI_ERR_PROTOCOL, "token service %s gave no usable token",
                           ch->realm);
    } else {
        snprintf(s->authz, sizeof s->authz, "Authorization: Bearer %s", t->valuestring);
        snprintf(s->scope, sizeof s->scope, "%s", scope);
    }
    cJSON_Delete(j);
out:
    oci_http_resp_free(&resp);
    return st;
}

/* Answers a 401's challenge. *retry says whether the request is worth
 * sending again (new credentials or a new token). */
static oci_status_t answer(oci_sess_t *s, const oci_http_resp_t *r, bool *retry)
{
    challenge_t ch;
    *retry = false;
    parse_challenge(r->www_auth, &ch);
    snprintf(s->realm, sizeof s->realm, "%s", ch.realm);
    if (strcasecmp(ch.scheme, "Basic") == 0) {
        if (!s->creds.found || strncmp(s->authz, "Authorization: Basic ", 21) == 0)
            return auth_refused(s, r->status);
        basic_header(&s->creds, s->authz, sizeof s->authz, "Authorization: ");
        *retry = true;
        return OCI_OK;
    }
    if (strcasecmp(ch.scheme, "Bearer") == 0) {
        char scope[512];
        if (ch.scope[0])
            snprintf(scope, sizeof scope, "%s", ch.scope);
        else if (s->repo[0] && s->actions)
            snprintf(scope, sizeof scope, "repository:%s:%s", s->repo, s->actions);
        else
            scope[0] = 0;
        if (strncmp(s->authz, "Authorization: Bearer ", 22) == 0 && strcmp(scope, s->scope) == 0)
            return auth_refused(s, r->status);
        oci_status_t st = fetch_token(s, &ch, scope);
        if (st == OCI_OK) *retry = true;
        return st;
    }
    return oci_sess_fail(s, OCI_ERR_AUTH, "401 Unauthorized with an auth scheme we do not speak: %s",
                         r->www_auth[0] ? r->www_auth : "(no WWW-Authenticate)");
}

oci_status_t oci_sess_do(oci_sess_t *s, const oci_http_req_t *req, oci_http_resp_t *resp)
{
    for (int attempt = 0;; attempt++) {
        oci_status_t st = perform(s, req, resp, s->authz);
        if (st != OCI_OK) return st;
        if (resp->status == 403) return auth_refused(s, 403);
        if (resp->status != 401) return OCI_OK;
        if (attempt == 2) return auth_refused(s, 401);
        bool retry;
        st = answer(s, resp, &retry);
        if (st != OCI_OK) return st;
        if (!retry) return auth_refused(s, 401);
    }
}

oci_status_t oci_sess_http_error(oci_sess_t *s, const char *what, const oci_http_resp_t *r)
{
    /* The distribution spec's error body: {"errors":[{"code":..,"message":..}]} */
    char msg[512] = "";
    cJSON *j = r->body.data ? cJSON_ParseWithLength(r->body.data, r->body.len) : NULL;
    const cJSON *e = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(j, "errors"), 0);
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(e, "message");
    const cJSON *code = cJSON_GetObjectItemCaseSensitive(e, "code");
    if (cJSON_IsString(m)) {
        snprintf(msg, sizeof msg, "%s%s%s", m->valuestring, cJSON_IsString(code) ? " " : "",
                 "");
        if (cJSON_IsString(code))
            snprintf(msg, sizeof msg, "%s (%s)", m->valuestring, code->valuestring);
    }
    cJSON_Delete(j);
    oci_status_t st = r->status == 404 ? OCI_ERR_NOT_FOUND : OCI_ERR_PROTOCOL;
    return oci_sess_fail(s, st, "%s: HTTP %ld%s%s", what, r->status, msg[0] ? ": " : "", msg);
}

/* ---- opening ---- */

oci_status_t oci_sess_open(oci_sess_t *s, const oci_options_t *opts, const char *host,
                           const char *repo, const char *actions, char *err, size_t errlen)
{
    pthread_once(&curl_once, curl_init_once);
    memset(s, 0, sizeof *s);
    s->opts = opts;
    s->err = err;
    s->errlen = errlen;
    s->actions = actions;
    snprintf(s->host, sizeof s->host, "%s", host);
    snprintf(s->repo, sizeof s->repo, "%s", repo ? repo : "");
    uint64_t timeout = opts->timeout_ms ? opts->timeout_ms : OCI_DEFAULT_TIMEOUT_MS;
    s->deadline_ms = now_ms() + timeout;
    if (!(s->curl = curl_easy_init())) return oci_sess_fail(s, OCI_ERR_IO, "out of memory");
    if (oci_creds_lookup(opts, host, &s->creds, err, errlen) != 0) return OCI_ERR_ARGS;

    snprintf(s->base, sizeof s->base, "https://%s", host);
    oci_http_req_t ping = {.method = "GET", .url = "/v2/", .max_body = 1 << 16};
    oci_http_resp_t resp = {0};
    oci_status_t st = perform(s, &ping, &resp, NULL);
    if (st == OCI_ERR_NETWORK && plain_http_allowed(opts, host) &&
        s->last_curl == CURLE_SSL_CONNECT_ERROR) {
        /* a plain-HTTP server answers a TLS hello with garbage: speak clear */
        snprintf(s->base, sizeof s->base, "http://%s", host);
        st = perform(s, &ping, &resp, NULL);
    }
    if (st != OCI_OK) goto out;
    if (resp.status == 401) {
        bool retry;
        st = answer(s, &resp, &retry);
        if (st == OCI_OK && !s->repo[0] && retry) {
            /* login check: the credentials must open /v2/ itself */
            st = oci_sess_do(s, &ping, &resp);
            if (st == OCI_OK && resp.status != 200)
                st = oci_sess_http_error(s, host, &resp);
        }
    } else if (resp.status != 200) {
        st = oci_sess_fail(s, OCI_ERR_PROTOCOL,
                           "%s is not an OCI registry: GET /v2/ answered HTTP %ld", host,
                           resp.status);
    }
out:
    oci_http_resp_free(&resp);
    return st;
}

void oci_sess_close(oci_sess_t *s)
{
    if (s->curl) curl_easy_cleanup(s->curl);
    s->curl = NULL;
}

/* ---- digests ---- */

void oci_digest_final(EVP_MD_CTX *md, char out[72])
{
    unsigned char h[32];
    unsigned int n = 0;
    EVP_DigestFinal_ex(md, h, &n);
    strcpy(out, "sha256:");
    for (int i = 0; i < 32; i++) sprintf(out + 7 + 2 * i, "%02x", h[i]);
}

void oci_digest_bytes(const void *p, size_t n, char out[72])
{
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    EVP_DigestInit_ex(md, EVP_sha256(), NULL);
    EVP_DigestUpdate(md, p, n);
    oci_digest_final(md, out);
    EVP_MD_CTX_free(md);
}
