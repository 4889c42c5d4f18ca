/* random.c — prints 32 bytes from random_get (via getentropy) in hex; the
 * driver runs it twice and wants two different lines. Also checks that a
 * large request is filled (not left zero). */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

int main(void)
{
    unsigned char b[32];
    if (getentropy(b, sizeof b) != 0) return 2;
    for (size_t i = 0; i < sizeof b; i++) printf("%02x", b[i]);
    printf("\n");
    static unsigned char big[256];
    if (getentropy(big, sizeof big) != 0) return 3;
    int zeros = 0;
    for (size_t i = 0; i < sizeof big; i++) zeros += big[i] == 0;
    /* 256 random bytes have ~1 zero on average; 32 would be absurd. */
    if (zeros > 32) return 4;
    return 0;
}
