/*
 * logring.c — a function's recent stderr lines, bounded in bytes, with
 * sequence numbers so `wasmfn logs -f` can follow without loss or repeats.
 *
 * Lines live in a circular array of pointers to single allocations (header,
 * source and text together), so appending is one malloc and dropping the
 * oldest is one free. The byte bound counts every line's text and source
 * plus a fixed per-line overhead, so a flood of empty lines is bounded too.
 * One mutex guards everything: writers are worker threads finishing a
 * request, the reader is the event loop answering /v1/.../logs, and both
 * hold it only to copy bytes.
 *
 * Sequence numbers start at 1 and never repeat within a ring; a reader that
 * passes back the next_seq it was given sees each line once, in order, as
 * long as it reads before the line is pushed out.
 */
#include "common/logring.h"
#include "common/jsonstr.h"
#include "common/rfc3339.h"
#include "common/utf8.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define LR_LINE_MAX 8192          /* longest line kept, in bytes of text */
#define LR_CUT_MARK " [cut]"      /* ends a line that was longer */
#define LR_LINE_OVERHEAD 128      /* counted per line against max_bytes (lr_line_t) */

typedef struct lr_line {
    uint64_t seq;
    uint64_t time_ns;   /* CLOCK_REALTIME */
    size_t source_len, text_len;
    uint8_t stream;     /* LR_STDERR, LR_WASMFN */
    char invocation_id[LR_ID_MAX + 1], trace_id[LR_ID_MAX + 1]; /* "" when none */
    char data[];        /* source, then text; not NUL-terminated */
} lr_line_t;

struct lr_ring {
    pthread_mutex_t lock;   /* guards every field below */
    size_t max_bytes, bytes;
    lr_line_t **lines;      /* circular: lines[(head + i) % cap], i < count */
    size_t cap, head, count;
    uint64_t next_seq;
};

static size_t line_cost(size_t source_len, size_t text_len)
{
    return source_len + text_len + LR_LINE_OVERHEAD;
}

lr_ring_t *lr_ring_new(size_t max_bytes)
{
    lr_ring_t *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    if (pthread_mutex_init(&r->lock, NULL) != 0) {
        free(r);
        return NULL;
    }
    r->max_bytes = max_bytes;
    r->next_seq = 1;
    return r;
}

void lr_ring_free(lr_ring_t *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->count; i++)
        free(r->lines[(r->head + i) % r->cap]);
    free(r->lines);
    pthread_mutex_destroy(&r->lock);
    free(r);
}

static void drop_oldest(lr_ring_t *r)
{
    lr_line_t *l = r->lines[r->head];
    r->bytes -= line_cost(l->source_len, l->text_len);
    free(l);
    r->head = (r->head + 1) % r->cap;
    r->count--;
}

static bool ensure_slot(lr_ring_t *r)
{
    if (r->count < r->cap)
        return true;
    size_t cap = r->cap ? r->cap * 2 : 64;
    lr_line_t **lines = malloc(cap * sizeof *lines);
    if (!lines)
        return false;
    for (size_t i = 0; i < r->count; i++)
        lines[i] = r->lines[(r->head + i) % r->cap];
    free(r->lines);
    r->lines = lines;
    r->cap = cap;
    r->head = 0;
    return true;
}

/* Called with the lock held. A line is cut to LR_LINE_MAX bytes, and
 * further when it alone would not fit in the ring; when not even the
 * source fits, the line is dropped (it still would not be readable). */
static void push_line(lr_ring_t *r, const char *source, size_t source_len, const lr_tags_t *tags,
                      const char *text, size_t text_len, uint64_t now_ns)
{
    size_t keep = text_len;
    bool cut = false;
    size_t limit = LR_LINE_MAX;
    if (r->max_bytes < line_cost(source_len, 0) + sizeof LR_CUT_MARK)
        return;
    size_t room = r->max_bytes - line_cost(source_len, 0);
    if (room < limit)
        limit = room;
    if (keep > limit) {
        keep = limit - (sizeof LR_CUT_MARK - 1);
        cut = true;
    }
    size_t stored = keep + (cut ? sizeof LR_CUT_MARK - 1 : 0);
    lr_line_t *l = malloc(sizeof *l + source_len + stored);
    if (!l)
        return;
    l->time_ns = now_ns;
    l->stream = (uint8_t)tags->stream;
    snprintf(l->invocation_id, sizeof l->invocation_id, "%s",
             tags->invocation_id ? tags->invocation_id : "");
    snprintf(l->trace_id, sizeof l->trace_id, "%s", tags->trace_id ? tags->trace_id : "");
    l->source_len = source_len;
    l->text_len = stored;
    memcpy(l->data, source, source_len);
    memcpy(l->data + source_len, text, keep);
    if (cut)
        memcpy(l->data + source_len + keep, LR_CUT_MARK, sizeof LR_CUT_MARK - 1);

    size_t cost = line_cost(source_len, stored);
    while (r->count > 0 && r->bytes + cost > r->max_bytes)
        drop_oldest(r);
    if (!ensure_slot(r)) {
        free(l);
        return;
    }
    l->seq = r->next_seq++;
    r->lines[(r->head + r->count) % r->cap] = l;
    r->count++;
    r->bytes += cost;
}

