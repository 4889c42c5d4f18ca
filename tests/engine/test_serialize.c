/*
 * test_serialize.c — compiled modules to bytes and back
 * (src/engine/serialize.c): a deserialised module behaves exactly like the
 * one compiled from the .wasm (every spec-suite module that compiles and
 * needs no imports, plus the module below), serialising it again gives the
 * same bytes, and every damaged, truncated, stale or forged form is refused
 * with a message instead of crashing.
 *
 * The module below was assembled with `wat2wasm --debug-names` (bytes in
 * mod_ops); it touches every group of internal instructions:
 *
 * (module
 *   (type $ii (func (param i32) (result i32)))
 *   (memory (export "memory") 1 2)
 *   (table $t 4 funcref)
 *   (table $e 2 externref)
 *   (global $g (mut i32) (i32.const 5))
 *   (global $c i64 (i64.const -3))
 *   (data $d (i32.const 8) "serialise me")
 *   (data $p "passive")
 *   (elem (i32.const 0) func $dbl $inc)
 *   (elem $pe func $inc)
 *   (func $dbl (type $ii) (i32.mul (local.get 0) (i32.const 2)))
 *   (func $inc (type $ii) (i32.add (local.get 0) (i32.const 1)))
 *   (func $fib (param $n i32) (result i64)
 *     (if (result i64) (i32.lt_s (local.get $n) (i32.const 2))
 *       (then (i64.extend_i32_u (local.get $n)))
 *       (else (i64.add (call $fib (i32.sub (local.get $n) (i32.const 1)))
 *                      (call $fib (i32.sub (local.get $n) (i32.const 2)))))))
 *   (func (export "fib20") (result i64) (call $fib (i32.const 20)))
 *   (func (export "loop") (result i32) (local $i i32) (local $s i32)
 *     (block $out (loop $l
 *       (br_if $out (i32.ge_u (local.get $i) (i32.const 1000)))
 *       (local.set $s (i32.add (local.get $s) (local.get $i)))
 *       (local.set $i (i32.add (local.get $i) (i32.const 1)))
 *       (br $l)))
 *     (local.get $s))
 *   (func (export "switch") (result i32) (local $i i32) (local $r i32)
 *     (loop $l
 *       (block $b2 (block $b1 (block $b0
 *         (br_table $b0 $b1 $b2 (local.get $i)))
 *         (local.set $r (i32.add (local.get $r) (i32.const 1))) (br $b2))
 *         (local.set $r (i32.add (local.get $r) (i32.const 10))))
 *       (local.set $i (i32.add (local.get $i) (i32.const 1)))
 *       (br_if $l (i32.lt_u (local.get $i) (i32.const 5))))
 *     (local.get $r))
 *   (func (export "indirect") (result i32)
 *     (i32.add (call_indirect (type $ii) (i32.const 20) (i32.const 0))
 *              (call_indirect (type $ii) (i32.const 20) (i32.const 1))))
 *   (func (export "mem") (result i64)
 *     (memory.fill (i32.const 100) (i32.const 7) (i32.const 16))
 *     (memory.copy (i32.const 200) (i32.const 8) (i32.const 12))
 *     (memory.init $p (i32.const 300) (i32.const 0) (i32.const 7))
 *     (data.drop $p)
 *     (i64.store offset=4 (i32.const 400) (i64.load (i32.const 200)))
 *     (i64.add (i64.load8_u (i32.const 105)) (i64.load offset=4 (i32.const 400))))
 *   (func (export "grow") (result i32) (memory.grow (i32.const 1)))
 *   (func (export "size") (result i32) (memory.size))
 *   (func (export "tables") (result i32)
 *     (table.init $t $pe (i32.const 2) (i32.const 0) (i32.const 1))
 *     (elem.drop $pe)
 *     (table.copy $t $t (i32.const 3) (i32.const 0) (i32.const 1))
 *     (drop (table.grow $t (ref.func $dbl) (i32.const 2)))
 *     (table.fill $t (i32.const 4) (ref.null func) (i32.const 1))
 *     (table.set $e (i32.const 1) (table.get $e (i32.const 0)))
 *     (i32.add (table.size $t)
 *       (i32.add (ref.is_null (table.get $t (i32.const 4)))
 *                (call_indirect (type $ii) (i32.const 1) (i32.const 3)))))
 *   (func (export "globals") (result i64)
 *     (global.set $g (i32.add (global.get $g) (i32.const 1)))
 *     (i64.add (i64.extend_i32_s (global.get $g)) (global.get $c)))
 *   (func (export "floats") (result f64)
 *     (local $x f32)
 *     (local.set $x (f32.sqrt (f32.const 2)))
 *     (f64.add (f64.promote_f32 (f32.nearest (local.get $x)))
 *              (select (f64.const 1.5) (f64.const -2.5) (i32.const 0))))
 *   (func (export "conv") (result i32) (i32.trunc_f64_s (f64.const 1e10)))
 *   (func (export "div0") (result i32) (i32.div_s (i32.const 1) (global.get $g)))
 *   (func (export "trap") (unreachable))
 *   (func (export "multi") (result i32 i64) (i32.const 1) (i64.const 2))
 *   (func (export "params") (param i32 i64) (result i64) (i64.add (i64.extend_i32_u (local.get 0)) (local.get 1)))
 *   (func (export "oob") (result i32) (i32.load (i32.const 200000)))
 *   (func (export "spin") (loop $l (br $l)))
 * )
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <glob.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/internal.h"
#include "engine/ops.h"

static const uint8_t mod_ops[] = {
  0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, 0x01, 0x25, 0x08, 0x60,
  0x01, 0x7f, 0x01, 0x7f, 0x60, 0x01, 0x7f, 0x01, 0x7e, 0x60, 0x00, 0x01,
  0x7e, 0x60, 0x00, 0x01, 0x7f, 0x60, 0x00, 0x01, 0x7c, 0x60, 0x00, 0x00,
  0x60, 0x00, 0x02, 0x7f, 0x7e, 0x60, 0x02, 0x7f, 0x7e, 0x01, 0x7e, 0x03,
  0x15, 0x14, 0x00, 0x00, 0x01, 0x02, 0x03, 0x03, 0x03, 0x02, 0x03, 0x03,
  0x03, 0x02, 0x04, 0x03, 0x03, 0x05, 0x06, 0x07, 0x03, 0x05, 0x04, 0x07,
  0x02, 0x70, 0x00, 0x04, 0x6f, 0x00, 0x02, 0x05, 0x04, 0x01, 0x01, 0x01,
  0x02, 0x06, 0x0b, 0x02, 0x7f, 0x01, 0x41, 0x05, 0x0b, 0x7e, 0x00, 0x42,
  0x7d, 0x0b, 0x07, 0x90, 0x01, 0x12, 0x06, 0x6d, 0x65, 0x6d, 0x6f, 0x72,
  0x79, 0x02, 0x00, 0x05, 0x66, 0x69, 0x62, 0x32, 0x30, 0x00, 0x03, 0x04,
  0x6c, 0x6f, 0x6f, 0x70, 0x00, 0x04, 0x06, 0x73, 0x77, 0x69, 0x74, 0x63,
  0x68, 0x00, 0x05, 0x08, 0x69, 0x6e, 0x64, 0x69, 0x72, 0x65, 0x63, 0x74,
  0x00, 0x06, 0x03, 0x6d, 0x65, 0x6d, 0x00, 0x07, 0x04, 0x67, 0x72, 0x6f,
  0x77, 0x00, 0x08, 0x04, 0x73, 0x69, 0x7a, 0x65, 0x00, 0x09, 0x06, 0x74,
  0x61, 0x62, 0x6c, 0x65, 0x73, 0x00, 0x0a, 0x07, 0x67, 0x6c, 0x6f, 0x62,
  0x61, 0x6c, 0x73, 0x00, 0x0b, 0x06, 0x66, 0x6c, 0x6f, 0x61, 0x74, 0x73,
  0x00, 0x0c, 0x04, 0x63, 0x6f, 0x6e, 0x76, 0x00, 0x0d, 0x04, 0x64, 0x69,
  0x76, 0x30, 0x00, 0x0e, 0x04, 0x74, 0x72, 0x61, 0x70, 0x00, 0x0f, 0x05,
  0x6d, 0x75, 0x6c, 0x74, 0x69, 0x00, 0x10, 0x06, 0x70, 0x61, 0x72, 0x61,
  0x6d, 0x73, 0x00, 0x11, 0x03, 0x6f, 0x6f, 0x62, 0x00, 0x12, 0x04, 0x73,
  0x70, 0x69, 0x6e, 0x00, 0x13, 0x09, 0x0c, 0x02, 0x00, 0x41, 0x00, 0x0b,
  0x02, 0x00, 0x01, 0x01, 0x00, 0x01, 0x01, 0x0c, 0x01, 0x02, 0x0a, 0xa6,
  0x03, 0x14, 0x07, 0x00, 0x20, 0x00, 0x41, 0x02, 0x6c, 0x0b, 0x07, 0x00,
  0x20, 0x00, 0x41, 0x01, 0x6a, 0x0b, 0x1d, 0x00, 0x20, 0x00, 0x41, 0x02,
  0x48, 0x04, 0x7e, 0x20, 0x00, 0xad, 0x05, 0x20, 0x00, 0x41, 0x01, 0x6b,
  0x10, 0x02, 0x20, 0x00, 0x41, 0x02, 0x6b, 0x10, 0x02, 0x7c, 0x0b, 0x0b,
  0x06, 0x00, 0x41, 0x14, 0x10, 0x02, 0x0b, 0x24, 0x01, 0x02, 0x7f, 0x02,
  0x40, 0x03, 0x40, 0x20, 0x00, 0x41, 0xe8, 0x07, 0x4f, 0x0d, 0x01, 0x20,
  0x01, 0x20, 0x00, 0x6a, 0x21, 0x01, 0x20, 0x00, 0x41, 0x01, 0x6a, 0x21,
  0x00, 0x0c, 0x00, 0x0b, 0x0b, 0x20, 0x01, 0x0b, 0x37, 0x01, 0x02, 0x7f,
  0x03, 0x40, 0x02, 0x40, 0x02, 0x40, 0x02, 0x40, 0x20, 0x00, 0x0e, 0x02,
  0x00, 0x01, 0x02, 0x0b, 0x20, 0x01, 0x41, 0x01, 0x6a, 0x21, 0x01, 0x0c,
  0x01, 0x0b, 0x20, 0x01, 0x41, 0x0a, 0x6a, 0x21, 0x01, 0x0b, 0x20, 0x00,
  0x41, 0x01, 0x6a, 0x21, 0x00, 0x20, 0x00, 0x41, 0x05, 0x49, 0x0d, 0x00,
  0x0b, 0x20, 0x01, 0x0b, 0x11, 0x00, 0x41, 0x14, 0x41, 0x00, 0x11, 0x00,
  0x00, 0x41, 0x14, 0x41, 0x01, 0x11, 0x00, 0x00, 0x6a, 0x0b, 0x3e, 0x00,
  0x41, 0xe4, 0x00, 0x41, 0x07, 0x41, 0x10, 0xfc, 0x0b, 0x00, 0x41, 0xc8,
  0x01, 0x41, 0x08, 0x41, 0x0c, 0xfc, 0x0a, 0x00, 0x00, 0x41, 0xac, 0x02,
  0x41, 0x00, 0x41, 0x07, 0xfc, 0x08, 0x01, 0x00, 0xfc, 0x09, 0x01, 0x41,
  0x90, 0x03, 0x41, 0xc8, 0x01, 0x29, 0x03, 0x00, 0x37, 0x03, 0x04, 0x41,
  0xe9, 0x00, 0x31, 0x00, 0x00, 0x41, 0x90, 0x03, 0x29, 0x03, 0x04, 0x7c,
  0x0b, 0x06, 0x00, 0x41, 0x01, 0x40, 0x00, 0x0b, 0x04, 0x00, 0x3f, 0x00,
  0x0b, 0x43, 0x00, 0x41, 0x02, 0x41, 0x00, 0x41, 0x01, 0xfc, 0x0c, 0x01,
  0x00, 0xfc, 0x0d, 0x01, 0x41, 0x03, 0x41, 0x00, 0x41, 0x01, 0xfc, 0x0e,
  0x00, 0x00, 0xd2, 0x00, 0x41, 0x02, 0xfc, 0x0f, 0x00, 0x1a, 0x41, 0x04,
  0xd0, 0x70, 0x41, 0x01, 0xfc, 0x11, 0x00, 0x41, 0x01, 0x41, 0x00, 0x25,
  0x01, 0x26, 0x01, 0xfc, 0x10, 0x00, 0x41, 0x04, 0x25, 0x00, 0xd1, 0x41,
  0x01, 0x41, 0x03, 0x11, 0x00, 0x00, 0x6a, 0x6a, 0x0b, 0x0f, 0x00, 0x23,
  0x00, 0x41, 0x01, 0x6a, 0x24, 0x00, 0x23, 0x00, 0xac, 0x23, 0x01, 0x7c,
  0x0b, 0x26, 0x01, 0x01, 0x7d, 0x43, 0x00, 0x00, 0x00, 0x40, 0x91, 0x21,
  0x00, 0x20, 0x00, 0x90, 0xbb, 0x44, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
  0xf8, 0x3f, 0x44, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x04, 0xc0, 0x41,
  0x00, 0x1b, 0xa0, 0x0b, 0x0c, 0x00, 0x44, 0x00, 0x00, 0x00, 0x20, 0x5f,
  0xa0, 0x02, 0x42, 0xaa, 0x0b, 0x07, 0x00, 0x41, 0x01, 0x23, 0x00, 0x6d,
  0x0b, 0x03, 0x00, 0x00, 0x0b, 0x06, 0x00, 0x41, 0x01, 0x42, 0x02, 0x0b,
  0x08, 0x00, 0x20, 0x00, 0xad, 0x20, 0x01, 0x7c, 0x0b, 0x09, 0x00, 0x41,
  0xc0, 0x9a, 0x0c, 0x28, 0x02, 0x00, 0x0b, 0x07, 0x00, 0x03, 0x40, 0x0c,
  0x00, 0x0b, 0x0b, 0x0b, 0x1b, 0x02, 0x00, 0x41, 0x08, 0x0b, 0x0c, 0x73,
  0x65, 0x72, 0x69, 0x61, 0x6c, 0x69, 0x73, 0x65, 0x20, 0x6d, 0x65, 0x01,
  0x07, 0x70, 0x61, 0x73, 0x73, 0x69, 0x76, 0x65, 0x00, 0x7d, 0x04, 0x6e,
  0x61, 0x6d, 0x65, 0x01, 0x10, 0x03, 0x00, 0x03, 0x64, 0x62, 0x6c, 0x01,
  0x03, 0x69, 0x6e, 0x63, 0x02, 0x03, 0x66, 0x69, 0x62, 0x02, 0x3b, 0x14,
  0x00, 0x00, 0x01, 0x00, 0x02, 0x01, 0x00, 0x01, 0x6e, 0x03, 0x00, 0x04,
  0x02, 0x00, 0x01, 0x69, 0x01, 0x01, 0x73, 0x05, 0x02, 0x00, 0x01, 0x69,
  0x01, 0x01, 0x72, 0x06, 0x00, 0x07, 0x00, 0x08, 0x00, 0x09, 0x00, 0x0a,
  0x00, 0x0b, 0x00, 0x0c, 0x01, 0x00, 0x01, 0x78, 0x0d, 0x00, 0x0e, 0x00,
  0x0f, 0x00, 0x10, 0x00, 0x11, 0x00, 0x12, 0x00, 0x13, 0x00, 0x04, 0x05,
  0x01, 0x00, 0x02, 0x69, 0x69, 0x05, 0x07, 0x02, 0x00, 0x01, 0x74, 0x01,
  0x01, 0x65, 0x07, 0x07, 0x02, 0x00, 0x01, 0x67, 0x01, 0x01, 0x63, 0x08,
  0x05, 0x01, 0x01, 0x02, 0x70, 0x65, 0x09, 0x07, 0x02, 0x00, 0x01, 0x64,
  0x01, 0x01, 0x70
};

static eng_module_t *compile(const uint8_t *b, size_t n)
{
    char err[ENG_ERR_MAX];
    eng_module_t *m = eng_module_new(b, n, err, sizeof err);
    if (!m)
        fail_msg("compile: %s", err);
    return m;
}

static void serialize(const eng_module_t *m, uint8_t **out, size_t *len)
{
    char err[ENG_ERR_MAX];
    if (!eng_module_serialize(m, out, len, err, sizeof err))
        fail_msg("serialize: %s", err);
}

/* Recomputes the trailing SHA-256, as a forger would. */
static void rehash(uint8_t *buf, size_t len)
{
    unsigned mdlen;
    EVP_Digest(buf, len - 32, buf + len - 32, &mdlen, EVP_sha256(), NULL);
}

