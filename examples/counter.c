/*
 * counter.c — a function with state: every POST increments a counter in
 * the key-value store "counters" (wasmfn_kv.h) and answers its new value;
 * a GET answers the value without changing it. The counter's name is the
 * path after the function's route (default "hits"), so /fn/counter/a and
 * /fn/counter/b count separately. counter.yaml grants the store.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wasmfn_kv.h"

static int fail(const char *what, uint32_t rc)
{
    printf("Status: 500 Internal Server Error\nContent-Type: text/plain\n\n%s: error %u\n", what,
           (unsigned)rc);
    return 0;
}

int main(void)
{
    const char *method = getenv("REQUEST_METHOD");
    const char *key = getenv("PATH_INFO");
    while (key && *key == '/') key++;
    if (!key || !*key) key = "hits";

    uint32_t store;
    uint32_t rc = wasmfn_kv_open("counters", 8, &store);
    if (rc != WASMFN_KV_OK) return fail("open counters", rc);

    int64_t n = 0;
    if (method && strcmp(method, "POST") == 0) {
        rc = wasmfn_kv_incr(store, key, strlen(key), 1, &n);
        if (rc != WASMFN_KV_OK) return fail("incr", rc);
    } else {
        char buf[32];
        size_t len = 0;
        rc = wasmfn_kv_get(store, key, strlen(key), (uint8_t *)buf, sizeof buf - 1, &len);
        if (rc == WASMFN_KV_OK) {
            buf[len] = '\0';
            n = strtoll(buf, NULL, 10);
        } else if (rc != WASMFN_KV_NOT_FOUND) {
            return fail("get", rc);
        }
    }
    printf("Content-Type: text/plain\n\n%" PRId64 "\n", n);
    return 0;
}
