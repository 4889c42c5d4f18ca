/*
 * scaled.c — the scaled_objects table (scaled.h): one row per
 * ScaledObject holding the document as applied and the Service it targets
 * (src/keda parses the document again at start, so a newer wasmfn that
 * understands more of it sees everything the user wrote). A named-document
 * table (doctable.c) with the column target. Beside it, scaled_paused: the
 * count each ScaledObject paused "where it is" holds.
 */
#include "store/internal.h"
#include "store/scaled.h"

const st_doctable_t st_scaled_table = {
    .table = "scaled_objects",
    .extra = "target",
    .kind = "scaledobject",
    .one = "scaled object",
    .many = "scaled objects",
};

int st_scaledobject_put(st_store_t *s, const char *name, const char *target, const char *doc,
                        int64_t now, bool *created, bool *changed, char *err, size_t errlen)
{
    return st_doctable_put(s, &st_scaled_table, name, target, doc, now, created, changed, err,
                           errlen);
}

int st_scaledobject_delete(st_store_t *s, const char *name, char *err, size_t errlen)
{
    int rc = st_doctable_delete(s, &st_scaled_table, name, err, errlen);
    if (rc == ST_OK) rc = st_scaledobject_paused_put(s, name, -1, err, errlen);
    return rc;
}

int st_scaledobject_each(st_store_t *s, st_doc_fn fn, void *ud, char *err, size_t errlen)
{
    return st_doctable_each(s, &st_scaled_table, fn, ud, err, errlen);
}

/* ---- the count a paused ScaledObject holds ------------------------------------ */

/* The count a ScaledObject paused with autoscaling.keda.sh/paused: "true"
 * (and no paused-replicas) holds: what it had decided when the pause was
 * applied. Kept so that a restarted daemon holds the same count, as a
 * Deployment's replicas outlive KEDA's operator. */
static const char PAUSED_SCHEMA[] = "CREATE TABLE IF NOT EXISTS scaled_paused ("
                                    "  name TEXT PRIMARY KEY,"
                                    "  replicas INTEGER NOT NULL"
                                    ");";

int st_scaled_schema(st_store_t *s, char *err, size_t errlen)
{
    if (st_doctable_schema(s, &st_scaled_table, err, errlen) != ST_OK) return ST_ERR;
    return st_sqlite_exec(s->db, "registry database", PAUSED_SCHEMA, err, errlen) == 0 ? ST_OK
                                                                                        : ST_ERR;
}

static int paused_fail(st_store_t *s, const char *verb, char *err, size_t errlen)
{
    st_seterr(err, errlen, "%s/wasmfn.db: %s a paused count: %s", s->dir, verb,
              sqlite3_errmsg(s->db));
    return ST_ERR;
}

int st_scaledobject_paused_put(st_store_t *s, const char *name, int32_t replicas, char *err,
                               size_t errlen)
{
    sqlite3_stmt *st;
    const char *sql = replicas >= 0
                          ? "INSERT OR REPLACE INTO scaled_paused (name, replicas) VALUES (?, ?)"
                          : "DELETE FROM scaled_paused WHERE name = ?";
    if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK)
        return paused_fail(s, "saving", err, errlen);
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    if (replicas >= 0) sqlite3_bind_int(st, 2, replicas);
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? ST_OK : paused_fail(s, "saving", err, errlen);
}

int st_scaledobject_paused_get(st_store_t *s, const char *name, int32_t *replicas, char *err,
                               size_t errlen)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(s->db, "SELECT replicas FROM scaled_paused WHERE name = ?", -1, &st,
                           NULL) != SQLITE_OK)
        return paused_fail(s, "reading", err, errlen);
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) *replicas = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    if (rc == SQLITE_ROW) return ST_OK;
    return rc == SQLITE_DONE ? ST_NOT_FOUND : paused_fail(s, "reading", err, errlen);
}
