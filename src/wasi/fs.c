/*
 * fs.c — the fd_* and path_* functions of wasi_snapshot_preview1.
 *
 * Each function checks, in order: the descriptor exists and carries the
 * rights the call needs (EBADF / ENOTCAPABLE), every guest pointer it will
 * write through is inside memory (EFAULT), and only then acts, so a bad
 * call has no side effect. Data moves straight between host fds and guest
 * memory (readv/writev over iovecs that point into the linear memory) with
 * no bounce buffer. Paths go through path.c and never leave the directory
 * they are relative to.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "wasi/internal.h"

/* ---- iovecs ------------------------------------------------------------- */

#define WASI_IOV_MAX 1024

/* Turns n guest iovecs at ptr into host iovecs over guest memory. Reads or
 * writes may be short when there are more than WASI_IOV_MAX of them or they
 * add up to more than fits the u32 byte count, as POSIX allows. */
static uint16_t iovs_load(wasi_mem_t *m, uint32_t ptr, uint32_t n, struct iovec **out, int *nout)
{
    if (!wasi_mem_ok(m, ptr, (uint64_t)n * 8)) return WE_FAULT;
    if (n > WASI_IOV_MAX) n = WASI_IOV_MAX;
    struct iovec *iov = malloc((n ? n : 1) * sizeof *iov);
    if (!iov) return WE_NOMEM;
    uint64_t total = 0;
    int k = 0;
    for (uint32_t i = 0; i < n; i++) {
        uint32_t buf = wasi_ld32(m->base + ptr + 8 * i), len = wasi_ld32(m->base + ptr + 8 * i + 4);
        if (!wasi_mem_ok(m, buf, len)) {
            free(iov);
            return WE_FAULT;
        }
        if (total + len > INT32_MAX) len = (uint32_t)(INT32_MAX - total);
        iov[k].iov_base = m->base + buf;
        iov[k].iov_len = len;
        k++;
        total += len;
        if (total >= INT32_MAX) break;
    }
    *out = iov;
    *nout = k;
    return WE_SUCCESS;
}

/* ---- structs ------------------------------------------------------------ */

