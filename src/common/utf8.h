/*
 * utf8.h — strict UTF-8 (RFC 3629: no overlong forms, no surrogates,
 * nothing above U+10FFFF), checked once for everything above the engine.
 * Prefix: cm_utf8_. (The engine checks Wasm names with its own copy,
 * because it depends on nothing of ours: DESIGN §1.)
 */
#ifndef WASMFN_COMMON_UTF8_H
#define WASMFN_COMMON_UTF8_H

#include <stdbool.h>
#include <stddef.h>

/* The length (1 to 4) of the valid UTF-8 character at s, of which n bytes
 * may be read; 0 when s does not start with one (or n is 0). ASCII,
 * NUL included, is 1. */
size_t cm_utf8_len(const void *s, size_t n);

/* The offset of the first byte of s[0..n) that does not start a valid
 * UTF-8 character, or n when all of it is valid. */
size_t cm_utf8_bad_offset(const void *s, size_t n);

/* Whether all of s[0..n) is valid UTF-8. */
bool cm_utf8_valid(const void *s, size_t n);

#endif
