/*
 * kv.c — the key-value stores' table in DATA/kv.db (kv.h).
 *
 * A database file of its own rather than wasmfn.db: guests write here from
 * worker threads, at request rates, while the registry's connection
 * belongs to the loop thread; two files keep the two writers from waiting
 * on each other's WAL lock. Every write is one IMMEDIATE transaction that
 * also updates the store's row in kv_usage, so the counts the limits are
 * checked against can never drift from the entries.
 */
#define _GNU_SOURCE
#include "store/kv.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/db.h"
#include "store/store.h"

static const char KV_SCHEMA[] =
    "CREATE TABLE IF NOT EXISTS kv ("
    "  store TEXT NOT NULL,"
    "  key BLOB NOT NULL,"
    "  value BLOB NOT NULL,"
    "  expires_ms INTEGER NOT NULL DEFAULT 0,"
    "  PRIMARY KEY (store, key)"
    ") WITHOUT ROWID;"
    "CREATE INDEX IF NOT EXISTS kv_expiry ON kv (expires_ms) WHERE expires_ms > 0;"
    "CREATE TABLE IF NOT EXISTS kv_usage ("
    "  store TEXT PRIMARY KEY,"
    "  keys INTEGER NOT NULL,"
    "  bytes INTEGER NOT NULL"
    ");";

enum {
    Q_GET, Q_OLD, Q_USAGE, Q_USAGE_ADD, Q_USAGE_GC, Q_PUT, Q_DEL, Q_KEYS, Q_STORES,
    Q_EXPIRED, Q_EXPIRED_STORE, NQ
};

static const char *const SQL[NQ] = {
    [Q_GET] = "SELECT value FROM kv WHERE store = ?1 AND key = ?2 "
              "AND (expires_ms = 0 OR expires_ms > ?3)",
    [Q_OLD] = "SELECT length(key) + length(value), expires_ms, value FROM kv "
              "WHERE store = ?1 AND key = ?2",
    [Q_USAGE] = "SELECT keys, bytes FROM kv_usage WHERE store = ?1",
    [Q_USAGE_ADD] = "INSERT INTO kv_usage (store, keys, bytes) VALUES (?1, ?2, ?3) "
                    "ON CONFLICT (store) DO UPDATE SET keys = keys + excluded.keys, "
                    "bytes = bytes + excluded.bytes",
    [Q_USAGE_GC] = "DELETE FROM kv_usage WHERE store = ?1 AND keys <= 0",
    [Q_PUT] = "INSERT INTO kv (store, key, value, expires_ms) VALUES (?1, ?2, ?3, ?4) "
              "ON CONFLICT (store, key) DO UPDATE SET value = excluded.value, "
              "expires_ms = excluded.expires_ms",
    [Q_DEL] = "DELETE FROM kv WHERE store = ?1 AND key = ?2",
    [Q_KEYS] = "SELECT key FROM kv WHERE store = ?1 AND key >= ?2 AND (?3 IS NULL OR key < ?3) "
               "AND (expires_ms = 0 OR expires_ms > ?4) ORDER BY key",
    [Q_STORES] = "SELECT store, keys, bytes FROM kv_usage WHERE keys > 0 ORDER BY store",
    [Q_EXPIRED] = "SELECT store, key, length(key) + length(value) FROM kv "
                  "WHERE expires_ms > 0 AND expires_ms <= ?1 LIMIT ?2",
    [Q_EXPIRED_STORE] = "SELECT store, key, length(key) + length(value) FROM kv "
                        "WHERE store = ?3 AND expires_ms > 0 AND expires_ms <= ?1 LIMIT ?2",
};

struct st_kv {
    pthread_mutex_t mu; /* guards db and every statement */
    sqlite3 *db;
    sqlite3_stmt *q[NQ];
    char *path;         /* for messages */
};

static int db_fail(st_kv_t *kv, const char *what, char *err, size_t errlen)
{
    st_seterr(err, errlen, "%s: %s: %s", kv->path, what, sqlite3_errmsg(kv->db));
    return ST_ERR;
}

