/*
 * store.c — the data directory itself: creating it, the admin token, the
 * lock that keeps two daemons off one directory, and the content-addressed
 * module blobs. The database half of the store is in registry.c.
 *
 * Every file that must survive a crash is written the same way: a temporary
 * file in the same directory, write, fsync, then link/rename into place and
 * fsync the directory. A reader therefore sees either nothing or the whole
 * file, never a prefix; the temporary files a SIGKILL leaves behind are
 * removed at the next start.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "common/buf.h"
#include "store/internal.h"

static char *path_join(const char *a, const char *b)
{
    char *p;
    if (asprintf(&p, "%s/%s", a, b) < 0) return NULL;
    return p;
}

/* mkdir -p with mode for every directory it creates. Returns 1 if the last
 * component was created, 0 if it existed, -1 on error (errno set). */
static int mkdir_p(const char *path, mode_t mode)
{
    char *p = strdup(path);
    if (!p) return -1;
    int created = 0;
    for (char *q = p + 1;; q++) {
        if (*q == '/' || *q == '\0') {
            char c = *q;
            *q = '\0';
            if (mkdir(p, mode) == 0) {
                created = 1;
            } else if (errno == EEXIST) {
                struct stat st;
                if (stat(p, &st) != 0 || !S_ISDIR(st.st_mode)) {
                    errno = ENOTDIR;
                    free(p);
                    return -1;
                }
                created = 0;
            } else {
                free(p);
                return -1;
            }
            *q = c;
            if (c == '\0') break;
        }
    }
    free(p);
    return created;
}

static int fsync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return -1;
    int r = fsync(fd);
    close(fd);
    return r;
}

static int write_all(int fd, const void *buf, size_t len)
{
    const uint8_t *p = buf;
    while (len > 0) {
        ssize_t w = write(fd, p, len);
        if (w < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        p += w;
        len -= (size_t)w;
    }
    return 0;
}

/* Reads the whole file into a malloc'd buffer (NUL-terminated for
 * convenience; *len excludes the NUL). -1 with errno on failure. */
static int read_file(const char *path, uint8_t **out, size_t *len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    /* Exactly the size fstat gave (a module may be 256 MiB: doubling
     * would ask for twice that); only a file that grew since reads on in
     * doubling steps. */
    cm_buf_t b = {0};
    if (cm_buf_reserve_upto(&b, (size_t)st.st_size, (size_t)st.st_size) != 0) {
        cm_buf_free(&b);
        close(fd);
        errno = ENOMEM;
        return -1;
    }
    b.data[0] = '\0';
    for (;;) {
        if (b.cap - b.len - 1 == 0 && cm_buf_reserve(&b, b.len ? b.len : 4096) != 0) {
            cm_buf_free(&b);
            close(fd);
            errno = ENOMEM;
            return -1;
        }
        ssize_t r = read(fd, b.data + b.len, b.cap - b.len - 1);
        if (r < 0) {
            if (errno == EINTR) continue;
            int e = errno;
            cm_buf_free(&b);
            close(fd);
            errno = e;
            return -1;
        }
        if (r == 0) break;
        b.len += (size_t)r;
        b.data[b.len] = '\0';
    }
    close(fd);
    *len = b.len;
    *out = (uint8_t *)cm_buf_take(&b);
    return 0;
}

static bool is_hex64(const char *s)
{
    for (int i = 0; i < 64; i++) {
        char c = s[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
    }
    return s[64] == '\0';
}

/* ---- The admin token ------------------------------------------------------ */

/* Reads DIR/admin.token, or creates it with 32 random bytes as hex. The file
 * is made under a temporary name and link(2)ed into place, so a concurrent
 * first start cannot replace a token someone already read. */
static int token_load(st_store_t *s, char *err, size_t errlen)
{
    char *path = path_join(s->dir, "admin.token");
    if (!path) {
        st_seterr(err, errlen, "out of memory");
        return -1;
    }
    int rc = -1;
    for (int attempt = 0; attempt < 2 && rc != 0; attempt++) {
        uint8_t *buf;
        size_t len;
        if (read_file(path, &buf, &len) == 0) {
            while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == '\r' || buf[len - 1] == ' '))
                buf[--len] = '\0';
            if (len != 64 || !is_hex64((char *)buf)) {
                st_seterr(err, errlen, "%s: not a token of 64 lowercase hex digits", path);
                free(buf);
                break;
            }
            memcpy(s->token, buf, 65);
            free(buf);
            rc = 0;
            break;
        }
        if (errno != ENOENT) {
            st_seterr(err, errlen, "%s: %s", path, strerror(errno));
            break;
        }
        uint8_t rnd[32];
        size_t got = 0;
        while (got < sizeof rnd) {
            ssize_t r = getrandom(rnd + got, sizeof rnd - got, 0);
            if (r < 0) {
                if (errno == EINTR) continue;
                st_seterr(err, errlen, "getrandom: %s", strerror(errno));
                goto out;
            }
            got += (size_t)r;
        }
        char hex[66];
        for (int i = 0; i < 32; i++) snprintf(hex + 2 * i, 3, "%02x", rnd[i]);
        hex[64] = '\n';
        hex[65] = '\0';
        char *tmp;
        if (asprintf(&tmp, "%s/.admin.token.XXXXXX", s->dir) < 0) {
            st_seterr(err, errlen, "out of memory");
            goto out;
        }
        int fd = mkstemp(tmp); /* mode 0600 */
        if (fd < 0) {
            st_seterr(err, errlen, "%s: %s", tmp, strerror(errno));
            free(tmp);
            goto out;
        }
        int ok = fchmod(fd, 0600) == 0 && write_all(fd, hex, 65) == 0 && fsync(fd) == 0;
        int e = errno;
        close(fd);
        if (!ok) {
            st_seterr(err, errlen, "%s: %s", tmp, strerror(e));
            unlink(tmp);
            free(tmp);
            goto out;
        }
        int linked = link(tmp, path);
        e = errno;
        unlink(tmp);
        free(tmp);
        if (linked != 0 && e != EEXIST) {
            st_seterr(err, errlen, "%s: %s", path, strerror(e));
            goto out;
        }
        fsync_dir(s->dir);
        /* Loop: read back what is now there (ours, or a racing writer's). */
    }
out:
    free(path);
    return rc;
}

