/* file_io.c — file I/O inside a preopened directory (argv[1]): create,
 * write, seek, read back, pread/pwrite, append, truncate, stat, and the
 * errors for files that are not there. Prints what it saw; exits 1 on the
 * first result that is wrong. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int failures;
#define CHECK(cond, ...)                                   \
    do {                                                   \
        if (cond) {                                        \
            printf("ok   " __VA_ARGS__);                   \
        } else {                                           \
            printf("FAIL " __VA_ARGS__);                   \
            printf("     (errno %d: %s)", errno, strerror(errno)); \
            failures++;                                    \
        }                                                  \
        printf("\n");                                      \
    } while (0)

int main(int argc, char **argv)
{
    const char *dir = argc > 1 ? argv[1] : ".";
    char path[512], buf[256];
    snprintf(path, sizeof path, "%s/data.txt", dir);

    int fd = open(path, O_CREAT | O_TRUNC | O_RDWR, 0644);
    CHECK(fd >= 0, "create %s", "data.txt");
    if (fd < 0) {
        printf("file_io: cannot create a file in %s, giving up\n", dir);
        return 1;
    }
    const char *msg = "hello, sandboxed world\n";
    CHECK(write(fd, msg, strlen(msg)) == (ssize_t)strlen(msg), "write %zu bytes", strlen(msg));
    CHECK(lseek(fd, 0, SEEK_CUR) == (off_t)strlen(msg), "tell after write");
    CHECK(lseek(fd, 7, SEEK_SET) == 7, "seek to 7");
    memset(buf, 0, sizeof buf);
    CHECK(read(fd, buf, 10) == 10 && memcmp(buf, "sandboxed ", 10) == 0, "read '%s'", buf);
    CHECK(pwrite(fd, "HELLO", 5, 0) == 5, "pwrite at 0");
    memset(buf, 0, sizeof buf);
    CHECK(pread(fd, buf, 12, 0) == 12 && strcmp(buf, "HELLO, sandb") == 0, "pread '%s'", buf);
    CHECK(lseek(fd, 0, SEEK_CUR) == 17, "pread/pwrite leave the offset alone");
    CHECK(lseek(fd, -6, SEEK_END) == (off_t)strlen(msg) - 6, "seek from end");
    CHECK(fsync(fd) == 0, "fsync");
    CHECK(ftruncate(fd, 5) == 0, "ftruncate to 5");
    struct stat st;
    CHECK(fstat(fd, &st) == 0 && st.st_size == 5 && S_ISREG(st.st_mode), "fstat size %lld",
          (long long)st.st_size);
    CHECK(close(fd) == 0, "close");

    FILE *f = fopen(path, "a");
    CHECK(f != NULL, "fopen append");
    fprintf(f, " appended line %d\n", 42);
    CHECK(fclose(f) == 0, "fclose");
    f = fopen(path, "r");
    CHECK(f && fgets(buf, sizeof buf, f) && strcmp(buf, "HELLO appended line 42\n") == 0,
          "read back '%.22s'", buf);
    if (f) fclose(f);

    CHECK(stat(path, &st) == 0 && st.st_size == 23, "stat size %lld", (long long)st.st_size);
    snprintf(path, sizeof path, "%s/missing.txt", dir);
    errno = 0;
    CHECK(open(path, O_RDONLY) < 0 && errno == ENOENT, "open missing file: ENOENT");
    snprintf(path, sizeof path, "%s/data.txt", dir);
    errno = 0;
    CHECK(open(path, O_CREAT | O_EXCL | O_WRONLY, 0644) < 0 && errno == EEXIST,
          "O_EXCL on existing file: EEXIST");
    errno = 0;
    CHECK(open(path, O_RDONLY | O_DIRECTORY) < 0 && errno == ENOTDIR,
          "O_DIRECTORY on a file: ENOTDIR");

    /* A bigger file through stdio, read back in chunks. */
    snprintf(path, sizeof path, "%s/big.bin", dir);
    f = fopen(path, "wb");
    for (int i = 0; i < 100000; i++) fputc((i * 7) & 0xff, f);
    fclose(f);
    f = fopen(path, "rb");
    long sum = 0, n = 0;
    int c;
    while ((c = fgetc(f)) != EOF) sum += c, n++;
    fclose(f);
    CHECK(n == 100000 && sum == 12749008, "big file: %ld bytes, sum %ld", n, sum);
    CHECK(unlink(path) == 0, "unlink big.bin");
    printf("%s\n", failures ? "file_io: FAILED" : "file_io: all ok");
    return failures ? 1 : 0;
}