/* An empty byte string must be bound as a zero-length blob: binding
 * (NULL, 0) with sqlite3_bind_blob would bind SQL NULL. */
static void bind_bytes(sqlite3_stmt *st, int i, const uint8_t *p, size_t n)
{
    if (n == 0) sqlite3_bind_zeroblob(st, i, 0);
    else sqlite3_bind_blob64(st, i, p, n, SQLITE_STATIC);
}

static sqlite3_stmt *q_start(st_kv_t *kv, int q)
{
    sqlite3_stmt *st = kv->q[q];
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return st;
}

st_kv_t *st_kv_open(const char *data_dir, char *err, size_t errlen)
{
    st_kv_t *kv = calloc(1, sizeof *kv);
    if (!kv || asprintf(&kv->path, "%s/kv.db", data_dir) < 0) {
        free(kv);
        st_seterr(err, errlen, "out of memory");
        return NULL;
    }
    pthread_mutex_init(&kv->mu, NULL);
    if (st_sqlite_open(kv->path, "key-value database", &kv->db, err, errlen) != 0) goto fail;
    if (st_sqlite_exec(kv->db, kv->path, KV_SCHEMA, err, errlen) != 0) goto fail;
    for (int i = 0; i < NQ; i++)
        if (sqlite3_prepare_v2(kv->db, SQL[i], -1, &kv->q[i], NULL) != SQLITE_OK) {
            db_fail(kv, "prepare", err, errlen);
            goto fail;
        }
    return kv;
fail:
    st_kv_close(kv);
    return NULL;
}

void st_kv_close(st_kv_t *kv)
{
    if (!kv) return;
    for (int i = 0; i < NQ; i++) sqlite3_finalize(kv->q[i]);
    if (kv->db) sqlite3_close(kv->db);
    pthread_mutex_destroy(&kv->mu);
    free(kv->path);
    free(kv);
}

/* ---- transactions and usage (mu held) ------------------------------------ */

