/* exit_code.c — exits with the code given as argv[1], by the route named in
 * argv[2]: "return" from main, "exit" (flushes stdio), or "_Exit". */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv)
{
    int code = argc > 1 ? atoi(argv[1]) : 0;
    const char *how = argc > 2 ? argv[2] : "return";
    printf("exiting with %d via %s\n", code, how);
    if (strcmp(how, "exit") == 0) exit(code);
    if (strcmp(how, "_Exit") == 0) {
        fflush(stdout);
        _Exit(code);
    }
    return code;
}
