/*
 * native_load.c — native code as an artefact: the target it was made for,
 * sealing it for storage, checking it when it comes back, and attaching it
 * to a module so that new instances run it (engine.h, "Native code").
 *
 * Trust. Native code runs with the process's full power, so it is trusted
 * only when this build of wasmfn made it from the same module bytes. An
 * artefact is sealed with HMAC-SHA-256 under a key the embedder keeps (the
 * daemon in its data directory, mode 0600; `wasmfn run` in its cache): the
 * MAC covers the format, the target key (this build's id, LLVM's version,
 * the CPU and its features, the struct offsets the code depends on), the
 * module's SHA-256 and the object. Opening checks all of it before a byte
 * of the object is used, so a damaged, foreign, stale or forged file is
 * refused (and the embedder compiles again) rather than executed; the
 * loader (objload.c) still treats the object as untrusted bytes. Whoever
 * can read the key can forge code, so the key file's owner and mode are
 * the embedder's business (see docs/engine.md, "Native code").
 *
 * Layout of a sealed artefact (little-endian):
 *   "WFNNATV\0"  u32 format version  32-byte SHA-256 of the target key
 *   32-byte SHA-256 of the module's bytes   u64 object length   object
 *   32-byte HMAC-SHA-256 of everything before it
 */
#define _GNU_SOURCE /* dl_iterate_phdr */
#include "engine/native_abi.h"

#include <link.h>
#include <llvm-c/Core.h>
#include <llvm-c/TargetMachine.h>
#include <math.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <pthread.h>
#include <stdlib.h>

#define ART_MAGIC "WFNNATV"
#define ART_VERSION 2u /* 2: PC tables stored without relocations (objpack.c) */
#define ART_HEADER_BYTES (8 + 4 + 32 + 32 + 8)
#define ART_MAC_BYTES 32

/* ---- The target key ---- */

static pthread_once_t target_once = PTHREAD_ONCE_INIT;
static char target_key[2048];
static uint8_t target_hash[32];

/* The GNU build id of the main program, as hex, or "" when it has none. */
static int note_cb(struct dl_phdr_info *info, size_t size, void *ud)
{
    (void)size;
    char *out = ud;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type != PT_NOTE)
            continue;
        const uint8_t *p = (const uint8_t *)(info->dlpi_addr + ph->p_vaddr);
        const uint8_t *end = p + ph->p_memsz;
        while (p + sizeof(ElfW(Nhdr)) <= end) {
            const ElfW(Nhdr) *n = (const ElfW(Nhdr) *)p;
            const uint8_t *name = p + sizeof *n;
            const uint8_t *desc = name + ((n->n_namesz + 3) & ~3u);
            const uint8_t *next = desc + ((n->n_descsz + 3) & ~3u);
            if (next > end)
                break;
            if (n->n_type == NT_GNU_BUILD_ID && n->n_namesz == 4 && memcmp(name, "GNU", 4) == 0) {
                for (uint32_t k = 0; k < n->n_descsz && k < 64; k++)
                    sprintf(out + 2 * k, "%02x", desc[k]);
                return 1;
            }
            p = next;
        }
    }
    return 1; /* only the first object, the program itself */
}

static void target_init(void)
{
    char build[160] = "";
    dl_iterate_phdr(note_cb, build);
    if (!build[0])
        snprintf(build, sizeof build, "built %s %s", __DATE__, __TIME__);
    /* The offsets the generated code depends on. */
    uint64_t h = 1469598103934665603ull;
#define MIX_OFFSET(type, field)                                                                   \
    h = (h ^ (uint64_t)offsetof(type, field)) * 1099511628211ull;
    ENG_NATIVE_OFFSETS(MIX_OFFSET)
#undef MIX_OFFSET
    h = (h ^ sizeof(eng_functype_t)) * 1099511628211ull;
    unsigned major, minor, patch;
    LLVMGetVersion(&major, &minor, &patch);
    char *cpu = LLVMGetHostCPUName(), *features = LLVMGetHostCPUFeatures();
    snprintf(target_key, sizeof target_key,
             "wasmfn-native abi %d layout %016llx build %s llvm %u.%u.%u cpu %s features %s",
             ENG_NATIVE_ABI, (unsigned long long)h, build, major, minor, patch, cpu, features);
    LLVMDisposeMessage(cpu);
    LLVMDisposeMessage(features);
    EVP_Digest(target_key, strlen(target_key), target_hash, NULL, EVP_sha256(), NULL);
}