/* Removes the temporary files a killed process left in dir. */
static void remove_stale_temps(const char *dir, const char *prefix)
{
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *de;
    size_t plen = strlen(prefix);
    while ((de = readdir(d)) != NULL) {
        if (strncmp(de->d_name, prefix, plen) == 0) unlinkat(dirfd(d), de->d_name, 0);
    }
    closedir(d);
}

/* ---- Opening -------------------------------------------------------------- */

st_store_t *st_open(const char *dir, char *err, size_t errlen)
{
    st_store_t *s = calloc(1, sizeof *s);
    if (!s) {
        st_seterr(err, errlen, "out of memory");
        return NULL;
    }
    s->lock_fd = -1;
    s->dir = strdup(dir);
    s->blob_dir = path_join(dir, "blobs/sha256");
    s->artifact_dir = path_join(dir, "artifacts");
    if (!s->dir || !s->blob_dir || !s->artifact_dir) {
        st_seterr(err, errlen, "out of memory");
        goto fail;
    }
    int created = mkdir_p(dir, 0700);
    if (created < 0) {
        st_seterr(err, errlen, "%s: cannot create the data directory: %s", dir, strerror(errno));
        goto fail;
    }
    if (created) chmod(dir, 0700); /* whatever the umask */
    int bcreated = mkdir_p(s->blob_dir, 0700);
    if (bcreated < 0) {
        st_seterr(err, errlen, "%s: %s", s->blob_dir, strerror(errno));
        goto fail;
    }
    if (bcreated) {
        /* New directory entries are durable only once their parent is
         * fsync'd: without this a crash could lose blobs/ with every
         * blob in it, while the database that names them survives. */
        char *blobs = path_join(dir, "blobs");
        if (blobs) fsync_dir(blobs);
        free(blobs);
        fsync_dir(dir);
    }

    if (mkdir_p(s->artifact_dir, 0700) < 0) {
        st_seterr(err, errlen, "%s: %s", s->artifact_dir, strerror(errno));
        goto fail;
    }

    /* One daemon per data directory: two would each think they own it. */
    char *lock = path_join(dir, "wasmfn.lock");
    if (!lock) {
        st_seterr(err, errlen, "out of memory");
        goto fail;
    }
    s->lock_fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (s->lock_fd < 0) {
        st_seterr(err, errlen, "%s: %s", lock, strerror(errno));
        free(lock);
        goto fail;
    }
    if (flock(s->lock_fd, LOCK_EX | LOCK_NB) != 0) {
        if (errno == EWOULDBLOCK)
            st_seterr(err, errlen, "%s: the data directory is in use by another wasmfn process", dir);
        else
            st_seterr(err, errlen, "%s: %s", lock, strerror(errno));
        free(lock);
        goto fail;
    }
    free(lock);

    remove_stale_temps(s->blob_dir, ".tmp.");
    remove_stale_temps(s->artifact_dir, ".tmp.");
    remove_stale_temps(dir, ".admin.token.");
    if (token_load(s, err, errlen) != 0) goto fail;
    if (st_db_open(s, err, errlen) != 0) goto fail;
    return s;
fail:
    st_close(s);
    return NULL;
}

