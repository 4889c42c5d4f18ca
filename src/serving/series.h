/*
 * series.h — what the dashboard plots: one function's last hour in
 * 10-second samples (requests, errors, a latency histogram, cold starts,
 * instances) and its most recent invocations. Private to src/serving/
 * (stats.c renders it for the admin API) and the unit tests
 * (tests/serving/test_series.c); prefix srv_series_.
 *
 * The data plane already counts all of this for Prometheus, but Prometheus
 * counters are totals since the start: a dashboard without a Prometheus
 * server needs the history, so the loop thread also folds every finished
 * call into a ring of SRV_SERIES_SAMPLES samples indexed by the wall-clock
 * 10-second slot. A sample whose slot is not the one asked for is stale
 * (an hour old, or never written) and reads as empty, so nothing ever has
 * to rotate the ring: a function with no traffic costs no work.
 *
 * Memory: one srv_series_t per function, allocated at its first call (or
 * its first warm instance), sizeof(srv_series_t) = 60,648 bytes on x86-64, never
 * more; freed with the function. Loop thread only: no lock.
 *
 * Latency percentiles come from power-of-two buckets from 16 µs up
 * (bucket 0 is [0, 16 µs), bucket k is [16 µs·2^(k-1), 16 µs·2^k), the last
 * is everything from about 67 s): a percentile is interpolated
 * geometrically inside its bucket and never exceeds the largest latency
 * seen, so it is exact to within its bucket (a factor of two at worst).
 */
#ifndef WASMFN_SERVING_SERIES_H
#define WASMFN_SERVING_SERIES_H

#include <stdbool.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#define SRV_SERIES_STEP_S 10
#define SRV_SERIES_SAMPLES 360 /* one hour */
#define SRV_SERIES_BUCKETS 24
#define SRV_SERIES_BUCKET0_NS 16000ull
#define SRV_SERIES_RECENT 50   /* recent invocations kept per function */
#define SRV_SERIES_REV_MAX 80  /* a revision name: NAME (63) + "-00001" and more */

typedef struct srv_series srv_series_t;

/* One finished call, as the ring records it. */
typedef struct srv_series_call {
    int64_t wall_ns;          /* when it ended, CLOCK_REALTIME */
    uint64_t latency_ns;      /* arrival to response */
    int status;               /* 499: the client went away */
    bool cold;
    uint64_t cold_ns;         /* instantiation plus module load, when cold */
    const char *revision;
    const char *trigger;      /* "http", "async" or "event" */
    const char *id;           /* its invocation id (faas.invocation_id, the logs'), or NULL */
    const char *trace_id;     /* its trace (32 hex digits), or NULL / "" when none */
} srv_series_call_t;

/* Totals over a window, for the overview. Percentiles and means are < 0
 * when there was no call to measure. */
typedef struct srv_series_summary {
    uint32_t window_s;        /* what was asked */
    double elapsed_s;         /* what the samples cover (the current one in part) */
    uint64_t requests, errors, cold_starts;
    double p50_ms, p99_ms, cold_start_mean_ms;
} srv_series_summary_t;

/* NULL when out of memory. */
srv_series_t *srv_series_new(void);
void srv_series_free(srv_series_t *s);

void srv_series_record(srv_series_t *s, const srv_series_call_t *c);
/* The function's instances now (sampled every second by the tick): each
 * sample keeps the largest counts seen in it. */
void srv_series_instances(srv_series_t *s, int64_t wall_ns, uint32_t warm, uint32_t busy);

/* Sums the samples of the last window_s seconds (rounded up to whole
 * samples, the current one included). s may be NULL (all zero). */
void srv_series_summarize(const srv_series_t *s, int64_t now_ns, uint32_t window_s,
                          srv_series_summary_t *out);
/* The samples of the last window_s seconds, oldest first, one object per
 * 10 s (the last one is the current, partial sample), as a JSON array;
 * NULL when out of memory. s may be NULL (samples all zero). */
cJSON *srv_series_samples_json(const srv_series_t *s, int64_t now_ns, uint32_t window_s);
/* The most recent calls, newest first, at most limit, as a JSON array. */
cJSON *srv_series_recent_json(const srv_series_t *s, uint32_t limit);

/* A percentile (q in 0..1) of a latency histogram of SRV_SERIES_BUCKETS
 * counts whose largest value was max_ns, in ns; -1 when it is empty.
 * Exposed for the unit tests. */
double srv_series_quantile(const uint64_t *buckets, uint64_t max_ns, double q);

#endif
