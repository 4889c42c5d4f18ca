/* pwd.h — stand-in for the header wasi-libc lacks: a WASI guest has no
 * user database. SQLite's shell looks up the home directory with
 * getpwuid() to find ~/.sqliterc; with no entry it goes on without one.
 * Found first through -I for wasm builds only. */
#ifndef BENCH_PWD_H
#define BENCH_PWD_H
#include <sys/types.h>

struct passwd {
    char *pw_name;
    char *pw_dir;
};

static inline struct passwd *getpwuid(uid_t uid) { (void)uid; return 0; }
#endif
