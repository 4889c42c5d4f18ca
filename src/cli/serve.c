/*
 * serve.c — `wasmfn serve`: the daemon. Opens the data directory, starts
 * the data plane (src/serving) and the admin API (src/api) on one libuv
 * loop, loads every stored function before /readyz says ready, and on
 * SIGTERM or SIGINT drains both servers and exits 0.
 *
 * Start-up order matters: the store is opened first (it holds the lock
 * that keeps a second daemon off the directory), the data plane listens
 * next, then every stored function is loaded — all before the loop runs,
 * so no request is ever answered with a half-loaded registry — and the
 * admin API listens last.
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
#include "metering/metering.h"
#include "api/manifest.h"
#include "cli/cli.h"
#include "http/http.h"
#include "common/metrics.h"
#include "eventing/eventing.h"
#include "runtime/runtime.h"
#include "serving/serving.h"
#include "store/store.h"

#define DEFAULT_LISTEN "127.0.0.1:8080"
#define DEFAULT_ADMIN "127.0.0.1:8081"
#define DEFAULT_MAX_BODY (16ull << 20)
#define ADMIN_MAX_BODY (256ull << 20) /* modules are uploaded here */
#define DEFAULT_MAX_CONNS_PER_IP 256

void cli_serve_usage(FILE *out)
{
    fprintf(out,
            "usage: wasmfn serve [OPTIONS]\n"
            "\n"
            "Runs the daemon: the data plane serving functions over HTTP, and the admin\n"
            "API (docs/api.md) the other commands talk to. Every deployed function is\n"
            "loaded from the data directory at start. SIGTERM or SIGINT drains in-flight\n"
            "requests and exits 0.\n"
            "\n"
            "options:\n"
            "  --listen HOST:PORT  data plane address (default " DEFAULT_LISTEN ");\n"
            "                      functions answer at /fn/NAME/... and Host: NAME.default.DOMAIN\n"
            "  --admin HOST:PORT   admin API address (default " DEFAULT_ADMIN ")\n"
            "  --data DIR          data directory (default $XDG_STATE_HOME/wasmfn, else\n"
            "                      ~/.local/state/wasmfn); holds wasmfn.db, blobs/ and\n"
            "                      admin.token, the admin API's bearer token\n"
            "  --workers N         threads running guests (default: CPUs - 1, at least 1)\n"
            "  --domain D          domain for Host routing (default localhost)\n"
            "  --redis URL         redis://HOST:PORT backing brokers, so accepted events\n"
            "                      survive a restart (default: brokers in memory)\n"
            "  --broker-queue-bytes SIZE  events held in memory by brokers without --redis\n"
            "                      (and PingSources), all together (default 256Mi);\n"
            "                      beyond it ingress answers 503 with Retry-After\n"
            "  --broker-queue-bytes-per-trigger SIZE  the same per trigger (default 64Mi)\n"
            "  --max-body SIZE     largest request body the data plane takes, e.g. 16Mi\n"
            "                      (default 16Mi; larger gets 413)\n"
            "  --async-max-pending N    asynchronous invocations (Prefer: respond-async)\n"
            "                      pending at once in the daemon (default 10000);\n"
            "                      beyond it a new one gets 503 with Retry-After\n"
            "  --async-max-bytes SIZE   their request bodies together (default 512Mi)\n"
            "  --async-max-pending-per-revision N  the same per revision (default 1000)\n"
            "  --async-max-bytes-per-revision SIZE the same per revision (default 128Mi)\n"
            "  --max-connections-per-ip N  data plane connections one client address (an\n"
            "                      IPv6 /64) may hold open (default 256, 0 = no cap; raise\n"
            "                      it behind a proxy); beyond it a connection is closed\n"
            "  --module-cache-bytes SIZE  bound on compiled modules kept in memory for\n"
            "                      functions scaled to zero, e.g. 64Mi (default 256Mi);\n"
            "                      evicted ones reload from their serialised form\n"
            "  --max-instances N   the node's budget of live instances (warm and busy, all\n"
            "                      functions together; default: what vm.max_map_count\n"
            "                      allows, logged at start); warm ones take at most 3/4,\n"
            "                      shared fairly; a request beyond it gets 503\n"
            "  --keep-revisions N  revisions without traffic kept per function, newest\n"
            "                      first (default 10, 1 to 10000); older ones are deleted\n"
            "  --billing-granularity D  billed duration is rounded up to this, 1us .. 1m\n"
            "                      (default 1ms; see docs/metering.md)\n"
            "  --price-gb-second X       price of one GB-second (default 0.0000166667)\n"
            "  --price-million-requests X  price of a million requests (default 0.20)\n"
            "  --no-metering       record no usage (for measuring metering's own cost)\n"
            "  --tier T            auto (default): modules serve from the interpreter at\n"
            "                      once and switch to native code when it is compiled in\n"
            "                      the background (kept in DIR/artifacts, sealed with\n"
            "                      DIR/native.key); interp: never compile native code\n"
            "  --compile-jobs N    native compiles at once (default 1); each runs as a\n"
            "                      child process at the lowest priority\n"
            "  --compile-memory SIZE  address space a native compile may use, e.g. 2Gi\n"
            "                      (default 4Gi; a module needing more stays interpreted)\n"
            "  --registry-config FILE  Docker config.json with the credentials used to pull\n"
            "                      images from registries (default $DOCKER_CONFIG/config.json,\n"
            "                      else ~/.docker/config.json; see docs/oci.md)\n"
            "  --registry-ca FILE  PEM CA certificates trusted for registries, on top of\n"
            "                      the system's\n"
            "  --insecure-registry HOST[:PORT]  a registry that may be reached over plain\n"
            "                      HTTP (repeatable; loopback registries always may)\n"
            "  -h, --help          show this help\n"
            "\n"
            "Port 0 picks a free port; the line printed at start names the real ones.\n");
}

