/* fs_ops.c — directories in a preopen (argv[1]): mkdir, listing with
 * readdir (sorted, since order is the filesystem's), rename, unlink, rmdir,
 * and the errno of each operation that must fail. */
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
#define CHECK(cond, ...)                                                 \
    do {                                                                 \
        if (cond) {                                                      \
            printf("ok   " __VA_ARGS__);                                 \
        } else {                                                         \
            printf("FAIL " __VA_ARGS__);                                 \
            printf("     (errno %d: %s)", errno, strerror(errno));       \
            failures++;                                                  \
        }                                                                \
        printf("\n");                                                    \
    } while (0)

static const char *dir;
static char *p(const char *rel)
{
    static char bufs[4][512];
    static int k;
    char *b = bufs[k++ & 3];
    snprintf(b, 512, "%s/%s", dir, rel);
    return b;
}

static int cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Prints the sorted listing of a directory, without . and .. */
static int list(const char *rel)
{
    DIR *d = opendir(p(rel));
    if (!d) {
        printf("opendir %s failed: %s\n", rel, strerror(errno));
        return -1;
    }
    char *names[512];
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d)) && n < 512) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..")) continue;
        char t = de->d_type == DT_DIR ? 'd' : de->d_type == DT_REG ? 'f' : de->d_type == DT_LNK ? 'l' : '?';
        char *s = malloc(strlen(de->d_name) + 3);
        sprintf(s, "%s %c", de->d_name, t);
        names[n++] = s;
    }
    closedir(d);
    qsort(names, (size_t)n, sizeof names[0], cmp);
    printf("listing %s (%d):", rel, n);
    for (int i = 0; i < n; i++) {
        if (i < 3 || i >= n - 3) printf(" [%s]", names[i]);
        else if (i == 3) printf(" ...");
        free(names[i]);
    }
    printf("\n");
    return n;
}

static void touch(const char *rel, const char *text)
{
    FILE *f = fopen(p(rel), "w");
    if (f) {
        fputs(text, f);
        fclose(f);
    }
}

