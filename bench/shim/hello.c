/*
 * hello.c — the program bench/shim/start_latency.sh starts in containers:
 * built twice from this one source, as a WASI command (clang
 * --target=wasm32-wasi) for the wasmfn shim and as a static x86-64 binary
 * (gcc -static) for runc, so both sides print the same line.
 */
#include <stdio.h>

int main(void)
{
    puts("hello");
    return 0;
}
