/*
 * secrets.c — Secrets and ConfigMaps, sealed at rest (secrets.h).
 *
 * One row per version in wasmfn.db's config_objects; the row id is the
 * version (AUTOINCREMENT: never reused, even after a delete, so a
 * revision's reference can never come to name another object's data).
 * The data column is nonce (24 bytes) || XChaCha20-Poly1305 of the
 * serialised map, whose plaintext is, per key: u32 key length, key, u32
 * value length, value (little-endian). Plaintext buffers are wiped
 * (sodium_memzero) before they are freed; SQLite never sees them.
 */
#define _GNU_SOURCE
#include "store/secrets.h"

#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store/internal.h"

#define KEY_BYTES crypto_aead_xchacha20poly1305_ietf_KEYBYTES
#define NONCE_BYTES crypto_aead_xchacha20poly1305_ietf_NPUBBYTES
#define TAG_BYTES crypto_aead_xchacha20poly1305_ietf_ABYTES

static const char SECRETS_SCHEMA[] =
    "CREATE TABLE IF NOT EXISTS config_objects ("
    "  version INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  kind TEXT NOT NULL,"
    "  name TEXT NOT NULL,"
    "  created INTEGER NOT NULL,"
    "  keys TEXT NOT NULL,"
    "  data BLOB NOT NULL"
    ");"
    "CREATE INDEX IF NOT EXISTS config_objects_name ON config_objects (kind, name, version);";

struct st_secrets {
    st_store_t *st;
    uint8_t key[KEY_BYTES];
};

static int fail_db(st_secrets_t *x, const char *what, char *err, size_t errlen)
{
    st_seterr(err, errlen, "%s/wasmfn.db: %s: %s", x->st->dir, what, sqlite3_errmsg(x->st->db));
    return ST_ERR;
}

/* Reads DATA/secrets.key, or makes it (temporary file, fsync, rename,
 * fsync of the directory: a crash leaves the old state or the whole key). */
static int key_load(const char *dir, uint8_t key[KEY_BYTES], char *err, size_t errlen)
{
    char path[4200], tmp[4200];
    snprintf(path, sizeof path, "%s/secrets.key", dir);
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0 && errno == ENOENT) {
        snprintf(tmp, sizeof tmp, "%s/secrets.key.XXXXXX", dir);
        int t = mkstemp(tmp); /* mode 0600 */
        if (t < 0) {
            st_seterr(err, errlen, "%s: %s", tmp, strerror(errno));
            return ST_ERR;
        }
        uint8_t k[KEY_BYTES];
        randombytes_buf(k, sizeof k);
        bool ok = write(t, k, sizeof k) == (ssize_t)sizeof k && fsync(t) == 0;
        sodium_memzero(k, sizeof k);
        close(t);
        if (!ok || rename(tmp, path) != 0) {
            st_seterr(err, errlen, "%s: %s", path, strerror(errno));
            unlink(tmp);
            return ST_ERR;
        }
        int d = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (d >= 0) fsync(d), close(d);
        fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    }
    if (fd < 0) {
        st_seterr(err, errlen, "%s: %s", path, strerror(errno));
        return ST_ERR;
    }
    struct stat sb;
    int rc = ST_ERR;
    if (fstat(fd, &sb) != 0) {
        st_seterr(err, errlen, "%s: %s", path, strerror(errno));
    } else if (!S_ISREG(sb.st_mode) || sb.st_uid != geteuid() || (sb.st_mode & 077) != 0) {
        st_seterr(err, errlen,
                  "%s: must be a regular file owned by uid %u with mode 0600 (it seals secrets)",
                  path, (unsigned)geteuid());
    } else if (sb.st_size != KEY_BYTES || read(fd, key, KEY_BYTES) != KEY_BYTES) {
        st_seterr(err, errlen, "%s: must hold exactly %u bytes", path, (unsigned)KEY_BYTES);
    } else {
        rc = ST_OK;
    }
    close(fd);
    return rc;
}

