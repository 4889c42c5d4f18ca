/*
 * utf8.c — strict UTF-8 (utf8.h).
 *
 * The lead byte says the length (C2-DF: 2, E0-EF: 3, F0-F4: 4; C0, C1 and
 * F5-FF can only start overlong or too large forms); four lead bytes
 * narrow the second byte's range: E0 (overlong below U+0800), ED
 * (surrogates), F0 (overlong below U+10000), F4 (above U+10FFFF).
 */
#include "common/utf8.h"

size_t cm_utf8_len(const void *p, size_t n)
{
    const unsigned char *s = p;
    if (n == 0) return 0;
    unsigned c = s[0];
    if (c < 0x80) return 1;
    size_t len = c >= 0xC2 && c <= 0xDF ? 2 : c >= 0xE0 && c <= 0xEF ? 3
               : c >= 0xF0 && c <= 0xF4 ? 4 : 0;
    if (!len || len > n) return 0;
    for (size_t k = 1; k < len; k++)
        if ((s[k] & 0xC0) != 0x80) return 0;
    if ((c == 0xE0 && s[1] < 0xA0) || (c == 0xED && s[1] > 0x9F) ||
        (c == 0xF0 && s[1] < 0x90) || (c == 0xF4 && s[1] > 0x8F))
        return 0;
    return len;
}

size_t cm_utf8_bad_offset(const void *p, size_t n)
{
    const unsigned char *s = p;
    for (size_t i = 0; i < n;) {
        size_t len = cm_utf8_len(s + i, n - i);
        if (!len) return i;
        i += len;
    }
    return n;
}

bool cm_utf8_valid(const void *s, size_t n) { return cm_utf8_bad_offset(s, n) == n; }
