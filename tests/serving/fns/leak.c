/*
 * leak.c — a test function that looks for what an earlier request left in
 * its memory, then leaves traces of its own: a static buffer (.bss), an
 * initialised static string (.data), a heap block and, with `?big=1`, a
 * 1 MiB heap block that grows the linear memory. It answers
 *
 *   bss=0 data=0 heap=0 pages=N
 *
 * where a 1 names a region that was not in its initial state (for the heap:
 * that holds this function's marks) and N is the
 * memory's size in 64 KiB pages when the request started. With a fresh
 * instance per request every answer must be all zeros with the same N,
 * whichever instance slot (warm or new) served it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char bss_buf[8192];
static char data_buf[32] = "initial data";

static int dirty(const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i]) return 1;
    return 0;
}

/* 1 if p holds a run of 16 'S' (what this function writes), which no
 * allocator or libc start-up writes. */
static int marked(const char *p, size_t n)
{
    size_t run = 0;
    for (size_t i = 0; i < n; i++) {
        run = p[i] == 'S' ? run + 1 : 0;
        if (run == 16) return 1;
    }
    return 0;
}

int main(void)
{
    size_t pages = __builtin_wasm_memory_size(0);
    const char *q = getenv("QUERY_STRING");
    size_t heap_n = q && strstr(q, "big=1") ? (size_t)1 << 20 : 4096;
    int d_bss = dirty(bss_buf, sizeof bss_buf);
    int d_data = strcmp(data_buf, "initial data") != 0;
    /* malloc's memory need not be zero (libc's start-up used the heap),
     * but it never holds an earlier request's marks in a fresh instance. */
    char *heap = malloc(heap_n);
    if (!heap) return 1;
    int d_heap = marked(heap, heap_n);
    printf("Content-Type: text/plain\n\nbss=%d data=%d heap=%d pages=%zu\n", d_bss, d_data,
           d_heap, pages);
    memset(bss_buf, 'S', sizeof bss_buf);
    strcpy(data_buf, "SECRET");
    memset(heap, 'S', heap_n);
    return 0;
}
