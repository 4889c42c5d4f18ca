/* work.c — a CPU-bound CGI function for the native tier's daemon tests:
 * QUERY_STRING n (default 1000) rounds of integer hashing and a recursive
 * sum, printed as "work N CHECKSUM" so both tiers can be compared.
 * QUERY_STRING deep=N instead recurses N calls deep (one native frame
 * each), printed as "deep N CHECKSUM": how deep a guest may go. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static unsigned rec(unsigned n) { return n < 2 ? n : rec(n - 1) + rec(n - 2) + (n & 3); }

/* Not a loop in disguise: the result of the call is used twice, so no
 * compiler turns the recursion into iteration. */
__attribute__((noinline)) static unsigned deep(unsigned n)
{
    if (n == 0) return 1;
    unsigned r = deep(n - 1);
    return r * 31u + (r >> 7) + n;
}

int main(void)
{
    const char *q = getenv("QUERY_STRING");
    if (q && strncmp(q, "deep=", 5) == 0) {
        unsigned long n = strtoul(q + 5, NULL, 10);
        printf("Content-Type: text/plain\n\ndeep %lu %u\n", n, deep((unsigned)n));
        return 0;
    }
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
