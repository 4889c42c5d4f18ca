/*
 * test_api.c — the admin API over real HTTP on a loopback port, without a
 * data plane (api_config_t.srv is NULL, so applies only touch the store):
 * auth, health and readiness, blob upload and validation, apply, the
 * FUNCTION and REVISION objects, delete, and the 404/405 answers. One
 * test runs it with a data plane (srv_new): an upload and its deploy
 * compile the module once.
 *
 * The event loop runs on the test's main thread; the requests are made
 * from a second thread with plain blocking sockets (HTTP/1.0-style: one
 * request per connection, read until close).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <cmocka.h>

#include "api/api.h"
#include "engine/engine.h"
#include "serving/serving.h"

/* The smallest valid module, and one that is not. */
static const uint8_t EMPTY_MODULE[] = {0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00};
/* (module (func (export "_start"))): the smallest function. */
static const uint8_t START_MODULE[] = {
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,             /* magic, version */
    0x01, 0x04, 0x01, 0x60, 0x00, 0x00,                         /* type () -> () */
    0x03, 0x02, 0x01, 0x00,                                     /* func 0: type 0 */
    0x07, 0x0a, 0x01, 0x06, '_', 's', 't', 'a', 'r', 't', 0x00, 0x00, /* export */
    0x0a, 0x04, 0x01, 0x02, 0x00, 0x0b,                         /* body: end */
};

typedef struct resp {
    int status;
    char head[2048];
    char *body;
    size_t body_len;
} resp_t;

typedef struct fixture {
    char *dir;
    st_store_t *st;
    uv_loop_t loop;
    uv_async_t stop;
    hs_server_t *hs;
    api_t *api;
    srv_t *srv;         /* the data plane, or NULL */
    uint16_t port;
    const char *token;
    void (*client)(struct fixture *f);
    int failures; /* checks that failed on the client thread */
    char failure[512];
} fixture_t;

/* cmocka's asserts must not run off the main thread: record instead. */
#define CHECK(f, cond)                                                                          \
    do {                                                                                        \
        if (!(cond) && (f)->failures++ == 0)                                                    \
            snprintf((f)->failure, sizeof (f)->failure, "%s:%d: %s", __FILE__, __LINE__, #cond); \
    } while (0)

static int request(fixture_t *f, const char *method, const char *path, const char *token,
                   const void *body, size_t len, resp_t *r)
{
    memset(r, 0, sizeof *r);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(f->port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        close(fd);
        return -1;
    }
    char head[512];
    int hl = snprintf(head, sizeof head,
                      "%s %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n%s%s%sContent-Length: %zu\r\n\r\n",
                      method, path, token ? "Authorization: Bearer " : "", token ? token : "",
                      token ? "\r\n" : "", len);
    if (write(fd, head, (size_t)hl) != hl || (len && write(fd, body, len) != (ssize_t)len)) {
        close(fd);
        return -1;
    }
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap + 1);
    ssize_t k;
    while ((k = read(fd, buf + n, cap - n)) > 0) {
        n += (size_t)k;
        if (n == cap) buf = realloc(buf, (cap *= 2) + 1);
    }
    close(fd);
    buf[n] = 0;
    char *sep = strstr(buf, "\r\n\r\n");
    if (!sep || sscanf(buf, "HTTP/1.%*d %d", &r->status) != 1) {
        free(buf);
        return -1;
    }
    size_t hlen = (size_t)(sep - buf);
    snprintf(r->head, sizeof r->head, "%.*s", (int)hlen, buf);
    r->body_len = n - hlen - 4;
    r->body = malloc(r->body_len + 1);
    memcpy(r->body, sep + 4, r->body_len + 1);
    free(buf);
    return 0;
}

static cJSON *json_of(resp_t *r)
{
    cJSON *j = cJSON_Parse(r->body ? r->body : "");
    return j;
}

static void *client_main(void *ud)
{
    fixture_t *f = ud;
    f->client(f);
    uv_async_send(&f->stop);
    return NULL;
}

static void on_closed(void *ud) { (void)ud; }

static void on_stop(uv_async_t *a)
{
    fixture_t *f = a->data;
    hs_server_close(f->hs, on_closed, f);
    uv_close((uv_handle_t *)a, NULL);
    /* The data plane's timers keep a loop alive: run_client_with closes
     * it after srv_free. */
    if (f->srv) uv_stop(a->loop);
}