static uint64_t stat_ns(struct timespec ts)
{
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* filestat: dev@0 ino@8 filetype@16 nlink@24 size@32 atim@40 mtim@48
 * ctim@56, 64 bytes. */
static void put_filestat(uint8_t *p, const struct stat *st, uint8_t filetype)
{
    memset(p, 0, 64);
    if (st) {
        wasi_st64(p, (uint64_t)st->st_dev);
        wasi_st64(p + 8, (uint64_t)st->st_ino);
        filetype = wasi_filetype_from_mode(st->st_mode);
        wasi_st64(p + 24, (uint64_t)st->st_nlink);
        wasi_st64(p + 32, (uint64_t)st->st_size);
        wasi_st64(p + 40, stat_ns(st->st_atim));
        wasi_st64(p + 48, stat_ns(st->st_mtim));
        wasi_st64(p + 56, stat_ns(st->st_ctim));
    }
    p[16] = filetype;
}

/* WASI (atim, mtim, fst_flags) to utimensat's two timespecs. */
static uint16_t times_from_wasi(uint64_t atim, uint64_t mtim, uint32_t fst, struct timespec ts[2])
{
    if ((fst & WFST_ATIM && fst & WFST_ATIM_NOW) || (fst & WFST_MTIM && fst & WFST_MTIM_NOW))
        return WE_INVAL;
    if (fst & ~(uint32_t)(WFST_ATIM | WFST_ATIM_NOW | WFST_MTIM | WFST_MTIM_NOW)) return WE_INVAL;
    uint64_t v[2] = {atim, mtim};
    uint32_t set[2] = {WFST_ATIM, WFST_MTIM}, now[2] = {WFST_ATIM_NOW, WFST_MTIM_NOW};
    for (int i = 0; i < 2; i++) {
        ts[i].tv_sec = 0;
        if (fst & now[i]) {
            ts[i].tv_nsec = UTIME_NOW;
        } else if (fst & set[i]) {
            ts[i].tv_sec = (time_t)(v[i] / 1000000000ull);
            ts[i].tv_nsec = (long)(v[i] % 1000000000ull);
        } else {
            ts[i].tv_nsec = UTIME_OMIT;
        }
    }
    return WE_SUCCESS;
}

static uint16_t host_err(void) { return wasi_errno_from_host(errno); }

/* A descriptor that must be an open host fd (not a memory stream). */
static uint16_t fd_host(wasi_ctx_t *w, uint32_t fd, uint64_t need, wasi_fd_t **out)
{
    uint16_t e = wasi_fd_get(w, fd, need, out);
    if (e) return e;
    return (*out)->kind == WFD_HOST ? WE_SUCCESS : WE_SPIPE;
}

/* ---- fd_* --------------------------------------------------------------- */

uint16_t wasi_fn_fd_advise(wasi_ctx_t *w, wasi_mem_t *m, const eng_val_t *a)
{
    (void)m;
    static const int advice[] = {POSIX_FADV_NORMAL, POSIX_FADV_SEQUENTIAL, POSIX_FADV_RANDOM,
                                 POSIX_FADV_WILLNEED, POSIX_FADV_DONTNEED, POSIX_FADV_NOREUSE};
    wasi_fd_t *f;
    uint16_t e = fd_host(w, a[0].i32, WR_FD_ADVISE, &f);
    if (e) return e;
    if (a[3].i32 > 5) return WE_INVAL;
    if (f->filetype == WFT_DIR) return WE_BADF;
    int r = posix_fadvise(f->host, (off_t)a[1].i64, (off_t)a[2].i64, advice[a[3].i32]);
    return wasi_errno_from_host(r);
}

uint16_t wasi_fn_fd_allocate(wasi_ctx_t *w, wasi_mem_t *m, const eng_val_t *a)
{
    (void)m;
    wasi_fd_t *f;
    uint16_t e = fd_host(w, a[0].i32, WR_FD_ALLOCATE, &f);
    if (e) return e;
    if ((int64_t)a[1].i64 < 0 || (int64_t)a[2].i64 <= 0) return WE_INVAL;
    return wasi_errno_from_host(posix_fallocate(f->host, (off_t)a[1].i64, (off_t)a[2].i64));
}

uint16_t wasi_fn_fd_close(wasi_ctx_t *w, wasi_mem_t *m, const eng_val_t *a)
{
    (void)m;
    wasi_fd_t *f;
    uint16_t e = wasi_fd_get(w, a[0].i32, 0, &f);
    if (e) return e;
    wasi_fd_release(f);
    return WE_SUCCESS;
}

uint16_t wasi_fn_fd_datasync(wasi_ctx_t *w, wasi_mem_t *m, const eng_val_t *a)
{
    (void)m;
    wasi_fd_t *f;
    uint16_t e = fd_host(w, a[0].i32, WR_FD_DATASYNC, &f);
    if (e) return e;
    return fdatasync(f->host) == 0 ? WE_SUCCESS : host_err();
}

uint16_t wasi_fn_fd_sync(wasi_ctx_t *w, wasi_mem_t *m, const eng_val_t *a)
{
    (void)m;
    wasi_fd_t *f;
    uint16_t e = fd_host(w, a[0].i32, WR_FD_SYNC, &f);
    if (e) return e;
    return fsync(f->host) == 0 ? WE_SUCCESS : host_err();
}

/* fdstat: filetype@0 (u8) flags@2 (u16) rights_base@8 rights_inheriting@16,
 * 24 bytes. */
uint16_t wasi_fn_fd_fdstat_get(wasi_ctx_t *w, wasi_mem_t *m, const eng_val_t *a)
{
    wasi_fd_t *f;
    uint16_t e = wasi_fd_get(w, a[0].i32, 0, &f);
    if (e) return e;
    uint32_t ptr = a[1].i32;
    if (!wasi_mem_ok(m, ptr, 24)) return WE_FAULT;
    uint16_t flags = 0;
    if (f->kind == WFD_HOST) {
        int fl = fcntl(f->host, F_GETFL);
        if (fl < 0) return host_err();
        if (fl & O_APPEND) flags |= WFDF_APPEND;
        if (fl & O_NONBLOCK) flags |= WFDF_NONBLOCK;
        if ((fl & O_SYNC) == O_SYNC) flags |= WFDF_SYNC | WFDF_RSYNC;
        else if (fl & O_DSYNC) flags |= WFDF_DSYNC;
    }
    uint8_t *p = m->base + ptr;
    memset(p, 0, 24);
    p[0] = f->filetype;
    wasi_st16(p + 2, flags);
    wasi_st64(p + 8, f->rights_base);
    wasi_st64(p + 16, f->rights_inheriting);
    return WE_SUCCESS;
}

uint16_t wasi_fn_fd_fdstat_set_flags(wasi_ctx_t *w, wasi_mem_t *m, const eng_val_t *a)
{
    (void)m;
    wasi_fd_t *f;
    uint16_t e = fd_host(w, a[0].i32, WR_FD_FDSTAT_SET_FLAGS, &f);
    if (e) return e;
    uint32_t want = a[1].i32;
    if (want & ~(uint32_t)(WFDF_APPEND | WFDF_NONBLOCK)) return WE_NOTSUP;
    int fl = fcntl(f->host, F_GETFL);
    if (fl < 0) return host_err();
    fl &= ~(O_APPEND | O_NONBLOCK);
    if (want & WFDF_APPEND) fl |= O_APPEND;
    if (want & WFDF_NONBLOCK) fl |= O_NONBLOCK;
    return fcntl(f->host, F_SETFL, fl) == 0 ? WE_SUCCESS : host_err();
}

uint16_t wasi_fn_fd_fdstat_set_rights(wasi_ctx_t *w, wasi_mem_t *m, const eng_val_t *a)
{
    (void)m;
    wasi_fd_t *f;
    uint16_t e = wasi_fd_get(w, a[0].i32, 0, &f);
    if (e) return e;
    uint64_t base = a[1].i64, inh = a[2].i64;
    /* Rights only ever shrink. */
    if ((base & ~f->rights_base) || (inh & ~f->rights_inheriting)) return WE_NOTCAPABLE;
    f->rights_base = base;
    f->rights_inheriting = inh;
    return WE_SUCCESS;
}

uint16_t wasi_fn_fd_filestat_get(wasi_ctx_t *w, wasi_mem_t *m, const eng_val_t *a)
{
    wasi_fd_t *f;
    uint16_t e = wasi_fd_get(w, a[0].i32, WR_FD_FILESTAT_GET, &f);
    if (e) return e;
    uint32_t ptr = a[1].i32;
    if (!wasi_mem_ok(m, ptr, 64)) return WE_FAULT;
    if (f->kind != WFD_HOST) {
        put_filestat(m->base + ptr, NULL, f->filetype);
        return WE_SUCCESS;
    }
    struct stat st;
    if (fstat(f->host, &st) != 0) return host_err();
    put_filestat(m->base + ptr, &st, 0);
    /* A FIFO is "unknown" to WASI; keep what fdstat says for consistency. */
    if (S_ISFIFO(st.st_mode)) m->base[ptr + 16] = f->filetype;
    return WE_SUCCESS;
}

uint16_t wasi_fn_fd_filestat_set_size(wasi_ctx_t *w, wasi_mem_t *m, const eng_val_t *a)
{
    (void)m;
    wasi_fd_t *f;
    uint16_t e = fd_host(w, a[0].i32, WR_FD_FILESTAT_SET_SIZE, &f);
    if (e) return e;
    if ((int64_t)a[1].i64 < 0) return WE_INVAL;
    return ftruncate(f->host, (off_t)a[1].i64) == 0 ? WE_SUCCESS : host_err();
}

uint16_t wasi_fn_fd_filestat_set_times(wasi_ctx_t *w, wasi_mem_t *m, const eng_val_t *a)
{
    (void)m;
    wasi_fd_t *f;
    uint16_t e = fd_host(w, a[0].i32, WR_FD_FILESTAT_SET_TIMES, &f);
    if (e) return e;
    struct timespec ts[2];
    if ((e = times_from_wasi(a[1].i64, a[2].i64, a[3].i32, ts))) return e;
    return futimens(f->host, ts) == 0 ? WE_SUCCESS : host_err();
}

/* Reads into iovecs from a memory stdin. */
static uint32_t memin_read(wasi_fd_t *f, struct iovec *iov, int n)
{
    uint32_t got = 0;
    for (int i = 0; i < n && f->in_pos < f->in_len; i++) {
        size_t k = f->in_len - f->in_pos;
        if (k > iov[i].iov_len) k = iov[i].iov_len;
        memcpy(iov[i].iov_base, f->in_data + f->in_pos, k);
        f->in_pos += k;
        got += (uint32_t)k;
    }
    return got;
}

/* Writes iovecs to an output callback; stops at the first short write. */
static uint16_t sink_write(wasi_fd_t *f, struct iovec *iov, int n, uint32_t *done)
{
    *done = 0;
    for (int i = 0; i < n; i++) {
        if (!iov[i].iov_len) continue;
        long r = f->sink(f->sink_ud, iov[i].iov_base, iov[i].iov_len);
        if (r < 0) return *done ? WE_SUCCESS : WE_IO;
        *done += (uint32_t)r;
        if ((size_t)r < iov[i].iov_len) break;
    }
    return WE_SUCCESS;
}

/* The body of fd_read/fd_write/fd_pread/fd_pwrite. */
static uint16_t fd_rw(wasi_ctx_t *w, wasi_mem_t *m, uint32_t fd, uint32_t iovs, uint32_t n,
                      bool write, bool positioned, uint64_t offset, uint32_t result_ptr)
{
    wasi_fd_t *f;
    uint64_t need = (write ? WR_FD_WRITE : WR_FD_READ) | (positioned ? WR_FD_SEEK : 0);
    uint16_t e = wasi_fd_get(w, fd, need, &f);
    if (e) return e;
    if (!wasi_mem_ok(m, result_ptr, 4)) return WE_FAULT;
    if (positioned && (int64_t)offset < 0) return WE_INVAL;
    struct iovec *iov;
    int k;
    if ((e = iovs_load(m, iovs, n, &iov, &k))) return e;
    uint32_t done = 0;
    if (f->kind == WFD_MEMIN) {
        if (write || positioned) e = positioned ? WE_SPIPE : WE_BADF;
        else done = memin_read(f, iov, k);
    } else if (f->kind == WFD_SINK) {
        if (!write || positioned) e = positioned ? WE_SPIPE : WE_BADF;
        else e = sink_write(f, iov, k, &done);
    } else if (f->filetype == WFT_DIR) {
        e = WE_ISDIR;
    } else {
        ssize_t r;
        do {
            if (positioned)
                r = write ? pwritev(f->host, iov, k, (off_t)offset)
                          : preadv(f->host, iov, k, (off_t)offset);
            else
                r = write ? writev(f->host, iov, k) : readv(f->host, iov, k);
        } while (r < 0 && errno == EINTR);
        if (r < 0) e = host_err();
        else done = (uint32_t)r;
    }
    free(iov);
    if (e) return e;
    wasi_st32(m->base + result_ptr, done);
    return WE_SUCCESS;
}

uint16_t wasi_fn_fd_read(wasi_ctx_t *w, wasi_mem_t *m, const eng_val_t *a)
{
    return fd_rw(w, m, a[0].i32, a[1].i32, a[2].i32, false, false, 0, a[3].i32);
}
uint16_t wasi_fn_fd_write(wasi_ctx_t *w, wasi_mem_t *m, const eng_val_t *a)
{
    return fd_rw(w, m, a[0].i32, a[1].i32, a[2].i32, true, false, 0, a[3].i32);
}
uint16_t wasi_fn_fd_pread(wasi_ctx_t *w, wasi_mem_t *m, const eng_val_t *a)
{
    return fd_rw(w, m, a[0].i32, a[1].i32, a[2].i32, false, true, a[3].i64, a[4].i32);
}
uint16_t wasi_fn_fd_pwrite(wasi_ctx_t *w, wasi_mem_t *m, const eng_val_t *a)
{
    return fd_rw(w, m, a[0].i32, a[1].i32, a[2].i32, true, true, a[3].i64, a[4].i32);
}

/* prestat: tag@0 (u8, 0 = dir), pr_name_len@4 (u32), 8 bytes. */
uint16_t wasi_fn_fd_prestat_get(wasi_ctx_t *w, wasi_mem_t *m, const eng_val_t *a)
{
    wasi_fd_t *f;
    uint16_t e = wasi_fd_get(w, a[0].i32, 0, &f);
    if (e) return e;
    if (!f->preopen_name) return WE_BADF;
    uint32_t ptr = a[1].i32;
    if (!wasi_mem_ok(m, ptr, 8)) return WE_FAULT;
    memset(m->base + ptr, 0, 8);
    wasi_st32(m->base + ptr + 4, (uint32_t)strlen(f->preopen_name));
    return WE_SUCCESS;
}

uint16_t wasi_fn_fd_prestat_dir_name(wasi_ctx_t *w, wasi_mem_t *m, const eng_val_t *a)
{
    wasi_fd_t *f;
    uint16_t e = wasi_fd_get(w, a[0].i32, 0, &f);
    if (e) return e;
    if (!f->preopen_name) return WE_BADF;
    uint32_t ptr = a[1].i32, len = a[2].i32;
    size_t n = strlen(f->preopen_name);
    if (len < n) return WE_NAMETOOLONG;
    if (!wasi_mem_ok(m, ptr, n)) return WE_FAULT;
    memcpy(m->base + ptr, f->preopen_name, n);
    return WE_SUCCESS;
}

static uint8_t dtype_to_wasi(DIR *d, const struct dirent *de)
{
    switch (de->d_type) {
    case DT_REG: return WFT_REG;
    case DT_DIR: return WFT_DIR;
    case DT_LNK: return WFT_SYMLINK;
    case DT_CHR: return WFT_CHAR;
    case DT_BLK: return WFT_BLOCK;
    case DT_SOCK: return WFT_SOCK_STREAM;
    case DT_FIFO: return WFT_UNKNOWN;
    default: {
        struct stat st;
        if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0) return WFT_UNKNOWN;
        return wasi_filetype_from_mode(st.st_mode);
    }
    }
}

