/*
 * http.c — a container whose spec carries the annotation wasmfn.dev/http:
 * "true" serves its module as a WAGI function over HTTP, the way Knative's
 * runtime contract asks of a container: on 0.0.0.0:$PORT (PORT from the
 * container's env, default 8080), every path, until SIGTERM.
 *
 * It is wasmfn's own data plane (src/serving) with one function in it,
 * named after nothing in particular ("fn"): a fresh instance per request,
 * the same limits, queue and autoscaled warm instances as `wasmfn serve`,
 * and `GET /metrics` answered with the data plane's Prometheus metrics
 * (wasmfn_requests_total, ...), so Knative's queue-proxy and KEDA's
 * Prometheus trigger work as with any container. The one path the guest
 * never sees is /metrics.
 */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "cli/cli.h"
#include "common/metrics.h"
#include "serving/serving.h"
#include "shim/guest.h"

#define HTTP_FN_NAME "fn"
#define HTTP_DEFAULT_PORT "8080"

typedef struct http_ctx {
    uv_loop_t loop;
    mx_registry_t *mx;
    srv_t *srv;
    hs_server_t *hs;
    const uint8_t *bytes; /* the module; the data plane loads it by digest */
    size_t len;
    char digest[8 + 64 + 1];
    uv_signal_t sigterm, sigint;
    int signal;
} http_ctx_t;

static int load_blob(void *ud, const char *digest, uint8_t **bytes, size_t *len, char *err,
                     size_t errlen)
{
    http_ctx_t *c = ud;
    if (strcmp(digest, c->digest) != 0) {
        snprintf(err, errlen, "%s: no such module in this container", digest);
        return -1;
    }
    if (!(*bytes = malloc(c->len ? c->len : 1))) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    memcpy(*bytes, c->bytes, c->len);
    *len = c->len;
    return 0;
}

static void handle(hs_req_t *req, void *ud)
{
    http_ctx_t *c = ud;
    if (strcmp(req->path, "/metrics") == 0) {
        size_t n;
        char *text = mx_registry_render(c->mx, &n);
        if (!text) {
            hs_respond_text(req, 500, "out of memory\n");
            return;
        }
        hs_header_t h = {"Content-Type", "text/plain; version=0.0.4"};
        hs_respond(req, 200, &h, 1, text, n);
        free(text);
        return;
    }
    srv_invoke(c->srv, HTTP_FN_NAME, req->path, req);
}

static void on_closed(void *ud)
{
    http_ctx_t *c = ud;
    uv_stop(&c->loop);
}

static void on_drained(void *ud)
{
    http_ctx_t *c = ud;
    hs_server_t *hs = c->hs;
    c->hs = NULL;
    if (hs) hs_server_close(hs, on_closed, c);
    else uv_stop(&c->loop);
}

static void on_signal(uv_signal_t *h, int signum)
{
    http_ctx_t *c = h->data;
    if (c->signal) exit(128 + signum); /* a second one: do not wait */
    c->signal = signum;
    srv_drain(c->srv, on_drained, c);
}

static const char *env_get(const shim_spec_t *spec, const char *key)
{
    size_t n = strlen(key);
    for (int i = spec->nenv - 1; i >= 0; i--)
        if (strncmp(spec->env[i], key, n) == 0 && spec->env[i][n] == '=') return spec->env[i] + n + 1;
    return NULL;
}

int shim_http_serve(const shim_spec_t *spec, const shim_config_t *cfg, const uint8_t *bytes,
                    size_t len, int (*gate)(void), char *err, size_t errlen)
{
    http_ctx_t c;
    memset(&c, 0, sizeof c);
    c.bytes = bytes;
    c.len = len;
    uint8_t d[32];
    cli_sha256(bytes, len, d);
    memcpy(c.digest, "sha256:", 7);
    for (int i = 0; i < 32; i++) snprintf(c.digest + 7 + 2 * i, 3, "%02x", d[i]);

    const char *port = env_get(spec, "PORT");
    if (!port || !*port) port = HTTP_DEFAULT_PORT;
    char listen[64];
    char *end;
    long p = strtol(port, &end, 10);
    if (*end || p < 1 || p > 65535) {
        snprintf(err, errlen, "PORT=%s: not a TCP port", port);
        return -1;
    }
    snprintf(listen, sizeof listen, "0.0.0.0:%ld", p);

    if (uv_loop_init(&c.loop) != 0 || !(c.mx = mx_registry_new())) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    srv_config_t sc = {
        .loop = &c.loop,
        .metrics = c.mx,
        .load_blob = load_blob,
        .load_blob_ud = &c,
    };
    char note[640];
    shim_native_serving(cfg, d, &c.loop, &sc, note, sizeof note);
    shim_guest_log("%s: HTTP function: %s", spec->args[0], note);
    if (!(c.srv = srv_new(&sc, err, errlen))) return -1;

    srv_revision_t rev = {
        .name = HTTP_FN_NAME "-00001",
        .digest = c.digest,
        .env = (const char *const *)spec->env,
        .nenv = (uint32_t)spec->nenv,
        .memory_limit_bytes = spec->memory_limit_bytes,
    };
    as_config_default(&rev.scaling);
    rev.scaling.min_scale = 0;
    srv_route_t route = {.revision = rev.name, .percent = 100};
    char ferr[512];
    if (srv_function_put(c.srv, HTTP_FN_NAME, &rev, 1, &route, 1, ferr, sizeof ferr) != 0) {
        snprintf(err, errlen, "%s: %s", spec->args[0], ferr);
        return -1;
    }
    c.hs = hs_server_new(&c.loop, NULL, handle, &c);
    if (!c.hs || hs_server_listen(c.hs, listen, err, errlen) != 0) {
        if (c.hs) snprintf(err + strlen(err), errlen - strlen(err), " (listening on %s)", listen);
        return -1;
    }
    /* Until Start, guest.c's handlers make a signal end the gate's wait;
     * from then on libuv's drain the data plane. */
    int st = gate();
    if (st != 0) return st;
    uv_signal_init(&c.loop, &c.sigterm);
    uv_signal_init(&c.loop, &c.sigint);
    c.sigterm.data = c.sigint.data = &c;
    uv_signal_start(&c.sigterm, on_signal, SIGTERM);
    uv_signal_start(&c.sigint, on_signal, SIGINT);
    if (shim_guest_signal()) return 128 + shim_guest_signal();
    fprintf(stderr, "wasmfn: serving %s on http://%s\n", spec->args[0], listen);
    uv_run(&c.loop, UV_RUN_DEFAULT);
    /* Exiting frees everything; a drained data plane has nothing left to
     * finish. */
    return 0;
}
