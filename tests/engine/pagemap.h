/*
 * pagemap.h — whether this process may read /proc/self/pagemap, which the
 * engine's warm slots need (without it every freed memory is unmapped):
 * the warm-slot tests (test_warm.c) skip without it, the image tests
 * (test_native_images.c) check reuse only with it. Static, for both.
 */
#ifndef WASMFN_TESTS_ENGINE_PAGEMAP_H
#define WASMFN_TESTS_ENGINE_PAGEMAP_H

#include <fcntl.h>
#include <stdbool.h>
#include <unistd.h>

static bool have_pagemap(void)
{
    int fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
    if (fd < 0) return false;
    close(fd);
    return true;
}

#endif