void st_close(st_store_t *s)
{
    if (!s) return;
    st_db_close(s);
    if (s->lock_fd >= 0) close(s->lock_fd);
    free(s->dir);
    free(s->blob_dir);
    free(s->artifact_dir);
    free(s);
}

const char *st_dir(const st_store_t *s) { return s->dir; }
const char *st_admin_token(const st_store_t *s) { return s->token; }

/* ---- Blobs ---------------------------------------------------------------- */

int st_digest_check(const char *digest)
{
    if (!digest || strncmp(digest, "sha256:", 7) != 0) return -1;
    return is_hex64(digest + 7) ? 0 : -1;
}

void st_digest_of(const uint8_t *bytes, size_t len, char *out)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    static const uint8_t empty[1];
    EVP_Digest(bytes ? bytes : empty, len, md, &mdlen, EVP_sha256(), NULL);
    memcpy(out, "sha256:", 7);
    for (unsigned i = 0; i < 32; i++) snprintf(out + 7 + 2 * i, 3, "%02x", md[i]);
    out[ST_DIGEST_LEN] = '\0';
}

static char *blob_path(st_store_t *s, const char *digest)
{
    return path_join(s->blob_dir, digest + 7);
}

int st_blob_get(st_store_t *s, const char *digest, uint8_t **bytes, size_t *len, char *err,
                size_t errlen)
{
    if (st_digest_check(digest) != 0) {
        st_seterr(err, errlen, "'%s' is not a sha256:HEX digest", digest ? digest : "");
        return ST_ERR;
    }
    char *path = blob_path(s, digest);
    if (!path) {
        st_seterr(err, errlen, "out of memory");
        return ST_ERR;
    }
    uint8_t *buf;
    size_t n;
    if (read_file(path, &buf, &n) != 0) {
        int e = errno;
        if (e == ENOENT) {
            st_seterr(err, errlen, "blob %s not found", digest);
            free(path);
            return ST_NOT_FOUND;
        }
        st_seterr(err, errlen, "%s: %s", path, strerror(e));
        free(path);
        return ST_ERR;
    }
    char got[ST_DIGEST_LEN + 1];
    st_digest_of(buf, n, got);
    if (strcmp(got, digest) != 0) {
        st_seterr(err, errlen, "%s: content does not match its digest (the file is damaged)", path);
        free(buf);
        free(path);
        return ST_CORRUPT;
    }
    free(path);
    *bytes = buf;
    *len = n;
    return ST_OK;
}

bool st_blob_exists(st_store_t *s, const char *digest)
{
    if (st_digest_check(digest) != 0) return false;
    char *path = blob_path(s, digest);
    if (!path) return false;
    struct stat st;
    bool ok = stat(path, &st) == 0 && S_ISREG(st.st_mode);
    free(path);
    return ok;
}

int st_blob_put(st_store_t *s, const uint8_t *bytes, size_t len, char *digest_out, char *err,
                size_t errlen)
{
    char digest[ST_DIGEST_LEN + 1];
    st_digest_of(bytes, len, digest);
    if (digest_out) memcpy(digest_out, digest, sizeof digest);

    /* Already there and intact: nothing to do. A damaged copy is replaced. */
    uint8_t *old;
    size_t oldlen;
    int g = st_blob_get(s, digest, &old, &oldlen, NULL, 0);
    if (g == ST_OK) {
        free(old);
        return ST_OK;
    }

    char *path = blob_path(s, digest);
    char *tmp = NULL;
    if (!path || asprintf(&tmp, "%s/.tmp.XXXXXX", s->blob_dir) < 0) {
        free(path);
        st_seterr(err, errlen, "out of memory");
        return ST_ERR;
    }
    int fd = mkstemp(tmp);
    if (fd < 0) {
        st_seterr(err, errlen, "%s: %s", tmp, strerror(errno));
        goto fail;
    }
    if (write_all(fd, bytes, len) != 0 || fsync(fd) != 0) {
        st_seterr(err, errlen, "%s: %s", tmp, strerror(errno));
        close(fd);
        unlink(tmp);
        goto fail;
    }
    close(fd);
    if (rename(tmp, path) != 0) {
        st_seterr(err, errlen, "%s: %s", path, strerror(errno));
        unlink(tmp);
        goto fail;
    }
    if (fsync_dir(s->blob_dir) != 0) {
        st_seterr(err, errlen, "%s: fsync: %s", s->blob_dir, strerror(errno));
        goto fail;
    }
    free(tmp);
    free(path);
    return ST_OK;
fail:
    free(tmp);
    free(path);
    return ST_ERR;
}

