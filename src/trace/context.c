/*
 * context.c — W3C Trace Context (https://www.w3.org/TR/trace-context/):
 * traceparent parsing and formatting, tracestate checking, fresh ids and
 * the sampling decision for new traces.
 *
 * Ids come from a per-thread xoshiro256** generator seeded from
 * getrandom: ids must be unique and unpredictable enough not to collide,
 * not secret, and a syscall per span would cost more than the span.
 */
#define _GNU_SOURCE
#include "trace/trace.h"
#include "trace/internal.h"

#include <string.h>
#include <sys/random.h>
#include <time.h>

/* ---- traceparent --------------------------------------------------------- */

static int hexval(char c)
{
    /* Lower case only: the spec makes upper-case hex invalid. */
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
}

/* Decodes 2n lower-case hex characters; -1 on any other character. */
static int unhex(const char *s, uint8_t *out, size_t n)
{
    for (size_t k = 0; k < n; k++) {
        int hi = hexval(s[2 * k]), lo = hexval(s[2 * k + 1]);
        if (hi < 0 || lo < 0) return -1;
        out[k] = (uint8_t)(hi << 4 | lo);
    }
    return 0;
}

static bool all_zero(const uint8_t *b, size_t n)
{
    for (size_t k = 0; k < n; k++)
        if (b[k]) return false;
    return true;
}

int tr_traceparent_parse(const char *s, tr_ctx_t *out)
{
    if (!s) return -1;
    size_t len = strlen(s);
    /* Optional whitespace around a header value is not part of it. */
    while (len && (s[len - 1] == ' ' || s[len - 1] == '\t')) len--;
    while (len && (*s == ' ' || *s == '\t')) s++, len--;
    if (len < TR_TRACEPARENT_LEN) return -1;
    uint8_t version;
    if (unhex(s, &version, 1) != 0 || version == 0xff) return -1;
    /* Version 00 is exactly 55 characters; a later version may add fields
     * after a '-', which a version-00 parser skips. */
    if (version == 0 && len != TR_TRACEPARENT_LEN) return -1;
    if (len > TR_TRACEPARENT_LEN && s[TR_TRACEPARENT_LEN] != '-') return -1;
    if (s[2] != '-' || s[35] != '-' || s[52] != '-') return -1;
    tr_ctx_t c;
    if (unhex(s + 3, c.trace_id, 16) != 0 || unhex(s + 36, c.span_id, 8) != 0 ||
        unhex(s + 53, &c.flags, 1) != 0)
        return -1;
    if (all_zero(c.trace_id, 16) || all_zero(c.span_id, 8)) return -1;
    /* Only the sampled bit is defined; the others are not passed on. */
    c.flags &= TR_FLAG_SAMPLED;
    *out = c;
    return 0;
}

void tr_hex(const uint8_t *b, size_t n, char *out)
{
    static const char hex[] = "0123456789abcdef";
    for (size_t k = 0; k < n; k++) {
        out[2 * k] = hex[b[k] >> 4];
        out[2 * k + 1] = hex[b[k] & 15];
    }
    out[2 * n] = '\0';
}

void tr_traceparent_format(const tr_ctx_t *c, char out[TR_TRACEPARENT_LEN + 1])
{
    memcpy(out, "00-", 3);
    tr_hex(c->trace_id, 16, out + 3);
    out[35] = '-';
    tr_hex(c->span_id, 8, out + 36);
    out[52] = '-';
    tr_hex(&c->flags, 1, out + 53);
}

bool tr_ctx_sampled(const tr_ctx_t *c) { return c && (c->flags & TR_FLAG_SAMPLED); }

/* ---- tracestate ---------------------------------------------------------- */

static bool key_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-' ||
           c == '*' || c == '/';
}

/* One list member "key=value" (no surrounding spaces): key is
 * lcalpha/digit first then key chars, optionally "tenant@system"; value is
 * printable ASCII without ',' and '=', not ending in a space. */