static int load_blob(void *ud, const char *digest, uint8_t **bytes, size_t *len, char *err,
                     size_t errlen)
{
    return st_blob_get(ud, digest, bytes, len, err, errlen) == ST_OK ? 0 : -1;
}

static int artifact_get(void *ud, const char *digest, uint8_t **bytes, size_t *len, char *err,
                        size_t errlen)
{
    int r = st_artifact_get(ud, digest, bytes, len, err, errlen);
    return r == ST_OK ? 0 : r == ST_NOT_FOUND ? 1 : -1;
}

static int artifact_put(void *ud, const char *digest, const uint8_t *bytes, size_t len, char *err,
                        size_t errlen)
{
    return st_artifact_put(ud, digest, bytes, len, err, errlen) == ST_OK ? 0 : -1;
}

static void run_client_with(void (*client)(fixture_t *f), bool with_srv)
{
    fixture_t f;
    memset(&f, 0, sizeof f);
    const char *base = getenv("TMPDIR");
    assert_true(asprintf(&f.dir, "%s/wasmfn-test-api-XXXXXX", base && *base ? base : P_tmpdir) > 0);
    assert_non_null(mkdtemp(f.dir));
    char err[256];
    f.st = st_open(f.dir, err, sizeof err);
    assert_non_null(f.st);
    f.token = st_admin_token(f.st);
    assert_int_equal(uv_loop_init(&f.loop), 0);
    if (with_srv) {
        srv_config_t sc = {.loop = &f.loop, .workers = 1, .load_blob = load_blob,
                           .load_blob_ud = f.st, .artifact_get = artifact_get,
                           .artifact_put = artifact_put, .artifact_ud = f.st};
        f.srv = srv_new(&sc, err, sizeof err);
        assert_non_null(f.srv);
    }
    api_config_t c = {.loop = &f.loop, .store = f.st, .srv = f.srv, .metrics = NULL,
                      .data_url = "http://127.0.0.1:9"};
    f.api = api_new(&c);
    assert_non_null(f.api);
    f.hs = hs_server_new(&f.loop, NULL, api_handle, f.api);
    hs_server_on_head(f.hs, api_head_check); /* as wasmfn serve does */
    assert_int_equal(hs_server_listen(f.hs, "127.0.0.1:0", err, sizeof err), 0);
    f.port = hs_server_port(f.hs);
    uv_async_init(&f.loop, &f.stop, on_stop);
    f.stop.data = &f;
    f.client = client;
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, client_main, &f), 0);
    uv_run(&f.loop, UV_RUN_DEFAULT);
    pthread_join(t, NULL);
    api_free(f.api);
    if (f.srv) {
        srv_free(f.srv);
        for (int i = 0; i < 100 && uv_run(&f.loop, UV_RUN_NOWAIT) != 0; i++) continue;
    }
    uv_loop_close(&f.loop);
    st_close(f.st);
    char *cmd;
    assert_true(asprintf(&cmd, "rm -rf '%s'", f.dir) > 0);
    assert_int_equal(system(cmd), 0);
    free(cmd);
    free(f.dir);
    if (f.failures) fail_msg("%d failed checks; first: %s", f.failures, f.failure);
}

static void run_client(void (*client)(fixture_t *f)) { run_client_with(client, false); }

/* ---- Clients ---------------------------------------------------------------- */

/* Issue 15: the upload's compile (its validation) is the one the data
 * plane keeps; before, the deploy compiled the module a second time. */
