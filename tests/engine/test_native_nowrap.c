/*
 * test_native_nowrap.c — native_nowrap.c on LLVM IR written by hand: which
 * zext(y + c) it turns into zext(x) + d after an access at x, and which it
 * must leave alone. The IR has the shape native_ir.c gives an access after
 * SROA: a GEP from the load of inst->mem0_data by zext(address) [+ offset].
 * (The end-to-end semantics near 4 GiB are in test_native_edges.c.)
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <llvm-c/Analysis.h>
#include <llvm-c/Core.h>
#include <llvm-c/IRReader.h>

#include "engine/native_llvm.h"

/* A function of one access block: the memory base, then BODY. */
#define FN(name, body)                                                                            \
    "define i32 @" name "(ptr %inst, i32 %y, i32 %n) {\n"                                         \
    "entry:\n"                                                                                    \
    "  %bp = getelementptr i8, ptr %inst, i64 " MEM0_OFF "\n"                                      \
    "  %base = load ptr, ptr %bp\n" body "}\n"

/* An access of one byte at i32 value V (named N). */
#define LOAD(n, v)                                                                                \
    "  %z" n " = zext i32 " v " to i64\n"                                                          \
    "  %p" n " = getelementptr inbounds i8, ptr %base, i64 %z" n "\n"                               \
    "  %l" n " = load i8, ptr %p" n "\n"

static char mem0_off[24];
#define MEM0_OFF "@OFF@"

/* The test module: one function per case. */
static const char ir[] =
    /* x = y + 8 accessed, then y + 9 and y + 8 + 65535: rebased on x */
    FN("rebase", "  %x = add i32 %y, 8\n" LOAD("a", "%x")
                 "  %y9 = add i32 %y, 9\n" LOAD("b", "%y9")
                 "  %yb = add i32 %y, 65543\n" LOAD("c", "%yb") "  ret i32 0\n")
    /* x accessed, then x + 100 */
    FN("same", LOAD("a", "%y") "  %x1 = add i32 %y, 100\n" LOAD("b", "%x1") "  ret i32 0\n")
    /* the access through the memarg offset: zext(y) + 16 */
    FN("offset", "  %zy = zext i32 %y to i64\n"
                 "  %o = add nuw i64 %zy, 16\n"
                 "  %po = getelementptr inbounds i8, ptr %base, i64 %o\n"
                 "  %lo = load i8, ptr %po\n"
                 "  %y4 = add i32 %y, 4\n" LOAD("b", "%y4") "  ret i32 0\n")
    /* a store counts as an access too */
    FN("store", "  %zs = zext i32 %y to i64\n"
                "  %ps = getelementptr inbounds i8, ptr %base, i64 %zs\n"
                "  store i8 1, ptr %ps\n"
                "  %y3 = add i32 %y, 3\n" LOAD("b", "%y3") "  ret i32 0\n")
    /* left alone: before any access; a page or more past; below; a
     * non-constant amount; an address from another base */
    FN("before", "  %y9 = add i32 %y, 9\n" LOAD("b", "%y9") LOAD("a", "%y") "  ret i32 0\n")
    FN("far", LOAD("a", "%y") "  %yf = add i32 %y, 65536\n" LOAD("b", "%yf") "  ret i32 0\n")
    FN("below", "  %x = add i32 %y, 16\n" LOAD("a", "%x")
                "  %y8 = add i32 %y, 8\n" LOAD("b", "%y8") "  ret i32 0\n")
    FN("variable", LOAD("a", "%y") "  %yn = add i32 %y, %n\n" LOAD("b", "%yn") "  ret i32 0\n")
    FN("other_base", "  %zq = zext i32 %y to i64\n"
                     "  %pq = getelementptr inbounds i8, ptr %inst, i64 %zq\n"
                     "  %lq = load i8, ptr %pq\n"
                     "  %y2 = add i32 %y, 2\n" LOAD("b", "%y2") "  ret i32 0\n")
    /* an address below zext(y) proves nothing about y */
    FN("neg_offset", "  %zy = zext i32 %y to i64\n"
                     "  %o = add i64 %zy, -16\n"
                     "  %po = getelementptr inbounds i8, ptr %base, i64 %o\n"
                     "  %lo = load i8, ptr %po\n"
                     "  %y4 = add i32 %y, 4\n" LOAD("b", "%y4") "  ret i32 0\n")
    /* across blocks: into a block whose only predecessor did the access
     * (kept), and into one with two predecessors (not) */
    FN("blocks", LOAD("a", "%y")
                 "  %c = icmp eq i32 %n, 0\n"
                 "  br i1 %c, label %one, label %two\n"
                 "one:\n"
                 "  %y5 = add i32 %y, 5\n" LOAD("b", "%y5")
                 "  br label %two\n"
                 "two:\n"
                 "  %y6 = add i32 %y, 6\n" LOAD("c", "%y6") "  ret i32 0\n");

