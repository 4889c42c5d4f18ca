# mk/serialized-fuzz.mk — `make fuzz-serialized`: the libFuzzer target over
# the loader of serialised (compiled) modules, tests/fuzz/fuzz_serialized.c
# (docs/fuzzing.md, section 3). Runs for FUZZ_SERIALIZED_SECONDS (default
# 60) from seeds made of the spec-suite modules, each with no edits. Not part
# of `make test` (test_serialize's forged-byte test covers the same ground
# at small scale there). Named so that it is read after mk/fuzz.mk, whose
# variables it uses.

FUZZ_SER_BIN := build/fuzz/fuzz_serialized
FUZZ_SERIALIZED_SECONDS ?= 60

.PHONY: fuzz-serialized

$(FUZZ_SER_BIN): tests/fuzz/fuzz_serialized.c $(FUZZ_ENGINE_SRCS) $(FUZZ_ENGINE_HDRS)
	@mkdir -p $(@D)
	clang $(FUZZ_CFLAGS) -o $@ tests/fuzz/fuzz_serialized.c $(FUZZ_ENGINE_SRCS) $(LLVM_CFLAGS) $(LLVM_LIBS) -lm -lpthread -lcrypto

build/fuzz/ser-seeds/.stamp: $(FUZZ_SPEC_JSON)
	@rm -rf build/fuzz/ser-seeds && mkdir -p build/fuzz/ser-seeds
	@for f in build/spec/*/*.wasm; do \
		n=$$(basename $$f .wasm); \
		{ printf '\000\000'; cat $$f; } > build/fuzz/ser-seeds/$$n; \
	done
	@touch $@

fuzz-serialized: $(FUZZ_SER_BIN) build/fuzz/ser-seeds/.stamp
	@mkdir -p build/fuzz/ser-corpus build/fuzz/ser-artifacts
	$(FUZZ_ENV) $(FUZZ_SER_BIN) -max_total_time=$(FUZZ_SERIALIZED_SECONDS) -timeout=10 \
		-rss_limit_mb=4096 -max_len=65536 -print_final_stats=1 \
		-artifact_prefix=build/fuzz/ser-artifacts/ build/fuzz/ser-corpus build/fuzz/ser-seeds
