/*
 * registry.c — functions, revisions and routes in SQLite (DATA/wasmfn.db).
 *
 * WAL mode with synchronous=FULL: a COMMIT returns once the WAL is fsync'd,
 * so whatever the API acknowledged is on disk even if the process is killed
 * the next instant, and readers never block the writer. Foreign keys with
 * ON DELETE CASCADE make deleting a function one statement.
 *
 * Revisions are immutable rows; a function's next revision number lives in
 * its own row (next_seq), so numbers keep increasing even if a revision were
 * ever removed. Multi-statement writes run inside a SAVEPOINT, which nests
 * in the caller's transaction (st_begin) or is a transaction of its own.
 */
#define _GNU_SOURCE
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/internal.h"

/* Version 2 added revisions.image_ref and image_digest (issue 16: images
 * from OCI registries). A version-1 database is migrated in place at open
 * by MIGRATE_1_2; its revisions get empty strings, which is what a
 * revision made from a local file or a sha256: blob records. */
#define SCHEMA_VERSION 2

static const char SCHEMA[] =
    "CREATE TABLE IF NOT EXISTS functions ("
    "  name TEXT PRIMARY KEY,"
    "  created INTEGER NOT NULL,"
    "  next_seq INTEGER NOT NULL DEFAULT 1,"
    "  latest_revision TEXT"
    ");"
    "CREATE TABLE IF NOT EXISTS revisions ("
    "  name TEXT PRIMARY KEY,"
    "  function TEXT NOT NULL REFERENCES functions(name) ON DELETE CASCADE,"
    "  seq INTEGER NOT NULL,"
    "  created INTEGER NOT NULL,"
    "  image TEXT NOT NULL,"
    "  memory_limit_bytes INTEGER NOT NULL,"
    "  timeout_seconds INTEGER NOT NULL,"
    "  min_scale INTEGER NOT NULL,"
    "  max_scale INTEGER NOT NULL,"
    "  initial_scale INTEGER NOT NULL,"
    "  target REAL NOT NULL,"
    "  window_seconds INTEGER NOT NULL,"
    "  image_ref TEXT NOT NULL DEFAULT '',"
    "  image_digest TEXT NOT NULL DEFAULT '',"
    "  UNIQUE (function, seq)"
    ");"
    "CREATE TABLE IF NOT EXISTS revision_env ("
    "  revision TEXT NOT NULL REFERENCES revisions(name) ON DELETE CASCADE,"
    "  pos INTEGER NOT NULL,"
    "  entry TEXT NOT NULL,"
    "  PRIMARY KEY (revision, pos)"
    ");"
    "CREATE TABLE IF NOT EXISTS routes ("
    "  function TEXT NOT NULL REFERENCES functions(name) ON DELETE CASCADE,"
    "  pos INTEGER NOT NULL,"
    "  revision TEXT,"
    "  latest INTEGER NOT NULL,"
    "  percent INTEGER NOT NULL,"
    "  PRIMARY KEY (function, pos)"
    ");";

/* A revision's CPU and memory requests and its CPU limit (issue 18), in a
 * table of their own made at every open (IF NOT EXISTS), so that adding
 * them needed no schema version: a revision without a row has none set.
 * Rows go with their revision (ON DELETE CASCADE). */
static const char RESOURCES_SCHEMA[] =
    "CREATE TABLE IF NOT EXISTS revision_resources ("
    "  revision TEXT PRIMARY KEY REFERENCES revisions(name) ON DELETE CASCADE,"
    "  cpu_limit_millis INTEGER NOT NULL,"
    "  cpu_request_millis INTEGER NOT NULL,"
    "  memory_request_bytes INTEGER NOT NULL"
    ");";

static const char MIGRATE_1_2[] =
    "ALTER TABLE revisions ADD COLUMN image_ref TEXT NOT NULL DEFAULT '';"
    "ALTER TABLE revisions ADD COLUMN image_digest TEXT NOT NULL DEFAULT '';";

static int db_error(st_store_t *s, const char *what, char *err, size_t errlen)
{
    st_seterr(err, errlen, "%s/wasmfn.db: %s: %s", s->dir, what, sqlite3_errmsg(s->db));
    return ST_ERR;
}

