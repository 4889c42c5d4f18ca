/*
 * fd.c — the guest's descriptor table (lookup with a rights check, install,
 * release) and the translation of host errno values and file modes into
 * WASI's. Below every other file of src/wasi/: wasi.c, fs.c and path.c
 * all use it, and it calls none of them.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "wasi/internal.h"

/* ---- errno and file types ----------------------------------------------- */

uint16_t wasi_errno_from_host(int e)
{
    switch (e) {
    case 0: return WE_SUCCESS;
    case E2BIG: return WE_2BIG;
    case EACCES: return WE_ACCES;
    case EADDRINUSE: return WE_ADDRINUSE;
    case EADDRNOTAVAIL: return WE_ADDRNOTAVAIL;
    case EAFNOSUPPORT: return WE_AFNOSUPPORT;
    case EAGAIN: return WE_AGAIN;
    case EALREADY: return WE_ALREADY;
    case EBADF: return WE_BADF;
    case EBADMSG: return WE_BADMSG;
    case EBUSY: return WE_BUSY;
    case ECANCELED: return WE_CANCELED;
    case ECHILD: return WE_CHILD;
    case ECONNABORTED: return WE_CONNABORTED;
    case ECONNREFUSED: return WE_CONNREFUSED;
    case ECONNRESET: return WE_CONNRESET;
    case EDEADLK: return WE_DEADLK;
    case EDESTADDRREQ: return WE_DESTADDRREQ;
    case EDOM: return WE_DOM;
    case EDQUOT: return WE_DQUOT;
    case EEXIST: return WE_EXIST;
    case EFAULT: return WE_FAULT;
    case EFBIG: return WE_FBIG;
    case EHOSTUNREACH: return WE_HOSTUNREACH;
    case EIDRM: return WE_IDRM;
    case EILSEQ: return WE_ILSEQ;
    case EINPROGRESS: return WE_INPROGRESS;
    case EINTR: return WE_INTR;
    case EINVAL: return WE_INVAL;
    case EIO: return WE_IO;
    case EISCONN: return WE_ISCONN;
    case EISDIR: return WE_ISDIR;
    case ELOOP: return WE_LOOP;
    case EMFILE: return WE_MFILE;
    case EMLINK: return WE_MLINK;
    case EMSGSIZE: return WE_MSGSIZE;
    case EMULTIHOP: return WE_MULTIHOP;
    case ENAMETOOLONG: return WE_NAMETOOLONG;
    case ENETDOWN: return WE_NETDOWN;
    case ENETRESET: return WE_NETRESET;
    case ENETUNREACH: return WE_NETUNREACH;
    case ENFILE: return WE_NFILE;
    case ENOBUFS: return WE_NOBUFS;
    case ENODEV: return WE_NODEV;
    case ENOENT: return WE_NOENT;
    case ENOEXEC: return WE_NOEXEC;
    case ENOLCK: return WE_NOLCK;
    case ENOLINK: return WE_NOLINK;
    case ENOMEM: return WE_NOMEM;
    case ENOMSG: return WE_NOMSG;
    case ENOPROTOOPT: return WE_NOPROTOOPT;
    case ENOSPC: return WE_NOSPC;
    case ENOSYS: return WE_NOSYS;
    case ENOTCONN: return WE_NOTCONN;
    case ENOTDIR: return WE_NOTDIR;
    case ENOTEMPTY: return WE_NOTEMPTY;
    case ENOTRECOVERABLE: return WE_NOTRECOVERABLE;
    case ENOTSOCK: return WE_NOTSOCK;
    case ENOTSUP: return WE_NOTSUP; /* == EOPNOTSUPP on Linux */
    case ENOTTY: return WE_NOTTY;
    case ENXIO: return WE_NXIO;
    case EOVERFLOW: return WE_OVERFLOW;
    case EOWNERDEAD: return WE_OWNERDEAD;
    case EPERM: return WE_PERM;
    case EPIPE: return WE_PIPE;
    case EPROTO: return WE_PROTO;
    case EPROTONOSUPPORT: return WE_PROTONOSUPPORT;
    case EPROTOTYPE: return WE_PROTOTYPE;
    case ERANGE: return WE_RANGE;
    case EROFS: return WE_ROFS;
    case ESPIPE: return WE_SPIPE;
    case ESRCH: return WE_SRCH;
    case ESTALE: return WE_STALE;
    case ETIMEDOUT: return WE_TIMEDOUT;
    case ETXTBSY: return WE_TXTBSY;
    case EXDEV: return WE_XDEV;
    default: return WE_IO;
    }
}

uint8_t wasi_filetype_from_mode(unsigned mode)
{
    switch (mode & S_IFMT) {
    case S_IFREG: return WFT_REG;
    case S_IFDIR: return WFT_DIR;
    case S_IFCHR: return WFT_CHAR;
    case S_IFBLK: return WFT_BLOCK;
    case S_IFLNK: return WFT_SYMLINK;
    case S_IFSOCK: return WFT_SOCK_STREAM;
    default: return WFT_UNKNOWN; /* FIFOs have no WASI type */
    }
}

/* ---- the descriptor table ----------------------------------------------- */

uint16_t wasi_fd_get(wasi_ctx_t *w, uint32_t fd, uint64_t need, wasi_fd_t **out)
{
    if (fd >= w->nfds || w->fds[fd].kind == WFD_FREE) return WE_BADF;
    wasi_fd_t *f = &w->fds[fd];
    if ((f->rights_base & need) != need) return WE_NOTCAPABLE;
    *out = f;
    return WE_SUCCESS;
}

void wasi_fd_release(wasi_fd_t *f)
{
    if (f->dir) closedir(f->dir);
    if (f->kind == WFD_HOST && f->owned) close(f->host);
    free(f->preopen_name);
    memset(f, 0, sizeof *f);
    f->host = -1;
}

/* Finds the lowest free slot >= 3, growing the table as needed. */
static uint16_t fd_slot(wasi_ctx_t *w, uint32_t *out)
{
    for (uint32_t i = 3; i < w->nfds; i++) {
        if (w->fds[i].kind == WFD_FREE) {
            *out = i;
            return WE_SUCCESS;
        }
    }
    if (w->nfds >= w->max_fds) return WE_MFILE;
    uint32_t n = w->nfds * 2;
    if (n < 8) n = 8;
    if (n > w->max_fds) n = w->max_fds;
    wasi_fd_t *fds = realloc(w->fds, n * sizeof *fds);
    if (!fds) return WE_NOMEM;
    for (uint32_t i = w->nfds; i < n; i++) {
        memset(&fds[i], 0, sizeof fds[i]);
        fds[i].host = -1;
    }
    *out = w->nfds < 3 ? 3 : w->nfds;
    w->fds = fds;
    w->nfds = n;
    return WE_SUCCESS;
}

uint16_t wasi_fd_install(wasi_ctx_t *w, int host, uint8_t filetype, uint64_t base,
                         uint64_t inheriting, uint32_t *out_fd)
{
    uint32_t i;
    uint16_t e = fd_slot(w, &i);
    if (e != WE_SUCCESS) {
        close(host);
        return e;
    }
    wasi_fd_t *f = &w->fds[i];
    f->kind = WFD_HOST;
    f->host = host;
    f->owned = true;
    f->filetype = filetype;
    f->rights_base = base;
    f->rights_inheriting = inheriting;
    *out_fd = i;
    return WE_SUCCESS;
}
