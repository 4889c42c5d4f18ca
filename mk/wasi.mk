# mk/wasi.mk — WASI test programs and `make test-wasi`.
#
#   make wasi-programs   tests/wasi/fns/*.c -> build/wasi/*.wasm (clang, wasm32-wasi,
#                        Debian's wasi-libc sysroot, found by clang itself), and
#                        the compute kernels natively -> build/wasi/native/*
#   make test-wasi       runs tests/wasi/run_tests.sh against $(WASMFN): the
#                        WASI and `wasmfn run` tests, the differential run
#                        against Node's WASI, and the native comparisons
#
# The programs do not depend on BUILD, so the sanitizer build reuses them and
# only swaps in build-asan/wasmfn.

WASI_CC ?= clang
WASI_CFLAGS ?= --target=wasm32-wasi -O2 -Wall -Wextra
WASI_DIR ?= build/wasi
WASI_SRCS := $(sort $(wildcard tests/wasi/fns/*.c))
WASI_WASM := $(patsubst tests/wasi/fns/%.c,$(WASI_DIR)/%.wasm,$(WASI_SRCS))
# Programs whose output must be byte-identical to the same C built natively.
WASI_NATIVE_NAMES := sort hash float trees stdin_cat simd
WASI_NATIVE := $(patsubst %,$(WASI_DIR)/native/%,$(WASI_NATIVE_NAMES))

TEST_STEPS += test-wasi
ASAN_STEPS += test-wasi

.PHONY: wasi-programs test-wasi

wasi-programs: $(WASI_WASM) $(WASI_NATIVE)

$(WASI_DIR)/%.wasm: tests/wasi/fns/%.c
	@mkdir -p $(@D)
	$(WASI_CC) $(WASI_CFLAGS) $< -o $@

# The SIMD kernel: 128-bit SIMD (WebAssembly 2.0) in the module.
$(WASI_DIR)/simd.wasm: WASI_CFLAGS += -msimd128

# Native twins: plain gcc -O2, never the sanitizer flags (they are the
# reference output, not code under test).
$(WASI_DIR)/native/%: tests/wasi/fns/%.c
	@mkdir -p $(@D)
	gcc -std=gnu11 -O2 -Wall -Wextra $< -o $@ -lm

# Once per tier of DAEMON_TIERS (both, but the native tier alone under
# `make asan`: the interpreter runs these programs there at a tenth of its
# speed, and stays under the sanitizers in the unit tests and `make spec`);
# native code for the programs is cached in build/ (each module compiles
# once, and again only when wasmfn is rebuilt).
test-wasi: $(WASMFN) wasi-programs
	@mkdir -p build/wasi-cache
	@s=0; for t in $(DAEMON_TIERS); do \
		TIER=$$t WASMFN_CACHE_DIR=$(abspath build/wasi-cache) WASMFN=$(WASMFN) WASI_DIR=$(WASI_DIR) \
			bash tests/wasi/run_tests.sh || s=1; \
	done; exit $$s
