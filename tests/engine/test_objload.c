/*
 * test_objload.c — the object loader (src/engine/objload.c): objects made
 * at run time by the system's compilers (gcc and clang, -fPIC at -O2 and
 * -O0, and -fno-pic -mcmodel=small, plus a few hand-written assembly files
 * for relocation types compilers rarely emit) load and their code runs:
 * local calls, jump tables, constant pools, const tables of function
 * pointers (R_X86_64_64 in .data.rel.ro), calls to external functions
 * through stubs, globals in .data/.bss, GOT loads of external and local
 * addresses. Each group of the mapping gets its rights (code r-x, constants
 * and GOT r--, data rw-). Damaged objects — truncated at every length,
 * flipped bytes, bad relocations, unknown symbols, wrong machine or type,
 * thousands of random mutations — are refused with a message that names the
 * fault, or load harmlessly; code from a damaged object is never called.
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <elf.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/internal.h"

/* ---- The sources compiled at run time ---- */

static const char src_main[] =
    "__attribute__((noinline)) int sq(int x) { return x * x + 1; }\n"
    "static __attribute__((noinline)) int cube(int x) { return x * x * x; }\n"
    "int sum_sq(int n) { int s = 0; for (int i = 0; i < n; i++) s += sq(i) + cube(i); return s; }\n"
    "static int f0(int x) { return x + 1; }\n"
    "static int f1(int x) { return x * 2; }\n"
    "static int f2(int x) { return x - 3; }\n"
    "static int f3(int x) { return x ^ 5; }\n"
    "static int (*const tbl[])(int) = {f0, f1, f2, f3};\n"
    "int dispatch(int i, int x) { return tbl[i & 3](x); }\n"
    "int counter = 5;\n"
    "int zeroed;\n"
    "int bump(int d) { counter += d; zeroed += 2 * d; return counter + zeroed; }\n"
    "extern int ext_var;\n"
    "int *addr_ext(void) { return &ext_var; }\n"
    "int read_ext(void) { return ext_var; }\n"
    "int ext_add(int, int);\n"
    "int use_ext(int a) { return ext_add(a, 5) * 2; }\n"
    "void cp(char *d, const char *s, unsigned long n) { __builtin_memcpy(d, s, n); }\n"
    "double poly(double x) { return 1.5 * x * x + 0.25 * x - 3.75; }\n"
    "float flt(float x) { return x * 2.5f + 0.125f; }\n"
    "int sw(int a, int b) {\n"
    "  switch (a) {\n"
    "  case 0: return a + b; case 1: return b - 7; case 2: return a * b; case 3: return b / 3;\n"
    "  case 4: return b * 4; case 5: return b ^ 0x55; case 6: return b | 9; case 7: return b & 6;\n"
    "  case 8: return -b; default: return 99;\n"
    "  }\n"
    "}\n";

/* Built -fno-pic -mcmodel=small: absolute 32S addresses of the jump table
 * and of garr, which only load in the low 2 GiB. */
static const char src_nopic[] =
    "static int garr[8] = {3, 1, 4, 1, 5, 9, 2, 6};\n"
    "static int hits;\n"
    "static __attribute__((noinline)) int twice(int x) { return 2 * x; }\n"
    "int ext_add(int, int);\n"
    "int np_get(int i) { hits++; return twice(garr[i & 7]); }\n"
    "int np_hits(void) { return hits; }\n"
    "int np_ext(int a) { return ext_add(a, 1) + 1; }\n"
    "int np_sw(int a, int b) {\n"
    "  switch (a) {\n"
    "  case 0: return a + b; case 1: return b - 7; case 2: return a * b; case 3: return b / 3;\n"
    "  case 4: return b * 4; case 5: return b ^ 0x55; case 6: return b | 9; case 7: return b & 6;\n"
    "  case 8: return -b; default: return 99;\n"
    "  }\n"
    "}\n";

/* -fno-pic: R_X86_64_32S to an external resolved far away. */
static const char src_far[] = "extern int ext_far[];\nint get_far(int i) { return ext_far[i]; }\n";

/* A call whose rel32 is R_X86_64_PC32 (not PLT32), and PC64, 64, 32 and
 * NONE relocations. */