typedef struct serve_opts {
    const char *listen, *admin, *data, *domain, *redis;
    uint32_t workers;
    uint64_t max_body;
    uint64_t module_cache_bytes;      /* 0 = the data plane's default */
    uint32_t async_max_pending, async_rev_max_pending; /* 0 = the data plane's defaults */
    uint64_t async_max_bytes, async_rev_max_bytes;
    uint64_t broker_queue_bytes, trigger_queue_bytes; /* 0 = eventing's defaults */
    int64_t billing_granularity_ns;   /* 0 = metering's default (1 ms) */
    double price_gb_second, price_million_requests; /* < 0 = default */
    bool no_metering;
    bool interp_only;                 /* --tier interp */
    uint32_t compile_jobs;            /* 0 = 1 */
    uint64_t compile_memory;          /* 0 = the compiler's default */
    uint32_t max_instances;           /* 0 = from vm.max_map_count */
    uint32_t keep_revisions;          /* 0 = the API's default (10) */
    uint32_t max_conns_per_ip;        /* data plane; HS_NO_LIMIT = no cap */
    /* Pulling images from registries: config_path, ca_file and insecure
     * point into argv; insecure is malloc'd (free_opts). */
    oci_options_t registry;
} serve_opts_t;

typedef struct daemon_state {
    uv_loop_t loop;
    uv_signal_t sigterm, sigint;
    st_store_t *st;
    mx_registry_t *mx;
    mtr_t *mtr;
    ev_t *ev;
    char *data_url;     /* the data plane's base URL, for eventing's sinks */
    srv_t *srv;
    rt_compiler_t *compiler;  /* background native compiles, or NULL */
    uint8_t native_key[ENG_NATIVE_KEY_BYTES];
    char exe[4096];
    api_t *api;
    hs_server_t *admin;
    int pending;        /* servers still draining */
    bool draining;
} daemon_state_t;

/* The value of option `name` at argv[*i], either "--name=V" or "--name V".
 * NULL if argv[*i] is not that option. */
static const char *opt_value(int argc, char **argv, int *i, const char *name, bool *missing)
{
    size_t n = strlen(name);
    const char *a = argv[*i];
    if (strncmp(a, name, n) != 0) return NULL;
    if (a[n] == '=') return a + n + 1;
    if (a[n] != '\0') return NULL;
    if (*i + 1 >= argc) {
        *missing = true;
        return NULL;
    }
    return argv[++*i];
}

