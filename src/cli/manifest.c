/*
 * manifest.c — reads a manifest file (one or more YAML documents separated
 * by `---`, as with kubectl) and converts each document to JSON, the shape
 * the admin API's POST /v1/apply takes.
 *
 * It walks libyaml's event stream rather than its document tree because the
 * events still say whether a scalar was quoted: `timeoutSeconds: 30` must
 * become the number 30 while `min-scale: "0"` stays the string "0" (YAML 1.2
 * core schema for plain scalars, quoted scalars are always strings).
 *
 * While converting it records the line of every field under its path
 * ("spec.template.spec.containers[0].image", "spec.template.metadata.
 * annotations[autoscaling.knative.dev/window]"), so that an error found later
 * — a missing image file, or a field the daemon rejects — can be reported
 * as "FILE: document N: line L: FIELD: problem".
 */
#define _GNU_SOURCE
#include <errno.h>
#include <libgen.h>
#include <stdlib.h>
#include <string.h>

#include <yaml.h>

#include "cli/client.h"

/* Deep nesting and alias bombs are refused rather than followed. */
#define MAX_DEPTH 64
#define MAX_NODES 1000000

typedef struct anchor {
    char *name;
    cJSON *node; /* a copy of the anchored value, owned */
} anchor_t;

typedef struct conv {
    yaml_parser_t parser;
    cli_doc_t *doc;
    anchor_t *anchors;
    size_t nanchors;
    size_t nodes;
    char *err;
    size_t errlen;
    const char *file;
} conv_t;

static void conv_error(conv_t *c, const yaml_mark_t *m, const char *fmt, const char *a,
                       const char *b)
{
    char what[512];
    snprintf(what, sizeof what, fmt, a ? a : "", b ? b : "");
    snprintf(c->err, c->errlen, "%s: document %d: line %zu: column %zu: %s", c->file,
             c->doc ? c->doc->index : 1, m->line + 1, m->column + 1, what);
}

static void conv_parser_error(conv_t *c, int docno)
{
    const yaml_parser_t *p = &c->parser;
    const yaml_mark_t *m = p->problem ? &p->problem_mark : &p->mark;
    char ctx[256] = "";
    if (p->context)
        snprintf(ctx, sizeof ctx, " (%s at line %zu)", p->context, p->context_mark.line + 1);
    snprintf(c->err, c->errlen, "%s: document %d: line %zu: column %zu: %s%s", c->file, docno,
             m->line + 1, m->column + 1, p->problem ? p->problem : "YAML syntax error", ctx);
}

static int next_event(conv_t *c, yaml_event_t *ev, int docno)
{
    if (!yaml_parser_parse(&c->parser, ev)) {
        conv_parser_error(c, docno);
        return -1;
    }
    return 0;
}

static int record_path(cli_doc_t *d, const char *path, int line)
{
    if (!*path) return 0;
    char **np = realloc(d->paths, (d->npaths + 1) * sizeof *np);
    if (!np) return -1;
    d->paths = np;
    int *nl = realloc(d->lines, (d->npaths + 1) * sizeof *nl);
    if (!nl) return -1;
    d->lines = nl;
    if (!(d->paths[d->npaths] = strdup(path))) return -1;
    d->lines[d->npaths++] = line;
    return 0;
}

/* YAML 1.2 core schema for plain (unquoted) scalars. */
static cJSON *scalar_to_json(const char *s, size_t len, bool plain)
{
    if (!plain) return cJSON_CreateString(s);
    if (len == 0 || strcmp(s, "~") == 0 || strcmp(s, "null") == 0 || strcmp(s, "Null") == 0 ||
        strcmp(s, "NULL") == 0)
        return cJSON_CreateNull();
    if (strcmp(s, "true") == 0 || strcmp(s, "True") == 0 || strcmp(s, "TRUE") == 0)
        return cJSON_CreateTrue();
    if (strcmp(s, "false") == 0 || strcmp(s, "False") == 0 || strcmp(s, "FALSE") == 0)
        return cJSON_CreateFalse();
    /* Integers: [-+]?[0-9]+, 0x..., 0o... */
    const char *p = s;
    if (*p == '-' || *p == '+') p++;
    if (*p) {
        char *end;
        errno = 0;
        if (p[0] == '0' && (p[1] == 'x' || p[1] == 'o') && p[2] && p == s) {
            unsigned long long v = strtoull(p + 2, &end, p[1] == 'x' ? 16 : 8);
            if (!*end && !errno && v <= (1ull << 53)) return cJSON_CreateNumber((double)v);
        }
        size_t digits = strspn(p, "0123456789");
        if (digits == strlen(p)) {
            double v = strtod(s, &end);
            if (!*end) return cJSON_CreateNumber(v);
        }
        /* Floats: [-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)? */
        const char *q = p;
        size_t intd = strspn(q, "0123456789");
        q += intd;
        size_t fracd = 0;
        if (*q == '.') {
            q++;
            fracd = strspn(q, "0123456789");
            q += fracd;
        }
        bool ok = intd + fracd > 0;
        if (ok && (*q == 'e' || *q == 'E')) {
            q++;
            if (*q == '-' || *q == '+') q++;
            size_t ed = strspn(q, "0123456789");
            if (!ed) ok = false;
            q += ed;
        }
        if (ok && !*q) {
            double v = strtod(s, &end);
            if (!*end) return cJSON_CreateNumber(v);
        }
    }
    /* .inf / .nan have no JSON form: they stay strings. */
    return cJSON_CreateString(s);
}

