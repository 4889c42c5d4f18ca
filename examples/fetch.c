/*
 * fetch.c — a function that calls another service: outbound HTTP through
 * the wasi_experimental_http import module (the C header beside this file,
 * docs/host-http.md). It GETs UPSTREAM_URL followed by the request's path
 * and query, and answers with the upstream's status, Content-Type and
 * body; a refused or failed call answers 502 naming the error.
 *
 * The destination must be on the revision's allowed list (examples/fetch.yaml
 * sets UPSTREAM_URL and wasmfn.dev/allowed-hosts to https://example.com):
 *
 *   wasmfn apply -f examples/fetch.yaml
 *   curl http://127.0.0.1:8080/fn/fetch/
 *   wasmfn deploy fetch build/examples/fetch.wasm --env UPSTREAM_URL=http://10.0.0.5:8080 \
 *       --allow-host http://10.0.0.5:8080
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wasi_experimental_http.h"

static const char *const errors[] = {
    "success", "invalid handle", "memory not found", "memory access error",
    "buffer too small", "header not found", "UTF-8 error", "destination not allowed",
    "invalid method", "invalid encoding", "invalid URL", "request error", "runtime error",
    "too many sessions",
};

int main(void)
{
    const char *base = getenv("UPSTREAM_URL");
    const char *path = getenv("PATH_INFO");
    const char *query = getenv("QUERY_STRING");
    if (!base) {
        printf("Status: 500\nContent-Type: text/plain\n\nUPSTREAM_URL is not set\n");
        return 0;
    }
    char url[4096];
    snprintf(url, sizeof url, "%s%s%s%s", base, path && strcmp(path, "/") ? path : "",
             query && *query ? "?" : "", query && *query ? query : "");

    uint16_t status = 0;
    wxh_handle_t h;
    const char *hdrs = "user-agent:wasmfn-fetch-example\n";
    uint32_t e = wxh_req(url, strlen(url), "GET", 3, hdrs, strlen(hdrs), NULL, 0, &status, &h);
    if (e != WXH_OK) {
        printf("Status: 502\nContent-Type: text/plain\n\n%s: error %u (%s)\n", url, e,
               e < sizeof errors / sizeof *errors ? errors[e] : "unknown");
        return 0;
    }
    char ctype[256];
    size_t n = 0;
    if (wxh_header_get(h, "content-type", 12, ctype, sizeof ctype - 1, &n) != WXH_OK) n = 0;
    ctype[n] = 0;
    printf("Status: %u\nContent-Type: %s\n\n", status, n ? ctype : "application/octet-stream");
    static uint8_t buf[16384];
    while (wxh_body_read(h, buf, sizeof buf, &n) == WXH_OK && n > 0) fwrite(buf, 1, n, stdout);
    wxh_close(h);
    return 0;
}