const char *eng_native_target(void)
{
    pthread_once(&target_once, target_init);
    return target_key;
}

void eng_native_target_digest(uint8_t out[32])
{
    pthread_once(&target_once, target_init);
    memcpy(out, target_hash, 32);
}

/* ---- Sealing ---- */

static void put_u32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static void put_u64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get_u64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

static uint32_t get_u32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static bool mac(const uint8_t key[ENG_NATIVE_KEY_BYTES], const uint8_t *data, size_t len,
                uint8_t out[ART_MAC_BYTES])
{
    unsigned int n = 0;
    return HMAC(EVP_sha256(), key, ENG_NATIVE_KEY_BYTES, data, len, out, &n) && n == ART_MAC_BYTES;
}

bool eng_native_seal(const uint8_t *obj, size_t len, const uint8_t module_sha256[32],
                     const uint8_t key[ENG_NATIVE_KEY_BYTES], uint8_t **out, size_t *outlen,
                     char *err, size_t errlen)
{
    *out = NULL;
    if (len > SIZE_MAX - ART_HEADER_BYTES - ART_MAC_BYTES)
        return eng_errf(err, errlen, "native: object too large");
    size_t total = ART_HEADER_BYTES + len + ART_MAC_BYTES;
    uint8_t *a = malloc(total);
    if (!a)
        return eng_errf(err, errlen, "native: out of memory");
    memcpy(a, ART_MAGIC, 8);
    put_u32(a + 8, ART_VERSION);
    eng_native_target_digest(a + 12);
    memcpy(a + 44, module_sha256, 32);
    put_u64(a + 76, len);
    memcpy(a + ART_HEADER_BYTES, obj, len);
    if (!mac(key, a, ART_HEADER_BYTES + len, a + ART_HEADER_BYTES + len)) {
        free(a);
        return eng_errf(err, errlen, "native: HMAC failed");
    }
    *out = a;
    *outlen = total;
    return true;
}

bool eng_native_open(const uint8_t *art, size_t len, const uint8_t module_sha256[32],
                     const uint8_t key[ENG_NATIVE_KEY_BYTES], const uint8_t **obj, size_t *objlen,
                     char *err, size_t errlen)
{
    if (len < ART_HEADER_BYTES + ART_MAC_BYTES || memcmp(art, ART_MAGIC, 8) != 0)
        return eng_errf(err, errlen, "native artefact: damaged: not a native artefact");
    if (get_u32(art + 8) != ART_VERSION)
        return eng_errf(err, errlen, "native artefact: stale: format version %u", get_u32(art + 8));
    uint64_t n = get_u64(art + 76);
    if (n != len - ART_HEADER_BYTES - ART_MAC_BYTES)
        return eng_errf(err, errlen, "native artefact: damaged: length %llu does not match",
                        (unsigned long long)n);
    /* The MAC first: nothing else in the file means anything until it
     * checks (a forged target digest must not pass as "stale"). */
    uint8_t want[ART_MAC_BYTES];
    if (!mac(key, art, len - ART_MAC_BYTES, want) ||
        CRYPTO_memcmp(want, art + len - ART_MAC_BYTES, ART_MAC_BYTES) != 0)
        return eng_errf(err, errlen,
                        "native artefact: damaged or foreign: its MAC does not check with this key");
    uint8_t target[32];
    eng_native_target_digest(target);
    if (memcmp(target, art + 12, 32) != 0)
        return eng_errf(err, errlen,
                        "native artefact: stale: made by another build of wasmfn or for another CPU");
    if (memcmp(module_sha256, art + 44, 32) != 0)
        return eng_errf(err, errlen, "native artefact: made from another module");
    *obj = art + ART_HEADER_BYTES;
    *objlen = (size_t)n;
    return true;
}

