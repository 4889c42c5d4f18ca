/*
 * strcopy.h — a string copied into a fixed array, cut to fit. Prefix:
 * cm_str.
 *
 * Why not snprintf(dst, size, "%s", src): it runs the whole formatter,
 * and the request path copies a dozen such strings per call (method,
 * path, ids, labels); the formatter was 2-3% of the daemon's CPU under a
 * hello load (docs/benchmarks.md, "Guests on the event loop").
 */
#ifndef WASMFN_COMMON_STRCOPY_H
#define WASMFN_COMMON_STRCOPY_H

#include <stddef.h>
#include <string.h>

/* Copies at most size - 1 bytes of the first n of src (stopping at its
 * NUL) to dst and NUL-terminates it; size must be at least 1. Returns
 * dst. */
static inline char *cm_strncopy(char *dst, size_t size, const char *src, size_t n)
{
    n = strnlen(src, n < size - 1 ? n : size - 1);
    memcpy(dst, src, n);
    dst[n] = '\0';
    return dst;
}

/* The same for all of src; NULL copies as "". */
static inline char *cm_strcopy(char *dst, size_t size, const char *src)
{
    return cm_strncopy(dst, size, src ? src : "", size - 1);
}

#endif
