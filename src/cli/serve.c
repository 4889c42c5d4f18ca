/*
 * serve.c — `wasmfn serve`: the daemon. Opens the data directory, starts
 * the data plane (src/serving) and the admin API (src/api) on one libuv
 * loop, loads every stored function before /readyz says ready, and on
 * SIGTERM or SIGINT drains both servers and exits 0.
 *
 * Start-up order matters: the store is opened first (it holds the lock
 * that keeps a second daemon off the directory), the data plane listens
 * next, then every stored function is loaded — all before the loop runs,
 * so no request is ever answered with a half-loaded registry — and the
 * admin API listens last.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <uv.h>

#include "api/api.h"
#include "api/manifest.h"
#include "cli/cli.h"
#include "common/http.h"
#include "common/metrics.h"
#include "serving/serving.h"
#include "store/store.h"

#define DEFAULT_LISTEN "127.0.0.1:8080"
#define DEFAULT_ADMIN "127.0.0.1:8081"
#define DEFAULT_MAX_BODY (16ull << 20)
#define ADMIN_MAX_BODY (256ull << 20) /* modules are uploaded here */

void cli_serve_usage(FILE *out)
{
    fprintf(out,
            "usage: wasmfn serve [OPTIONS]\n"
            "\n"
            "Runs the daemon: the data plane serving functions over HTTP, and the admin\n"
            "API (docs/api.md) the other commands talk to. Every deployed function is\n"
            "loaded from the data directory at start. SIGTERM or SIGINT drains in-flight\n"
            "requests and exits 0.\n"
            "\n"
            "options:\n"
            "  --listen HOST:PORT  data plane address (default " DEFAULT_LISTEN ");\n"
            "                      functions answer at /fn/NAME/... and Host: NAME.default.DOMAIN\n"
            "  --admin HOST:PORT   admin API address (default " DEFAULT_ADMIN ")\n"
            "  --data DIR          data directory (default $XDG_STATE_HOME/wasmfn, else\n"
            "                      ~/.local/state/wasmfn); holds wasmfn.db, blobs/ and\n"
            "                      admin.token, the admin API's bearer token\n"
            "  --workers N         threads running guests (default: one per CPU)\n"
            "  --domain D          domain for Host routing (default localhost)\n"
            "  --max-body SIZE     largest request body the data plane takes, e.g. 16Mi\n"
            "                      (default 16Mi; larger gets 413)\n"
            "  -h, --help          show this help\n"
            "\n"
            "Port 0 picks a free port; the line printed at start names the real ones.\n");
}

typedef struct serve_opts {
    const char *listen, *admin, *data, *domain;
    uint32_t workers;
    uint64_t max_body;
} serve_opts_t;

typedef struct daemon_state {
    uv_loop_t loop;
    uv_signal_t sigterm, sigint;
    st_store_t *st;
    mx_registry_t *mx;
    srv_t *srv;
    api_t *api;
    hs_server_t *admin;
    int pending;        /* servers still draining */
    bool draining;
} daemon_state_t;

/* The value of option `name` at argv[*i], either "--name=V" or "--name V".
 * NULL if argv[*i] is not that option. */
static const char *opt_value(int argc, char **argv, int *i, const char *name, bool *missing)
{
    size_t n = strlen(name);
    const char *a = argv[*i];
    if (strncmp(a, name, n) != 0) return NULL;
    if (a[n] == '=') return a + n + 1;
    if (a[n] != '\0') return NULL;
    if (*i + 1 >= argc) {
        *missing = true;
        return NULL;
    }
    return argv[++*i];
}

