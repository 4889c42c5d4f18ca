/*
 * metering.h — per-invocation usage metering and billing (DESIGN.md §7,
 * docs/metering.md). Prefix: mtr_.
 *
 * Every invocation (HTTP, async, event) ends with one mtr_record call on the
 * worker thread that ran it. The record is folded into an in-memory
 * aggregate keyed by (function, revision, minute of the start time, memory
 * limit): a few additions under a lock that only this thread's stripe uses,
 * no allocation but for the first record of a key per flush interval, no I/O. A
 * background thread moves the aggregates to SQLite (own connection, own
 * table `mtr_usage` in DATA/wasmfn.db, WAL) every flush interval, in one
 * transaction, and adds them to the Prometheus counters
 * wasmfn_billed_seconds_total and wasmfn_billed_gb_seconds_total {function,
 * revision}.
 *
 * Billing follows AWS Lambda's model: billed duration = wall duration
 * rounded UP to the granularity (1 ms default, down to 1 µs); GB-seconds =
 * memory limit in GiB × billed seconds; requests are counted and priced
 * separately; cost = gb_seconds × price_per_gb_second + requests / 10^6 ×
 * price_per_million_requests.
 *
 * Durability: a SIGKILL loses at most what was recorded during the last
 * flush interval (≤ 1 s): everything recorded before the start of the last
 * completed flush is committed. Queries (mtr_usage_json) see flushed and
 * not yet flushed usage alike, so they are exact.
 *
 * Threads: mtr_record may be called from any number of threads at once.
 * mtr_usage_json, mtr_flush and mtr_stats may be called from any thread
 * (they serialise with the flusher on one mutex and may wait for one flush
 * to finish). mtr_close must be called once, after every mtr_record call
 * has returned and no other call is in progress.
 */
#ifndef WASMFN_METERING_H
#define WASMFN_METERING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/metrics.h"

typedef struct mtr mtr_t;

/* The defaults mtr_config_init sets (and mtr_open uses for zero fields). */
#define MTR_DEFAULT_GRANULARITY_NS 1000000LL    /* 1 ms */
#define MTR_MIN_GRANULARITY_NS 1000LL           /* 1 µs */
#define MTR_MAX_GRANULARITY_NS 60000000000LL    /* 1 min */
#define MTR_DEFAULT_FLUSH_INTERVAL_NS 1000000000LL /* 1 s, also the maximum */
#define MTR_MIN_FLUSH_INTERVAL_NS 1000000LL     /* 1 ms */
/* AWS Lambda's published x86 prices (us-east-1, first pricing tier), in
 * USD. They are defaults only: a daemon that bills real money sets its own. */
#define MTR_DEFAULT_PRICE_PER_GB_SECOND 0.0000166667
#define MTR_DEFAULT_PRICE_PER_MILLION_REQUESTS 0.20

typedef struct mtr_config {
    const char *db_path;        /* SQLite file, e.g. DATA/wasmfn.db; created if missing */
    int64_t granularity_ns;     /* billing granularity, 1 µs .. 1 min; 0 = 1 ms */
    int64_t flush_interval_ns;  /* 1 ms .. 1 s; 0 = 1 s */
    double price_per_gb_second; /* >= 0, in the currency of your choice */
    double price_per_million_requests; /* >= 0 */
    mx_registry_t *metrics;     /* NULL = no Prometheus counters; borrowed, outlives mtr */
} mtr_config_t;

/* Fills c with the defaults above (db_path and metrics NULL). Start from
 * this: a config that is merely zeroed bills at a price of 0. */
void mtr_config_init(mtr_config_t *c);

typedef enum mtr_outcome {
    MTR_OK = 0,      /* the function answered (any status below 500) */
    MTR_ERROR = 1,   /* 5xx answer, trap, or the function could not run */
    MTR_TIMEOUT = 2, /* stopped at its deadline */
} mtr_outcome_t;

