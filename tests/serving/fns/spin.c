/*
 * spin.c — a test function that never finishes: it loops forever without
 * calling the host, so only the engine's deadline can stop it (the serving
 * tests expect 504 once timeoutSeconds passes).
 */
#include <stdio.h>

int main(void)
{
    printf("Content-Type: text/plain\n\n");
    volatile unsigned long n = 0;
    for (;;) n++;
}
