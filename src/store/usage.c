/*
 * usage.c — metering's usage table (usage.h). The schema and statements
 * are those metering used when it opened the database itself, so an
 * existing table opens unchanged with its data.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>

#include "store/db.h"
#include "store/usage.h"

struct st_usage {
    sqlite3 *db;
    sqlite3_stmt *upsert;
};

#define WHAT "metering database"

static const char SCHEMA[] =
    "CREATE TABLE IF NOT EXISTS mtr_usage ("
    " function TEXT NOT NULL,"
    " revision TEXT NOT NULL,"
    " minute INTEGER NOT NULL,"          /* minutes since the Unix epoch (start time) */
    " memory_limit_bytes INTEGER NOT NULL,"
    " requests INTEGER NOT NULL,"
    " errors INTEGER NOT NULL,"          /* outcome error (5xx, trap), timeouts not included */
    " timeouts INTEGER NOT NULL,"
    " cold_starts INTEGER NOT NULL,"
    " duration_ns INTEGER NOT NULL,"
    " billed_ns INTEGER NOT NULL,"
    " cpu_ns INTEGER NOT NULL,"
    " peak_memory_bytes INTEGER NOT NULL,"
    " PRIMARY KEY (function, revision, minute, memory_limit_bytes)"
    ") WITHOUT ROWID;"
    "CREATE INDEX IF NOT EXISTS mtr_usage_by_minute ON mtr_usage(minute);";

static const char UPSERT[] =
    "INSERT INTO mtr_usage (function, revision, minute, memory_limit_bytes, requests, errors,"
    " timeouts, cold_starts, duration_ns, billed_ns, cpu_ns, peak_memory_bytes)"
    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)"
    " ON CONFLICT (function, revision, minute, memory_limit_bytes) DO UPDATE SET"
    " requests = requests + excluded.requests,"
    " errors = errors + excluded.errors,"
    " timeouts = timeouts + excluded.timeouts,"
    " cold_starts = cold_starts + excluded.cold_starts,"
    " duration_ns = duration_ns + excluded.duration_ns,"
    " billed_ns = billed_ns + excluded.billed_ns,"
    " cpu_ns = cpu_ns + excluded.cpu_ns,"
    " peak_memory_bytes = max(peak_memory_bytes, excluded.peak_memory_bytes)";

static const char SELECT[] =
    "SELECT function, revision, memory_limit_bytes, (minute - ?1) / ?2 AS bucket,"
    " SUM(requests), SUM(errors), SUM(timeouts), SUM(cold_starts), SUM(duration_ns),"
    " SUM(billed_ns), SUM(cpu_ns), MAX(peak_memory_bytes)"
    " FROM mtr_usage WHERE minute >= ?1 AND minute < ?3 AND (?4 IS NULL OR function = ?4)"
    " GROUP BY function, revision, memory_limit_bytes, bucket";

st_usage_t *st_usage_open(const char *path, char *err, size_t errlen)
{
    st_usage_t *u = calloc(1, sizeof *u);
    if (!u) {
        st_seterr(err, errlen, WHAT ": out of memory");
        return NULL;
    }
    if (st_sqlite_open(path, WHAT, &u->db, err, errlen) != 0 ||
        st_sqlite_exec(u->db, WHAT, SCHEMA, err, errlen) != 0)
        goto fail;
    if (sqlite3_prepare_v2(u->db, UPSERT, -1, &u->upsert, NULL) != SQLITE_OK) {
        st_seterr(err, errlen, WHAT " %s: %s", path, sqlite3_errmsg(u->db));
        goto fail;
    }
    return u;
fail:
    st_usage_close(u);
    return NULL;
}

void st_usage_close(st_usage_t *u)
{
    if (!u) return;
    sqlite3_finalize(u->upsert);
    if (u->db) sqlite3_close(u->db);
    free(u);
}

int st_usage_begin(st_usage_t *u, char *err, size_t errlen)
{
    return st_sqlite_exec(u->db, WHAT, "BEGIN IMMEDIATE", err, errlen);
}