static int parse_args(int argc, char **argv, serve_opts_t *o)
{
    o->listen = DEFAULT_LISTEN;
    o->admin = DEFAULT_ADMIN;
    o->max_body = DEFAULT_MAX_BODY;
    o->max_conns_per_ip = DEFAULT_MAX_CONNS_PER_IP;
    o->price_gb_second = o->price_million_requests = -1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v;
        bool missing = false;
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            cli_serve_usage(stdout);
            return 1;
        }
        if ((v = opt_value(argc, argv, &i, "--listen", &missing))) {
            o->listen = v;
        } else if ((v = opt_value(argc, argv, &i, "--admin", &missing))) {
            o->admin = v;
        } else if ((v = opt_value(argc, argv, &i, "--data", &missing))) {
            if (!*v) {
                fprintf(stderr, "wasmfn serve: --data: empty directory name\n");
                return -1;
            }
            o->data = v;
        } else if ((v = opt_value(argc, argv, &i, "--redis", &missing))) {
            if (strncmp(v, "redis://", 8) != 0 || !v[8]) {
                fprintf(stderr, "wasmfn serve: --redis: '%s' is not redis://HOST:PORT\n", v);
                return -1;
            }
            o->redis = v;
        } else if ((v = opt_value(argc, argv, &i, "--domain", &missing))) {
            o->domain = v;
        } else if ((v = opt_value(argc, argv, &i, "--workers", &missing))) {
            char *end;
            errno = 0;
            unsigned long n = strtoul(v, &end, 10);
            if (!*v || *end || errno || n < 1 || n > 1024) {
                fprintf(stderr, "wasmfn serve: --workers: '%s' is not a number from 1 to 1024\n", v);
                return -1;
            }
            o->workers = (uint32_t)n;
        } else if (strcmp(a, "--no-metering") == 0) {
            o->no_metering = true;
        } else if ((v = opt_value(argc, argv, &i, "--billing-granularity", &missing))) {
            char e[128];
            if (mtr_parse_duration(v, &o->billing_granularity_ns, e, sizeof e) != 0 ||
                o->billing_granularity_ns < MTR_MIN_GRANULARITY_NS ||
                o->billing_granularity_ns > MTR_MAX_GRANULARITY_NS) {
                fprintf(stderr, "wasmfn serve: --billing-granularity: '%s' is not a duration "
                                "from 1us to 1m\n", v);
                return -1;
            }
        } else if ((v = opt_value(argc, argv, &i, "--price-gb-second", &missing)) ||
                   (v = opt_value(argc, argv, &i, "--price-million-requests", &missing))) {
            char *end;
            double x = strtod(v, &end);
            if (!*v || *end || !(x >= 0)) {
                fprintf(stderr, "wasmfn serve: %s: '%s' is not a price >= 0\n", a, v);
                return -1;
            }
            if (strncmp(a, "--price-gb-second", 17) == 0)
                o->price_gb_second = x;
            else
                o->price_million_requests = x;
        } else if ((v = opt_value(argc, argv, &i, "--max-body", &missing))) {
            if (api_quantity_parse(v, &o->max_body) != 0 || o->max_body == 0) {
                fprintf(stderr, "wasmfn serve: --max-body: '%s' is not a size such as 16Mi\n", v);
                return -1;
            }
        } else if ((v = opt_value(argc, argv, &i, "--async-max-pending", &missing)) ||
                   (v = opt_value(argc, argv, &i, "--async-max-pending-per-revision", &missing))) {
            char *end;
            errno = 0;
            unsigned long n = strtoul(v, &end, 10);
            if (!*v || *end || errno || n < 1 || n > 1000000) {
                fprintf(stderr, "wasmfn serve: %.*s: '%s' is not a number from 1 to 1000000\n",
                        (int)strcspn(a, "="), a, v);
                return -1;
            }
            if (strncmp(a, "--async-max-pending-per-revision", 32) == 0)
                o->async_rev_max_pending = (uint32_t)n;
            else
                o->async_max_pending = (uint32_t)n;
        } else if ((v = opt_value(argc, argv, &i, "--async-max-bytes", &missing)) ||
                   (v = opt_value(argc, argv, &i, "--async-max-bytes-per-revision", &missing))) {
            uint64_t n;
            if (api_quantity_parse(v, &n) != 0 || n == 0) {
                fprintf(stderr, "wasmfn serve: %.*s: '%s' is not a size such as 64Mi\n",
                        (int)strcspn(a, "="), a, v);
                return -1;
            }
            if (strncmp(a, "--async-max-bytes-per-revision", 30) == 0)
                o->async_rev_max_bytes = n;
            else
                o->async_max_bytes = n;
        } else if ((v = opt_value(argc, argv, &i, "--broker-queue-bytes", &missing)) ||
                   (v = opt_value(argc, argv, &i, "--broker-queue-bytes-per-trigger", &missing))) {
            uint64_t n;
            if (api_quantity_parse(v, &n) != 0 || n == 0 || n > SIZE_MAX / 2) {
                fprintf(stderr, "wasmfn serve: %.*s: '%s' is not a size such as 64Mi\n",
                        (int)strcspn(a, "="), a, v);
                return -1;
            }
            if (strncmp(a, "--broker-queue-bytes-per-trigger", 32) == 0)
                o->trigger_queue_bytes = n;
            else
                o->broker_queue_bytes = n;
        } else if ((v = opt_value(argc, argv, &i, "--module-cache-bytes", &missing))) {
            if (api_quantity_parse(v, &o->module_cache_bytes) != 0 || o->module_cache_bytes == 0) {
                fprintf(stderr, "wasmfn serve: --module-cache-bytes: '%s' is not a size such as "
                                "64Mi\n", v);
                return -1;
            }
        } else if ((v = opt_value(argc, argv, &i, "--tier", &missing))) {
            if (strcmp(v, "auto") != 0 && strcmp(v, "interp") != 0) {
                fprintf(stderr, "wasmfn serve: --tier: '%s' is not auto or interp\n", v);
                return -1;
            }
            o->interp_only = strcmp(v, "interp") == 0;
        } else if ((v = opt_value(argc, argv, &i, "--compile-jobs", &missing))) {
            char *end;
            errno = 0;
            unsigned long n = strtoul(v, &end, 10);
            if (!*v || *end || errno || n < 1 || n > 64) {
                fprintf(stderr, "wasmfn serve: --compile-jobs: '%s' is not a number from 1 to 64\n", v);
                return -1;
            }
            o->compile_jobs = (uint32_t)n;
        } else if ((v = opt_value(argc, argv, &i, "--max-instances", &missing))) {
            char *end;
            errno = 0;
            unsigned long n = strtoul(v, &end, 10);
            if (!*v || *end || errno || n < 1 || n > 10000000) {
                fprintf(stderr, "wasmfn serve: --max-instances: '%s' is not a number from 1 to "
                                "10000000\n", v);
                return -1;
            }
            o->max_instances = (uint32_t)n;
        } else if ((v = opt_value(argc, argv, &i, "--keep-revisions", &missing))) {
            char *end;
            errno = 0;
            unsigned long n = strtoul(v, &end, 10);
            if (!*v || *end || errno || n < 1 || n > 10000) {
                fprintf(stderr, "wasmfn serve: --keep-revisions: '%s' is not a number from 1 to "
                                "10000\n", v);
                return -1;
            }
            o->keep_revisions = (uint32_t)n;
        } else if ((v = opt_value(argc, argv, &i, "--compile-memory", &missing))) {
            if (api_quantity_parse(v, &o->compile_memory) != 0 || o->compile_memory < (256u << 20)) {
                fprintf(stderr, "wasmfn serve: --compile-memory: '%s' is not a size of at least "
                                "256Mi\n", v);
                return -1;
            }
        } else if ((v = opt_value(argc, argv, &i, "--max-connections-per-ip", &missing))) {
            char *end;
            errno = 0;
            unsigned long n = strtoul(v, &end, 10);
            if (!*v || *end || errno || n > 1000000) {
                fprintf(stderr, "wasmfn serve: --max-connections-per-ip: '%s' is not a number "
                                "from 0 (no cap) to 1000000\n", v);
                return -1;
            }
            o->max_conns_per_ip = n ? (uint32_t)n : HS_NO_LIMIT;
        } else if ((v = opt_value(argc, argv, &i, "--registry-config", &missing))) {
            if (!*v || access(v, R_OK) != 0) {
                fprintf(stderr, "wasmfn serve: --registry-config: %s: %s\n", v,
                        *v ? strerror(errno) : "empty file name");
                return -1;
            }
            o->registry.config_path = v;
        } else if ((v = opt_value(argc, argv, &i, "--registry-ca", &missing))) {
            if (!*v || access(v, R_OK) != 0) {
                fprintf(stderr, "wasmfn serve: --registry-ca: %s: %s\n", v,
                        *v ? strerror(errno) : "empty file name");
                return -1;
            }
            o->registry.ca_file = v;
        } else if ((v = opt_value(argc, argv, &i, "--insecure-registry", &missing))) {
            if (!*v || strchr(v, '/') || strchr(v, ' ')) {
                fprintf(stderr, "wasmfn serve: --insecure-registry: '%s' is not HOST[:PORT]\n", v);
                return -1;
            }
            const char **ins = realloc((void *)o->registry.insecure,
                                       (o->registry.ninsecure + 1) * sizeof *ins);
            if (!ins) {
                fprintf(stderr, "wasmfn serve: out of memory\n");
                return -1;
            }
            ins[o->registry.ninsecure++] = v;
            o->registry.insecure = ins;
        } else if (missing) {
            fprintf(stderr, "wasmfn serve: %s needs a value\n", a);
            return -1;
        } else {
            fprintf(stderr, "wasmfn serve: unknown option '%s' (see wasmfn serve --help)\n", a);
            return -1;
        }
        if (missing) {
            fprintf(stderr, "wasmfn serve: %s needs a value\n", a);
            return -1;
        }
    }
    return 0;
}

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

