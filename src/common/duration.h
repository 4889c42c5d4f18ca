/*
 * duration.h — Go-style durations ("1h30m", "1.5s", "500ms", "100us"), the
 * one parser every subsystem uses. Prefix: cm_duration_.
 *
 * A duration is one or more decimal numbers (optional fraction, ".5"
 * allowed), each followed by a unit: ns, us (or µs, μs), ms, s, m, h, and
 * with CM_DURATION_DAYS also d and w. "0" alone is zero. No sign, no
 * spaces. The result is exact integer nanoseconds (a fraction is rounded to
 * the nearest ns); overflow past INT64_MAX is an error, not a wrap.
 */
#ifndef WASMFN_COMMON_DURATION_H
#define WASMFN_COMMON_DURATION_H

#include <stddef.h>
#include <stdint.h>

enum {
    CM_DURATION_DAYS = 1 << 0, /* accept d (24h) and w (7d) */
};

/* Parses s into *out_ns. Returns 0, or -1 with a message naming s (and
 * where it went wrong) in err when err is not NULL. */
int cm_duration_parse(const char *s, unsigned flags, int64_t *out_ns, char *err, size_t errlen);

#endif
