/*
 * logring.h — a bounded in-memory ring of log lines with followers.
 * Prefix: lr_.
 *
 * One ring per function keeps its guests' stderr: each line is stored with
 * a timestamp and a source (the revision name). When the ring is full the
 * oldest lines go. Every line gets a sequence number, so a reader can ask
 * for "everything after seq N" (how `wasmfn logs -f` follows without
 * missing or repeating lines). Thread-safe: writers are worker threads,
 * readers the event loop.
 */
#ifndef WASMFN_COMMON_LOGRING_H
#define WASMFN_COMMON_LOGRING_H

#include <stddef.h>
#include <stdint.h>

typedef struct lr_ring lr_ring_t;

/* max_bytes bounds the text kept (lines + overhead). */
lr_ring_t *lr_ring_new(size_t max_bytes);
void lr_ring_free(lr_ring_t *r);

/* Appends text as lines (split at '\n'; a trailing partial line is kept as a
 * line of its own; a '\r' before '\n' is dropped; lines longer than 8 KiB
 * are cut to 8 KiB ending in " [cut]", the rest of such a line discarded).
 * source is copied. */
void lr_ring_append(lr_ring_t *r, const char *source, const char *text, size_t len);

/* What a line is about, for the JSON form (lr_ring_read_json). Any field
 * may be NULL: no invocation, no trace. stream is LR_STDERR for what a
 * guest wrote, LR_WASMFN for wasmfn's own line about an invocation or a
 * revision (a timeout, a trap, a module that failed to load).
 * lr_ring_append's lines are LR_STDERR without an invocation or trace. */
enum { LR_STDERR = 0, LR_WASMFN = 1 };
#define LR_ID_MAX 32 /* longer invocation and trace ids are cut */
typedef struct lr_tags {
    const char *invocation_id;
    const char *trace_id;  /* 32 lower-case hex characters */
    int stream;
} lr_tags_t;
void lr_ring_append_tagged(lr_ring_t *r, const char *source, const lr_tags_t *tags,
                           const char *text, size_t len);

/* Formats lines with seq > after_seq (at most max_lines of the newest, 0 =
 * all) as "TIMESTAMP SOURCE: TEXT\n" into a malloc'd string (caller frees).
 * TEXT is escaped with lr_escape (the stored bytes stay as written), so a
 * line a guest wrote prints as one line and sends no control sequence to
 * the reader's terminal.
 * TIMESTAMP is UTC, 2024-05-01T12:00:00.123Z. *next_seq gets the seq to pass
 * next time (after_seq itself when nothing was new, so seqs start at 1 and
 * 0 reads everything). With nothing new the string is "" (never NULL
 * except when out of memory). */
char *lr_ring_read(lr_ring_t *r, uint64_t after_seq, size_t max_lines, uint64_t *next_seq,
                   size_t *len);

/* The same lines as lr_ring_read, as JSON, one object per line (NDJSON):
 *   {"time":"2024-05-01T12:00:00.123456789Z","function":F,"revision":R,
 *    "invocation_id":ID|null,"trace_id":HEX|null,"stream":"stderr"|"wasmfn",
 *    "line":TEXT}
 * time is UTC with nanoseconds; function is the name given (the ring does
 * not know it); revision is the line's source; TEXT is the line as written,
 * escaped as JSON (cm_json_escape: bytes that are not valid UTF-8 become
 * U+FFFD). Same after_seq, max_lines and next_seq as lr_ring_read. */
char *lr_ring_read_json(lr_ring_t *r, const char *function, uint64_t after_seq, size_t max_lines,
                        uint64_t *next_seq, size_t *len);

/* Makes log text safe to print on a terminal: control characters become
 * visible escapes — "\r", "\n" (unless keep_newlines), "\xHH" for the
 * other C0 bytes and DEL (ESC is "\x1b"), "\u0080".."\u009f" for the C1
 * controls encoded in UTF-8 — and each byte that is not part of valid UTF-8
 * becomes "\xHH". Tab, backslash and printable UTF-8 stay as they are.
 * Writes to out (when not NULL) and returns the length, which is at most
 * 4 * n: call with out NULL to size the buffer. */
size_t lr_escape(const char *in, size_t n, char *out, int keep_newlines);

#endif