st_secrets_t *st_secrets_open(st_store_t *s, char *err, size_t errlen)
{
    if (sodium_init() < 0) {
        st_seterr(err, errlen, "libsodium cannot start");
        return NULL;
    }
    st_secrets_t *x = sodium_malloc(sizeof *x); /* guarded, never swapped out */
    if (!x) {
        st_seterr(err, errlen, "out of memory");
        return NULL;
    }
    x->st = s;
    char what[600];
    snprintf(what, sizeof what, "%s/wasmfn.db", s->dir);
    if (key_load(s->dir, x->key, err, errlen) != ST_OK ||
        st_sqlite_exec(s->db, what, SECRETS_SCHEMA, err, errlen) != 0) {
        sodium_free(x);
        return NULL;
    }
    return x;
}

void st_secrets_close(st_secrets_t *x)
{
    if (x) sodium_free(x); /* wipes the key */
}

bool st_secret_key_ok(const char *key)
{
    size_t n = strlen(key);
    if (n == 0 || n > ST_SECRET_KEY_MAX) return false;
    for (size_t i = 0; i < n; i++) {
        char c = key[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_' || c == '.'))
            return false;
    }
    return true;
}

/* The associated data: kind, a NUL, name. */
static size_t ad_of(const char *kind, const char *name, char *ad, size_t adlen)
{
    int n = snprintf(ad, adlen, "%s%c%s", kind, 0, name);
    return n < 0 ? 0 : (size_t)n < adlen ? (size_t)n : adlen - 1;
}

static void put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

int st_secret_put(st_secrets_t *x, const char *kind, const char *name,
                  const st_secret_pair_t *pairs, uint32_t n, int64_t now, int64_t *version,
                  char *err, size_t errlen)
{
    size_t plen = 0, keys_len = 1;
    for (uint32_t i = 0; i < n; i++) {
        plen += 8 + strlen(pairs[i].key) + pairs[i].value_len;
        keys_len += strlen(pairs[i].key) + 1;
    }
    if (plen > ST_SECRET_MAX_BYTES + 8ull * n + ST_SECRET_KEY_MAX * (uint64_t)n) {
        st_seterr(err, errlen, "%s %s: its data is over %u bytes", kind, name, ST_SECRET_MAX_BYTES);
        return ST_ERR;
    }
    uint8_t *plain = sodium_malloc(plen ? plen : 1);
    uint8_t *sealed = malloc(NONCE_BYTES + plen + TAG_BYTES);
    char *keys = malloc(keys_len);
    int rc = ST_ERR;
    if (!plain || !sealed || !keys) {
        st_seterr(err, errlen, "out of memory");
        goto out;
    }
    size_t o = 0, ko = 0;
    for (uint32_t i = 0; i < n; i++) {
        size_t kl = strlen(pairs[i].key);
        put32(plain + o, (uint32_t)kl);
        memcpy(plain + o + 4, pairs[i].key, kl);
        o += 4 + kl;
        put32(plain + o, (uint32_t)pairs[i].value_len);
        if (pairs[i].value_len) memcpy(plain + o + 4, pairs[i].value, pairs[i].value_len);
        o += 4 + pairs[i].value_len;
        memcpy(keys + ko, pairs[i].key, kl);
        ko += kl;
        keys[ko++] = '\n';
    }
    if (ko) ko--; /* no newline after the last key */
    keys[ko] = '\0';
    randombytes_buf(sealed, NONCE_BYTES);
    char ad[600];
    size_t adl = ad_of(kind, name, ad, sizeof ad);
    unsigned long long clen = 0;
    crypto_aead_xchacha20poly1305_ietf_encrypt(sealed + NONCE_BYTES, &clen, plain, plen,
                                               (const uint8_t *)ad, adl, NULL, sealed, x->key);
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(x->st->db,
                           "INSERT INTO config_objects (kind, name, created, keys, data)"
                           " VALUES (?, ?, ?, ?, ?)",
                           -1, &st, NULL) != SQLITE_OK) {
        fail_db(x, "storing a secret", err, errlen);
        goto out;
    }
    sqlite3_bind_text(st, 1, kind, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, name, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, now);
    sqlite3_bind_text(st, 4, keys, -1, SQLITE_STATIC);
    sqlite3_bind_blob64(st, 5, sealed, NONCE_BYTES + clen, SQLITE_STATIC);
    if (sqlite3_step(st) != SQLITE_DONE) {
        fail_db(x, "storing a secret", err, errlen);
    } else {
        *version = sqlite3_last_insert_rowid(x->st->db);
        rc = ST_OK;
    }
    sqlite3_finalize(st);
out:
    if (plain) sodium_free(plain);
    free(sealed);
    free(keys);
    return rc;
}

