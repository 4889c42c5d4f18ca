# mk/scale-zero-tests.mk — `make test-scale-zero`: scale from zero against
# the real daemon (tests/serving/scale_zero_tests.sh): revisions at zero
# unpin their modules, a small --module-cache-bytes evicts them, and the
# next request reloads them from their serialised artefacts on a worker.
# Uses the examples, the serving test functions (mk/serving-tests.mk) and
# wat2wasm.

TEST_STEPS += test-scale-zero
ASAN_STEPS += test-scale-zero

.PHONY: test-scale-zero

test-scale-zero: $(WASMFN) examples serving-fns
	@WASMFN=$(WASMFN) EXAMPLES_DIR=$(EXAMPLES_DIR) FNS_DIR=$(SERVING_FNS_DIR) \
		bash tests/serving/scale_zero_tests.sh