/* dirent: d_next@0 d_ino@8 d_namlen@16 d_type@20, 24 bytes, then the name.
 * Cookies are entry indexes: cookie c means "start at entry c". An entry
 * that does not fit is written truncated to fill the buffer, as the spec
 * says; the guest then asks again from that entry's cookie. */
uint16_t wasi_fn_fd_readdir(wasi_ctx_t *w, wasi_mem_t *m, const eng_val_t *a)
{
    wasi_fd_t *f;
    uint16_t e = fd_host(w, a[0].i32, WR_FD_READDIR, &f);
    if (e) return e;
    uint32_t buf = a[1].i32, buf_len = a[2].i32, used_ptr = a[4].i32;
    uint64_t cookie = a[3].i64;
    if (!wasi_mem_ok(m, buf, buf_len) || !wasi_mem_ok(m, used_ptr, 4)) return WE_FAULT;
    if (f->filetype != WFT_DIR) return WE_NOTDIR;
    if (!f->dir) {
        int dfd = openat(f->host, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd < 0) return host_err();
        if (!(f->dir = fdopendir(dfd))) {
            close(dfd);
            return host_err();
        }
        f->dir_next = 0;
        f->dir_prev_valid = false;
    }
    if (cookie != f->dir_next) {
        if (cookie + 1 == f->dir_next && f->dir_prev_valid) {
            seekdir(f->dir, f->dir_prev_loc);
        } else {
            rewinddir(f->dir);
            f->dir_next = 0;
            while (f->dir_next < cookie && readdir(f->dir)) f->dir_next++;
            if (f->dir_next < cookie) { /* past the end */
                wasi_st32(m->base + used_ptr, 0);
                return WE_SUCCESS;
            }
        }
        f->dir_next = cookie;
        f->dir_prev_valid = false;
    }
    uint32_t used = 0;
    while (used < buf_len) {
        long loc = telldir(f->dir);
        errno = 0;
        struct dirent *de = readdir(f->dir);
        if (!de) {
            if (errno) return host_err();
            break;
        }
        uint8_t ent[24];
        size_t namlen = strlen(de->d_name);
        memset(ent, 0, sizeof ent);
        wasi_st64(ent, f->dir_next + 1);
        wasi_st64(ent + 8, (uint64_t)de->d_ino);
        wasi_st32(ent + 16, (uint32_t)namlen);
        ent[20] = dtype_to_wasi(f->dir, de);
        uint32_t room = buf_len - used, k = room < 24 ? room : 24;
        memcpy(m->base + buf + used, ent, k);
        used += k;
        room = buf_len - used;
        k = room < namlen ? room : (uint32_t)namlen;
        memcpy(m->base + buf + used, de->d_name, k);
        used += k;
        f->dir_prev_loc = loc;
        f->dir_prev_valid = true;
        f->dir_next++;
    }
    wasi_st32(m->base + used_ptr, used);
    return WE_SUCCESS;
}

