/*
 * image.c — instance images, and the warm slots they keep.
 *
 * An image is the state of one instance after instantiation (data and
 * element segments applied, the start function run, and whatever the
 * embedder ran afterwards, e.g. `wizer.initialize`): its linear memory, the
 * values of its globals, the contents of its tables and which segments are
 * dropped. eng_instance_from_image makes a new instance in that state
 * without running anything:
 *
 *   - memory: the image's bytes live in a sealed memfd. A new instance maps
 *     them MAP_PRIVATE over the start of its reservation, so it shares the
 *     image's pages until it writes one (copy-on-write); pages past the
 *     last non-zero byte of the image are plain anonymous memory. Cost: one
 *     mmap, whatever the size of the data.
 *   - globals, tables, segments: copied. References are kept as function
 *     indices and resolved against the new instance's own functions and
 *     imports, so an image never holds a pointer into another store. That
 *     is what lets per-instance host functions (WASI) be linked afresh for
 *     every instance.
 *
 * What an image cannot hold (eng_image_new fails, and the embedder falls
 * back to eng_instance_new): imported memories, tables or globals (their
 * state belongs to someone else), non-null externrefs (host pointers), and
 * table entries that are functions of another instance. Functions the
 * instance imported are fine: they are re-linked by import index.
 *
 * Warm slots. Every memory's reservation is a slot from the pool of
 * slots.c, which remaps a slot's used part when it is released. That
 * remapping, and the mmap of the image into a fresh slot, change the
 * process's page tables, and in a multi-threaded process every
 * such change ends in a TLB shootdown: an interrupt to each other CPU
 * running one of our threads. With a fresh instance per request that was
 * the largest cost of a hello-world request (perf: ~28% of the daemon's
 * CPU in smp_call_function_many_cond and the IPIs' MSR writes), followed
 * by the copy-on-write faults of the new mapping. So an image keeps a few
 * of its instances' slots mapped after they are freed ("warm"), reset in
 * place to the image's state, and its next instances take those first: no
 * mmap, no mprotect, no page fault and no TLB shootdown on the request
 * path.
 *
 * The reset must restore every page the guest (or WASI, on its behalf)
 * wrote, without trusting anyone to have recorded the writes: the kernel
 * tells. In /proc/self/pagemap a page of the private image mapping that is
 * present and no longer a file page was copied on write, and a present
 * page of the anonymous part past the image was written or read (the
 * shared zero page). Those pages, and only those, get the image's bytes
 * back (memcpy from a read-only view of the memfd) or zeros (when not
 * zero already). A page copied once stays private, so the copies are
 * repeated each time; when more than WARM_COPY_MAX pages are dirty, or the
 * memory is larger than WARM_SCAN_MAX, one madvise(MADV_DONTNEED) over the
 * used part drops them all instead (a private file mapping then reads the
 * image again, the anonymous part zeros) at the price of one shootdown.
 * Without /proc/self/pagemap there are no warm slots.
 *
 * After a copying reset, a slot of an image whose mapped part is small is
 * tracked (touch.c): the kernel then reports each page of its anonymous
 * part as it is first mapped, so the next resets know the pages without
 * reading pagemap (warm_reset_tracked; docs/engine.md, "Tracked warm
 * slots").
 *
 * A warm slot may be accessible (PROT_READ|WRITE) past the size of the
 * next instance's memory, since a previous one grew; bounds checks are
 * explicit (interp.c), and the reset leaves those pages zero, so
 * memory.grow finds them as the spec wants. eng_memory_t.accessible
 * records the extent, so the slot is released whole.
 *
 * Bounds: WARM_PER_IMAGE slots per image memory and WARM_MAX in the
 * process; a slot keeps the pages its instances touched resident, so this
 * is memory held for speed: at most the working set of WARM_PER_IMAGE
 * concurrent instances per image. eng_image_trim gives them back.
 */
#define _GNU_SOURCE
#include "engine/internal.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

/* ---- Images ---- */

#define NO_FUNC UINT32_MAX

typedef struct warm_slot {
    struct warm_slot *next;
    uint8_t *base;
    uint64_t reserved;
    uint64_t accessible;            /* readable and writable from base */
} warm_slot_t;