void lr_ring_append(lr_ring_t *r, const char *source, const char *text, size_t len)
{
    lr_ring_append_tagged(r, source, NULL, text, len);
}

void lr_ring_append_tagged(lr_ring_t *r, const char *source, const lr_tags_t *tags,
                           const char *text, size_t len)
{
    static const lr_tags_t none = {NULL, NULL, LR_STDERR};
    if (!tags)
        tags = &none;
    if (!r || !text || len == 0)
        return;
    if (!source)
        source = "";
    size_t source_len = strlen(source);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t now_ns = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;

    pthread_mutex_lock(&r->lock);
    size_t start = 0;
    while (start < len) {
        const char *nl = memchr(text + start, '\n', len - start);
        size_t end = nl ? (size_t)(nl - text) : len;
        size_t line_len = end - start;
        if (line_len > 0 && text[end - 1] == '\r')
            line_len--; /* CRLF from a guest reads like LF */
        push_line(r, source, source_len, tags, text + start, line_len, now_ns);
        start = nl ? end + 1 : len;
    }
    pthread_mutex_unlock(&r->lock);
}

/* The length of the valid UTF-8 sequence at s (n bytes left) that encodes
 * no control character, or 0. */
static size_t utf8_printable(const unsigned char *s, size_t n)
{
    size_t len = cm_utf8_len(s, n);
    if (len == 2 && s[0] == 0xC2 && s[1] <= 0x9F) /* U+0080..U+009F: C1 controls (CSI, OSC, ...) */
        return 0;
    return len;
}

size_t lr_escape(const char *in, size_t n, char *out, int keep_newlines)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *s = (const unsigned char *)in;
    size_t o = 0;
    for (size_t i = 0; i < n;) {
        unsigned c = s[i];
        char esc[8];
        size_t el = 0, take = 1;
        if ((c >= 0x20 && c < 0x7F) || c == '\t' || (c == '\n' && keep_newlines)) {
            esc[el++] = (char)c;
        } else if (c == '\r' || c == '\n') {
            esc[el++] = '\\';
            esc[el++] = c == '\r' ? 'r' : 'n';
        } else if (c >= 0x80 && (take = utf8_printable(s + i, n - i)) > 0) {
            if (out)
                memcpy(out + o, s + i, take);
            o += take;
            i += take;
            continue;
        } else if (c == 0xC2 && i + 1 < n && s[i + 1] >= 0x80 && s[i + 1] <= 0x9F) {
            take = 2;
            memcpy(esc, "\\u00", 4);
            el = 4;
            esc[el++] = hex[s[i + 1] >> 4];
            esc[el++] = hex[s[i + 1] & 15];
        } else {
            take = 1;
            esc[el++] = '\\';
            esc[el++] = 'x';
            esc[el++] = hex[c >> 4];
            esc[el++] = hex[c & 15];
        }
        if (out)
            memcpy(out + o, esc, el);
        o += el;
        i += take;
    }
    return o;
}

/* Called with the lock held: the index (from the oldest) of the first
 * line to read. Lines with seq > after_seq are a suffix of the ring; seqs
 * are consecutive there, so its start is found by arithmetic. */
static size_t read_first(const lr_ring_t *r, uint64_t after_seq, size_t max_lines)
{
    size_t first = 0;
    if (r->count > 0) {
        uint64_t oldest = r->lines[r->head]->seq;
        if (after_seq >= oldest)
            first = after_seq - oldest + 1 > r->count ? r->count : (size_t)(after_seq - oldest + 1);
    }
    if (max_lines != 0 && r->count - first > max_lines)
        first = r->count - max_lines;
    return first;
}

