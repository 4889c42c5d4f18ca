/*
 * internal.h — what the files of src/wasi/ share and nobody else sees: the
 * context and descriptor-table structures, WASI preview1 constants (errno
 * numbers, rights, flags, struct layouts from the witx definitions), the
 * guest-memory accessors and the sandboxed path resolver.
 *
 * Layout note: WASI structs are little-endian with the witx sizes and
 * offsets written next to each writer below; we never overlay host structs
 * on guest memory, we store field by field (guest pointers need not be
 * aligned and the host need not be little-endian).
 */
#ifndef WASMFN_WASI_INTERNAL_H
#define WASMFN_WASI_INTERNAL_H

#include <dirent.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "wasi/wasi.h"

/* ---- errno (witx `errno`, u16) ------------------------------------------ */
enum {
    WE_SUCCESS = 0, WE_2BIG = 1, WE_ACCES = 2, WE_ADDRINUSE = 3, WE_ADDRNOTAVAIL = 4,
    WE_AFNOSUPPORT = 5, WE_AGAIN = 6, WE_ALREADY = 7, WE_BADF = 8, WE_BADMSG = 9,
    WE_BUSY = 10, WE_CANCELED = 11, WE_CHILD = 12, WE_CONNABORTED = 13,
    WE_CONNREFUSED = 14, WE_CONNRESET = 15, WE_DEADLK = 16, WE_DESTADDRREQ = 17,
    WE_DOM = 18, WE_DQUOT = 19, WE_EXIST = 20, WE_FAULT = 21, WE_FBIG = 22,
    WE_HOSTUNREACH = 23, WE_IDRM = 24, WE_ILSEQ = 25, WE_INPROGRESS = 26, WE_INTR = 27,
    WE_INVAL = 28, WE_IO = 29, WE_ISCONN = 30, WE_ISDIR = 31, WE_LOOP = 32,
    WE_MFILE = 33, WE_MLINK = 34, WE_MSGSIZE = 35, WE_MULTIHOP = 36,
    WE_NAMETOOLONG = 37, WE_NETDOWN = 38, WE_NETRESET = 39, WE_NETUNREACH = 40,
    WE_NFILE = 41, WE_NOBUFS = 42, WE_NODEV = 43, WE_NOENT = 44, WE_NOEXEC = 45,
    WE_NOLCK = 46, WE_NOLINK = 47, WE_NOMEM = 48, WE_NOMSG = 49, WE_NOPROTOOPT = 50,
    WE_NOSPC = 51, WE_NOSYS = 52, WE_NOTCONN = 53, WE_NOTDIR = 54, WE_NOTEMPTY = 55,
    WE_NOTRECOVERABLE = 56, WE_NOTSOCK = 57, WE_NOTSUP = 58, WE_NOTTY = 59,
    WE_NXIO = 60, WE_OVERFLOW = 61, WE_OWNERDEAD = 62, WE_PERM = 63, WE_PIPE = 64,
    WE_PROTO = 65, WE_PROTONOSUPPORT = 66, WE_PROTOTYPE = 67, WE_RANGE = 68,
    WE_ROFS = 69, WE_SPIPE = 70, WE_SRCH = 71, WE_STALE = 72, WE_TIMEDOUT = 73,
    WE_TXTBSY = 74, WE_XDEV = 75, WE_NOTCAPABLE = 76,
};