static void client_compile_once(fixture_t *f)
{
    resp_t r;
    const char *T = f->token;
    uint64_t before = eng_module_compiles();
    CHECK(f, request(f, "POST", "/v1/blobs", T, START_MODULE, sizeof START_MODULE, &r) == 0 &&
                 r.status == 201);
    cJSON *j = json_of(&r);
    char digest[ST_DIGEST_LEN + 1] = "";
    const char *dg = cJSON_GetStringValue(cJSON_GetObjectItem(j, "digest"));
    if (dg) snprintf(digest, sizeof digest, "%s", dg);
    cJSON_Delete(j);
    free(r.body);
    CHECK(f, eng_module_compiles() - before == 1);
    char doc[512];
    snprintf(doc, sizeof doc,
             "{\"apiVersion\":\"serving.knative.dev/v1\",\"kind\":\"Service\",\"metadata\":"
             "{\"name\":\"once\"},\"spec\":{\"template\":{\"spec\":{\"containers\":[{\"image\":"
             "\"%s\"}]}}}}", digest);
    CHECK(f, request(f, "POST", "/v1/apply", T, doc, strlen(doc), &r) == 0 && r.status == 200);
    free(r.body);
    CHECK(f, eng_module_compiles() - before == 1);
    char path[128];
    snprintf(path, sizeof path, "/v1/functions/once/invoke");
    CHECK(f, request(f, "POST", path, T, NULL, 0, &r) == 0);
    free(r.body);
    CHECK(f, eng_module_compiles() - before == 1);

    /* Through the runtime, the API still tells a module that does not
     * validate (400, the engine's words) from a valid one that is not a
     * function (a blob all the same: 201). */
    CHECK(f, request(f, "POST", "/v1/blobs", T, "garbage!", 8, &r) == 0 && r.status == 400);
    CHECK(f, r.body && strstr(r.body, "magic") != NULL);
    free(r.body);
    CHECK(f, request(f, "POST", "/v1/blobs", T, EMPTY_MODULE, sizeof EMPTY_MODULE, &r) == 0 &&
                 r.status == 201);
    free(r.body);
    snprintf(path, sizeof path, "/v1/blobs/%s", digest);
    CHECK(f, request(f, "GET", path, T, NULL, 0, &r) == 0 && r.status == 200 &&
                 r.body_len == sizeof START_MODULE);
    free(r.body);
}

static void client_auth_and_health(fixture_t *f)
{
    resp_t r;
    CHECK(f, request(f, "GET", "/healthz", NULL, NULL, 0, &r) == 0 && r.status == 200);
    free(r.body);
    /* Not ready until the daemon says so (api_set_ready: serve.c does it
     * once every function is loaded and both listeners are open). */
    CHECK(f, request(f, "GET", "/readyz", NULL, NULL, 0, &r) == 0 && r.status == 503);
    free(r.body);
    CHECK(f, request(f, "GET", "/metrics", NULL, NULL, 0, &r) == 0 && r.status == 200);
    CHECK(f, strstr(r.head, "text/plain; version=0.0.4") != NULL);
    free(r.body);

    CHECK(f, request(f, "GET", "/v1/functions", NULL, NULL, 0, &r) == 0 && r.status == 401);
    CHECK(f, strstr(r.head, "WWW-Authenticate: Bearer") != NULL);
    free(r.body);
    char wrong[65];
    strcpy(wrong, f->token);
    wrong[63] = wrong[63] == 'a' ? 'b' : 'a';
    CHECK(f, request(f, "GET", "/v1/functions", wrong, NULL, 0, &r) == 0 && r.status == 401);
    free(r.body);
    wrong[63] = 0; /* a prefix is not the token */
    CHECK(f, request(f, "GET", "/v1/functions", wrong, NULL, 0, &r) == 0 && r.status == 401);
    free(r.body);
    CHECK(f, request(f, "POST", "/v1/blobs", NULL, EMPTY_MODULE, sizeof EMPTY_MODULE, &r) == 0 &&
                 r.status == 401);
    free(r.body);
    CHECK(f, request(f, "GET", "/v1/functions", f->token, NULL, 0, &r) == 0 && r.status == 200);
    CHECK(f, strcmp(r.body, "[]") == 0);
    free(r.body);
    CHECK(f, request(f, "GET", "/elsewhere", NULL, NULL, 0, &r) == 0 && r.status == 404);
    free(r.body);
    CHECK(f, request(f, "PUT", "/v1/functions", f->token, NULL, 0, &r) == 0 && r.status == 405);
    CHECK(f, strstr(r.head, "Allow: GET") != NULL);
    free(r.body);
    CHECK(f, request(f, "GET", "/v1/nothing", f->token, NULL, 0, &r) == 0 && r.status == 404);
    free(r.body);
}

