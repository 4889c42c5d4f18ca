/*
 * registry.c — the CLI's OCI registry commands (docs/cli.md, docs/oci.md):
 *
 *   wasmfn push F.wasm REF            the module as a Wasm OCI artifact
 *   wasmfn pull REF -o F.wasm         the module of an artifact or image
 *   wasmfn registry login HOST -u USER --password-stdin
 *
 * Unlike the admin-API commands these talk to a registry directly, through
 * src/oci; they share its options (credentials file, extra CA, insecure
 * hosts). Each failure is one line naming what failed, exit status 1;
 * usage errors exit 2.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api/manifest.h"
#include "cli/cli.h"
#include "cli/client.h"
#include "oci/oci.h"

#define MAX_INSECURE 32

#define REGISTRY_OPTS_HELP                                                                   \
    "  --registry-config FILE      Docker config.json with the credentials (default:\n"     \
    "                              $DOCKER_CONFIG/config.json, else ~/.docker/config.json)\n" \
    "  --registry-ca FILE          trust the PEM CA certificates in FILE besides the\n"     \
    "                              system's\n"                                               \
    "  --insecure-registry HOST[:PORT]  may be reached over plain HTTP (repeatable;\n"      \
    "                              loopback registries always may)\n"                        \
    "  --timeout DURATION          give up after this long (default 5m; e.g. 30s)\n"       \
    "  -h, --help                  show this help\n"

/* The options every registry command takes. */
typedef struct reg_opts {
    oci_options_t o;
    const char *insecure[MAX_INSECURE];
} reg_opts_t;

static int usage_error(const char *cmd, const char *fmt, const char *arg)
{
    fprintf(stderr, "wasmfn %s: ", cmd);
    fprintf(stderr, fmt, arg);
    fprintf(stderr, " (see wasmfn %s --help)\n", cmd);
    return CLI_EXIT_ARGS;
}

/* Consumes argv[*i] when it is a shared registry option: 1 taken, 0 not
 * ours, or a usage error's exit status (negated) when it is malformed. */
static int reg_opt(const char *cmd, reg_opts_t *r, int argc, char **argv, int *i)
{
    bool missing;
    const char *v;
    if ((v = cli_opt("--registry-config", argc, argv, i, &missing))) {
        if (missing) return -usage_error(cmd, "%s wants a file", "--registry-config");
        r->o.config_path = v;
    } else if ((v = cli_opt("--registry-ca", argc, argv, i, &missing))) {
        if (missing) return -usage_error(cmd, "%s wants a file", "--registry-ca");
        if (access(v, R_OK) != 0) return -usage_error(cmd, "cannot read --registry-ca file '%s'", v);
        r->o.ca_file = v;
    } else if ((v = cli_opt("--insecure-registry", argc, argv, i, &missing))) {
        if (missing || !*v) return -usage_error(cmd, "%s wants HOST[:PORT]", "--insecure-registry");
        if (r->o.ninsecure == MAX_INSECURE)
            return -usage_error(cmd, "at most 32 %s options", "--insecure-registry");
        r->insecure[r->o.ninsecure++] = v;
        r->o.insecure = r->insecure;
    } else if ((v = cli_opt("--timeout", argc, argv, i, &missing))) {
        uint64_t ns;
        if (missing || api_duration_parse(v, &ns) != 0 || ns < 1000000)
            return -usage_error(cmd, "--timeout wants a duration such as 30s or 5m, got '%s'", v);
        r->o.timeout_ms = ns / 1000000;
    } else {
        return 0;
    }
    return 1;
}

static int parse_ref(const char *cmd, const char *s, oci_ref_t *ref)
{
    char err[600];
    if (oci_ref_parse(s, ref, err, sizeof err) != 0) {
        fprintf(stderr, "wasmfn %s: %s\n", cmd, err);
        return CLI_EXIT_ARGS;
    }
    return 0;
}

/* ---- push ---- */

void cli_push_usage(FILE *out)
{
    fprintf(out,
            "usage: wasmfn push [options] F.wasm REGISTRY/REPO[:TAG]\n"
            "\n"
            "Uploads a module to an OCI registry as a Wasm OCI artifact (config\n"
            "application/vnd.wasm.config.v0+json, one application/vnd.wasm.content.layer.v1+wasm\n"
            "layer), which `wasmfn pull`, an `image:` in a manifest, runwasi and oras can pull.\n"
            "Prints REGISTRY/REPO:TAG@sha256:... (the manifest's digest) on success.\n"
            "\n"
            "options:\n" REGISTRY_OPTS_HELP);
}

