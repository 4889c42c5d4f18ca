/*
 * path.c — the sandbox's path resolver: every guest path is resolved
 * beneath the directory descriptor it is relative to, and can never name
 * anything outside it.
 *
 * Two implementations of one rule. Where the kernel has openat2(2), the
 * kernel does the walk with RESOLVE_BENEATH: absolute paths, ".." above the
 * start and symlinks whose targets leave it all fail with EXDEV, which we
 * report as ENOTCAPABLE. Where it has not (Linux < 5.6, or seccomp filters
 * that answer ENOSYS), we walk the components ourselves: each one is opened
 * with O_PATH|O_NOFOLLOW, so a symlink is seen as a symlink and never
 * followed by the kernel; its target is read and spliced into the rest of
 * the path (an absolute target is refused); ".." pops one component of the
 * canonical path we keep from the start directory and reopens that path
 * from the start, so it can never climb above it. Neither way consults the
 * process's working directory or root.
 *
 * Operations other than open (mkdir, unlink, rename, stat, ...) use
 * wasi_path_resolve: it resolves the directory part as above and returns a
 * descriptor for it plus the last component, on which the *at(2) call runs
 * with AT_SYMLINK_NOFOLLOW. When the caller wants a final symlink followed
 * we read it and resolve its target beneath the same start directory.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "wasi/internal.h"

#define WASI_SYMLINK_MAX 40 /* as Linux's MAXSYMLINKS */

/* 1 = openat2 works, 0 = it does not, -1 = not tried yet. A capability
 * cache of the running kernel, the same for every thread (so accessed
 * atomically; racing first uses agree anyway). The environment
 * variable WASMFN_WASI_NO_OPENAT2 (any value) forces the walk, so tests
 * can check both ways on one machine. */
static int have_openat2 = -1;

uint16_t wasi_path_copy(wasi_mem_t *m, uint32_t ptr, uint32_t len, char *out)
{
    if (!wasi_mem_ok(m, ptr, len)) return WE_FAULT;
    if (len > WASI_PATH_MAX) return WE_NAMETOOLONG;
    if (memchr(m->base + ptr, 0, len)) return WE_INVAL;
    memcpy(out, m->base + ptr, len);
    out[len] = 0;
    return WE_SUCCESS;
}

/* openat2 beneath dirfd. Returns the fd, or -1 with errno; errno ENOSYS
 * means "use the walk instead". */
static int openat2_beneath(int dirfd, const char *path, int flags, unsigned mode)
{
    int have = __atomic_load_n(&have_openat2, __ATOMIC_RELAXED);
    if (have < 0 && getenv("WASMFN_WASI_NO_OPENAT2")) {
        have = 0;
        __atomic_store_n(&have_openat2, 0, __ATOMIC_RELAXED);
    }
    if (have == 0) {
        errno = ENOSYS;
        return -1;
    }
    struct open_how how;
    memset(&how, 0, sizeof how);
    how.flags = (__u64)(unsigned)(flags | O_CLOEXEC);
    how.mode = ((flags & O_CREAT) || (flags & O_TMPFILE) == O_TMPFILE) ? mode : 0;
    how.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS;
    for (int tries = 0; tries < 8; tries++) {
        long r = syscall(SYS_openat2, dirfd, path, &how, sizeof how);
        if (r >= 0) {
            if (have < 0) __atomic_store_n(&have_openat2, 1, __ATOMIC_RELAXED);
            return (int)r;
        }
        if (errno == ENOSYS || (errno == EPERM && have < 0)) {
            /* EPERM on first use: a seccomp policy that blocks openat2 (at
             * worst a real EPERM sends us to the walk, which is as safe). */
            __atomic_store_n(&have_openat2, 0, __ATOMIC_RELAXED);
            errno = ENOSYS;
            return -1;
        }
        if (errno != EAGAIN && errno != EINTR) return -1;
    }
    return -1;
}

/* ---- the portable walk -------------------------------------------------- */

/* The walk's state: the canonical path from the start directory as a list
 * of real directory names (none a symlink when it was checked), and an
 * O_PATH fd for the directory it names. */
typedef struct walk {
    int start;
    int cur;                          /* owned, O_PATH */
    char canon[WASI_PATH_MAX + 1];
    size_t canon_len;
    uint32_t depth;
} walk_t;

