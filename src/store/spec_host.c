/*
 * spec_host.c — the host-API parts of a revision's spec (internal.h): the
 * wasmfn_kv stores it is granted and its env references to Secrets and
 * ConfigMaps, in wasmfn.db next to revision_env. Called by registry.c
 * inside its transactions; rows go with their revision (ON DELETE
 * CASCADE).
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/internal.h"

static const char HOST_SCHEMA[] =
    "CREATE TABLE IF NOT EXISTS revision_kv_stores ("
    "  revision TEXT NOT NULL REFERENCES revisions(name) ON DELETE CASCADE,"
    "  pos INTEGER NOT NULL,"
    "  store TEXT NOT NULL,"
    "  PRIMARY KEY (revision, pos)"
    ");"
    "CREATE TABLE IF NOT EXISTS revision_env_refs ("
    "  revision TEXT NOT NULL REFERENCES revisions(name) ON DELETE CASCADE,"
    "  pos INTEGER NOT NULL,"
    "  name TEXT NOT NULL,"
    "  kind TEXT NOT NULL,"      /* 'Secret' or 'ConfigMap' */
    "  object TEXT NOT NULL,"
    "  key TEXT NOT NULL,"
    "  optional INTEGER NOT NULL,"
    "  version INTEGER NOT NULL,"
    "  PRIMARY KEY (revision, pos)"
    ");"
    "CREATE INDEX IF NOT EXISTS revision_env_refs_object ON revision_env_refs (kind, object);";

static int fail_db(st_store_t *s, const char *what, char *err, size_t errlen)
{
    st_seterr(err, errlen, "%s/wasmfn.db: %s: %s", s->dir, what, sqlite3_errmsg(s->db));
    return ST_ERR;
}

int st_spec_host_schema(st_store_t *s, char *err, size_t errlen)
{
    char what[600];
    snprintf(what, sizeof what, "%s/wasmfn.db", s->dir);
    return st_sqlite_exec(s->db, what, HOST_SCHEMA, err, errlen) == 0 ? ST_OK : ST_ERR;
}

static bool str_eq(const char *a, const char *b) { return strcmp(a ? a : "", b ? b : "") == 0; }

bool st_spec_host_equal(const st_spec_t *a, const st_spec_t *b)
{
    if (a->nkv_stores != b->nkv_stores || a->nenv_refs != b->nenv_refs) return false;
    for (uint32_t i = 0; i < a->nkv_stores; i++)
        if (!str_eq(a->kv_stores[i], b->kv_stores[i])) return false;
    for (uint32_t i = 0; i < a->nenv_refs; i++) {
        const st_env_ref_t *x = &a->env_refs[i], *y = &b->env_refs[i];
        if (!str_eq(x->name, y->name) || x->secret != y->secret || !str_eq(x->object, y->object) ||
            !str_eq(x->key, y->key) || x->optional != y->optional || x->version != y->version)
            return false;
    }
    return true;
}

int st_spec_host_copy(st_spec_t *dst, const st_spec_t *src)
{
    dst->kv_stores = NULL;
    dst->nkv_stores = 0;
    dst->env_refs = NULL;
    dst->nenv_refs = 0;
    if (src->nkv_stores) {
        if (!(dst->kv_stores = calloc(src->nkv_stores, sizeof *dst->kv_stores))) return -1;
        for (uint32_t i = 0; i < src->nkv_stores; i++) {
            if (!(dst->kv_stores[i] = strdup(src->kv_stores[i]))) return -1;
            dst->nkv_stores = i + 1;
        }
    }
    if (src->nenv_refs) {
        if (!(dst->env_refs = calloc(src->nenv_refs, sizeof *dst->env_refs))) return -1;
        for (uint32_t i = 0; i < src->nenv_refs; i++) {
            const st_env_ref_t *r = &src->env_refs[i];
            st_env_ref_t *d = &dst->env_refs[i];
            *d = *r;
            d->name = strdup(r->name);
            d->object = strdup(r->object);
            d->key = strdup(r->key);
            dst->nenv_refs = i + 1;
            if (!d->name || !d->object || !d->key) return -1;
        }
    }
    return 0;
}

