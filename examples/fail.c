/*
 * fail.c — a function that fails, to see what failure looks like: it writes
 * a line to stderr (shown by `wasmfn logs fail`) and then traps, so the
 * caller gets 502 Bad Gateway and the instance is thrown away.
 *
 * `?mode=garbage` writes output that is not a CGI response instead (no
 * header block), which is also a 502; `?mode=exit` exits with status 3
 * before writing anything.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(void)
{
    const char *q = getenv("QUERY_STRING");
    const char *mode = q && strstr(q, "mode=") ? strstr(q, "mode=") + 5 : "trap";
    fprintf(stderr, "fail: about to fail on purpose (mode %s)\n", mode);
    fflush(stderr);
    if (strncmp(mode, "garbage", 7) == 0) {
        /* A line with no colon cannot start a CGI header block. */
        printf("this is not a CGI response\n");
        return 0;
    }
    if (strncmp(mode, "exit", 4) == 0) exit(3);
    __builtin_trap();
}
