/*
 * test_store.c — the data directory: its permissions and admin token,
 * content-addressed blobs (hash checked on read, atomic writes), compiled
 * artefacts kept beside them (replaced atomically, missing is not an
 * error), and the registry of functions, revisions and routes across reopening.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "store/scaled.h"
#include "store/triggerauths.h"
#include "store/store.h"

static char *tmpdir_new(void)
{
    const char *base = getenv("TMPDIR");
    char *tmpl;
    assert_true(asprintf(&tmpl, "%s/wasmfn-test-store-XXXXXX", base && *base ? base : P_tmpdir) > 0);
    assert_non_null(mkdtemp(tmpl));
    return tmpl;
}

static void rm_rf(const char *path)
{
    char *cmd;
    assert_true(asprintf(&cmd, "rm -rf '%s'", path) > 0);
    assert_int_equal(system(cmd), 0);
    free(cmd);
}

/* A data dir inside a fresh temporary directory, not yet created. */
static char *datadir_new(char **parent)
{
    *parent = tmpdir_new();
    char *d;
    assert_true(asprintf(&d, "%s/state/wasmfn", *parent) > 0);
    return d;
}

static st_spec_t spec_of(const char *image)
{
    st_spec_t s = {0};
    s.image = (char *)image;
    s.memory_limit_bytes = 64 << 20;
    s.timeout_seconds = 30;
    s.initial_scale = 1;
    s.target = 1;
    s.window_seconds = 60;
    return s;
}

static const char *DIGEST_A =
    "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
static const char *DIGEST_B =
    "sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"; /* "abc" */