static int exec_sql(st_store_t *s, const char *sql, char *err, size_t errlen)
{
    char *msg = NULL;
    if (sqlite3_exec(s->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        st_seterr(err, errlen, "%s/wasmfn.db: %s", s->dir, msg ? msg : sqlite3_errmsg(s->db));
        sqlite3_free(msg);
        return ST_ERR;
    }
    return ST_OK;
}

static sqlite3_stmt *prep(st_store_t *s, const char *sql, char *err, size_t errlen)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK) {
        db_error(s, "prepare", err, errlen);
        return NULL;
    }
    return st;
}

int st_db_open(st_store_t *s, char *err, size_t errlen)
{
    char *path;
    if (asprintf(&path, "%s/wasmfn.db", s->dir) < 0) {
        st_seterr(err, errlen, "out of memory");
        return ST_ERR;
    }
    int rc = st_sqlite_open(path, "registry database", &s->db, err, errlen);
    free(path);
    if (rc != 0) return ST_ERR;

    sqlite3_stmt *st = prep(s, "PRAGMA user_version", err, errlen);
    if (!st) return ST_ERR;
    int version = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int(st, 0) : 0;
    sqlite3_finalize(st);
    if (version > SCHEMA_VERSION) {
        st_seterr(err, errlen,
               "%s/wasmfn.db: schema version %d is newer than this wasmfn understands (%d)",
               s->dir, version, SCHEMA_VERSION);
        return ST_ERR;
    }
    if (st_spec_host_schema(s, err, errlen) != ST_OK) return ST_ERR;
    if (exec_sql(s, RESOURCES_SCHEMA, err, errlen) != ST_OK ||
        st_scaled_schema(s, err, errlen) != ST_OK ||
        st_doctable_schema(s, &st_triggerauth_table, err, errlen) != ST_OK ||
        st_doctable_schema(s, &st_clustertriggerauth_table, err, errlen) != ST_OK)
        return ST_ERR;
    if (version < SCHEMA_VERSION) {
        char sql[sizeof SCHEMA + 64];
        /* A new database gets the whole schema; an older one the steps
         * from its version on, in one transaction. */
        snprintf(sql, sizeof sql, "BEGIN; %s PRAGMA user_version=%d; COMMIT;",
                 version == 0 ? SCHEMA : MIGRATE_1_2, SCHEMA_VERSION);
        if (exec_sql(s, sql, err, errlen) != ST_OK) {
            sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
            return ST_ERR;
        }
    }
    return st_allowed_hosts_init(s, err, errlen);
}

void st_db_close(st_store_t *s)
{
    if (s->db) sqlite3_close(s->db);
    s->db = NULL;
}

/* ---- Specs ---------------------------------------------------------------- */

bool st_spec_equal(const st_spec_t *a, const st_spec_t *b)
{
    if (strcmp(a->image ? a->image : "", b->image ? b->image : "") != 0) return false;
    /* The reference counts, its resolved manifest digest does not: a tag
     * that moved to a new manifest holding the same module is the same
     * template (docs/api.md). */
    if (strcmp(a->image_ref ? a->image_ref : "", b->image_ref ? b->image_ref : "") != 0)
        return false;
    if (a->nenv != b->nenv) return false;
    for (uint32_t i = 0; i < a->nenv; i++)
        if (strcmp(a->env[i], b->env[i]) != 0) return false;
    if (a->nallowed_hosts != b->nallowed_hosts) return false;
    for (uint32_t i = 0; i < a->nallowed_hosts; i++)
        if (strcmp(a->allowed_hosts[i], b->allowed_hosts[i]) != 0) return false;
    return a->memory_limit_bytes == b->memory_limit_bytes &&
           a->timeout_seconds == b->timeout_seconds && a->min_scale == b->min_scale &&
           a->max_scale == b->max_scale && a->initial_scale == b->initial_scale &&
           a->target == b->target && a->window_seconds == b->window_seconds &&
           st_spec_host_equal(a, b) &&
           a->cpu_limit_millis == b->cpu_limit_millis &&
           a->cpu_request_millis == b->cpu_request_millis &&
           a->memory_request_bytes == b->memory_request_bytes;
}

