/*
 * test_events.c — eventing's tables in the store (src/store/events.c):
 * a DATA/eventing.db written the way eventing wrote it before the store
 * owned it (its own connection, synchronous=NORMAL) opens with its objects
 * and fire times; deleting an object of another kind keeps a PingSource's
 * fire time of the same name.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "store/events.h"

static char dir[64];

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/wasmfn-test-events-XXXXXX");
    return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    return system(cmd);
}

typedef struct seen {
    int n;
    char kinds[256], names[256];
} seen_t;

static void collect(void *ud, const char *kind, const char *name, const char *doc)
{
    seen_t *s = ud;
    s->n++;
    strncat(s->kinds, kind, sizeof s->kinds - strlen(s->kinds) - 2);
    strcat(s->kinds, ",");
    strncat(s->names, name, sizeof s->names - strlen(s->names) - 2);
    strcat(s->names, ",");
    assert_non_null(doc);
}

/* A database as eventing created it before issue 15. */
static void write_old_database(void)
{
    char path[128];
    snprintf(path, sizeof path, "%s/eventing.db", dir);
    sqlite3 *db;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(
        sqlite3_exec(db,
                     "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"
                     "CREATE TABLE IF NOT EXISTS objects(kind TEXT NOT NULL, name TEXT NOT NULL, "
                     "doc TEXT NOT NULL, PRIMARY KEY(kind, name));"
                     "CREATE TABLE IF NOT EXISTS ping_state(name TEXT PRIMARY KEY, "
                     "last_fire_ms INTEGER NOT NULL);"
                     "INSERT INTO objects VALUES('PingSource','ticker','{\"kind\":\"PingSource\"}');"
                     "INSERT INTO objects VALUES('Broker','default','{\"kind\":\"Broker\"}');"
                     "INSERT INTO ping_state VALUES('ticker', 1700000000123);",
                     NULL, NULL, NULL),
        SQLITE_OK);
    sqlite3_close(db);
}

static void test_old_database_opens_with_its_data(void **state)
{
    (void)state;
    write_old_database();
    char err[256] = "";
    st_events_t *e = st_events_open(dir, err, sizeof err);
    assert_non_null(e);
    seen_t s = {0};
    st_events_each(e, collect, &s);
    assert_int_equal(s.n, 2);
    assert_string_equal(s.kinds, "Broker,PingSource,");
    assert_string_equal(s.names, "default,ticker,");
    assert_int_equal(st_events_last_fire(e, "ticker"), 1700000000123);
    st_events_close(e);
}

static void test_delete_keeps_other_kinds_fire_time(void **state)
{
    (void)state;
    char err[256] = "";
    st_events_t *e = st_events_open(dir, err, sizeof err);
    assert_non_null(e);
    assert_int_equal(st_events_put(e, "PingSource", "x", "{}", err, sizeof err), 0);
    assert_int_equal(st_events_put(e, "Broker", "x", "{}", err, sizeof err), 0);
    st_events_set_last_fire(e, "x", 42);
    st_events_delete(e, "Broker", "x");
    assert_int_equal(st_events_last_fire(e, "x"), 42);
    st_events_delete(e, "PingSource", "x");
    st_events_forget_fire(e, "x");
    assert_int_equal(st_events_last_fire(e, "x"), 0);
    st_events_close(e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_old_database_opens_with_its_data, setup, teardown),
        cmocka_unit_test_setup_teardown(test_delete_keeps_other_kinds_fire_time, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