static void client_deploy_flow(fixture_t *f)
{
    resp_t r;
    const char *T = f->token;
    /* A module that does not validate is refused with the engine's words. */
    CHECK(f, request(f, "POST", "/v1/blobs", T, "garbage!", 8, &r) == 0 && r.status == 400);
    CHECK(f, strstr(r.body, "magic") != NULL);
    free(r.body);
    CHECK(f, request(f, "POST", "/v1/blobs", T, "", 0, &r) == 0 && r.status == 400);
    free(r.body);

    CHECK(f, request(f, "POST", "/v1/blobs", T, EMPTY_MODULE, sizeof EMPTY_MODULE, &r) == 0 &&
                 r.status == 201);
    cJSON *j = json_of(&r);
    const char *dg = cJSON_GetStringValue(cJSON_GetObjectItem(j, "digest"));
    char digest[ST_DIGEST_LEN + 1] = "";
    if (dg) snprintf(digest, sizeof digest, "%s", dg);
    CHECK(f, st_digest_check(digest) == 0);
    CHECK(f, cJSON_GetNumberValue(cJSON_GetObjectItem(j, "size")) == sizeof EMPTY_MODULE);
    cJSON_Delete(j);
    free(r.body);

    char path[128];
    snprintf(path, sizeof path, "/v1/blobs/%s", digest);
    CHECK(f, request(f, "GET", path, T, NULL, 0, &r) == 0 && r.status == 200);
    CHECK(f, r.body_len == sizeof EMPTY_MODULE && memcmp(r.body, EMPTY_MODULE, r.body_len) == 0);
    free(r.body);
    CHECK(f, request(f, "GET", "/v1/blobs/sha256:0000000000000000000000000000000000000000000000000000000000000000",
                     T, NULL, 0, &r) == 0 && r.status == 404);
    free(r.body);

    char doc[1024];
    snprintf(doc, sizeof doc,
             "{\"apiVersion\":\"serving.knative.dev/v1\",\"kind\":\"Service\",\"metadata\":{\"name\":"
             "\"hello\"},\"spec\":{\"template\":{\"spec\":{\"containers\":[{\"image\":\"%s\",\"env\":"
             "[{\"name\":\"A\",\"value\":\"1\"}],\"ports\":[]}]}}}}",
             digest);
    CHECK(f, request(f, "POST", "/v1/apply", T, doc, strlen(doc), &r) == 0 && r.status == 200);
    j = json_of(&r);
    CHECK(f, strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(j, "revision")) ?: "", "hello-00001") == 0);
    CHECK(f, cJSON_IsTrue(cJSON_GetObjectItem(j, "created")));
    CHECK(f, cJSON_GetArraySize(cJSON_GetObjectItem(j, "warnings")) == 1);
    cJSON_Delete(j);
    free(r.body);
    CHECK(f, request(f, "POST", "/v1/apply", T, doc, strlen(doc), &r) == 0 && r.status == 200);
    CHECK(f, strstr(r.body, "\"created\":false") != NULL);
    free(r.body);

    /* Bad documents: the field is named; not JSON at all. */
    const char *bad = "{\"apiVersion\":\"serving.knative.dev/v1\",\"kind\":\"Service\",\"metadata\":"
                      "{\"name\":\"Bad!\"},\"spec\":{}}";
    CHECK(f, request(f, "POST", "/v1/apply", T, bad, strlen(bad), &r) == 0 && r.status == 400);
    CHECK(f, strstr(r.body, "metadata.name") != NULL);
    free(r.body);
    CHECK(f, request(f, "POST", "/v1/apply", T, "{oops", 5, &r) == 0 && r.status == 400);
    free(r.body);

    CHECK(f, request(f, "GET", "/v1/functions/hello", T, NULL, 0, &r) == 0 && r.status == 200);
    j = json_of(&r);
    CHECK(f, strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(j, "url")) ?: "",
                    "http://127.0.0.1:9/fn/hello/") == 0);
    CHECK(f, strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(j, "latestRevision")) ?: "", "hello-00001") == 0);
    cJSON *tr = cJSON_GetArrayItem(cJSON_GetObjectItem(j, "traffic"), 0);
    CHECK(f, cJSON_GetNumberValue(cJSON_GetObjectItem(tr, "percent")) == 100);
    CHECK(f, cJSON_IsTrue(cJSON_GetObjectItem(tr, "latestRevision")));
    cJSON *rev = cJSON_GetArrayItem(cJSON_GetObjectItem(j, "revisions"), 0);
    CHECK(f, strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(cJSON_GetObjectItem(rev, "env"), "A")) ?: "", "1") == 0);
    CHECK(f, cJSON_GetNumberValue(cJSON_GetObjectItem(rev, "memoryLimitBytes")) == 134217728);
    CHECK(f, cJSON_GetNumberValue(cJSON_GetObjectItem(rev, "windowSeconds")) == 60);
    CHECK(f, cJSON_IsObject(cJSON_GetObjectItem(j, "instances")));
    cJSON_Delete(j);
    free(r.body);

    CHECK(f, request(f, "GET", "/v1/functions/hello/revisions", T, NULL, 0, &r) == 0 && r.status == 200);
    j = json_of(&r);
    CHECK(f, cJSON_GetArraySize(j) == 1);
    cJSON_Delete(j);
    free(r.body);
    CHECK(f, request(f, "GET", "/v1/functions/hello/logs?tail=3", T, NULL, 0, &r) == 0 && r.status == 200);
    free(r.body);
    CHECK(f, request(f, "GET", "/v1/functions/hello/logs?tail=x", T, NULL, 0, &r) == 0 && r.status == 400);
    free(r.body);

    CHECK(f, request(f, "DELETE", "/v1/functions/hello", T, NULL, 0, &r) == 0 && r.status == 200);
    CHECK(f, strcmp(r.body, "{\"deleted\":\"hello\"}") == 0);
    free(r.body);
    CHECK(f, request(f, "DELETE", "/v1/functions/hello", T, NULL, 0, &r) == 0 && r.status == 404);
    free(r.body);
    CHECK(f, request(f, "GET", "/v1/functions/hello", T, NULL, 0, &r) == 0 && r.status == 404);
    free(r.body);
}

