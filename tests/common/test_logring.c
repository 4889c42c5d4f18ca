/*
 * test_logring.c — the bounded log ring of src/common/logring.c: line
 * splitting, bounds, long lines, following by sequence number, threads.
 */
#include <ctype.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <cjson/cJSON.h>

#include "common/logring.h"

/* Reads lines after `after` and returns them without their timestamps,
 * each "SOURCE: TEXT\n", checking the timestamp's shape on the way:
 * 2024-05-01T12:00:00.123Z and a space. */
static char *read_plain(lr_ring_t *r, uint64_t after, size_t max, uint64_t *next, size_t *nlines)
{
    size_t len;
    char *raw = lr_ring_read(r, after, max, next, &len);
    assert_non_null(raw);
    assert_int_equal(len, strlen(raw));
    char *out = malloc(len + 1);
    assert_non_null(out);
    size_t o = 0, n = 0;
    for (char *p = raw; *p;) {
        char *nl = strchr(p, '\n');
        assert_non_null(nl);
        assert_true(nl - p >= 25);
        assert_true(isdigit((unsigned char)p[0]) && p[4] == '-' && p[7] == '-' && p[10] == 'T');
        assert_true(p[13] == ':' && p[16] == ':' && p[19] == '.' && p[23] == 'Z' && p[24] == ' ');
        size_t l = (size_t)(nl - (p + 25)) + 1;
        memcpy(out + o, p + 25, l);
        o += l;
        n++;
        p = nl + 1;
    }
    out[o] = '\0';
    free(raw);
    if (nlines)
        *nlines = n;
    return out;
}

static void append_str(lr_ring_t *r, const char *src, const char *s)
{
    lr_ring_append(r, src, s, strlen(s));
}

static void test_order_and_splitting(void **state)
{
    (void)state;
    lr_ring_t *r = lr_ring_new(1 << 20);
    assert_non_null(r);
    uint64_t next = 99;
    char *t = read_plain(r, 0, 0, &next, NULL);
    assert_string_equal(t, "");
    assert_int_equal(next, 0);
    free(t);

    append_str(r, "f-00001", "one\ntwo\n");
    append_str(r, "f-00002", "three\n\nfive\r\n"); /* empty line kept; CR dropped */
    append_str(r, "f-00001", "");                  /* nothing */
    t = read_plain(r, 0, 0, &next, NULL);
    assert_string_equal(t, "f-00001: one\nf-00001: two\nf-00002: three\nf-00002: \nf-00002: five\n");
    assert_int_equal(next, 5);
    free(t);
    lr_ring_free(r);
}

/* A chunk without a final newline is a line of its own; the next chunk
 * starts a new line. */
static void test_partial_lines(void **state)
{
    (void)state;
    lr_ring_t *r = lr_ring_new(1 << 20);
    append_str(r, "s", "abc");
    append_str(r, "s", "def\nghi");
    append_str(r, "s", "\n");
    uint64_t next;
    char *t = read_plain(r, 0, 0, &next, NULL);
    /* "\n" alone ends an empty line */
    assert_string_equal(t, "s: abc\ns: def\ns: ghi\ns: \n");
    assert_int_equal(next, 4);
    free(t);
    /* Text with NUL bytes is kept whole (len, not strlen, decides); it
     * reads back escaped. */
    lr_ring_append(r, "s", "a\0b\n", 4);
    size_t len;
    char *raw = lr_ring_read(r, 4, 0, &next, &len);
    assert_int_equal(len, 25 + 3 + 6 + 1);
    assert_memory_equal(raw + 25, "s: a\\x00b\n", 10);
    free(raw);
    lr_ring_free(r);
}

/* The ring keeps the newest lines within its byte bound. */
static void test_bounded(void **state)
{
    (void)state;
    const size_t max = 4000;
    lr_ring_t *r = lr_ring_new(max);
    char line[64];
    for (int i = 1; i <= 1000; i++) {
        int n = snprintf(line, sizeof line, "line %04d\n", i);
        lr_ring_append(r, "src", line, (size_t)n);
    }
    uint64_t next;
    size_t nlines;
    char *t = read_plain(r, 0, 0, &next, &nlines);
    assert_int_equal(next, 1000);
    /* Bounded: far fewer than 1000 lines, text within the byte bound... */
    assert_true(nlines > 10 && nlines < 1000);
    assert_true(strlen(t) <= max);
    /* ...and they are the newest ones, consecutive, ending with 1000. */
    char *p = t;
    for (size_t k = 0; k < nlines; k++) {
        char expect[32];
        snprintf(expect, sizeof expect, "src: line %04zu\n", 1000 - nlines + 1 + k);
        assert_memory_equal(p, expect, strlen(expect));
        p += strlen(expect);
    }
    free(t);

    /* Keeping on appending keeps the same number of lines (same sizes). */
    for (int i = 1001; i <= 2000; i++) {
        int n = snprintf(line, sizeof line, "line %04d\n", i);
        lr_ring_append(r, "src", line, (size_t)n);
    }
    size_t nlines2;
    t = read_plain(r, 0, 0, &next, &nlines2);
    assert_int_equal(nlines2, nlines);
    assert_int_equal(next, 2000);
    free(t);

    /* Big lines push out many small ones; the byte bound still holds. */
    char big[1501];
    memset(big, 'b', 1500);
    big[1500] = '\n';
    lr_ring_append(r, "src", big, sizeof big);
    lr_ring_append(r, "src", big, sizeof big);
    t = read_plain(r, 0, 0, &next, &nlines2);
    assert_true(strlen(t) <= max);
    assert_true(nlines2 < nlines);
    assert_non_null(strstr(t, "src: bbbb"));
    free(t);
    lr_ring_free(r);
}

