/*
 * slots.c — the process-wide pool of linear-memory reservations ("slots").
 *
 * Every linear memory's reservation (PROT_NONE address space, see
 * docs/engine.md "Memory") comes from this pool, with one free list per
 * power-of-two size class, guarded by a mutex. Releasing a slot replaces
 * the used part with a fresh PROT_NONE anonymous mapping (one mmap: the
 * pages are dropped, not copied or zeroed by hand), so a reused slot reads
 * as zeros exactly like a new one. Guard slots (ENG_GUARD_RESERVE bytes,
 * for native code in guard mode) are a class of their own, counted.
 *
 * Stores (store.c) take slots for new memories and give them back; images
 * (image.c) keep some back as warm slots before they come here.
 */
#include "engine/internal.h"

#include <pthread.h>
#include <stdlib.h>
#include <sys/mman.h>

#define SLOT_MIN_SHIFT 16           /* 64 KiB */
#define SLOT_MAX_SHIFT 32           /* 4 GiB */
#define SLOT_CLASSES (SLOT_MAX_SHIFT - SLOT_MIN_SHIFT + 1)
#define SLOT_KEEP 1024              /* free slots kept per class; more are unmapped */

typedef struct slot {
    struct slot *next;              /* malloc'd list node; the slot is not touched */
    uint8_t *base;
} slot_t;

static struct {
    pthread_mutex_t mu;
    slot_t *free[SLOT_CLASSES];
    uint32_t nfree[SLOT_CLASSES];
    slot_t *guard_free;             /* guard slots (ENG_GUARD_RESERVE bytes) */
    uint32_t nguard_free;
    uint32_t nguard;                /* guard slots mapped, free or in use */
} slots = {.mu = PTHREAD_MUTEX_INITIALIZER};

/* Guard slots: a class of their own, counted against ENG_GUARD_SLOTS_MAX. */
static uint8_t *guard_slot_acquire(void)
{
    pthread_mutex_lock(&slots.mu);
    slot_t *sl = slots.guard_free;
    bool map = false;
    if (sl) {
        slots.guard_free = sl->next;
        slots.nguard_free--;
    } else if (slots.nguard < ENG_GUARD_SLOTS_MAX) {
        slots.nguard++;
        map = true;
    }
    pthread_mutex_unlock(&slots.mu);
    if (sl) {
        uint8_t *p = sl->base;
        free(sl);
        return p;
    }
    if (!map)
        return NULL;
    void *p = mmap(NULL, ENG_GUARD_RESERVE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED) {
        pthread_mutex_lock(&slots.mu);
        slots.nguard--;
        pthread_mutex_unlock(&slots.mu);
        return NULL;
    }
    madvise(p, ENG_GUARD_RESERVE, MADV_NOHUGEPAGE);
    return p;
}

static void guard_slot_release(uint8_t *p, uint64_t used)
{
    used = (used + 4095) & ~(uint64_t)4095;
    bool reset = used == 0 || mmap(p, used, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED,
                                   -1, 0) != MAP_FAILED;
    slot_t *sl = reset ? malloc(sizeof *sl) : NULL;
    pthread_mutex_lock(&slots.mu);
    if (sl && slots.nguard_free < SLOT_KEEP) {
        sl->base = p;
        sl->next = slots.guard_free;
        slots.guard_free = sl;
        slots.nguard_free++;
        sl = NULL;
        p = NULL;
    } else {
        slots.nguard--;
    }
    pthread_mutex_unlock(&slots.mu);
    free(sl);
    if (p)
        munmap(p, ENG_GUARD_RESERVE);
}

static unsigned slot_class(uint64_t bytes, uint64_t *rounded)
{
    unsigned shift = SLOT_MIN_SHIFT;
    while (shift < SLOT_MAX_SHIFT && ((uint64_t)1 << shift) < bytes)
        shift++;
    *rounded = (uint64_t)1 << shift;
    return shift - SLOT_MIN_SHIFT;
}

uint8_t *eng_slot_acquire(uint64_t *bytes)
{
    if (*bytes == ENG_GUARD_RESERVE)
        return guard_slot_acquire();
    unsigned c = slot_class(*bytes, bytes);
    pthread_mutex_lock(&slots.mu);
    slot_t *sl = slots.free[c];
    if (sl) {
        slots.free[c] = sl->next;
        slots.nfree[c]--;
    }
    pthread_mutex_unlock(&slots.mu);
    if (sl) {
        uint8_t *p = sl->base;
        free(sl);
        return p;
    }
    void *p = mmap(NULL, *bytes, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED)
        return NULL;
    /* No transparent huge pages: a guest's first write would zero 2 MiB,
     * and a warm slot's reset works page by page. */
    madvise(p, *bytes, MADV_NOHUGEPAGE);
    return p;
}

void eng_slot_release(uint8_t *p, uint64_t bytes, uint64_t used)
{
    /* Whatever path gives a tracked warm slot back (image.c), its tracker
     * goes with it: a later slot at the same address is not tracked. */
    eng_touch_t *t = eng_touch_find(p);
    if (t)
        eng_touch_stop(t);
    if (bytes == ENG_GUARD_RESERVE) {
        guard_slot_release(p, used);
        return;
    }
    uint64_t rounded;
    unsigned c = slot_class(bytes, &rounded);
    if (used > bytes)
        used = bytes;
    used = (used + 4095) & ~(uint64_t)4095;
    /* Reset: the used part becomes a new zero-filled PROT_NONE mapping,
     * which drops its pages and merges with the untouched rest. If that
     * fails (or the pool is full) the slot is simply unmapped. */
    bool reset = rounded == bytes &&
                 (used == 0 || mmap(p, used, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED,
                                    -1, 0) != MAP_FAILED);
    slot_t *sl = reset ? malloc(sizeof *sl) : NULL;
    if (sl) {
        sl->base = p;
        pthread_mutex_lock(&slots.mu);
        if (slots.nfree[c] < SLOT_KEEP) {
            sl->next = slots.free[c];
            slots.free[c] = sl;
            slots.nfree[c]++;
            sl = NULL;
            p = NULL;
        }
        pthread_mutex_unlock(&slots.mu);
        free(sl);
    }
    if (p)
        munmap(p, bytes);
}

uint64_t eng_slot_rounded(uint64_t bytes)
{
    uint64_t rounded;
    slot_class(bytes, &rounded);
    return rounded;
}