int cli_push_main(int argc, char **argv)
{
    reg_opts_t r = {0};
    const char *pos[2];
    int npos = 0;
    for (int i = 1; i < argc; i++) {
        if (cli_is_help(argv[i])) {
            cli_push_usage(stdout);
            return 0;
        }
        int t = reg_opt("push", &r, argc, argv, &i);
        if (t < 0) return -t;
        if (t) continue;
        if (argv[i][0] == '-' && argv[i][1]) return usage_error("push", "unknown option '%s'", argv[i]);
        if (npos == 2) return usage_error("push", "unexpected argument '%s'", argv[i]);
        pos[npos++] = argv[i];
    }
    if (npos != 2) return usage_error("push", "%s", "wants F.wasm and a reference");
    oci_ref_t ref;
    int rc = parse_ref("push", pos[1], &ref);
    if (rc) return rc;
    cm_buf_t b = {0};
    if (cli_file_read(pos[0], &b) != 0) {
        fprintf(stderr, "wasmfn push: %s: %s\n", pos[0], strerror(errno));
        cm_buf_free(&b);
        return CLI_EXIT_FAIL;
    }
    const char *title = strrchr(pos[0], '/');
    title = title ? title + 1 : pos[0];
    oci_push_result_t res;
    char err[2048];
    oci_status_t st = oci_push(&ref, &r.o, (const uint8_t *)b.data, b.len, title, &res, err, sizeof err);
    cm_buf_free(&b);
    if (st != OCI_OK) {
        fprintf(stderr, "wasmfn push: %s\n", err);
        return CLI_EXIT_FAIL;
    }
    char name[700];
    oci_ref_format(&ref, name, sizeof name);
    printf("%s@%s\n", name, res.manifest_digest);
    return 0;
}

/* ---- pull ---- */

void cli_pull_usage(FILE *out)
{
    fprintf(out,
            "usage: wasmfn pull [options] REF -o F.wasm\n"
            "\n"
            "Downloads the module of an OCI image: a Wasm OCI artifact's layer, or the\n"
            ".wasm file a plain image's entrypoint names inside its (gzip) tar layers.\n"
            "From an index it picks wasi/wasm, else linux/amd64. Every blob's digest is\n"
            "verified; the file appears only when all is verified. REF is\n"
            "HOST[:PORT]/REPO[:TAG][@sha256:...], or a Docker Hub name (hello, user/app).\n"
            "Prints the module's and the manifest's digests on success.\n"
            "\n"
            "options:\n"
            "  -o, --output F.wasm         where to write the module (required)\n"
            "  --max-size SIZE             refuse a module larger than SIZE (default 256Mi)\n" REGISTRY_OPTS_HELP);
}

int cli_pull_main(int argc, char **argv)
{
    reg_opts_t r = {0};
    const char *refs = NULL, *out = NULL;
    for (int i = 1; i < argc; i++) {
        bool missing;
        const char *v;
        if (cli_is_help(argv[i])) {
            cli_pull_usage(stdout);
            return 0;
        }
        int t = reg_opt("pull", &r, argc, argv, &i);
        if (t < 0) return -t;
        if (t) continue;
        if ((v = cli_opt("-o", argc, argv, &i, &missing)) ||
            (v = cli_opt("--output", argc, argv, &i, &missing))) {
            if (missing || !*v) return usage_error("pull", "%s wants a file name", "-o");
            out = v;
        } else if ((v = cli_opt("--max-size", argc, argv, &i, &missing))) {
            if (missing || api_quantity_parse(v, &r.o.max_module_bytes) != 0 ||
                r.o.max_module_bytes == 0)
                return usage_error("pull", "--max-size wants a size such as 64Mi, got '%s'", v);
        } else if (argv[i][0] == '-' && argv[i][1]) {
            return usage_error("pull", "unknown option '%s'", argv[i]);
        } else if (refs) {
            return usage_error("pull", "unexpected argument '%s'", argv[i]);
        } else {
            refs = argv[i];
        }
    }
    if (!refs) return usage_error("pull", "%s", "wants a reference");
    if (!out) return usage_error("pull", "%s", "wants -o F.wasm");
    oci_ref_t ref;
    int rc = parse_ref("pull", refs, &ref);
    if (rc) return rc;
    oci_pull_result_t res;
    char err[2048];
    if (oci_pull_file(&ref, &r.o, out, &res, err, sizeof err) != OCI_OK) {
        fprintf(stderr, "wasmfn pull: %s\n", err);
        return CLI_EXIT_FAIL;
    }
    printf("module %s (%llu bytes%s%s) from manifest %s\n", res.module_digest,
           (unsigned long long)res.module_bytes, res.from_tar ? ", " : "",
           res.from_tar ? res.module_path : "", res.manifest_digest);
    return 0;
}

