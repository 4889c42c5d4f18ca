# mk/wasi-suite.mk — `make test-wasi-suite`: the official WASI test suite
# (../shared/wasi-testsuite/, prebuilt C and AssemblyScript tests for
# wasm32-wasip1) run by our executor (tests/wasi-suite/run.mjs, which follows
# the suite's SPECIFICATION.md) with `wasmfn run` as the runtime, once per
# tier of DAEMON_TIERS (the native one alone under `make asan`, as
# test-wasi). Native code for the test modules is cached in build/ like
# test-wasi's.

WASI_SUITE ?= ../shared/wasi-testsuite
WASI_SUITE_DIRS := $(WASI_SUITE)/c/wasm32-wasip1 $(WASI_SUITE)/assemblyscript/wasm32-wasip1

TEST_STEPS += test-wasi-suite
ASAN_STEPS += test-wasi-suite

.PHONY: test-wasi-suite

test-wasi-suite: $(WASMFN)
	@mkdir -p build/wasi-cache
	@s=0; for t in $(DAEMON_TIERS); do \
		WASMFN_CACHE_DIR=$(abspath build/wasi-cache) \
			node tests/wasi-suite/run.mjs $(WASMFN) $$t $(WASI_SUITE_DIRS) || s=1; \
	done; exit $$s
