/*
 * daemon.c — the composition root (daemon.h): opens the data directory,
 * starts the data plane (src/serving) and the admin API (src/api) on one
 * libuv loop, loads every stored function before /readyz says ready, and
 * on SIGTERM or SIGINT drains both servers and returns 0.
 *
 * Start-up order matters: the store is opened first (it holds the lock
 * that keeps a second daemon off the directory), the data plane listens
 * next, then every stored function is loaded — all before the loop runs,
 * so no request is ever answered with a half-loaded registry — and the
 * admin API listens last.
 *
 * The wiring between the parts lives here and only here: the data plane
 * reads modules and artefacts from the store, broker ingress goes from the
 * data plane to eventing, and eventing's Service sinks are in-process calls
 * of the data plane (srv_call_submit) capped by the Service's max-scale.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include <uv.h>

#include "api/api.h"
#include "common/metrics.h"
#include "daemon/daemon.h"
#include "eventing/eventing.h"
#include "host/http_out.h"
#include "host/kv.h"
#include "keda/keda.h"
#include "http/http.h"
#include "metering/metering.h"
#include "runtime/link.h"
#include "runtime/runtime.h"
#include "serving/serving.h"
#include "store/secrets.h"
#include "store/store.h"
#include "trace/trace.h"

typedef struct daemon_state {
    uv_loop_t loop;
    uv_signal_t sigterm, sigint;
    st_store_t *st;
    mx_registry_t *mx;
    mtr_t *mtr;
    ev_t *ev;
    kd_t *kd;           /* KEDA ScaledObjects */
    srv_t *srv;
    kv_t *kv;           /* wasmfn_kv's stores (SQLite, or Redis with --redis) */
    st_secrets_t *secrets; /* Secrets and ConfigMaps, sealed with DATA/secrets.key */
    rt_compiler_t *compiler;  /* background native compiles, or NULL */
    ho_client_t *outbound;    /* guests' outbound HTTP (src/host/http_out.h) */
    uint8_t native_key[ENG_NATIVE_KEY_BYTES];
    char exe[4096];
    api_t *api;
    hs_server_t *admin;
    int pending;        /* servers still draining */
    bool draining;
    tr_tracer_t *tracer; /* --otlp-endpoint: spans go here, else NULL */
} daemon_state_t;

/* File descriptors (issue 14): the soft limit is raised to the hard one,
 * then split. The admin API may hold an eighth of them (32 to 1024), as
 * many again are kept for the rest of the process (the store, blobs,
 * worker pipes, compiles, eventing), and the data plane gets what is left.
 * A flood of data-plane connections (or a slowloris) then meets the data
 * plane's own cap, closed at accept, instead of the process's limit, and
 * the admin port stays reachable. */
static void fd_budget(uint32_t *data_conns, uint32_t *admin_conns)
{
    struct rlimit rl;
    uint64_t n = 1024;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
        rlim_t want = rl.rlim_max == RLIM_INFINITY || rl.rlim_max > (1u << 20) ? (1u << 20)
                                                                               : rl.rlim_max;
        if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < want) {
            struct rlimit up = {want, rl.rlim_max};
            if (setrlimit(RLIMIT_NOFILE, &up) == 0) rl.rlim_cur = want;
        }
        n = rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur > (1u << 20) ? (1u << 20) : rl.rlim_cur;
    }
    uint64_t share = n / 8;
    if (share < 32) share = 32;
    if (share > 1024) share = 1024;
    *admin_conns = (uint32_t)share;
    *data_conns = n > 2 * share + 16 ? (uint32_t)(n - 2 * share) : 16;
}

/* "http://HOST:PORT" for an address given as HOST:PORT, with the port the
 * listener actually got and a wildcard host shown as loopback. */
static char *url_of(const char *host_port, uint16_t port)
{
    const char *colon = strrchr(host_port, ':');
    size_t hl = colon ? (size_t)(colon - host_port) : 0;
    char host[256];
    if (hl >= sizeof host) hl = sizeof host - 1;
    memcpy(host, host_port, hl);
    host[hl] = '\0';
    const char *h = host;
    if (!*h || strcmp(h, "0.0.0.0") == 0) h = "127.0.0.1";
    else if (strcmp(h, "[::]") == 0) h = "[::1]";
    char *u;
    if (asprintf(&u, "http://%s:%u", h, port) < 0) return NULL;
    return u;
}