static uint16_t walk_reopen(walk_t *k)
{
    /* Reopen the canonical path from the start, one component at a time,
     * refusing symlinks: used after "..", never following the kernel's "..". */
    int fd = openat(k->start, ".", O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return wasi_errno_from_host(errno);
    char *p = k->canon, *end = k->canon + k->canon_len;
    while (p < end) {
        char *slash = memchr(p, '/', (size_t)(end - p));
        size_t n = slash ? (size_t)(slash - p) : (size_t)(end - p);
        char comp[256];
        if (n == 0 || n > 255) {
            close(fd);
            return WE_NAMETOOLONG;
        }
        memcpy(comp, p, n);
        comp[n] = 0;
        int nfd = openat(fd, comp, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        int e = errno;
        close(fd);
        if (nfd < 0) return e == ELOOP ? WE_NOTCAPABLE : wasi_errno_from_host(e);
        fd = nfd;
        p += n + 1;
    }
    close(k->cur);
    k->cur = fd;
    return WE_SUCCESS;
}

/* Splices a symlink's target in front of rest: buf becomes target + "/" +
 * rest (or just target). rest may point into buf. */
static uint16_t splice_link(char *buf, const char *target, size_t tlen, const char *rest)
{
    size_t rlen = strlen(rest);
    if (tlen == 0) return WE_NOENT;
    if (target[0] == '/') return WE_NOTCAPABLE;
    if (tlen + 1 + rlen > WASI_PATH_MAX) return WE_NAMETOOLONG;
    char tmp[WASI_PATH_MAX + 1];
    memcpy(tmp, target, tlen);
    size_t n = tlen;
    if (rlen) {
        tmp[n++] = '/';
        memcpy(tmp + n, rest, rlen);
        n += rlen;
    }
    tmp[n] = 0;
    memcpy(buf, tmp, n + 1);
    return WE_SUCCESS;
}

/* Walks every component of path (all must be directories, symlinks are
 * expanded) and returns an O_PATH fd for the directory reached. */
static uint16_t walk_dirs(int start, const char *path, int *out)
{
    walk_t *k = malloc(sizeof *k);
    char *buf = malloc(WASI_PATH_MAX + 1);
    uint16_t e = WE_SUCCESS;
    unsigned links = 0;
    if (!k || !buf) {
        free(k);
        free(buf);
        return WE_NOMEM;
    }
    k->start = start;
    k->canon_len = 0;
    k->depth = 0;
    k->cur = openat(start, ".", O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (k->cur < 0) {
        e = wasi_errno_from_host(errno);
        goto out;
    }
    if (path[0] == '/') {
        e = WE_NOTCAPABLE;
        goto out;
    }
    snprintf(buf, WASI_PATH_MAX + 1, "%s", path);
    char *p = buf;
    for (;;) {
        while (*p == '/') p++;
        if (!*p) break;
        char *slash = strchr(p, '/');
        size_t n = slash ? (size_t)(slash - p) : strlen(p);
        char *rest = slash ? slash + 1 : p + n;
        if (n > 255) {
            e = WE_NAMETOOLONG;
            goto out;
        }
        char comp[256];
        memcpy(comp, p, n);
        comp[n] = 0;
        if (strcmp(comp, ".") == 0) {
            p = rest;
            continue;
        }
        if (strcmp(comp, "..") == 0) {
            if (k->depth == 0) {
                e = WE_NOTCAPABLE;
                goto out;
            }
            char *last = memrchr(k->canon, '/', k->canon_len);
            k->canon_len = last ? (size_t)(last - k->canon) : 0;
            k->depth--;
            if ((e = walk_reopen(k)) != WE_SUCCESS) goto out;
            p = rest;
            continue;
        }
        int fd = openat(k->cur, comp, O_PATH | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0) {
            e = wasi_errno_from_host(errno);
            goto out;
        }
        struct stat st;
        if (fstat(fd, &st) != 0) {
            e = wasi_errno_from_host(errno);
            close(fd);
            goto out;
        }
        if (S_ISLNK(st.st_mode)) {
            char target[WASI_PATH_MAX + 1];
            ssize_t t = readlinkat(fd, "", target, sizeof target - 1);
            close(fd);
            if (t < 0 || t >= (ssize_t)sizeof target - 1) {
                e = t < 0 ? wasi_errno_from_host(errno) : WE_NAMETOOLONG;
                goto out;
            }
            if (++links > WASI_SYMLINK_MAX) {
                e = WE_LOOP;
                goto out;
            }
            if ((e = splice_link(buf, target, (size_t)t, rest)) != WE_SUCCESS) goto out;
            p = buf;
            continue;
        }
        if (!S_ISDIR(st.st_mode)) {
            close(fd);
            e = WE_NOTDIR;
            goto out;
        }
        if (k->canon_len + 1 + n > WASI_PATH_MAX) {
            close(fd);
            e = WE_NAMETOOLONG;
            goto out;
        }
        if (k->canon_len) k->canon[k->canon_len++] = '/';
        memcpy(k->canon + k->canon_len, comp, n);
        k->canon_len += n;
        k->depth++;
        close(k->cur);
        k->cur = fd;
        p = rest;
    }
out:
    if (e == WE_SUCCESS) {
        *out = k->cur;
    } else if (k->cur >= 0) {
        close(k->cur);
    }
    free(k);
    free(buf);
    return e;
}

/* An O_PATH descriptor for directory dirpath beneath start ("" = start). */
static uint16_t open_dir_beneath(int start, const char *dirpath, int *out)
{
    if (dirpath[0] == '/') return WE_NOTCAPABLE;
    const char *p = dirpath[0] ? dirpath : ".";
    int fd = openat2_beneath(start, p, O_PATH | O_DIRECTORY, 0);
    if (fd >= 0) {
        *out = fd;
        return WE_SUCCESS;
    }
    if (errno == EXDEV) return WE_NOTCAPABLE;
    if (errno != ENOSYS) return wasi_errno_from_host(errno);
    return walk_dirs(start, dirpath, out);
}

uint16_t wasi_path_resolve(int start, const char *path, bool follow, int *pfd, char name[256],
                           bool *trailing)
{
    char *buf = malloc(WASI_PATH_MAX + 1);
    if (!buf) return WE_NOMEM;
    uint16_t e = WE_SUCCESS;
    unsigned links = 0;
    snprintf(buf, WASI_PATH_MAX + 1, "%s", path);
    *pfd = -1;
    for (;;) {
        size_t len = strlen(buf);
        if (len == 0) {
            e = WE_NOENT;
            break;
        }
        if (buf[0] == '/') {
            e = WE_NOTCAPABLE;
            break;
        }
        *trailing = buf[len - 1] == '/';
        while (len > 0 && buf[len - 1] == '/') buf[--len] = 0;
        char *slash = memrchr(buf, '/', len);
        char *last = slash ? slash + 1 : buf;
        if (strlen(last) > 255) {
            e = WE_NAMETOOLONG;
            break;
        }
        if (strcmp(last, ".") == 0 || strcmp(last, "..") == 0) {
            /* The path names a directory itself: resolve all of it. */
            snprintf(name, 256, ".");
            e = open_dir_beneath(start, buf, pfd);
            break;
        }
        snprintf(name, 256, "%s", last);
        if (slash) {
            *slash = 0;
            e = open_dir_beneath(start, buf, pfd);
        } else {
            e = open_dir_beneath(start, "", pfd);
        }
        if (e != WE_SUCCESS || !follow) break;
        char target[WASI_PATH_MAX + 1];
        ssize_t t = readlinkat(*pfd, name, target, sizeof target - 1);
        if (t < 0) break; /* not a symlink (EINVAL) or absent: name is final */
        close(*pfd);
        *pfd = -1;
        if (++links > WASI_SYMLINK_MAX) {
            e = WE_LOOP;
            break;
        }
        if (t >= (ssize_t)sizeof target - 1) {
            e = WE_NAMETOOLONG;
            break;
        }
        target[t] = 0;
        if (t == 0) {
            e = WE_NOENT;
            break;
        }
        if (target[0] == '/') {
            e = WE_NOTCAPABLE;
            break;
        }
        /* New path: the directory part, then the target, then the slash. */
        char *dir = slash ? buf : NULL;
        char tmp[WASI_PATH_MAX + 1];
        int n = snprintf(tmp, sizeof tmp, "%s%s%s%s", dir ? dir : "", dir ? "/" : "", target,
                         *trailing ? "/" : "");
        if (n < 0 || n > WASI_PATH_MAX) {
            e = WE_NAMETOOLONG;
            break;
        }
        memcpy(buf, tmp, (size_t)n + 1);
    }
    if (e != WE_SUCCESS && *pfd >= 0) {
        close(*pfd);
        *pfd = -1;
    }
    free(buf);
    return e;
}

uint16_t wasi_path_open_beneath(int start, const char *path, int flags, unsigned mode,
                                bool follow, int *out_fd)
{
    if (path[0] == 0) return WE_NOENT;
    if (path[0] == '/') return WE_NOTCAPABLE;
    int fd = openat2_beneath(start, path, flags | (follow ? 0 : O_NOFOLLOW), mode);
    if (fd >= 0) {
        *out_fd = fd;
        return WE_SUCCESS;
    }
    if (errno == EXDEV) return WE_NOTCAPABLE;
    if (errno != ENOSYS) return wasi_errno_from_host(errno);

    /* Portable path: resolve to (directory, name) and open name without
     * following; O_CREAT|O_EXCL never follows (POSIX: fails on a symlink). */
    bool excl = (flags & (O_CREAT | O_EXCL)) == (O_CREAT | O_EXCL);
    int pfd;
    char name[256];
    bool trailing;
    uint16_t e = wasi_path_resolve(start, path, follow && !excl, &pfd, name, &trailing);
    if (e != WE_SUCCESS) return e;
    int oflags = flags | O_NOFOLLOW | O_CLOEXEC | (trailing ? O_DIRECTORY : 0);
    fd = openat(pfd, name, oflags, mode);
    int err = errno;
    close(pfd);
    if (fd < 0) return wasi_errno_from_host(err);
    *out_fd = fd;
    return WE_SUCCESS;
}