/* Lines over 8 KiB are cut (and marked); the rest of such a line is not
 * turned into more lines. */
static void test_long_line_cut(void **state)
{
    (void)state;
    lr_ring_t *r = lr_ring_new(1 << 20);
    size_t n = 20000;
    char *s = malloc(n + 7);
    memset(s, 'x', n);
    memcpy(s + n, "\nafter\n", 7);
    lr_ring_append(r, "s", s, n + 7);
    free(s);
    uint64_t next;
    size_t nlines;
    char *t = read_plain(r, 0, 0, &next, &nlines);
    assert_int_equal(nlines, 2);
    assert_int_equal(next, 2);
    char *nl = strchr(t, '\n');
    size_t first_len = (size_t)(nl - t) - 3; /* minus "s: " */
    assert_int_equal(first_len, 8192);
    assert_memory_equal(nl - 6, " [cut]", 6);
    assert_true(t[3] == 'x' && nl[-7] == 'x');
    assert_string_equal(nl + 1, "s: after\n");
    free(t);

    /* Exactly 8 KiB is not cut. */
    s = malloc(8192);
    memset(s, 'y', 8192);
    lr_ring_append(r, "s", s, 8192);
    free(s);
    t = read_plain(r, 2, 0, &next, &nlines);
    assert_int_equal(nlines, 1);
    assert_int_equal(strlen(t), 3 + 8192 + 1);
    assert_null(strstr(t, "[cut]"));
    free(t);
    lr_ring_free(r);

    /* A ring smaller than one long line keeps a cut line within its bound. */
    r = lr_ring_new(1000);
    s = malloc(5000);
    memset(s, 'z', 5000);
    lr_ring_append(r, "s", s, 5000);
    free(s);
    t = read_plain(r, 0, 0, &next, &nlines);
    assert_int_equal(nlines, 1);
    assert_true(strlen(t) < 1000);
    assert_non_null(strstr(t, "[cut]"));
    free(t);
    lr_ring_free(r);
}

/* Reading after a seq gives only newer lines; max_lines keeps the newest. */
static void test_seq_reads(void **state)
{
    (void)state;
    lr_ring_t *r = lr_ring_new(1 << 20);
    char line[32];
    for (int i = 1; i <= 10; i++) {
        int n = snprintf(line, sizeof line, "%d\n", i);
        lr_ring_append(r, "s", line, (size_t)n);
    }
    uint64_t next;
    char *t = read_plain(r, 0, 3, &next, NULL);
    assert_string_equal(t, "s: 8\ns: 9\ns: 10\n");
    assert_int_equal(next, 10);
    free(t);
    t = read_plain(r, 6, 0, &next, NULL);
    assert_string_equal(t, "s: 7\ns: 8\ns: 9\ns: 10\n");
    assert_int_equal(next, 10);
    free(t);
    t = read_plain(r, 6, 2, &next, NULL);
    assert_string_equal(t, "s: 9\ns: 10\n");
    free(t);
    /* Nothing new: empty, and the position is kept. */
    t = read_plain(r, 10, 0, &next, NULL);
    assert_string_equal(t, "");
    assert_int_equal(next, 10);
    free(t);
    t = read_plain(r, 50, 0, &next, NULL);
    assert_string_equal(t, "");
    assert_int_equal(next, 50);
    free(t);
    /* After lines were dropped, a stale position gets what is left. */
    lr_ring_free(r);
    r = lr_ring_new(300);
    for (int i = 1; i <= 10; i++) {
        int n = snprintf(line, sizeof line, "%d\n", i);
        lr_ring_append(r, "s", line, (size_t)n);
    }
    size_t nlines;
    t = read_plain(r, 1, 0, &next, &nlines);
    assert_true(nlines < 9);
    assert_int_equal(next, 10);
    assert_true(strlen(t) >= 6 && strcmp(t + strlen(t) - 6, "s: 10\n") == 0);
    free(t);
    lr_ring_free(r);
}