/* ---- rights (u64 bit set) ----------------------------------------------- */
#define WR_FD_DATASYNC (1ull << 0)
#define WR_FD_READ (1ull << 1)
#define WR_FD_SEEK (1ull << 2)
#define WR_FD_FDSTAT_SET_FLAGS (1ull << 3)
#define WR_FD_SYNC (1ull << 4)
#define WR_FD_TELL (1ull << 5)
#define WR_FD_WRITE (1ull << 6)
#define WR_FD_ADVISE (1ull << 7)
#define WR_FD_ALLOCATE (1ull << 8)
#define WR_PATH_CREATE_DIRECTORY (1ull << 9)
#define WR_PATH_CREATE_FILE (1ull << 10)
#define WR_PATH_LINK_SOURCE (1ull << 11)
#define WR_PATH_LINK_TARGET (1ull << 12)
#define WR_PATH_OPEN (1ull << 13)
#define WR_FD_READDIR (1ull << 14)
#define WR_PATH_READLINK (1ull << 15)
#define WR_PATH_RENAME_SOURCE (1ull << 16)
#define WR_PATH_RENAME_TARGET (1ull << 17)
#define WR_PATH_FILESTAT_GET (1ull << 18)
#define WR_PATH_FILESTAT_SET_SIZE (1ull << 19)
#define WR_PATH_FILESTAT_SET_TIMES (1ull << 20)
#define WR_FD_FILESTAT_GET (1ull << 21)
#define WR_FD_FILESTAT_SET_SIZE (1ull << 22)
#define WR_FD_FILESTAT_SET_TIMES (1ull << 23)
#define WR_PATH_SYMLINK (1ull << 24)
#define WR_PATH_REMOVE_DIRECTORY (1ull << 25)
#define WR_PATH_UNLINK_FILE (1ull << 26)
#define WR_POLL_FD_READWRITE (1ull << 27)
#define WR_SOCK_SHUTDOWN (1ull << 28)
#define WR_SOCK_ACCEPT (1ull << 29)
#define WR_ALL ((1ull << 30) - 1)
/* The rights that mean something on a regular file, on a stream (no seek),
 * and on a directory. */
#define WR_FILE                                                                       \
    (WR_FD_DATASYNC | WR_FD_READ | WR_FD_SEEK | WR_FD_FDSTAT_SET_FLAGS | WR_FD_SYNC | \
     WR_FD_TELL | WR_FD_WRITE | WR_FD_ADVISE | WR_FD_ALLOCATE | WR_FD_FILESTAT_GET |  \
     WR_FD_FILESTAT_SET_SIZE | WR_FD_FILESTAT_SET_TIMES | WR_POLL_FD_READWRITE)
#define WR_STREAM (WR_FILE & ~(WR_FD_SEEK | WR_FD_TELL))
#define WR_DIR                                                                          \
    (WR_FD_DATASYNC | WR_FD_FDSTAT_SET_FLAGS | WR_FD_SYNC | WR_FD_ADVISE |              \
     WR_PATH_CREATE_DIRECTORY | WR_PATH_CREATE_FILE | WR_PATH_LINK_SOURCE |             \
     WR_PATH_LINK_TARGET | WR_PATH_OPEN | WR_FD_READDIR | WR_PATH_READLINK |            \
     WR_PATH_RENAME_SOURCE | WR_PATH_RENAME_TARGET | WR_PATH_FILESTAT_GET |             \
     WR_PATH_FILESTAT_SET_SIZE | WR_PATH_FILESTAT_SET_TIMES | WR_FD_FILESTAT_GET |      \
     WR_FD_FILESTAT_SET_TIMES | WR_PATH_SYMLINK | WR_PATH_REMOVE_DIRECTORY |            \
     WR_PATH_UNLINK_FILE | WR_POLL_FD_READWRITE)

/* ---- small enums and flag sets ------------------------------------------ */
enum { WFT_UNKNOWN = 0, WFT_BLOCK = 1, WFT_CHAR = 2, WFT_DIR = 3, WFT_REG = 4,
       WFT_SOCK_DGRAM = 5, WFT_SOCK_STREAM = 6, WFT_SYMLINK = 7 };
