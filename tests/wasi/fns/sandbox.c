/* sandbox.c — tries to get out of the preopened directory argv[1] in every
 * way we know: absolute paths, "..", symlinks with absolute and relative
 * targets that point outside, symlink loops, and writes through all of
 * those. Every escape must fail; the things that stay inside must work.
 * The test driver lays out the directories (see run_tests.sh) and checks
 * afterwards that nothing outside was created, changed or removed. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <wasi/api.h>

static int failures;
static const char *box;

static char *p(const char *rel)
{
    static char bufs[4][512];
    static int k;
    char *b = bufs[k++ & 3];
    snprintf(b, 512, "%s/%s", box, rel);
    return b;
}

/* An operation that must fail. */
static void denied(const char *what, int r)
{
    int e = errno;
    if (r >= 0) {
        printf("FAIL escaped: %s\n", what);
        failures++;
    } else {
        printf("ok   denied: %s (%s)\n", what, strerror(e));
    }
}

static void allowed(const char *what, int ok)
{
    if (ok) {
        printf("ok   allowed: %s\n", what);
    } else {
        printf("FAIL refused: %s (%s)\n", what, strerror(errno));
        failures++;
    }
}

static int try_open(const char *path, int flags)
{
    errno = 0;
    int fd = open(path, flags, 0644);
    if (fd >= 0) close(fd);
    return fd;
}

static int try_stat(const char *path)
{
    struct stat st;
    errno = 0;
    return stat(path, &st);
}

static int try_opendir(const char *path)
{
    errno = 0;
    DIR *d = opendir(path);
    if (!d) return -1;
    closedir(d);
    return 0;
}

