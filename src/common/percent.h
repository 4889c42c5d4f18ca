/*
 * percent.h — percent-encoding (RFC 3986 §2.1), the one codec: URL paths
 * on the data plane, CloudEvents attribute values in HTTP headers
 * (CloudEvents HTTP binding §3.1.3.2). Prefix: cm_pct_.
 */
#ifndef WASMFN_COMMON_PERCENT_H
#define WASMFN_COMMON_PERCENT_H

#include <stdbool.h>
#include <stddef.h>

enum {
    /* Malformed escapes ("%zz", a '%' near the end) and %00 are kept as
     * they are instead of failing: header values are decoded
     * best-effort, paths strictly. */
    CM_PCT_LENIENT = 1 << 0,
};

/* Decodes in[0..len) into out, which must hold len + 1 bytes; out is
 * NUL-terminated. '+' is left alone. Returns the decoded length, or -1
 * (without CM_PCT_LENIENT) for a malformed escape or an encoded NUL. */
long cm_pct_decode(const char *in, size_t len, char *out, unsigned flags);

/* Whether cm_pct_decode(s, strlen(s), ..., 0) would succeed: every '%'
 * starts a two-hex-digit escape other than %00. */
bool cm_pct_valid(const char *s);

/* Encodes the NUL-terminated s into out, which must hold 3 * strlen(s) + 1
 * bytes: control bytes, bytes >= 0x7f, '%' and '"' become %XX (upper-case
 * hex), the rest is copied. Returns the encoded length. */
size_t cm_pct_encode(const char *s, char *out);

#endif
