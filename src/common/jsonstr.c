/*
 * jsonstr.c — escaping bytes into JSON string contents (jsonstr.h).
 */
#include "common/jsonstr.h"
#include "common/utf8.h"

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

size_t cm_json_escape(const char *in, size_t n, char *out, size_t cap, size_t *consumed)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *s = (const unsigned char *)in;
    size_t o = 0, i = 0;
    while (i < n) {
        unsigned c = s[i];
        char esc[8];
        const char *piece = esc;
        size_t el = 0, take = 1;
        if (c == '"' || c == '\\') {
            esc[el++] = '\\';
            esc[el++] = (char)c;
        } else if (c >= 0x20 && c < 0x7F) {
            esc[el++] = (char)c;
        } else if (c < 0x20 || c == 0x7F) {
            const char *short_esc = c == '\n' ? "\\n" : c == '\r' ? "\\r" : c == '\t' ? "\\t"
                                  : c == '\b' ? "\\b" : c == '\f' ? "\\f" : NULL;
            if (short_esc) {
                memcpy(esc, short_esc, 2);
                el = 2;
            } else {
                memcpy(esc, "\\u00", 4);
                esc[4] = hex[c >> 4];
                esc[5] = hex[c & 15];
                el = 6;
            }
        } else if ((take = cm_utf8_len(s + i, n - i)) > 0) {
            piece = in + i;
            el = take;
        } else {
            take = 1;
            memcpy(esc, "\\ufffd", 6);
            el = 6;
        }
        if (out) {
            if (el > cap - o) break;
            memcpy(out + o, piece, el);
        }
        o += el;
        i += take;
    }
    if (consumed) *consumed = i;
    return o;
}