static char *module_text(void)
{
    size_t n = strlen(ir), k = strlen(MEM0_OFF), m = strlen(mem0_off);
    char *out = malloc(n * 2 + 1), *o = out;
    assert_non_null(out);
    for (const char *p = ir; *p;) {
        if (strncmp(p, MEM0_OFF, k) == 0) {
            memcpy(o, mem0_off, m);
            o += m;
            p += k;
        } else {
            *o++ = *p++;
        }
    }
    *o = 0;
    return out;
}

static nc_module_t nc;

static int setup(void **state)
{
    (void)state;
    snprintf(mem0_off, sizeof mem0_off, "%zu", offsetof(eng_instance_t, mem0_data));
    nc.ctx = LLVMContextCreate();
    char *text = module_text();
    LLVMMemoryBufferRef buf = LLVMCreateMemoryBufferWithMemoryRangeCopy(text, strlen(text), "ir");
    free(text);
    char *msg = NULL;
    if (LLVMParseIRInContext(nc.ctx, buf, &nc.mod, &msg)) {
        fprintf(stderr, "IR: %s\n", msg ? msg : "?");
        return -1;
    }
    nc.t_i32 = LLVMInt32TypeInContext(nc.ctx);
    nc_mark_no_wrap(&nc);
    char *err = NULL;
    if (LLVMVerifyModule(nc.mod, LLVMReturnStatusAction, &err)) {
        fprintf(stderr, "after nc_mark_no_wrap: %s\n", err ? err : "?");
        return -1;
    }
    LLVMDisposeMessage(err);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    LLVMDisposeModule(nc.mod);
    LLVMContextDispose(nc.ctx);
    return 0;
}

/* The function's text after the pass. */
static char *fn_text(const char *name)
{
    LLVMValueRef fn = LLVMGetNamedFunction(nc.mod, name);
    assert_non_null(fn);
    return LLVMPrintValueToString(fn);
}

/* Whether access N's address is now zext(X) + D ("%z" N gone, and the
 * GEP "%p" N takes an add nuw nsw of D to a zext of X). */
static bool rebased(const char *text, const char *n, const char *x, long d)
{
    char zext[32], gep[64];
    snprintf(zext, sizeof zext, "%%z%s = zext", n);
    if (strstr(text, zext))
        return false;
    snprintf(gep, sizeof gep, "%%p%s = getelementptr inbounds i8, ptr %%base, i64 %%", n);
    const char *g = strstr(text, gep);
    if (!g)
        fail_msg("no %%p%s in\n%s", n, text);
    /* the add's name, then its definition */
    char name[32];
    if (sscanf(g + strlen(gep), "%31[0-9a-z_.]", name) != 1)
        fail_msg("cannot read %%p%s's index", n);
    char want[96];
    snprintf(want, sizeof want, "%%%s = add nuw nsw i64 %%", name);
    const char *a = strstr(text, want);
    if (!a)
        return false;
    char zname[32];
    long got;
    if (sscanf(a + strlen(want), "%31[0-9a-z_.], %ld", zname, &got) != 2 || got != d)
        return false;
    char zdef[96];
    snprintf(zdef, sizeof zdef, "%%%s = zext i32 %s to i64", zname, x);
    return strstr(text, zdef) != NULL;
}

/* Access N of function FN is now zext(X) + D; with X NULL, it keeps its
 * own zext ("%zN"), untouched. */
static void expect(const char *fn, const char *n, const char *x, long d)
{
    char *t = fn_text(fn);
    if (x && !rebased(t, n, x, d))
        fail_msg("%s: access %s should be zext(%s) + %ld:\n%s", fn, n, x, d, t);
    char zext[32];
    snprintf(zext, sizeof zext, "%%z%s = zext", n);
    if (!x && !strstr(t, zext))
        fail_msg("%s: access %s should be left alone:\n%s", fn, n, t);
    LLVMDisposeMessage(t);
}

static void test_rebased(void **state)
{
    (void)state;
    expect("rebase", "b", "%x", 1);
    expect("rebase", "c", "%x", 65535);
    expect("same", "b", "%y", 100);
    expect("offset", "b", "%y", 4);
    expect("store", "b", "%y", 3);
    expect("blocks", "b", "%y", 5);
}

static void test_left_alone(void **state)
{
    (void)state;
    expect("before", "b", NULL, 0);
    expect("far", "b", NULL, 0);
    expect("below", "b", NULL, 0);
    expect("variable", "b", NULL, 0);
    expect("other_base", "b", NULL, 0);
    expect("neg_offset", "b", NULL, 0);
    expect("blocks", "c", NULL, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rebased),
        cmocka_unit_test(test_left_alone),
    };
    return cmocka_run_group_tests_name("test_native_nowrap", tests, setup, teardown);
}