static int load_blob(void *ud, const char *digest, uint8_t **bytes, size_t *len, char *err,
                     size_t errlen)
{
    return st_blob_get(ud, digest, bytes, len, err, errlen) == ST_OK ? 0 : -1;
}

/* Compiled modules, next to the blobs (store.h); 1 = none yet. */
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

/* Native code, next to the compiled modules: artifacts/HEX.native-TARGET. */
static char native_kind[32];

static int native_get(void *ud, const char *digest, uint8_t **bytes, size_t *len, char *err,
                      size_t errlen)
{
    int r = st_artifact_get_kind(ud, digest, native_kind, bytes, len, err, errlen);
    return r == ST_OK ? 0 : r == ST_NOT_FOUND ? 1 : -1;
}

static int native_put(void *ud, const char *digest, const uint8_t *bytes, size_t len, char *err,
                      size_t errlen)
{
    return st_artifact_put_kind(ud, digest, native_kind, bytes, len, err, errlen) == ST_OK ? 0 : -1;
}

static void events_ingress(void *ud, const char *broker, hs_req_t *req)
{
    ev_broker_ingress(ud, broker, req);
}

/* Eventing's Service sinks are functions of this process: an event is a
 * call of the data plane's one entry, srv_call_submit, as `POST
 * /fn/NAME/` (eventing/local.c brings it to the loop thread, where this
 * runs). A Service that does not exist is an attempt that failed (status
 * 0), retried like an unreachable sink. */
static void service_call(void *ud, const char *service, const hs_header_t *headers,
                         size_t nheaders, const uint8_t *body, size_t len, uint32_t timeout_ms,
                         ev_service_done_fn done, void *ctx)
{
    daemon_state_t *d = ud;
    srv_status_t st;
    if (srv_function_status(d->srv, service, &st) != 0) {
        char why[320];
        int n = snprintf(why, sizeof why, "service %.200s not found", service);
        done(ctx, 0, NULL, 0, why, (size_t)n);
        return;
    }
    srv_call_req_t rq = {
        .function = service,
        .method = "POST",
        .path = "/",
        .headers = headers,
        .nheaders = nheaders,
        .body = body,
        .body_len = len,
        .timeout_ms = timeout_ms,
    };
    srv_call_submit(d->srv, &rq, done, ctx);
}

/* A Service sink's parallelism cap: its max-scale (docs/eventing.md). From
 * eventing's threads: srv_function_max_scale may be called from any. */
static int sink_max_scale(void *ud, const char *service)
{
    daemon_state_t *d = ud;
    return (int)srv_function_max_scale(d->srv, service);
}

/* KEDA's ScaledObjects drive the data plane's instance counts (loop
 * thread) and read its usage for cpu and memory triggers (poller
 * threads: srv_function_usage may be called from any). */
static int kd_set_replicas(void *ud, const char *service, int32_t replicas)
{
    daemon_state_t *d = ud;
    return srv_function_set_replicas(d->srv, service, replicas);
}

static int kd_usage(void *ud, const char *service, kd_usage_t *out)
{
    daemon_state_t *d = ud;
    srv_usage_t u;
    if (srv_function_usage(d->srv, service, &u) != 0) return -1;
    out->cpu_ns = u.cpu_ns;
    out->memory_kib_ms = u.memory_kib_ms;
    out->cpu_request_millis = u.cpu_request_millis;
    out->memory_request_bytes = u.memory_request_bytes;
    return 0;
}

static void on_ev_drained(void *ud)
{
    daemon_state_t *d = ud;
    srv_set_events_ingress(d->srv, NULL, NULL);
    ev_free(d->ev);
    d->ev = NULL;
    api_set_eventing_gone(d->api);
    if (--d->pending > 0) return;
    uv_close((uv_handle_t *)&d->sigterm, NULL);
    uv_close((uv_handle_t *)&d->sigint, NULL);
    uv_stop(&d->loop);
}

