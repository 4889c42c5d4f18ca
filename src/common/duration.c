/*
 * duration.c — the one Go-style duration parser (duration.h).
 *
 * Integer arithmetic throughout: the whole part is multiplied by the unit
 * with overflow checks, and only the fraction goes through long double, so
 * "1h30m" is exactly 5400000000000 ns and huge inputs fail instead of
 * wrapping. Manifests (autoscaling windows), cron's @every, the usage API
 * and serve's options all read durations here, so they accept the same
 * spellings.
 */
#include "common/duration.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

static void set_err(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || !errlen) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

typedef struct unit {
    const char *name;
    int64_t ns;
} unit_t;

/* Longest names first where one is a prefix of another ("ms" before "m"). */
static const unit_t UNITS[] = {
    {"ns", 1LL},
    {"us", 1000LL},
    {"\xc2\xb5s", 1000LL}, /* µs, MICRO SIGN */
    {"\xce\xbcs", 1000LL}, /* μs, GREEK SMALL LETTER MU */
    {"ms", 1000000LL},
    {"s", 1000000000LL},
    {"m", 60000000000LL},
    {"h", 3600000000000LL},
    {"d", 86400000000000LL},  /* only with CM_DURATION_DAYS */
    {"w", 604800000000000LL},  /* only with CM_DURATION_DAYS */
};

int cm_duration_parse(const char *s, unsigned flags, int64_t *out_ns, char *err, size_t errlen)
{
    if (!s || !*s) {
        set_err(err, errlen, "empty duration (write e.g. 1h, 30m, 100ms)");
        return -1;
    }
    if (strcmp(s, "0") == 0) {
        *out_ns = 0;
        return 0;
    }
    const char *p = s;
    int64_t total = 0;
    while (*p) {
        /* digits [. digits] */
        if (!isdigit((unsigned char)*p) && *p != '.') goto bad;
        int64_t whole = 0;
        bool any = false;
        while (isdigit((unsigned char)*p)) {
            if (whole > (INT64_MAX - 9) / 10) goto too_big;
            whole = whole * 10 + (*p++ - '0');
            any = true;
        }
        int64_t frac = 0, frac_div = 1;
        if (*p == '.') {
            p++;
            while (isdigit((unsigned char)*p)) {
                if (frac_div < 1000000000000000000LL) {
                    frac = frac * 10 + (*p - '0');
                    frac_div *= 10;
                }
                p++;
                any = true;
            }
        }
        if (!any) goto bad;
        const unit_t *u = NULL;
        for (size_t i = 0; i < sizeof UNITS / sizeof UNITS[0]; i++) {
            size_t n = strlen(UNITS[i].name);
            bool day_unit = UNITS[i].name[0] == 'd' || UNITS[i].name[0] == 'w';
            if (day_unit && !(flags & CM_DURATION_DAYS)) continue;
            if (strncmp(p, UNITS[i].name, n) == 0 &&
                (!u || n > strlen(u->name)))
                u = &UNITS[i];
        }
        if (!u) {
            set_err(err, errlen,
                    "duration '%s': missing or unknown unit at '%s' (use ns, us, ms, s, m, h%s)",
                    s, p, (flags & CM_DURATION_DAYS) ? ", d, w" : "");
            return -1;
        }
        p += strlen(u->name);
        int64_t v;
        if (__builtin_mul_overflow(whole, u->ns, &v)) goto too_big;
        /* frac/frac_div of a unit; frac_div <= 10^18, u->ns <= 6.048e14:
         * compute in long double to avoid overflow, rounding to the ns. */
        int64_t fv = (int64_t)((long double)frac * (long double)u->ns / (long double)frac_div + 0.5L);
        if (__builtin_add_overflow(v, fv, &v) || __builtin_add_overflow(total, v, &total))
            goto too_big;
    }
    *out_ns = total;
    return 0;
bad:
    set_err(err, errlen, "duration '%s': expected a number with a unit at '%s' (e.g. 1h, 30m, 100ms)",
            s, p);
    return -1;
too_big:
    set_err(err, errlen, "duration '%s' is too long", s);
    return -1;
}
