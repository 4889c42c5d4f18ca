# mk/native-tests.mk — the native tier through the daemon and the CLI
# (tests/serving/native_tests.sh): background compiles and the switch,
# stored native code across restarts, damaged/foreign/untrusted artefacts,
# refused modules, the compiler's limits, wasmfn compile and run's cache.

TEST_STEPS += test-native
ASAN_STEPS += test-native

.PHONY: test-native

test-native: $(WASMFN) examples serving-fns
	@WASMFN=$(WASMFN) EXAMPLES_DIR=$(EXAMPLES_DIR) FNS_DIR=$(SERVING_FNS_DIR) \
		bash tests/serving/native_tests.sh