static int conv_anchor(conv_t *c, const yaml_char_t *name, const cJSON *node)
{
    if (!name) return 0;
    anchor_t *na = realloc(c->anchors, (c->nanchors + 1) * sizeof *na);
    if (!na) return -1;
    c->anchors = na;
    na[c->nanchors].name = strdup((const char *)name);
    na[c->nanchors].node = cJSON_Duplicate(node, 1);
    if (!na[c->nanchors].name || !na[c->nanchors].node) return -1;
    c->nanchors++;
    return 0;
}

static size_t json_count(const cJSON *j)
{
    size_t n = 1;
    for (const cJSON *e = j ? j->child : NULL; e; e = e->next) n += json_count(e);
    return n;
}

/* Converts the node that starts with event ev (already read); path is the
 * node's field path, for the line table and error messages. */
static cJSON *conv_node(conv_t *c, yaml_event_t *ev, char *path, size_t pathcap, int depth)
{
    int line = (int)ev->start_mark.line + 1;
    if (depth > MAX_DEPTH) {
        conv_error(c, &ev->start_mark, "%s: nested more than 64 levels deep%s", path, NULL);
        return NULL;
    }
    if (++c->nodes > MAX_NODES) {
        conv_error(c, &ev->start_mark, "more than a million YAML nodes%s%s", NULL, NULL);
        return NULL;
    }
    if (record_path(c->doc, path, line) != 0) goto oom;

    switch (ev->type) {
    case YAML_ALIAS_EVENT: {
        const char *name = (const char *)ev->data.alias.anchor;
        for (size_t i = c->nanchors; i-- > 0;)
            if (strcmp(c->anchors[i].name, name) == 0) {
                c->nodes += json_count(c->anchors[i].node);
                if (c->nodes > MAX_NODES) {
                    conv_error(c, &ev->start_mark, "more than a million YAML nodes%s%s",
                               NULL, NULL);
                    return NULL;
                }
                cJSON *dup = cJSON_Duplicate(c->anchors[i].node, 1);
                if (!dup) goto oom;
                return dup;
            }
        conv_error(c, &ev->start_mark, "unknown alias *%s%s", name, NULL);
        return NULL;
    }
    case YAML_SCALAR_EVENT: {
        bool plain = ev->data.scalar.plain_implicit && ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
        const char *tag = (const char *)ev->data.scalar.tag;
        if (tag && strcmp(tag, "tag:yaml.org,2002:str") == 0) plain = false;
        if (memchr(ev->data.scalar.value, 0, ev->data.scalar.length)) {
            /* "\0" in a double-quoted scalar: as a C string it would be
             * cut there silently. */
            conv_error(c, &ev->start_mark, "%s: a NUL character (\\0) in a string; names and "
                       "values cannot contain it%s", *path ? path : "(top level)", NULL);
            return NULL;
        }
        cJSON *j = scalar_to_json((const char *)ev->data.scalar.value, ev->data.scalar.length,
                                  plain);
        if (!j) goto oom;
        if (conv_anchor(c, ev->data.scalar.anchor, j) != 0) {
            cJSON_Delete(j);
            goto oom;
        }
        return j;
    }
    case YAML_SEQUENCE_START_EVENT: {
        yaml_char_t *anchor = ev->data.sequence_start.anchor
                                  ? (yaml_char_t *)strdup((char *)ev->data.sequence_start.anchor)
                                  : NULL;
        cJSON *arr = cJSON_CreateArray();
        size_t base = strlen(path);
        int idx = 0;
        if (!arr) goto oom_anchor_seq;
        for (;;) {
            yaml_event_t e;
            if (next_event(c, &e, c->doc->index) != 0) {
                cJSON_Delete(arr);
                free(anchor);
                return NULL;
            }
            if (e.type == YAML_SEQUENCE_END_EVENT) {
                yaml_event_delete(&e);
                break;
            }
            snprintf(path + base, pathcap - base, "[%d]", idx++);
            cJSON *item = conv_node(c, &e, path, pathcap, depth + 1);
            yaml_event_delete(&e);
            path[base] = 0;
            if (!item) {
                cJSON_Delete(arr);
                free(anchor);
                return NULL;
            }
            cJSON_AddItemToArray(arr, item);
        }
        if (conv_anchor(c, anchor, arr) != 0) {
            cJSON_Delete(arr);
            goto oom_anchor_seq;
        }
        free(anchor);
        return arr;
    oom_anchor_seq:
        free(anchor);
        goto oom;
    }
    case YAML_MAPPING_START_EVENT: {
        yaml_char_t *anchor = ev->data.mapping_start.anchor
                                  ? (yaml_char_t *)strdup((char *)ev->data.mapping_start.anchor)
                                  : NULL;
        cJSON *obj = cJSON_CreateObject();
        size_t base = strlen(path);
        if (!obj) goto oom_anchor_map;
        for (;;) {
            yaml_event_t k;
            if (next_event(c, &k, c->doc->index) != 0) goto fail_map;
            if (k.type == YAML_MAPPING_END_EVENT) {
                yaml_event_delete(&k);
                break;
            }
            if (k.type != YAML_SCALAR_EVENT) {
                conv_error(c, &k.start_mark, "%s: only plain keys are supported in a mapping%s",
                           base ? path : "(top level)", NULL);
                yaml_event_delete(&k);
                goto fail_map;
            }
            if (memchr(k.data.scalar.value, 0, k.data.scalar.length)) {
                conv_error(c, &k.start_mark, "%s: a NUL character (\\0) in a key%s",
                           base ? path : "(top level)", NULL);
                yaml_event_delete(&k);
                goto fail_map;
            }
            char *key = strdup((const char *)k.data.scalar.value);
            yaml_mark_t kmark = k.start_mark;
            yaml_event_delete(&k);
            if (!key) goto oom_map;
            /* Keys that hold dots or slashes (annotations) are written
             * "annotations[autoscaling.knative.dev/window]", as the daemon
             * names them in its messages. */
            if (base && strpbrk(key, "./[] "))
                snprintf(path + base, pathcap - base, "[%s]", key);
            else
                snprintf(path + base, pathcap - base, "%s%s", base ? "." : "", key);
            if (cJSON_GetObjectItemCaseSensitive(obj, key)) {
                conv_error(c, &kmark, "%s: duplicate key%s", path, NULL);
                free(key);
                goto fail_map;
            }
            yaml_event_t v;
            if (next_event(c, &v, c->doc->index) != 0) {
                free(key);
                goto fail_map;
            }
            cJSON *val = conv_node(c, &v, path, pathcap, depth + 1);
            /* The line of a field is the line of its key. */
            if (val && c->doc->npaths) {
                for (size_t i = c->doc->npaths; i-- > 0;)
                    if (strcmp(c->doc->paths[i], path) == 0) {
                        c->doc->lines[i] = (int)kmark.line + 1;
                        break;
                    }
            }
            yaml_event_delete(&v);
            path[base] = 0;
            if (!val) {
                free(key);
                goto fail_map;
            }
            cJSON_AddItemToObject(obj, key, val);
            free(key);
        }
        if (conv_anchor(c, anchor, obj) != 0) goto oom_map;
        free(anchor);
        return obj;
    oom_map:
        cJSON_Delete(obj);
    oom_anchor_map:
        free(anchor);
        goto oom;
    fail_map:
        path[base] = 0;
        cJSON_Delete(obj);
        free(anchor);
        return NULL;
    }
    default:
        conv_error(c, &ev->start_mark, "unexpected YAML event%s%s", NULL, NULL);
        return NULL;
    }
oom:
    snprintf(c->err, c->errlen, "%s: out of memory", c->file);
    return NULL;
}