static void test_open_creates_private_dir_and_token(void **state)
{
    (void)state;
    char *parent, *dir = datadir_new(&parent), err[256];
    st_store_t *s = st_open(dir, err, sizeof err);
    assert_non_null(s);
    struct stat st;
    assert_int_equal(stat(dir, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0700);

    char *tok;
    assert_true(asprintf(&tok, "%s/admin.token", dir) > 0);
    assert_int_equal(stat(tok, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    const char *t = st_admin_token(s);
    assert_int_equal(strlen(t), 64);
    assert_int_equal(strspn(t, "0123456789abcdef"), 64);
    char saved[65];
    strcpy(saved, t);

    /* The file holds the token; reopening reads the same one. */
    FILE *f = fopen(tok, "r");
    char line[128] = {0};
    assert_non_null(fgets(line, sizeof line, f));
    fclose(f);
    assert_memory_equal(line, saved, 64);
    st_close(s);
    s = st_open(dir, err, sizeof err);
    assert_non_null(s);
    assert_string_equal(st_admin_token(s), saved);
    st_close(s);

    /* A second data dir gets a different token. */
    char *dir2;
    assert_true(asprintf(&dir2, "%s/other", parent) > 0);
    s = st_open(dir2, err, sizeof err);
    assert_non_null(s);
    assert_string_not_equal(st_admin_token(s), saved);
    st_close(s);

    free(dir2);
    free(tok);
    rm_rf(parent);
    free(dir);
    free(parent);
}

static void test_bad_token_file_is_refused(void **state)
{
    (void)state;
    char *parent = tmpdir_new(), err[256];
    char *tok;
    assert_true(asprintf(&tok, "%s/admin.token", parent) > 0);
    FILE *f = fopen(tok, "w");
    fputs("not a token\n", f);
    fclose(f);
    st_store_t *s = st_open(parent, err, sizeof err);
    assert_null(s);
    assert_non_null(strstr(err, "admin.token"));
    free(tok);
    rm_rf(parent);
    free(parent);
}

static void test_second_open_is_refused_while_locked(void **state)
{
    (void)state;
    char *parent = tmpdir_new(), err[256];
    st_store_t *a = st_open(parent, err, sizeof err);
    assert_non_null(a);
    st_store_t *b = st_open(parent, err, sizeof err);
    assert_null(b);
    assert_non_null(strstr(err, "in use"));
    st_close(a);
    b = st_open(parent, err, sizeof err);
    assert_non_null(b);
    st_close(b);
    rm_rf(parent);
    free(parent);
}

static void test_open_fails_on_a_file(void **state)
{
    (void)state;
    char *parent = tmpdir_new(), err[256], *file;
    assert_true(asprintf(&file, "%s/plain", parent) > 0);
    FILE *f = fopen(file, "w");
    fclose(f);
    assert_null(st_open(file, err, sizeof err));
    assert_non_null(strstr(err, file));
    free(file);
    rm_rf(parent);
    free(parent);
}

static void test_wal_mode(void **state)
{
    (void)state;
    char *parent = tmpdir_new(), err[256], *db;
    st_store_t *s = st_open(parent, err, sizeof err);
    assert_non_null(s);
    st_close(s);
    assert_true(asprintf(&db, "%s/wasmfn.db", parent) > 0);
    sqlite3 *h;
    assert_int_equal(sqlite3_open(db, &h), SQLITE_OK);
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_prepare_v2(h, "PRAGMA journal_mode", -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_string_equal((const char *)sqlite3_column_text(st, 0), "wal");
    sqlite3_finalize(st);
    sqlite3_close(h);
    free(db);
    rm_rf(parent);
    free(parent);
}

/* A revision's CPU limit and requests (revision_resources) come back,
 * and take part in st_spec_equal. */
static void test_revision_resources(void **state)
{
    (void)state;
    char *parent = tmpdir_new(), err[256], rev[ST_REVISION_NAME_MAX + 1];
    st_store_t *s = st_open(parent, err, sizeof err);
    assert_non_null(s);
    st_spec_t sp = spec_of("sha256:0000000000000000000000000000000000000000000000000000000000000000");
    sp.cpu_limit_millis = 500;
    sp.cpu_request_millis = 250;
    sp.memory_request_bytes = 32u << 20;
    assert_int_equal(st_revision_add(s, "f", &sp, 1, rev, err, sizeof err), ST_OK);
    st_spec_t plain = spec_of(sp.image);
    assert_int_equal(st_revision_add(s, "f", &plain, 2, rev, err, sizeof err), ST_OK);
    st_close(s);
    s = st_open(parent, err, sizeof err);
    st_function_t f;
    assert_int_equal(st_function_get(s, "f", &f, err, sizeof err), ST_OK);
    assert_int_equal(f.nrevisions, 2);
    assert_int_equal(f.revisions[0].spec.cpu_limit_millis, 500);
    assert_int_equal(f.revisions[0].spec.cpu_request_millis, 250);
    assert_int_equal(f.revisions[0].spec.memory_request_bytes, 32u << 20);
    assert_int_equal(f.revisions[1].spec.cpu_limit_millis, 0);
    assert_false(st_spec_equal(&f.revisions[0].spec, &f.revisions[1].spec));
    st_function_free(&f);
    st_close(s);
    rm_rf(parent);
    free(parent);
}

static void count_so(void *ud, const st_doc_t *d)
{
    assert_string_equal(d->name, "s1");
    assert_string_equal(d->target, "hello");
    (*(int *)ud)++;
}

static void test_scaledobjects(void **state)
{
    (void)state;
    char *parent = tmpdir_new(), err[256];
    st_store_t *s = st_open(parent, err, sizeof err);
    assert_non_null(s);
    bool created, changed;
    assert_int_equal(st_scaledobject_put(s, "s1", "hello", "{}", 1, &created, &changed, err, sizeof err), ST_OK);
    assert_true(created && changed);
    assert_int_equal(st_scaledobject_put(s, "s1", "hello", "{}", 2, &created, &changed, err, sizeof err), ST_OK);
    assert_false(created || changed);
    assert_int_equal(st_scaledobject_put(s, "s1", "hello", "{\"a\":1}", 3, &created, &changed, err, sizeof err), ST_OK);
    assert_true(!created && changed);
    /* A new target alone is a change too. */
    assert_int_equal(st_scaledobject_put(s, "s1", "other", "{\"a\":1}", 4, &created, &changed, err, sizeof err), ST_OK);
    assert_true(!created && changed);
    assert_int_equal(st_scaledobject_put(s, "s1", "hello", "{\"a\":1}", 5, &created, &changed, err, sizeof err), ST_OK);
    assert_true(!created && changed);
    st_close(s);
    s = st_open(parent, err, sizeof err); /* it survives a reopen */
    int n = 0;
    assert_int_equal(st_scaledobject_each(s, count_so, &n, err, sizeof err), ST_OK);
    assert_int_equal(n, 1);
    assert_int_equal(st_scaledobject_delete(s, "s1", err, sizeof err), ST_OK);
    assert_int_equal(st_scaledobject_delete(s, "s1", err, sizeof err), ST_NOT_FOUND);
    n = 0;
    st_scaledobject_each(s, count_so, &n, err, sizeof err);
    assert_int_equal(n, 0);
    st_close(s);
    rm_rf(parent);
    free(parent);
}

typedef struct seen {
    int n;
    char names[4][16];
    int64_t created[4];
} seen_t;

static void seen_one(void *ud, const st_doc_t *d)
{
    seen_t *x = ud;
    assert_null(d->target);
    if (x->n < 4) {
        snprintf(x->names[x->n], sizeof x->names[0], "%s", d->name);
        x->created[x->n] = d->created;
    }
    x->n++;
}

/* TriggerAuthentications: put, get, each by name, delete; a replaced one
 * keeps its created time; everything survives a reopen. */
static void test_triggerauths(void **state)
{
    (void)state;
    char *parent = tmpdir_new(), err[256];
    st_store_t *s = st_open(parent, err, sizeof err);
    assert_non_null(s);
    bool created = false;
    assert_int_equal(st_triggerauth_put(s, false, "b", "{\"v\":1}", 10, &created, err, sizeof err), ST_OK);
    assert_true(created);
    assert_int_equal(st_triggerauth_put(s, false, "a", "{}", 20, &created, err, sizeof err), ST_OK);
    assert_int_equal(st_triggerauth_put(s, false, "b", "{\"v\":2}", 30, &created, err, sizeof err), ST_OK);
    assert_false(created);
    st_close(s);
    s = st_open(parent, err, sizeof err);
    assert_non_null(s);
    char *doc = NULL;
    assert_int_equal(st_triggerauth_get(s, false, "b", &doc, err, sizeof err), ST_OK);
    assert_string_equal(doc, "{\"v\":2}");
    free(doc);
    assert_int_equal(st_triggerauth_get(s, false, "zz", &doc, err, sizeof err), ST_NOT_FOUND);
    assert_null(doc);
    assert_string_equal(err, "triggerauthentication zz not found");
    seen_t x = {0};
    assert_int_equal(st_triggerauth_each(s, false, seen_one, &x, err, sizeof err), ST_OK);
    assert_int_equal(x.n, 2);
    assert_string_equal(x.names[0], "a");
    assert_string_equal(x.names[1], "b");
    assert_int_equal(x.created[1], 10);
    /* ClusterTriggerAuthentications have names of their own: "a" of that
     * kind is another object, and deleting it leaves the other "a". */
    assert_int_equal(st_triggerauth_get(s, true, "a", &doc, err, sizeof err), ST_NOT_FOUND);
    assert_string_equal(err, "clustertriggerauthentication a not found");
    assert_int_equal(st_triggerauth_put(s, true, "a", "{\"c\":1}", 40, &created, err, sizeof err),
                     ST_OK);
    assert_true(created);
    assert_int_equal(st_triggerauth_get(s, true, "a", &doc, err, sizeof err), ST_OK);
    assert_string_equal(doc, "{\"c\":1}");
    free(doc);
    seen_t c = {0};
    assert_int_equal(st_triggerauth_each(s, true, seen_one, &c, err, sizeof err), ST_OK);
    assert_int_equal(c.n, 1);
    assert_int_equal(st_triggerauth_delete(s, true, "a", err, sizeof err), ST_OK);
    assert_int_equal(st_triggerauth_get(s, false, "a", &doc, err, sizeof err), ST_OK);
    assert_string_equal(doc, "{}");
    free(doc);
    assert_int_equal(st_triggerauth_delete(s, false, "b", err, sizeof err), ST_OK);
    assert_int_equal(st_triggerauth_delete(s, false, "b", err, sizeof err), ST_NOT_FOUND);
    assert_string_equal(err, "triggerauthentication b not found");
    st_close(s);
    rm_rf(parent);
    free(parent);
}

/* A database that already holds scaled_objects and trigger_auths (made
 * before these tables were written by doctable.c) opens with its rows. */
static void test_doc_tables_existing_rows(void **state)
{
    (void)state;
    char *parent = tmpdir_new(), err[256], path[4200];
    snprintf(path, sizeof path, "%s/wasmfn.db", parent);
    sqlite3 *db;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db,
                                  "CREATE TABLE scaled_objects (name TEXT PRIMARY KEY, target TEXT NOT NULL,"
                                  " doc TEXT NOT NULL, created INTEGER NOT NULL);"
                                  "CREATE TABLE trigger_auths (name TEXT PRIMARY KEY, doc TEXT NOT NULL,"
                                  " created INTEGER NOT NULL);"
                                  "INSERT INTO scaled_objects VALUES ('s1', 'hello', '{}', 1);"
                                  "INSERT INTO trigger_auths VALUES ('t1', '{\"x\":1}', 2);",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    sqlite3_close(db);
    st_store_t *s = st_open(parent, err, sizeof err);
    assert_non_null(s);
    int n = 0;
    assert_int_equal(st_scaledobject_each(s, count_so, &n, err, sizeof err), ST_OK);
    assert_int_equal(n, 1);
    char *doc = NULL;
    assert_int_equal(st_triggerauth_get(s, false, "t1", &doc, err, sizeof err), ST_OK);
    assert_string_equal(doc, "{\"x\":1}");
    free(doc);
    st_close(s);
    rm_rf(parent);
    free(parent);
}

static void test_digest(void **state)
{
    (void)state;
    char d[ST_DIGEST_LEN + 1];
    st_digest_of((const uint8_t *)"abc", 3, d);
    assert_string_equal(d, DIGEST_A);
    assert_int_equal(st_digest_check(DIGEST_A), 0);
    assert_int_equal(st_digest_check("sha256:BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AD"), -1);
    assert_int_equal(st_digest_check("sha256:ba78"), -1);
    assert_int_equal(st_digest_check("sha512:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"), -1);
    assert_int_equal(st_digest_check("sha256:../../../../etc/passwd"), -1);
    assert_int_equal(st_digest_check(NULL), -1);
}

static void test_blob_roundtrip_and_corruption(void **state)
{
    (void)state;
    char *parent = tmpdir_new(), err[256];
    st_store_t *s = st_open(parent, err, sizeof err);
    assert_non_null(s);
    char d[ST_DIGEST_LEN + 1];
    assert_false(st_blob_exists(s, DIGEST_A));
    assert_int_equal(st_blob_put(s, (const uint8_t *)"abc", 3, d, err, sizeof err), ST_OK);
    assert_string_equal(d, DIGEST_A);
    assert_true(st_blob_exists(s, DIGEST_A));
    /* Idempotent. */
    assert_int_equal(st_blob_put(s, (const uint8_t *)"abc", 3, d, err, sizeof err), ST_OK);

    uint8_t *bytes;
    size_t len;
    assert_int_equal(st_blob_get(s, DIGEST_A, &bytes, &len, err, sizeof err), ST_OK);
    assert_int_equal(len, 3);
    assert_memory_equal(bytes, "abc", 3);
    free(bytes);

    /* The file sits at blobs/sha256/HEX with no temporary files left. */
    char *path, *bdir;
    assert_true(asprintf(&path, "%s/blobs/sha256/%s", parent, DIGEST_A + 7) > 0);
    assert_true(asprintf(&bdir, "%s/blobs/sha256", parent) > 0);
    DIR *dd = opendir(bdir);
    struct dirent *de;
    int files = 0;
    while ((de = readdir(dd))) {
        if (de->d_name[0] == '.' && (de->d_name[1] == 0 || de->d_name[1] == '.')) continue;
        files++;
        assert_string_equal(de->d_name, DIGEST_A + 7);
    }
    closedir(dd);
    assert_int_equal(files, 1);

    /* Damage it: the read notices, and a new put repairs it. */
    FILE *f = fopen(path, "w");
    fputs("abd", f);
    fclose(f);
    assert_int_equal(st_blob_get(s, DIGEST_A, &bytes, &len, err, sizeof err), ST_CORRUPT);
    assert_non_null(strstr(err, "damaged"));
    assert_int_equal(st_blob_put(s, (const uint8_t *)"abc", 3, d, err, sizeof err), ST_OK);
    assert_int_equal(st_blob_get(s, DIGEST_A, &bytes, &len, err, sizeof err), ST_OK);
    free(bytes);

    /* Missing and malformed digests. */
    const char *other = "sha256:0000000000000000000000000000000000000000000000000000000000000000";
    assert_int_equal(st_blob_get(s, other, &bytes, &len, err, sizeof err), ST_NOT_FOUND);
    assert_int_equal(st_blob_get(s, "sha256:../x", &bytes, &len, err, sizeof err), ST_ERR);

    /* Empty blobs are blobs too. */
    assert_int_equal(st_blob_put(s, NULL, 0, d, err, sizeof err), ST_OK);
    assert_int_equal(st_blob_get(s, d, &bytes, &len, err, sizeof err), ST_OK);
    assert_int_equal(len, 0);
    free(bytes);

    st_close(s);
    free(path);
    free(bdir);
    rm_rf(parent);
    free(parent);
}

static void test_stale_temp_files_removed(void **state)
{
    (void)state;
    char *parent = tmpdir_new(), err[256];
    st_store_t *s = st_open(parent, err, sizeof err);
    assert_non_null(s);
    st_close(s);
    char *tmp;
    assert_true(asprintf(&tmp, "%s/blobs/sha256/.tmp.abcdef", parent) > 0);
    FILE *f = fopen(tmp, "w");
    fputs("half a module", f);
    fclose(f);
    s = st_open(parent, err, sizeof err);
    assert_non_null(s);
    assert_int_not_equal(access(tmp, F_OK), 0);
    st_close(s);
    free(tmp);
    rm_rf(parent);
    free(parent);
}

static void test_artifacts(void **state)
{
    (void)state;
    char *parent = tmpdir_new(), err[256];
    st_store_t *s = st_open(parent, err, sizeof err);
    assert_non_null(s);
    uint8_t *bytes = NULL;
    size_t len = 0;
    assert_int_equal(st_artifact_get(s, DIGEST_A, &bytes, &len, err, sizeof err), ST_NOT_FOUND);
    assert_int_equal(st_artifact_put(s, DIGEST_A, (const uint8_t *)"compiled-1", 10, err, sizeof err),
                     ST_OK);
    assert_int_equal(st_artifact_get(s, DIGEST_A, &bytes, &len, err, sizeof err), ST_OK);
    assert_int_equal(len, 10);
    assert_memory_equal(bytes, "compiled-1", 10);
    free(bytes);
    /* Replaced whole by a newer one (a recompile after an engine upgrade). */
    assert_int_equal(st_artifact_put(s, DIGEST_A, (const uint8_t *)"v2", 2, err, sizeof err), ST_OK);
    assert_int_equal(st_artifact_get(s, DIGEST_A, &bytes, &len, err, sizeof err), ST_OK);
    assert_int_equal(len, 2);
    assert_memory_equal(bytes, "v2", 2);
    free(bytes);
    /* It lives at artifacts/HEX.compiled, not among the blobs, and
     * survives reopening; stray temporaries are cleaned up. */
    char *path, *tmp;
    assert_true(asprintf(&path, "%s/artifacts/%s.compiled", parent, DIGEST_A + 7) > 0);
    assert_true(asprintf(&tmp, "%s/artifacts/.tmp.half", parent) > 0);
    assert_int_equal(access(path, F_OK), 0);
    assert_false(st_blob_exists(s, DIGEST_A));
    st_close(s);
    FILE *f = fopen(tmp, "w");
    fputs("half", f);
    fclose(f);
    s = st_open(parent, err, sizeof err);
    assert_non_null(s);
    assert_int_not_equal(access(tmp, F_OK), 0);
    assert_int_equal(st_artifact_get(s, DIGEST_A, &bytes, &len, err, sizeof err), ST_OK);
    assert_int_equal(len, 2);
    free(bytes);
    /* Digests are checked: no path games. */
    assert_int_equal(st_artifact_put(s, "sha256:../../x", (const uint8_t *)"x", 1, err, sizeof err),
                     ST_ERR);
    assert_int_equal(st_artifact_get(s, "sha256:../x", &bytes, &len, err, sizeof err), ST_ERR);
    st_close(s);
    free(path);
    free(tmp);
    rm_rf(parent);
    free(parent);
}

static void test_revisions_numbered_and_persisted(void **state)
{
    (void)state;
    char *parent = tmpdir_new(), err[256], rev[ST_REVISION_NAME_MAX + 1];
    st_store_t *s = st_open(parent, err, sizeof err);
    assert_non_null(s);

    st_spec_t a = spec_of(DIGEST_A);
    char *env[] = {"GREETING=hi", "EMPTY=", "MULTI=a\nb"};
    a.env = env;
    a.nenv = 3;
    assert_int_equal(st_revision_add(s, "hello", &a, 1000, rev, err, sizeof err), ST_OK);
    assert_string_equal(rev, "hello-00001");
    st_spec_t b = spec_of(DIGEST_A);
    b.timeout_seconds = 5;
    b.max_scale = 3;
    b.target = 2.5;
    assert_int_equal(st_revision_add(s, "hello", &b, 2000, rev, err, sizeof err), ST_OK);
    assert_string_equal(rev, "hello-00002");
    assert_int_equal(st_revision_add(s, "other", &b, 2000, rev, err, sizeof err), ST_OK);
    assert_string_equal(rev, "other-00001");
    st_route_t routes[] = {{"hello-00001", false, 30}, {NULL, true, 70}};
    assert_int_equal(st_routes_set(s, "hello", routes, 2, err, sizeof err), ST_OK);
    st_close(s);

    s = st_open(parent, err, sizeof err);
    assert_non_null(s);
    st_function_t f;
    assert_int_equal(st_function_get(s, "hello", &f, err, sizeof err), ST_OK);
    assert_string_equal(f.name, "hello");
    assert_int_equal(f.created, 1000);
    assert_string_equal(f.latest_revision, "hello-00002");
    assert_int_equal(f.nrevisions, 2);
    assert_string_equal(f.revisions[0].name, "hello-00001");
    assert_int_equal(f.revisions[0].seq, 1);
    assert_true(st_spec_equal(&f.revisions[0].spec, &a));
    assert_string_equal(f.revisions[0].spec.env[2], "MULTI=a\nb");
    assert_true(st_spec_equal(&f.revisions[1].spec, &b));
    assert_false(st_spec_equal(&f.revisions[0].spec, &f.revisions[1].spec));
    assert_int_equal(f.revisions[1].created, 2000);
    assert_int_equal(f.nroutes, 2);
    assert_string_equal(f.routes[0].revision, "hello-00001");
    assert_false(f.routes[0].latest);
    assert_int_equal(f.routes[0].percent, 30);
    assert_null(f.routes[1].revision);
    assert_true(f.routes[1].latest);
    assert_int_equal(f.routes[1].percent, 70);
    assert_non_null(st_function_revision(&f, "hello-00002"));
    assert_null(st_function_revision(&f, "hello-00003"));
    st_function_free(&f);

    char **names;
    size_t n;
    assert_int_equal(st_function_names(s, &names, &n, err, sizeof err), ST_OK);
    assert_int_equal(n, 2);
    assert_string_equal(names[0], "hello");
    assert_string_equal(names[1], "other");
    st_names_free(names, n);

    /* Numbers continue after reopening. */
    assert_int_equal(st_revision_add(s, "hello", &a, 3000, rev, err, sizeof err), ST_OK);
    assert_string_equal(rev, "hello-00003");

    /* Delete takes revisions and routes with it; a new function of that name
     * starts again at 00001. */
    assert_int_equal(st_function_delete(s, "hello", err, sizeof err), ST_OK);
    assert_int_equal(st_function_get(s, "hello", &f, err, sizeof err), ST_NOT_FOUND);
    assert_int_equal(st_function_delete(s, "hello", err, sizeof err), ST_NOT_FOUND);
    assert_int_equal(st_routes_set(s, "hello", routes, 1, err, sizeof err), ST_NOT_FOUND);
    assert_int_equal(st_revision_add(s, "hello", &b, 4000, rev, err, sizeof err), ST_OK);
    assert_string_equal(rev, "hello-00001");
    assert_int_equal(st_function_get(s, "hello", &f, err, sizeof err), ST_OK);
    assert_int_equal(f.nrevisions, 1);
    assert_int_equal(f.nroutes, 0);
    assert_int_equal(f.revisions[0].spec.nenv, 0);
    st_function_free(&f);
    /* The other function was not touched. */
    assert_int_equal(st_function_get(s, "other", &f, err, sizeof err), ST_OK);
    assert_int_equal(f.nrevisions, 1);
    st_function_free(&f);

    st_close(s);
    rm_rf(parent);
    free(parent);
}

static void test_rollback_discards(void **state)
{
    (void)state;
    char *parent = tmpdir_new(), err[256], rev[ST_REVISION_NAME_MAX + 1];
    st_store_t *s = st_open(parent, err, sizeof err);
    assert_non_null(s);
    st_spec_t a = spec_of(DIGEST_A);
    assert_int_equal(st_revision_add(s, "keep", &a, 1, rev, err, sizeof err), ST_OK);

    assert_int_equal(st_begin(s, err, sizeof err), ST_OK);
    assert_int_equal(st_revision_add(s, "keep", &a, 2, rev, err, sizeof err), ST_OK);
    assert_int_equal(st_revision_add(s, "gone", &a, 2, rev, err, sizeof err), ST_OK);
    st_rollback(s);

    st_function_t f;
    assert_int_equal(st_function_get(s, "gone", &f, err, sizeof err), ST_NOT_FOUND);
    assert_int_equal(st_function_get(s, "keep", &f, err, sizeof err), ST_OK);
    assert_int_equal(f.nrevisions, 1);
    st_function_free(&f);
    /* The number rolled back too. */
    assert_int_equal(st_revision_add(s, "keep", &a, 3, rev, err, sizeof err), ST_OK);
    assert_string_equal(rev, "keep-00002");

    /* A committed transaction is visible after reopening. */
    assert_int_equal(st_begin(s, err, sizeof err), ST_OK);
    assert_int_equal(st_revision_add(s, "new", &a, 4, rev, err, sizeof err), ST_OK);
    assert_int_equal(st_commit(s, err, sizeof err), ST_OK);
    st_close(s);
    s = st_open(parent, err, sizeof err);
    assert_int_equal(st_function_get(s, "new", &f, err, sizeof err), ST_OK);
    st_function_free(&f);
    st_close(s);
    rm_rf(parent);
    free(parent);
}

static void test_name_too_long(void **state)
{
    (void)state;
    char *parent = tmpdir_new(), err[256], rev[ST_REVISION_NAME_MAX + 1];
    st_store_t *s = st_open(parent, err, sizeof err);
    st_spec_t a = spec_of(DIGEST_A);
    char name[ST_NAME_MAX + 2];
    memset(name, 'a', sizeof name - 1);
    name[sizeof name - 1] = 0;
    assert_int_equal(st_revision_add(s, name, &a, 1, rev, err, sizeof err), ST_ERR);
    name[ST_NAME_MAX] = 0;
    assert_int_equal(st_revision_add(s, name, &a, 1, rev, err, sizeof err), ST_OK);
    assert_int_equal(strlen(rev), ST_REVISION_NAME_MAX);
    st_close(s);
    rm_rf(parent);
    free(parent);
}

/* Issue 14, item 13: revisions no route names are pruned beyond the bound,
 * oldest first; the latest and routed ones stay; the images of the
 * deleted ones are returned, and their artefacts can be deleted. */
static void test_revisions_pruned(void **state)
{
    (void)state;
    char *parent = tmpdir_new(), err[256], rev[ST_REVISION_NAME_MAX + 1];
    st_store_t *s = st_open(parent, err, sizeof err);
    assert_non_null(s);
    st_spec_t a = spec_of(DIGEST_A), b = spec_of(DIGEST_B);
    for (int i = 0; i < 6; i++)
        assert_int_equal(st_revision_add(s, "f", i < 2 ? &a : &b, i, rev, err, sizeof err), ST_OK);
    st_route_t routes[2] = {{.revision = "f-00002", .percent = 0}, {.latest = true, .percent = 100}};
    assert_int_equal(st_routes_set(s, "f", routes, 2, err, sizeof err), ST_OK);
    char **images;
    size_t n;
    assert_int_equal(st_revisions_prune(s, "f", 2, &images, &n, err, sizeof err), ST_OK);
    /* Unrouted, not latest: 1, 3, 4, 5; the newest two (4, 5) stay. */
    assert_int_equal(n, 2);
    st_function_t f;
    assert_int_equal(st_function_get(s, "f", &f, err, sizeof err), ST_OK);
    assert_int_equal(f.nrevisions, 4);
    assert_non_null(st_function_revision(&f, "f-00002"));
    assert_null(st_function_revision(&f, "f-00001"));
    assert_null(st_function_revision(&f, "f-00003"));
    assert_non_null(st_function_revision(&f, "f-00006"));
    st_function_free(&f);
    /* f-00002 still runs DIGEST_A; nothing runs a digest never used. */
    assert_int_equal(st_image_used(s, DIGEST_A, err, sizeof err), 1);
    st_names_free(images, n);
    assert_int_equal(st_revisions_prune(s, "f", 2, &images, &n, err, sizeof err), ST_OK);
    assert_int_equal(n, 0);
    st_names_free(images, n);
    /* Artefacts of a module go together, the blob directory untouched. */
    assert_int_equal(st_artifact_put(s, DIGEST_B, (const uint8_t *)"c", 1, err, sizeof err), ST_OK);
    assert_int_equal(st_artifact_put_kind(s, DIGEST_B, "native-x", (const uint8_t *)"n", 1, err,
                                          sizeof err), ST_OK);
    assert_int_equal(st_artifact_put(s, DIGEST_A, (const uint8_t *)"a", 1, err, sizeof err), ST_OK);
    st_artifacts_delete(s, DIGEST_B);
    uint8_t *bytes;
    size_t len;
    assert_int_equal(st_artifact_get(s, DIGEST_B, &bytes, &len, err, sizeof err), ST_NOT_FOUND);
    assert_int_equal(st_artifact_get_kind(s, DIGEST_B, "native-x", &bytes, &len, err, sizeof err),
                     ST_NOT_FOUND);
    assert_int_equal(st_artifact_get(s, DIGEST_A, &bytes, &len, err, sizeof err), ST_OK);
    free(bytes);
    st_close(s);
    rm_rf(parent);
    free(parent);
}

/* A database of schema version 1 (before revisions recorded registry
 * references) is migrated at open: its revisions keep everything and read
 * back with no reference; new ones record reference and digest. */
static void test_schema_1_migrated(void **state)
{
    (void)state;
    char *parent = tmpdir_new(), err[256], *db, rev[ST_REVISION_NAME_MAX + 1];
    assert_true(asprintf(&db, "%s/wasmfn.db", parent) > 0);
    sqlite3 *h;
    assert_int_equal(sqlite3_open(db, &h), SQLITE_OK);
    char *sql;
    assert_true(asprintf(&sql,
                         "CREATE TABLE functions (name TEXT PRIMARY KEY, created INTEGER NOT NULL,"
                         " next_seq INTEGER NOT NULL DEFAULT 1, latest_revision TEXT);"
                         "CREATE TABLE revisions (name TEXT PRIMARY KEY, function TEXT NOT NULL"
                         " REFERENCES functions(name) ON DELETE CASCADE, seq INTEGER NOT NULL,"
                         " created INTEGER NOT NULL, image TEXT NOT NULL, memory_limit_bytes"
                         " INTEGER NOT NULL, timeout_seconds INTEGER NOT NULL, min_scale INTEGER"
                         " NOT NULL, max_scale INTEGER NOT NULL, initial_scale INTEGER NOT NULL,"
                         " target REAL NOT NULL, window_seconds INTEGER NOT NULL,"
                         " UNIQUE (function, seq));"
                         "CREATE TABLE revision_env (revision TEXT NOT NULL REFERENCES"
                         " revisions(name) ON DELETE CASCADE, pos INTEGER NOT NULL, entry TEXT NOT"
                         " NULL, PRIMARY KEY (revision, pos));"
                         "CREATE TABLE routes (function TEXT NOT NULL REFERENCES functions(name)"
                         " ON DELETE CASCADE, pos INTEGER NOT NULL, revision TEXT, latest INTEGER"
                         " NOT NULL, percent INTEGER NOT NULL, PRIMARY KEY (function, pos));"
                         "INSERT INTO functions VALUES ('old', 1, 2, 'old-00001');"
                         "INSERT INTO revisions VALUES ('old-00001', 'old', 1, 1, '%s', 67108864,"
                         " 30, 0, 0, 1, 1.0, 60);"
                         "PRAGMA user_version=1;",
                         DIGEST_A) > 0);
    assert_int_equal(sqlite3_exec(h, sql, NULL, NULL, NULL), SQLITE_OK);
    free(sql);
    sqlite3_close(h);

    st_store_t *s = st_open(parent, err, sizeof err);
    if (!s) fail_msg("open: %s", err);
    st_function_t f;
    assert_int_equal(st_function_get(s, "old", &f, err, sizeof err), ST_OK);
    assert_int_equal(f.nrevisions, 1);
    assert_string_equal(f.revisions[0].spec.image, DIGEST_A);
    assert_null(f.revisions[0].spec.image_ref);
    assert_null(f.revisions[0].spec.image_digest);
    st_spec_t a = spec_of(DIGEST_A);
    /* Same module, now from a registry: another template. */
    a.image_ref = "127.0.0.1:5000/old:1";
    a.image_digest = (char *)DIGEST_B;
    assert_false(st_spec_equal(&a, &f.revisions[0].spec));
    st_function_free(&f);
    assert_int_equal(st_revision_add(s, "old", &a, 2, rev, err, sizeof err), ST_OK);
    assert_string_equal(rev, "old-00002");
    st_close(s);

    s = st_open(parent, err, sizeof err);
    assert_non_null(s);
    assert_int_equal(st_function_get(s, "old", &f, err, sizeof err), ST_OK);
    assert_int_equal(f.nrevisions, 2);
    assert_string_equal(f.revisions[1].spec.image_ref, "127.0.0.1:5000/old:1");
    assert_string_equal(f.revisions[1].spec.image_digest, DIGEST_B);
    /* The manifest digest alone does not make another template. */
    st_spec_t b = spec_of(DIGEST_A);
    b.image_ref = "127.0.0.1:5000/old:1";
    b.image_digest = "sha256:cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc";
    assert_true(st_spec_equal(&b, &f.revisions[1].spec));
    st_spec_t c;
    assert_int_equal(st_spec_copy(&c, &f.revisions[1].spec), 0);
    assert_string_equal(c.image_digest, DIGEST_B);
    st_spec_free(&c);
    st_function_free(&f);
    st_close(s);
    free(db);
    rm_rf(parent);
    free(parent);
}

/* A blob written in pieces lands under its digest only when the bytes hash
 * to it; otherwise nothing is left, not even the temporary file. */
static void test_blob_writer(void **state)
{
    (void)state;
    char *parent = tmpdir_new(), err[256];
    st_store_t *s = st_open(parent, err, sizeof err);
    assert_non_null(s);
    st_blob_writer_t *w = st_blob_writer_open(s, err, sizeof err);
    assert_non_null(w);
    assert_int_equal(st_blob_writer_write(w, (const uint8_t *)"ab", 2, err, sizeof err), ST_OK);
    assert_int_equal(st_blob_writer_write(w, (const uint8_t *)"c", 1, err, sizeof err), ST_OK);
    assert_false(st_blob_exists(s, DIGEST_A));
    assert_int_equal(st_blob_writer_commit(w, DIGEST_A, err, sizeof err), ST_OK);
    uint8_t *bytes;
    size_t len;
    assert_int_equal(st_blob_get(s, DIGEST_A, &bytes, &len, err, sizeof err), ST_OK);
    assert_int_equal(len, 3);
    free(bytes);

    w = st_blob_writer_open(s, err, sizeof err);
    assert_non_null(w);
    assert_int_equal(st_blob_writer_write(w, (const uint8_t *)"abd", 3, err, sizeof err), ST_OK);
    assert_int_equal(st_blob_writer_commit(w, DIGEST_B, err, sizeof err), ST_CORRUPT);
    assert_non_null(strstr(err, "nothing was kept"));
    assert_false(st_blob_exists(s, DIGEST_B));
    w = st_blob_writer_open(s, err, sizeof err);
    assert_non_null(w);
    st_blob_writer_abort(w);

    char *dir;
    assert_true(asprintf(&dir, "%s/blobs/sha256", parent) > 0);
    DIR *d = opendir(dir);
    assert_non_null(d);
    struct dirent *e;
    int files = 0;
    while ((e = readdir(d)))
        if (e->d_name[0] != '.' || strncmp(e->d_name, ".tmp.", 5) == 0) files++;
    closedir(d);
    assert_int_equal(files, 1); /* DIGEST_A's blob and no temporary file */
    free(dir);
    st_close(s);
    rm_rf(parent);
    free(parent);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_open_creates_private_dir_and_token),
        cmocka_unit_test(test_bad_token_file_is_refused),
        cmocka_unit_test(test_second_open_is_refused_while_locked),
        cmocka_unit_test(test_open_fails_on_a_file),
        cmocka_unit_test(test_wal_mode),
        cmocka_unit_test(test_revision_resources),
        cmocka_unit_test(test_scaledobjects),
        cmocka_unit_test(test_triggerauths),
        cmocka_unit_test(test_doc_tables_existing_rows),
        cmocka_unit_test(test_digest),
        cmocka_unit_test(test_blob_roundtrip_and_corruption),
        cmocka_unit_test(test_stale_temp_files_removed),
        cmocka_unit_test(test_artifacts),
        cmocka_unit_test(test_revisions_numbered_and_persisted),
        cmocka_unit_test(test_rollback_discards),
        cmocka_unit_test(test_name_too_long),
        cmocka_unit_test(test_revisions_pruned),
        cmocka_unit_test(test_schema_1_migrated),
        cmocka_unit_test(test_blob_writer),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
