/*
 * autoscale.h — Knative's autoscaling algorithm (KPA), as pure arithmetic.
 *
 * Prefix: as_. No clocks, threads or I/O: the caller feeds samples with
 * their timestamps and asks for a decision at a time it chooses, so the
 * algorithm is unit-tested deterministically on synthetic traffic.
 *
 * The model (DESIGN.md §6, Knative's KPA):
 *   - Samples of observed concurrency (requests in flight, including queued
 *     ones) are recorded, at most one bucket per second (values recorded in
 *     the same second are averaged... the bucket keeps the average of what
 *     was recorded in it).
 *   - stable average = mean of the buckets in the last `stable_window_ns`;
 *     panic average = mean over the last panic window (panic_window_pct of
 *     the stable window, default 10%).
 *   - desired_stable = ceil(stable avg / target), desired_panic =
 *     ceil(panic avg / target).
 *   - Panic mode starts when desired_panic >= panic_threshold (default 2.0)
 *     x the current ready instance count, counted as 1 when it is 0 (as
 *     Knative does, so one request arriving at zero is not a panic), and
 *     ends once no panic condition held for a whole stable window. While
 *     panicking the scale never decreases: desired = the largest
 *     max(desired_stable, desired_panic) seen since panic began.
 *   - Otherwise desired = desired_stable.
 *   - Scale to zero: desired 0 only after a whole stable window with no
 *     traffic at all (every bucket 0) AND, when the revision has been at
 *     more than zero, at least scale_to_zero_grace_ns since the last request.
 *   - The result is clamped to [min_scale, max_scale] (max_scale 0 = no
 *     upper bound), and before the first decision after creation it is
 *     initial_scale until a stable window has passed.
 */
#ifndef WASMFN_AUTOSCALE_H
#define WASMFN_AUTOSCALE_H

#include <stdbool.h>
#include <stdint.h>

typedef struct as_config {
    double target;                 /* concurrency per instance; default 1 */
    uint64_t stable_window_ns;     /* default 60 s; Knative allows 6 s .. 1 h */
    double panic_window_pct;       /* default 10.0 */
    double panic_threshold;        /* default 2.0 (200%) */
    uint32_t min_scale, max_scale; /* max 0 = unbounded */
    uint32_t initial_scale;        /* default 1; may be 0 */
    uint64_t scale_to_zero_grace_ns; /* default 0 */
} as_config_t;

typedef struct as_scaler as_scaler_t;

/* Fills c with the defaults above. */
void as_config_default(as_config_t *c);
/* Validates a config: returns NULL or a static message naming the field. */
const char *as_config_check(const as_config_t *c);

/* Created at time now_ns. Returns NULL when out of memory. */
as_scaler_t *as_scaler_new(const as_config_t *c, uint64_t now_ns);
void as_scaler_free(as_scaler_t *s);
/* Replaces the config (new revision settings), keeping the history. */
void as_scaler_configure(as_scaler_t *s, const as_config_t *c);

/* Records the observed concurrency at now_ns (call at least once a second
 * while there is traffic; missing seconds count as zero concurrency). */
void as_scaler_record(as_scaler_t *s, uint64_t now_ns, double concurrency);

typedef struct as_decision {
    uint32_t desired;          /* instances wanted now */
    bool panic;                /* in panic mode */
    double stable_avg, panic_avg;
} as_decision_t;

/* Decides at now_ns given the instances currently ready (warm + busy). */
as_decision_t as_scaler_decide(as_scaler_t *s, uint64_t now_ns, uint32_t ready);

#endif