/* $XDG_STATE_HOME/wasmfn, else ~/.local/state/wasmfn (malloc'd). */
static char *default_data_dir(void)
{
    const char *xdg = getenv("XDG_STATE_HOME");
    char *d = NULL;
    if (xdg && xdg[0] == '/') {
        if (asprintf(&d, "%s/wasmfn", xdg) < 0) return NULL;
        return d;
    }
    const char *home = getenv("HOME");
    if (!home || !*home) return NULL;
    if (asprintf(&d, "%s/.local/state/wasmfn", home) < 0) return NULL;
    return d;
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

/* Eventing's sinks: a Service ref is its data-plane URL. Called from
 * eventing's threads; data_url is set before eventing starts and never
 * changes, so no lock is needed. */
static int sink_url(void *ud, const char *service, char *url, size_t len)
{
    daemon_state_t *d = ud;
    int n = snprintf(url, len, "%s/fn/%s/", d->data_url, service);
    return n > 0 && (size_t)n < len ? 0 : -1;
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

int cli_serve_main(int argc, char **argv)
{
    serve_opts_t o = {0};
    int pa = parse_args(argc, argv, &o);
    if (pa != 0) {
        free((void *)o.registry.insecure);
        return pa > 0 ? 0 : 2;
    }
    /* A pulled module is held to the same bound as an uploaded one. */
    o.registry.max_module_bytes = ADMIN_MAX_BODY;

    char *data = o.data ? strdup(o.data) : default_data_dir();
    if (!data) {
        fprintf(stderr, "wasmfn serve: no data directory: set --data, $XDG_STATE_HOME or $HOME\n");
        return 2;
    }
    signal(SIGPIPE, SIG_IGN); /* a client gone mid-write is an EPIPE, not a death */

    daemon_state_t d;
    memset(&d, 0, sizeof d);
    char err[512];
    int rc = 1;
    char *data_url = NULL, *admin_url = NULL;
    bool loop_ok = false;

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
    if (!o.no_metering) {
        mtr_config_t mc;
        mtr_config_init(&mc);
        char db[4096];
        snprintf(db, sizeof db, "%s/wasmfn.db", data);
        mc.db_path = db;
        mc.metrics = d.mx;
        if (o.billing_granularity_ns)
            mc.granularity_ns = o.billing_granularity_ns;
        if (o.price_gb_second >= 0)
            mc.price_per_gb_second = o.price_gb_second;
        if (o.price_million_requests >= 0)
            mc.price_per_million_requests = o.price_million_requests;
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
    if (!o.interp_only && eng_native_can_compile()) {
        char kerr[512];
        key_ok = rt_native_key_load(data, d.native_key, kerr, sizeof kerr) == 0;
        if (!key_ok)
            fprintf(stderr, "wasmfn serve: %s; native code will not be kept on disk\n", kerr);
        uint8_t t[32];
        eng_native_target_digest(t);
        int n = snprintf(native_kind, sizeof native_kind, "native-");
        for (int i = 0; i < 8; i++) n += snprintf(native_kind + n, sizeof native_kind - (size_t)n, "%02x", t[i]);
        size_t exelen = sizeof d.exe;
        rt_compiler_config_t cc = {.exe = d.exe, .max_jobs = o.compile_jobs,
                                   .memory_limit_bytes = o.compile_memory, .nice = 19};
        if (uv_exepath(d.exe, &exelen) != 0 ||
            !(d.compiler = rt_compiler_new(&d.loop, &cc, err, sizeof err)))
            fprintf(stderr, "wasmfn serve: no native compiles: cannot find the wasmfn binary\n");
    }
    uint32_t data_conns, admin_conns;
    fd_budget(&data_conns, &admin_conns);
    srv_config_t sc = {
        .loop = &d.loop,
        .domain = o.domain ? o.domain : "localhost",
        .workers = o.workers,
        .limits = {.max_header_bytes = 64u << 10, .max_body_bytes = (size_t)o.max_body,
                   .max_conns = data_conns, .max_conns_per_addr = o.max_conns_per_ip},
        .queue_per_revision = 100,
        .async_max_pending = o.async_max_pending,
        .async_max_bytes = o.async_max_bytes,
        .async_max_pending_per_revision = o.async_rev_max_pending,
        .async_max_bytes_per_revision = o.async_rev_max_bytes,
        .max_instances = o.max_instances,
        .metrics = d.mx,
        .metering = d.mtr,
        .load_blob = load_blob,
        .load_blob_ud = d.st,
        .artifact_get = artifact_get,
        .artifact_put = artifact_put,
        .artifact_ud = d.st,
        .module_cache_bytes = o.module_cache_bytes,
        .native_get = key_ok ? native_get : NULL,
        .native_put = key_ok ? native_put : NULL,
        .native_key = key_ok ? d.native_key : NULL,
        .compiler = d.compiler,
    };
    d.srv = srv_new(&sc, err, sizeof err);
    if (!d.srv) {
        fprintf(stderr, "wasmfn serve: data plane: %s\n", err);
        goto out;
    }
    if (srv_listen(d.srv, o.listen, err, sizeof err) != 0) {
        fprintf(stderr, "wasmfn serve: --listen: %s\n", err);
        goto out;
    }
    data_url = url_of(o.listen, srv_port(d.srv));
    d.data_url = data_url;
    if (data_url) {
        ev_config_t ec = {
            .loop = &d.loop,
            .data_dir = data,
            .redis_url = o.redis,
            .sink_url = sink_url,
            .sink_ud = &d,
            .metrics = d.mx,
            .max_queue_bytes_per_trigger = (size_t)o.trigger_queue_bytes,
            .max_queue_bytes = (size_t)o.broker_queue_bytes,
        };
        d.ev = ev_new(&ec, err, sizeof err);
        if (!d.ev) {
            fprintf(stderr, "wasmfn serve: eventing: %s\n", err);
            goto out;
        }
        srv_set_events_ingress(d.srv, events_ingress, d.ev);
    }
    api_config_t ac = {
        .loop = &d.loop, .store = d.st, .srv = d.srv, .metrics = d.mx, .metering = d.mtr,
        .eventing = d.ev,
        .data_url = data_url,
        .keep_revisions = o.keep_revisions,
        .registry = &o.registry,
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

    hs_limits_t al = {.max_header_bytes = 64u << 10, .max_body_bytes = ADMIN_MAX_BODY,
                      .max_conns = admin_conns};
    d.admin = hs_server_new(&d.loop, &al, api_handle, d.api);
    if (!d.admin) {
        fprintf(stderr, "wasmfn serve: out of memory\n");
        goto out;
    }
    hs_server_on_head(d.admin, api_head_check); /* the token before the body */
    if (hs_server_listen(d.admin, o.admin, err, sizeof err) != 0) {
        fprintf(stderr, "wasmfn serve: --admin: %s\n", err);
        goto out;
    }
    admin_url = url_of(o.admin, hs_server_port(d.admin));

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
    if (d.compiler) {
        /* Compiles in flight are killed; their modules let go of first. */
        rt_compiler_stop(d.compiler);
        for (int i = 0; i < 5000 && rt_compiler_busy(d.compiler); i++) {
            uv_run(&d.loop, UV_RUN_NOWAIT);
            usleep(1000);
        }
    }
    if (d.srv) srv_free(d.srv);
    rt_compiler_free(d.compiler);
    if (loop_ok) {
        /* Let the close callbacks of whatever srv_free closed run. */
        for (int i = 0; i < 100 && uv_run(&d.loop, UV_RUN_NOWAIT) != 0; i++) continue;
        uv_loop_close(&d.loop);
    }
    /* After srv_free: no worker records any more. Flushes what is left. */
    if (d.mtr) mtr_close(d.mtr);
    if (d.mx) mx_registry_free(d.mx);
    st_close(d.st);
    free(data_url);
    free(admin_url);
    free(data);
    free((void *)o.registry.insecure);
    return rc;
}
