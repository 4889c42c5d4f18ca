/*
 * serve.c — `wasmfn serve`: its command line (options, usage, the default
 * data directory). The daemon itself is built and run by src/daemon/
 * (dmn_run), the one composition root.
 *
 * What dmn_run does: opens the data directory, starts
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
#include "daemon/daemon.h"
#include "http/http.h"
#include "common/duration.h"
#include "common/metrics.h"
#include "eventing/eventing.h"
#include "runtime/runtime.h"
#include "serving/serving.h"
#include "store/store.h"

#define DEFAULT_LISTEN "127.0.0.1:8080"
#define DEFAULT_ADMIN "127.0.0.1:8081"
#define DEFAULT_MAX_BODY (16ull << 20)
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
            "  --loop-slice D      the event loop runs a guest itself, for at most D, when\n"
            "                      its imports can neither wait nor act outside it; a run\n"
            "                      not over by then goes to a worker (default 50us; 0 =\n"
            "                      every guest on a worker; at most 1ms)\n"
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
            "  --kv-max-key-bytes N     largest wasmfn_kv key, 1 to 65536 (default 1024)\n"
            "  --kv-max-value-bytes SIZE  largest wasmfn_kv value (default 1Mi, at most 64Mi)\n"
            "  --kv-max-store-bytes SIZE  keys and values of one store together (default\n"
            "                      64Mi; SQLite stores only, see docs/host-kv.md)\n"
            "  --kv-max-store-keys N    keys of one store (default 100000; SQLite only);\n"
            "                      a write beyond any of these gets error 4 (limit)\n"
            "  --otlp-endpoint URL  export traces (OpenTelemetry, OTLP/HTTP JSON) to\n"
            "                      URL/v1/traces (docs/observability.md)\n"
            "  --trace-sample-ratio F  share of new traces recorded, 0 to 1 (default 1);\n"
            "                      an incoming traceparent's sampled flag decides for its own\n"
            "  --trace-queue-spans N  spans waiting for export at most (default 2048);\n"
            "                      beyond it spans are dropped and counted\n"
            "  --no-server-timing  leave the Server-Timing header out of answers\n"
            "  -h, --help          show this help\n"
            "\n"
            "Port 0 picks a free port; the line printed at start names the real ones.\n");
}



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

static int parse_args(int argc, char **argv, dmn_options_t *o)
{
    o->listen = DEFAULT_LISTEN;
    o->admin = DEFAULT_ADMIN;
    o->max_body = DEFAULT_MAX_BODY;
    o->max_conns_per_ip = DEFAULT_MAX_CONNS_PER_IP;
    o->price_gb_second = o->price_million_requests = -1;
    o->trace_sample_ratio = 1.0;
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
        } else if ((v = opt_value(argc, argv, &i, "--loop-slice", &missing))) {
            int64_t ns;
            if (cm_duration_parse(v, 0, &ns, NULL, 0) != 0 || ns > SRV_LOOP_SLICE_MAX_NS ||
                (ns > 0 && ns < 1000)) {
                fprintf(stderr, "wasmfn serve: --loop-slice: '%s' is not 0 or a duration from "
                                "1us to 1ms\n", v);
                return -1;
            }
            o->loop_slice_ns = ns ? ns : -1;
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
        } else if ((v = opt_value(argc, argv, &i, "--kv-max-key-bytes", &missing))) {
            char *end;
            errno = 0;
            unsigned long n = strtoul(v, &end, 10);
            if (!*v || *end || errno || n < 1 || n > 65536) {
                fprintf(stderr, "wasmfn serve: --kv-max-key-bytes: '%s' is not a number from 1 "
                                "to 65536\n", v);
                return -1;
            }
            o->kv_limits.max_key_bytes = (uint32_t)n;
        } else if ((v = opt_value(argc, argv, &i, "--kv-max-value-bytes", &missing))) {
            uint64_t n;
            if (api_quantity_parse(v, &n) != 0 || n < 1 || n > (64u << 20)) {
                fprintf(stderr, "wasmfn serve: --kv-max-value-bytes: '%s' is not a size from 1 "
                                "to 64Mi\n", v);
                return -1;
            }
            o->kv_limits.max_value_bytes = (uint32_t)n;
        } else if ((v = opt_value(argc, argv, &i, "--kv-max-store-bytes", &missing))) {
            if (api_quantity_parse(v, &o->kv_limits.max_store_bytes) != 0 ||
                o->kv_limits.max_store_bytes < 1) {
                fprintf(stderr, "wasmfn serve: --kv-max-store-bytes: '%s' is not a size such as "
                                "64Mi\n", v);
                return -1;
            }
        } else if ((v = opt_value(argc, argv, &i, "--kv-max-store-keys", &missing))) {
            char *end;
            errno = 0;
            unsigned long long n = strtoull(v, &end, 10);
            if (!*v || *end || errno || n < 1) {
                fprintf(stderr, "wasmfn serve: --kv-max-store-keys: '%s' is not a positive "
                                "number\n", v);
                return -1;
            }
            o->kv_limits.max_store_keys = n;
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
        } else if ((v = opt_value(argc, argv, &i, "--otlp-endpoint", &missing))) {
            o->otlp_endpoint = v; /* checked by the tracer, with the rest */
        } else if ((v = opt_value(argc, argv, &i, "--trace-sample-ratio", &missing))) {
            char *end;
            errno = 0;
            double f = strtod(v, &end);
            if (!*v || *end || errno || !(f >= 0.0 && f <= 1.0)) {
                fprintf(stderr, "wasmfn serve: --trace-sample-ratio: '%s' is not a number from 0 "
                                "to 1\n", v);
                return -1;
            }
            o->trace_sample_ratio = f;
        } else if ((v = opt_value(argc, argv, &i, "--trace-queue-spans", &missing))) {
            char *end;
            errno = 0;
            unsigned long n = strtoul(v, &end, 10);
            if (!*v || *end || errno || n < 1 || n > 1000000) {
                fprintf(stderr, "wasmfn serve: --trace-queue-spans: '%s' is not a number from 1 "
                                "to 1000000\n", v);
                return -1;
            }
            o->trace_queue_spans = (uint32_t)n;
        } else if (strcmp(a, "--no-server-timing") == 0) {
            o->no_server_timing = true;
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


int cli_serve_main(int argc, char **argv)
{
    dmn_options_t o = {0};
    int pa = parse_args(argc, argv, &o);
    if (pa != 0) {
        free((void *)o.registry.insecure);
        return pa > 0 ? 0 : 2;
    }
    /* A pulled module is held to the same bound as an uploaded one. */
    o.registry.max_module_bytes = DMN_ADMIN_MAX_BODY;

    char *data = o.data ? strdup(o.data) : default_data_dir();
    if (!data) {
        fprintf(stderr, "wasmfn serve: no data directory: set --data, $XDG_STATE_HOME or $HOME\n");
        return 2;
    }
    o.data = data;
    int rc = dmn_run(&o);
    free(data);
    free((void *)o.registry.insecure);
    return rc;
}