typedef struct mtr_invocation {
    const char *function;       /* copied when needed; may be freed after the call */
    const char *revision;       /* "hello-00001" */
    int64_t start_ns;           /* wall clock (CLOCK_REALTIME), ns since the Unix epoch */
    int64_t duration_ns;        /* first guest instruction to last response byte */
    int64_t cpu_ns;             /* CPU time the guest's thread used */
    uint64_t peak_memory_bytes; /* largest linear memory size reached */
    uint64_t memory_limit_bytes; /* the revision's memory limit (what is billed) */
    bool cold_start;            /* this invocation had to create its instance */
    mtr_outcome_t outcome;
} mtr_invocation_t;

/* Opens (creating if needed) the usage table in c->db_path and starts the
 * flusher thread. Returns NULL with a one-line message in err on a bad
 * config field (named) or a database that cannot be opened. */
mtr_t *mtr_open(const mtr_config_t *c, char *err, size_t errlen);

/* Records one finished invocation. Cheap (tens of ns) and never blocks on
 * I/O; safe from any thread. Records with a NULL function are ignored;
 * a NULL revision is recorded as "". Negative durations count as 0. */
void mtr_record(mtr_t *m, const mtr_invocation_t *inv);

/* Usage in [since_ns, until_ns) as a JSON array (malloc'd; caller frees):
 * one object per function — per function and step bucket when step_ns > 0
 * — sorted by function then start, each with function, requests, errors
 * (errors + timeouts), timeouts, cold_starts, duration_ms, billed_ms,
 * cpu_ms, gb_seconds, peak_memory_bytes, cost and a per-revision breakdown
 * `revisions`; with a step also start and end (RFC 3339). Usage is kept per
 * minute, so since is rounded down and until up to whole minutes, and
 * step_ns must be a whole number of minutes. function may be NULL (all).
 * Includes what has not been flushed yet. Returns NULL with a one-line
 * message in err on bad arguments or a database error. */
char *mtr_usage_json(mtr_t *m, const char *function, int64_t since_ns, int64_t until_ns,
                     int64_t step_ns, char *err, size_t errlen);

/* Writes everything recorded so far to the database now (waits for it).
 * Returns 0, or -1 with a message in err (the data stays in memory and
 * the next flush retries it). err may be NULL. */
int mtr_flush(mtr_t *m, char *err, size_t errlen);

/* Stops the flusher, flushes a last time (a failure is reported on
 * stderr), closes the database and frees m. NULL is fine. */
void mtr_close(mtr_t *m);

typedef struct mtr_stats {
    uint64_t recorded;       /* mtr_record calls counted */
    uint64_t flushes;        /* flushes completed (successful or not) */
    uint64_t flush_errors;   /* flushes whose transaction failed */
    uint64_t rows_written;   /* aggregate rows upserted */
    int64_t last_flush_ns;   /* CLOCK_MONOTONIC when the last successful flush began */
} mtr_stats_t;

void mtr_stats(mtr_t *m, mtr_stats_t *out);

/* ---- helpers shared with the API, the CLI and serve's options ---- */

/* duration rounded up to a multiple of granularity_ns (> 0); negative -> 0;
 * saturates instead of overflowing. */
int64_t mtr_billed_ns(int64_t duration_ns, int64_t granularity_ns);

/* Parses a duration: an integer or decimal with a unit, several of them
 * concatenated ("1h30m", "1.5s", "250ms", "100us", "100µs", "10ns", "2d",
 * "1w"). A bare "0" is accepted. Returns 0, or -1 with a message in err. */
int mtr_parse_duration(const char *s, int64_t *out_ns, char *err, size_t errlen);

/* Parses a point in time: "now", an RFC 3339 timestamp
 * ("2024-05-01T12:00:00Z", "...T12:00:00.5+02:00", or a bare date
 * "2024-05-01" meaning its UTC midnight), or a duration meaning that long
 * before now_ns ("1h" = an hour ago). Returns 0, or -1 with a message. */
int mtr_parse_time(const char *s, int64_t now_ns, int64_t *out_ns, char *err, size_t errlen);


/* CLOCK_REALTIME in ns. */
int64_t mtr_now_ns(void);

#endif