static bool member_valid(const char *m, size_t n)
{
    const char *eq = memchr(m, '=', n);
    if (!eq) return false;
    size_t kl = (size_t)(eq - m), vl = n - kl - 1;
    if (kl == 0 || kl > 256 || vl == 0 || vl > 256) return false;
    if (!((m[0] >= 'a' && m[0] <= 'z') || (m[0] >= '0' && m[0] <= '9'))) return false;
    int ats = 0;
    for (size_t k = 1; k < kl; k++) {
        if (m[k] == '@') {
            if (++ats > 1 || k + 1 == kl) return false;
        } else if (!key_char(m[k])) {
            return false;
        }
    }
    for (size_t k = 0; k < vl; k++) {
        char c = eq[1 + k];
        if (c < 0x20 || c > 0x7e || c == ',' || c == '=') return false;
    }
    return eq[vl] != ' ';
}

bool tr_tracestate_valid(const char *s)
{
    if (!s) return false;
    size_t len = strlen(s);
    if (len == 0 || len > TR_TRACESTATE_MAX) return false;
    int members = 0;
    const char *p = s, *end = s + len;
    while (p < end) {
        const char *comma = memchr(p, ',', (size_t)(end - p));
        const char *e = comma ? comma : end;
        const char *a = p, *b = e;
        while (a < b && (*a == ' ' || *a == '\t')) a++;
        while (b > a && (b[-1] == ' ' || b[-1] == '\t')) b--;
        /* Empty members are allowed and ignored. */
        if (a < b) {
            if (++members > 32 || !member_valid(a, (size_t)(b - a))) return false;
        }
        p = comma ? comma + 1 : end;
    }
    return members > 0;
}

/* ---- ids and sampling ---------------------------------------------------- */

static __thread uint64_t rng_state[4];
static __thread bool rng_seeded;

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

/* xoshiro256** (Blackman and Vigna), seeded once per thread. */
static uint64_t rng_next(void)
{
    if (!rng_seeded) {
        if (getrandom(rng_state, sizeof rng_state, 0) != (ssize_t)sizeof rng_state) {
            /* No entropy source: time and the state's address still give
             * distinct streams per thread and per start. */
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            rng_state[0] = (uint64_t)ts.tv_nsec ^ (uint64_t)(uintptr_t)rng_state;
            rng_state[1] = (uint64_t)ts.tv_sec * 0x9e3779b97f4a7c15ull;
            rng_state[2] = 0x2545f4914f6cdd1dull;
            rng_state[3] = 0xda942042e4dd58b5ull;
        }
        rng_seeded = true;
    }
    uint64_t *s = rng_state;
    uint64_t result = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

void tr_random_bytes(uint8_t *out, size_t n)
{
    for (size_t k = 0; k < n; k += 8) {
        uint64_t v = rng_next();
        memcpy(out + k, &v, n - k < 8 ? n - k : 8);
    }
}

static void random_id(uint8_t *out, size_t n)
{
    do tr_random_bytes(out, n);
    while (all_zero(out, n));
}

/* The ratio sampler (OpenTelemetry's TraceIdRatioBased): the trace id's
 * last 8 bytes, as a number, below ratio * 2^64. */
static bool ratio_sampled(const uint8_t trace_id[16], double ratio)
{
    if (ratio >= 1.0) return true;
    if (!(ratio > 0.0)) return false;
    uint64_t v = 0;
    for (int k = 8; k < 16; k++) v = v << 8 | trace_id[k];
    return (double)v < ratio * 18446744073709551616.0;
}

void tr_ctx_new(const tr_tracer_t *t, const tr_ctx_t *parent, tr_ctx_t *out)
{
    if (parent) {
        memcpy(out->trace_id, parent->trace_id, 16);
        out->flags = parent->flags & TR_FLAG_SAMPLED;
    } else {
        random_id(out->trace_id, 16);
        out->flags = t && ratio_sampled(out->trace_id, tr_tracer_ratio(t)) ? TR_FLAG_SAMPLED : 0;
    }
    random_id(out->span_id, 8);
}
