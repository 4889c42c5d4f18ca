/*
 * client.h — what the admin-API subcommands (deploy, apply, list, get,
 * delete, invoke, logs) share: an HTTP client for the admin REST API
 * (docs/api.md) over libcurl, a growable byte buffer, option parsing and the
 * YAML manifest reader. Prefix: cli_. Private to src/cli/.
 */
#ifndef WASMFN_CLI_CLIENT_H
#define WASMFN_CLI_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <cjson/cJSON.h>

#include "common/buf.h"

/* Exit statuses of the client subcommands. */
enum {
    CLI_EXIT_FAIL = 1,  /* the API answered with an error, or the guest's 5xx */
    CLI_EXIT_ARGS = 2,  /* bad command line */
};

/* ---- buffers ---- */

/* The CLI's buffers are common/buf.h's cm_buf_t. */
/* Reads a whole file ("-" = stdin) into b. Returns -1 with errno set. */
int cli_file_read(const char *path, cm_buf_t *b);
/* The same into memory of its own, which the caller frees (*len its
 * length); NULL with errno set. */
uint8_t *cli_file_bytes(const char *path, size_t *len);

/* The most the CLI reads for a module or an invoke body (the admin API's
 * body limit, `wasmfn serve`'s ADMIN_MAX_BODY), and for a manifest. */
#define CLI_UPLOAD_MAX_BYTES ((size_t)256 << 20)
#define CLI_MANIFEST_MAX_BYTES ((size_t)16 << 20)

/* Like cli_file_read, but reads at most max bytes: a file that holds more
 * (a device such as /dev/zero never ends) is refused without reading it
 * all. With regular_only, anything but a regular file is refused before it
 * is opened. Returns 0, or -1 with a one-line reason in err. */
int cli_file_read_max(const char *path, size_t max, bool regular_only, cm_buf_t *b, char *err,
                      size_t errlen);

/* ---- the admin API ---- */

typedef struct cli_api {
    char *base;               /* $WASMFN_API without trailing '/', owned */
    char *token;              /* bearer token or NULL, owned */
    char *token_source;       /* "$WASMFN_TOKEN" or the token file's path, owned */
    void *curl;               /* CURL *, reused for every request (keep-alive) */
} cli_api_t;

typedef struct cli_request {
    const char *method;          /* "GET", "POST", ... */
    const char *path;            /* "/v1/functions", already URL-escaped */
    const char *const *headers;  /* extra "Key: value" lines */
    size_t nheaders;
    const void *body;            /* NULL = no body */
    size_t body_len;
    const char *content_type;    /* NULL = none */
    bool stream;                 /* body bytes go to stdout as they arrive (logs -f),
                                  * control characters escaped (lr_escape) */
    long timeout_s;              /* 0 = none */
} cli_request_t;

typedef struct cli_response {
    long status;
    cm_buf_t body;
    cm_buf_t headers;           /* the raw header block (status line included) */
} cli_response_t;

/* Reads $WASMFN_API, $WASMFN_TOKEN or the token file, and sets up libcurl.
 * Returns 0, or -1 after printing one line to stderr. */
int cli_api_open(cli_api_t *api);
void cli_api_close(cli_api_t *api);

/* Sends one request. Returns 0 when any HTTP answer came back (look at
 * resp->status), or -1 after printing one line naming the failure (e.g. the
 * admin API cannot be reached). resp is always initialised; free it with
 * cli_response_free. */
int cli_api_do(cli_api_t *api, const cli_request_t *req, cli_response_t *resp);
void cli_response_free(cli_response_t *r);

/* Shorthand for a request with an optional JSON body. */
int cli_api_json(cli_api_t *api, const char *method, const char *path, const cJSON *body,
                 cli_response_t *resp);

/* The one-line error an API answer carries: the "error" member of a JSON
 * body, else the body's first line, else the status. Writes to out. */
void cli_response_error(const cli_response_t *r, char *out, size_t n);

/* Prints "wasmfn CMD: WHAT: MESSAGE" for a non-2xx answer (adding a hint on
 * 401 about the token), and returns CLI_EXIT_FAIL. */
int cli_api_fail(const cli_api_t *api, const char *cmd, const char *what,
                 const cli_response_t *r);

/* The string member key of JSON object o (borrowed from o), or dflt when
 * o is not an object, has no such member or it is not a string. */
