/*
 * cli.h — the `wasmfn` command's subcommands. Prefix: cli_.
 *
 * main.c only dispatches: each subcommand is one function taking the
 * arguments after `wasmfn` (argv[0] is the subcommand's name) and returning
 * the process exit status, and one function printing its --help text.
 */
#ifndef WASMFN_CLI_H
#define WASMFN_CLI_H

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

#endif
