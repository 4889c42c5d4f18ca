# mk/modcache.mk — `make bench-modcache` (part of `make bench`):
#
#   build/bench/modcache_bench   a module-cache miss: loading the serialised
#                                form against compiling the .wasm, in the
#                                engine and through the runtime's cache
#                                (bench/modcache/modcache_bench.c)
#
# Run over the examples and the WASI test programs (larger, libc inside).
# MODCACHE_ITERS=N sets the runs per measurement (default 300). Results are
# recorded by hand in docs/benchmarks.md ("Module cache"). Never part of
# `make test`.

MODCACHE_BENCH := $(BUILD)/bench/modcache_bench
MODCACHE_ITERS ?= 300

.PHONY: bench-modcache

bench: bench-modcache

$(MODCACHE_BENCH): bench/modcache/modcache_bench.c $(LIB)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(LIB) $(LIBS)

bench-modcache: $(MODCACHE_BENCH) examples wasi-programs
	./$(MODCACHE_BENCH) -n $(MODCACHE_ITERS) $(EXAMPLES_DIR)/hello.wasm $(EXAMPLES_DIR)/echo.wasm \
		$(EXAMPLES_DIR)/transform.wasm build/wasi/sort.wasm build/wasi/fs_ops.wasm
