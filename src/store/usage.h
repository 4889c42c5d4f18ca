/*
 * usage.h — metering's usage table (mtr_usage) in SQLite: one row per
 * function, revision, minute and memory limit, summed as records are
 * flushed. Prefix: st_usage_. Metering owns the numbers; the store owns
 * the table, its schema and its durability (db.h).
 *
 * A st_usage_t is one connection; calls on it must not overlap (metering
 * serialises them under its flush lock).
 */
#ifndef WASMFN_STORE_USAGE_H
#define WASMFN_STORE_USAGE_H

#include <stddef.h>
#include <stdint.h>

typedef struct st_usage st_usage_t;

typedef struct st_usage_row {
    const char *function, *revision;
    int64_t minute;               /* minutes since the epoch; a bucket in st_usage_query */
    uint64_t memory_limit_bytes;
    uint64_t requests, errors, timeouts, cold_starts;
    int64_t duration_ns, billed_ns, cpu_ns;
    uint64_t peak_memory_bytes;   /* a maximum, not a sum */
} st_usage_row_t;

/* Opens the database at path (creating the table). NULL with err. The
 * caller frees it with st_usage_close. */
st_usage_t *st_usage_open(const char *path, char *err, size_t errlen);
void st_usage_close(st_usage_t *u);

/* One transaction of additions: begin, any number of adds (each summed
 * into its row, peak_memory_bytes kept as the maximum), commit. A failed
 * add or commit rolls the transaction back. 0 or -1 with err. */
int st_usage_begin(st_usage_t *u, char *err, size_t errlen);
int st_usage_add(st_usage_t *u, const st_usage_row_t *r, char *err, size_t errlen);
int st_usage_commit(st_usage_t *u, char *err, size_t errlen);

/* Sums of the rows with since_min <= minute < until_min (and function, if
 * not NULL) grouped by function, revision, memory limit and bucket =
 * (minute - since_min) / step_min: row() gets each group, its bucket in
 * r->minute (the strings live until row returns). A row() returning
 * non-zero stops with that value. 0, that value, or -1 with err. */
int st_usage_query(st_usage_t *u, int64_t since_min, int64_t step_min, int64_t until_min,
                   const char *function, int (*row)(void *ud, const st_usage_row_t *r), void *ud,
                   char *err, size_t errlen);

#endif