/* ---- behaviour ---- */

typedef struct outcome {
    char text[4096];
    size_t used;
    bool timed_out;
} outcome_t;

static void note(outcome_t *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void note(outcome_t *o, const char *fmt, ...)
{
    if (o->used >= sizeof o->text - 1)
        return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(o->text + o->used, sizeof o->text - o->used, fmt, ap);
    va_end(ap);
    if (n > 0)
        o->used += (size_t)n < sizeof o->text - o->used ? (size_t)n : sizeof o->text - o->used - 1;
}

/* Instantiates m (no imports) and calls every exported function in order
 * with zero arguments, writing what happened (results bit-exactly, traps,
 * a hash of memory at the end) into o. */
static void run_module(const eng_module_t *m, outcome_t *o)
{
    char err[ENG_ERR_MAX];
    memset(o, 0, sizeof *o);
    eng_store_t *s = eng_store_new();
    eng_exec_t *x = eng_exec_new(256 * 1024);
    eng_store_set_memory_limit(s, 64ull << 20);
    eng_exec_set_deadline(x, eng_now_ns() + 200000000ull);
    eng_instance_t *inst = eng_instance_new(s, m, NULL, 0, x, err, sizeof err);
    if (!inst) {
        note(o, "instantiate: %s\n", err);
        goto out;
    }
    for (uint32_t i = 0; i < eng_module_export_count(m); i++) {
        eng_extern_desc_t d;
        eng_module_export(m, i, &d);
        if (d.kind != ENG_EXTERN_FUNC)
            continue;
        eng_func_t *f = eng_instance_func(inst, d.name);
        if (!f)
            continue;
        eng_val_t args[64] = {0}, res[64];
        if (eng_func_param_slots(f) > 64 || eng_func_result_slots(f) > 64)
            continue;
        eng_exec_set_deadline(x, eng_now_ns() + 200000000ull);
        eng_trap_t t = eng_call(x, f, args, res);
        note(o, "%s:", d.name);
        if (t == ENG_TRAP_DEADLINE) {
            note(o, " deadline\n");
            o->timed_out = true; /* timing-dependent: stop here */
            break;
        }
        if (t != ENG_OK) {
            note(o, " trap %d %s\n", (int)t, eng_exec_trap_message(x));
            continue;
        }
        for (uint32_t k = 0, slot = 0; k < eng_func_result_count(f); k++, slot++) {
            eng_valtype_t vt = eng_func_result_type(f, k);
            if (vt == ENG_FUNCREF || vt == ENG_EXTERNREF)
                note(o, " ref:%d", res[slot].ref != NULL);
            else if (vt == ENG_I32 || vt == ENG_F32) /* the upper half is unspecified */
                note(o, " %x", res[slot].i32);
            else
                note(o, " %llx", (unsigned long long)res[slot].i64);
            if (vt == ENG_V128) /* two slots (engine.h) */
                note(o, ":%llx", (unsigned long long)res[++slot].i64);
        }
        note(o, "\n");
    }
    if (m->nmems) {
        eng_memory_t *mem = inst->mems[0];
        uint64_t h = 1469598103934665603ull;
        for (uint64_t k = 0; k < eng_memory_size(mem); k++)
            h = (h ^ eng_memory_data(mem)[k]) * 1099511628211ull;
        note(o, "memory %llu bytes %llx\n", (unsigned long long)eng_memory_size(mem),
             (unsigned long long)h);
    }
out:
    eng_exec_free(x);
    eng_store_free(s);
}

/* Serialises m, deserialises it, checks the bytes of a second round trip
 * are identical and (for modules without imports) that both behave alike.
 * Returns false when the original could not run to compare. */
static bool check_round_trip(const eng_module_t *m, const char *what)
{
    uint8_t *b1, *b2;
    size_t n1, n2;
    char err[ENG_ERR_MAX];
    serialize(m, &b1, &n1);
    eng_module_t *d = eng_module_deserialize(b1, n1, err, sizeof err);
    if (!d)
        fail_msg("%s: deserialize: %s", what, err);
    serialize(d, &b2, &n2);
    if (n1 != n2 || memcmp(b1, b2, n1) != 0)
        fail_msg("%s: a second round trip changed the bytes", what);
    free(b1);
    free(b2);
    bool compared = false;
    if (eng_module_import_count(m) == 0) {
        static outcome_t a, b;
        run_module(m, &a);
        run_module(d, &b);
        /* A call that ran into the deadline ends the comparison there; if
         * only one side did, timing decided and the run does not count. */
        if (strcmp(a.text, b.text) == 0)
            compared = true;
        else if (!a.timed_out && !b.timed_out)
            fail_msg("%s: behaviour differs\ncompiled:\n%s\ndeserialised:\n%s", what, a.text,
                     b.text);
    }
    eng_module_free(d);
    return compared;
}

static void test_shapes_complete(void **state)
{
    (void)state;
    assert_true(eng_serial_shapes_complete());
}

static void test_round_trip_ops(void **state)
{
    (void)state;
    eng_module_t *m = compile(mod_ops, sizeof mod_ops);
    assert_true(check_round_trip(m, "mod_ops"));
    /* The results themselves, so that "behaves the same" is not "both
     * broken the same way". */
    uint8_t *b;
    size_t n;
    char err[ENG_ERR_MAX];
    serialize(m, &b, &n);
    eng_module_t *d = eng_module_deserialize(b, n, err, sizeof err);
    assert_non_null(d);
    outcome_t o;
    run_module(d, &o);
    assert_non_null(strstr(o.text, "fib20: 1a6d\n"));     /* fib(20) = 6765 */
    assert_non_null(strstr(o.text, "loop: 79f2c\n"));     /* 0 + ... + 999 */
    assert_non_null(strstr(o.text, "switch: b\n"));       /* 1 + 10 + default x3 */
    assert_non_null(strstr(o.text, "grow: 1\nsize: 2\n"));
    assert_non_null(strstr(o.text, "tables: 9\n"));       /* size 6 + null 1 + dbl(1) */
    assert_non_null(strstr(o.text, "globals: 3\n"));      /* 6 + -3 */
    assert_non_null(strstr(o.text, "floats: bff8000000000000\n")); /* 1.0 + -2.5 */
    assert_non_null(strstr(o.text, "spin: deadline\n"));
    assert_non_null(strstr(o.text, "indirect: 3d\n"));    /* 40 + 21 */
    assert_non_null(strstr(o.text, "div0: 0\n"));          /* 1 / 6 */
    assert_non_null(strstr(o.text, "trap: trap 1"));
    assert_non_null(strstr(o.text, "oob: trap 2"));
    assert_non_null(strstr(o.text, "conv: trap 4"));
    assert_non_null(strstr(o.text, "multi: 1 2\n"));
    eng_module_free(d);
    eng_module_free(m);
    free(b);
}

static void test_round_trip_spec(void **state)
{
    (void)state;
    glob_t g;
    if (glob("build/spec/*/*.wasm", 0, NULL, &g) != 0) {
        print_message("build/spec has no modules (run `make spec` first): skipped\n");
        skip();
    }
    size_t compiled = 0, compared = 0;
    for (size_t i = 0; i < g.gl_pathc; i++) {
        FILE *f = fopen(g.gl_pathv[i], "rb");
        if (!f)
            continue;
        static uint8_t buf[4 << 20];
        size_t n = fread(buf, 1, sizeof buf, f);
        fclose(f);
        char err[ENG_ERR_MAX];
        eng_module_t *m = eng_module_new(buf, n, err, sizeof err);
        if (!m)
            continue; /* the suite's invalid and malformed modules */
        compiled++;
        compared += check_round_trip(m, g.gl_pathv[i]);
        eng_module_free(m);
    }
    print_message("%zu spec modules round-tripped, %zu of them run and compared\n", compiled,
                  compared);
    globfree(&g);
    assert_true(compiled > 500);
    assert_true(compared > 200);
}

static void test_truncated(void **state)
{
    (void)state;
    eng_module_t *m = compile(mod_ops, sizeof mod_ops);
    uint8_t *b;
    size_t n;
    serialize(m, &b, &n);
    char err[ENG_ERR_MAX];
    for (size_t len = 0; len < n; len++) {
        eng_module_t *d = eng_module_deserialize(b, len, err, sizeof err);
        if (d)
            fail_msg("a prefix of %zu of %zu bytes was accepted", len, n);
        assert_true(strncmp(err, "serialised module: ", 19) == 0);
    }
    /* One byte more is refused too. */
    uint8_t *longer = malloc(n + 1);
    memcpy(longer, b, n);
    longer[n] = 0;
    assert_null(eng_module_deserialize(longer, n + 1, err, sizeof err));
    free(longer);
    free(b);
    eng_module_free(m);
}

static void test_flipped_byte(void **state)
{
    (void)state;
    eng_module_t *m = compile(mod_ops, sizeof mod_ops);
    uint8_t *b;
    size_t n;
    serialize(m, &b, &n);
    char err[ENG_ERR_MAX];
    for (size_t i = 0; i < n; i++) {
        b[i] ^= 0x20;
        eng_module_t *d = eng_module_deserialize(b, n, err, sizeof err);
        if (d)
            fail_msg("byte %zu flipped was accepted", i);
        b[i] ^= 0x20;
    }
    /* Past the header, the checksum is what catches it. */
    b[n / 2] ^= 1;
    assert_null(eng_module_deserialize(b, n, err, sizeof err));
    assert_non_null(strstr(err, "checksum mismatch"));
    free(b);
    eng_module_free(m);
}

static void test_stale(void **state)
{
    (void)state;
    eng_module_t *m = compile(mod_ops, sizeof mod_ops);
    uint8_t *b;
    size_t n;
    serialize(m, &b, &n);
    char err[ENG_ERR_MAX];
    b[8] += 1; /* format version */
    rehash(b, n);
    assert_null(eng_module_deserialize(b, n, err, sizeof err));
    assert_non_null(strstr(err, "stale: format version"));
    b[8] -= 1;
    b[12] ^= 0xFF; /* engine build id */
    rehash(b, n);
    assert_null(eng_module_deserialize(b, n, err, sizeof err));
    assert_non_null(strstr(err, "stale: made by another build"));
    b[12] ^= 0xFF;
    b[0] = 'X';
    rehash(b, n);
    assert_null(eng_module_deserialize(b, n, err, sizeof err));
    assert_non_null(strstr(err, "bad magic"));
    b[0] = 'W';
    rehash(b, n);
    eng_module_t *d = eng_module_deserialize(b, n, err, sizeof err);
    assert_non_null(d); /* restored: accepted again */
    eng_module_free(d);
    free(b);
    eng_module_free(m);
}

/* A forged file (valid hash over damaged content) must be refused or
 * loaded, never crash the loader: under `make asan` this is the check
 * that every count, index and offset is bounded before use. */
static void test_forged(void **state)
{
    (void)state;
    eng_module_t *m = compile(mod_ops, sizeof mod_ops);
    uint8_t *b;
    size_t n;
    serialize(m, &b, &n);
    static const uint8_t flips[] = {0x01, 0x10, 0x80, 0xFF};
    size_t refused = 0, tried = 0;
    char err[ENG_ERR_MAX];
    for (size_t i = 28; i < n - 32; i++) {
        for (size_t k = 0; k < sizeof flips; k++) {
            b[i] ^= flips[k];
            rehash(b, n);
            eng_module_t *d = eng_module_deserialize(b, n, err, sizeof err);
            tried++;
            if (d) {
                /* Whatever was accepted serialises again. */
                uint8_t *b2;
                size_t n2;
                serialize(d, &b2, &n2);
                free(b2);
                eng_module_free(d);
            } else {
                assert_true(strncmp(err, "serialised module: at byte 0x", 29) == 0);
                refused++;
            }
            b[i] ^= flips[k];
        }
    }
    print_message("forged: %zu of %zu single-byte changes refused\n", refused, tried);
    assert_true(refused > tried / 4);
    /* A slot number out of the frame, by hand: find the const32 of "fib20"
     * (op number OP_const32 followed by [dst | imm]) and break its dst. */
    rehash(b, n);
    eng_module_t *intact = eng_module_deserialize(b, n, err, sizeof err);
    assert_non_null(intact);
    eng_module_free(intact);
    bool found = false;
    for (size_t i = 28; i + 16 <= n - 32 && !found; i += 1) {
        uint64_t w0, w1;
        memcpy(&w0, b + i, 8);
        memcpy(&w1, b + i + 8, 8);
        if (w0 == OP_const32 && (w1 >> 32) == 20) {
            uint64_t bad = w1 | 0xFFFFu;
            memcpy(b + i + 8, &bad, 8);
            found = true;
        }
    }
    assert_true(found);
    rehash(b, n);
    assert_null(eng_module_deserialize(b, n, err, sizeof err));
    assert_non_null(strstr(err, "const32"));
    assert_non_null(strstr(err, "operand out of range"));
    free(b);
    eng_module_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_shapes_complete),
        cmocka_unit_test(test_round_trip_ops),
        cmocka_unit_test(test_truncated),
        cmocka_unit_test(test_flipped_byte),
        cmocka_unit_test(test_stale),
        cmocka_unit_test(test_forged),
        cmocka_unit_test(test_round_trip_spec),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