typedef struct image_mem {
    uint32_t pages;                 /* size when captured */
    uint32_t type_max;
    uint64_t len;                   /* bytes mapped from fd (page-aligned, <= pages * 64 KiB) */
    int fd;                         /* sealed memfd, -1 when len is 0 */
    const uint8_t *view;            /* the memfd mapped read-only (len bytes), for resets */
    struct eng_image *owner;
    pthread_mutex_t mu;             /* guards warm and nwarm */
    warm_slot_t *warm;
    uint32_t nwarm;
    atomic_bool no_track;           /* a tracked slot outgrew ENG_TOUCH_MAX: track no more */
} image_mem_t;

typedef struct image_table {
    uint32_t size;
    uint32_t *idx;                  /* [size] function index or NO_FUNC */
} image_table_t;

struct eng_image {
    const eng_module_t *module;
    /* One for eng_image_new's caller, one per memory made from the image
     * (its slot may come back warm), so the image outlives them all. */
    atomic_uint refs;
    atomic_bool freed;              /* eng_image_free was called: keep no more warm slots */
    image_mem_t *mems;              /* [nmems] */
    image_table_t *tables;          /* [ntables] */
    eng_val_t *globals;             /* [nglobals]; funcref globals hold an index (NO_FUNC = null) */
    eng_val_t *globals_hi;          /* [nglobals]; v128 globals' bytes 8..15 */
    uint32_t *elem_len;             /* [nelems] 0 once dropped */
    uint32_t **elem_idx;            /* [nelems] */
    bool *data_dropped;             /* [ndatas] */
};

/* The index of f in inst's function space, NO_FUNC for null; false when f
 * is neither one of inst's functions nor one it imported. */
static bool func_to_index(const eng_instance_t *inst, const eng_func_t *f, uint32_t *out)
{
    const eng_module_t *m = inst->module;
    if (!f) {
        *out = NO_FUNC;
        return true;
    }
    if (f->inst == inst && !f->host) {
        *out = f->index;
        return true;
    }
    for (uint32_t k = 0; k < m->nfunc_imports; k++) {
        if (inst->funcs[k] == f) {
            *out = k;
            return true;
        }
    }
    return false;
}

/* ---- Warm slots ---- */

#define WARM_PER_IMAGE 16           /* per image memory */
#define WARM_MAX 1024               /* in the process */
#define WARM_COPY_MAX 64            /* dirty pages restored by copying; more: madvise */
#define WARM_SCAN_MAX (32ull << 20) /* larger memories are reset with madvise */
#define TRACK_IMAGE_MAX (32 * 4096) /* larger image parts: no tracking (see warm_reset_tracked) */
#define PM_PRESENT (1ull << 63)
#define PM_SWAPPED (1ull << 62)
#define PM_FILE (1ull << 61)

static atomic_uint warm_total;
static int pagemap_fd = -1;
static pthread_once_t pagemap_once = PTHREAD_ONCE_INIT;

static void pagemap_open(void) { pagemap_fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC); }

static bool page_is_zero(const uint8_t *p)
{
    const uint64_t *w = (const uint64_t *)p;
    for (size_t k = 0; k < 4096 / 8; k++)
        if (w[k])
            return false;
    return true;
}

/* The reset of a tracked slot (touch.c knows which pages of its zero
 * part are mapped): no system call. The image part is not tracked (a
 * private file mapping's pages become private without a fault the
 * tracker sees), so it is compared with the image page by page and copied
 * back where it differs; hence TRACK_IMAGE_MAX. False, with t stopped,
 * when the slot cannot be reset this way: it grew past the tracked range,
 * or more pages were mapped than a tracker holds (then this image's slots
 * are tracked no more: their working set is too large for it). */
static bool warm_reset_tracked(image_mem_t *im, uint8_t *base, uint64_t size, eng_touch_t *t)
{
    uint32_t pages[ENG_TOUCH_MAX], n = 0;
    bool fits = size <= eng_touch_end(t);
    if (!fits || !eng_touch_pages(t, pages, &n)) {
        if (fits) atomic_store(&im->no_track, true);
        eng_touch_stop(t);
        return false;
    }
    for (uint64_t off = 0; off < im->len; off += 4096)
        if (memcmp(base + off, im->view + off, 4096) != 0)
            memcpy(base + off, im->view + off, 4096);
    for (uint32_t k = 0; k < n; k++) {
        uint8_t *pg = base + (uint64_t)pages[k] * 4096;
        if (!page_is_zero(pg))
            memset(pg, 0, 4096);
    }
    return true;
}