int st_spec_copy(st_spec_t *dst, const st_spec_t *src)
{
    *dst = *src;
    dst->image = dst->image_ref = dst->image_digest = NULL;
    dst->env = NULL;
    dst->nenv = 0;
    dst->allowed_hosts = NULL;
    dst->nallowed_hosts = 0;
    dst->kv_stores = NULL;
    dst->nkv_stores = 0;
    dst->env_refs = NULL;
    dst->nenv_refs = 0;
    if (src->image && !(dst->image = strdup(src->image))) goto oom;
    if (src->image_ref && !(dst->image_ref = strdup(src->image_ref))) goto oom;
    if (src->image_digest && !(dst->image_digest = strdup(src->image_digest))) goto oom;
    if (st_spec_host_copy(dst, src) != 0) goto oom;
    if (src->nenv) {
        dst->env = calloc(src->nenv, sizeof *dst->env);
        if (!dst->env) goto oom;
        for (uint32_t i = 0; i < src->nenv; i++) {
            if (!(dst->env[i] = strdup(src->env[i]))) goto oom;
            dst->nenv = i + 1;
        }
    }
    dst->allowed_hosts = NULL;
    dst->nallowed_hosts = 0;
    if (src->nallowed_hosts) {
        dst->allowed_hosts = calloc(src->nallowed_hosts, sizeof *dst->allowed_hosts);
        if (!dst->allowed_hosts) goto oom;
        for (uint32_t i = 0; i < src->nallowed_hosts; i++) {
            if (!(dst->allowed_hosts[i] = strdup(src->allowed_hosts[i]))) goto oom;
            dst->nallowed_hosts = i + 1;
        }
    }
    return 0;
oom:
    st_spec_free(dst);
    return -1;
}

void st_spec_free(st_spec_t *s)
{
    if (!s) return;
    free(s->image);
    free(s->image_ref);
    free(s->image_digest);
    for (uint32_t i = 0; i < s->nenv; i++) free(s->env[i]);
    free(s->env);
    for (uint32_t i = 0; i < s->nallowed_hosts; i++) free(s->allowed_hosts[i]);
    free(s->allowed_hosts);
    s->image = s->image_ref = s->image_digest = NULL;
    s->env = NULL;
    s->nenv = 0;
    s->allowed_hosts = NULL;
    s->nallowed_hosts = 0;
    st_spec_host_free(s);
}

/* ---- Transactions --------------------------------------------------------- */

int st_begin(st_store_t *s, char *err, size_t errlen)
{
    return exec_sql(s, "BEGIN IMMEDIATE", err, errlen);
}

int st_commit(st_store_t *s, char *err, size_t errlen)
{
    return exec_sql(s, "COMMIT", err, errlen);
}

void st_rollback(st_store_t *s)
{
    if (!sqlite3_get_autocommit(s->db)) sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
}

/* ---- Reading -------------------------------------------------------------- */

static char *dup_col(sqlite3_stmt *st, int i)
{
    const unsigned char *t = sqlite3_column_text(st, i);
    return t ? strdup((const char *)t) : NULL;
}

void st_function_free(st_function_t *f)
{
    if (!f) return;
    free(f->name);
    free(f->latest_revision);
    for (uint32_t i = 0; i < f->nrevisions; i++) st_spec_free(&f->revisions[i].spec);
    free(f->revisions);
    for (uint32_t i = 0; i < f->nroutes; i++) free(f->routes[i].revision);
    free(f->routes);
    memset(f, 0, sizeof *f);
}

const st_revision_t *st_function_revision(const st_function_t *f, const char *name)
{
    for (uint32_t i = 0; i < f->nrevisions; i++)
        if (strcmp(f->revisions[i].name, name) == 0) return &f->revisions[i];
    return NULL;
}

static int load_env(st_store_t *s, st_revision_t *r, char *err, size_t errlen)
{
    sqlite3_stmt *st =
        prep(s, "SELECT entry FROM revision_env WHERE revision = ? ORDER BY pos", err, errlen);
    if (!st) return ST_ERR;
    sqlite3_bind_text(st, 1, r->name, -1, SQLITE_STATIC);
    int rc;
    uint32_t cap = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (r->spec.nenv == cap) {
            cap = cap ? cap * 2 : 8;
            char **ne = realloc(r->spec.env, cap * sizeof *ne);
            if (!ne) goto oom;
            r->spec.env = ne;
        }
        char *e = dup_col(st, 0);
        if (!e) goto oom;
        r->spec.env[r->spec.nenv++] = e;
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) return db_error(s, "reading env", err, errlen);
    return ST_OK;
