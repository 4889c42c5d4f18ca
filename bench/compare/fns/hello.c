/*
 * hello.c — the benchmark's hello world: the smallest CGI answer, the same
 * bytes on every system (wasmfn, workerd, Node.js WASI, native CGI; nginx
 * serves the same body as a static file).
 */
#include <stdio.h>

int main(void)
{
    fputs("Content-Type: text/plain\n\nhello\n", stdout);
    return 0;
}