static void test_auth_and_health(void **state)
{
    (void)state;
    run_client(client_auth_and_health);
}

/* Whether s[0..n) is valid UTF-8 (no overlongs, surrogates or > U+10FFFF). */
static bool utf8_valid(const unsigned char *s, size_t n)
{
    for (size_t i = 0; i < n;) {
        unsigned c = s[i];
        size_t l = c < 0x80 ? 1 : c >= 0xC2 && c <= 0xDF ? 2 : c >= 0xE0 && c <= 0xEF ? 3
                 : c >= 0xF0 && c <= 0xF4 ? 4 : 0;
        if (!l || l > n - i) return false;
        for (size_t k = 1; k < l; k++)
            if ((s[i + k] & 0xC0) != 0x80) return false;
        if ((c == 0xE0 && s[i + 1] < 0xA0) || (c == 0xED && s[i + 1] > 0x9F) ||
            (c == 0xF0 && s[i + 1] < 0x90) || (c == 0xF4 && s[i + 1] > 0x8F))
            return false;
        i += l;
    }
    return true;
}

/* An error answer: valid UTF-8, valid JSON, {"error": one line containing
 * want}. */
static bool error_body_ok(const resp_t *r, const char *want)
{
    if (!r->body || !utf8_valid((const unsigned char *)r->body, r->body_len)) return false;
    cJSON *j = cJSON_Parse(r->body);
    const char *e = cJSON_GetStringValue(cJSON_GetObjectItem(j, "error"));
    bool ok = e && strstr(e, want) && !strchr(e, '\n');
    cJSON_Delete(j);
    return ok;
}

/* JSON apply is strict: a NUL in a string (which cJSON would cut the
 * string at), data after the document, and text that is not UTF-8 are all
 * 400 with a clear message, nothing is created, and every error body is
 * valid JSON even when it echoes bytes that are not UTF-8. */
