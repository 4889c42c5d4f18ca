/*
 * jsonstr.h — JSON string contents from arbitrary bytes. Prefix: cm_json_.
 *
 * For text that comes from guests and clients (log lines, span names,
 * attribute values): the output is always valid JSON string content in
 * valid UTF-8, whatever the input holds.
 */
#ifndef WASMFN_COMMON_JSONSTR_H
#define WASMFN_COMMON_JSONSTR_H

#include <stddef.h>

/* The most bytes cm_json_escape writes for n bytes of input. */
#define CM_JSON_ESCAPE_MAX(n) ((n) * 6)

/* Writes in[0..n) as the inside of a JSON string (no quotes): '"' and '\\'
 * escaped, control characters as \n, \r, \t, \b, \f or \u00XX, DEL as
 * \u007f, valid UTF-8 copied, and each byte that is not part of valid
 * UTF-8 (stray continuation, overlong form, surrogate, beyond U+10FFFF,
 * truncated sequence) as \ufffd, the replacement character. Writes at
 * most cap bytes and never cuts an escape or a UTF-8 sequence: the output
 * stops before the first character that would not fit (*consumed, when
 * not NULL, gets how many input bytes were written). out may be NULL to
 * measure (cap is then ignored). Returns the bytes written. */
size_t cm_json_escape(const char *in, size_t n, char *out, size_t cap, size_t *consumed);

#endif