enum { WFDF_APPEND = 1, WFDF_DSYNC = 2, WFDF_NONBLOCK = 4, WFDF_RSYNC = 8, WFDF_SYNC = 16 };
enum { WOF_CREAT = 1, WOF_DIRECTORY = 2, WOF_EXCL = 4, WOF_TRUNC = 8 };
enum { WLOOKUP_SYMLINK_FOLLOW = 1 };
enum { WFST_ATIM = 1, WFST_ATIM_NOW = 2, WFST_MTIM = 4, WFST_MTIM_NOW = 8 };
enum { WCLOCK_REALTIME = 0, WCLOCK_MONOTONIC = 1, WCLOCK_PROCESS_CPU = 2, WCLOCK_THREAD_CPU = 3 };
enum { WEV_CLOCK = 0, WEV_FD_READ = 1, WEV_FD_WRITE = 2 };
enum { WSUBCLOCK_ABSTIME = 1 };
enum { WEVRW_HANGUP = 1 };
enum { WWHENCE_SET = 0, WWHENCE_CUR = 1, WWHENCE_END = 2 };

/* ---- the descriptor table ----------------------------------------------- */
typedef enum wasi_fd_kind {
    WFD_FREE = 0,
    WFD_HOST,   /* a host file descriptor */
    WFD_MEMIN,  /* stdin served from a byte buffer */
    WFD_SINK,   /* stdout/stderr into a wasi_write_fn */
} wasi_fd_kind_t;

typedef struct wasi_fd {
    wasi_fd_kind_t kind;
    uint8_t filetype;        /* WFT_* */
    bool owned;              /* close host on close */
    int host;                /* WFD_HOST */
    uint64_t rights_base, rights_inheriting;
    char *preopen_name;      /* owned; non-NULL for preopened directories */
    /* fd_readdir state: a DIR* over a dup of host, the index of the next
     * entry it returns, and where the previous entry started (so a guest
     * that re-reads a truncated last entry costs one seekdir). */
    DIR *dir;
    uint64_t dir_next;
    long dir_prev_loc;
    bool dir_prev_valid;
    uint64_t dir_prev_index;
    /* WFD_MEMIN */
    const uint8_t *in_data;
    size_t in_len, in_pos;
    /* WFD_SINK */
    wasi_write_fn sink;
    void *sink_ud;
} wasi_fd_t;

struct wasi_ctx {
    char **argv;
    uint32_t argc;
    char **env;              /* [envc] pointers into env_blocks */
    uint32_t envc;
    char **env_blocks;       /* [nenv_blocks] malloc'd: the strings of one add each */
    uint32_t nenv_blocks;
    wasi_fd_t *fds;          /* index = guest fd */
    uint32_t nfds;           /* entries allocated */
    uint32_t max_fds;
    uint64_t deadline_ns;
    wasi_sleep_fn sleep;     /* clock-only poll_oneoff waits (NULL: ppoll) */
    void *sleep_ud;
    /* Set by a host function that must stop the guest rather than return
     * an errno (poll_oneoff past the deadline); the trampoline returns it. */
    eng_trap_t pending_trap;
    void *bindings;          /* wasi.c's per-function host-function envs */
};

/* ---- guest memory ------------------------------------------------------- */
typedef struct wasi_mem {
    uint8_t *base;
    uint64_t size;
} wasi_mem_t;

/* True when [ptr, ptr+len) lies inside guest memory; overflow-safe. */
static inline bool wasi_mem_ok(const wasi_mem_t *m, uint64_t ptr, uint64_t len)
{
    return len <= m->size && ptr <= m->size - len;
}
static inline uint16_t wasi_ld16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }
static inline uint32_t wasi_ld32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static inline uint64_t wasi_ld64(const uint8_t *p)
{
    return (uint64_t)wasi_ld32(p) | (uint64_t)wasi_ld32(p + 4) << 32;
}
static inline void wasi_st16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); }
static inline void wasi_st32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static inline void wasi_st64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i));
}
/* Stores a u32/u64 result at a guest pointer, or returns WE_FAULT. */
static inline uint16_t wasi_put32(wasi_mem_t *m, uint32_t ptr, uint32_t v)
{
    if (!wasi_mem_ok(m, ptr, 4)) return WE_FAULT;
    wasi_st32(m->base + ptr, v);
    return WE_SUCCESS;
}
static inline uint16_t wasi_put64(wasi_mem_t *m, uint32_t ptr, uint64_t v)
{
    if (!wasi_mem_ok(m, ptr, 8)) return WE_FAULT;
    wasi_st64(m->base + ptr, v);
    return WE_SUCCESS;
}