int st_secret_current(st_secrets_t *x, const char *kind, const char *name, int64_t *version,
                      char *err, size_t errlen)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(x->st->db,
                           "SELECT max(version) FROM config_objects WHERE kind = ? AND name = ?",
                           -1, &st, NULL) != SQLITE_OK)
        return fail_db(x, "reading secrets", err, errlen);
    sqlite3_bind_text(st, 1, kind, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, name, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st), res;
    if (rc == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL) {
        *version = sqlite3_column_int64(st, 0);
        res = ST_OK;
    } else if (rc == SQLITE_ROW || rc == SQLITE_DONE) {
        res = ST_NOT_FOUND;
    } else {
        res = fail_db(x, "reading secrets", err, errlen);
    }
    sqlite3_finalize(st);
    return res;
}

void st_secret_value_free(uint8_t *value, size_t len)
{
    if (!value) return;
    sodium_memzero(value, len + 1);
    free(value);
}

int st_secret_value(st_secrets_t *x, const char *kind, const char *name, int64_t version,
                    const char *key, uint8_t **value, size_t *len, char *err, size_t errlen)
{
    *value = NULL;
    *len = 0;
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(x->st->db,
                           "SELECT data FROM config_objects WHERE version = ? AND kind = ? AND name = ?",
                           -1, &st, NULL) != SQLITE_OK)
        return fail_db(x, "reading secrets", err, errlen);
    sqlite3_bind_int64(st, 1, version);
    sqlite3_bind_text(st, 2, kind, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, name, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st), res = ST_NOT_FOUND;
    if (rc != SQLITE_ROW) {
        res = rc == SQLITE_DONE ? ST_NOT_FOUND : fail_db(x, "reading secrets", err, errlen);
        sqlite3_finalize(st);
        return res;
    }
    const uint8_t *sealed = sqlite3_column_blob(st, 0);
    size_t slen = (size_t)sqlite3_column_bytes(st, 0);
    if (!sealed || slen < NONCE_BYTES + TAG_BYTES) {
        sqlite3_finalize(st);
        st_seterr(err, errlen, "%s %s: its stored data is damaged", kind, name);
        return ST_ERR;
    }
    size_t cap = slen - NONCE_BYTES - TAG_BYTES;
    uint8_t *plain = sodium_malloc(cap ? cap : 1);
    char ad[600];
    size_t adl = ad_of(kind, name, ad, sizeof ad);
    unsigned long long plen = 0;
    if (!plain) {
        st_seterr(err, errlen, "out of memory");
        res = ST_ERR;
    } else if (crypto_aead_xchacha20poly1305_ietf_decrypt(plain, &plen, NULL, sealed + NONCE_BYTES,
                                                          slen - NONCE_BYTES, (const uint8_t *)ad,
                                                          adl, sealed, x->key) != 0) {
        st_seterr(err, errlen, "%s %s: its stored data does not open with secrets.key (damaged, "
                               "or the key file was replaced)", kind, name);
        res = ST_ERR;
    } else {
        size_t kl = strlen(key);
        for (size_t o = 0; o + 4 <= plen;) {
            uint32_t n = get32(plain + o);
            if (n > plen - o - 4) break;
            const uint8_t *k = plain + o + 4;
            o += 4 + n;
            if (o + 4 > plen) break;
            uint32_t vl = get32(plain + o);
            if (vl > plen - o - 4) break;
            if (n == kl && memcmp(k, key, kl) == 0) {
                uint8_t *v = malloc((size_t)vl + 1);
                if (!v) {
                    st_seterr(err, errlen, "out of memory");
                    res = ST_ERR;
                    break;
                }
                if (vl) memcpy(v, plain + o + 4, vl);
                v[vl] = 0;
                *value = v;
                *len = vl;
                res = ST_OK;
                break;
            }
            o += 4 + vl;
        }
    }
    if (plain) sodium_free(plain);
    sqlite3_finalize(st);
    return res;
}

