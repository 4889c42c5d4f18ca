/* lua_config.h — force-included (-include) into both builds of Lua, native
 * and wasm32-wasi, so that both run the same configuration.
 *
 * Lua raises errors with longjmp (ldo.c, LUAI_THROW/LUAI_TRY), and
 * wasm32-wasi has no setjmp/longjmp here. ldo.c lets a build replace the
 * mechanism; this one makes a raised error fatal: the message is printed
 * and the process exits with status 1, as if the error had reached the
 * top level. The benchmark script raises none (it uses no pcall, error()
 * or coroutines), so what it measures is Lua unchanged. Ours; not part of
 * any Debian source package. */
#ifndef BENCH_LUA_CONFIG_H
#define BENCH_LUA_CONFIG_H
#include <stdio.h>
#include <stdlib.h>

#define LUAI_THROW(L, c)                                                          \
    ((void)(c), fprintf(stderr, "lua: %s\n",                                      \
                        lua_tostring(L, -1) ? lua_tostring(L, -1) : "(error object)"), \
     fflush(NULL), exit(EXIT_FAILURE))
#define LUAI_TRY(L, c, a) { a }
#define luai_jmpbuf int

#ifdef __wasi__
/* os.tmpname: wasi-libc has no tmpnam (and no /tmp); always fails. */
#define LUA_TMPNAMBUFSIZE 32
#define lua_tmpnam(b, e) { (b)[0] = '\0'; e = 1; }
#endif

#endif