const char *cli_json_str(const cJSON *o, const char *key, const char *dflt);

/* URL-escapes a path segment (a function name). Caller frees. */
char *cli_escape(const char *s);

/* Uploads the module in file `path` (POST /v1/blobs). On success writes
 * "sha256:HEX" to digest and returns 0. Returns -1 with a one-line message
 * in err (the file's errno text, or the API's error, which names the byte
 * offset of a bad module), or -2 when the API could not be reached (already
 * reported on stderr). */
int cli_blob_upload(cli_api_t *api, const char *path, char *digest, size_t digest_len,
                    char *err, size_t errlen);

/* ---- options ---- */

/* Matches "--name VALUE", "--name=VALUE" and, for one-letter options,
 * "-n VALUE" / "-nVALUE". Returns the value (advancing *i), or NULL when
 * argv[*i] is not this option. A missing value returns "" with *missing set. */
const char *cli_opt(const char *name, int argc, char **argv, int *i, bool *missing);
bool cli_is_help(const char *arg);
/* Parses a non-negative decimal integer no larger than max. */
int cli_parse_uint(const char *s, uint64_t max, uint64_t *out);

/* ---- output ---- */

/* A left-aligned text table printed once complete. */
typedef struct cli_table {
    size_t ncols, nrows;
    char **cells; /* nrows * ncols strings, owned */
} cli_table_t;

void cli_table_init(cli_table_t *t, size_t ncols, const char *const *header);
/* Adds a row of ncols strings (NULL prints "-"). */
void cli_table_row(cli_table_t *t, const char *const *cells);
void cli_table_print(cli_table_t *t, FILE *out, const char *indent);
void cli_table_free(cli_table_t *t);

/* ---- simple collections (collection.c) ---- */

/* A kind of object the admin API keeps as a simple collection: GET
 * /v1/PLURAL lists them, GET and DELETE /v1/PLURAL/NAME reach one. */
typedef struct cli_kind {
    const char *singular;        /* "scaledobject": says "scaledobject/NAME: deleted" */
    const char *plural;          /* "scaledobjects": the path segment after /v1/ */
    const char *const *words;    /* the words naming it after get/delete, NULL-terminated */
    void (*print_table)(const cJSON *arr); /* prints an array of its objects */
} cli_kind_t;

/* scaledobjects.c and triggerauths.c. */
extern const cli_kind_t cli_kind_scaledobject;
extern const cli_kind_t cli_kind_triggerauth;
extern const cli_kind_t cli_kind_clustertriggerauth;

/* Whether word (a command-line word) names kind k. */
bool cli_kind_is(const cli_kind_t *k, const char *word);
/* `wasmfn get KIND [NAME]`: every object of k as a table (name NULL) or
 * the one named, or the API's JSON with json. Returns the exit status. */
int cli_kind_get(const cli_kind_t *k, const char *name, bool json);
/* `wasmfn delete KIND NAME...` with the names argv[first..argc). Returns
 * the exit status (CLI_EXIT_ARGS when there is no name). */
int cli_kind_delete(const cli_kind_t *k, int argc, char **argv, int first);

/* ---- manifests (manifest.c) ---- */

/* One YAML document of a manifest file, converted to JSON. */
typedef struct cli_doc {
    int index;          /* 1-based document number in the file */
    int line;           /* 1-based line of the document's first content */
    cJSON *json;        /* the document (NULL for an empty document), owned */
    /* where each field was written: "spec.template.spec.containers[0].image" -> line */
    char **paths;
    int *lines;
    size_t npaths;
} cli_doc_t;

typedef struct cli_manifest {
    char *file;         /* as given on the command line, owned */
    char *dir;          /* its directory, for relative image paths, owned */
    cli_doc_t *docs;
    size_t ndocs;
} cli_manifest_t;

/* Reads and converts every document of a manifest file ("-" = stdin).
 * Returns 0, or -1 with "FILE: document N: line L: column C: problem" in
 * err (YAML syntax errors, duplicate keys, unsupported YAML). */
int cli_manifest_load(const char *file, cli_manifest_t *m, char *err, size_t errlen);
void cli_manifest_free(cli_manifest_t *m);
/* The line the field at `path` was written on, or 0. When the exact path is
 * unknown, the line of its longest known ancestor. */
int cli_doc_line(const cli_doc_t *d, const char *path);

#endif
