/*
 * metrics.h — counters, gauges and histograms with labels, written out in
 * Prometheus text format 0.0.4. Prefix: mx_.
 *
 * A registry holds metric families (name, help, type); a family holds
 * series identified by their label values. Families are created at start-up;
 * series are created on first use (a family without labels has its one
 * series, at 0, from creation). All updates are thread-safe (one read-write
 * lock per registry: updates hold it shared and change values with atomics;
 * creating or removing series takes it exclusively), so worker threads and
 * the event loop may update the same series.
 *
 * Output: families in creation order, each with # HELP and # TYPE even
 * before it has series; series in creation order. Counters ignore negative
 * and NaN additions; histograms ignore NaN observations.
 */
#ifndef WASMFN_COMMON_METRICS_H
#define WASMFN_COMMON_METRICS_H

#include <stddef.h>
#include <stdint.h>

typedef struct mx_registry mx_registry_t;
typedef struct mx_family mx_family_t;
typedef struct mx_series mx_series_t;

typedef enum { MX_COUNTER, MX_GAUGE, MX_HISTOGRAM } mx_type_t;

mx_registry_t *mx_registry_new(void);
void mx_registry_free(mx_registry_t *r);

/* label_names: NULL-terminated, e.g. {"function", "revision", "code", NULL}.
 * buckets (histograms only): ascending upper bounds, count nbuckets; +Inf is
 * implicit. Returns NULL when out of memory. */
mx_family_t *mx_family_new(mx_registry_t *r, const char *name, const char *help, mx_type_t type,
                           const char *const *label_names, const double *buckets, size_t nbuckets);

/* label_values: one per label name, in order. */
void mx_counter_add(mx_family_t *f, const char *const *label_values, double v);
void mx_gauge_set(mx_family_t *f, const char *const *label_values, double v);
void mx_gauge_add(mx_family_t *f, const char *const *label_values, double v);
void mx_histogram_observe(mx_family_t *f, const char *const *label_values, double v);
/* A series kept by a caller that updates it often (a revision's, once
 * per request): found or made once, then updated by mx_series_add/set/
 * observe without the lookup (a key, a hash and the registry lock; 5% of
 * the daemon's CPU under a hello load). The caller must stop using it
 * before it is removed (mx_family_remove_first_label) or the registry
 * freed. NULL when f is NULL or out of memory; the updates ignore NULL.
 * mx_series_add is a counter's add (negative and NaN ignored) or a
 * gauge's; mx_series_observe is a histogram's. */
mx_series_t *mx_series(mx_family_t *f, const char *const *label_values);
void mx_series_add(mx_series_t *s, double v);
void mx_series_set(mx_series_t *s, double v);
void mx_series_observe(mx_series_t *s, double v);
/* Removes every series whose first label equals value (a deleted function). */
void mx_family_remove_first_label(mx_family_t *f, const char *value);

/* The whole registry as Prometheus text; malloc'd, caller frees. */
char *mx_registry_render(mx_registry_t *r, size_t *len);

#endif
