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
