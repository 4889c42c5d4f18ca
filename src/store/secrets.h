/*
 * secrets.h — Secrets and ConfigMaps (Kubernetes v1 shapes) in wasmfn.db,
 * their values encrypted at rest. Prefix: st_secret_. docs/secrets.md.
 *
 * An object is a kind ("Secret" or "ConfigMap"), a name and a map of keys
 * to byte values. Every change stores a new version: a number unique over
 * all objects and never reused, which revisions record in their env
 * references (store.h, st_env_ref_t), so a revision keeps the values it
 * was made with while a newer revision gets the new ones. Versions no
 * revision refers to are pruned (st_secret_prune).
 *
 * The data of each version is sealed with XChaCha20-Poly1305 (libsodium)
 * under DATA/secrets.key (32 random bytes, mode 0600, made at first use;
 * refused unless it is a regular file owned by this user and readable by
 * it alone), with the kind and name as associated data, so a sealed blob
 * cannot be moved to another object. Key names are stored in clear (they
 * are listed; Kubernetes shows them too); values never are, and no
 * function here puts a value into a message.
 *
 * Threads: the loop thread (the registry's connection), like store.h.
 */
#ifndef WASMFN_STORE_SECRETS_H
#define WASMFN_STORE_SECRETS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store/store.h"

typedef struct st_secrets st_secrets_t;

/* One key and its value (value_len bytes, any bytes). */
typedef struct st_secret_pair {
    const char *key;
    const uint8_t *value;
    size_t value_len;
} st_secret_pair_t;

/* Bounds (Kubernetes': a Secret's data is at most 1 MiB). */
#define ST_SECRET_MAX_BYTES (1u << 20)
#define ST_SECRET_KEY_MAX 253u

/* Opens the objects of store s, loading (or making) DATA/secrets.key.
 * NULL with a message naming the fault. s must outlive it. */
st_secrets_t *st_secrets_open(st_store_t *s, char *err, size_t errlen);
void st_secrets_close(st_secrets_t *x);

/* True when key is a valid key name: 1-253 of [-._a-zA-Z0-9]. */
bool st_secret_key_ok(const char *key);

/* Stores a new version of kind/name holding pairs (keys distinct and
 * valid; the caller checks). *version gets its number. Inside the
 * caller's transaction when there is one. ST_OK or ST_ERR. */
int st_secret_put(st_secrets_t *x, const char *kind, const char *name,
                  const st_secret_pair_t *pairs, uint32_t n, int64_t now, int64_t *version,
                  char *err, size_t errlen);
/* The newest version of kind/name: ST_OK, ST_NOT_FOUND or ST_ERR. */
int st_secret_current(st_secrets_t *x, const char *kind, const char *name, int64_t *version,
                      char *err, size_t errlen);
/* The value of key in version `version` of kind/name, decrypted into a
 * malloc'd buffer with a NUL after it (free with st_secret_value_free,
 * which wipes it). ST_OK, ST_NOT_FOUND (no such version or key) or
 * ST_ERR (also when the sealed data does not open: a wrong key file). */
int st_secret_value(st_secrets_t *x, const char *kind, const char *name, int64_t version,
                    const char *key, uint8_t **value, size_t *len, char *err, size_t errlen);
void st_secret_value_free(uint8_t *value, size_t len);

/* Calls fn for the newest version of every object of kind, by name, with
 * its key names ('\n'-separated). */
typedef void (*st_secret_fn)(void *ud, const char *name, int64_t version, int64_t created,
                             const char *keys);
int st_secret_list(st_secrets_t *x, const char *kind, st_secret_fn fn, void *ud, char *err,
                   size_t errlen);
/* Calls fn for every revision whose env refers to kind/name. */
typedef void (*st_secret_user_fn)(void *ud, const char *function, const char *revision);
int st_secret_users(st_secrets_t *x, const char *kind, const char *name, st_secret_user_fn fn,
                    void *ud, char *err, size_t errlen);
/* Deletes every version of kind/name: ST_OK or ST_NOT_FOUND. */
int st_secret_delete(st_secrets_t *x, const char *kind, const char *name, char *err,
                     size_t errlen);
/* Deletes the versions of kind/name older than the newest that no
 * revision refers to. */
int st_secret_prune(st_secrets_t *x, const char *kind, const char *name, char *err,
                    size_t errlen);

#endif