int main(int argc, char **argv)
{
    box = argc > 1 ? argv[1] : "/box";
    char buf[256];

    denied("open /etc/passwd", try_open("/etc/passwd", O_RDONLY));
    denied("open ../outside/secret.txt", try_open(p("../outside/secret.txt"), O_RDONLY));
    denied("open sub/../../outside/secret.txt", try_open(p("sub/../../outside/secret.txt"), O_RDONLY));
    denied("open via absolute symlink out/secret.txt", try_open(p("out/secret.txt"), O_RDONLY));
    denied("open via relative symlink up/outside/secret.txt",
           try_open(p("up/outside/secret.txt"), O_RDONLY));
    denied("open final symlink upsecret", try_open(p("upsecret"), O_RDONLY));
    denied("open symlink in subdir sub/esc/secret.txt", try_open(p("sub/esc/secret.txt"), O_RDONLY));
    denied("stat through upsecret", try_stat(p("upsecret")));
    denied("stat ..", try_stat(p("..")));
    denied("stat sub/../..", try_stat(p("sub/../..")));
    denied("opendir up", try_opendir(p("up")));
    denied("opendir out", try_opendir(p("out")));
    denied("opendir ..", try_opendir(p("..")));
    denied("create via out/created.txt", try_open(p("out/created.txt"), O_CREAT | O_WRONLY));
    denied("create via up/outside/created.txt",
           try_open(p("up/outside/created.txt"), O_CREAT | O_WRONLY));
    denied("create through dangling symlink dangling",
           try_open(p("dangling"), O_CREAT | O_WRONLY));
    denied("truncate via upsecret", try_open(p("upsecret"), O_WRONLY | O_TRUNC));
    errno = 0;
    denied("mkdir ../outside/newdir", mkdir(p("../outside/newdir"), 0755));
    errno = 0;
    denied("mkdir up/outside/newdir", mkdir(p("up/outside/newdir"), 0755));
    errno = 0;
    denied("unlink up/outside/secret.txt", unlink(p("up/outside/secret.txt")));
    errno = 0;
    denied("rmdir ../outside/keep", rmdir(p("../outside/keep")));
    errno = 0;
    denied("rename inside.txt to up/outside/stolen", rename(p("inside.txt"), p("up/outside/stolen")));
    errno = 0;
    denied("rename up/outside/secret.txt in", rename(p("up/outside/secret.txt"), p("stolen")));
    errno = 0;
    denied("hard link up/outside/secret.txt in", link(p("up/outside/secret.txt"), p("hard")));
    errno = 0;
    denied("symlink with absolute target", symlink("/etc/passwd", p("abs")));
    errno = 0;
    allowed("symlink with relative target escaping (creating is fine)",
            symlink("../../outside/secret.txt", p("sub/rel")) == 0);
    denied("open the escaping symlink just made", try_open(p("sub/rel"), O_RDONLY));
    denied("symlink loop", try_open(p("loop1"), O_RDONLY));
    errno = 0;
    denied("utimes via upsecret", utimensat(AT_FDCWD, p("upsecret"), NULL, 0));

    /* The same through the raw WASI calls, so libc's own path handling
     * (which maps absolute paths onto preopens) is out of the way: the host
     * itself must answer ENOTCAPABLE. fd 3 is the first preopen. */
    const char *raw[] = {"/etc/passwd", "/", "..", "../outside/secret.txt", "out/secret.txt",
                         "up/outside", "sub/esc/secret.txt", "upsecret", "sub/../../box"};
    for (size_t i = 0; i < sizeof raw / sizeof raw[0]; i++) {
        __wasi_fd_t fd;
        __wasi_errno_t e = __wasi_path_open(3, __WASI_LOOKUPFLAGS_SYMLINK_FOLLOW, raw[i], 0,
                                            __WASI_RIGHTS_FD_READ, 0, 0, &fd);
        snprintf(buf, sizeof buf, "raw path_open \"%s\" is ENOTCAPABLE (got %d)", raw[i], e);
        allowed(buf, e == __WASI_ERRNO_NOTCAPABLE);
        __wasi_filestat_t st;
        e = __wasi_path_filestat_get(3, __WASI_LOOKUPFLAGS_SYMLINK_FOLLOW, raw[i], &st);
        snprintf(buf, sizeof buf, "raw path_filestat_get \"%s\" is ENOTCAPABLE (got %d)", raw[i], e);
        allowed(buf, e == __WASI_ERRNO_NOTCAPABLE);
    }
    {
        __wasi_errno_t e = __wasi_path_create_directory(3, "../outside/rawdir");
        snprintf(buf, sizeof buf, "raw mkdir ../outside/rawdir is ENOTCAPABLE (got %d)", e);
        allowed(buf, e == __WASI_ERRNO_NOTCAPABLE);
        e = __wasi_path_unlink_file(3, "/etc/hostname");
        snprintf(buf, sizeof buf, "raw unlink /etc/hostname is ENOTCAPABLE (got %d)", e);
        allowed(buf, e == __WASI_ERRNO_NOTCAPABLE);
        __wasi_fd_t fd;
        e = __wasi_path_open(3, 0, "upsecret", 0, __WASI_RIGHTS_FD_READ, 0, 0, &fd);
        snprintf(buf, sizeof buf, "raw open of a symlink without FOLLOW is ELOOP (got %d)", e);
        allowed(buf, e == __WASI_ERRNO_LOOP);
        e = __wasi_path_open(3, 0, "nothere", 0, __WASI_RIGHTS_FD_READ, 0, 0, &fd);
        snprintf(buf, sizeof buf, "raw open of a missing file is ENOENT (got %d)", e);
        allowed(buf, e == __WASI_ERRNO_NOENT);
    }

    /* What stays inside must work. */
    allowed("open inside.txt", try_open(p("inside.txt"), O_RDONLY) >= 0);
    allowed("open sub/../inside.txt", try_open(p("sub/../inside.txt"), O_RDONLY) >= 0);
    allowed("open via inside symlink in/x.txt", try_open(p("in/x.txt"), O_RDONLY) >= 0);
    allowed("open via symlink sub/back -> ../inside.txt",
            try_open(p("sub/back"), O_RDONLY) >= 0);
    allowed("lstat upsecret (the link itself is inside)", ({
                struct stat st;
                lstat(p("upsecret"), &st) == 0 && S_ISLNK(st.st_mode);
            }));
    memset(buf, 0, sizeof buf);
    allowed("readlink out", readlink(p("out"), buf, sizeof buf - 1) > 0);
    allowed("unlink the escaping symlink", unlink(p("sub/rel")) == 0);
    printf("%s\n", failures ? "sandbox: FAILED" : "sandbox: all ok");
    return failures ? 1 : 0;
}