/* ---- Compiled artefacts ---------------------------------------------------- */

/* ---- Blobs written as they arrive ------------------------------------------ */

struct st_blob_writer {
    st_store_t *s;
    char *tmp;          /* blobs/sha256/.tmp.XXXXXX */
    int fd;
    EVP_MD_CTX *md;     /* SHA-256 of what was written */
};

st_blob_writer_t *st_blob_writer_open(st_store_t *s, char *err, size_t errlen)
{
    st_blob_writer_t *w = calloc(1, sizeof *w);
    if (!w || asprintf(&w->tmp, "%s/.tmp.XXXXXX", s->blob_dir) < 0 ||
        !(w->md = EVP_MD_CTX_new()) || EVP_DigestInit_ex(w->md, EVP_sha256(), NULL) != 1) {
        if (w) {
            EVP_MD_CTX_free(w->md);
            free(w->tmp);
        }
        free(w);
        st_seterr(err, errlen, "out of memory");
        return NULL;
    }
    w->s = s;
    w->fd = mkstemp(w->tmp);
    if (w->fd < 0) {
        st_seterr(err, errlen, "%s: %s", w->tmp, strerror(errno));
        EVP_MD_CTX_free(w->md);
        free(w->tmp);
        free(w);
        return NULL;
    }
    return w;
}

int st_blob_writer_write(st_blob_writer_t *w, const uint8_t *bytes, size_t len, char *err,
                         size_t errlen)
{
    if (write_all(w->fd, bytes, len) != 0) {
        st_seterr(err, errlen, "%s: %s", w->tmp, strerror(errno));
        return ST_ERR;
    }
    EVP_DigestUpdate(w->md, bytes, len);
    return ST_OK;
}

static void writer_free(st_blob_writer_t *w)
{
    if (w->fd >= 0) close(w->fd);
    EVP_MD_CTX_free(w->md);
    free(w->tmp);
    free(w);
}

void st_blob_writer_abort(st_blob_writer_t *w)
{
    if (!w) return;
    unlink(w->tmp);
    writer_free(w);
}

int st_blob_writer_commit(st_blob_writer_t *w, const char *digest, char *err, size_t errlen)
{
    /* Our own hash, not the caller's word: a blob's name is its content. */
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    char got[ST_DIGEST_LEN + 1];
    EVP_DigestFinal_ex(w->md, md, &mdlen);
    memcpy(got, "sha256:", 7);
    for (unsigned i = 0; i < 32; i++) snprintf(got + 7 + 2 * i, 3, "%02x", md[i]);
    if (st_digest_check(digest) != 0 || strcmp(got, digest) != 0) {
        st_seterr(err, errlen, "the module hashes to %s, not %s (nothing was kept)", got,
                  digest ? digest : "");
        st_blob_writer_abort(w);
        return ST_CORRUPT;
    }
    int rc = ST_ERR;
    char *path = blob_path(w->s, digest);
    if (!path) {
        st_seterr(err, errlen, "out of memory");
    } else if (fsync(w->fd) != 0) {
        st_seterr(err, errlen, "%s: fsync: %s", w->tmp, strerror(errno));
    } else if (rename(w->tmp, path) != 0) {
        st_seterr(err, errlen, "%s: %s", path, strerror(errno));
    } else if (fsync_dir(w->s->blob_dir) != 0) {
        st_seterr(err, errlen, "%s: fsync: %s", w->s->blob_dir, strerror(errno));
    } else {
        rc = ST_OK;
    }
    free(path);
    if (rc != ST_OK) unlink(w->tmp);
    writer_free(w);
    return rc;
}

static char *artifact_path(st_store_t *s, const char *digest, const char *kind)
{
    char *p = NULL;
    if (asprintf(&p, "%s/%s.%s", s->artifact_dir, digest + 7, kind) < 0) return NULL;
    return p;
}