int st_secret_list(st_secrets_t *x, const char *kind, st_secret_fn fn, void *ud, char *err,
                   size_t errlen)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(x->st->db,
                           "SELECT name, version, created, keys FROM config_objects o WHERE kind = ?1"
                           " AND version = (SELECT max(version) FROM config_objects"
                           "                WHERE kind = ?1 AND name = o.name) ORDER BY name",
                           -1, &st, NULL) != SQLITE_OK)
        return fail_db(x, "listing secrets", err, errlen);
    sqlite3_bind_text(st, 1, kind, -1, SQLITE_STATIC);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW)
        fn(ud, (const char *)sqlite3_column_text(st, 0), sqlite3_column_int64(st, 1),
           sqlite3_column_int64(st, 2), (const char *)sqlite3_column_text(st, 3));
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? ST_OK : fail_db(x, "listing secrets", err, errlen);
}

int st_secret_users(st_secrets_t *x, const char *kind, const char *name, st_secret_user_fn fn,
                    void *ud, char *err, size_t errlen)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(x->st->db,
                           "SELECT DISTINCT r.function, r.name FROM revision_env_refs e"
                           " JOIN revisions r ON r.name = e.revision"
                           " WHERE e.kind = ? AND e.object = ? ORDER BY r.function, r.seq",
                           -1, &st, NULL) != SQLITE_OK)
        return fail_db(x, "reading references", err, errlen);
    sqlite3_bind_text(st, 1, kind, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, name, -1, SQLITE_STATIC);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW)
        fn(ud, (const char *)sqlite3_column_text(st, 0), (const char *)sqlite3_column_text(st, 1));
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? ST_OK : fail_db(x, "reading references", err, errlen);
}

int st_secret_delete(st_secrets_t *x, const char *kind, const char *name, char *err,
                     size_t errlen)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(x->st->db, "DELETE FROM config_objects WHERE kind = ? AND name = ?", -1,
                           &st, NULL) != SQLITE_OK)
        return fail_db(x, "deleting a secret", err, errlen);
    sqlite3_bind_text(st, 1, kind, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, name, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) return fail_db(x, "deleting a secret", err, errlen);
    return sqlite3_changes(x->st->db) > 0 ? ST_OK : ST_NOT_FOUND;
}

int st_secret_prune(st_secrets_t *x, const char *kind, const char *name, char *err,
                    size_t errlen)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(x->st->db,
                           "DELETE FROM config_objects WHERE kind = ?1 AND name = ?2"
                           " AND version < (SELECT max(version) FROM config_objects"
                           "                WHERE kind = ?1 AND name = ?2)"
                           " AND version NOT IN (SELECT version FROM revision_env_refs"
                           "                     WHERE kind = ?1 AND object = ?2)",
                           -1, &st, NULL) != SQLITE_OK)
        return fail_db(x, "pruning a secret", err, errlen);
    sqlite3_bind_text(st, 1, kind, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, name, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? ST_OK : fail_db(x, "pruning a secret", err, errlen);
}