/* ---- Attaching ---- */

static void *resolve(void *ud, const char *name)
{
    (void)ud;
#define RESOLVE_HELPER(n, sig)                                                                    \
    if (strcmp(name, #n) == 0)                                                                    \
        return (void *)n;
    ENG_NATIVE_HELPERS(RESOLVE_HELPER)
#undef RESOLVE_HELPER
#define RESOLVE_LIBC(n)                                                                           \
    if (strcmp(name, #n) == 0)                                                                    \
        return (void *)n;
    ENG_NATIVE_LIBC(RESOLVE_LIBC)
#undef RESOLVE_LIBC
    return NULL;
}

static uint64_t get_u64le(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

/* Loads one object of a pack and puts its functions into n. NULL, or what
 * is wrong with it. */
static const char *load_part(eng_native_t *n, const eng_module_t *m, const uint8_t *obj,
                             size_t len, bool *covered, char *err, size_t errlen)
{
    eng_obj_t *o = eng_obj_load(obj, len, resolve, NULL, err, errlen);
    if (!o)
        return err;
    n->objs[n->nobjs++] = o;
    const uint32_t *meta = eng_obj_symbol(o, ENG_NATIVE_SYM_META);
    void *const *funcs = eng_obj_symbol(o, ENG_NATIVE_SYM_FUNCS);
    uint32_t ndefined = m->nfuncs - m->nfunc_imports;
    if (!meta || !funcs)
        return "its tables are missing";
    if (meta[ENG_NATIVE_META_MAGIC] != ENG_NATIVE_MAGIC || meta[ENG_NATIVE_META_ABI] != ENG_NATIVE_ABI)
        return "another format";
    if (meta[ENG_NATIVE_META_NFUNCS] != m->nfuncs ||
        meta[ENG_NATIVE_META_NIMPORTS] != m->nfunc_imports ||
        meta[ENG_NATIVE_META_NTYPES] != m->ntypes ||
        memcmp(meta + ENG_NATIVE_META_SHA256, m->sha256, 32) != 0)
        return "made from another module";
    if (n->nobjs == 1)
        n->guard = meta[ENG_NATIVE_META_GUARD] != 0;
    else if (n->guard != (meta[ENG_NATIVE_META_GUARD] != 0))
        return "its objects disagree on guard mode";
    uint32_t first = meta[ENG_NATIVE_META_FIRST], count = meta[ENG_NATIVE_META_COUNT];
    if (first > ndefined || count > ndefined - first)
        return "its function range is out of bounds";
    for (uint32_t i = 0; i < count; i++) {
        if (covered[first + i])
            return "two objects define the same function";
        covered[first + i] = true;
        n->funcs[first + i] = funcs[i];
    }
    if (meta[ENG_NATIVE_META_TRAMPS]) {
        /* (A module without types has none: the table is empty.) */
        void *const *tramps = eng_obj_symbol(o, ENG_NATIVE_SYM_TRAMPS);
        if ((!tramps && m->ntypes) || n->has_tramps)
            return "its trampolines are missing or twice";
        n->tramps = tramps;
        n->has_tramps = true;
    }
    return NULL;
}

bool eng_module_attach_native(eng_module_t *m, const uint8_t *pack, size_t len, char *err,
                              size_t errlen)
{
    if (__atomic_load_n(&m->native, __ATOMIC_ACQUIRE))
        return true; /* already attached: the first one stays */
    if (len < ENG_NATIVE_PACK_HEADER || memcmp(pack, ENG_NATIVE_PACK_MAGIC, 8) != 0)
        return eng_errf(err, errlen, "native code: not a pack of objects");
    uint32_t count = get_u32(pack + 8);
    if (count == 0 || count > ENG_NATIVE_PACK_MAX_OBJECTS)
        return eng_errf(err, errlen, "native code: %u objects", count);
    uint32_t ndefined = m->nfuncs - m->nfunc_imports;
    eng_native_t *n = calloc(1, sizeof *n);
    bool *covered = calloc(ndefined + 1, sizeof *covered);
    if (!n || !covered || !(n->objs = calloc(count, sizeof *n->objs)) ||
        !(n->funcs = calloc(ndefined + 1, sizeof *n->funcs))) {
        free(covered);
        eng_native_free(n);
        return eng_errf(err, errlen, "native code: out of memory");
    }
    const char *bad = NULL;
    char lerr[ENG_ERR_MAX];
    size_t at = ENG_NATIVE_PACK_HEADER;
    for (uint32_t k = 0; k < count && !bad; k++) {
        if (len - at < 8) {
            bad = "the pack is truncated";
            break;
        }
        uint64_t olen = get_u64le(pack + at);
        at += 8;
        if (olen > len - at) {
            bad = "the pack is truncated";
            break;
        }
        bad = load_part(n, m, pack + at, (size_t)olen, covered, lerr, sizeof lerr);
        at += (size_t)olen;
    }
    if (!bad && at != len)
        bad = "bytes after the last object";
    for (uint32_t i = 0; i < ndefined && !bad; i++)
        if (!covered[i])
            bad = "a function has no code";
    if (!bad && !n->has_tramps)
        bad = "its trampolines are missing";
    /* Guard-mode code faults on purpose: the fault handler must know it. */
    if (!bad && n->guard && !eng_native_code_register(n, m))
        bad = "too many native modules for the fault handler's table";
    free(covered);
    if (bad) {
        eng_errf(err, errlen, "native code: %s", bad);
        eng_native_free(n);
        return false;
    }
    eng_native_t *none = NULL;
    if (!__atomic_compare_exchange_n(&m->native, &none, n, false, __ATOMIC_ACQ_REL,
                                     __ATOMIC_ACQUIRE))
        eng_native_free(n); /* another thread attached first */
    return true;
}

eng_tier_t eng_module_tier(const eng_module_t *m)
{
    return __atomic_load_n(&m->native, __ATOMIC_ACQUIRE) ? ENG_TIER_NATIVE : ENG_TIER_INTERP;
}

void eng_native_link_instance(eng_instance_t *inst)
{
    const eng_module_t *m = inst->module;
    eng_native_t *n = __atomic_load_n(&m->native, __ATOMIC_ACQUIRE);
    if (!n)
        return;
    uint32_t ndefined = m->nfuncs - m->nfunc_imports;
    for (uint32_t j = 0; j < ndefined; j++) {
        eng_func_t *f = &inst->func_objs[j];
        f->native = n->funcs[j];
        f->tramp = n->tramps[m->func_type[m->nfunc_imports + j]];
        f->enter = eng_native_enter;
    }
    inst->native_guard = n->guard;
}

void eng_native_unlink_instance(eng_instance_t *inst)
{
    uint32_t ndefined = inst->module->nfuncs - inst->module->nfunc_imports;
    for (uint32_t j = 0; j < ndefined; j++) {
        inst->func_objs[j].native = inst->func_objs[j].tramp = NULL;
        inst->func_objs[j].enter = NULL;
    }
    inst->native_guard = false;
}

void eng_native_free(eng_native_t *n)
{
    if (!n)
        return;
    if (n->registered)
        eng_native_code_unregister(n);
    for (uint32_t k = 0; k < n->nobjs; k++)
        eng_obj_free(n->objs[k]);
    free(n->objs);
    free(n->funcs);
    free(n);
}

size_t eng_native_size_bytes(const eng_native_t *n)
{
    if (!n)
        return 0;
    size_t b = sizeof *n;
    for (uint32_t k = 0; k < n->nobjs; k++)
        b += eng_obj_size_bytes(n->objs[k]);
    return b;
}