/* A kind names a file suffix: lowercase letters, digits and '-'. */
static bool kind_ok(const char *kind)
{
    if (!kind || !*kind || strlen(kind) > 64) return false;
    for (const char *c = kind; *c; c++)
        if (!((*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') || *c == '-')) return false;
    return true;
}

int st_artifact_get(st_store_t *s, const char *digest, uint8_t **bytes, size_t *len, char *err,
                    size_t errlen)
{
    return st_artifact_get_kind(s, digest, "compiled", bytes, len, err, errlen);
}

int st_artifact_put(st_store_t *s, const char *digest, const uint8_t *bytes, size_t len,
                    char *err, size_t errlen)
{
    return st_artifact_put_kind(s, digest, "compiled", bytes, len, err, errlen);
}

int st_artifact_get_kind(st_store_t *s, const char *digest, const char *kind, uint8_t **bytes,
                         size_t *len, char *err, size_t errlen)
{
    if (st_digest_check(digest) != 0 || !kind_ok(kind)) {
        st_seterr(err, errlen, "'%s' is not a sha256:HEX digest", digest ? digest : "");
        return ST_ERR;
    }
    char *path = artifact_path(s, digest, kind);
    if (!path) {
        st_seterr(err, errlen, "out of memory");
        return ST_ERR;
    }
    int r = ST_OK;
    if (read_file(path, bytes, len) != 0) {
        int e = errno;
        st_seterr(err, errlen, "%s: %s", path, strerror(e));
        r = e == ENOENT ? ST_NOT_FOUND : ST_ERR;
    }
    free(path);
    return r;
}

/* After HEX.PREFIX-X is written: deletes HEX.PREFIX-Y for every other Y
 * (native code for another build or CPU, say), which nothing will read. */
static void artifact_prune(st_store_t *s, const char *digest, const char *kind)
{
    const char *dash = strchr(kind, '-');
    if (!dash) return;
    size_t hexlen = strlen(digest + 7), plen = (size_t)(dash - kind) + 1;
    DIR *d = opendir(s->artifact_dir);
    if (!d) return;
    struct dirent *de;
    while ((de = readdir(d))) {
        const char *n = de->d_name;
        if (strncmp(n, digest + 7, hexlen) == 0 && n[hexlen] == '.' &&
            strncmp(n + hexlen + 1, kind, plen) == 0 && strcmp(n + hexlen + 1, kind) != 0)
            unlinkat(dirfd(d), n, 0);
    }
    closedir(d);
}

int st_artifact_put_kind(st_store_t *s, const char *digest, const char *kind,
                         const uint8_t *bytes, size_t len, char *err, size_t errlen)
{
    if (st_digest_check(digest) != 0 || !kind_ok(kind)) {
        st_seterr(err, errlen, "'%s' is not a sha256:HEX digest", digest ? digest : "");
        return ST_ERR;
    }
    char *path = artifact_path(s, digest, kind), *tmp = NULL;
    if (!path || asprintf(&tmp, "%s/.tmp.XXXXXX", s->artifact_dir) < 0) {
        free(path);
        st_seterr(err, errlen, "out of memory");
        return ST_ERR;
    }
    int r = ST_ERR;
    int fd = mkstemp(tmp);
    if (fd < 0) {
        st_seterr(err, errlen, "%s: %s", tmp, strerror(errno));
    } else if (write_all(fd, bytes, len) != 0) {
        st_seterr(err, errlen, "%s: %s", tmp, strerror(errno));
        close(fd);
        unlink(tmp);
    } else {
        close(fd);
        if (rename(tmp, path) != 0) {
            st_seterr(err, errlen, "%s: %s", path, strerror(errno));
            unlink(tmp);
        } else {
            r = ST_OK;
            artifact_prune(s, digest, kind);
        }
    }
    free(tmp);
    free(path);
    return r;
}

void st_artifacts_delete(st_store_t *s, const char *digest)
{
    if (st_digest_check(digest) != 0) return;
    char prefix[ST_DIGEST_LEN];
    snprintf(prefix, sizeof prefix, "%s.", digest + 7);
    DIR *d = opendir(s->artifact_dir);
    if (!d) return;
    size_t plen = strlen(prefix);
    struct dirent *de;
    while ((de = readdir(d)) != NULL)
        if (strncmp(de->d_name, prefix, plen) == 0) unlinkat(dirfd(d), de->d_name, 0);
    closedir(d);
}
