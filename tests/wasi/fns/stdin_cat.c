/* stdin_cat.c — reads all of stdin, then prints its length, a checksum and
 * the text upper-cased: checks that stdin is piped through byte for byte. */
#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int main(void)
{
    size_t cap = 1024, n = 0;
    unsigned char *buf = malloc(cap);
    size_t r;
    while ((r = fread(buf + n, 1, cap - n, stdin)) > 0) {
        n += r;
        if (n == cap) buf = realloc(buf, cap *= 2);
    }
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++) h = (h ^ buf[i]) * 16777619u;
    printf("bytes=%zu fnv=%08x\n", n, h);
    for (size_t i = 0; i < n && i < 4096; i++) putchar(toupper(buf[i]));
    return ferror(stdin) ? 1 : 0;
}
