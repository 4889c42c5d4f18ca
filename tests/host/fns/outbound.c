/*
 * outbound.c — the test guest of outbound HTTP (tests/host/http_tests.sh):
 * calls wasi_experimental_http as its request asks, and writes what it
 * got back as text lines the test compares.
 *
 *   PATH_INFO /fetch     one request: URL from the X-Url request header,
 *                        method from X-Method (default GET), the request's
 *                        own body as the body, header "x-from-guest:yes"
 *                        (and "traceparent:V" when the request has
 *                        X-Traceparent: V);
 *                        answers "error=N", then status, the X-Upstream
 *                        header (header_get), every header
 *                        (headers_get_all) and the body.
 *   PATH_INFO /badptr    bad pointers, handles and strings: one
 *                        "name=error" line per call.
 *   PATH_INFO /sessions  nine requests to X-Url without closing any, then
 *                        one more after a close: "sN=error" lines.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "wasi_experimental_http.h"

static char body_in[1 << 16];
static uint8_t buf[1 << 16];

static uint32_t get(const char *url, const char *method, uint16_t *status, wxh_handle_t *h)
{
    return wxh_req(url, strlen(url), method, strlen(method), "x-from-guest:yes\n", 17, NULL, 0,
                   status, h);
}

static int fetch(const char *url)
{
    const char *method = getenv("HTTP_X_METHOD");
    if (!method) method = "GET";
    size_t n = 0;
    ssize_t r;
    while (n < sizeof body_in && (r = read(0, body_in + n, sizeof body_in - n)) > 0) n += (size_t)r;
    uint16_t status = 0;
    wxh_handle_t h = 0;
    char hdrs[256];
    const char *own_tp = getenv("HTTP_X_TRACEPARENT");
    snprintf(hdrs, sizeof hdrs, "x-from-guest:yes\ncontent-type:text/plain\n%s%s%s",
             own_tp ? "traceparent:" : "", own_tp ? own_tp : "", own_tp ? "\n" : "");
    uint32_t e = wxh_req(url, strlen(url), method, strlen(method), hdrs, strlen(hdrs),
                         (const uint8_t *)body_in, n, &status, &h);
    printf("error=%u\n", e);
    if (e != WXH_OK) return 0;
    printf("status=%u\n", status);
    size_t w = 0;
    char v[256];
    e = wxh_header_get(h, "X-Upstream", 10, v, sizeof v, &w);
    printf("x-upstream=%.*s (error %u)\n", e ? 0 : (int)w, v, e);
    e = wxh_headers_get_all(h, (char *)buf, sizeof buf, &w);
    printf("headers (error %u):\n%.*s", e, e ? 0 : (int)w, (char *)buf);
    printf("body:\n");
    size_t total = 0;
    while ((e = wxh_body_read(h, buf, 1000, &w)) == WXH_OK && w > 0) {
        fwrite(buf, 1, w, stdout);
        total += w;
    }
    printf("\nbody_bytes=%zu end_error=%u\n", total, e);
    printf("close=%u close_again=%u\n", wxh_close(h), wxh_close(h));
    return 0;
}

#define OOB ((void *)(uintptr_t)0xFFFFFF00u)

static int badptr(const char *url)
{
    uint16_t st;
    wxh_handle_t h;
    size_t w;
    printf("req_url_oob=%u\n", wxh_req(OOB, 300, "GET", 3, "", 0, NULL, 0, &st, &h));
    printf("req_len_wraps=%u\n", wxh_req(url, 0xFFFFFFFFu, "GET", 3, "", 0, NULL, 0, &st, &h));
    printf("req_status_oob=%u\n",
           wxh_req(url, strlen(url), "GET", 3, "", 0, NULL, 0, OOB, &h));
    printf("req_body_oob=%u\n", wxh_req(url, strlen(url), "POST", 4, "", 0, OOB, 4096, &st, &h));
    printf("bad_utf8=%u\n", wxh_req("http://\xff/", 9, "GET", 3, "", 0, NULL, 0, &st, &h));
    printf("bad_method=%u\n", wxh_req(url, strlen(url), "GE T", 4, "", 0, NULL, 0, &st, &h));
    printf("bad_headers=%u\n",
           wxh_req(url, strlen(url), "GET", 3, "no colon\n", 9, NULL, 0, &st, &h));
    printf("bad_url=%u\n", wxh_req("not a url", 9, "GET", 3, "", 0, NULL, 0, &st, &h));
    printf("close_bad=%u\n", wxh_close(12345));
    printf("body_bad_handle=%u\n", wxh_body_read(777, buf, sizeof buf, &w));
    uint32_t e = get(url, "GET", &st, &h);
    printf("ok_req=%u\n", e);
    if (e) return 0;
    printf("header_name_oob=%u\n", wxh_header_get(h, OOB, 1000, (char *)buf, 10, &w));
    printf("header_written_oob=%u\n", wxh_header_get(h, "x-upstream", 10, (char *)buf, 10, OOB));
    w = 0;
    e = wxh_header_get(h, "x-upstream", 10, (char *)buf, 1, &w);
    printf("header_small=%u needed=%zu\n", e, w);
    printf("header_missing=%u\n", wxh_header_get(h, "x-nope", 6, (char *)buf, 10, &w));
    printf("all_small=%u\n", wxh_headers_get_all(h, (char *)buf, 2, &w));
    printf("body_buf_oob=%u\n", wxh_body_read(h, OOB, 4096, &w));
    printf("body_len_huge=%u\n", wxh_body_read(h, buf, 0xFFFFFFFFu, &w));
    printf("close=%u\n", wxh_close(h));
    return 0;
}

static int sessions(const char *url)
{
    wxh_handle_t hs[9];
    uint16_t st;
    for (int i = 0; i < 9; i++) printf("s%d=%u\n", i + 1, get(url, "GET", &st, &hs[i]));
    printf("close1=%u\n", wxh_close(hs[0]));
    wxh_handle_t h;
    printf("after_close=%u\n", get(url, "GET", &st, &h));
    return 0;
}

int main(void)
{
    const char *path = getenv("PATH_INFO");
    const char *url = getenv("HTTP_X_URL");
    printf("Content-Type: text/plain\n\n");
    if (!path || !url) {
        printf("want PATH_INFO and X-Url\n");
        return 0;
    }
    if (strcmp(path, "/fetch") == 0) return fetch(url);
    if (strcmp(path, "/badptr") == 0) return badptr(url);
    if (strcmp(path, "/sessions") == 0) return sessions(url);
    printf("unknown path %s\n", path);
    return 0;
}
