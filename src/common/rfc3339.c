/*
 * rfc3339.c — RFC 3339 UTC timestamps (rfc3339.h).
 *
 * The API's created times, CloudEvents' `time` attribute, the usage API's
 * windows, invocation records and log lines all go through here; they
 * differ only in how much of the fraction they show.
 */
#include "common/rfc3339.h"

#include <stdio.h>
#include <time.h>

void cm_rfc3339_format(int64_t t_ns, int frac, char *out, size_t outlen)
{
    int64_t sec = t_ns / 1000000000LL, ns = t_ns % 1000000000LL;
    if (ns < 0) {
        ns += 1000000000LL;
        sec--;
    }
    time_t tt = (time_t)sec;
    struct tm tm;
    if (!gmtime_r(&tt, &tm)) {
        snprintf(out, outlen, "?");
        return;
    }
    char base[48];
    snprintf(base, sizeof base, "%04d-%02d-%02dT%02d:%02d:%02d", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
    if (frac == CM_RFC3339_MILLIS) {
        snprintf(out, outlen, "%s.%03dZ", base, (int)(ns / 1000000));
        return;
    }
    if (frac != CM_RFC3339_EXACT || ns == 0) {
        snprintf(out, outlen, "%sZ", base);
        return;
    }
    char digits[16];
    snprintf(digits, sizeof digits, "%09lld", (long long)ns);
    for (int i = 8; i > 0 && digits[i] == '0'; i--) digits[i] = 0;
    snprintf(out, outlen, "%s.%sZ", base, digits);
}
