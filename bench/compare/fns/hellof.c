/*
 * hellof.c — hello world as people write it: printf with a format and an
 * environment variable (getenv). Unlike hello.c's fputs, this runs libc's
 * formatting code in the guest on every request, so it shows what the
 * engine costs on a real (if small) amount of guest work.
 */
#include <stdio.h>
#include <stdlib.h>

int main(void)
{
    const char *method = getenv("REQUEST_METHOD");
    printf("Content-Type: text/plain\n\nhello %s %d\n", method ? method : "-", 42);
    return 0;
}
