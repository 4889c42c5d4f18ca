/*
 * percent.c — percent-encoding and decoding (percent.h).
 */
#include "common/percent.h"

#include <string.h>

static int hexval(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

long cm_pct_decode(const char *in, size_t len, char *out, unsigned flags)
{
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        int hi = -1, lo = -1;
        if (in[i] == '%' && len - i >= 3) {
            hi = hexval(in[i + 1]);
            lo = hexval(in[i + 2]);
        }
        if (in[i] != '%' || hi < 0 || lo < 0 || (hi | lo) == 0) {
            if (in[i] == '%' && !(flags & CM_PCT_LENIENT)) return -1;
            out[o++] = in[i];
            continue;
        }
        out[o++] = (char)(hi * 16 + lo);
        i += 2;
    }
    out[o] = 0;
    return (long)o;
}

bool cm_pct_valid(const char *s)
{
    for (const char *q = s; (q = strchr(q, '%')); q++)
        if (hexval(q[1]) < 0 || hexval(q[2]) < 0 || (q[1] == '0' && q[2] == '0'))
            return false;
    return true;
}

size_t cm_pct_encode(const char *s, char *out)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t o = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p < 0x20 || *p >= 0x7f || *p == '%' || *p == '"') {
            out[o++] = '%';
            out[o++] = hex[*p >> 4];
            out[o++] = hex[*p & 15];
        } else {
            out[o++] = (char)*p;
        }
    }
    out[o] = 0;
    return o;
}