/* Puts the first `size` bytes at base back in the image's state (see the
 * top of the file); false when it cannot tell which pages to restore.
 * After a copying reset, small slots are tracked from then on (touch.c),
 * with the pages of the zero part that are mapped now. */
static bool warm_reset(image_mem_t *im, uint8_t *base, uint64_t size)
{
    uint64_t npages = (size + 4095) / 4096;
    uint32_t dirty[WARM_COPY_MAX];
    uint32_t ndirty = 0;
    bool many = size > WARM_SCAN_MAX;
    uint64_t entries[512];
    for (uint64_t first = 0; first < npages && !many; first += 512) {
        uint64_t n = npages - first < 512 ? npages - first : 512;
        off_t at = (off_t)(((uintptr_t)base / 4096 + first) * sizeof(uint64_t));
        if (pread(pagemap_fd, entries, n * sizeof(uint64_t), at) != (ssize_t)(n * sizeof(uint64_t)))
            return false;
        for (uint64_t k = 0; k < n; k++) {
            uint64_t e = entries[k];
            if (!((e & PM_PRESENT) && !(e & PM_FILE)) && !(e & PM_SWAPPED))
                continue;
            if (ndirty == WARM_COPY_MAX) {
                many = true;
                break;
            }
            dirty[ndirty++] = (uint32_t)(first + k);
        }
    }
    if (many)
        return madvise(base, size, MADV_DONTNEED) == 0;
    uint32_t nzero = 0; /* dirty[] reused for the zero part's pages */
    for (uint32_t k = 0; k < ndirty; k++) {
        uint64_t off = (uint64_t)dirty[k] * 4096;
        if (off < im->len)
            memcpy(base + off, im->view + off, 4096);
        else {
            if (!page_is_zero(base + off))
                memset(base + off, 0, 4096);
            dirty[nzero++] = dirty[k];
        }
    }
    if (im->len <= TRACK_IMAGE_MAX && !atomic_load(&im->no_track))
        eng_touch_start(base, im->len, size, dirty, nzero); /* NULL: not tracked, fine */
    return true;
}

static void image_destroy(eng_image_t *img);
static void image_release_slot(image_mem_t *im, uint8_t *p, uint64_t bytes, uint64_t used);

static void image_unref(eng_image_t *img)
{
    if (atomic_fetch_sub(&img->refs, 1) == 1)
        image_destroy(img);
}

/* Gives back the slot of a memory made from an image (`used` bytes
 * accessible): it is reset to the image's state and kept by the image for
 * its next instance when it can be, else released as eng_slot_release
 * does. Memories made from an image carry it as their image_release, which
 * store.c calls when it frees them. */
static void image_memory_release(image_mem_t *im, uint8_t *p, uint64_t bytes, uint64_t used)
{
    eng_image_t *owner = im->owner;
    image_release_slot(im, p, bytes, used);
    image_unref(owner);
}

static void image_release_slot(image_mem_t *im, uint8_t *p, uint64_t bytes, uint64_t used)
{
    pthread_once(&pagemap_once, pagemap_open);
    bool keep = pagemap_fd >= 0 && (im->len == 0 || im->view) && !atomic_load(&im->owner->freed);
    if (keep) {
        pthread_mutex_lock(&im->mu);
        keep = im->nwarm < WARM_PER_IMAGE;
        if (keep)
            im->nwarm++; /* claimed; given back below if the slot is not kept */
        pthread_mutex_unlock(&im->mu);
    }
    if (keep && atomic_fetch_add(&warm_total, 1) >= WARM_MAX) {
        atomic_fetch_sub(&warm_total, 1);
        keep = false;
        pthread_mutex_lock(&im->mu);
        im->nwarm--;
        pthread_mutex_unlock(&im->mu);
    }
    /* The whole accessible part, not just the memory's size: pages an
     * earlier, larger instance wrote stay private (zeroed) past this one's
     * size, and must count towards WARM_COPY_MAX so that a warm slot never
     * holds more. A tracked slot is reset without asking the kernel; when
     * that cannot be done, its tracker is stopped and pagemap is asked. */
    eng_touch_t *t = eng_touch_find(p);
    warm_slot_t *ws = keep ? malloc(sizeof *ws) : NULL;
    bool reset = false;
    if (ws) {
        reset = t && warm_reset_tracked(im, p, used, t);
        if (!reset) {
            t = NULL;
            reset = warm_reset(im, p, used);
        }
    }
    if (keep && !reset) {
        free(ws);
        ws = NULL;
        atomic_fetch_sub(&warm_total, 1);
        pthread_mutex_lock(&im->mu);
        im->nwarm--;
        pthread_mutex_unlock(&im->mu);
    }
    if (!ws) {
        eng_slot_release(p, bytes, used); /* stops its tracker, if any */
        return;
    }
    ws->base = p;
    ws->reserved = bytes;
    ws->accessible = used;
    pthread_mutex_lock(&im->mu);
    ws->next = im->warm;
    im->warm = ws;
    pthread_mutex_unlock(&im->mu);
}