static void doc_free(cli_doc_t *d)
{
    cJSON_Delete(d->json);
    for (size_t i = 0; i < d->npaths; i++) free(d->paths[i]);
    free(d->paths);
    free(d->lines);
    memset(d, 0, sizeof *d);
}

void cli_manifest_free(cli_manifest_t *m)
{
    for (size_t i = 0; i < m->ndocs; i++) doc_free(&m->docs[i]);
    free(m->docs);
    free(m->file);
    free(m->dir);
    memset(m, 0, sizeof *m);
}

static void conv_anchors_free(conv_t *c)
{
    for (size_t i = 0; i < c->nanchors; i++) {
        free(c->anchors[i].name);
        cJSON_Delete(c->anchors[i].node);
    }
    free(c->anchors);
    c->anchors = NULL;
    c->nanchors = 0;
}

int cli_manifest_load(const char *file, cli_manifest_t *m, char *err, size_t errlen)
{
    memset(m, 0, sizeof *m);
    m->file = strdup(strcmp(file, "-") == 0 ? "<stdin>" : file);
    if (strcmp(file, "-") == 0) {
        m->dir = strdup(".");
    } else {
        char *tmp = strdup(file);
        m->dir = tmp ? strdup(dirname(tmp)) : NULL;
        free(tmp);
    }
    if (!m->file || !m->dir) {
        snprintf(err, errlen, "%s: out of memory", file);
        cli_manifest_free(m);
        return -1;
    }

    cm_buf_t text = {0};
    char why[256];
    /* Not only regular files: `-f -` and `-f <(...)` are pipes. */
    if (cli_file_read_max(file, CLI_MANIFEST_MAX_BYTES, false, &text, why, sizeof why) != 0) {
        snprintf(err, errlen, "%s: %s", m->file, why);
        cm_buf_free(&text);
        cli_manifest_free(m);
        return -1;
    }

    conv_t c = {.err = err, .errlen = errlen, .file = m->file};
    if (!yaml_parser_initialize(&c.parser)) {
        snprintf(err, errlen, "%s: cannot initialise the YAML parser", m->file);
        cm_buf_free(&text);
        cli_manifest_free(m);
        return -1;
    }
    yaml_parser_set_input_string(&c.parser, (const unsigned char *)text.data, text.len);

    int rc = -1, docno = 0;
    char path[4096];
    yaml_event_t ev;
    for (;;) {
        if (next_event(&c, &ev, docno + 1) != 0) goto out;
        if (ev.type == YAML_STREAM_END_EVENT) {
            yaml_event_delete(&ev);
            break;
        }
        if (ev.type != YAML_DOCUMENT_START_EVENT) {
            yaml_event_delete(&ev); /* STREAM_START */
            continue;
        }
        docno++;
        cli_doc_t *nd = realloc(m->docs, (m->ndocs + 1) * sizeof *nd);
        if (!nd) {
            yaml_event_delete(&ev);
            snprintf(err, errlen, "%s: out of memory", m->file);
            goto out;
        }
        m->docs = nd;
        cli_doc_t *d = &m->docs[m->ndocs++];
        memset(d, 0, sizeof *d);
        d->index = docno;
        d->line = (int)ev.start_mark.line + 1;
        c.doc = d;
        yaml_event_delete(&ev);

        /* The document's root node, then DOCUMENT_END. */
        if (next_event(&c, &ev, docno) != 0) goto out;
        /* Errors about the whole document point at its first line of
         * content, not at the `---` above it. */
        d->line = (int)ev.start_mark.line + 1;
        path[0] = 0;
        d->json = conv_node(&c, &ev, path, sizeof path, 0);
        yaml_event_delete(&ev);
        if (!d->json) goto out;
        if (next_event(&c, &ev, docno) != 0) goto out;
        yaml_event_delete(&ev);
        conv_anchors_free(&c); /* anchors do not cross documents */
        /* A document holding only null (an empty one between two `---`)
         * counts for numbering but carries nothing. */
        if (cJSON_IsNull(d->json)) {
            cJSON_Delete(d->json);
            d->json = NULL;
        }
    }
    rc = 0;
out:
    conv_anchors_free(&c);
    yaml_parser_delete(&c.parser);
    cm_buf_free(&text);
    if (rc != 0) {
        /* Keep the error text: cli_manifest_free does not touch it. */
        cli_manifest_free(m);
    }
    return rc;
}

int cli_doc_line(const cli_doc_t *d, const char *path)
{
    size_t best = 0;
    int line = 0;
    size_t plen = strlen(path);
    for (size_t i = 0; i < d->npaths; i++) {
        size_t n = strlen(d->paths[i]);
        if (n == plen && strcmp(d->paths[i], path) == 0) return d->lines[i];
        if (n < plen && n > best && strncmp(d->paths[i], path, n) == 0 &&
            (path[n] == '.' || path[n] == '[')) {
            best = n;
            line = d->lines[i];
        }
    }
    return line;
}
