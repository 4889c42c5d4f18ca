# mk/scale-zero-tests.mk — `make test-scale-zero`: scale from zero against
# the real daemon (tests/serving/scale_zero_tests.sh): revisions at zero
# unpin their modules, a small --module-cache-bytes evicts them, and the
# next request reloads them from their serialised artefacts on a worker.
# Uses the examples, the serving test functions (mk/serving-tests.mk) and
# wat2wasm.

TEST_STEPS += test-scale-zero
ASAN_STEPS += test-scale-zero

.PHONY: test-scale-zero

# The interpreter tier only by default: these tests are about the module
# cache's bound and artefacts, and two of their modules have 20,000 and
# 60,000 functions, which take LLVM minutes to compile (make test-native
# covers native code through the daemon: tiering, its artefacts, reloads).
SCALE_ZERO_TIERS ?= interp

test-scale-zero: $(WASMFN) examples serving-fns
	@s=0; for t in $(SCALE_ZERO_TIERS); do echo "== $@ ($$t tier)"; \
		WASMFN=$(TIER_WRAPPER) WASMFN_REAL=$(abspath $(WASMFN)) TIER=$$t EXAMPLES_DIR=$(EXAMPLES_DIR) FNS_DIR=$(SERVING_FNS_DIR) \
		bash tests/serving/scale_zero_tests.sh || s=1; \
	done; exit $$s
