/*
 * fuzz_serialized.c — libFuzzer target over the loader of compiled modules
 * (eng_module_deserialize, src/engine/serialize.c).
 *
 * A damaged file is caught by the SHA-256 before anything is parsed, so
 * feeding raw bytes would test only the hash. This target forges instead:
 * it compiles a module, serialises it, damages the serialised bytes as the
 * input says, recomputes the hash and loads the result. Every count, index,
 * slot number and branch offset must then be checked by the loader itself;
 * a crash, a sanitizer report or a leak is a bug in it. Whatever loads is
 * serialised again (its structures must be consistent enough for that) and
 * freed; its code is not run, because the loader cannot re-prove the type
 * safety the validator established (serialize.c says why).
 *
 * Input: u16 n (little-endian), then n edits of 5 bytes (u32 offset into the
 * serialised body, u8 value to XOR there; offsets wrap around the body),
 * then a .wasm module. Seeds are spec-suite modules with n = 0
 * (mk/serialized-fuzz.mk makes them); libFuzzer mutates both the edits and
 * the module.
 */
#include "engine/engine.h"

#include <openssl/evp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define FUZZ_HEADER_BYTES 28 /* magic, version, build id: left intact */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    size_t nedits = (size_t)data[0] | (size_t)data[1] << 8;
    if (nedits * 5 > size - 2)
        return 0;
    const uint8_t *edits = data + 2, *wasm = edits + nedits * 5;
    size_t wasm_len = size - 2 - nedits * 5;
    char err[ENG_ERR_MAX];
    eng_module_t *m = eng_module_new(wasm, wasm_len, err, sizeof err);
    if (!m)
        return 0;
    uint8_t *buf;
    size_t len;
    if (!eng_module_serialize(m, &buf, &len, err, sizeof err))
        __builtin_trap(); /* a compiled module must always serialise */
    eng_module_free(m);
    size_t body = len - 32 - FUZZ_HEADER_BYTES;
    for (size_t i = 0; i < nedits && body; i++) {
        const uint8_t *e = edits + 5 * i;
        uint32_t off = (uint32_t)e[0] | (uint32_t)e[1] << 8 | (uint32_t)e[2] << 16 |
                       (uint32_t)e[3] << 24;
        buf[FUZZ_HEADER_BYTES + off % body] ^= e[4];
    }
    unsigned mdlen;
    EVP_Digest(buf, len - 32, buf + len - 32, &mdlen, EVP_sha256(), NULL);
    eng_module_t *d = eng_module_deserialize(buf, len, err, sizeof err);
    if (d) {
        uint8_t *again;
        size_t again_len;
        if (!eng_module_serialize(d, &again, &again_len, err, sizeof err))
            __builtin_trap(); /* a loaded module must be consistent */
        free(again);
        eng_module_free(d);
    } else if (strncmp(err, "serialised module: ", 19) != 0) {
        __builtin_trap(); /* every refusal says what it refused */
    }
    free(buf);
    return 0;
}