int st_usage_add(st_usage_t *u, const st_usage_row_t *a, char *err, size_t errlen)
{
    sqlite3_stmt *st = u->upsert;
    sqlite3_reset(st);
    sqlite3_bind_text(st, 1, a->function, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, a->revision, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, a->minute);
    sqlite3_bind_int64(st, 4, (sqlite3_int64)a->memory_limit_bytes);
    sqlite3_bind_int64(st, 5, (sqlite3_int64)a->requests);
    sqlite3_bind_int64(st, 6, (sqlite3_int64)a->errors);
    sqlite3_bind_int64(st, 7, (sqlite3_int64)a->timeouts);
    sqlite3_bind_int64(st, 8, (sqlite3_int64)a->cold_starts);
    sqlite3_bind_int64(st, 9, a->duration_ns);
    sqlite3_bind_int64(st, 10, a->billed_ns);
    sqlite3_bind_int64(st, 11, a->cpu_ns);
    sqlite3_bind_int64(st, 12, (sqlite3_int64)a->peak_memory_bytes);
    if (sqlite3_step(st) != SQLITE_DONE) {
        st_seterr(err, errlen, WHAT ": writing usage of %s: %s", a->function,
                  sqlite3_errmsg(u->db));
        sqlite3_reset(st);
        st_sqlite_exec(u->db, WHAT, "ROLLBACK", NULL, 0);
        return -1;
    }
    return 0;
}

int st_usage_commit(st_usage_t *u, char *err, size_t errlen)
{
    sqlite3_reset(u->upsert);
    sqlite3_clear_bindings(u->upsert);
    if (st_sqlite_exec(u->db, WHAT, "COMMIT", err, errlen) != 0) {
        st_sqlite_exec(u->db, WHAT, "ROLLBACK", NULL, 0);
        return -1;
    }
    return 0;
}

int st_usage_query(st_usage_t *u, int64_t since_min, int64_t step_min, int64_t until_min,
                   const char *function, int (*row)(void *ud, const st_usage_row_t *r), void *ud,
                   char *err, size_t errlen)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(u->db, SELECT, -1, &st, NULL) != SQLITE_OK) {
        st_seterr(err, errlen, WHAT ": %s", sqlite3_errmsg(u->db));
        return -1;
    }
    sqlite3_bind_int64(st, 1, since_min);
    sqlite3_bind_int64(st, 2, step_min);
    sqlite3_bind_int64(st, 3, until_min);
    if (function)
        sqlite3_bind_text(st, 4, function, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, 4);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *fn = (const char *)sqlite3_column_text(st, 0);
        const char *rev = (const char *)sqlite3_column_text(st, 1);
        st_usage_row_t r = {
            .function = fn ? fn : "",
            .revision = rev ? rev : "",
            .memory_limit_bytes = (uint64_t)sqlite3_column_int64(st, 2),
            .minute = sqlite3_column_int64(st, 3),
            .requests = (uint64_t)sqlite3_column_int64(st, 4),
            .errors = (uint64_t)sqlite3_column_int64(st, 5),
            .timeouts = (uint64_t)sqlite3_column_int64(st, 6),
            .cold_starts = (uint64_t)sqlite3_column_int64(st, 7),
            .duration_ns = sqlite3_column_int64(st, 8),
            .billed_ns = sqlite3_column_int64(st, 9),
            .cpu_ns = sqlite3_column_int64(st, 10),
            .peak_memory_bytes = (uint64_t)sqlite3_column_int64(st, 11),
        };
        int stop = row(ud, &r);
        if (stop) {
            sqlite3_finalize(st);
            return stop;
        }
    }
    if (rc != SQLITE_DONE) {
        st_seterr(err, errlen, WHAT ": reading usage: %s", sqlite3_errmsg(u->db));
        sqlite3_finalize(st);
        return -1;
    }
    sqlite3_finalize(st);
    return 0;
}
