# mk/bench.mk — benchmarks (bench/, results in docs/benchmarks.md).
#
#   make bench          every benchmark (other fragments add theirs as
#                       prerequisites: `bench: bench-foo`)
#   make bench-engine   the engine kernels natively, in wasmfn and in Node/V8;
#                       prints the table and rewrites the engine section of
#                       docs/benchmarks.md. BENCH_REPS=N timed runs per kernel
#                       (default 5); BENCH_WRITE=0 leaves the docs alone.
#
# Benchmarks are never part of `make test`: nothing fails on a timing. (A
# checksum mismatch between native, wasmfn and V8 does fail bench-engine: it
# means an engine computed a wrong result.)

BENCH_OUT := $(BUILD)/bench
BENCH_REPS ?= 5
BENCH_WRITE ?= 1
KERNELS_WASM := $(BENCH_OUT)/kernels.wasm
KERNELS_SIMD_WASM := $(BENCH_OUT)/kernels_simd.wasm
ENGINE_BENCH := $(BENCH_OUT)/engine_bench

.PHONY: bench bench-engine

bench: bench-engine

# No libc and no WASI: the kernels are plain exports taking a size and
# returning a checksum, so the engine bench needs nothing but the engine.
$(KERNELS_WASM): bench/engine/kernels.c
	@mkdir -p $(@D)
	clang --target=wasm32 -O2 -nostdlib -Wl,--no-entry -Wl,--strip-all -o $@ $<

# The same kernels with 128-bit SIMD: engine_bench runs its SIMD rows from it.
# --strip-debug, not --strip-all: clang's wasm-opt pass reads the enabled
# features from the target_features section, which --strip-all removes.
$(KERNELS_SIMD_WASM): bench/engine/kernels.c
	@mkdir -p $(@D)
	clang --target=wasm32 -O2 -msimd128 -nostdlib -Wl,--no-entry -Wl,--strip-debug -o $@ $<

# The native kernels: plain -O2 (no sanitizers, no -g), as a separate object
# so the driver's call sites cannot be specialised to the sizes. Functions
# and loops start on 64-byte boundaries so that their times do not depend
# on where the linker puts them: with gcc's default alignment, a change to
# engine_bench.c that moved the kernels by 48 bytes took native ikj from
# 4.9 to 9.2 ms and sieve from 63 to 47-51 ms (docs/benchmarks.md).
$(BENCH_OUT)/kernels_native.o: bench/engine/kernels.c
	@mkdir -p $(@D)
	$(CC) -std=gnu11 -O2 -falign-functions=64 -falign-loops=64 -c -o $@ $<

$(ENGINE_BENCH): bench/engine/engine_bench.c $(BENCH_OUT)/kernels_native.o $(LIB)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(BENCH_OUT)/kernels_native.o $(LIB) $(LIBS)

bench-engine: $(ENGINE_BENCH) $(KERNELS_WASM) $(KERNELS_SIMD_WASM)
	@BENCH_WRITE=$(BENCH_WRITE) bash bench/engine/report.sh $(ENGINE_BENCH) $(KERNELS_WASM) $(BENCH_REPS) \
		$(KERNELS_SIMD_WASM)
