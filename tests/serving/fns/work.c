/* work.c — a CPU-bound CGI function for the native tier's daemon tests:
 * QUERY_STRING n (default 1000) rounds of integer hashing and a recursive
 * sum, printed as "work N CHECKSUM" so both tiers can be compared. */
#include <stdio.h>
#include <stdlib.h>

static unsigned rec(unsigned n) { return n < 2 ? n : rec(n - 1) + rec(n - 2) + (n & 3); }

int main(void)
{
    const char *q = getenv("QUERY_STRING");
    unsigned long n = q && *q ? strtoul(q, NULL, 10) : 1000;
    unsigned h = 2166136261u;
    for (unsigned long i = 0; i < n; i++) {
        h ^= (unsigned)i;
        h *= 16777619u;
    }
    h += rec(20);
    printf("Content-Type: text/plain\n\nwork %lu %u\n", n, h);
    return 0;
}
