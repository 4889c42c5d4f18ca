/* trap.c — traps in the way argv[1] names: unreachable, div0, oob (store
 * far outside memory), stack (unbounded recursion that overflows the C
 * stack in linear memory), calls (unbounded recursion of wasm calls),
 * indirect (call through a pointer of the wrong type). */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

volatile int zero = 0;
volatile uintptr_t far = 0xfffffff0u;

__attribute__((noinline)) static int recurse(int n)
{
    volatile char pad[64];
    pad[n & 63] = (char)n;
    if (zero == 0) return recurse(n + 1) + pad[(n * 7) & 63];
    return pad[0];
}

/* Recursion through a volatile function pointer: no shadow-stack frame and
 * no tail-call or loop rewriting, so only the engine's call depth limit
 * stops it. */
static int (*volatile self)(int);
static int deep(int n) { return self(n + 1) ^ n; }

static int two_args(int a, int b) { return a + b; }

int main(int argc, char **argv)
{
    const char *how = argc > 1 ? argv[1] : "unreachable";
    printf("about to trap: %s\n", how);
    fflush(stdout);
    if (!strcmp(how, "unreachable")) __builtin_trap();
    if (!strcmp(how, "div0")) return 10 / zero;
    if (!strcmp(how, "oob")) {
        *(volatile int *)far = 1;
        return 0;
    }
    if (!strcmp(how, "stack")) return recurse(0);
    if (!strcmp(how, "calls")) {
        self = deep;
        return deep(0);
    }
    if (!strcmp(how, "indirect")) {
        int (*volatile f)(int) = (int (*)(int))(void *)two_args;
        return f(1);
    }
    return 0;
}