uint16_t wasi_fn_fd_renumber(wasi_ctx_t *w, wasi_mem_t *m, const eng_val_t *a)
{
    (void)m;
    wasi_fd_t *from, *to;
    uint16_t e = wasi_fd_get(w, a[0].i32, 0, &from);
    if (e || (e = wasi_fd_get(w, a[1].i32, 0, &to))) return e;
    if (from == to) return WE_SUCCESS;
    wasi_fd_release(to);
    *to = *from;
    memset(from, 0, sizeof *from);
    from->host = -1;
    return WE_SUCCESS;
}

uint16_t wasi_fn_fd_seek(wasi_ctx_t *w, wasi_mem_t *m, const eng_val_t *a)
{
    int64_t off = (int64_t)a[1].i64;
    uint32_t whence = a[2].i32, ptr = a[3].i32;
    wasi_fd_t *f;
    uint16_t e = wasi_fd_get(w, a[0].i32, 0, &f);
    if (e) return e;
    /* Asking for the position needs FD_TELL or FD_SEEK; moving it, FD_SEEK. */
    bool tell_only = off == 0 && whence == WWHENCE_CUR;
    if (!(f->rights_base & WR_FD_SEEK) && !(tell_only && (f->rights_base & WR_FD_TELL)))
        return WE_NOTCAPABLE;
    if (f->kind != WFD_HOST) return WE_SPIPE;
    int hw = whence == WWHENCE_SET ? SEEK_SET
             : whence == WWHENCE_CUR ? SEEK_CUR
             : whence == WWHENCE_END ? SEEK_END
                                     : -1;
    if (hw < 0) return WE_INVAL;
    if (!wasi_mem_ok(m, ptr, 8)) return WE_FAULT;
    off_t r = lseek(f->host, (off_t)off, hw);
    if (r < 0) return host_err();
    wasi_st64(m->base + ptr, (uint64_t)r);
    return WE_SUCCESS;
}

