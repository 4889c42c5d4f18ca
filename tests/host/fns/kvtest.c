/*
 * kvtest.c — drives every wasmfn_kv call from the query string, for
 * tests/host/kv_tests.sh. The first line of the answer is "rc=N" (the
 * call's result code), then what the call produced:
 *
 *   ?op=open&store=S                    open only
 *   ?op=set&store=S&key=K&ttl=MS        the request body is the value
 *   ?op=get&store=S&key=K&buf=N         "len=L" and the value (buffer of N bytes)
 *   ?op=delete&store=S&key=K
 *   ?op=incr&store=S&key=K&delta=D      "value=V"
 *   ?op=keys&store=S&prefix=P&buf=N     "len=L" and the keys
 *   ?op=badptr&store=S                  hostile pointers: one line per call
 *   ?op=badhandle                       a handle open never gave
 *
 * Values in the query are taken literally (no percent-decoding): the
 * tests use plain names.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../../examples/wasmfn_kv.h"

static char qbuf[4096];

/* The value of query parameter name, or def. */
static const char *param(const char *name, const char *def)
{
    const char *q = getenv("QUERY_STRING");
    size_t n = strlen(name);
    while (q && *q) {
        const char *amp = strchr(q, '&');
        size_t len = amp ? (size_t)(amp - q) : strlen(q);
        if (len > n && strncmp(q, name, n) == 0 && q[n] == '=') {
            static char vals[8][512];
            static int next;
            char *v = vals[next++ % 8];
            size_t vl = len - n - 1 < 511 ? len - n - 1 : 511;
            memcpy(v, q + n + 1, vl);
            v[vl] = '\0';
            return v;
        }
        q = amp ? amp + 1 : NULL;
    }
    return def;
}

int main(void)
{
    const char *op = param("op", "");
    const char *sname = param("store", "kvtest");
    const char *key = param("key", "k");
    uint32_t st = 0, rc;
    printf("Content-Type: text/plain\n\n");
    if (strcmp(op, "badhandle") == 0) {
        int64_t v;
        rc = wasmfn_kv_incr(7, "k", 1, 1, &v);
        printf("rc=%u\n", (unsigned)rc);
        return 0;
    }
    rc = wasmfn_kv_open(sname, strlen(sname), &st);
    if (rc != WASMFN_KV_OK || strcmp(op, "open") == 0) {
        printf("rc=%u\n", (unsigned)rc);
        return 0;
    }
    if (strcmp(op, "set") == 0) {
        size_t n = fread(qbuf, 1, sizeof qbuf, stdin);
        /* A larger value than the body: ?size=N sets N bytes of 'x'. */
        size_t size = (size_t)strtoull(param("size", "0"), NULL, 10);
        uint8_t *val = (uint8_t *)qbuf;
        if (size) {
            val = malloc(size);
            if (!val) return 1;
            memset(val, 'x', size);
            n = size;
        }
        rc = wasmfn_kv_set(st, key, strlen(key), val, n, strtoull(param("ttl", "0"), NULL, 10));
        printf("rc=%u\n", (unsigned)rc);
    } else if (strcmp(op, "get") == 0 || strcmp(op, "keys") == 0) {
        size_t cap = (size_t)strtoull(param("buf", "4096"), NULL, 10), len = 0;
        uint8_t *buf = malloc(cap + 1);
        if (!buf) return 1;
        if (op[0] == 'g') {
            rc = wasmfn_kv_get(st, key, strlen(key), buf, cap, &len);
        } else {
            const char *p = param("prefix", "");
            rc = wasmfn_kv_keys(st, p, strlen(p), buf, cap, &len);
        }
        printf("rc=%u\nlen=%zu\n", (unsigned)rc, len);
        if (rc == WASMFN_KV_OK) fwrite(buf, 1, len, stdout);
    } else if (strcmp(op, "delete") == 0) {
        printf("rc=%u\n", (unsigned)wasmfn_kv_delete(st, key, strlen(key)));
    } else if (strcmp(op, "incr") == 0) {
        int64_t v = 0;
        rc = wasmfn_kv_incr(st, key, strlen(key), strtoll(param("delta", "1"), NULL, 10), &v);
        printf("rc=%u\nvalue=%" PRId64 "\n", (unsigned)rc, v);
    } else if (strcmp(op, "badptr") == 0) {
        /* Pointers past the end of linear memory, and lengths that wrap:
         * each must come back as 5 (invalid argument), never a trap. */
        uint8_t *end = (uint8_t *)(uintptr_t)(__builtin_wasm_memory_size(0) * 65536);
        size_t len;
        int64_t v;
        uint32_t h;
        printf("open=%u\n", (unsigned)wasmfn_kv_open((const char *)end - 2, 8, &h));
        printf("open_out=%u\n", (unsigned)wasmfn_kv_open(sname, strlen(sname), (uint32_t *)end));
        printf("get_key=%u\n", (unsigned)wasmfn_kv_get(st, (const char *)end - 1, 4, (uint8_t *)qbuf, 8, &len));
        printf("get_buf=%u\n", (unsigned)wasmfn_kv_get(st, "k", 1, end - 4, 8, &len));
        printf("get_written=%u\n", (unsigned)wasmfn_kv_get(st, "k", 1, (uint8_t *)qbuf, 8, (size_t *)(end - 2)));
        printf("set_val=%u\n", (unsigned)wasmfn_kv_set(st, "k", 1, (const uint8_t *)qbuf, SIZE_MAX, 0));
        printf("incr_out=%u\n", (unsigned)wasmfn_kv_incr(st, "k", 1, 1, (int64_t *)(end - 4)));
        printf("keys_buf=%u\n", (unsigned)wasmfn_kv_keys(st, "", 0, end, 1, &len));
        printf("empty_key=%u\n", (unsigned)wasmfn_kv_incr(st, "", 0, 1, &v));
        printf("newline_key=%u\n", (unsigned)wasmfn_kv_set(st, "a\nb", 3, (const uint8_t *)"v", 1, 0));
    } else {
        printf("unknown op '%s'\n", op);
    }
    return 0;
}