oom:
    sqlite3_finalize(st);
    st_seterr(err, errlen, "out of memory");
    return ST_ERR;
}

int st_function_get(st_store_t *s, const char *name, st_function_t *out, char *err,
                    size_t errlen)
{
    memset(out, 0, sizeof *out);
    sqlite3_stmt *st =
        prep(s, "SELECT name, created, latest_revision FROM functions WHERE name = ?", err, errlen);
    if (!st) return ST_ERR;
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    if (rc != SQLITE_ROW) {
        sqlite3_finalize(st);
        if (rc == SQLITE_DONE) {
            st_seterr(err, errlen, "function %s not found", name);
            return ST_NOT_FOUND;
        }
        return db_error(s, "reading functions", err, errlen);
    }
    out->name = dup_col(st, 0);
    out->created = sqlite3_column_int64(st, 1);
    out->latest_revision = dup_col(st, 2);
    sqlite3_finalize(st);
    if (!out->name) goto oom;

    st = prep(s,
              "SELECT name, seq, created, image, memory_limit_bytes, timeout_seconds, min_scale,"
              " max_scale, initial_scale, target, window_seconds, image_ref, image_digest,"
              " rr.cpu_limit_millis, rr.cpu_request_millis, rr.memory_request_bytes"
              " FROM revisions LEFT JOIN revision_resources rr ON rr.revision = revisions.name"
              " WHERE function = ? ORDER BY seq",
              err, errlen);
    if (!st) goto fail;
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    uint32_t cap = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (out->nrevisions == cap) {
            cap = cap ? cap * 2 : 4;
            st_revision_t *nr = realloc(out->revisions, cap * sizeof *nr);
            if (!nr) {
                sqlite3_finalize(st);
                goto oom;
            }
            out->revisions = nr;
        }
        st_revision_t *r = &out->revisions[out->nrevisions];
        memset(r, 0, sizeof *r);
        snprintf(r->name, sizeof r->name, "%s", (const char *)sqlite3_column_text(st, 0));
        r->seq = (uint32_t)sqlite3_column_int64(st, 1);
        r->created = sqlite3_column_int64(st, 2);
        r->spec.image = dup_col(st, 3);
        r->spec.memory_limit_bytes = (uint64_t)sqlite3_column_int64(st, 4);
        r->spec.timeout_seconds = (uint32_t)sqlite3_column_int64(st, 5);
        r->spec.min_scale = (uint32_t)sqlite3_column_int64(st, 6);
        r->spec.max_scale = (uint32_t)sqlite3_column_int64(st, 7);
        r->spec.initial_scale = (uint32_t)sqlite3_column_int64(st, 8);
        r->spec.target = sqlite3_column_double(st, 9);
        r->spec.window_seconds = (uint32_t)sqlite3_column_int64(st, 10);
        r->spec.cpu_limit_millis = (uint32_t)sqlite3_column_int64(st, 13); /* NULL reads 0 */
        r->spec.cpu_request_millis = (uint32_t)sqlite3_column_int64(st, 14);
        r->spec.memory_request_bytes = (uint64_t)sqlite3_column_int64(st, 15);
        /* Empty columns (a revision not made from a registry) stay NULL. */
        if (sqlite3_column_bytes(st, 11) > 0) r->spec.image_ref = dup_col(st, 11);
        if (sqlite3_column_bytes(st, 12) > 0) r->spec.image_digest = dup_col(st, 12);
        out->nrevisions++;
        if (!r->spec.image || (sqlite3_column_bytes(st, 11) > 0 && !r->spec.image_ref) ||
            (sqlite3_column_bytes(st, 12) > 0 && !r->spec.image_digest)) {
            sqlite3_finalize(st);
            goto oom;
        }
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) {
        db_error(s, "reading revisions", err, errlen);
        goto fail;
    }
    for (uint32_t i = 0; i < out->nrevisions; i++)
        if (load_env(s, &out->revisions[i], err, errlen) != ST_OK ||
            st_allowed_hosts_load(s, &out->revisions[i], err, errlen) != ST_OK ||
            st_spec_host_load(s, out->revisions[i].name, &out->revisions[i].spec, err, errlen) !=
                ST_OK)
            goto fail;

    st = prep(s, "SELECT revision, latest, percent FROM routes WHERE function = ? ORDER BY pos",
              err, errlen);
    if (!st) goto fail;
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    cap = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (out->nroutes == cap) {
            cap = cap ? cap * 2 : 4;
            st_route_t *nr = realloc(out->routes, cap * sizeof *nr);
            if (!nr) {
                sqlite3_finalize(st);
                goto oom;
            }
            out->routes = nr;
        }
        st_route_t *rt = &out->routes[out->nroutes++];
        rt->revision = dup_col(st, 0);
        rt->latest = sqlite3_column_int(st, 1) != 0;
        rt->percent = (uint32_t)sqlite3_column_int64(st, 2);
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) {
        db_error(s, "reading routes", err, errlen);
        goto fail;
    }
    return ST_OK;