uint16_t wasi_fn_fd_tell(wasi_ctx_t *w, wasi_mem_t *m, const eng_val_t *a)
{
    wasi_fd_t *f;
    uint16_t e = wasi_fd_get(w, a[0].i32, WR_FD_TELL, &f);
    if (e) return e;
    if (f->kind != WFD_HOST) return WE_SPIPE;
    if (!wasi_mem_ok(m, a[1].i32, 8)) return WE_FAULT;
    off_t r = lseek(f->host, 0, SEEK_CUR);
    if (r < 0) return host_err();
    wasi_st64(m->base + a[1].i32, (uint64_t)r);
    return WE_SUCCESS;
}

/* ---- path_* ------------------------------------------------------------- */

/* The start of every path call: a directory descriptor with the right, and
 * the guest's path copied out of memory. */
static uint16_t path_begin(wasi_ctx_t *w, wasi_mem_t *m, uint32_t fd, uint64_t right,
                           uint32_t ptr, uint32_t len, char *path, wasi_fd_t **dir)
{
    uint16_t e = wasi_fd_get(w, fd, right, dir);
    if (e) return e;
    if ((*dir)->kind != WFD_HOST || (*dir)->filetype != WFT_DIR) return WE_NOTDIR;
    return wasi_path_copy(m, ptr, len, path);
}