/* A warm slot of exactly `reserved` bytes, or NULL. */
static warm_slot_t *warm_take(image_mem_t *im, uint64_t reserved)
{
    pthread_mutex_lock(&im->mu);
    warm_slot_t **pp = &im->warm;
    while (*pp && (*pp)->reserved != reserved)
        pp = &(*pp)->next;
    warm_slot_t *ws = *pp;
    if (ws) {
        *pp = ws->next;
        im->nwarm--;
    }
    pthread_mutex_unlock(&im->mu);
    if (ws)
        atomic_fetch_sub(&warm_total, 1);
    return ws;
}

static void warm_drop(image_mem_t *im)
{
    pthread_mutex_lock(&im->mu);
    warm_slot_t *ws = im->warm;
    im->warm = NULL;
    /* Not nwarm = 0: a slot being reset right now (image_release_slot)
     * is counted already and joins the list after this. */
    for (warm_slot_t *k = ws; k; k = k->next)
        im->nwarm--;
    pthread_mutex_unlock(&im->mu);
    while (ws) {
        warm_slot_t *next = ws->next;
        eng_slot_release(ws->base, ws->reserved, ws->accessible);
        atomic_fetch_sub(&warm_total, 1);
        free(ws);
        ws = next;
    }
}

void eng_image_trim(eng_image_t *img)
{
    if (!img->mems) /* eng_image_new ran out of memory */
        return;
    for (uint32_t i = 0; i < img->module->nmems; i++)
        warm_drop(&img->mems[i]);
}

uint32_t eng_image_warm_slots(const eng_image_t *img)
{
    uint32_t n = 0;
    for (uint32_t i = 0; i < img->module->nmems; i++) {
        image_mem_t *im = &img->mems[i];
        pthread_mutex_lock(&im->mu);
        n += im->nwarm;
        pthread_mutex_unlock(&im->mu);
    }
    return n;
}

void eng_image_free(eng_image_t *img)
{
    if (!img)
        return;
    atomic_store(&img->freed, true);
    eng_image_trim(img);
    image_unref(img);
}

static void image_destroy(eng_image_t *img)
{
    const eng_module_t *m = img->module;
    if (img->mems)
        for (uint32_t i = 0; i < m->nmems; i++) {
            image_mem_t *im = &img->mems[i];
            warm_drop(im);
            pthread_mutex_destroy(&im->mu);
            if (im->view)
                munmap((void *)im->view, im->len);
            if (im->fd >= 0)
                close(im->fd);
        }
    if (img->tables)
        for (uint32_t i = 0; i < m->ntables; i++)
            free(img->tables[i].idx);
    if (img->elem_idx)
        for (uint32_t i = 0; i < m->nelems; i++)
            free(img->elem_idx[i]);
    free(img->mems);
    free(img->tables);
    free(img->globals);
    free(img->globals_hi);
    free(img->elem_len);
    free(img->elem_idx);
    free(img->data_dropped);
    free(img);
}

/* Writes the memory's bytes up to its last non-zero 4 KiB page into a
 * sealed memfd. */