oom:
    st_seterr(err, errlen, "out of memory");
fail:
    st_function_free(out);
    return ST_ERR;
}

void st_names_free(char **names, size_t n)
{
    for (size_t i = 0; i < n; i++) free(names[i]);
    free(names);
}

int st_function_names(st_store_t *s, char ***names, size_t *n, char *err, size_t errlen)
{
    *names = NULL;
    *n = 0;
    sqlite3_stmt *st = prep(s, "SELECT name FROM functions ORDER BY name", err, errlen);
    if (!st) return ST_ERR;
    size_t cap = 0;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (*n == cap) {
            cap = cap ? cap * 2 : 16;
            char **nn = realloc(*names, cap * sizeof *nn);
            if (!nn) goto oom;
            *names = nn;
        }
        char *name = dup_col(st, 0);
        if (!name) goto oom;
        (*names)[(*n)++] = name;
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) {
        st_names_free(*names, *n);
        *names = NULL;
        *n = 0;
        return db_error(s, "reading functions", err, errlen);
    }
    return ST_OK;
oom:
    sqlite3_finalize(st);
    st_names_free(*names, *n);
    *names = NULL;
    *n = 0;
    st_seterr(err, errlen, "out of memory");
    return ST_ERR;
}

/* ---- Writing -------------------------------------------------------------- */

/* Runs body inside SAVEPOINT name: released on success, rolled back to (and
 * released) on failure, so a failed write leaves nothing behind. */
static int savepoint(st_store_t *s, char *err, size_t errlen)
{
    return exec_sql(s, "SAVEPOINT st_write", err, errlen);
}

static int savepoint_end(st_store_t *s, int rc)
{
    if (rc == ST_OK) {
        if (sqlite3_exec(s->db, "RELEASE st_write", NULL, NULL, NULL) == SQLITE_OK) return ST_OK;
        rc = ST_ERR;
    }
    sqlite3_exec(s->db, "ROLLBACK TO st_write; RELEASE st_write", NULL, NULL, NULL);
    return rc;
}

static int step_done(st_store_t *s, sqlite3_stmt *st, const char *what, char *err, size_t errlen)
{
    int rc = sqlite3_step(st);
    int out = rc == SQLITE_DONE ? ST_OK : db_error(s, what, err, errlen);
    sqlite3_finalize(st);
    return out;
}

