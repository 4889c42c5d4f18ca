/*
 * rfc3339.h — points in time written as RFC 3339 UTC timestamps
 * ("2024-05-01T12:00:00Z"), the one formatter. Prefix: cm_rfc3339_.
 */
#ifndef WASMFN_COMMON_RFC3339_H
#define WASMFN_COMMON_RFC3339_H

#include <stddef.h>
#include <stdint.h>

/* How many fractional digits cm_rfc3339_format writes. */
enum {
    CM_RFC3339_SECONDS = 0,  /* "...:05Z": the fraction is dropped */
    CM_RFC3339_MILLIS = 3,   /* "...:05.120Z": always three digits */
    CM_RFC3339_EXACT = -1,   /* "...:05.12Z": to the ns, trailing zeros dropped, none if whole */
};

/* At least this many bytes hold any output (years 0..9999). */
#define CM_RFC3339_MAX 40

/* Writes t_ns (ns since the Unix epoch, negative allowed: the second is
 * floored) into out. A time gmtime cannot represent is written "?". */
void cm_rfc3339_format(int64_t t_ns, int frac, char *out, size_t outlen);

#endif