static int parse_args(int argc, char **argv, serve_opts_t *o)
{
    o->listen = DEFAULT_LISTEN;
    o->admin = DEFAULT_ADMIN;
    o->max_body = DEFAULT_MAX_BODY;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v;
        bool missing = false;
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            cli_serve_usage(stdout);
            return 1;
        }
        if ((v = opt_value(argc, argv, &i, "--listen", &missing))) {
            o->listen = v;
        } else if ((v = opt_value(argc, argv, &i, "--admin", &missing))) {
            o->admin = v;
        } else if ((v = opt_value(argc, argv, &i, "--data", &missing))) {
            if (!*v) {
                fprintf(stderr, "wasmfn serve: --data: empty directory name\n");
                return -1;
            }
            o->data = v;
        } else if ((v = opt_value(argc, argv, &i, "--domain", &missing))) {
            o->domain = v;
        } else if ((v = opt_value(argc, argv, &i, "--workers", &missing))) {
            char *end;
            errno = 0;
            unsigned long n = strtoul(v, &end, 10);
            if (!*v || *end || errno || n < 1 || n > 1024) {
                fprintf(stderr, "wasmfn serve: --workers: '%s' is not a number from 1 to 1024\n", v);
                return -1;
            }
            o->workers = (uint32_t)n;
        } else if ((v = opt_value(argc, argv, &i, "--max-body", &missing))) {
            if (api_quantity_parse(v, &o->max_body) != 0 || o->max_body == 0) {
                fprintf(stderr, "wasmfn serve: --max-body: '%s' is not a size such as 16Mi\n", v);
                return -1;
            }
        } else if (missing) {
            fprintf(stderr, "wasmfn serve: %s needs a value\n", a);
            return -1;
        } else {
            fprintf(stderr, "wasmfn serve: unknown option '%s' (see wasmfn serve --help)\n", a);
            return -1;
        }
        if (missing) {
            fprintf(stderr, "wasmfn serve: %s needs a value\n", a);
            return -1;
        }
    }
    return 0;
}

/* $XDG_STATE_HOME/wasmfn, else ~/.local/state/wasmfn (malloc'd). */
static char *default_data_dir(void)
{
    const char *xdg = getenv("XDG_STATE_HOME");
    char *d = NULL;
    if (xdg && xdg[0] == '/') {
        if (asprintf(&d, "%s/wasmfn", xdg) < 0) return NULL;
        return d;
    }
    const char *home = getenv("HOME");
    if (!home || !*home) return NULL;
    if (asprintf(&d, "%s/.local/state/wasmfn", home) < 0) return NULL;
    return d;
}

/* "http://HOST:PORT" for an address given as HOST:PORT, with the port the
 * listener actually got and a wildcard host shown as loopback. */
static char *url_of(const char *host_port, uint16_t port)
{
    const char *colon = strrchr(host_port, ':');
    size_t hl = colon ? (size_t)(colon - host_port) : 0;
    char host[256];
    if (hl >= sizeof host) hl = sizeof host - 1;
    memcpy(host, host_port, hl);
    host[hl] = '\0';
    const char *h = host;
    if (!*h || strcmp(h, "0.0.0.0") == 0) h = "127.0.0.1";
    else if (strcmp(h, "[::]") == 0) h = "[::1]";
    char *u;
    if (asprintf(&u, "http://%s:%u", h, port) < 0) return NULL;
    return u;
}

static int load_blob(void *ud, const char *digest, uint8_t **bytes, size_t *len, char *err,
                     size_t errlen)
{
    return st_blob_get(ud, digest, bytes, len, err, errlen) == ST_OK ? 0 : -1;
}

static void on_drained(void *ud)
{
    daemon_state_t *d = ud;
    if (--d->pending > 0) return;
    uv_close((uv_handle_t *)&d->sigterm, NULL);
    uv_close((uv_handle_t *)&d->sigint, NULL);
    uv_stop(&d->loop);
}

static void on_signal(uv_signal_t *h, int signum)
{
    daemon_state_t *d = h->data;
    if (d->draining) {
        /* A second signal: the user does not want to wait. Acknowledged
         * deploys are committed already, so nothing is lost. */
        fprintf(stderr, "wasmfn: %s again; exiting without waiting\n", strsignal(signum));
        _exit(1);
    }
    d->draining = true;
    fprintf(stderr, "wasmfn: %s: draining in-flight requests\n", strsignal(signum));
    api_set_ready(d->api, false);
    api_shutdown(d->api);
    d->pending = 2;
    hs_server_t *admin = d->admin;
    d->admin = NULL; /* hs_server_close frees it */
    srv_drain(d->srv, on_drained, d);
    hs_server_close(admin, on_drained, d);
}