static const char asm_types[] =
    "\t.text\n"
    "\t.globl pc32_call\n"
    "pc32_call:\n"
    "\tsubq $8, %rsp\n"
    "\tmovl $40, %edi\n"
    "\tmovl $2, %esi\n"
    "\t.byte 0xe8\n"
    "\t.long ext_add - . - 4\n"
    "\taddq $8, %rsp\n"
    "\tret\n"
    "\t.section .rodata\n"
    "\t.p2align 3\n"
    "\t.globl pc64, rel64, abs32\n"
    "pc64:\t.quad target - .\n"
    "rel64:\t.quad target + 8\n"
    "abs32:\t.long target\n"
    "\t.reloc ., R_X86_64_NONE, target\n"
    "\t.long 0\n"
    "\t.data\n"
    "\t.p2align 3\n"
    "\t.globl target\n"
    "target:\t.quad 0x1122334455667788\n";

/* A rip-relative data load of an external: PC32, not a branch. */
static const char asm_pc32_data[] =
    "\t.text\n\t.globl load_far\nload_far:\n\tmovl ext_far(%rip), %eax\n\tret\n";

/* A PC table as LLVM emits it for !pcsections: PC-relative address words
 * (R_X86_64_PC32 against .text), each run followed by its value. */
static const char asm_pcs[] =
    "\t.text\n\t.globl pcfun\npcfun:\n\txorl %eax, %eax\n"
    "\t.globl pc_a\npc_a:\tmovl (%rdi), %eax\n"
    "\t.globl pc_b\npc_b:\taddl 4(%rdi), %eax\n"
    "\t.globl pc_c\npc_c:\taddl 8(%rdi), %eax\n\tret\n"
    "\t.section wasmfn_pc,\"ao\",@progbits,.text\n"
    "\t.long pc_a - .\n\t.long 7\n\t.long pc_b - .\n\t.long pc_c - .\n\t.long 9\n";

/* ---- Building objects ---- */

static char tmpdir[64];
static int nbuilt;

static uint8_t *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *b = malloc(n > 0 ? (size_t)n : 1);
    if (b && fread(b, 1, (size_t)n, f) != (size_t)n) {
        free(b);
        b = NULL;
    }
    fclose(f);
    *len = (size_t)n;
    return b;
}

/* Compiles src (C, or assembly when ext is "s") with `cc flags -c` and
 * returns the object's bytes (the caller frees them); fails the test when
 * the compiler does. */
static uint8_t *build(const char *cc, const char *flags, const char *src, const char *ext, size_t *len)
{
    char in[128], out[128], cmd[512];
    int id = nbuilt++;
    snprintf(in, sizeof in, "%s/src%d.%s", tmpdir, id, ext);
    snprintf(out, sizeof out, "%s/obj%d.o", tmpdir, id);
    FILE *f = fopen(in, "w");
    assert_non_null(f);
    fputs(src, f);
    fclose(f);
    snprintf(cmd, sizeof cmd, "%s %s -c -o %s %s", cc, flags, out, in);
    if (system(cmd) != 0)
        fail_msg("compiler failed: %s", cmd);
    uint8_t *b = read_file(out, len);
    assert_non_null(b);
    return b;
}

