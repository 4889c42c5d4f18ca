/*
 * wasi_experimental_http.h — outbound HTTP for C guests (wasm32-wasi), the
 * `wasi_experimental_http` import module as wasmfn provides it
 * (docs/host-http.md): deislabs' published interface, so the same module
 * runs on any host that implements it.
 *
 * Every function returns an error code (WXH_*, 0 = success). Strings are
 * (pointer, length) pairs, not NUL-terminated. Request headers are
 * "Name:value" lines separated by '\n'; headers_get_all answers in the
 * same form with lower-case names. A response stays open (and counts
 * against the instance's limits) until wxh_close.
 *
 *   uint16_t status;
 *   wxh_handle_t h;
 *   const char *url = "https://api.example.com/v1/items";
 *   uint32_t e = wxh_req(url, strlen(url), "GET", 3, "accept:application/json\n", 24,
 *                        NULL, 0, &status, &h);
 *   if (e == WXH_OK) {
 *       char buf[4096];
 *       size_t n;
 *       while (wxh_body_read(h, (uint8_t *)buf, sizeof buf, &n) == WXH_OK && n > 0)
 *           fwrite(buf, 1, n, stdout);
 *       wxh_close(h);
 *   }
 */
#ifndef WASI_EXPERIMENTAL_HTTP_H
#define WASI_EXPERIMENTAL_HTTP_H

#include <stddef.h>
#include <stdint.h>

/* Error codes (the interface's `http_error`). */
enum {
    WXH_OK = 0,
    WXH_INVALID_HANDLE = 1,
    WXH_MEMORY_NOT_FOUND = 2,
    WXH_MEMORY_ACCESS_ERROR = 3,
    WXH_BUFFER_TOO_SMALL = 4,   /* *written still holds the size needed */
    WXH_HEADER_NOT_FOUND = 5,
    WXH_UTF8_ERROR = 6,
    WXH_DESTINATION_NOT_ALLOWED = 7,
    WXH_INVALID_METHOD = 8,
    WXH_INVALID_ENCODING = 9,
    WXH_INVALID_URL = 10,
    WXH_REQUEST_ERROR = 11,
    WXH_RUNTIME_ERROR = 12,
    WXH_TOO_MANY_SESSIONS = 13,
};

typedef uint32_t wxh_handle_t;

#define WXH_IMPORT(name) \
    __attribute__((import_module("wasi_experimental_http"), import_name(name)))

/* Sends a request and waits for the whole response: its status in *status
 * and a handle to read headers and body from. body may be NULL when
 * body_len is 0. */
WXH_IMPORT("req")
uint32_t wxh_req(const char *url, size_t url_len, const char *method, size_t method_len,
                 const char *headers, size_t headers_len, const uint8_t *body, size_t body_len,
                 uint16_t *status, wxh_handle_t *handle);

/* Frees the response. */
WXH_IMPORT("close")
uint32_t wxh_close(wxh_handle_t handle);

/* The first value of header `name` (any case) into buf; *written = its
 * length. */
WXH_IMPORT("header_get")
uint32_t wxh_header_get(wxh_handle_t handle, const char *name, size_t name_len, char *buf,
                        size_t buf_len, size_t *written);

/* Every header, "name:value\n" each, into buf; *written = the length. */
WXH_IMPORT("headers_get_all")
uint32_t wxh_headers_get_all(wxh_handle_t handle, char *buf, size_t buf_len, size_t *written);

/* The next bytes of the body into buf; *written = how many, 0 at the end. */
WXH_IMPORT("body_read")
uint32_t wxh_body_read(wxh_handle_t handle, uint8_t *buf, size_t buf_len, size_t *written);

#undef WXH_IMPORT

#endif
