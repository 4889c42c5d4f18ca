/*
 * cli.h — the `wasmfn` command's subcommands. Prefix: cli_.
 *
 * main.c only dispatches: each subcommand is one function taking the
 * arguments after `wasmfn` (argv[0] is the subcommand's name) and returning
 * the process exit status, and one function printing its --help text.
 */
#ifndef WASMFN_CLI_H
#define WASMFN_CLI_H

#include <stdbool.h>
#include <stdio.h>

/* Exit statuses `wasmfn run` uses for its own outcomes (docs/wasi.md).
 * Anything else is the guest's own proc_exit code. */
enum {
    CLI_EXIT_TIMEOUT = 124,  /* the guest ran past --timeout (as timeout(1)) */
    CLI_EXIT_USAGE = 125,    /* bad command line or wasmfn itself failed */
    CLI_EXIT_BAD_MODULE = 126, /* not runnable: invalid module, bad import, no _start */
    CLI_EXIT_NOT_FOUND = 127,  /* the module file does not exist */
    CLI_EXIT_TRAP = 134,     /* the guest trapped (128 + SIGABRT, like a crash) */
};

/* wasmfn run [--env K=V] [--dir HOST[:GUEST]] [--timeout MS] [--memory MIB] F.wasm [ARGS] */
int cli_run_main(int argc, char **argv);
void cli_run_usage(FILE *out);

/* wasmfn serve [--listen HOST:PORT] [--admin HOST:PORT] [--data DIR] [--workers N] [--domain D]
 * [--max-body SIZE]: the daemon (serve.c). Exits 0 after draining on SIGTERM/SIGINT, 1 when it
 * cannot start, 2 on usage errors. */
int cli_serve_main(int argc, char **argv);
void cli_serve_usage(FILE *out);

/* The admin API's clients (apply.c, commands.c; docs/cli.md). They exit 0,
 * 1 when the API refused or failed (one line says why), 2 on usage errors. */
/* wasmfn deploy NAME F.wasm [--env K=V]... [--min-scale N] [--max-scale N] [--timeout S] [--memory MIB] */
int cli_deploy_main(int argc, char **argv);
void cli_deploy_usage(FILE *out);
/* wasmfn apply -f MANIFEST.yaml */
int cli_apply_main(int argc, char **argv);
void cli_apply_usage(FILE *out);
/* wasmfn list [-o json] */
int cli_list_main(int argc, char **argv);
void cli_list_usage(FILE *out);
/* wasmfn get NAME [-o json] */
int cli_get_main(int argc, char **argv);
void cli_get_usage(FILE *out);
/* wasmfn delete NAME */
int cli_delete_main(int argc, char **argv);
/* (get and delete also take `scaledobject[s] [NAME]`,
 * `triggerauthentication[s] [NAME]` and `clustertriggerauthentication[s]
 * [NAME]`: collection.c, client.h's cli_kind_t.) */
void cli_delete_usage(FILE *out);
/* wasmfn invoke NAME [-d DATA | -d @FILE] [-H 'K: V'] [-X METHOD] [--path /p] */
int cli_invoke_main(int argc, char **argv);
void cli_invoke_usage(FILE *out);
/* wasmfn logs NAME [-f] */
int cli_logs_main(int argc, char **argv);
void cli_logs_usage(FILE *out);
/* wasmfn usage [NAME] [--since T] [--until T] [--step D] [-o json] (usage.c, docs/metering.md) */
int cli_usage_main(int argc, char **argv);
void cli_usage_usage(FILE *out);

/* wasmfn kv list|get|set|delete ... (kv.c; docs/cli.md): key-value stores */
int cli_kv_main(int argc, char **argv);
void cli_kv_usage(FILE *out);

/* wasmfn secret set|list|delete ... (secret.c; docs/cli.md, docs/secrets.md) */
int cli_secret_main(int argc, char **argv);
void cli_secret_usage(FILE *out);

/* wasmfn compile [--cache-dir DIR] IN.wasm [-o OUT] (compile.c; docs/cli.md) */
int cli_compile_main(int argc, char **argv);
void cli_compile_usage(FILE *out);

/* OCI registries (registry.c; docs/cli.md, docs/oci.md). Exit 0, 1 when the
 * registry or a file failed (one line says why), 2 on usage errors. */
/* wasmfn push F.wasm REF */
int cli_push_main(int argc, char **argv);
void cli_push_usage(FILE *out);
/* wasmfn pull REF -o F.wasm */
int cli_pull_main(int argc, char **argv);
void cli_pull_usage(FILE *out);
/* wasmfn registry login HOST -u USER --password-stdin */
int cli_registry_main(int argc, char **argv);
void cli_registry_usage(FILE *out);

/* ---- native code for run and compile (native_cache.c) ---- */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engine/engine.h"

/* wasmfn run's cache of native code: a directory, its key, and the short
 * form of this process's target that names its entries. */
typedef struct cli_cache {
    bool ok;
    char dir[4096];
    char target[17];
    uint8_t key[ENG_NATIVE_KEY_BYTES];
} cli_cache_t;

void cli_sha256(const uint8_t *bytes, size_t len, uint8_t out[32]);
/* Opens the cache (override, else $WASMFN_CACHE_DIR, else
 * $XDG_CACHE_HOME/wasmfn, else ~/.cache/wasmfn), making it and its key at
 * first use. -1 with a message when it cannot be used. */
int cli_cache_open(cli_cache_t *c, const char *override, char *err, size_t errlen);
/* The file of the module's entry: DIR/HEX-TARGET.native (sealed). */
void cli_cache_entry_path(const cli_cache_t *c, const uint8_t digest[32], char *out, size_t n);
/* Attaches the cached native code of the module whose .wasm has SHA-256
 * digest to m: 1 done, 0 none cached, -1 refused (the entry is deleted). */
int cli_cache_attach(const cli_cache_t *c, const uint8_t digest[32], eng_module_t *m);
/* Seals obj and stores it as the module's entry. */
int cli_cache_put(const cli_cache_t *c, const uint8_t digest[32], const uint8_t *obj, size_t len,
                  char *err, size_t errlen);
/* Compiles wasm in a child `wasmfn compile --raw` and returns the object
 * (malloc'd). -1 with a one-line reason. */
int cli_native_compile(const uint8_t *wasm, size_t len, uint8_t **obj, size_t *objlen, char *err,
                       size_t errlen);
/* A compiled module file ends with a custom section "wasmfn.native" that
 * holds a sealed artefact for the module without it: finds it (true), with
 * the length of the module before it. */
bool cli_native_section(const uint8_t *bytes, size_t len, size_t *module_len,
                        const uint8_t **payload, size_t *payload_len);
/* module + that section holding art (malloc'd). */
uint8_t *cli_native_with_section(const uint8_t *module, size_t len, const uint8_t *art,
                                 size_t artlen, size_t *outlen);

#endif
