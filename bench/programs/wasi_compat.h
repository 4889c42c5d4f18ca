/* wasi_compat.h — force-included (clang -include) into every wasm32-wasi
 * build of bench/programs/: the few POSIX calls that Debian 12's wasi-libc
 * (0.0~git20220510) declares but does not define, or does not have at all,
 * which the third-party programs call on paths the benchmarks never take.
 *
 * Each stand-in fails (errno ENOSYS) or does nothing where the harmless
 * answer is "nothing to do" (ownership and modes: a WASI guest has no
 * users). They are functions, not function-like macros, because SQLite
 * takes their addresses for its table of system calls. Native builds do
 * not see this file. Ours; not part of any Debian source package.
 */
#ifndef BENCH_WASI_COMPAT_H
#define BENCH_WASI_COMPAT_H

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

/* POSIX advisory locks: wasi-libc has struct flock but not these; its
 * fcntl() answers EINVAL to the commands, so SQLite reports a locked file
 * as busy. The benchmarks use an in-memory database. */
#ifndef F_GETLK
#define F_GETLK 5
#define F_SETLK 6
#define F_SETLKW 7
#endif
#ifndef F_RDLCK
#define F_RDLCK 0
#define F_WRLCK 1
#define F_UNLCK 2
#endif

static inline int compat_chmod(const char *path, mode_t mode) { (void)path; (void)mode; return 0; }
static inline int compat_fchmod(int fd, mode_t mode) { (void)fd; (void)mode; return 0; }
static inline int compat_fchown(int fd, uid_t uid, gid_t gid) { (void)fd; (void)uid; (void)gid; return 0; }
static inline uid_t compat_getuid(void) { return 0; }
static inline uid_t compat_geteuid(void) { return 0; }
static inline FILE *compat_popen(const char *cmd, const char *mode) { (void)cmd; (void)mode; errno = ENOSYS; return NULL; }
static inline int compat_pclose(FILE *f) { (void)f; errno = ENOSYS; return -1; }
static inline FILE *compat_tmpfile(void) { errno = ENOSYS; return NULL; }
/* system(NULL) asks whether there is a shell: there is none. */
static inline int compat_system(const char *cmd) { if (!cmd) return 0; errno = ENOSYS; return -1; }

#define chmod compat_chmod
#define fchmod compat_fchmod
#define fchown compat_fchown
#define getuid compat_getuid
#define geteuid compat_geteuid
#define popen compat_popen
#define pclose compat_pclose
#define tmpfile compat_tmpfile
#define system compat_system

#endif
