/* memory.c — allocates 1 MiB blocks (touching each, and keeping them so the
 * compiler cannot drop the allocations) until malloc returns NULL or 64
 * MiB are reached, then prints how many it got: under `--memory N` the count
 * must stop below N and the guest must carry on normally. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *blocks[64];

int main(void)
{
    int got = 0;
    for (; got < 64; got++) {
        char *b = malloc(1 << 20);
        if (!b) break;
        memset(b, got & 0xff, 1 << 20);
        blocks[got] = b;
    }
    unsigned sum = 0;
    for (int i = 0; i < got; i++) sum += (unsigned char)blocks[i][i * 4099 % (1 << 20)];
    printf("allocated %d MiB (check %u)\n", got, sum);
    printf("%s\n", got < 64 ? "malloc failed" : "no limit hit");
    for (int i = 0; i < got; i++) free(blocks[i]);
    return 0;
}
