/*
 * daemon.h — the one composition root: builds the daemon (store, metering,
 * the data plane, eventing, the admin API, signals) from its parts, wires
 * them to each other, runs the loop until SIGTERM or SIGINT has drained
 * everything, and tears it down. Prefix: dmn_.
 *
 * `wasmfn serve` parses its command line into a dmn_options_t and calls
 * dmn_run; anything that wants the product's wiring calls the same.
 */
#ifndef WASMFN_DAEMON_DAEMON_H
#define WASMFN_DAEMON_DAEMON_H

#include <stdbool.h>
#include <stdint.h>

#include "host/kv.h"
#include "oci/oci.h"

#define DMN_ADMIN_MAX_BODY (256ull << 20) /* modules are uploaded on the admin API */

typedef struct dmn_options {
    const char *listen, *admin, *data, *domain, *redis; /* data: the data directory */
    uint32_t workers;
    uint64_t max_body;
    uint64_t module_cache_bytes;      /* 0 = the data plane's default */
    uint32_t async_max_pending, async_rev_max_pending; /* 0 = the data plane's defaults */
    uint64_t async_max_bytes, async_rev_max_bytes;
    uint64_t broker_queue_bytes, trigger_queue_bytes; /* 0 = eventing's defaults */
    int64_t billing_granularity_ns;   /* 0 = metering's default (1 ms) */
    double price_gb_second, price_million_requests; /* < 0 = default */
    bool no_metering;
    int64_t loop_slice_ns;            /* --loop-slice: 0 = the data plane's default, < 0 = off */
    bool interp_only;                 /* --tier interp */
    uint32_t compile_jobs;            /* 0 = 1 */
    uint64_t compile_memory;          /* 0 = the compiler's default */
    uint32_t max_instances;           /* 0 = from vm.max_map_count */
    uint32_t keep_revisions;          /* 0 = the API's default (10) */
    uint32_t max_conns_per_ip;        /* data plane; HS_NO_LIMIT = no cap */
    /* Observability (docs/observability.md): traces exported over
     * OTLP/HTTP JSON to otlp_endpoint (NULL: none), new traces sampled at
     * trace_sample_ratio, at most trace_queue_spans waiting (0 = 2048);
     * no_server_timing leaves the Server-Timing header out. */
    const char *otlp_endpoint;
    double trace_sample_ratio;
    uint32_t trace_queue_spans;
    bool no_server_timing;
    /* Pulling images from registries (the caller owns the strings). */
    oci_options_t registry;
    kv_limits_t kv_limits;            /* wasmfn_kv; zeros = the defaults */
} dmn_options_t;

/* Runs the daemon on o (o->data must be set). Prints "wasmfn: data plane
 * on URL, admin API on URL" once both listen. Returns the exit status: 0
 * after a drain, 1 when it could not start (the reason on stderr). */
int dmn_run(const dmn_options_t *o);

#endif
