/* raw.c — calls wasi_snapshot_preview1 functions directly with the inputs
 * libc never produces: pointers past the end of memory (EFAULT, and no
 * crash), unknown descriptors (EBADF), descriptors of the wrong kind
 * (ESPIPE, ENOTSOCK, ENOTDIR), rights dropped with fd_fdstat_set_rights
 * (ENOTCAPABLE), and the struct layouts of fdstat and prestat. Run with one
 * preopen (fd 3) named "/box", stdout a pipe or file. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <wasi/api.h>

static int failures;
#define EXPECT(call, want)                                                          \
    do {                                                                            \
        __wasi_errno_t got_ = (call);                                               \
        if (got_ == (want)) {                                                       \
            printf("ok   %s == %d\n", #call, (int)(want));                          \
        } else {                                                                    \
            printf("FAIL %s == %d, want %d\n", #call, (int)got_, (int)(want));      \
            failures++;                                                             \
        }                                                                           \
        fflush(stdout);                                                             \
    } while (0)

/* The import itself, so a path can be given as (pointer, length) without
 * libc's strlen reading it first. */
__attribute__((import_module("wasi_snapshot_preview1"), import_name("path_create_directory")))
int32_t raw_path_create_directory(int32_t fd, int32_t path, int32_t len);

int main(void)
{
    uint32_t end = (uint32_t)(__builtin_wasm_memory_size(0) * 65536u);
    uint8_t *past = (uint8_t *)(uintptr_t)(end - 4); /* 4 bytes left */
    __wasi_size_t n1, n2;
    __wasi_ciovec_t iov = {(const uint8_t *)"x\n", 2};
    __wasi_ciovec_t bad_iov = {past, 8};
    __wasi_fdstat_t st;
    __wasi_prestat_t pre;
    __wasi_fd_t fd;

    EXPECT(__wasi_args_sizes_get((__wasi_size_t *)past, &n2), __WASI_ERRNO_SUCCESS);
    EXPECT(__wasi_args_sizes_get((__wasi_size_t *)(past + 2), &n2), __WASI_ERRNO_FAULT);
    EXPECT(__wasi_args_get((uint8_t **)past, (uint8_t *)past), __WASI_ERRNO_FAULT);
    EXPECT(__wasi_random_get(past, 4), __WASI_ERRNO_SUCCESS);
    EXPECT(__wasi_random_get(past, 5), __WASI_ERRNO_FAULT);
    EXPECT(__wasi_random_get((uint8_t *)(uintptr_t)0xfffffff0u, 0x20), __WASI_ERRNO_FAULT);
    EXPECT(__wasi_fd_write(1, &bad_iov, 1, &n1), __WASI_ERRNO_FAULT);
    EXPECT(__wasi_fd_write(1, &iov, 1, (__wasi_size_t *)(past + 1)), __WASI_ERRNO_FAULT);
    EXPECT(__wasi_fd_write(1, (const __wasi_ciovec_t *)past, 1, &n1), __WASI_ERRNO_FAULT);
    EXPECT(__wasi_fd_write(1, &iov, 0x20000000, &n1), __WASI_ERRNO_FAULT);
    EXPECT(__wasi_fd_write(99, &iov, 1, &n1), __WASI_ERRNO_BADF);
    EXPECT(__wasi_fd_write(-1, &iov, 1, &n1), __WASI_ERRNO_BADF);
    /* A directory has no FD_READ right; stdout has no path rights. */
    EXPECT(__wasi_fd_read(3, (const __wasi_iovec_t *)&iov, 1, &n1), __WASI_ERRNO_NOTCAPABLE);
    EXPECT(__wasi_fd_fdstat_get(1, (__wasi_fdstat_t *)past), __WASI_ERRNO_FAULT);
    EXPECT(__wasi_clock_time_get(__WASI_CLOCKID_MONOTONIC, 1, (__wasi_timestamp_t *)past),
           __WASI_ERRNO_FAULT);
    EXPECT(__wasi_path_open(3, 0, "x", 0, 0, 0, 0, (__wasi_fd_t *)past + 1), __WASI_ERRNO_FAULT);
    EXPECT(raw_path_create_directory(3, (int32_t)(end - 2), 8), __WASI_ERRNO_FAULT);
    EXPECT(raw_path_create_directory(3, (int32_t)(end - 2), -1), __WASI_ERRNO_FAULT);
    EXPECT(raw_path_create_directory(3, (int32_t)(uintptr_t) "a\0b", 3), __WASI_ERRNO_INVAL);
    EXPECT(__wasi_path_create_directory(1, "d"), __WASI_ERRNO_NOTCAPABLE);
    EXPECT(__wasi_path_open(3, 0, "", 0, __WASI_RIGHTS_FD_READ, 0, 0, &fd), __WASI_ERRNO_NOENT);

    EXPECT(__wasi_fd_prestat_get(3, &pre), __WASI_ERRNO_SUCCESS);
    if (pre.tag != __WASI_PREOPENTYPE_DIR || pre.u.dir.pr_name_len != 4) {
        printf("FAIL prestat tag %d len %u\n", pre.tag, (unsigned)pre.u.dir.pr_name_len);
        failures++;
    }
    char name[8] = {0};
    EXPECT(__wasi_fd_prestat_dir_name(3, (uint8_t *)name, 2), __WASI_ERRNO_NAMETOOLONG);
    EXPECT(__wasi_fd_prestat_dir_name(3, (uint8_t *)name, 4), __WASI_ERRNO_SUCCESS);
    if (strcmp(name, "/box") != 0) {
        printf("FAIL prestat name '%s'\n", name);
        failures++;
    }
    EXPECT(__wasi_fd_prestat_get(1, &pre), __WASI_ERRNO_BADF);
    EXPECT(__wasi_fd_prestat_get(4, &pre), __WASI_ERRNO_BADF);

    EXPECT(__wasi_fd_fdstat_get(3, &st), __WASI_ERRNO_SUCCESS);
    if (st.fs_filetype != __WASI_FILETYPE_DIRECTORY || !(st.fs_rights_base & __WASI_RIGHTS_PATH_OPEN)) {
        printf("FAIL fdstat of the preopen: type %d rights %llx\n", st.fs_filetype,
               (unsigned long long)st.fs_rights_base);
        failures++;
    }
    /* A pipe or terminal on stdout has no seek right (how libc's isatty
     * tells a stream from a file); a regular file has. */
    __wasi_filesize_t pos;
    EXPECT(__wasi_fd_fdstat_get(1, &st), __WASI_ERRNO_SUCCESS);
    EXPECT(__wasi_fd_seek(1, 0, __WASI_WHENCE_CUR, &pos),
           st.fs_filetype == __WASI_FILETYPE_REGULAR_FILE ? __WASI_ERRNO_SUCCESS
                                                         : __WASI_ERRNO_NOTCAPABLE);
    EXPECT(__wasi_sock_accept(1, 0, &fd), __WASI_ERRNO_NOTSOCK);
    EXPECT(__wasi_sock_shutdown(42, __WASI_SDFLAGS_RD), __WASI_ERRNO_BADF);
    EXPECT(__wasi_fd_readdir(1, (uint8_t *)name, sizeof name, 0, &n1), __WASI_ERRNO_NOTCAPABLE);
    EXPECT(__wasi_clock_res_get(7, (__wasi_timestamp_t *)name), __WASI_ERRNO_INVAL);
    EXPECT(__wasi_sched_yield(), __WASI_ERRNO_SUCCESS);

    /* Opening, renumbering and closing. */
    EXPECT(__wasi_path_open(3, 0, "f.txt", __WASI_OFLAGS_CREAT,
                            __WASI_RIGHTS_FD_WRITE | __WASI_RIGHTS_FD_READ | __WASI_RIGHTS_FD_SEEK,
                            0, 0, &fd),
           __WASI_ERRNO_SUCCESS);
    EXPECT(__wasi_fd_write(fd, &iov, 1, &n1), __WASI_ERRNO_SUCCESS);
    EXPECT(__wasi_fd_seek(fd, 0, 7, &pos), __WASI_ERRNO_INVAL);
    EXPECT(__wasi_fd_seek(fd, -1, __WASI_WHENCE_SET, &pos), __WASI_ERRNO_INVAL);
    EXPECT(__wasi_fd_seek(fd, 0, __WASI_WHENCE_END, (__wasi_filesize_t *)(past + 1)), __WASI_ERRNO_FAULT);
    EXPECT(__wasi_fd_seek(fd, 0, __WASI_WHENCE_CUR, &pos), __WASI_ERRNO_SUCCESS);
    if (pos != 2) {
        printf("FAIL position %llu after writing 2 bytes\n", (unsigned long long)pos);
        failures++;
    }
    EXPECT(__wasi_fd_fdstat_set_rights(fd, __WASI_RIGHTS_FD_READ, 0), __WASI_ERRNO_SUCCESS);
    EXPECT(__wasi_fd_write(fd, &iov, 1, &n1), __WASI_ERRNO_NOTCAPABLE);
    EXPECT(__wasi_fd_fdstat_set_rights(fd, __WASI_RIGHTS_FD_READ | __WASI_RIGHTS_FD_WRITE, 0),
           __WASI_ERRNO_NOTCAPABLE);
    __wasi_fd_t fd2;
    EXPECT(__wasi_path_open(3, 0, "f.txt", 0, __WASI_RIGHTS_FD_READ, 0, 0, &fd2), __WASI_ERRNO_SUCCESS);
    EXPECT(__wasi_fd_renumber(fd2, fd), __WASI_ERRNO_SUCCESS);
    EXPECT(__wasi_fd_close(fd2), __WASI_ERRNO_BADF);
    char buf[4] = {0};
    __wasi_iovec_t riov = {(uint8_t *)buf, 2};
    EXPECT(__wasi_fd_read(fd, &riov, 1, &n1), __WASI_ERRNO_SUCCESS);
    if (n1 != 2 || memcmp(buf, "x\n", 2) != 0) {
        printf("FAIL read back %u bytes\n", (unsigned)n1);
        failures++;
    }
    EXPECT(__wasi_fd_renumber(fd, 77), __WASI_ERRNO_BADF);
    EXPECT(__wasi_fd_close(fd), __WASI_ERRNO_SUCCESS);
    EXPECT(__wasi_fd_close(fd), __WASI_ERRNO_BADF);
    EXPECT(__wasi_path_unlink_file(3, "f.txt/"), __WASI_ERRNO_NOTDIR);
    EXPECT(__wasi_path_unlink_file(3, "f.txt"), __WASI_ERRNO_SUCCESS);
    printf("%s\n", failures ? "raw: FAILED" : "raw: all ok");
    return failures ? 1 : 0;
}