static void client_strict_json(fixture_t *f)
{
    resp_t r;
    const char *T = f->token;
    CHECK(f, request(f, "POST", "/v1/blobs", T, EMPTY_MODULE, sizeof EMPTY_MODULE, &r) == 0 &&
                 r.status == 201);
    cJSON *j = json_of(&r);
    char digest[ST_DIGEST_LEN + 1] = "";
    snprintf(digest, sizeof digest, "%s", cJSON_GetStringValue(cJSON_GetObjectItem(j, "digest")) ?: "");
    cJSON_Delete(j);
    free(r.body);
#define SVC "{\"apiVersion\":\"serving.knative.dev/v1\",\"kind\":\"Service\",\"metadata\":{\"name\":" \
            "\"%s\"},\"spec\":{\"template\":{\"spec\":{\"containers\":[{\"image\":\"%s\",\"env\":" \
            "[{\"name\":\"A\",\"value\":\"%s\"}]}]}}}}%s"
    static const struct {
        const char *name, *env, *after, *want, *absent;
    } bad[] = {
        {"a\\u0000b", "1", "", "NUL character", "/v1/functions/a"},
        {"envnul", "x\\u0000y", "", "NUL character", "/v1/functions/envnul"},
        {"trailing", "1", "xxx", "unexpected data after the JSON document", "/v1/functions/trailing"},
        {"trailing2", "1", "{}", "unexpected data after the JSON document", "/v1/functions/trailing2"},
        {"bad\xff", "1", "", "not valid UTF-8", "/v1/functions/bad"},
        {"utf8", "\xc0\xaf", "", "not valid UTF-8", "/v1/functions/utf8"},
    };
    char doc[2048];
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int n = snprintf(doc, sizeof doc, SVC, bad[i].name, digest, bad[i].env, bad[i].after);
        CHECK(f, request(f, "POST", "/v1/apply", T, doc, (size_t)n, &r) == 0 && r.status == 400);
        CHECK(f, error_body_ok(&r, bad[i].want));
        free(r.body);
        CHECK(f, request(f, "GET", bad[i].absent, T, NULL, 0, &r) == 0 && r.status == 404);
        free(r.body);
    }
    /* A raw NUL byte in a string is refused as well. */
    int n = snprintf(doc, sizeof doc, SVC, "rawnul", digest, "x_y", "");
    strstr(doc, "x_y")[1] = '\0';
    CHECK(f, request(f, "POST", "/v1/apply", T, doc, (size_t)n, &r) == 0 && r.status == 400);
    CHECK(f, error_body_ok(&r, "NUL character"));
    free(r.body);
    /* An error that echoes bytes that are not UTF-8 (here the path) is
     * still valid JSON. */
    CHECK(f, request(f, "GET", "/v1/nope\xff\xfe", T, NULL, 0, &r) == 0 && r.status == 404);
    CHECK(f, error_body_ok(&r, "no such endpoint"));
    free(r.body);
    /* Not NULs: an escaped backslash before "u0000", and trailing
     * whitespace, are fine. */
    n = snprintf(doc, sizeof doc, SVC, "fine", digest, "a\\\\u0000", " \r\n\t");
    CHECK(f, request(f, "POST", "/v1/apply", T, doc, (size_t)n, &r) == 0 && r.status == 200);
    free(r.body);
    CHECK(f, request(f, "GET", "/v1/functions/fine", T, NULL, 0, &r) == 0 && r.status == 200);
    j = json_of(&r);
    cJSON *rev = cJSON_GetArrayItem(cJSON_GetObjectItem(j, "revisions"), 0);
    CHECK(f, strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(cJSON_GetObjectItem(rev, "env"), "A")) ?: "",
                    "a\\u0000") == 0);
    cJSON_Delete(j);
    free(r.body);
#undef SVC
}

static void test_strict_json(void **state)
{
    (void)state;
    run_client(client_strict_json);
}

static void test_deploy_flow(void **state)
{
    (void)state;
    run_client(client_deploy_flow);
}

static void test_compile_once(void **state)
{
    (void)state;
    run_client_with(client_compile_once, true);
}

static void test_token_equal(void **state)
{
    (void)state;
    const char *t = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    assert_true(api_token_equal(t, t));
    assert_false(api_token_equal("", t));
    assert_false(api_token_equal("0123", t));
    assert_false(api_token_equal("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdeF", t));
    assert_false(api_token_equal("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef0", t));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_token_equal),
        cmocka_unit_test(test_auth_and_health),
        cmocka_unit_test(test_deploy_flow),
        cmocka_unit_test(test_strict_json),
        cmocka_unit_test(test_compile_once),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
