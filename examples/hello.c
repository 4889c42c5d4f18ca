/*
 * hello.c — the smallest wasmfn function: answers every request with a
 * greeting. A function is a WASI command (main) that writes a CGI response
 * to stdout: header lines, a blank line, then the body (DESIGN.md §3).
 * $GREETING (set in hello.yaml) changes the greeting.
 */
#include <stdio.h>
#include <stdlib.h>

int main(void)
{
    const char *greeting = getenv("GREETING");
    const char *path = getenv("PATH_INFO");
    printf("Content-Type: text/plain\n\n");
    printf("%s from wasmfn! (path %s)\n", greeting && *greeting ? greeting : "Hello",
           path && *path ? path : "/");
    return 0;
}