int main(int argc, char **argv)
{
    dir = argc > 1 ? argv[1] : ".";
    struct stat st;
    CHECK(mkdir(p("tree"), 0755) == 0, "mkdir tree");
    errno = 0;
    CHECK(mkdir(p("tree"), 0755) < 0 && errno == EEXIST, "mkdir again: EEXIST");
    CHECK(mkdir(p("tree/sub"), 0755) == 0, "mkdir tree/sub");
    CHECK(mkdir(p("tree/sub/deeper/"), 0755) == 0, "mkdir with trailing slash");
    char name[128];
    for (int i = 0; i < 150; i++) {
        snprintf(name, sizeof name, "tree/file-%03d-with-a-much-longer-name-to-fill-readdir-buffers.txt", i);
        touch(name, "x");
    }
    CHECK(list("tree") == 151, "151 entries in tree");
    CHECK(list("tree/sub") == 1, "1 entry in tree/sub");

    touch("tree/a.txt", "alpha");
    CHECK(rename(p("tree/a.txt"), p("tree/sub/b.txt")) == 0, "rename into subdir");
    errno = 0;
    CHECK(stat(p("tree/a.txt"), &st) < 0 && errno == ENOENT, "old name gone: ENOENT");
    CHECK(stat(p("tree/sub/b.txt"), &st) == 0 && st.st_size == 5, "new name has the data");
    touch("tree/c.txt", "gamma");
    CHECK(rename(p("tree/c.txt"), p("tree/sub/b.txt")) == 0, "rename over existing file");
    CHECK(stat(p("tree/sub/b.txt"), &st) == 0 && st.st_size == 5, "replaced");
    CHECK(rename(p("tree/sub/deeper"), p("tree/moved")) == 0, "rename a directory");
    errno = 0;
    CHECK(rmdir(p("tree")) < 0 && (errno == ENOTEMPTY || errno == EEXIST),
          "rmdir non-empty: ENOTEMPTY");
    errno = 0;
    CHECK(unlink(p("tree/sub")) < 0 && (errno == EISDIR || errno == EPERM), "unlink a directory fails");
    errno = 0;
    CHECK(rmdir(p("tree/sub/b.txt")) < 0 && errno == ENOTDIR, "rmdir a file: ENOTDIR");
    errno = 0;
    CHECK(unlink(p("tree/nope")) < 0 && errno == ENOENT, "unlink missing: ENOENT");
    CHECK(unlink(p("tree/sub/b.txt")) == 0, "unlink file");
    CHECK(rmdir(p("tree/sub")) == 0, "rmdir empty dir");
    CHECK(rmdir(p("tree/moved")) == 0, "rmdir moved dir");
    for (int i = 0; i < 150; i++) {
        snprintf(name, sizeof name, "tree/file-%03d-with-a-much-longer-name-to-fill-readdir-buffers.txt", i);
        if (unlink(p(name)) != 0) failures++;
    }
    CHECK(list("tree") == 0, "tree empty again");
    CHECK(rmdir(p("tree")) == 0, "rmdir tree");
    errno = 0;
    CHECK(opendir(p("tree")) == NULL && errno == ENOENT, "opendir removed: ENOENT");

    /* Symlinks that stay inside are fine. */
    CHECK(mkdir(p("real"), 0755) == 0, "mkdir real");
    touch("real/f.txt", "inside");
    CHECK(symlink("real", p("alias")) == 0, "symlink alias -> real");
    char buf[64] = {0};
    CHECK(readlink(p("alias"), buf, sizeof buf) == 4 && !strcmp(buf, "real"), "readlink alias");
    CHECK(stat(p("alias/f.txt"), &st) == 0 && st.st_size == 6, "stat through inside symlink");
    CHECK(lstat(p("alias"), &st) == 0 && S_ISLNK(st.st_mode), "lstat sees a symlink");
    CHECK(link(p("real/f.txt"), p("real/hard.txt")) == 0, "hard link");
    CHECK(stat(p("real/hard.txt"), &st) == 0 && st.st_nlink == 2, "nlink is 2");
    /* A trailing slash on the new name asks for a directory, which a hard
     * link never is: ENOENT when the name is free (as Linux says), EEXIST
     * when it is taken; on the old name it is ENOTDIR for a file. */
    CHECK(link(p("real/f.txt"), p("real/l2/")) < 0 && errno == ENOENT,
          "link to a new name with a trailing slash: ENOENT");
    CHECK(link(p("real/f.txt"), p("real/hard.txt/")) < 0 && errno == EEXIST,
          "link to a taken name with a trailing slash: EEXIST");
    CHECK(link(p("real/f.txt/"), p("real/l3")) < 0 && errno == ENOTDIR,
          "link from a file named with a trailing slash: ENOTDIR");
    CHECK(unlink(p("alias")) == 0 && unlink(p("real/hard.txt")) == 0 &&
          unlink(p("real/f.txt")) == 0 && rmdir(p("real")) == 0, "clean up");

    /* The preopen (fd 3, the only one) reopened with exactly the rights
     * fd_fdstat_get reports for it must open; asking to read and write
     * data on a directory must not. */
    __wasi_fdstat_t fst;
    __wasi_fd_t again = 0;
    CHECK(__wasi_fd_fdstat_get(3, &fst) == 0 && fst.fs_filetype == __WASI_FILETYPE_DIRECTORY,
          "fdstat of the preopen");
    errno = __wasi_path_open(3, 0, ".", 0, fst.fs_rights_base, fst.fs_rights_inheriting, 0, &again);
    CHECK(errno == 0, "reopen the preopen with its own rights");
    if (errno == 0) close((int)again);
    errno = __wasi_path_open(3, 0, ".", 0, __WASI_RIGHTS_FD_READ | __WASI_RIGHTS_FD_WRITE, 0, 0, &again);
    CHECK(errno == __WASI_ERRNO_ISDIR, "open a directory to read and write: EISDIR");
    printf("%s\n", failures ? "fs_ops: FAILED" : "fs_ops: all ok");
    return failures ? 1 : 0;
}