/* ---- threads ---- */

#define FOLLOW_LINES 20000

typedef struct writer_arg {
    lr_ring_t *r;
    int id, count;
} writer_arg_t;

static void *writer(void *p)
{
    writer_arg_t *w = p;
    char line[64];
    for (int i = 0; i < w->count; i++) {
        int n = snprintf(line, sizeof line, "w%d %d\n", w->id, i);
        lr_ring_append(w->r, "rev", line, (size_t)n);
    }
    return NULL;
}

/* A follower reading while a writer appends sees every line once, in
 * order (the ring is big enough to hold them all). */
static void test_follow_no_loss_no_repeat(void **state)
{
    (void)state;
    lr_ring_t *r = lr_ring_new(16u << 20);
    writer_arg_t w = {r, 0, FOLLOW_LINES};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, writer, &w), 0);
    uint64_t seq = 0;
    int expect = 0;
    int reads = 0;
    while (expect < FOLLOW_LINES) {
        uint64_t next;
        char *t = read_plain(r, seq, 0, &next, NULL);
        reads++;
        for (char *p = t; *p;) {
            int id, v, used = 0;
            assert_int_equal(sscanf(p, "rev: w%d %d\n%n", &id, &v, &used), 2);
            assert_int_equal(v, expect);
            expect++;
            p = strchr(p, '\n') + 1;
        }
        assert_true(next >= seq);
        seq = next;
        free(t);
    }
    pthread_join(th, NULL);
    assert_int_equal(seq, FOLLOW_LINES);
    assert_true(reads >= 1);
    lr_ring_free(r);
}

/* Several writers and a reader on a small ring: no crash, bound held,
 * sequence numbers consecutive at the end. */
static void test_threads_smoke(void **state)
{
    (void)state;
    const size_t max = 8192;
    lr_ring_t *r = lr_ring_new(max);
    writer_arg_t w[4];
    pthread_t th[4];
    for (int i = 0; i < 4; i++) {
        w[i] = (writer_arg_t){r, i, 5000};
        assert_int_equal(pthread_create(&th[i], NULL, writer, &w[i]), 0);
    }
    uint64_t seq = 0;
    for (int k = 0; k < 200; k++) {
        uint64_t next;
        char *t = lr_ring_read(r, seq, 0, &next, NULL);
        assert_non_null(t);
        assert_true(strlen(t) <= 2 * max);
        assert_true(next >= seq);
        seq = next;
        free(t);
    }
    for (int i = 0; i < 4; i++)
        pthread_join(th[i], NULL);
    uint64_t next;
    size_t nlines;
    char *t = read_plain(r, 0, 0, &next, &nlines);
    assert_int_equal(next, 4 * 5000);
    assert_true(nlines > 0 && strlen(t) <= max);
    /* Per writer, the lines kept are in the order written. */
    int last[4] = {-1, -1, -1, -1};
    for (char *p = t; *p; p = strchr(p, '\n') + 1) {
        int id, v;
        assert_int_equal(sscanf(p, "rev: w%d %d", &id, &v), 2);
        assert_true(id >= 0 && id < 4 && v > last[id]);
        last[id] = v;
    }
    free(t);
    lr_ring_free(r);
}

/* Control characters a guest writes are printed escaped (the ring keeps
 * the bytes); printable UTF-8, tab and backslash pass as they are. */