static void on_drained(void *ud)
{
    daemon_state_t *d = ud;
    if (--d->pending > 0) return;
    uv_close((uv_handle_t *)&d->sigterm, NULL);
    uv_close((uv_handle_t *)&d->sigint, NULL);
    uv_stop(&d->loop);
}

static void on_signal(uv_signal_t *h, int signum)
{
    daemon_state_t *d = h->data;
    if (d->draining) {
        /* A second signal: the user does not want to wait. Acknowledged
         * deploys are committed already, so nothing is lost. */
        fprintf(stderr, "wasmfn: %s again; exiting without waiting\n", strsignal(signum));
        _exit(1);
    }
    d->draining = true;
    fprintf(stderr, "wasmfn: %s: draining in-flight requests\n", strsignal(signum));
    api_set_ready(d->api, false);
    api_shutdown(d->api);
    d->pending = d->ev ? 3 : 2;
    hs_server_t *admin = d->admin;
    d->admin = NULL; /* hs_server_close frees it */
    if (d->ev)
        ev_drain(d->ev, on_ev_drained, d);
    srv_drain(d->srv, on_drained, d);
    hs_server_close(admin, on_drained, d);
}

int dmn_run(const dmn_options_t *o)
{
    signal(SIGPIPE, SIG_IGN); /* a client gone mid-write is an EPIPE, not a death */

    daemon_state_t d;
    memset(&d, 0, sizeof d);
    char err[512];
    int rc = 1;
    char *data_url = NULL, *admin_url = NULL;
    bool loop_ok = false;

    const char *data = o->data;
    d.st = st_open(data, err, sizeof err);
    if (!d.st) {
        fprintf(stderr, "wasmfn serve: %s\n", err);
        goto out;
    }
    if (uv_loop_init(&d.loop) != 0) {
        fprintf(stderr, "wasmfn serve: cannot create the event loop\n");
        goto out;
    }
    loop_ok = true;
    d.mx = mx_registry_new();
    if (!d.mx) {
        fprintf(stderr, "wasmfn serve: out of memory\n");
        goto out;
    }
    if (!o->no_metering) {
        mtr_config_t mc;
        mtr_config_init(&mc);
        char db[4096];
        snprintf(db, sizeof db, "%s/wasmfn.db", data);
        mc.db_path = db;
        mc.metrics = d.mx;
        if (o->billing_granularity_ns)
            mc.granularity_ns = o->billing_granularity_ns;
        if (o->price_gb_second >= 0)
            mc.price_per_gb_second = o->price_gb_second;
        if (o->price_million_requests >= 0)
            mc.price_per_million_requests = o->price_million_requests;
        d.mtr = mtr_open(&mc, err, sizeof err);
        if (!d.mtr) {
            fprintf(stderr, "wasmfn serve: metering: %s\n", err);
            goto out;
        }
    }
    /* Native code: compiled in the background, stored sealed. Without a
     * sound key nothing stored is trusted (or written): modules compile
     * afresh after each start. */
    bool key_ok = false;
    if (!o->interp_only && eng_native_can_compile()) {
        char kerr[512];
        key_ok = rt_native_key_load(data, d.native_key, kerr, sizeof kerr) == 0;
        if (!key_ok)
            fprintf(stderr, "wasmfn serve: %s; native code will not be kept on disk\n", kerr);
        uint8_t t[32];
        eng_native_target_digest(t);
        int n = snprintf(native_kind, sizeof native_kind, "native-");
        for (int i = 0; i < 8; i++) n += snprintf(native_kind + n, sizeof native_kind - (size_t)n, "%02x", t[i]);
        size_t exelen = sizeof d.exe;
        rt_compiler_config_t cc = {.exe = d.exe, .max_jobs = o->compile_jobs,
                                   .memory_limit_bytes = o->compile_memory, .nice = 19};
        if (uv_exepath(d.exe, &exelen) != 0 ||
            !(d.compiler = rt_compiler_new(&d.loop, &cc, err, sizeof err)))
            fprintf(stderr, "wasmfn serve: no native compiles: cannot find the wasmfn binary\n");
    }
    /* Guests' outbound HTTP: one client thread for every function. */
    if (!(d.outbound = ho_client_new(d.mx, err, sizeof err))) {
        fprintf(stderr, "wasmfn serve: %s\n", err);
        goto out;
    }
    d.secrets = st_secrets_open(d.st, err, sizeof err);
    if (!d.secrets) {
        fprintf(stderr, "wasmfn serve: secrets: %s\n", err);
        goto out;
    }
    kv_config_t kvc = {.data_dir = data, .redis_url = o->redis, .limits = o->kv_limits,
                       .wait = rt_link_wait_ops()};
    d.kv = kv_new(&kvc, err, sizeof err);
    if (!d.kv) {
        fprintf(stderr, "wasmfn serve: key-value stores: %s\n", err);
        goto out;
    }
    if (o->otlp_endpoint) {
        tr_config_t tc = {.endpoint = o->otlp_endpoint, .sample_ratio = o->trace_sample_ratio,
                          .queue_spans = o->trace_queue_spans, .metrics = d.mx};
        d.tracer = tr_tracer_new(&tc, err, sizeof err);
        if (!d.tracer) {
            fprintf(stderr, "wasmfn serve: %s\n", err);
            goto out;
        }
    }
    uint32_t data_conns, admin_conns;
    fd_budget(&data_conns, &admin_conns);
    srv_config_t sc = {
        .loop = &d.loop,
        .domain = o->domain ? o->domain : "localhost",
        .workers = o->workers,
        .loop_slice_ns = o->loop_slice_ns > 0 ? (uint64_t)o->loop_slice_ns : 0,
        .no_loop_runs = o->loop_slice_ns < 0,
        .limits = {.max_header_bytes = 64u << 10, .max_body_bytes = (size_t)o->max_body,
                   .max_conns = data_conns, .max_conns_per_addr = o->max_conns_per_ip},
        .queue_per_revision = 100,
        .async_max_pending = o->async_max_pending,
        .async_max_bytes = o->async_max_bytes,
        .async_max_pending_per_revision = o->async_rev_max_pending,
        .async_max_bytes_per_revision = o->async_rev_max_bytes,
        .max_instances = o->max_instances,
        .metrics = d.mx,
        .metering = d.mtr,
        .load_blob = load_blob,
        .load_blob_ud = d.st,
        .artifact_get = artifact_get,
        .artifact_put = artifact_put,
        .artifact_ud = d.st,
        .module_cache_bytes = o->module_cache_bytes,
        .native_get = key_ok ? native_get : NULL,
        .native_put = key_ok ? native_put : NULL,
        .native_key = key_ok ? d.native_key : NULL,
        .compiler = d.compiler,
        .outbound = d.outbound,
        .kv = d.kv,
        .tracer = d.tracer,
        .no_server_timing = o->no_server_timing,
    };
    d.srv = srv_new(&sc, err, sizeof err);
    if (!d.srv) {
        fprintf(stderr, "wasmfn serve: data plane: %s\n", err);
        goto out;
    }
    if (srv_listen(d.srv, o->listen, err, sizeof err) != 0) {
        fprintf(stderr, "wasmfn serve: --listen: %s\n", err);
        goto out;
    }
    data_url = url_of(o->listen, srv_port(d.srv));
    if (data_url) {
        ev_config_t ec = {
            .loop = &d.loop,
            .data_dir = data,
            .redis_url = o->redis,
            .service_call = service_call,
            .sink_max_scale = sink_max_scale,
            .sink_ud = &d,
            .metrics = d.mx,
            .max_queue_bytes_per_trigger = (size_t)o->trigger_queue_bytes,
            .max_queue_bytes = (size_t)o->broker_queue_bytes,
            .tracer = d.tracer,
        };
        d.ev = ev_new(&ec, err, sizeof err);
        if (!d.ev) {
            fprintf(stderr, "wasmfn serve: eventing: %s\n", err);
            goto out;
        }
        srv_set_events_ingress(d.srv, events_ingress, d.ev);
    }
    kd_config_t kc = {.loop = &d.loop, .metrics = d.mx, .set_replicas = kd_set_replicas,
                      .usage = kd_usage, .ud = &d};
    d.kd = kd_new(&kc, err, sizeof err);
    if (!d.kd) {
        fprintf(stderr, "wasmfn serve: scaling: %s\n", err);
        goto out;
    }
    api_config_t ac = {
        .loop = &d.loop, .store = d.st, .srv = d.srv, .metrics = d.mx, .metering = d.mtr,
        .eventing = d.ev,
        .keda = d.kd,
        .data_url = data_url,
        .keep_revisions = o->keep_revisions,
        .registry = &o->registry,
        .kv = d.kv,
        .secrets = d.secrets,
    };
    d.api = data_url ? api_new(&ac) : NULL;
    if (!d.api) {
        fprintf(stderr, "wasmfn serve: out of memory\n");
        goto out;
    }
    int failed = api_load_all(d.api, err, sizeof err);
    if (failed < 0) {
        fprintf(stderr, "wasmfn serve: %s\n", err);
        goto out;
    }

    hs_limits_t al = {.max_header_bytes = 64u << 10, .max_body_bytes = DMN_ADMIN_MAX_BODY,
                      .max_conns = admin_conns};
    d.admin = hs_server_new(&d.loop, &al, api_handle, d.api);
    if (!d.admin) {
        fprintf(stderr, "wasmfn serve: out of memory\n");
        goto out;
    }
    hs_server_on_head(d.admin, api_head_check); /* the token before the body */
    if (hs_server_listen(d.admin, o->admin, err, sizeof err) != 0) {
        fprintf(stderr, "wasmfn serve: --admin: %s\n", err);
        goto out;
    }
    admin_url = url_of(o->admin, hs_server_port(d.admin));

    uv_signal_init(&d.loop, &d.sigterm);
    uv_signal_init(&d.loop, &d.sigint);
    d.sigterm.data = d.sigint.data = &d;
    uv_signal_start(&d.sigterm, on_signal, SIGTERM);
    uv_signal_start(&d.sigint, on_signal, SIGINT);

    api_set_ready(d.api, true);
    printf("wasmfn: data plane on %s, admin API on %s\n", data_url, admin_url ? admin_url : "?");
    fflush(stdout);

    uv_run(&d.loop, UV_RUN_DEFAULT);
    rc = d.draining ? 0 : 1;

out:
    if (d.admin) {
        /* Start-up failed after the admin server was made: close it. */
        hs_server_close(d.admin, NULL, NULL);
        d.admin = NULL;
    }
    api_free(d.api);
    if (d.ev) {
        /* Start-up failed after eventing started: stop it. */
        ev_free(d.ev);
        d.ev = NULL;
    }
    kd_free(d.kd); /* its threads read the data plane: stopped first */
    d.kd = NULL;
    if (d.compiler) {
        /* Compiles in flight are killed; their modules let go of first. */
        rt_compiler_stop(d.compiler);
        for (int i = 0; i < 5000 && rt_compiler_busy(d.compiler); i++) {
            uv_run(&d.loop, UV_RUN_NOWAIT);
            usleep(1000);
        }
    }
    if (d.srv) srv_free(d.srv);
    /* After srv_free: no instance is left to use it. */
    ho_client_free(d.outbound);
    rt_compiler_free(d.compiler);
    if (loop_ok) {
        /* Let the close callbacks of whatever srv_free closed run. */
        for (int i = 0; i < 100 && uv_run(&d.loop, UV_RUN_NOWAIT) != 0; i++) continue;
        uv_loop_close(&d.loop);
    }
    /* After srv_free: no worker records any more. Flushes what is left. */
    if (d.mtr) mtr_close(d.mtr);
    /* After everything that records spans is gone: exports what is left. */
    tr_tracer_free(d.tracer);
    if (d.mx) mx_registry_free(d.mx);
    kv_free(d.kv); /* after srv_free: no guest uses it any more */
    st_secrets_close(d.secrets);
    st_close(d.st);
    free(data_url);
    free(admin_url);
    return rc;
}