static bool image_mem_capture(image_mem_t *im, const eng_memory_t *mem, uint32_t i, char *err, size_t errlen)
{
    im->pages = mem->pages;
    im->type_max = mem->type_max;
    im->fd = -1;
    uint64_t end = mem->size;
    while (end >= 4096) {
        const uint64_t *w = (const uint64_t *)(mem->data + end - 4096);
        bool zero = true;
        for (size_t k = 0; k < 4096 / 8; k++)
            if (w[k]) {
                zero = false;
                break;
            }
        if (!zero)
            break;
        end -= 4096;
    }
    im->len = end;
    if (end == 0)
        return true;
    int fd = memfd_create("wasmfn-image", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (fd < 0)
        return eng_errf(err, errlen, "memory %u: memfd_create: %s", i, strerror(errno));
    im->fd = fd;
    if (ftruncate(fd, (off_t)end) != 0)
        return eng_errf(err, errlen, "memory %u: cannot size the image (%llu bytes): %s", i,
                        (unsigned long long)end, strerror(errno));
    for (uint64_t done = 0; done < end;) {
        ssize_t n = pwrite(fd, mem->data + done, end - done, (off_t)done);
        if (n <= 0)
            return eng_errf(err, errlen, "memory %u: cannot write the image: %s", i,
                            n < 0 ? strerror(errno) : "short write");
        done += (uint64_t)n;
    }
    /* Nobody may change an image once made: every instance shares it. */
    if (fcntl(fd, F_ADD_SEALS, F_SEAL_WRITE | F_SEAL_GROW | F_SEAL_SHRINK | F_SEAL_SEAL) != 0)
        return eng_errf(err, errlen, "memory %u: cannot seal the image: %s", i, strerror(errno));
    /* For warm slots' resets; without it there are none. */
    void *v = mmap(NULL, end, PROT_READ, MAP_SHARED, fd, 0);
    im->view = v == MAP_FAILED ? NULL : v;
    return true;
}

eng_image_t *eng_image_new(eng_instance_t *inst, char *err, size_t errlen)
{
    if (err && errlen)
        err[0] = 0;
    const eng_module_t *m = inst->module;
    if (m->nmem_imports || m->ntable_imports || m->nglobal_imports) {
        eng_errf(err, errlen, "the module imports a %s; an image holds only the instance's own state",
                 m->nmem_imports ? "memory" : m->ntable_imports ? "table" : "global");
        return NULL;
    }
    eng_image_t *img = calloc(1, sizeof *img);
    if (!img) {
        eng_errf(err, errlen, "out of memory");
        return NULL;
    }
    img->module = m;
    atomic_init(&img->refs, 1);
    atomic_init(&img->freed, false);
    img->mems = calloc(m->nmems ? m->nmems : 1, sizeof *img->mems);
    if (img->mems)
        for (uint32_t i = 0; i < m->nmems; i++) { /* first, so a failure below frees cleanly */
            img->mems[i].fd = -1;
            img->mems[i].owner = img;
            pthread_mutex_init(&img->mems[i].mu, NULL);
        }
    img->tables = calloc(m->ntables ? m->ntables : 1, sizeof *img->tables);
    img->globals = calloc(m->nglobals ? m->nglobals : 1, sizeof *img->globals);
    img->globals_hi = calloc(m->nglobals ? m->nglobals : 1, sizeof *img->globals_hi);
    img->elem_len = calloc(m->nelems ? m->nelems : 1, sizeof *img->elem_len);
    img->elem_idx = calloc(m->nelems ? m->nelems : 1, sizeof *img->elem_idx);
    img->data_dropped = calloc(m->ndatas ? m->ndatas : 1, sizeof *img->data_dropped);
    if (!img->mems || !img->tables || !img->globals || !img->globals_hi || !img->elem_len || !img->elem_idx ||
        !img->data_dropped) {
        eng_errf(err, errlen, "out of memory");
        goto fail;
    }
    for (uint32_t i = 0; i < m->nmems; i++)
        if (!image_mem_capture(&img->mems[i], inst->mems[i], i, err, errlen))
            goto fail;

    for (uint32_t i = 0; i < m->nglobals; i++) {
        const eng_global_t *g = inst->globals[i];
        img->globals[i] = g->val;
        img->globals_hi[i] = g->val_hi;
        if (g->type == ENG_FUNCREF) {
            uint32_t k;
            if (!func_to_index(inst, g->val.ref, &k)) {
                eng_errf(err, errlen, "global %u holds a function of another instance", i);
                goto fail;
            }
            memset(&img->globals[i], 0, sizeof img->globals[i]);
            img->globals[i].i32 = k;
        } else if (g->type == ENG_EXTERNREF && g->val.ref) {
            eng_errf(err, errlen, "global %u holds an externref (a host pointer)", i);
            goto fail;
        }
    }

    for (uint32_t i = 0; i < m->ntables; i++) {
        const eng_table_t *t = inst->tables[i];
        image_table_t *it = &img->tables[i];
        it->size = t->size;
        it->idx = malloc((t->size ? t->size : 1) * sizeof *it->idx);
        if (!it->idx) {
            eng_errf(err, errlen, "out of memory");
            goto fail;
        }
        for (uint32_t k = 0; k < t->size; k++) {
            bool ok = t->elem == ENG_FUNCREF ? func_to_index(inst, t->elems[k], &it->idx[k])
                                             : (it->idx[k] = NO_FUNC, t->elems[k] == NULL);
            if (!ok) {
                eng_errf(err, errlen, "table %u element %u holds %s", i, k,
                         t->elem == ENG_FUNCREF ? "a function of another instance"
                                                : "an externref (a host pointer)");
                goto fail;
            }
        }
    }

    for (uint32_t i = 0; i < m->nelems; i++) {
        uint32_t n = inst->elem_len[i];
        img->elem_len[i] = n;
        if (!n)
            continue;
        img->elem_idx[i] = malloc((size_t)n * sizeof(uint32_t));
        if (!img->elem_idx[i]) {
            eng_errf(err, errlen, "out of memory");
            goto fail;
        }
        for (uint32_t k = 0; k < n; k++) {
            void *r = inst->elem_refs[i][k];
            bool ok = m->elems[i].type == ENG_FUNCREF ? func_to_index(inst, r, &img->elem_idx[i][k])
                                                      : (img->elem_idx[i][k] = NO_FUNC, r == NULL);
            if (!ok) {
                eng_errf(err, errlen, "element segment %u item %u cannot be kept in an image", i, k);
                goto fail;
            }
        }
    }
    memcpy(img->data_dropped, inst->data_dropped, m->ndatas * sizeof(bool));
    return img;
fail:
    eng_image_free(img);
    return NULL;
}

const eng_module_t *eng_image_module(const eng_image_t *img) { return img->module; }

uint64_t eng_image_memory_bytes(const eng_image_t *img)
{
    uint64_t n = 0;
    for (uint32_t i = 0; i < img->module->nmems; i++)
        n += img->mems[i].len;
    return n;
}

uint64_t eng_image_memory_size_bytes(const eng_image_t *img)
{
    uint64_t n = 0;
    for (uint32_t i = 0; i < img->module->nmems; i++)
        n += (uint64_t)img->mems[i].pages * ENG_PAGE_BYTES;
    return n;
}

/* A memory of `pages` pages whose first im->len bytes map the image: a
 * warm slot when there is one, else a slot mapped now. */
static eng_memory_t *memory_from_image(eng_store_t *s, image_mem_t *im, uint32_t i, bool guard,
                                       bool *no_slot, char *err, size_t errlen)
{
    uint32_t cap = eng_store_limit_pages(s);
    if (im->type_max != ENG_NO_MAX && im->type_max < cap)
        cap = im->type_max;
    if (im->pages > cap) {
        eng_errf(err, errlen, "memory %u: cannot allocate %u pages (the store's limit is %u pages)", i,
                 im->pages, cap);
        return NULL;
    }
    eng_memory_t *mem = calloc(1, sizeof *mem);
    if (!mem) {
        eng_errf(err, errlen, "out of memory");
        return NULL;
    }
    mem->image_release = image_memory_release; /* used once mem->image is set */
    mem->reserved = guard ? ENG_GUARD_RESERVE : (uint64_t)(cap ? cap : 1) * ENG_PAGE_BYTES;
    uint64_t rounded = guard ? mem->reserved : eng_slot_rounded(mem->reserved);
    warm_slot_t *ws = warm_take(im, rounded);
    bool warm = ws != NULL;
    if (warm) {
        mem->data = ws->base;
        mem->reserved = ws->reserved;
        mem->accessible = ws->accessible;
        mem->image = im;
        atomic_fetch_add(&im->owner->refs, 1);
        free(ws);
    } else {
        mem->data = eng_slot_acquire(&mem->reserved);
    }
    if (!mem->data) {
        eng_errf(err, errlen, "memory %u: cannot reserve %llu bytes of address space", i,
                 (unsigned long long)mem->reserved);
        free(mem);
        if (guard)
            *no_slot = true;
        return NULL;
    }
    mem->max_pages = cap;
    mem->type_max = im->type_max;
    mem->pages = im->pages;
    mem->size = (uint64_t)im->pages * ENG_PAGE_BYTES;
    if (!eng_store_add(s, ENG_OBJ_MEMORY, mem)) {
        if (warm)
            image_memory_release(im, mem->data, mem->reserved, mem->accessible);
        else
            eng_slot_release(mem->data, mem->reserved, 0);
        free(mem);
        eng_errf(err, errlen, "out of memory");
        return NULL;
    }
    /* From here the store owns mem and releases it on failure. */
    if (warm) { /* in the image's state; accessible up to size at least, but check */
        if (mem->accessible < mem->size) {
            if (mprotect(mem->data + mem->accessible, mem->size - mem->accessible, PROT_READ | PROT_WRITE) != 0) {
                eng_errf(err, errlen, "memory %u: cannot commit %u pages: %s", i, im->pages, strerror(errno));
                mem->image = NULL; /* released whole, not kept */
                image_unref(im->owner);
                return NULL;
            }
            mem->accessible = mem->size;
        }
        return mem;
    }
    mem->accessible = mem->size;
    if (im->len && mmap(mem->data, im->len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_FIXED, im->fd, 0) ==
                       MAP_FAILED) {
        eng_errf(err, errlen, "memory %u: cannot map the image: %s", i, strerror(errno));
        return NULL;
    }
    if (mem->size > im->len &&
        mprotect(mem->data + im->len, mem->size - im->len, PROT_READ | PROT_WRITE) != 0) {
        eng_errf(err, errlen, "memory %u: cannot commit %u pages: %s", i, im->pages, strerror(errno));
        return NULL;
    }
    /* Only a slot in the image's state may become a warm one. */
    mem->image = im;
    atomic_fetch_add(&im->owner->refs, 1);
    return mem;
}

static inline void *index_to_func(const eng_instance_t *inst, uint32_t k)
{
    return k == NO_FUNC ? NULL : inst->funcs[k];
}

eng_instance_t *eng_instance_from_image(eng_store_t *s, const eng_image_t *img, const eng_extern_t *imports,
                                        uint32_t nimports, char *err, size_t errlen)
{
    if (err && errlen)
        err[0] = 0;
    const eng_module_t *m = img->module;
    if (!eng_imports_check(m, imports, nimports, err, errlen))
        return NULL;
    eng_instance_t *inst = eng_instance_alloc(s, m, imports);
    if (!inst) {
        eng_errf(err, errlen, "out of memory");
        return NULL;
    }
    for (uint32_t i = 0; i < m->ntables; i++) {
        const image_table_t *it = &img->tables[i];
        eng_table_t *t = eng_table_new(s, (eng_valtype_t)m->tables[i].elem, it->size, m->tables[i].limits.max, NULL);
        if (!t) {
            eng_errf(err, errlen, "table %u: cannot allocate %u elements", i, it->size);
            return NULL;
        }
        if (t->elem == ENG_FUNCREF)
            for (uint32_t k = 0; k < it->size; k++)
                t->elems[k] = index_to_func(inst, it->idx[k]);
        inst->tables[i] = t;
    }
    for (uint32_t i = 0; i < m->nmems; i++) {
        /* Native code in guard mode needs memory 0 in a guard slot; when
         * none is to be had the instance is interpreted instead. */
        bool guard = i == 0 && inst->native_guard, no_slot = false;
        inst->mems[i] = memory_from_image(s, &img->mems[i], i, guard, &no_slot, err, errlen);
        if (!inst->mems[i] && no_slot) {
            eng_native_unlink_instance(inst);
            inst->mems[i] = memory_from_image(s, &img->mems[i], i, false, &no_slot, err, errlen);
        }
        if (!inst->mems[i])
            return NULL;
    }
    if (m->nmems)
        inst->mem0_data = inst->mems[0]->data;
    for (uint32_t i = 0; i < m->nglobals; i++) {
        eng_global_t *g = inst->globals[i];
        if (g->type == ENG_FUNCREF)
            g->val.ref = index_to_func(inst, img->globals[i].i32);
        else
            g->val = img->globals[i];
        g->val_hi = img->globals_hi[i];
    }
    for (uint32_t i = 0; i < m->nelems; i++) {
        uint32_t n = img->elem_len[i];
        if (!n)
            continue;
        void **refs = malloc((size_t)n * sizeof *refs);
        if (!refs) {
            eng_errf(err, errlen, "out of memory");
            return NULL;
        }
        for (uint32_t k = 0; k < n; k++)
            refs[k] = index_to_func(inst, img->elem_idx[i][k]);
        inst->elem_refs[i] = refs;
        inst->elem_len[i] = n;
    }
    memcpy(inst->data_dropped, img->data_dropped, m->ndatas * sizeof(bool));
    return inst;
}
