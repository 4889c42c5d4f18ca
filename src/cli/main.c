/*
 * main.c — the `wasmfn` binary's entry point: finds the subcommand and hands
 * it the rest of the command line. Everything a subcommand does lives in its
 * own file (run.c, ...); this file only knows their names.
 */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"

typedef struct cli_command {
    const char *name;
    int (*main)(int argc, char **argv);
    void (*usage)(FILE *out);
    const char *summary;
} cli_command_t;

static const cli_command_t commands[] = {
    {"run", cli_run_main, cli_run_usage, "run a WASI command module locally, sandboxed"},
    {"compile", cli_compile_main, cli_compile_usage, "compile a module to native code ahead of time"},
    {"serve", cli_serve_main, cli_serve_usage, "run the daemon: data plane and admin API"},
    {"deploy", cli_deploy_main, cli_deploy_usage, "upload a module and make it a function's new revision"},
    {"apply", cli_apply_main, cli_apply_usage, "create or update functions from Knative manifests (-f FILE)"},
    {"list", cli_list_main, cli_list_usage, "list the deployed functions"},
    {"get", cli_get_main, cli_get_usage, "show one function, its traffic and revisions"},
    {"delete", cli_delete_main, cli_delete_usage, "delete a function"},
    {"invoke", cli_invoke_main, cli_invoke_usage, "call a function through the admin API"},
    {"logs", cli_logs_main, cli_logs_usage, "print a function's stderr (-f follows)"},
    {"usage", cli_usage_main, cli_usage_usage, "show metered usage and cost per function"},
    {"kv", cli_kv_main, cli_kv_usage, "list, read, set and delete keys of key-value stores"},
    {"secret", cli_secret_main, cli_secret_usage, "set, list and delete secrets (env values, kept encrypted)"},
    {"push", cli_push_main, cli_push_usage, "upload a module to an OCI registry as a Wasm artifact"},
    {"pull", cli_pull_main, cli_pull_usage, "download the module of an OCI image or Wasm artifact"},
    {"registry", cli_registry_main, cli_registry_usage, "store registry credentials (registry login)"},
};
#define NCOMMANDS (sizeof commands / sizeof commands[0])

static void usage(FILE *out)
{
    fprintf(out, "usage: wasmfn COMMAND [ARGS]\n\ncommands:\n");
    for (size_t i = 0; i < NCOMMANDS; i++)
        fprintf(out, "  %-10s %s\n", commands[i].name, commands[i].summary);
    fprintf(out, "  %-10s %s\n", "help", "show help for a command");
    fprintf(out, "\nRun 'wasmfn COMMAND --help' for a command's options.\n");
}

static const cli_command_t *find(const char *name)
{
    for (size_t i = 0; i < NCOMMANDS; i++)
        if (strcmp(commands[i].name, name) == 0) return &commands[i];
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "help") == 0) {
        if (argc > 2 && strcmp(cmd, "help") == 0) {
            const cli_command_t *c = find(argv[2]);
            if (!c) {
                fprintf(stderr, "wasmfn: unknown command '%s' (see wasmfn --help)\n", argv[2]);
                return 2;
            }
            c->usage(stdout);
            return 0;
        }
        usage(stdout);
        return 0;
    }
    const cli_command_t *c = find(cmd);
    if (!c) {
        fprintf(stderr, "wasmfn: unknown command '%s' (see wasmfn --help)\n", cmd);
        return 2;
    }
    return c->main(argc - 1, argv + 1);
}
