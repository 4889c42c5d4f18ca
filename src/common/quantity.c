/*
 * quantity.c — Kubernetes quantities as numbers (quantity.h).
 */
#include "common/quantity.h"

#include <ctype.h>
#include <math.h>
#include <stdbool.h>
#include <string.h>

int cm_quantity_parse(const char *s, long double *out)
{
    if (!s || !*s) return -1;
    const char *p = s;
    if (*p == '+') p++;
    if (!isdigit((unsigned char)*p) && !(*p == '.' && isdigit((unsigned char)p[1]))) return -1;
    /* Digits and a fraction, kept as a long double: exact for every value
     * up to 2^64 with a few fraction digits, which is all a quantity needs.
     * An absurdly long number becomes infinity and fails the range check. */
    long double v = 0;
    while (isdigit((unsigned char)*p)) v = v * 10 + (*p++ - '0');
    if (*p == '.') {
        p++;
        long double scale = 0.1L;
        while (isdigit((unsigned char)*p)) {
            v += (*p++ - '0') * scale;
            scale /= 10;
        }
    }
    long double mult = 1;
    if ((*p == 'e' || *p == 'E') && (isdigit((unsigned char)p[1]) ||
                                     ((p[1] == '+' || p[1] == '-') && isdigit((unsigned char)p[2])))) {
        /* A decimal exponent ("1e3"), not the exa suffix "E" alone. */
        const char *q = p + 1;
        int sign = 1;
        if (*q == '+' || *q == '-') sign = *q++ == '-' ? -1 : 1;
        int e = 0;
        while (isdigit((unsigned char)*q)) {
            e = e * 10 + (*q++ - '0');
            if (e > 30) return -1;
        }
        mult = powl(10, sign * e);
        p = q;
    } else if (*p) {
        static const struct {
            const char *sfx;
            long double mult;
        } sfx[] = {
            {"Ki", 1024.0L}, {"Mi", 1048576.0L}, {"Gi", 1073741824.0L},
            {"Ti", 1099511627776.0L}, {"Pi", 1125899906842624.0L},
            {"Ei", 1152921504606846976.0L}, {"m", 1e-3L}, {"k", 1e3L}, {"M", 1e6L},
            {"G", 1e9L}, {"T", 1e12L}, {"P", 1e15L}, {"E", 1e18L},
        };
        bool found = false;
        for (size_t i = 0; i < sizeof sfx / sizeof sfx[0] && !found; i++) {
            if (strcmp(p, sfx[i].sfx) == 0) {
                mult = sfx[i].mult;
                found = true;
            }
        }
        if (!found) return -1;
        p += strlen(p);
    }
    if (*p) return -1;
    v *= mult;
    if (!(v < 18446744073709551616.0L)) return -1;
    *out = v;
    return 0;
}

int cm_quantity_cpu_millis(const char *s, uint32_t max_millis, uint32_t *millis)
{
    long double v;
    if (cm_quantity_parse(s, &v) != 0) return -1;
    long double m = ceill(v * 1000.0L - 1e-9L); /* "0.0001" is 1m, as Kubernetes rounds up */
    if (m < 1 || m > (long double)max_millis) return -1;
    *millis = (uint32_t)m;
    return 0;
}
