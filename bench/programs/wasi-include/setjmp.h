/* setjmp.h — stand-in for the header wasi-libc lacks (wasm32-wasi has no
 * setjmp/longjmp without the exception-handling proposal, which clang 14
 * and wasmfn do not support). Only Lua includes it, and bench/programs/
 * lua_config.h replaces Lua's use of it; anything that really called
 * setjmp would fail to link. Found first through -I for wasm builds only. */
#ifndef BENCH_SETJMP_H
#define BENCH_SETJMP_H
#endif
