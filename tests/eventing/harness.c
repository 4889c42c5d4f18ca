/*
 * harness.c — a small daemon that runs the eventing subsystem on a uv loop
 * for the integration tests (tests/eventing/run_tests.sh), the way
 * `wasmfn serve` will: one HTTP server (src/common/http.c) answering
 *
 *   POST   /apply               body: one manifest document as JSON
 *   DELETE /objects/KIND/NAME
 *   GET    /objects             ev_list_json
 *   GET    /metrics             the metric registry
 *   POST   /events/BROKER       ev_broker_ingress
 *
 * Services resolve to SINK_BASE/NAME (the test's HTTP sink), each with
 * max-scale --max-scale. SIGTERM drains (ev_drain) and exits 0.
 *
 *   ev-harness --data DIR --sink-base URL --port-file FILE
 *              [--redis redis://H:P] [--max-scale N]
 *              [--queue-bytes N] [--trigger-queue-bytes N]
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <uv.h>

#include "http/http.h"
#include "common/metrics.h"
#include "eventing/eventing.h"

static ev_t *ev;
static mx_registry_t *mx;
static hs_server_t *srv;
static char sink_base[512];
static int max_scale = 10;

static int sink_url(void *ud, const char *name, char *url, size_t len)
{
    (void)ud;
    if (strcmp(name, "missing") == 0)
        return -1;
    snprintf(url, len, "%s/%s", sink_base, name);
    return 0;
}

static int sink_max_scale(void *ud, const char *name)
{
    (void)ud;
    (void)name;
    return max_scale;
}

static void respond_err(hs_req_t *r, int status, const char *msg)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "error", msg);
    char *s = cJSON_PrintUnformatted(o);
    hs_respond_json(r, status, s);
    free(s);
    cJSON_Delete(o);
}

static void handle(hs_req_t *r, void *ud)
{
    (void)ud;
    if (strncmp(r->path, "/events/", 8) == 0) {
        ev_broker_ingress(ev, r->path + 8, r);
        return;
    }
    if (strcmp(r->path, "/apply") == 0 && strcmp(r->method, "POST") == 0) {
        cJSON *doc = cJSON_ParseWithLength((const char *)r->body, r->body_len);
        if (!doc) {
            respond_err(r, 400, "body is not JSON");
            return;
        }
        char out[4096];
        int rc = ev_apply(ev, doc, out, sizeof out);
        cJSON_Delete(doc);
        if (rc)
            respond_err(r, 400, out);
        else
            hs_respond_json(r, 200, out);
        return;
    }
    if (strncmp(r->path, "/objects/", 9) == 0 && strcmp(r->method, "DELETE") == 0) {
        char kind[64], name[256];
        if (sscanf(r->path + 9, "%63[^/]/%255s", kind, name) != 2) {
            respond_err(r, 400, "want /objects/KIND/NAME");
            return;
        }
        if (ev_delete(ev, kind, name))
            respond_err(r, 404, "no such object");
        else
            hs_respond_json(r, 200, "{\"deleted\":true}");
        return;
    }
    if (strcmp(r->path, "/objects") == 0) {
        char *s = ev_list_json(ev);
        hs_respond_json(r, 200, s);
        free(s);
        return;
    }
    if (strcmp(r->path, "/metrics") == 0) {
        size_t n;
        char *s = mx_registry_render(mx, &n);
        hs_header_t h = {"Content-Type", "text/plain; version=0.0.4"};
        hs_respond(r, 200, &h, 1, s, n);
        free(s);
        return;
    }
    respond_err(r, 404, "not found");
}

static uv_signal_t sigterm;

static void server_closed(void *ud)
{
    (void)ud;
}

static void drained(void *ud)
{
    (void)ud;
    fprintf(stderr, "ev-harness: drained\n");
    uv_signal_stop(&sigterm);
    uv_close((uv_handle_t *)&sigterm, NULL);
}

static void on_sigterm(uv_signal_t *s, int sig)
{
    (void)s;
    (void)sig;
    hs_server_close(srv, server_closed, NULL);
    ev_drain(ev, drained, NULL);
}

int main(int argc, char **argv)
{
    const char *data = NULL, *redis = NULL, *port_file = NULL;
    size_t queue_bytes = 0, trigger_queue_bytes = 0;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--data") == 0)
            data = argv[i + 1];
        else if (strcmp(argv[i], "--redis") == 0)
            redis = argv[i + 1];
        else if (strcmp(argv[i], "--sink-base") == 0)
            snprintf(sink_base, sizeof sink_base, "%s", argv[i + 1]);
        else if (strcmp(argv[i], "--port-file") == 0)
            port_file = argv[i + 1];
        else if (strcmp(argv[i], "--max-scale") == 0)
            max_scale = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--queue-bytes") == 0)
            queue_bytes = strtoull(argv[i + 1], NULL, 10);
        else if (strcmp(argv[i], "--trigger-queue-bytes") == 0)
            trigger_queue_bytes = strtoull(argv[i + 1], NULL, 10);
        else {
            fprintf(stderr, "ev-harness: unknown option %s\n", argv[i]);
            return 2;
        }
    }
    if (!data || !port_file || !sink_base[0]) {
        fprintf(stderr, "usage: ev-harness --data DIR --sink-base URL --port-file FILE "
                        "[--redis URL] [--max-scale N]\n");
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    uv_loop_t *loop = uv_default_loop();
    mx = mx_registry_new();
    ev_config_t cfg = {
        .loop = loop,
        .data_dir = data,
        .redis_url = redis,
        .sink_url = sink_url,
        .sink_max_scale = sink_max_scale,
        .metrics = mx,
        .max_event_bytes = 64 * 1024,
        .max_queue_bytes = queue_bytes,
        .max_queue_bytes_per_trigger = trigger_queue_bytes,
    };
    char err[512];
    ev = ev_new(&cfg, err, sizeof err);
    if (!ev) {
        fprintf(stderr, "ev-harness: %s\n", err);
        return 1;
    }
    srv = hs_server_new(loop, NULL, handle, NULL);
    if (!srv || hs_server_listen(srv, "127.0.0.1:0", err, sizeof err)) {
        fprintf(stderr, "ev-harness: listen: %s\n", err);
        return 1;
    }
    char tmp[600];
    snprintf(tmp, sizeof tmp, "%s.tmp", port_file);
    FILE *f = fopen(tmp, "w");
    if (!f)
        return 1;
    fprintf(f, "%u\n", hs_server_port(srv));
    fclose(f);
    rename(tmp, port_file);
    uv_signal_init(loop, &sigterm);
    uv_signal_start(&sigterm, on_sigterm, SIGTERM);
    uv_run(loop, UV_RUN_DEFAULT);
    ev_free(ev);
    uv_run(loop, UV_RUN_DEFAULT); /* close callbacks */
    mx_registry_free(mx);
    uv_loop_close(loop);
    return 0;
}