/* Resolves (dir fd, guest path) and runs the final step. */
typedef struct path_at {
    int pfd;
    char name[256];
    bool trailing;
} path_at_t;

static uint16_t path_at(wasi_ctx_t *w, wasi_mem_t *m, uint32_t fd, uint64_t right, uint32_t ptr,
                        uint32_t len, bool follow, path_at_t *out)
{
    char path[WASI_PATH_MAX + 1];
    wasi_fd_t *dir;
    uint16_t e = path_begin(w, m, fd, right, ptr, len, path, &dir);
    if (e) return e;
    return wasi_path_resolve(dir->host, path, follow, &out->pfd, out->name, &out->trailing);
}

/* A path written with a trailing slash must name a directory. */
static uint16_t check_trailing(const path_at_t *p)
{
    struct stat st;
    if (!p->trailing) return WE_SUCCESS;
    if (fstatat(p->pfd, p->name, &st, AT_SYMLINK_NOFOLLOW) != 0) return host_err();
    return S_ISDIR(st.st_mode) ? WE_SUCCESS : WE_NOTDIR;
}

uint16_t wasi_fn_path_create_directory(wasi_ctx_t *w, wasi_mem_t *m, const eng_val_t *a)
{
    path_at_t p;
    uint16_t e = path_at(w, m, a[0].i32, WR_PATH_CREATE_DIRECTORY, a[1].i32, a[2].i32, false, &p);
    if (e) return e;
    e = mkdirat(p.pfd, p.name, 0777) == 0 ? WE_SUCCESS : host_err();
    close(p.pfd);
    return e;
}

uint16_t wasi_fn_path_filestat_get(wasi_ctx_t *w, wasi_mem_t *m, const eng_val_t *a)
{
    uint32_t out = a[4].i32;
    if (!wasi_mem_ok(m, out, 64)) return WE_FAULT;
    path_at_t p;
    bool follow = a[1].i32 & WLOOKUP_SYMLINK_FOLLOW;
    uint16_t e = path_at(w, m, a[0].i32, WR_PATH_FILESTAT_GET, a[2].i32, a[3].i32, follow, &p);
    if (e) return e;
    struct stat st;
    if (fstatat(p.pfd, p.name, &st, AT_SYMLINK_NOFOLLOW) != 0) e = host_err();
    else if (p.trailing && !S_ISDIR(st.st_mode)) e = WE_NOTDIR;
    else put_filestat(m->base + out, &st, 0);
    close(p.pfd);
    return e;
}