char *lr_ring_read(lr_ring_t *r, uint64_t after_seq, size_t max_lines, uint64_t *next_seq,
                   size_t *len)
{
    pthread_mutex_lock(&r->lock);
    size_t first = read_first(r, after_seq, max_lines);

    size_t total = 1;
    for (size_t i = first; i < r->count; i++) {
        const lr_line_t *l = r->lines[(r->head + i) % r->cap];
        total += 32 + 1 + l->source_len + 2 + lr_escape(l->data + l->source_len, l->text_len, NULL, 0) + 1;
    }
    char *out = malloc(total);
    if (!out) {
        pthread_mutex_unlock(&r->lock);
        return NULL;
    }
    size_t o = 0;
    uint64_t next = after_seq;
    for (size_t i = first; i < r->count; i++) {
        const lr_line_t *l = r->lines[(r->head + i) % r->cap];
        char ts[32];
        cm_rfc3339_format((int64_t)l->time_ns, CM_RFC3339_MILLIS, ts, sizeof ts);
        size_t tn = strlen(ts);
        memcpy(out + o, ts, tn);
        o += tn;
        out[o++] = ' ';
        memcpy(out + o, l->data, l->source_len);
        o += l->source_len;
        out[o++] = ':';
        out[o++] = ' ';
        o += lr_escape(l->data + l->source_len, l->text_len, out + o, 0);
        out[o++] = '\n';
        next = l->seq;
    }
    /* A reader already past everything (e.g. a ring recreated after a
     * restart while it followed) keeps its position; it is not moved back. */
    pthread_mutex_unlock(&r->lock);
    out[o] = '\0';
    if (next_seq)
        *next_seq = next;
    if (len)
        *len = o;
    return out;
}

/* Appends "\"KEY\":\"VALUE\"" (VALUE escaped), or "\"KEY\":null" when
 * value is empty and nullable. Returns the bytes written. */
static size_t json_field(char *out, const char *key, const char *value, size_t n, int nullable)
{
    size_t o = (size_t)sprintf(out, ",\"%s\":", key);
    if (n == 0 && nullable)
        return o + (size_t)sprintf(out + o, "null");
    out[o++] = '"';
    o += cm_json_escape(value, n, out + o, CM_JSON_ESCAPE_MAX(n), NULL);
    out[o++] = '"';
    return o;
}

char *lr_ring_read_json(lr_ring_t *r, const char *function, uint64_t after_seq, size_t max_lines,
                        uint64_t *next_seq, size_t *len)
{
    size_t flen = function ? strlen(function) : 0;
    pthread_mutex_lock(&r->lock);
    size_t first = read_first(r, after_seq, max_lines);
    /* Sized for the worst case: every escaped byte 6 wide, plus the keys,
     * the time and the ids (200 bytes). */
    size_t total = 1;
    for (size_t i = first; i < r->count; i++) {
        const lr_line_t *l = r->lines[(r->head + i) % r->cap];
        total += 200 + CM_JSON_ESCAPE_MAX(flen + l->source_len + l->text_len + 2 * LR_ID_MAX);
    }
    char *out = malloc(total);
    if (!out) {
        pthread_mutex_unlock(&r->lock);
        return NULL;
    }
    size_t o = 0;
    uint64_t next = after_seq;
    for (size_t i = first; i < r->count; i++) {
        const lr_line_t *l = r->lines[(r->head + i) % r->cap];
        char ts[CM_RFC3339_MAX];
        cm_rfc3339_format((int64_t)(l->time_ns / 1000000000ull * 1000000000ull), CM_RFC3339_SECONDS,
                          ts, sizeof ts);
        size_t tn = strlen(ts);
        if (tn && ts[tn - 1] == 'Z')
            ts[--tn] = '\0';
        o += (size_t)sprintf(out + o, "{\"time\":\"%s.%09lluZ\"", ts,
                             (unsigned long long)(l->time_ns % 1000000000ull));
        o += json_field(out + o, "function", function ? function : "", flen, 0);
        o += json_field(out + o, "revision", l->data, l->source_len, 0);
        o += json_field(out + o, "invocation_id", l->invocation_id, strlen(l->invocation_id), 1);
        o += json_field(out + o, "trace_id", l->trace_id, strlen(l->trace_id), 1);
        o += (size_t)sprintf(out + o, ",\"stream\":\"%s\"",
                             l->stream == LR_WASMFN ? "wasmfn" : "stderr");
        o += json_field(out + o, "line", l->data + l->source_len, l->text_len, 0);
        out[o++] = '}';
        out[o++] = '\n';
        next = l->seq;
    }
    pthread_mutex_unlock(&r->lock);
    out[o] = '\0';
    if (next_seq)
        *next_seq = next;
    if (len)
        *len = o;
    return out;
}
