/*
 * internal.h — what metering.c (recording, flushing) and query.c (the usage
 * report) share: the aggregate row, the small hash table that holds rows in
 * memory, and the mtr_t itself. Not for use outside src/metering/.
 */
#ifndef WASMFN_METERING_INTERNAL_H
#define WASMFN_METERING_INTERNAL_H

#include <pthread.h>
#include "store/usage.h"
#include <stdatomic.h>

#include "metering/metering.h"

#define MTR_NS_PER_MINUTE 60000000000LL

/* One aggregate: the sums of every invocation with the same key. In the
 * query, `minute` holds the step bucket's number instead. */
typedef struct mtr_agg {
    uint64_t hash;          /* of the key; 0 marks an empty slot */
    char *function;         /* owned */
    char *revision;         /* owned */
    int64_t minute;         /* floor(start / 1 min) since the epoch */
    uint64_t memory_limit_bytes;
    /* sums */
    uint64_t requests, errors, timeouts, cold_starts;
    int64_t duration_ns, billed_ns, cpu_ns;
    uint64_t peak_memory_bytes; /* max, not sum */
} mtr_agg_t;

/* Open addressing with linear probing; grows at 3/4 full. */
typedef struct mtr_table {
    mtr_agg_t *slots;
    size_t cap, count;
} mtr_table_t;

uint64_t mtr_key_hash(const char *function, const char *revision, int64_t minute,
                      uint64_t memory_limit_bytes);
/* The row for the key, inserted (zeroed, with copies of the names) if
 * absent. NULL when out of memory. */
mtr_agg_t *mtr_table_get(mtr_table_t *t, uint64_t hash, const char *function,
                         const char *revision, int64_t minute, uint64_t memory_limit_bytes);
/* Adds src's sums into dst (same key). */
void mtr_agg_add(mtr_agg_t *dst, const mtr_agg_t *src);
/* Frees every row's names and the slots; leaves t empty. */
void mtr_table_clear(mtr_table_t *t);

/* A worker's share of the in-memory aggregates. Threads are spread over
 * the stripes round-robin, so with no more threads than stripes each lock
 * is taken by one worker and, once a flush interval, by the flusher. */
#define MTR_NSTRIPES 64
typedef struct mtr_stripe {
    pthread_mutex_t mu;  /* guards t and recorded */
    mtr_table_t t;
    uint64_t recorded;
} __attribute__((aligned(64))) mtr_stripe_t;

struct mtr {
    int64_t granularity_ns, flush_interval_ns;
    double price_gb_s, price_million_req;

    mtr_stripe_t stripes[MTR_NSTRIPES];

    /* Guards db, pending and the stats below. Held by a whole flush (from
     * emptying the stripes to the commit) and by a whole query, so a query
     * sees each record exactly once: in a stripe, in pending or in db. */
    pthread_mutex_t flush_mu;
    st_usage_t *usage;   /* the usage table (store/usage.h) */
    mtr_table_t pending; /* taken from the stripes, not yet committed */
    uint64_t flushes, flush_errors, rows_written;
    int64_t last_flush_ns;

    mx_family_t *billed_seconds, *billed_gb_seconds; /* NULL without metrics */

    /* The flusher thread's control. */
    pthread_mutex_t ctl_mu;
    pthread_cond_t ctl_cv;
    bool stop;           /* guarded by ctl_mu */
    bool thread_started;
    pthread_t thread;
};

/* GiB-seconds of billed_ns at memory_limit_bytes. */
static inline double mtr_gb_seconds(uint64_t memory_limit_bytes, int64_t billed_ns)
{
    return (double)memory_limit_bytes / 1073741824.0 * ((double)billed_ns / 1e9);
}

/* floor(a / b) for b > 0. */
static inline int64_t mtr_floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    if ((a % b) != 0 && a < 0) q--;
    return q;
}

/* Formats a one-line message into err (if err is given). */
void mtr_set_err(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#endif
