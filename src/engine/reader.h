/*
 * reader.h — a bounds-checked cursor over untrusted module bytes.
 *
 * Every read checks the remaining length first; on failure the reader
 * records the first error (message and byte offset) and all later reads
 * return zeros, so decoders can read a whole construct and check once.
 * Offsets are absolute within the module (base_offset + position) so
 * messages can say "at byte 0x1f".
 */
#ifndef WASMFN_ENGINE_READER_H
#define WASMFN_ENGINE_READER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

typedef struct eng_reader {
    const uint8_t *p, *start, *end;
    size_t base_offset;   /* module offset of start */
    const char *error;    /* first error, static string; NULL if none */
    size_t error_offset;
} eng_reader_t;

static inline void rd_init(eng_reader_t *r, const uint8_t *p, size_t len, size_t base_offset)
{
    r->p = r->start = p;
    r->end = p + len;
    r->base_offset = base_offset;
    r->error = NULL;
    r->error_offset = 0;
}

static inline size_t rd_offset(const eng_reader_t *r) { return r->base_offset + (size_t)(r->p - r->start); }
static inline size_t rd_left(const eng_reader_t *r) { return (size_t)(r->end - r->p); }
static inline bool rd_ok(const eng_reader_t *r) { return r->error == NULL; }
static inline bool rd_eof(const eng_reader_t *r) { return r->p >= r->end; }

static inline void rd_fail(eng_reader_t *r, const char *msg)
{
    if (!r->error) {
        r->error = msg;
        r->error_offset = rd_offset(r);
    }
    r->p = r->end;
}

static inline uint8_t rd_u8(eng_reader_t *r)
{
    if (r->p >= r->end) {
        rd_fail(r, "unexpected end");
        return 0;
    }
    return *r->p++;
}

/* Unsigned LEB128 of at most `bits` bits (32 or 64). */
static inline uint64_t rd_uleb(eng_reader_t *r, unsigned bits)
{
    uint64_t v = 0;
    unsigned shift = 0;
    for (;;) {
        if (r->p >= r->end) {
            rd_fail(r, "unexpected end");
            return 0;
        }
        uint8_t b = *r->p++;
        if (shift + 7 >= bits && shift < 64) {
            /* last permitted byte: no continuation, unused bits zero */
            unsigned used = bits - shift;
            if (b & 0x80) {
                rd_fail(r, "integer representation too long");
                return 0;
            }
            if (used < 7 && (b >> used) != 0) {
                rd_fail(r, "integer too large");
                return 0;
            }
            v |= (uint64_t)b << shift;
            return v;
        }
        v |= (uint64_t)(b & 0x7F) << shift;
        if (!(b & 0x80))
            return v;
        shift += 7;
    }
}

/* Signed LEB128 of at most `bits` bits (32 or 64), sign-extended. */
static inline int64_t rd_sleb(eng_reader_t *r, unsigned bits)
{
    uint64_t v = 0;
    unsigned shift = 0;
    for (;;) {
        if (r->p >= r->end) {
            rd_fail(r, "unexpected end");
            return 0;
        }
        uint8_t b = *r->p++;
        if (shift + 7 >= bits) {
            /* last permitted byte: the unused bits must equal the sign bit */
            unsigned used = bits - shift; /* 1..7 meaningful bits */
            if (b & 0x80) {
                rd_fail(r, "integer representation too long");
                return 0;
            }
            if (used < 7) {
                uint8_t rest = (uint8_t)((b & 0x7F) >> (used - 1)); /* sign bit and above */
                uint8_t all = (uint8_t)(0x7F >> (used - 1));
                if (rest != 0 && rest != all) {
                    rd_fail(r, "integer too large");
                    return 0;
                }
            }
            v |= (uint64_t)(b & 0x7F) << shift;
            shift += 7;
            if (shift < 64 && (b & 0x40))
                v |= ~(uint64_t)0 << shift;
            return (int64_t)v;
        }
        v |= (uint64_t)(b & 0x7F) << shift;
        shift += 7;
        if (!(b & 0x80)) {
            if (shift < 64 && (b & 0x40))
                v |= ~(uint64_t)0 << shift;
            return (int64_t)v;
        }
    }
}

static inline uint32_t rd_u32(eng_reader_t *r) { return (uint32_t)rd_uleb(r, 32); }
static inline int32_t rd_s32(eng_reader_t *r) { return (int32_t)rd_sleb(r, 32); }
static inline int64_t rd_s64(eng_reader_t *r) { return rd_sleb(r, 64); }

/* Signed 33-bit LEB (block types with a type index). */
static inline int64_t rd_s33(eng_reader_t *r) { return rd_sleb(r, 33); }

static inline uint32_t rd_fixed32(eng_reader_t *r)
{
    if (rd_left(r) < 4) {
        rd_fail(r, "unexpected end");
        return 0;
    }
    uint32_t v;
    memcpy(&v, r->p, 4);
    r->p += 4;
    return v;
}

static inline uint64_t rd_fixed64(eng_reader_t *r)
{
    if (rd_left(r) < 8) {
        rd_fail(r, "unexpected end");
        return 0;
    }
    uint64_t v;
    memcpy(&v, r->p, 8);
    r->p += 8;
    return v;
}

/* Returns a pointer to the next n bytes and skips them, or NULL. */
static inline const uint8_t *rd_bytes(eng_reader_t *r, size_t n)
{
    if (rd_left(r) < n) {
        rd_fail(r, "unexpected end");
        return NULL;
    }
    const uint8_t *p = r->p;
    r->p += n;
    return p;
}

#endif