int st_revision_add(st_store_t *s, const char *name, const st_spec_t *spec, int64_t now,
                    char *rev_name, char *err, size_t errlen)
{
    if (strlen(name) > ST_NAME_MAX) {
        st_seterr(err, errlen, "function name %s is longer than %d characters", name, ST_NAME_MAX);
        return ST_ERR;
    }
    if (savepoint(s, err, errlen) != ST_OK) return ST_ERR;
    int rc = ST_ERR;
    sqlite3_stmt *st = prep(s,
                            "INSERT INTO functions (name, created, next_seq) VALUES (?, ?, 1)"
                            " ON CONFLICT (name) DO NOTHING",
                            err, errlen);
    if (!st) goto out;
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, now);
    if (step_done(s, st, "adding function", err, errlen) != ST_OK) goto out;

    st = prep(s, "SELECT next_seq FROM functions WHERE name = ?", err, errlen);
    if (!st) goto out;
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    if (sqlite3_step(st) != SQLITE_ROW) {
        db_error(s, "reading function", err, errlen);
        sqlite3_finalize(st);
        goto out;
    }
    int64_t seq = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    if (seq < 1 || seq > 99999) {
        st_seterr(err, errlen, "function %s has used all 99999 revision numbers", name);
        goto out;
    }
    char rname[ST_REVISION_NAME_MAX + 1];
    snprintf(rname, sizeof rname, "%s-%05d", name, (int)seq);

    st = prep(s,
              "INSERT INTO revisions (name, function, seq, created, image, memory_limit_bytes,"
              " timeout_seconds, min_scale, max_scale, initial_scale, target, window_seconds,"
              " image_ref, image_digest)"
              " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
              err, errlen);
    if (!st) goto out;
    sqlite3_bind_text(st, 1, rname, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, name, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, seq);
    sqlite3_bind_int64(st, 4, now);
    sqlite3_bind_text(st, 5, spec->image ? spec->image : "", -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 6, (sqlite3_int64)spec->memory_limit_bytes);
    sqlite3_bind_int64(st, 7, spec->timeout_seconds);
    sqlite3_bind_int64(st, 8, spec->min_scale);
    sqlite3_bind_int64(st, 9, spec->max_scale);
    sqlite3_bind_int64(st, 10, spec->initial_scale);
    sqlite3_bind_double(st, 11, spec->target);
    sqlite3_bind_int64(st, 12, spec->window_seconds);
    sqlite3_bind_text(st, 13, spec->image_ref ? spec->image_ref : "", -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 14, spec->image_digest ? spec->image_digest : "", -1, SQLITE_STATIC);
    if (step_done(s, st, "adding revision", err, errlen) != ST_OK) goto out;
    if (spec->cpu_limit_millis || spec->cpu_request_millis || spec->memory_request_bytes) {
        st = prep(s,
                  "INSERT INTO revision_resources (revision, cpu_limit_millis,"
                  " cpu_request_millis, memory_request_bytes) VALUES (?, ?, ?, ?)",
                  err, errlen);
        if (!st) goto out;
        sqlite3_bind_text(st, 1, rname, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, spec->cpu_limit_millis);
        sqlite3_bind_int64(st, 3, spec->cpu_request_millis);
        sqlite3_bind_int64(st, 4, (sqlite3_int64)spec->memory_request_bytes);
        if (step_done(s, st, "adding revision resources", err, errlen) != ST_OK) goto out;
    }

    for (uint32_t i = 0; i < spec->nenv; i++) {
        st = prep(s, "INSERT INTO revision_env (revision, pos, entry) VALUES (?, ?, ?)", err,
                  errlen);
        if (!st) goto out;
        sqlite3_bind_text(st, 1, rname, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, i);
        sqlite3_bind_text(st, 3, spec->env[i], -1, SQLITE_STATIC);
        if (step_done(s, st, "adding env", err, errlen) != ST_OK) goto out;
    }
    if (st_allowed_hosts_save(s, rname, spec, err, errlen) != ST_OK) goto out;

    if (st_spec_host_add(s, rname, spec, err, errlen) != ST_OK) goto out;

    st = prep(s, "UPDATE functions SET next_seq = next_seq + 1, latest_revision = ? WHERE name = ?",
              err, errlen);
    if (!st) goto out;
    sqlite3_bind_text(st, 1, rname, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, name, -1, SQLITE_STATIC);
    if (step_done(s, st, "updating function", err, errlen) != ST_OK) goto out;
    if (rev_name) memcpy(rev_name, rname, sizeof rname);
    rc = ST_OK;
out:
    return savepoint_end(s, rc);
}

int st_routes_set(st_store_t *s, const char *name, const st_route_t *routes, uint32_t n,
                  char *err, size_t errlen)
{
    if (savepoint(s, err, errlen) != ST_OK) return ST_ERR;
    int rc = ST_ERR;
    sqlite3_stmt *st = prep(s, "SELECT 1 FROM functions WHERE name = ?", err, errlen);
    if (!st) goto out;
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    int found = sqlite3_step(st);
    sqlite3_finalize(st);
    if (found != SQLITE_ROW) {
        st_seterr(err, errlen, "function %s not found", name);
        rc = ST_NOT_FOUND;
        goto out;
    }
    st = prep(s, "DELETE FROM routes WHERE function = ?", err, errlen);
    if (!st) goto out;
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    if (step_done(s, st, "replacing routes", err, errlen) != ST_OK) goto out;
    for (uint32_t i = 0; i < n; i++) {
        st = prep(s,
                  "INSERT INTO routes (function, pos, revision, latest, percent)"
                  " VALUES (?, ?, ?, ?, ?)",
                  err, errlen);
        if (!st) goto out;
        sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, i);
        if (routes[i].latest || !routes[i].revision)
            sqlite3_bind_null(st, 3);
        else
            sqlite3_bind_text(st, 3, routes[i].revision, -1, SQLITE_STATIC);
        sqlite3_bind_int(st, 4, routes[i].latest ? 1 : 0);
        sqlite3_bind_int64(st, 5, routes[i].percent);
        if (step_done(s, st, "adding route", err, errlen) != ST_OK) goto out;
    }
    rc = ST_OK;