/* ---- registry login ---- */

void cli_registry_usage(FILE *out)
{
    fprintf(out,
            "usage: wasmfn registry login [options] HOST[:PORT] -u USER --password-stdin\n"
            "\n"
            "Checks USER and the password read from standard input against the registry\n"
            "(basic or bearer-token auth, as it asks), then stores them in the Docker\n"
            "config file (mode 0600), where wasmfn push/pull and docker, podman, skopeo\n"
            "and oras find them.\n"
            "\n"
            "options:\n"
            "  -u, --username USER\n"
            "  --password-stdin            read the password from standard input (required:\n"
            "                              a password on the command line would show in ps)\n" REGISTRY_OPTS_HELP);
}

int cli_registry_main(int argc, char **argv)
{
    if (argc < 2 || cli_is_help(argv[1])) {
        cli_registry_usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? CLI_EXIT_ARGS : 0;
    }
    if (strcmp(argv[1], "login") != 0)
        return usage_error("registry", "unknown subcommand '%s' (only login)", argv[1]);
    reg_opts_t r = {0};
    const char *host = NULL, *user = NULL;
    bool pw_stdin = false;
    for (int i = 2; i < argc; i++) {
        bool missing;
        const char *v;
        if (cli_is_help(argv[i])) {
            cli_registry_usage(stdout);
            return 0;
        }
        int t = reg_opt("registry login", &r, argc, argv, &i);
        if (t < 0) return -t;
        if (t) continue;
        if ((v = cli_opt("-u", argc, argv, &i, &missing)) ||
            (v = cli_opt("--username", argc, argv, &i, &missing))) {
            if (missing || !*v) return usage_error("registry login", "%s wants a user name", "-u");
            user = v;
        } else if (strcmp(argv[i], "--password-stdin") == 0) {
            pw_stdin = true;
        } else if (argv[i][0] == '-' && argv[i][1]) {
            return usage_error("registry login", "unknown option '%s'", argv[i]);
        } else if (host) {
            return usage_error("registry login", "unexpected argument '%s'", argv[i]);
        } else {
            host = argv[i];
        }
    }
    if (!host) return usage_error("registry login", "%s", "wants a registry HOST[:PORT]");
    if (!user) return usage_error("registry login", "%s", "wants -u USER");
    if (!pw_stdin) return usage_error("registry login", "%s", "wants --password-stdin");
    if (strchr(host, '/'))
        return usage_error("registry login", "'%s' is not HOST[:PORT] (no path)", host);
    if (strcmp(host, "docker.io") == 0 || strcmp(host, "index.docker.io") == 0)
        host = OCI_DOCKER_HUB;

    char pw[1024];
    size_t n = fread(pw, 1, sizeof pw - 1, stdin);
    pw[n] = 0;
    while (n && (pw[n - 1] == '\n' || pw[n - 1] == '\r')) pw[--n] = 0;
    if (n == 0) {
        fprintf(stderr, "wasmfn registry login: no password on standard input\n");
        return CLI_EXIT_ARGS;
    }
    char err[2048];
    if (oci_login_check(host, user, pw, &r.o, err, sizeof err) != OCI_OK) {
        fprintf(stderr, "wasmfn registry login: %s\n", err);
        return CLI_EXIT_FAIL;
    }
    char where[1100];
    if (oci_creds_store(r.o.config_path, host, user, pw, where, sizeof where, err, sizeof err) != 0) {
        fprintf(stderr, "wasmfn registry login: %s\n", err);
        return CLI_EXIT_FAIL;
    }
    printf("logged in to %s as %s (credentials in %s)\n", host, user, where);
    return 0;
}
