/*
 * touch.c — which pages of a warm slot's zero part have been touched,
 * told by the kernel as it happens (userfaultfd), so that resetting the
 * slot needs no system call (image.c).
 *
 * Why. A warm slot's reset asked /proc/self/pagemap which pages the
 * instance touched: one pread per request, 2-3 µs with the kernel's page
 * walk on the 2-CPU AMD VM, 11% of the daemon's CPU serving a printf hello
 * world with a fresh instance per request (docs/benchmarks.md). Yet the set
 * of pages present in a warm slot only grows: the reset restores pages in
 * place and never unmaps them. A page is added only by a page fault on a
 * page not mapped yet — exactly the event userfaultfd's MISSING mode
 * reports. So once a slot has been reset with pagemap, its zero part (the
 * anonymous memory past the image's mapped bytes) is registered with a
 * userfaultfd, and the pages present then are the tracked set. Each later
 * fault on an unmapped page of the range stops the faulting thread until
 * our handler thread has added the page to the set and mapped it (a zero
 * page, or a zeroed private page for a write); kernel accesses (a read(2)
 * into guest memory) fault the same way. A reset then restores the tracked
 * pages and nothing else.
 *
 * A first touch costs a round trip to the handler thread (two context
 * switches), so tracking is for small working sets: a slot whose set
 * would exceed ENG_TOUCH_MAX pages stops being tracked (eng_touch_pages
 * says so) and image.c goes back to pagemap for it. Pages the kernel maps
 * other than by a fault on a pte-less page — none in this range: we never
 * populate, and the reset only writes pages already present — would not be
 * seen.
 *
 * Requirements: userfaultfd(2) handling kernel-mode faults (CAP_SYS_PTRACE,
 * which root has, or vm.unprivileged_userfaultfd=1; container runtimes'
 * default seccomp profiles refuse the call); otherwise eng_touch_start
 * returns NULL and every reset reads pagemap, as before.
 *
 * A forked child keeps the trackers but not the registrations (nor the
 * handler thread), so it must not reuse warm slots: wasmfn forks only to
 * exec (the background compilers in cli/run.c and shim/native.c).
 *
 * Trackers live in one array sorted by slot base under `mu`, which the
 * handler thread searches for the slot a fault belongs to.
 */
#define _GNU_SOURCE
#include "engine/internal.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>

struct eng_touch {
    uint8_t *base;
    uint64_t from, to;               /* the registered range, offsets from base */
    uint32_t n;                      /* tracked pages, in page[] (4 KiB indices from base) */
    bool overflow;                   /* more than ENG_TOUCH_MAX */
    uint32_t page[ENG_TOUCH_MAX];
};

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static eng_touch_t **all;            /* sorted by base */
static uint32_t nall, capall;
static pthread_once_t once = PTHREAD_ONCE_INIT;
static int uffd = -1;
static _Alignas(4096) const uint8_t zero_page[4096];

/* How many trackers start at or below addr (all[] is sorted by base);
 * under mu. */
static uint32_t at_or_below(uintptr_t addr)
{
    uint32_t lo = 0, hi = nall;
    while (lo < hi) {
        uint32_t mid = (lo + hi) / 2;
        if ((uintptr_t)all[mid]->base <= addr) lo = mid + 1;
        else hi = mid;
    }
    return lo;
}

/* The tracker whose registered range holds addr, or NULL; under mu. */
static eng_touch_t *find_addr(uintptr_t addr)
{
    uint32_t i = at_or_below(addr);
    if (i == 0) return NULL;
    eng_touch_t *t = all[i - 1];
    uintptr_t b = (uintptr_t)t->base;
    return addr >= b + t->from && addr < b + t->to ? t : NULL;
}

static void record(uintptr_t addr)
{
    pthread_mutex_lock(&mu);
    eng_touch_t *t = find_addr(addr);
    if (t) {
        if (t->n < ENG_TOUCH_MAX) t->page[t->n++] = (uint32_t)((addr - (uintptr_t)t->base) / 4096);
        else t->overflow = true;
    }
    pthread_mutex_unlock(&mu);
}

/* Maps the page at addr (page-aligned) and wakes whoever waits for it. */
static void resolve(uintptr_t addr, bool write)
{
    int r;
    if (write) {
        struct uffdio_copy c = {.dst = addr, .src = (uintptr_t)zero_page, .len = 4096, .mode = 0};
        r = ioctl(uffd, UFFDIO_COPY, &c);
    } else {
        struct uffdio_zeropage z = {.range = {.start = addr, .len = 4096}, .mode = 0};
        r = ioctl(uffd, UFFDIO_ZEROPAGE, &z);
    }
    if (r != 0) { /* EEXIST: mapped meanwhile; anything else: let it fault again */
        struct uffdio_range w = {.start = addr, .len = 4096};
        ioctl(uffd, UFFDIO_WAKE, &w);
    }
}