out:
    return savepoint_end(s, rc);
}

int st_function_delete(st_store_t *s, const char *name, char *err, size_t errlen)
{
    sqlite3_stmt *st = prep(s, "DELETE FROM functions WHERE name = ?", err, errlen);
    if (!st) return ST_ERR;
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    if (step_done(s, st, "deleting function", err, errlen) != ST_OK) return ST_ERR;
    if (sqlite3_changes(s->db) == 0) {
        st_seterr(err, errlen, "function %s not found", name);
        return ST_NOT_FOUND;
    }
    return ST_OK;
}

/* ---- Pruning old revisions ------------------------------------------------ */

int st_revisions_prune(st_store_t *s, const char *name, uint32_t keep, char ***images, size_t *n,
                       char *err, size_t errlen)
{
    *images = NULL;
    *n = 0;
    if (savepoint(s, err, errlen) != ST_OK) return ST_ERR;
    int rc = ST_ERR;
    /* The unrouted revisions other than the latest, newest first, past the
     * first `keep`: a route naming one (even at 0%) keeps it. */
    sqlite3_stmt *st = prep(s,
                            "SELECT name, image FROM revisions WHERE function = ?1"
                            " AND name <> COALESCE((SELECT latest_revision FROM functions"
                            "                       WHERE name = ?1), '')"
                            " AND name NOT IN (SELECT revision FROM routes WHERE function = ?1"
                            "                  AND revision IS NOT NULL)"
                            " ORDER BY seq DESC LIMIT -1 OFFSET ?2",
                            err, errlen);
    if (!st) goto out;
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, keep);
    char **names = NULL;
    size_t cap = 0;
    int r;
    while ((r = sqlite3_step(st)) == SQLITE_ROW) {
        if (*n == cap) {
            cap = cap ? cap * 2 : 16;
            char **nn = realloc(names, cap * sizeof *nn);
            char **ni = realloc(*images, cap * sizeof *ni);
            if (nn) names = nn;
            if (ni) *images = ni;
            if (!nn || !ni) break;
        }
        char *rn = dup_col(st, 0), *img = dup_col(st, 1);
        if (!rn || !img) {
            free(rn);
            free(img);
            break;
        }
        names[*n] = rn;
        (*images)[(*n)++] = img;
    }
    sqlite3_finalize(st);
    if (r != SQLITE_DONE) {
        if (r == SQLITE_ROW) st_seterr(err, errlen, "out of memory");
        else db_error(s, "reading revisions", err, errlen);
        st_names_free(names, *n);
        goto out;
    }
    rc = ST_OK;
    for (size_t i = 0; i < *n && rc == ST_OK; i++) {
        st = prep(s, "DELETE FROM revisions WHERE name = ?", err, errlen);
        if (!st) {
            rc = ST_ERR;
            break;
        }
        sqlite3_bind_text(st, 1, names[i], -1, SQLITE_STATIC);
        rc = step_done(s, st, "deleting revision", err, errlen);
    }
    st_names_free(names, *n);
out:
    if (rc != ST_OK) {
        st_names_free(*images, *n);
        *images = NULL;
        *n = 0;
    }
    return savepoint_end(s, rc);
}

int st_image_used(st_store_t *s, const char *digest, char *err, size_t errlen)
{
    sqlite3_stmt *st = prep(s, "SELECT 1 FROM revisions WHERE image = ? LIMIT 1", err, errlen);
    if (!st) return -1;
    sqlite3_bind_text(st, 1, digest, -1, SQLITE_STATIC);
    int r = sqlite3_step(st);
    sqlite3_finalize(st);
    if (r == SQLITE_ROW) return 1;
    if (r == SQLITE_DONE) return 0;
    db_error(s, "reading revisions", err, errlen);
    return -1;
}