static void test_escape(void **state)
{
    (void)state;
    static const struct { const char *in, *want; } cases[] = {
        {"plain text", "plain text"},
        {"a\rFAKE line", "a\\rFAKE line"},
        {"\x1b[31mred\x1b[0m", "\\x1b[31mred\\x1b[0m"},
        {"\x1b]0;title\x07", "\\x1b]0;title\\x07"},
        {"nul\x01 del\x7f", "nul\\x01 del\\x7f"},
        {"c1:\xc2\x9b nbsp:\xc2\xa0", "c1:\\u009b nbsp:\xc2\xa0"},
        {"bad:\xff cut:\xe2\x82", "bad:\\xff cut:\\xe2\\x82"},
        {"overlong:\xc0\xaf surrogate:\xed\xa0\x80", "overlong:\\xc0\\xaf surrogate:\\xed\\xa0\\x80"},
        {"ok: \xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 tab\t back\\slash", "ok: \xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 tab\t back\\slash"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t n = strlen(cases[i].in);
        char out[256];
        size_t len = lr_escape(cases[i].in, n, NULL, 0);
        assert_true(len <= 4 * n);
        assert_int_equal(lr_escape(cases[i].in, n, out, 0), len);
        out[len] = '\0';
        assert_string_equal(out, cases[i].want);
    }
    char out[16];
    assert_int_equal(lr_escape("a\nb", 3, out, 0), 4);
    assert_memory_equal(out, "a\\nb", 4);
    assert_int_equal(lr_escape("a\nb", 3, out, 1), 3);
    assert_memory_equal(out, "a\nb", 3);

    /* Read back from the ring: escaped, one line, the stored bytes kept. */
    lr_ring_t *r = lr_ring_new(1 << 16);
    assert_non_null(r);
    lr_ring_append(r, "f-00001", "x\ry\x1b[2J\n", 8);
    size_t nl;
    char *got = read_plain(r, 0, 0, NULL, &nl);
    assert_int_equal(nl, 1);
    assert_string_equal(got, "f-00001: x\\ry\\x1b[2J\n");
    free(got);
    lr_ring_free(r);
}

/* lr_ring_read_json: one valid JSON object per line with the tags, the
 * line exactly as written (invalid UTF-8 as U+FFFD), nanosecond times. */
static void test_json_lines(void **state)
{
    (void)state;
    lr_ring_t *r = lr_ring_new(1 << 20);
    lr_tags_t t = {"0123abcd", "4bf92f3577b34da6a3ce929d0e0e4736", LR_STDERR};
    const char *line = "say \"hi\"\t\x1b[2J \xff end\n";
    lr_ring_append_tagged(r, "f-00001", &t, line, strlen(line));
    lr_tags_t w = {"0123abcd", NULL, LR_WASMFN};
    lr_ring_append_tagged(r, "f-00001", &w, "wasmfn: trap", 12);
    lr_ring_append(r, "f-00002", "plain", 5);
    uint64_t next;
    size_t len;
    char *out = lr_ring_read_json(r, "f", 0, 0, &next, &len);
    assert_non_null(out);
    assert_int_equal(next, 3);
    assert_int_equal(len, strlen(out));
    char *save, *l1 = strtok_r(out, "\n", &save), *l2 = strtok_r(NULL, "\n", &save),
                *l3 = strtok_r(NULL, "\n", &save);
    assert_non_null(l3);
    assert_null(strtok_r(NULL, "\n", &save));
    cJSON *j = cJSON_Parse(l1);
    assert_non_null(j);
    const char *time = cJSON_GetObjectItem(j, "time")->valuestring;
    assert_int_equal(strlen(time), 30); /* 2024-05-01T12:00:00.123456789Z */
    assert_true(time[19] == '.' && time[29] == 'Z');
    assert_string_equal(cJSON_GetObjectItem(j, "function")->valuestring, "f");
    assert_string_equal(cJSON_GetObjectItem(j, "revision")->valuestring, "f-00001");
    assert_string_equal(cJSON_GetObjectItem(j, "invocation_id")->valuestring, "0123abcd");
    assert_string_equal(cJSON_GetObjectItem(j, "trace_id")->valuestring,
                        "4bf92f3577b34da6a3ce929d0e0e4736");
    assert_string_equal(cJSON_GetObjectItem(j, "stream")->valuestring, "stderr");
    assert_string_equal(cJSON_GetObjectItem(j, "line")->valuestring,
                        "say \"hi\"\t\x1b[2J \xef\xbf\xbd end");
    cJSON_Delete(j);
    j = cJSON_Parse(l2);
    assert_non_null(j);
    assert_true(cJSON_IsNull(cJSON_GetObjectItem(j, "trace_id")));
    assert_string_equal(cJSON_GetObjectItem(j, "stream")->valuestring, "wasmfn");
    cJSON_Delete(j);
    j = cJSON_Parse(l3);
    assert_non_null(j);
    assert_true(cJSON_IsNull(cJSON_GetObjectItem(j, "invocation_id")));
    assert_string_equal(cJSON_GetObjectItem(j, "revision")->valuestring, "f-00002");
    cJSON_Delete(j);
    free(out);
    /* The text form is unchanged by tags. */
    out = lr_ring_read(r, 0, 1, NULL, &len);
    assert_non_null(strstr(out, " f-00002: plain\n"));
    free(out);
    lr_ring_free(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_order_and_splitting),
        cmocka_unit_test(test_partial_lines),
        cmocka_unit_test(test_bounded),
        cmocka_unit_test(test_long_line_cut),
        cmocka_unit_test(test_seq_reads),
        cmocka_unit_test(test_follow_no_loss_no_repeat),
        cmocka_unit_test(test_threads_smoke),
        cmocka_unit_test(test_escape),
        cmocka_unit_test(test_json_lines),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