static void *handler(void *arg)
{
    (void)arg;
    for (;;) {
        struct uffd_msg msg[16];
        ssize_t got = read(uffd, msg, sizeof msg);
        if (got < 0) {
            if (errno == EINTR || errno == EAGAIN) continue;
            return NULL;
        }
        for (size_t k = 0; k < (size_t)got / sizeof msg[0]; k++) {
            if (msg[k].event != UFFD_EVENT_PAGEFAULT) continue;
            uintptr_t addr = (uintptr_t)msg[k].arg.pagefault.address & ~(uintptr_t)4095;
            record(addr); /* before the page is mapped: a reset never misses it */
            resolve(addr, msg[k].arg.pagefault.flags & UFFD_PAGEFAULT_FLAG_WRITE);
        }
    }
}

static void touch_init(void)
{
    int fd = (int)syscall(SYS_userfaultfd, O_CLOEXEC);
    if (fd < 0) return;
    struct uffdio_api api = {.api = UFFD_API, .features = 0};
    if (ioctl(fd, UFFDIO_API, &api) != 0 || !(api.ioctls & (1ull << _UFFDIO_REGISTER))) {
        close(fd);
        return;
    }
    uffd = fd;
    pthread_t th;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_attr_setstacksize(&attr, 64 * 1024);
    if (pthread_create(&th, &attr, handler, NULL) != 0) {
        close(fd);
        uffd = -1;
    }
    pthread_attr_destroy(&attr);
}

eng_touch_t *eng_touch_start(uint8_t *base, uint64_t from, uint64_t to, const uint32_t *pages, uint32_t n)
{
    pthread_once(&once, touch_init);
    if (uffd < 0 || n > ENG_TOUCH_MAX || from % 4096 || to % 4096 || to <= from) return NULL;
    eng_touch_t *t = calloc(1, sizeof *t);
    if (!t) return NULL;
    t->base = base;
    t->from = from;
    t->to = to;
    t->n = n;
    memcpy(t->page, pages, n * sizeof *pages);
    pthread_mutex_lock(&mu);
    bool room = nall < capall;
    if (!room) {
        uint32_t cap = capall ? capall * 2 : 64;
        eng_touch_t **a = realloc(all, cap * sizeof *a);
        if (a) {
            all = a;
            capall = cap;
            room = true;
        }
    }
    if (room) {
        uint32_t at = at_or_below((uintptr_t)base);
        memmove(all + at + 1, all + at, (nall - at) * sizeof *all);
        all[at] = t;
        nall++;
    }
    pthread_mutex_unlock(&mu);
    /* Registered after it is findable: a fault can come at once. */
    struct uffdio_register reg = {.range = {.start = (uintptr_t)base + from, .len = to - from},
                                  .mode = UFFDIO_REGISTER_MODE_MISSING};
    if (!room || ioctl(uffd, UFFDIO_REGISTER, &reg) != 0) {
        if (room) eng_touch_stop(t); /* unregistering nothing is harmless */
        else free(t);
        return NULL;
    }
    return t;
}

eng_touch_t *eng_touch_find(const uint8_t *base)
{
    pthread_mutex_lock(&mu);
    uint32_t i = at_or_below((uintptr_t)base);
    eng_touch_t *t = i && all[i - 1]->base == base ? all[i - 1] : NULL;
    pthread_mutex_unlock(&mu);
    return t;
}

uint64_t eng_touch_end(const eng_touch_t *t) { return t->to; }

bool eng_touch_pages(eng_touch_t *t, uint32_t *out, uint32_t *n)
{
    pthread_mutex_lock(&mu);
    bool ok = !t->overflow;
    if (ok) {
        memcpy(out, t->page, t->n * sizeof *out);
        *n = t->n;
    }
    pthread_mutex_unlock(&mu);
    return ok;
}

void eng_touch_stop(eng_touch_t *t)
{
    struct uffdio_range r = {.start = (uintptr_t)t->base + t->from, .len = t->to - t->from};
    ioctl(uffd, UFFDIO_UNREGISTER, &r);
    pthread_mutex_lock(&mu);
    for (uint32_t k = 0; k < nall; k++)
        if (all[k] == t) {
            memmove(all + k, all + k + 1, (nall - k - 1) * sizeof *all);
            nall--;
            break;
        }
    pthread_mutex_unlock(&mu);
    free(t);
}

uint32_t eng_touch_count(void)
{
    pthread_mutex_lock(&mu);
    uint32_t n = nall;
    pthread_mutex_unlock(&mu);
    return n;
}