/* ---- shared helpers (fd.c) ---------------------------------------------- */
uint16_t wasi_errno_from_host(int host_errno);
uint8_t wasi_filetype_from_mode(unsigned mode);
/* Looks up guest fd; WE_BADF when it is not open, WE_NOTCAPABLE when it
 * lacks any of the rights in need. */
uint16_t wasi_fd_get(wasi_ctx_t *w, uint32_t fd, uint64_t need, wasi_fd_t **out);
/* Takes the lowest free slot (>= 3) for a new host fd; closes host on error. */
uint16_t wasi_fd_install(wasi_ctx_t *w, int host, uint8_t filetype, uint64_t base,
                         uint64_t inheriting, uint32_t *out_fd);
void wasi_fd_release(wasi_fd_t *f);

/* ---- paths (path.c) ----------------------------------------------------- */
#define WASI_PATH_MAX 4096
/* Copies a guest path into a NUL-terminated buffer of WASI_PATH_MAX+1. */
uint16_t wasi_path_copy(wasi_mem_t *m, uint32_t ptr, uint32_t len, char *out);
/* Opens path beneath dirfd like openat(2) with flags/mode, never leaving
 * the directory. follow: whether a final symlink is followed. */
uint16_t wasi_path_open_beneath(int dirfd, const char *path, int flags, unsigned mode,
                                bool follow, int *out_fd);
/* Resolves path beneath dirfd to (directory fd, last component): *pfd is an
 * O_PATH descriptor the caller closes; name is "." when the path names a
 * directory itself ("a/..", "."). With follow, a final symlink is expanded
 * (beneath dirfd) so name is never a symlink at resolution time. *trailing
 * tells whether the path ended in '/'. */
uint16_t wasi_path_resolve(int dirfd, const char *path, bool follow, int *pfd,
                           char name[256], bool *trailing);

/* ---- filesystem functions (fs.c), one per WASI import ------------------- */
#define WASI_FS_FUNCS(X)                                                  \
    X(fd_advise, "(iIIi)i") X(fd_allocate, "(iII)i") X(fd_close, "(i)i")  \
    X(fd_datasync, "(i)i") X(fd_fdstat_get, "(ii)i")                      \
    X(fd_fdstat_set_flags, "(ii)i") X(fd_fdstat_set_rights, "(iII)i")     \
    X(fd_filestat_get, "(ii)i") X(fd_filestat_set_size, "(iI)i")          \
    X(fd_filestat_set_times, "(iIIi)i") X(fd_pread, "(iiiIi)i")           \
    X(fd_prestat_get, "(ii)i") X(fd_prestat_dir_name, "(iii)i")           \
    X(fd_pwrite, "(iiiIi)i") X(fd_read, "(iiii)i") X(fd_readdir, "(iiiIi)i") \
    X(fd_renumber, "(ii)i") X(fd_seek, "(iIii)i") X(fd_sync, "(i)i")      \
    X(fd_tell, "(ii)i") X(fd_write, "(iiii)i")                            \
    X(path_create_directory, "(iii)i") X(path_filestat_get, "(iiiii)i")   \
    X(path_filestat_set_times, "(iiiiIIi)i") X(path_link, "(iiiiiii)i")   \
    X(path_open, "(iiiiiIIii)i") X(path_readlink, "(iiiiii)i")            \
    X(path_remove_directory, "(iii)i") X(path_rename, "(iiiiii)i")        \
    X(path_symlink, "(iiiii)i") X(path_unlink_file, "(iii)i")

#define WASI_FN_DECL(name, sig) \
    uint16_t wasi_fn_##name(wasi_ctx_t *w, wasi_mem_t *m, const eng_val_t *a);
WASI_FS_FUNCS(WASI_FN_DECL)
#undef WASI_FN_DECL

#endif