uint16_t wasi_fn_path_filestat_set_times(wasi_ctx_t *w, wasi_mem_t *m, const eng_val_t *a)
{
    struct timespec ts[2];
    uint16_t e = times_from_wasi(a[4].i64, a[5].i64, a[6].i32, ts);
    if (e) return e;
    path_at_t p;
    bool follow = a[1].i32 & WLOOKUP_SYMLINK_FOLLOW;
    e = path_at(w, m, a[0].i32, WR_PATH_FILESTAT_SET_TIMES, a[2].i32, a[3].i32, follow, &p);
    if (e) return e;
    if (!(e = check_trailing(&p)))
        e = utimensat(p.pfd, p.name, ts, AT_SYMLINK_NOFOLLOW) == 0 ? WE_SUCCESS : host_err();
    close(p.pfd);
    return e;
}

uint16_t wasi_fn_path_link(wasi_ctx_t *w, wasi_mem_t *m, const eng_val_t *a)
{
    path_at_t o, n;
    bool follow = a[1].i32 & WLOOKUP_SYMLINK_FOLLOW;
    uint16_t e = path_at(w, m, a[0].i32, WR_PATH_LINK_SOURCE, a[2].i32, a[3].i32, follow, &o);
    if (e) return e;
    if ((e = path_at(w, m, a[4].i32, WR_PATH_LINK_TARGET, a[5].i32, a[6].i32, false, &n))) {
        close(o.pfd);
        return e;
    }
    /* Trailing slashes, as Linux answers them without giving the host a
     * path that could follow a symlink: on the old path it names a
     * directory (no hard links to those: EPERM) or is wrong (ENOTDIR); on
     * the new path, the link could only be a directory, which never gets
     * made: EEXIST when the name is taken, else ENOENT. */
    struct stat st;
    if (o.trailing)
        e = fstatat(o.pfd, o.name, &st, AT_SYMLINK_NOFOLLOW) != 0 ? host_err()
            : S_ISDIR(st.st_mode)                                ? WE_PERM
                                                                 : WE_NOTDIR;
    else if (n.trailing)
        e = fstatat(n.pfd, n.name, &st, AT_SYMLINK_NOFOLLOW) == 0 ? WE_EXIST : WE_NOENT;
    else e = linkat(o.pfd, o.name, n.pfd, n.name, 0) == 0 ? WE_SUCCESS : host_err();
    close(o.pfd);
    close(n.pfd);
    return e;
}

uint16_t wasi_fn_path_open(wasi_ctx_t *w, wasi_mem_t *m, const eng_val_t *a)
{
    uint32_t dirflags = a[1].i32, oflags = a[4].i32, fdflags = a[7].i32, out = a[8].i32;
    uint64_t base = a[5].i64, inh = a[6].i64;
    char path[WASI_PATH_MAX + 1];
    wasi_fd_t *dir;
    uint64_t need = WR_PATH_OPEN | (oflags & WOF_CREAT ? WR_PATH_CREATE_FILE : 0) |
                    (oflags & WOF_TRUNC ? WR_PATH_FILESTAT_SET_SIZE : 0);
    uint16_t e = path_begin(w, m, a[0].i32, need, a[2].i32, a[3].i32, path, &dir);
    if (e) return e;
    if (!wasi_mem_ok(m, out, 4)) return WE_FAULT;
    if (oflags & ~(uint32_t)(WOF_CREAT | WOF_DIRECTORY | WOF_EXCL | WOF_TRUNC)) return WE_INVAL;

    /* The host access mode from the rights that move data: a directory
     * reopened with the rights fd_fdstat_get reports for it (readdir,
     * datasync, ...) opens read-only; asking to write data to one fails
     * (EISDIR), as it should. fdatasync needs no write access. */
    bool rd = base & (WR_FD_READ | WR_FD_READDIR);
    bool wr = base & (WR_FD_WRITE | WR_FD_ALLOCATE | WR_FD_FILESTAT_SET_SIZE);
    int flags = wr ? (rd ? O_RDWR : O_WRONLY) : O_RDONLY;
    if (oflags & WOF_CREAT) flags |= O_CREAT;
    if (oflags & WOF_DIRECTORY) flags |= O_DIRECTORY;
    if (oflags & WOF_EXCL) flags |= O_EXCL;
    if (oflags & WOF_TRUNC) flags |= O_TRUNC;
    if (fdflags & WFDF_APPEND) flags |= O_APPEND;
    if (fdflags & WFDF_DSYNC) flags |= O_DSYNC;
    if (fdflags & WFDF_NONBLOCK) flags |= O_NONBLOCK;
    if (fdflags & WFDF_RSYNC) flags |= O_RSYNC;
    if (fdflags & WFDF_SYNC) flags |= O_SYNC;

    int fd;
    bool follow = dirflags & WLOOKUP_SYMLINK_FOLLOW;
    if ((e = wasi_path_open_beneath(dir->host, path, flags, 0666, follow, &fd))) return e;
    struct stat st;
    if (fstat(fd, &st) != 0) {
        e = host_err();
        close(fd);
        return e;
    }
    uint8_t type = wasi_filetype_from_mode(st.st_mode);
    uint64_t kind = type == WFT_DIR ? WR_DIR : type == WFT_REG ? WR_FILE : WR_STREAM;
    uint32_t newfd;
    e = wasi_fd_install(w, fd, type, base & dir->rights_inheriting & kind,
                        inh & dir->rights_inheriting, &newfd);
    if (e) return e;
    wasi_st32(m->base + out, newfd);
    return WE_SUCCESS;
}

