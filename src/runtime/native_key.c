/*
 * native_key.c — the key that seals stored native code (runtime.h,
 * rt_native_key_load).
 *
 * Native code runs with the process's full power, so code read back from
 * disk is trusted only when its HMAC checks with this key (engine.h,
 * eng_native_open). The key is DIR/native.key: 32 random bytes, made at
 * first use, readable by its owner only. Forging native code then takes
 * reading the key, which takes being its owner (or root): someone who can
 * only write the directory can delete or replace files, but a key file
 * that is not ours, not a regular file, or readable by others is refused,
 * and with it every stored artefact (native code is compiled afresh, in
 * memory, until the key is sound again). docs/engine.md has the threat
 * model.
 */
#define _GNU_SOURCE
#include "runtime/runtime.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

static int read_key(const char *path, uint8_t *key, char *err, size_t errlen)
{
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) return -errno;
    struct stat st;
    int rc = -1;
    if (fstat(fd, &st) != 0) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
    } else if (!S_ISREG(st.st_mode) || st.st_uid != geteuid() || (st.st_mode & 077) != 0) {
        snprintf(err, errlen,
                 "%s: must be a regular file owned by uid %u with mode 0600 (it seals native code)",
                 path, (unsigned)geteuid());
    } else if (st.st_size != ENG_NATIVE_KEY_BYTES) {
        snprintf(err, errlen, "%s: must hold exactly %d bytes", path, ENG_NATIVE_KEY_BYTES);
    } else {
        size_t got = 0;
        while (got < ENG_NATIVE_KEY_BYTES) {
            ssize_t r = read(fd, key + got, ENG_NATIVE_KEY_BYTES - got);
            if (r < 0 && errno == EINTR) continue;
            if (r <= 0) break;
            got += (size_t)r;
        }
        if (got == ENG_NATIVE_KEY_BYTES) rc = 0;
        else snprintf(err, errlen, "%s: cannot read it", path);
    }
    close(fd);
    return rc;
}

/* Makes the key under a temporary name and links it into place, so that
 * two processes starting at once end up with the same key. */
static int make_key(const char *dir, const char *path, char *err, size_t errlen)
{
    uint8_t key[ENG_NATIVE_KEY_BYTES];
    size_t got = 0;
    while (got < sizeof key) {
        ssize_t r = getrandom(key + got, sizeof key - got, 0);
        if (r < 0) {
            if (errno == EINTR) continue;
            snprintf(err, errlen, "getrandom: %s", strerror(errno));
            return -1;
        }
        got += (size_t)r;
    }
    char tmp[4096];
    if ((size_t)snprintf(tmp, sizeof tmp, "%s/.native.key.XXXXXX", dir) >= sizeof tmp) {
        snprintf(err, errlen, "%s: path too long", dir);
        return -1;
    }
    int fd = mkstemp(tmp); /* mode 0600 */
    if (fd < 0) {
        snprintf(err, errlen, "%s: %s", dir, strerror(errno));
        return -1;
    }
    bool ok = fchmod(fd, 0600) == 0 && write(fd, key, sizeof key) == (ssize_t)sizeof key &&
              fsync(fd) == 0;
    int e = errno;
    close(fd);
    if (ok && link(tmp, path) != 0 && errno != EEXIST) {
        ok = false;
        e = errno;
    }
    unlink(tmp);
    if (!ok) {
        snprintf(err, errlen, "%s: %s", path, strerror(e));
        return -1;
    }
    return 0;
}

int rt_native_key_load(const char *dir, uint8_t key[ENG_NATIVE_KEY_BYTES], char *err,
                       size_t errlen)
{
    char path[4096];
    if ((size_t)snprintf(path, sizeof path, "%s/native.key", dir) >= sizeof path) {
        snprintf(err, errlen, "%s: path too long", dir);
        return -1;
    }
    int r = read_key(path, key, err, errlen);
    if (r == -ENOENT) {
        if (make_key(dir, path, err, errlen) != 0) return -1;
        r = read_key(path, key, err, errlen);
    }
    if (r < -1) snprintf(err, errlen, "%s: %s", path, strerror(-r));
    return r == 0 ? 0 : -1;
}