void st_spec_host_free(st_spec_t *s)
{
    for (uint32_t i = 0; i < s->nkv_stores; i++) free(s->kv_stores[i]);
    free(s->kv_stores);
    for (uint32_t i = 0; i < s->nenv_refs; i++) {
        free(s->env_refs[i].name);
        free(s->env_refs[i].object);
        free(s->env_refs[i].key);
    }
    free(s->env_refs);
    s->kv_stores = NULL;
    s->nkv_stores = 0;
    s->env_refs = NULL;
    s->nenv_refs = 0;
}

static char *col(sqlite3_stmt *st, int i)
{
    const unsigned char *t = sqlite3_column_text(st, i);
    return strdup(t ? (const char *)t : "");
}

int st_spec_host_load(st_store_t *s, const char *revision, st_spec_t *spec, char *err,
                      size_t errlen)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(s->db, "SELECT store FROM revision_kv_stores WHERE revision = ? ORDER BY pos",
                           -1, &st, NULL) != SQLITE_OK)
        return fail_db(s, "reading kv stores", err, errlen);
    sqlite3_bind_text(st, 1, revision, -1, SQLITE_STATIC);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        char **n = realloc(spec->kv_stores, (spec->nkv_stores + 1) * sizeof *n);
        if (!n) goto oom;
        spec->kv_stores = n;
        if (!(n[spec->nkv_stores] = col(st, 0))) goto oom;
        spec->nkv_stores++;
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) return fail_db(s, "reading kv stores", err, errlen);

    if (sqlite3_prepare_v2(s->db,
                           "SELECT name, kind, object, key, optional, version FROM revision_env_refs"
                           " WHERE revision = ? ORDER BY pos",
                           -1, &st, NULL) != SQLITE_OK)
        return fail_db(s, "reading env references", err, errlen);
    sqlite3_bind_text(st, 1, revision, -1, SQLITE_STATIC);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        st_env_ref_t *n = realloc(spec->env_refs, (spec->nenv_refs + 1) * sizeof *n);
        if (!n) goto oom;
        spec->env_refs = n;
        st_env_ref_t *r = &n[spec->nenv_refs++];
        memset(r, 0, sizeof *r);
        r->name = col(st, 0);
        r->secret = strcmp((const char *)sqlite3_column_text(st, 1), "Secret") == 0;
        r->object = col(st, 2);
        r->key = col(st, 3);
        r->optional = sqlite3_column_int(st, 4) != 0;
        r->version = sqlite3_column_int64(st, 5);
        if (!r->name || !r->object || !r->key) goto oom;
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) return fail_db(s, "reading env references", err, errlen);
    return ST_OK;
oom:
    sqlite3_finalize(st);
    st_seterr(err, errlen, "out of memory");
    return ST_ERR;
}

int st_spec_host_add(st_store_t *s, const char *revision, const st_spec_t *spec, char *err,
                     size_t errlen)
{
    sqlite3_stmt *st = NULL;
    for (uint32_t i = 0; i < spec->nkv_stores; i++) {
        if (sqlite3_prepare_v2(s->db,
                               "INSERT INTO revision_kv_stores (revision, pos, store) VALUES (?, ?, ?)",
                               -1, &st, NULL) != SQLITE_OK)
            return fail_db(s, "adding kv stores", err, errlen);
        sqlite3_bind_text(st, 1, revision, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, i);
        sqlite3_bind_text(st, 3, spec->kv_stores[i], -1, SQLITE_STATIC);
        int rc = sqlite3_step(st);
        sqlite3_finalize(st);
        if (rc != SQLITE_DONE) return fail_db(s, "adding kv stores", err, errlen);
    }
    for (uint32_t i = 0; i < spec->nenv_refs; i++) {
        const st_env_ref_t *r = &spec->env_refs[i];
        if (sqlite3_prepare_v2(s->db,
                               "INSERT INTO revision_env_refs (revision, pos, name, kind, object, key,"
                               " optional, version) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                               -1, &st, NULL) != SQLITE_OK)
            return fail_db(s, "adding env references", err, errlen);
        sqlite3_bind_text(st, 1, revision, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, i);
        sqlite3_bind_text(st, 3, r->name, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 4, r->secret ? "Secret" : "ConfigMap", -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 5, r->object, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 6, r->key, -1, SQLITE_STATIC);
        sqlite3_bind_int(st, 7, r->optional);
        sqlite3_bind_int64(st, 8, r->version);
        int rc = sqlite3_step(st);
        sqlite3_finalize(st);
        if (rc != SQLITE_DONE) return fail_db(s, "adding env references", err, errlen);
    }
    return ST_OK;
}