static int setup(void **state)
{
    (void)state;
    strcpy(tmpdir, "/tmp/test_objload_XXXXXX");
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

/* ---- Reading our own test objects (trusted: they come from the compiler) ---- */

static Elf64_Ehdr ehdr_of(const uint8_t *b)
{
    Elf64_Ehdr eh;
    memcpy(&eh, b, sizeof eh);
    return eh;
}

/* Offset of the section header named name, or 0. */
static size_t shdr_off(const uint8_t *b, const char *name, Elf64_Shdr *out)
{
    Elf64_Ehdr eh = ehdr_of(b);
    Elf64_Shdr strs;
    memcpy(&strs, b + eh.e_shoff + (size_t)eh.e_shstrndx * sizeof strs, sizeof strs);
    for (unsigned i = 0; i < eh.e_shnum; i++) {
        size_t off = eh.e_shoff + (size_t)i * sizeof *out;
        memcpy(out, b + off, sizeof *out);
        if (strcmp((const char *)b + strs.sh_offset + out->sh_name, name) == 0)
            return off;
    }
    return 0;
}

static unsigned count_relocs(const uint8_t *b, uint32_t type)
{
    Elf64_Ehdr eh = ehdr_of(b);
    unsigned n = 0;
    for (unsigned i = 0; i < eh.e_shnum; i++) {
        Elf64_Shdr s;
        memcpy(&s, b + eh.e_shoff + (size_t)i * sizeof s, sizeof s);
        for (size_t k = 0; s.sh_type == SHT_RELA && k < s.sh_size / sizeof(Elf64_Rela); k++) {
            Elf64_Rela r;
            memcpy(&r, b + s.sh_offset + k * sizeof r, sizeof r);
            n += ELF64_R_TYPE(r.r_info) == type;
        }
    }
    return n;
}

/* ---- What the objects link against ---- */

static int host_ext_add(int a, int b) { return a + b + 1000; }
int ext_var = 77;
#define FAR_ADDR ((void *)(uintptr_t)0xffff800000001000ull) /* kernel half: never near a mapping */

typedef struct resolver {
    int calls;
    bool seen_ext_add, seen_memcpy;
    const char *refuse;    /* a name to pretend not to know */
} resolver_t;

static void *resolve(void *ud, const char *name)
{
    resolver_t *r = ud;
    if (r) {
        r->calls++;
        if (r->refuse && strcmp(name, r->refuse) == 0)
            return NULL;
    }
    if (strcmp(name, "ext_add") == 0) {
        if (r)
            r->seen_ext_add = true;
        return (void *)host_ext_add;
    }
    if (strcmp(name, "memcpy") == 0) {
        if (r)
            r->seen_memcpy = true;
        return (void *)memcpy;
    }
    if (strcmp(name, "ext_var") == 0)
        return &ext_var;
    if (strcmp(name, "ext_far") == 0)
        return FAR_ADDR;
    return NULL;
}

/* The rights of the mapping holding p, from /proc/self/maps ("r-xp"). */
static void perms_of(const void *p, char out[5])
{
    strcpy(out, "????");
    FILE *f = fopen("/proc/self/maps", "r");
    assert_non_null(f);
    char line[512];
    while (fgets(line, sizeof line, f)) {
        unsigned long lo, hi;
        char perms[5];
        if (sscanf(line, "%lx-%lx %4s", &lo, &hi, perms) == 3 && (uintptr_t)p >= lo && (uintptr_t)p < hi) {
            memcpy(out, perms, 5);
            break;
        }
    }
    fclose(f);
}

static eng_obj_t *load_ok(const uint8_t *b, size_t len, resolver_t *r)
{
    char err[256] = "";
    eng_obj_t *o = eng_obj_load(b, len, resolve, r, err, sizeof err);
    if (!o)
        fail_msg("load failed: %s", err);
    return o;
}

/* Loads b expecting failure; returns the message. */
static const char *load_bad(const uint8_t *b, size_t len, resolver_t *r)
{
    static char err[256];
    err[0] = 0;
    eng_obj_t *o = eng_obj_load(b, len, resolve, r, err, sizeof err);
    if (o) {
        eng_obj_free(o);
        fail_msg("a damaged object loaded");
    }
    assert_true(strncmp(err, "object: ", 8) == 0);
    return err;
}

#define SYM(o, type, name) ((type)eng_obj_symbol((o), (name)))

/* ---- Working objects ---- */

static int ref_sw(int a, int b)
{
    switch (a) {
    case 0: return a + b; case 1: return b - 7; case 2: return a * b; case 3: return b / 3;
    case 4: return b * 4; case 5: return b ^ 0x55; case 6: return b | 9; case 7: return b & 6;
    case 8: return -b; default: return 99;
    }
}

static void check_main(const char *cc, const char *flags)
{
    size_t len;
    uint8_t *b = build(cc, flags, src_main, "c", &len);
    resolver_t r = {0};
    eng_obj_t *o = load_ok(b, len, &r);
    free(b);    /* the loaded object must not need the bytes */

    int expect = 0;
    for (int i = 0; i < 10; i++)
        expect += i * i + 1 + i * i * i;
    assert_int_equal(SYM(o, int (*)(int), "sum_sq")(10), expect);
    assert_int_equal(SYM(o, int (*)(int), "sq")(7), 50);

    int (*sw)(int, int) = SYM(o, int (*)(int, int), "sw");
    for (int a = -2; a < 12; a++)
        assert_int_equal(sw(a, 1234), ref_sw(a, 1234));

    volatile double x = 1.75;
    double pd = SYM(o, double (*)(double), "poly")(x);
    assert_true(fabs(pd - (1.5 * x * x + 0.25 * x - 3.75)) < 1e-12);
    assert_true(SYM(o, float (*)(float), "flt")(2.0f) == 5.125f);

    int (*dispatch)(int, int) = SYM(o, int (*)(int, int), "dispatch");
    assert_int_equal(dispatch(0, 10), 11);
    assert_int_equal(dispatch(1, 10), 20);
    assert_int_equal(dispatch(2, 10), 7);
    assert_int_equal(dispatch(3, 10), 15);
    int (*const *tbl)(int) = SYM(o, int (*const *)(int), "tbl");   /* a local symbol */
    assert_non_null(tbl);
    assert_int_equal(tbl[1](21), 42);

    int *counter = SYM(o, int *, "counter"), *zeroed = SYM(o, int *, "zeroed");
    assert_int_equal(*counter, 5);
    assert_int_equal(*zeroed, 0);
    int (*bump)(int) = SYM(o, int (*)(int), "bump");
    assert_int_equal(bump(1), 6 + 2);
    assert_int_equal(bump(2), 8 + 6);
    assert_int_equal(*counter, 8);
    *counter = 100;
    *zeroed = 0;
    assert_int_equal(bump(0), 100);

    assert_ptr_equal(SYM(o, int *(*)(void), "addr_ext")(), &ext_var);
    assert_int_equal(SYM(o, int (*)(void), "read_ext")(), 77);
    assert_int_equal(SYM(o, int (*)(int), "use_ext")(3), 2 * (3 + 5 + 1000));
    assert_true(r.seen_ext_add);

    char buf[32] = {0};
    SYM(o, void (*)(char *, const char *, unsigned long), "cp")(buf, "hello, object", 14);
    assert_string_equal(buf, "hello, object");
    assert_true(r.seen_memcpy);

    /* Rights: code r-x, relocated constants r--, data rw-. */
    char p[5];
    perms_of((void *)dispatch, p);
    assert_string_equal(p, "r-xp");
    perms_of(tbl, p);
    assert_string_equal(p, "r--p");
    perms_of(counter, p);
    assert_string_equal(p, "rw-p");
    perms_of(zeroed, p);
    assert_string_equal(p, "rw-p");

    assert_null(eng_obj_symbol(o, "no_such_symbol"));
    assert_null(eng_obj_symbol(o, "ext_add"));    /* undefined here */
    assert_true(eng_obj_size_bytes(o) >= 3 * 4096);
    assert_int_equal(eng_obj_size_bytes(o) % 4096, 0);
    eng_obj_free(o);
}

static void test_gcc_pic(void **state) { (void)state; check_main("gcc", "-O2 -fPIC"); }
static void test_gcc_pic_O0(void **state) { (void)state; check_main("gcc", "-O0 -fPIC"); }
static void test_clang_pic(void **state) { (void)state; check_main("clang", "-O2 -fPIC"); }
static void test_clang_pic_O0(void **state) { (void)state; check_main("clang", "-O0 -fPIC"); }

static void check_nopic(const char *cc)
{
    size_t len;
    uint8_t *b = build(cc, "-O2 -fno-pic -mcmodel=small", src_nopic, "c", &len);
    assert_true(count_relocs(b, R_X86_64_32S) > 0);    /* else this test proves nothing */
    eng_obj_t *o = load_ok(b, len, NULL);
    free(b);
    int (*get)(int) = SYM(o, int (*)(int), "np_get");
    assert_int_equal(get(5), 18);
    assert_int_equal(get(13), 18);
    assert_int_equal(get(2), 8);
    assert_int_equal(SYM(o, int (*)(void), "np_hits")(), 3);
    assert_int_equal(SYM(o, int (*)(int), "np_ext")(9), 9 + 1 + 1000 + 1);
    int (*sw)(int, int) = SYM(o, int (*)(int, int), "np_sw");
    for (int a = -2; a < 12; a++)
        assert_int_equal(sw(a, -77), ref_sw(a, -77));
    eng_obj_free(o);
}

static void test_gcc_nopic(void **state) { (void)state; check_nopic("gcc"); }
static void test_clang_nopic(void **state) { (void)state; check_nopic("clang"); }

static void test_asm_types(void **state)
{
    (void)state;
    size_t len;
    uint8_t *b = build("gcc", "", asm_types, "s", &len);
    assert_int_equal(count_relocs(b, R_X86_64_PC32), 1);
    assert_int_equal(count_relocs(b, R_X86_64_PC64), 1);
    assert_int_equal(count_relocs(b, R_X86_64_NONE), 1);
    eng_obj_t *o = load_ok(b, len, NULL);
    free(b);
    /* The call's rel32 cannot reach host_ext_add: it goes through a stub. */
    assert_int_equal(SYM(o, int (*)(void), "pc32_call")(), 40 + 2 + 1000);
    uint8_t *target = SYM(o, uint8_t *, "target");
    int64_t pc64;
    uint64_t rel64;
    uint32_t abs32;
    memcpy(&pc64, SYM(o, void *, "pc64"), 8);
    memcpy(&rel64, SYM(o, void *, "rel64"), 8);
    memcpy(&abs32, SYM(o, void *, "abs32"), 4);
    assert_ptr_equal(SYM(o, uint8_t *, "pc64") + pc64, target);
    assert_int_equal(rel64, (uint64_t)(uintptr_t)target + 8);
    assert_int_equal(abs32, (uint64_t)(uintptr_t)target);
    assert_true(*(uint64_t *)target == 0x1122334455667788ull);
    eng_obj_free(o);
}

/* Values that do not fit a 32-bit field are refused, naming the symbol. */
static void test_out_of_range(void **state)
{
    (void)state;
    size_t len;
    uint8_t *b = build("gcc", "-O2 -fno-pic -mcmodel=small", src_far, "c", &len);
    assert_true(count_relocs(b, R_X86_64_32S) > 0);
    const char *e = load_bad(b, len, NULL);
    assert_non_null(strstr(e, "R_X86_64_32S value for symbol 'ext_far' does not fit in 32 bits"));
    free(b);

    b = build("gcc", "", asm_pc32_data, "s", &len);
    e = load_bad(b, len, NULL);    /* a data load never goes through a stub */
    assert_non_null(strstr(e, "R_X86_64_PC32 value for symbol 'ext_far' does not fit in 32 bits"));
    free(b);
}

/* Thousands of symbols: every one found, by name. */
static void test_many_symbols(void **state)
{
    (void)state;
    enum { N = 3000 };
    char *src = malloc(N * 64);
    assert_non_null(src);
    size_t n = 0;
    for (int i = 0; i < N; i++)
        n += (size_t)sprintf(src + n, "int f%d(void) { return %d; }\n", i, i * 7);
    size_t len;
    uint8_t *b = build("gcc", "-O1 -fPIC", src, "c", &len);
    free(src);
    eng_obj_t *o = load_ok(b, len, NULL);
    free(b);
    for (int i = 0; i < N; i++) {
        char name[16];
        snprintf(name, sizeof name, "f%d", i);
        int (*f)(void) = SYM(o, int (*)(void), name);
        assert_non_null(f);
        assert_int_equal(f(), i * 7);
    }
    assert_null(eng_obj_symbol(o, "f3000"));
    assert_null(eng_obj_symbol(o, ""));
    eng_obj_free(o);
}

/* Loading and freeing on several threads at once. */
static const uint8_t *mt_bytes;
static size_t mt_len;

static void *mt_worker(void *arg)
{
    (void)arg;
    intptr_t bad = 0;
    for (int i = 0; i < 40; i++) {
        char err[256];
        eng_obj_t *o = eng_obj_load(mt_bytes, mt_len, resolve, NULL, err, sizeof err);
        if (!o) {
            bad++;
            continue;
        }
        bad += SYM(o, int (*)(int), "bump")(1) != 8;
        bad += SYM(o, int (*)(int, int), "dispatch")(1, 4) != 8;
        eng_obj_free(o);
    }
    return (void *)bad;
}

static void test_threads(void **state)
{
    (void)state;
    size_t len;
    uint8_t *b = build("gcc", "-O2 -fPIC", src_main, "c", &len);
    mt_bytes = b;
    mt_len = len;
    pthread_t t[4];
    for (int i = 0; i < 4; i++)
        assert_int_equal(pthread_create(&t[i], NULL, mt_worker, NULL), 0);
    for (int i = 0; i < 4; i++) {
        void *bad;
        pthread_join(t[i], &bad);
        assert_int_equal((intptr_t)bad, 0);
    }
    free(b);
}

/* ---- Damaged objects ---- */

static uint8_t *main_obj(size_t *len) { return build("gcc", "-O2 -fPIC", src_main, "c", len); }

static void test_truncated(void **state)
{
    (void)state;
    size_t len;
    uint8_t *b = main_obj(&len);
    for (size_t n = 0; n < len; n++) {
        uint8_t *c = malloc(n ? n : 1);    /* exactly n bytes, so ASan sees any overread */
        memcpy(c, b, n);
        load_bad(c, n, NULL);
        free(c);
    }
    assert_non_null(strstr(load_bad(b, 10, NULL), "too short"));
    free(b);
}

static void test_section_headers(void **state)
{
    (void)state;
    size_t len;
    uint8_t *b = main_obj(&len);
    Elf64_Shdr s;
    size_t off = shdr_off(b, ".text", &s);
    assert_true(off > 0);
    b[off + offsetof(Elf64_Shdr, sh_offset) + 7] ^= 0x80;    /* offset far beyond the file */
    assert_non_null(strstr(load_bad(b, len, NULL), "beyond the file"));
    b[off + offsetof(Elf64_Shdr, sh_offset) + 7] ^= 0x80;

    /* Every byte of the table flipped in turn: refused or loaded, never a crash. */
    Elf64_Ehdr eh = ehdr_of(b);
    for (size_t i = eh.e_shoff; i < eh.e_shoff + (size_t)eh.e_shnum * sizeof(Elf64_Shdr); i++) {
        b[i] ^= 0xff;
        char err[256];
        eng_obj_t *o = eng_obj_load(b, len, resolve, NULL, err, sizeof err);
        if (o)
            eng_obj_free(o);
        else
            assert_true(strncmp(err, "object: ", 8) == 0);
        b[i] ^= 0xff;
    }
    eng_obj_free(load_ok(b, len, NULL));    /* restored */

    /* A name table that is not a string table, a wrong entry size. */
    off = shdr_off(b, ".shstrtab", &s);
    b[off + offsetof(Elf64_Shdr, sh_type)] = SHT_PROGBITS;
    assert_non_null(strstr(load_bad(b, len, NULL), "not SHT_STRTAB"));
    b[off + offsetof(Elf64_Shdr, sh_type)] = SHT_STRTAB;
    b[offsetof(Elf64_Ehdr, e_shentsize)] = 40;
    assert_non_null(strstr(load_bad(b, len, NULL), "section header size"));
    free(b);
}

/* Writes relocation k of .rela.text. */
static void set_rela(uint8_t *b, size_t k, const Elf64_Rela *r)
{
    Elf64_Shdr s;
    assert_true(shdr_off(b, ".rela.text", &s) > 0);
    memcpy(b + s.sh_offset + k * sizeof *r, r, sizeof *r);
}

static Elf64_Rela get_rela(const uint8_t *b, size_t k)
{
    Elf64_Shdr s;
    Elf64_Rela r;
    assert_true(shdr_off(b, ".rela.text", &s) > 0);
    memcpy(&r, b + s.sh_offset + k * sizeof r, sizeof r);
    return r;
}

static void test_bad_relocations(void **state)
{
    (void)state;
    size_t len;
    uint8_t *b = main_obj(&len);
    Elf64_Shdr text, symtab, rela;
    assert_true(shdr_off(b, ".text", &text) > 0);
    assert_true(shdr_off(b, ".symtab", &symtab) > 0);
    size_t rela_off = shdr_off(b, ".rela.text", &rela);
    Elf64_Rela orig = get_rela(b, 2), r = orig;
    char want[128];

    r.r_offset = text.sh_size + 0x100;
    set_rela(b, 2, &r);
    snprintf(want, sizeof want, "object: relocation 2 in .rela.text: offset 0x%llx beyond section .text (0x%llx bytes)",
             (unsigned long long)r.r_offset, (unsigned long long)text.sh_size);
    assert_string_equal(load_bad(b, len, NULL), want);
    r.r_offset = text.sh_size - 2;    /* straddles the end */
    set_rela(b, 2, &r);
    assert_non_null(strstr(load_bad(b, len, NULL), "beyond section .text"));

    unsigned nsyms = (unsigned)(symtab.sh_size / sizeof(Elf64_Sym));
    r = orig;
    r.r_info = ELF64_R_INFO(nsyms + 5, ELF64_R_TYPE(orig.r_info));
    set_rela(b, 2, &r);
    assert_non_null(strstr(load_bad(b, len, NULL), "symbol index"));

    r.r_info = ELF64_R_INFO(ELF64_R_SYM(orig.r_info), 254);
    set_rela(b, 2, &r);
    assert_non_null(strstr(load_bad(b, len, NULL), "type 254 is not supported"));
    r.r_info = ELF64_R_INFO(ELF64_R_SYM(orig.r_info), R_X86_64_GOTOFF64);
    set_rela(b, 2, &r);
    assert_non_null(strstr(load_bad(b, len, NULL), "type 25 is not supported"));
    set_rela(b, 2, &orig);

    /* SHT_REL is refused; so is a relocation section not tied to the symbol table. */
    b[rela_off + offsetof(Elf64_Shdr, sh_type)] = SHT_REL;
    assert_non_null(strstr(load_bad(b, len, NULL), "SHT_REL"));
    b[rela_off + offsetof(Elf64_Shdr, sh_type)] = SHT_RELA;
    Elf64_Word link = rela.sh_link + 1;
    memcpy(b + rela_off + offsetof(Elf64_Shdr, sh_link), &link, sizeof link);
    assert_non_null(strstr(load_bad(b, len, NULL), "is not the symbol table"));
    memcpy(b + rela_off + offsetof(Elf64_Shdr, sh_link), &rela.sh_link, sizeof link);
    eng_obj_free(load_ok(b, len, NULL));
    free(b);
}

/* The PC table as objpack.c stores it: addresses resolved to code offsets,
 * their relocations gone, read from the file and not mapped. The form LLVM
 * emits is refused, as are offsets outside the code and addresses left
 * without a value. */
static void test_pc_table(void **state)
{
    (void)state;
    size_t len, plen;
    uint8_t *raw = build("gcc", "", asm_pcs, "s", &len), *b;
    assert_int_equal(count_relocs(raw, R_X86_64_PC32), 3);
    assert_non_null(strstr(load_bad(raw, len, NULL), "wasmfn_pc: not a stored table"));
    char err[256] = "";
    if (!eng_obj_pack_pcs(raw, len, &b, &plen, err, sizeof err))
        fail_msg("pack failed: %s", err);
    assert_int_equal(count_relocs(b, R_X86_64_PC32), 0);
    assert_true(plen < len);
    eng_obj_t *o = load_ok(b, plen, NULL);
    uint32_t v = 0;
    assert_true(eng_obj_pc_value(o, (uintptr_t)SYM(o, void *, "pc_a"), &v));
    assert_int_equal(v, 7);
    assert_true(eng_obj_pc_value(o, (uintptr_t)SYM(o, void *, "pc_b"), &v));
    assert_int_equal(v, 9);
    assert_true(eng_obj_pc_value(o, (uintptr_t)SYM(o, void *, "pc_c"), &v));
    assert_int_equal(v, 9);
    assert_false(eng_obj_pc_value(o, (uintptr_t)SYM(o, void *, "pcfun"), &v));
    assert_false(eng_obj_pc_value(o, (uintptr_t)SYM(o, uint8_t *, "pc_a") + 1, &v));
    /* The code runs as before: 1 + 2 + 3. */
    int mem[3] = {1, 2, 3};
    assert_int_equal(SYM(o, int (*)(int *), "pcfun")(mem), 6);
    eng_obj_free(o);

    Elf64_Shdr s;
    assert_true(shdr_off(b, "wasmfn_pc", &s) > 0);
    assert_int_equal(s.sh_flags & SHF_ALLOC, 0);
    uint32_t w, keep;
    memcpy(&keep, b + s.sh_offset + 8, 4);  /* pc_b's word */
    w = 0x80000000u | 0x7ffffff0u;
    memcpy(b + s.sh_offset + 8, &w, 4);
    assert_non_null(strstr(load_bad(b, plen, NULL), "entry 2 points outside the code"));
    memcpy(b + s.sh_offset + 8, &keep, 4);
    memcpy(b + s.sh_offset + 16, &keep, 4); /* the last value becomes an address */
    assert_non_null(strstr(load_bad(b, plen, NULL), "the last addresses have no value"));
    /* A table whose size no file bounds (NOBITS), or that points at no code. */
    size_t off = shdr_off(b, "wasmfn_pc", &s);
    Elf64_Shdr h = s;
    h.sh_type = SHT_NOBITS;
    h.sh_size = UINT64_MAX - 3;
    memcpy(b + off, &h, sizeof h);
    assert_non_null(strstr(load_bad(b, plen, NULL), "wasmfn_pc: not a stored table"));
    h = s;
    h.sh_link = 0;
    memcpy(b + off, &h, sizeof h);
    assert_non_null(strstr(load_bad(b, plen, NULL), "wasmfn_pc: its section 0 is not loaded code"));
    free(b);

    /* A relocation that is not a PC32 word of the table: not packed. */
    uint8_t *c = malloc(len);
    memcpy(c, raw, len);
    off = shdr_off(c, ".relawasmfn_pc", &s);
    assert_true(off > 0);
    Elf64_Rela rel;
    memcpy(&rel, c + s.sh_offset, sizeof rel);
    rel.r_offset += 2;
    memcpy(c + s.sh_offset, &rel, sizeof rel);
    assert_false(eng_obj_pack_pcs(c, len, &b, &plen, err, sizeof err));
    assert_non_null(strstr(err, "relocation 0 is not a PC32 word of the table"));
    free(c);
    free(raw);
}

static void test_unresolved(void **state)
{
    (void)state;
    size_t len;
    uint8_t *b = main_obj(&len);
    resolver_t r = {.refuse = "ext_add"};
    const char *e = load_bad(b, len, &r);
    assert_non_null(strstr(e, "undefined symbol 'ext_add' is not resolved"));
    r.refuse = "memcpy";
    assert_non_null(strstr(load_bad(b, len, &r), "'memcpy'"));
    char err[256];
    assert_null(eng_obj_load(b, len, NULL, NULL, err, sizeof err));    /* no resolver at all */
    assert_non_null(strstr(err, "undefined symbol"));
    free(b);
}

static void test_wrong_kind(void **state)
{
    (void)state;
    size_t len;
    uint8_t *b = main_obj(&len);
    uint16_t v = EM_386;
    memcpy(b + offsetof(Elf64_Ehdr, e_machine), &v, 2);
    assert_non_null(strstr(load_bad(b, len, NULL), "machine 3 is not EM_X86_64"));
    v = EM_X86_64;
    memcpy(b + offsetof(Elf64_Ehdr, e_machine), &v, 2);
    v = ET_EXEC;
    memcpy(b + offsetof(Elf64_Ehdr, e_type), &v, 2);
    assert_non_null(strstr(load_bad(b, len, NULL), "not ET_REL"));
    v = ET_REL;
    memcpy(b + offsetof(Elf64_Ehdr, e_type), &v, 2);
    b[EI_CLASS] = ELFCLASS32;
    assert_non_null(strstr(load_bad(b, len, NULL), "ELFCLASS64"));
    b[EI_CLASS] = ELFCLASS64;
    b[EI_DATA] = ELFDATA2MSB;
    assert_non_null(strstr(load_bad(b, len, NULL), "little-endian"));
    b[EI_DATA] = ELFDATA2LSB;
    b[0] = 0;
    assert_non_null(strstr(load_bad(b, len, NULL), "bad magic"));
    free(b);

    /* A real shared object and executable are not relocatable objects. */
    const char *bins[] = {"/bin/sh", "/proc/self/exe"};
    for (int i = 0; i < 2; i++) {
        uint8_t *x = read_file(bins[i], &len);
        if (x)
            assert_non_null(strstr(load_bad(x, len, NULL), "not ET_REL"));
        free(x);
    }
}

/* Single-byte mutations: each loads (then is freed, never run) or is
 * refused with a message. Deterministic (fixed seed). */
static void test_mutations(void **state)
{
    (void)state;
    size_t len;
    uint8_t *b = main_obj(&len);
    uint8_t *c = malloc(len);
    uint64_t x = 0x9e3779b97f4a7c15ull;
    int loaded = 0, refused = 0;
    for (int i = 0; i < 4000; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        memcpy(c, b, len);
        size_t pos = (size_t)(x % len);
        uint8_t val = (uint8_t)(x >> 32);
        if (i & 1)    /* half of them inside the section header table, where damage matters most */
            pos = ehdr_of(b).e_shoff + (size_t)(x % (ehdr_of(b).e_shnum * sizeof(Elf64_Shdr)));
        c[pos] = val == c[pos] ? (uint8_t)(val + 1) : val;
        char err[256] = "";
        eng_obj_t *o = eng_obj_load(c, len, resolve, NULL, err, sizeof err);
        if (o) {
            loaded++;
            eng_obj_free(o);
        } else {
            refused++;
            assert_true(strncmp(err, "object: ", 8) == 0 && strlen(err) > 8);
        }
    }
    assert_true(loaded > 0 && refused > 0);
    free(c);
    free(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gcc_pic),
        cmocka_unit_test(test_gcc_pic_O0),
        cmocka_unit_test(test_clang_pic),
        cmocka_unit_test(test_clang_pic_O0),
        cmocka_unit_test(test_gcc_nopic),
        cmocka_unit_test(test_clang_nopic),
        cmocka_unit_test(test_asm_types),
        cmocka_unit_test(test_out_of_range),
        cmocka_unit_test(test_many_symbols),
        cmocka_unit_test(test_threads),
        cmocka_unit_test(test_truncated),
        cmocka_unit_test(test_section_headers),
        cmocka_unit_test(test_bad_relocations),
        cmocka_unit_test(test_pc_table),
        cmocka_unit_test(test_unresolved),
        cmocka_unit_test(test_wrong_kind),
        cmocka_unit_test(test_mutations),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
