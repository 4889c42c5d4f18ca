/*
 * allowed_hosts.c — each revision's outbound HTTP destinations (st_spec_t
 * allowed_hosts, the `wasmfn.dev/allowed-hosts` annotation) in
 * DATA/wasmfn.db, beside revision_env and with the same shape: one row
 * per entry, in order, deleted with its revision.
 *
 * The table is created at every open (IF NOT EXISTS) rather than by a
 * schema-version step: it is a table of its own that older databases
 * simply lack, and their revisions have no entries, which is what a
 * revision without the annotation records.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/internal.h"

int st_allowed_hosts_init(st_store_t *s, char *err, size_t errlen)
{
    char *msg = NULL;
    if (sqlite3_exec(s->db,
                     "CREATE TABLE IF NOT EXISTS revision_allowed_hosts ("
                     "  revision TEXT NOT NULL REFERENCES revisions(name) ON DELETE CASCADE,"
                     "  pos INTEGER NOT NULL,"
                     "  entry TEXT NOT NULL,"
                     "  PRIMARY KEY (revision, pos))",
                     NULL, NULL, &msg) != SQLITE_OK) {
        st_seterr(err, errlen, "%s/wasmfn.db: %s", s->dir, msg ? msg : sqlite3_errmsg(s->db));
        sqlite3_free(msg);
        return ST_ERR;
    }
    return ST_OK;
}

int st_allowed_hosts_load(st_store_t *s, st_revision_t *r, char *err, size_t errlen)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(s->db,
                           "SELECT entry FROM revision_allowed_hosts WHERE revision = ? ORDER BY pos",
                           -1, &st, NULL) != SQLITE_OK) {
        st_seterr(err, errlen, "%s/wasmfn.db: reading allowed hosts: %s", s->dir,
                  sqlite3_errmsg(s->db));
        return ST_ERR;
    }
    sqlite3_bind_text(st, 1, r->name, -1, SQLITE_STATIC);
    int rc;
    uint32_t cap = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (r->spec.nallowed_hosts == cap) {
            cap = cap ? cap * 2 : 4;
            char **n = realloc(r->spec.allowed_hosts, cap * sizeof *n);
            if (!n) goto oom;
            r->spec.allowed_hosts = n;
        }
        char *e = strdup((const char *)sqlite3_column_text(st, 0));
        if (!e) goto oom;
        r->spec.allowed_hosts[r->spec.nallowed_hosts++] = e;
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) {
        st_seterr(err, errlen, "%s/wasmfn.db: reading allowed hosts: %s", s->dir,
                  sqlite3_errmsg(s->db));
        return ST_ERR;
    }
    return ST_OK;
oom:
    sqlite3_finalize(st);
    st_seterr(err, errlen, "out of memory");
    return ST_ERR;
}

int st_allowed_hosts_save(st_store_t *s, const char *revision, const st_spec_t *spec, char *err,
                          size_t errlen)
{
    for (uint32_t i = 0; i < spec->nallowed_hosts; i++) {
        sqlite3_stmt *st = NULL;
        if (sqlite3_prepare_v2(s->db,
                               "INSERT INTO revision_allowed_hosts (revision, pos, entry)"
                               " VALUES (?, ?, ?)",
                               -1, &st, NULL) != SQLITE_OK)
            goto fail;
        sqlite3_bind_text(st, 1, revision, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, i);
        sqlite3_bind_text(st, 3, spec->allowed_hosts[i], -1, SQLITE_STATIC);
        int rc = sqlite3_step(st);
        sqlite3_finalize(st);
        if (rc != SQLITE_DONE) goto fail;
    }
    return ST_OK;
fail:
    st_seterr(err, errlen, "%s/wasmfn.db: adding allowed hosts: %s", s->dir, sqlite3_errmsg(s->db));
    return ST_ERR;
}
