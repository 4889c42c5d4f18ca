/*
 * quantity.h — Kubernetes resource quantities ("500m", "0.5", "2",
 * "64Mi", "1e3") as numbers, for CPU values that are not bytes: container
 * CPU limits and requests, and the values of KEDA's cpu and memory
 * triggers. Prefix: cm_quantity_. (Byte sizes of manifests go through
 * api_quantity_parse, which parses with cm_quantity_parse and rounds up
 * to whole bytes.)
 */
#ifndef WASMFN_COMMON_QUANTITY_H
#define WASMFN_COMMON_QUANTITY_H

#include <stdint.h>

/* Parses s: a decimal number (optional fraction, optional "e" exponent)
 * with an optional suffix m, k, M, G, T, P, E, Ki, Mi, Gi, Ti, Pi, Ei.
 * Returns 0 with the value in *out, or -1 on bad syntax or a value
 * beyond 2^64. */
int cm_quantity_parse(const char *s, long double *out);

/* A CPU quantity in thousandths of a CPU, rounded up ("500m" = 500,
 * "0.25" = 250, "2" = 2000). -1 on bad syntax, 0, or more than max_millis. */
int cm_quantity_cpu_millis(const char *s, uint32_t max_millis, uint32_t *millis);

#endif
