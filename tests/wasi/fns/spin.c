/* spin.c — loops forever (argv[1] "loop"), calls a function forever
 * ("calls") or sleeps for an hour ("sleep", inside poll_oneoff): only
 * --timeout can stop it. */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

volatile unsigned long counter;

__attribute__((noinline)) static void step(void) { counter++; }

int main(int argc, char **argv)
{
    printf("spinning\n");
    fflush(stdout);
    if (argc > 1 && strcmp(argv[1], "calls") == 0)
        for (;;) step();
    if (argc > 1 && strcmp(argv[1], "sleep") == 0) {
        sleep(3600);
        printf("woke up\n");
        return 3;
    }
    for (;;) counter++;
}
