/*
 * wasmfn_kv.h — the key-value host API for C guests (docs/host-kv.md).
 * Copy it next to your function and build with clang --target=wasm32-wasi;
 * the functions are imported from the module "wasmfn_kv", which wasmfn
 * provides to revisions granted a store by the annotation
 * wasmfn.dev/kv-stores (or `wasmfn deploy --kv NAME`).
 *
 * Every function returns one of the WASMFN_KV_* codes below. Sizes are
 * size_t (32-bit in wasm32), lengths in bytes; keys are 1 to 1024 bytes
 * (the daemon's --kv-max-key-bytes) without '\n', values up to 1 MiB
 * (--kv-max-value-bytes).
 *
 *   uint32_t st;
 *   if (wasmfn_kv_open("counters", 8, &st) == WASMFN_KV_OK) {
 *       int64_t n;
 *       wasmfn_kv_incr(st, "hits", 4, 1, &n);
 *   }
 */
#ifndef WASMFN_KV_H
#define WASMFN_KV_H

#include <stddef.h>
#include <stdint.h>

enum {
    WASMFN_KV_OK = 0,
    WASMFN_KV_NO_STORE = 1,   /* no such store, or not granted to this function */
    WASMFN_KV_NOT_FOUND = 2,  /* no such key (or it expired) */
    WASMFN_KV_TOO_SMALL = 3,  /* buffer too small: *written holds the size needed */
    WASMFN_KV_LIMIT = 4,      /* key, value or store over its limit */
    WASMFN_KV_INVALID = 5,    /* bad argument (pointer, handle, empty key, not a number) */
    WASMFN_KV_STORAGE = 6,    /* the storage failed */
};

#define WASMFN_KV_IMPORT(name) __attribute__((import_module("wasmfn_kv"), import_name(name)))

/* Opens store `name` (as granted) and writes its handle to *store. */
WASMFN_KV_IMPORT("open")
uint32_t wasmfn_kv_open(const char *name, size_t name_len, uint32_t *store);
/* Copies the value of key into buf and its length to *written; when it
 * does not fit, nothing is copied, *written holds its length and the result
 * is WASMFN_KV_TOO_SMALL. */
WASMFN_KV_IMPORT("get")
uint32_t wasmfn_kv_get(uint32_t store, const char *key, size_t key_len, uint8_t *buf,
                       size_t buf_len, size_t *written);
/* Creates or replaces key; ttl_ms 0 = no expiry, else it is gone after
 * that many milliseconds. Durable once it returns WASMFN_KV_OK. */
WASMFN_KV_IMPORT("set")
uint32_t wasmfn_kv_set(uint32_t store, const char *key, size_t key_len, const uint8_t *val,
                       size_t val_len, uint64_t ttl_ms);
/* WASMFN_KV_NOT_FOUND when there was no such key. */
WASMFN_KV_IMPORT("delete")
uint32_t wasmfn_kv_delete(uint32_t store, const char *key, size_t key_len);
/* Adds delta to the decimal value of key (a missing key counts as 0),
 * atomically, and writes the sum to *result. WASMFN_KV_INVALID when the
 * value is not a decimal integer or the sum overflows. */
WASMFN_KV_IMPORT("incr")
uint32_t wasmfn_kv_incr(uint32_t store, const char *key, size_t key_len, int64_t delta,
                        int64_t *result);
/* The keys starting with prefix, separated by '\n', into buf; *written
 * and WASMFN_KV_TOO_SMALL as for get. */
WASMFN_KV_IMPORT("keys")
uint32_t wasmfn_kv_keys(uint32_t store, const char *prefix, size_t prefix_len, uint8_t *buf,
                        size_t buf_len, size_t *written);

#endif