uint16_t wasi_fn_path_readlink(wasi_ctx_t *w, wasi_mem_t *m, const eng_val_t *a)
{
    uint32_t buf = a[3].i32, len = a[4].i32, out = a[5].i32;
    if (!wasi_mem_ok(m, buf, len) || !wasi_mem_ok(m, out, 4)) return WE_FAULT;
    path_at_t p;
    uint16_t e = path_at(w, m, a[0].i32, WR_PATH_READLINK, a[1].i32, a[2].i32, false, &p);
    if (e) return e;
    ssize_t r = readlinkat(p.pfd, p.name, (char *)m->base + buf, len);
    if (r < 0) e = host_err();
    else wasi_st32(m->base + out, (uint32_t)r);
    close(p.pfd);
    return e;
}

uint16_t wasi_fn_path_remove_directory(wasi_ctx_t *w, wasi_mem_t *m, const eng_val_t *a)
{
    path_at_t p;
    uint16_t e = path_at(w, m, a[0].i32, WR_PATH_REMOVE_DIRECTORY, a[1].i32, a[2].i32, false, &p);
    if (e) return e;
    e = unlinkat(p.pfd, p.name, AT_REMOVEDIR) == 0 ? WE_SUCCESS : host_err();
    close(p.pfd);
    return e;
}

uint16_t wasi_fn_path_rename(wasi_ctx_t *w, wasi_mem_t *m, const eng_val_t *a)
{
    path_at_t o, n;
    uint16_t e = path_at(w, m, a[0].i32, WR_PATH_RENAME_SOURCE, a[1].i32, a[2].i32, false, &o);
    if (e) return e;
    if ((e = path_at(w, m, a[3].i32, WR_PATH_RENAME_TARGET, a[4].i32, a[5].i32, false, &n))) {
        close(o.pfd);
        return e;
    }
    if (!(e = check_trailing(&o))) {
        if (n.trailing) {
            /* "dst/" must end up a directory: only a directory may move there. */
            struct stat st;
            if (fstatat(o.pfd, o.name, &st, AT_SYMLINK_NOFOLLOW) == 0 && !S_ISDIR(st.st_mode))
                e = WE_NOTDIR;
        }
        if (!e) e = renameat(o.pfd, o.name, n.pfd, n.name) == 0 ? WE_SUCCESS : host_err();
    }
    close(o.pfd);
    close(n.pfd);
    return e;
}

uint16_t wasi_fn_path_symlink(wasi_ctx_t *w, wasi_mem_t *m, const eng_val_t *a)
{
    char target[WASI_PATH_MAX + 1];
    uint16_t e = wasi_path_copy(m, a[0].i32, a[1].i32, target);
    if (e) return e;
    /* A link may point anywhere textually (following it is checked), but an
     * absolute target can only ever resolve outside, so refuse it now. */
    if (target[0] == '/') return WE_NOTCAPABLE;
    path_at_t p;
    if ((e = path_at(w, m, a[2].i32, WR_PATH_SYMLINK, a[3].i32, a[4].i32, false, &p))) return e;
    if (p.trailing) e = WE_NOENT;
    else e = symlinkat(target, p.pfd, p.name) == 0 ? WE_SUCCESS : host_err();
    close(p.pfd);
    return e;
}

uint16_t wasi_fn_path_unlink_file(wasi_ctx_t *w, wasi_mem_t *m, const eng_val_t *a)
{
    path_at_t p;
    uint16_t e = path_at(w, m, a[0].i32, WR_PATH_UNLINK_FILE, a[1].i32, a[2].i32, false, &p);
    if (e) return e;
    if (p.trailing) {
        struct stat st;
        if (fstatat(p.pfd, p.name, &st, AT_SYMLINK_NOFOLLOW) != 0) e = host_err();
        else e = S_ISDIR(st.st_mode) ? WE_ISDIR : WE_NOTDIR;
    } else {
        e = unlinkat(p.pfd, p.name, 0) == 0 ? WE_SUCCESS : host_err();
    }
    close(p.pfd);
    return e;
}