int cli_serve_main(int argc, char **argv)
{
    serve_opts_t o = {0};
    int pa = parse_args(argc, argv, &o);
    if (pa != 0) return pa > 0 ? 0 : 2;

    char *data = o.data ? strdup(o.data) : default_data_dir();
    if (!data) {
        fprintf(stderr, "wasmfn serve: no data directory: set --data, $XDG_STATE_HOME or $HOME\n");
        return 2;
    }
    signal(SIGPIPE, SIG_IGN); /* a client gone mid-write is an EPIPE, not a death */

    daemon_state_t d;
    memset(&d, 0, sizeof d);
    char err[512];
    int rc = 1;
    char *data_url = NULL, *admin_url = NULL;
    bool loop_ok = false;

    d.st = st_open(data, err, sizeof err);
    if (!d.st) {
        fprintf(stderr, "wasmfn serve: %s\n", err);
        goto out;
    }
    if (uv_loop_init(&d.loop) != 0) {
        fprintf(stderr, "wasmfn serve: cannot create the event loop\n");
        goto out;
    }
    loop_ok = true;
    d.mx = mx_registry_new();
    if (!d.mx) {
        fprintf(stderr, "wasmfn serve: out of memory\n");
        goto out;
    }
    srv_config_t sc = {
        .loop = &d.loop,
        .domain = o.domain ? o.domain : "localhost",
        .workers = o.workers,
        .limits = {.max_header_bytes = 64u << 10, .max_body_bytes = (size_t)o.max_body},
        .queue_per_revision = 100,
        .metrics = d.mx,
        .load_blob = load_blob,
        .load_blob_ud = d.st,
    };
    d.srv = srv_new(&sc, err, sizeof err);
    if (!d.srv) {
        fprintf(stderr, "wasmfn serve: data plane: %s\n", err);
        goto out;
    }
    if (srv_listen(d.srv, o.listen, err, sizeof err) != 0) {
        fprintf(stderr, "wasmfn serve: --listen: %s\n", err);
        goto out;
    }
    data_url = url_of(o.listen, srv_port(d.srv));
    api_config_t ac = {
        .loop = &d.loop, .store = d.st, .srv = d.srv, .metrics = d.mx, .data_url = data_url,
    };
    d.api = data_url ? api_new(&ac) : NULL;
    if (!d.api) {
        fprintf(stderr, "wasmfn serve: out of memory\n");
        goto out;
    }
    int failed = api_load_all(d.api, err, sizeof err);
    if (failed < 0) {
        fprintf(stderr, "wasmfn serve: %s\n", err);
        goto out;
    }

    hs_limits_t al = {.max_header_bytes = 64u << 10, .max_body_bytes = ADMIN_MAX_BODY};
    d.admin = hs_server_new(&d.loop, &al, api_handle, d.api);
    if (!d.admin) {
        fprintf(stderr, "wasmfn serve: out of memory\n");
        goto out;
    }
    if (hs_server_listen(d.admin, o.admin, err, sizeof err) != 0) {
        fprintf(stderr, "wasmfn serve: --admin: %s\n", err);
        goto out;
    }
    admin_url = url_of(o.admin, hs_server_port(d.admin));

    uv_signal_init(&d.loop, &d.sigterm);
    uv_signal_init(&d.loop, &d.sigint);
    d.sigterm.data = d.sigint.data = &d;
    uv_signal_start(&d.sigterm, on_signal, SIGTERM);
    uv_signal_start(&d.sigint, on_signal, SIGINT);

    api_set_ready(d.api, true);
    printf("wasmfn: data plane on %s, admin API on %s\n", data_url, admin_url ? admin_url : "?");
    fflush(stdout);

    uv_run(&d.loop, UV_RUN_DEFAULT);
    rc = d.draining ? 0 : 1;

out:
    if (d.admin) {
        /* Start-up failed after the admin server was made: close it. */
        hs_server_close(d.admin, NULL, NULL);
        d.admin = NULL;
    }
    api_free(d.api);
    if (d.srv) srv_free(d.srv);
    if (loop_ok) {
        /* Let the close callbacks of whatever srv_free closed run. */
        for (int i = 0; i < 100 && uv_run(&d.loop, UV_RUN_NOWAIT) != 0; i++) continue;
        uv_loop_close(&d.loop);
    }
    if (d.mx) mx_registry_free(d.mx);
    st_close(d.st);
    free(data_url);
    free(admin_url);
    free(data);
    return rc;
}