static int tx_begin(st_kv_t *kv, char *err, size_t errlen)
{
    if (sqlite3_exec(kv->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
        return db_fail(kv, "begin", err, errlen);
    return ST_OK;
}

static int tx_commit(st_kv_t *kv, char *err, size_t errlen)
{
    if (sqlite3_exec(kv->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
        db_fail(kv, "commit", err, errlen);
        sqlite3_exec(kv->db, "ROLLBACK", NULL, NULL, NULL);
        return ST_ERR;
    }
    return ST_OK;
}

static void tx_rollback(st_kv_t *kv) { sqlite3_exec(kv->db, "ROLLBACK", NULL, NULL, NULL); }

static int usage_add(st_kv_t *kv, const char *store, int64_t keys, int64_t bytes, char *err,
                     size_t errlen)
{
    sqlite3_stmt *st = q_start(kv, Q_USAGE_ADD);
    sqlite3_bind_text(st, 1, store, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, keys);
    sqlite3_bind_int64(st, 3, bytes);
    if (sqlite3_step(st) != SQLITE_DONE) return db_fail(kv, "usage", err, errlen);
    if (keys < 0) {
        st = q_start(kv, Q_USAGE_GC);
        sqlite3_bind_text(st, 1, store, -1, SQLITE_STATIC);
        if (sqlite3_step(st) != SQLITE_DONE) return db_fail(kv, "usage", err, errlen);
    }
    return ST_OK;
}

static int usage_get(st_kv_t *kv, const char *store, uint64_t *keys, uint64_t *bytes, char *err,
                     size_t errlen)
{
    sqlite3_stmt *st = q_start(kv, Q_USAGE);
    sqlite3_bind_text(st, 1, store, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    *keys = *bytes = 0;
    if (rc == SQLITE_ROW) {
        int64_t k = sqlite3_column_int64(st, 0), b = sqlite3_column_int64(st, 1);
        *keys = k > 0 ? (uint64_t)k : 0;
        *bytes = b > 0 ? (uint64_t)b : 0;
    } else if (rc != SQLITE_DONE) {
        return db_fail(kv, "usage", err, errlen);
    }
    return ST_OK;
}

/* Deletes up to max expired rows (of one store when store is set). */
static int sweep_locked(st_kv_t *kv, const char *store, int64_t now_ms, uint32_t max,
                        uint32_t *deleted, char *err, size_t errlen)
{
    *deleted = 0;
    /* Collected first: deleting while the SELECT is open on the same
     * table is allowed by SQLite but makes the scan's result undefined. */
    typedef struct row { char *store; uint8_t *key; size_t klen; int64_t bytes; } row_t;
    row_t *rows = calloc(max ? max : 1, sizeof *rows);
    if (!rows) {
        st_seterr(err, errlen, "out of memory");
        return ST_ERR;
    }
    uint32_t n = 0;
    sqlite3_stmt *st = q_start(kv, store ? Q_EXPIRED_STORE : Q_EXPIRED);
    sqlite3_bind_int64(st, 1, now_ms);
    sqlite3_bind_int64(st, 2, max);
    if (store) sqlite3_bind_text(st, 3, store, -1, SQLITE_STATIC);
    int rc;
    while (n < max && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        row_t *r = &rows[n];
        const void *k = sqlite3_column_blob(st, 1);
        r->klen = (size_t)sqlite3_column_bytes(st, 1);
        r->store = strdup((const char *)sqlite3_column_text(st, 0));
        r->key = malloc(r->klen ? r->klen : 1);
        r->bytes = sqlite3_column_int64(st, 2);
        if (!r->store || !r->key) {
            free(r->store);
            free(r->key);
            break;
        }
        if (r->klen) memcpy(r->key, k, r->klen);
        n++;
    }
    sqlite3_reset(st);
    int res = ST_OK;
    for (uint32_t i = 0; i < n && res == ST_OK; i++) {
        st = q_start(kv, Q_DEL);
        sqlite3_bind_text(st, 1, rows[i].store, -1, SQLITE_STATIC);
        bind_bytes(st, 2, rows[i].key, rows[i].klen);
        if (sqlite3_step(st) != SQLITE_DONE) res = db_fail(kv, "sweep", err, errlen);
        else if ((res = usage_add(kv, rows[i].store, -1, -rows[i].bytes, err, errlen)) == ST_OK)
            (*deleted)++;
    }
    for (uint32_t i = 0; i < n; i++) free(rows[i].store), free(rows[i].key);
    free(rows);
    return res;
}

/* The existing row of key: *exists, its size and expiry. The value (when
 * val is given) is copied into a malloc'd *val (NUL-terminated). */
static int old_row(st_kv_t *kv, const char *store, const uint8_t *key, size_t klen, bool *exists,
                   int64_t *bytes, int64_t *expires_ms, char **val, size_t *vlen, char *err,
                   size_t errlen)
{
    sqlite3_stmt *st = q_start(kv, Q_OLD);
    sqlite3_bind_text(st, 1, store, -1, SQLITE_STATIC);
    bind_bytes(st, 2, key, klen);
    int rc = sqlite3_step(st);
    *exists = false;
    *bytes = 0;
    *expires_ms = 0;
    if (val) *val = NULL;
    if (rc == SQLITE_DONE) return ST_OK;
    if (rc != SQLITE_ROW) return db_fail(kv, "read", err, errlen);
    *exists = true;
    *bytes = sqlite3_column_int64(st, 0);
    *expires_ms = sqlite3_column_int64(st, 1);
    if (val) {
        size_t n = (size_t)sqlite3_column_bytes(st, 2);
        const void *p = sqlite3_column_blob(st, 2);
        if (!(*val = malloc(n + 1))) {
            st_seterr(err, errlen, "out of memory");
            return ST_ERR;
        }
        if (n) memcpy(*val, p, n);
        (*val)[n] = '\0';
        *vlen = n;
    }
    return ST_OK;
}

static int put_row(st_kv_t *kv, const char *store, const uint8_t *key, size_t klen,
                   const uint8_t *val, size_t vlen, int64_t expires_ms, char *err, size_t errlen)
{
    sqlite3_stmt *st = q_start(kv, Q_PUT);
    sqlite3_bind_text(st, 1, store, -1, SQLITE_STATIC);
    bind_bytes(st, 2, key, klen);
    bind_bytes(st, 3, val, vlen);
    sqlite3_bind_int64(st, 4, expires_ms);
    if (sqlite3_step(st) != SQLITE_DONE) return db_fail(kv, "write", err, errlen);
    return ST_OK;
}

/* Whether key's new entry of new_bytes (key + value) keeps store within
 * lim; fills *exists and *old_bytes for the row it replaces. Expired
 * entries count until swept, so a store that would go over first sweeps
 * its own (bounded: one write never sweeps for long) and is checked
 * again. ST_OK, ST_KV_LIMIT (err says which bound) or ST_ERR. */
static int fit(st_kv_t *kv, const char *store, const uint8_t *key, size_t klen, int64_t new_bytes,
               const st_kv_limits_t *lim, int64_t now_ms, bool *exists, int64_t *old_bytes,
               char *err, size_t errlen)
{
    for (int pass = 0;; pass++) {
        int64_t exp;
        if (old_row(kv, store, key, klen, exists, old_bytes, &exp, NULL, NULL, err, errlen) != ST_OK)
            return ST_ERR;
        if (!lim || (!lim->max_store_bytes && !lim->max_store_keys)) return ST_OK;
        uint64_t keys, bytes;
        if (usage_get(kv, store, &keys, &bytes, err, errlen) != ST_OK) return ST_ERR;
        int64_t dbytes = new_bytes - *old_bytes;
        bool over_keys = lim->max_store_keys && !*exists && keys + 1 > lim->max_store_keys;
        bool over_bytes = lim->max_store_bytes && dbytes > 0 &&
                          bytes + (uint64_t)dbytes > lim->max_store_bytes;
        if (!over_keys && !over_bytes) return ST_OK;
        uint32_t swept = 0;
        if (pass == 0 && sweep_locked(kv, store, now_ms, 10000, &swept, err, errlen) != ST_OK)
            return ST_ERR;
        if (!swept) {
            st_seterr(err, errlen, "store %s is full: over its limit of %llu %s", store,
                      (unsigned long long)(over_keys ? lim->max_store_keys : lim->max_store_bytes),
                      over_keys ? "keys" : "bytes");
            return ST_KV_LIMIT;
        }
    }
}

static bool live(int64_t expires_ms, int64_t now_ms) { return expires_ms == 0 || expires_ms > now_ms; }

/* ---- the calls ------------------------------------------------------------- */

int st_kv_get(st_kv_t *kv, const char *store, const uint8_t *key, size_t klen, int64_t now_ms,
              uint8_t *buf, size_t buflen, size_t *vlen, char *err, size_t errlen)
{
    pthread_mutex_lock(&kv->mu);
    sqlite3_stmt *st = q_start(kv, Q_GET);
    sqlite3_bind_text(st, 1, store, -1, SQLITE_STATIC);
    bind_bytes(st, 2, key, klen);
    sqlite3_bind_int64(st, 3, now_ms);
    int rc = sqlite3_step(st), res;
    if (rc == SQLITE_ROW) {
        size_t n = (size_t)sqlite3_column_bytes(st, 0);
        const void *p = sqlite3_column_blob(st, 0);
        *vlen = n;
        if (n && n <= buflen) memcpy(buf, p, n);
        res = ST_OK;
    } else if (rc == SQLITE_DONE) {
        res = ST_NOT_FOUND;
    } else {
        res = db_fail(kv, "read", err, errlen);
    }
    sqlite3_reset(st);
    pthread_mutex_unlock(&kv->mu);
    return res;
}

int st_kv_set(st_kv_t *kv, const char *store, const uint8_t *key, size_t klen,
              const uint8_t *val, size_t vlen, int64_t expires_ms,
              const st_kv_limits_t *lim, int64_t now_ms, char *err, size_t errlen)
{
    pthread_mutex_lock(&kv->mu);
    int res = tx_begin(kv, err, errlen);
    if (res != ST_OK) goto out;
    bool exists;
    int64_t old_bytes;
    int64_t nbytes = (int64_t)(klen + vlen);
    res = fit(kv, store, key, klen, nbytes, lim, now_ms, &exists, &old_bytes, err, errlen);
    if (res == ST_OK) res = put_row(kv, store, key, klen, val, vlen, expires_ms, err, errlen);
    if (res == ST_OK) res = usage_add(kv, store, exists ? 0 : 1, nbytes - old_bytes, err, errlen);
    if (res == ST_OK) res = tx_commit(kv, err, errlen);
    else tx_rollback(kv);
out:
    pthread_mutex_unlock(&kv->mu);
    return res;
}

int st_kv_delete(st_kv_t *kv, const char *store, const uint8_t *key, size_t klen, int64_t now_ms,
                 char *err, size_t errlen)
{
    pthread_mutex_lock(&kv->mu);
    int res = tx_begin(kv, err, errlen);
    if (res != ST_OK) goto out;
    bool exists;
    int64_t bytes, exp;
    res = old_row(kv, store, key, klen, &exists, &bytes, &exp, NULL, NULL, err, errlen);
    bool was_live = exists && live(exp, now_ms);
    if (res == ST_OK && exists) {
        sqlite3_stmt *st = q_start(kv, Q_DEL);
        sqlite3_bind_text(st, 1, store, -1, SQLITE_STATIC);
        bind_bytes(st, 2, key, klen);
        if (sqlite3_step(st) != SQLITE_DONE) res = db_fail(kv, "delete", err, errlen);
        if (res == ST_OK) res = usage_add(kv, store, -1, -bytes, err, errlen);
    }
    if (res == ST_OK) res = tx_commit(kv, err, errlen);
    else tx_rollback(kv);
    if (res == ST_OK && !was_live) res = ST_NOT_FOUND;
out:
    pthread_mutex_unlock(&kv->mu);
    return res;
}

/* Strict decimal int64: an optional '-', 1 to 19 digits (20 with the
 * sign), nothing else. */
static bool parse_decimal(const char *s, size_t n, int64_t *out)
{
    if (n == 0 || n > 20 || strlen(s) != n) return false;
    size_t i = s[0] == '-' ? 1 : 0;
    if (i == n) return false;
    for (size_t k = i; k < n; k++)
        if (s[k] < '0' || s[k] > '9') return false;
    errno = 0;
    char *end;
    long long v = strtoll(s, &end, 10);
    if (errno || *end) return false;
    *out = v;
    return true;
}

int st_kv_incr(st_kv_t *kv, const char *store, const uint8_t *key, size_t klen, int64_t delta,
               const st_kv_limits_t *lim, int64_t now_ms, int64_t *result, char *err,
               size_t errlen)
{
    pthread_mutex_lock(&kv->mu);
    int res = tx_begin(kv, err, errlen);
    if (res != ST_OK) goto out;
    bool exists;
    int64_t old_bytes, exp, cur = 0;
    char *val = NULL;
    size_t vlen = 0;
    res = old_row(kv, store, key, klen, &exists, &old_bytes, &exp, &val, &vlen, err, errlen);
    if (res == ST_OK && exists && live(exp, now_ms) && !parse_decimal(val, vlen, &cur)) {
        st_seterr(err, errlen, "the value is not a decimal integer");
        res = ST_KV_NOT_NUMBER;
    }
    free(val);
    if (res == ST_OK && exists && !live(exp, now_ms)) exp = 0; /* a new entry: no expiry */
    if (res == ST_OK && ((delta > 0 && cur > INT64_MAX - delta) || (delta < 0 && cur < INT64_MIN - delta))) {
        st_seterr(err, errlen, "the sum overflows a 64-bit integer");
        res = ST_KV_NOT_NUMBER;
    }
    char text[24];
    int tlen = 0;
    if (res == ST_OK) {
        cur += delta;
        tlen = snprintf(text, sizeof text, "%" PRId64, cur);
        res = fit(kv, store, key, klen, (int64_t)klen + tlen, lim, now_ms, &exists, &old_bytes,
                  err, errlen);
    }
    if (res == ST_OK)
        res = put_row(kv, store, key, klen, (const uint8_t *)text, (size_t)tlen, exp, err, errlen);
    if (res == ST_OK)
        res = usage_add(kv, store, exists ? 0 : 1, (int64_t)klen + tlen - old_bytes, err, errlen);
    if (res == ST_OK) res = tx_commit(kv, err, errlen);
    else tx_rollback(kv);
    if (res == ST_OK) *result = cur;
out:
    pthread_mutex_unlock(&kv->mu);
    return res;
}

int st_kv_keys(st_kv_t *kv, const char *store, const uint8_t *prefix, size_t plen,
               int64_t now_ms, st_kv_key_fn fn, void *ud, char *err, size_t errlen)
{
    /* The keys starting with prefix are those in [prefix, upper): upper
     * is prefix with its last byte below 0xff incremented and what
     * follows it dropped; a prefix of only 0xff bytes (or none) has no
     * upper bound. */
    uint8_t *upper = plen ? malloc(plen) : NULL;
    size_t ulen = 0;
    if (plen && !upper) {
        st_seterr(err, errlen, "out of memory");
        return ST_ERR;
    }
    if (plen) memcpy(upper, prefix, plen);
    for (size_t i = plen; i > 0; i--) {
        if (upper[i - 1] != 0xff) {
            upper[i - 1]++;
            ulen = i;
            break;
        }
    }
    pthread_mutex_lock(&kv->mu);
    sqlite3_stmt *st = q_start(kv, Q_KEYS);
    sqlite3_bind_text(st, 1, store, -1, SQLITE_STATIC);
    bind_bytes(st, 2, prefix, plen);
    if (ulen) sqlite3_bind_blob64(st, 3, upper, ulen, SQLITE_STATIC);
    else sqlite3_bind_null(st, 3);
    sqlite3_bind_int64(st, 4, now_ms);
    int rc, res = ST_OK;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const uint8_t *k = sqlite3_column_blob(st, 0);
        size_t n = (size_t)sqlite3_column_bytes(st, 0);
        if (fn(ud, k ? k : (const uint8_t *)"", n) != 0) break;
    }
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) res = db_fail(kv, "keys", err, errlen);
    sqlite3_reset(st);
    pthread_mutex_unlock(&kv->mu);
    free(upper);
    return res;
}

int st_kv_stores(st_kv_t *kv, st_kv_store_fn fn, void *ud, char *err, size_t errlen)
{
    pthread_mutex_lock(&kv->mu);
    sqlite3_stmt *st = q_start(kv, Q_STORES);
    int rc, res = ST_OK;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW)
        fn(ud, (const char *)sqlite3_column_text(st, 0), (uint64_t)sqlite3_column_int64(st, 1),
           (uint64_t)sqlite3_column_int64(st, 2));
    if (rc != SQLITE_DONE) res = db_fail(kv, "stores", err, errlen);
    sqlite3_reset(st);
    pthread_mutex_unlock(&kv->mu);
    return res;
}

int st_kv_sweep(st_kv_t *kv, int64_t now_ms, uint32_t max_rows, uint32_t *deleted, char *err,
                size_t errlen)
{
    pthread_mutex_lock(&kv->mu);
    *deleted = 0;
    int res = tx_begin(kv, err, errlen);
    if (res == ST_OK) res = sweep_locked(kv, NULL, now_ms, max_rows, deleted, err, errlen);
    if (res == ST_OK) res = tx_commit(kv, err, errlen);
    else tx_rollback(kv);
    if (res != ST_OK) *deleted = 0;
    pthread_mutex_unlock(&kv->mu);
    return res;
}
