# mk/fuzz.mk — the engine's fuzzers (tests/fuzz/, docs/fuzzing.md).
#
#   make fuzz-smoke    libFuzzer target over the seed corpus with -seed=1 for
#                      FUZZ_SMOKE_SECONDS (part of `make test`)
#   make diff-smoke    differential fuzzer, seeds 1..DIFF_SMOKE_COUNT: each
#                      module in our interpreter, our native tier and V8
#                      (part of `make test`)
#   make fuzz-native   libFuzzer target that also compiles every valid input
#                      natively and compares the tiers, FUZZ_NATIVE_SECONDS
#                      (on demand: LLVM makes it slow)
#   make fuzz-keda-smoke  libFuzzer target over what KEDA reads from outside
#                      (ScaledObjects, metric servers' answers, formulas) for
#                      FUZZ_KEDA_SMOKE_SECONDS with -seed=1 (part of `make test`)
#   make fuzz-keda     the same for FUZZ_KEDA_SECONDS, corpus kept
#   make fuzz          all for longer: libFuzzer for FUZZ_SECONDS with a corpus
#                      kept in build/fuzz/corpus, the native target for
#                      FUZZ_NATIVE_SECONDS on that corpus, then FUZZ_DIFF_COUNT
#                      diff seeds from FUZZ_DIFF_FIRST
#
# The libFuzzer build compiles the engine sources itself with clang (it needs
# clang's coverage instrumentation), into build/fuzz/ whatever BUILD is.

FUZZ_OUT := build/fuzz
FUZZ_BIN := $(FUZZ_OUT)/fuzz_module
FUZZ_NATIVE_BIN := $(FUZZ_OUT)/fuzz_native
DIFF_RUN := $(BUILD)/fuzz/diff_run
FUZZ_ENGINE_SRCS := $(sort $(wildcard src/engine/*.c))
FUZZ_ENGINE_HDRS := $(wildcard src/engine/*.h)
FUZZ_CFLAGS := -std=gnu11 -g -O1 -Isrc -fsanitize=fuzzer,address,undefined \
	-fno-sanitize-recover=undefined -fno-omit-frame-pointer
# The engine bounds-checks guest memory itself (no SIGSEGV handler), so a
# segfault is a bug and ASan reports it. If the engine ever catches faults in
# guard pages, add allow_user_segv_handler=1 here.
FUZZ_ENV := ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1

FUZZ_SMOKE_SECONDS ?= 30
FUZZ_KEDA_SMOKE_SECONDS ?= 15
FUZZ_KEDA_SECONDS ?= 300
FUZZ_SECONDS ?= 300
FUZZ_NATIVE_SECONDS ?= 300
DIFF_SMOKE_COUNT ?= 100
FUZZ_DIFF_FIRST ?= 1001
FUZZ_DIFF_COUNT ?= 1000

# Seeds: every module of the spec suite (the JSON rules are in mk/spec.mk,
# named here by path because that fragment is read after this one) and
# FUZZ_TTF_SEEDS binaryen -ttf modules (valid ones, some optimised by binaryen, and a third
# with all of binaryen's features, most of which we reject: GC, threads, ...).
FUZZ_TTF_SEEDS := 120
FUZZ_SPEC_SUITE := $(or $(SPEC_SUITE),../shared/wasm-spec-testsuite)
FUZZ_SPEC_JSON := $(foreach n,$(sort $(basename $(notdir $(wildcard $(FUZZ_SPEC_SUITE)/*.wast)))),build/spec/$(n)/$(n).json)
FUZZ_TTF_FEATURES := --mvp-features --enable-sign-ext --enable-mutable-globals \
	--enable-nontrapping-float-to-int --enable-bulk-memory --enable-multivalue

TEST_STEPS += fuzz-smoke diff-smoke fuzz-keda-smoke
# Under `make asan` the diff harness runs the same modules through the
# sanitizer build of the engine.
ASAN_STEPS += diff-smoke

.PHONY: fuzz fuzz-smoke diff-smoke fuzz-seeds fuzz-native fuzz-keda fuzz-keda-smoke

# KEDA's readers (fuzz_keda.c): the parsers compiled here with coverage, the
# rest of what they call linked from the library.
FUZZ_KEDA_BIN := $(FUZZ_OUT)/fuzz_keda
FUZZ_KEDA_SRCS := src/keda/scaledobject.c src/keda/metadata.c src/keda/parse.c src/keda/types.c \
	src/keda/formula.c src/keda/metricsapi.c src/keda/exposition.c
$(FUZZ_KEDA_BIN): tests/fuzz/fuzz_keda.c $(FUZZ_KEDA_SRCS) $(wildcard src/keda/*.h) $(LIB)
	@mkdir -p $(@D)
	clang $(FUZZ_CFLAGS) -o $@ tests/fuzz/fuzz_keda.c $(FUZZ_KEDA_SRCS) $(LIB) $(LIBS)

# Replays the seeds (tests/fuzz/keda-seeds/, which regressions join), then
# fuzzes from them; a scratch corpus for the smoke, a kept one otherwise.
fuzz-keda-smoke fuzz-keda: $(FUZZ_KEDA_BIN)
	@corpus=$(FUZZ_OUT)/keda-$(if $(filter fuzz-keda,$@),corpus,smoke-corpus); \
	secs=$(if $(filter fuzz-keda,$@),$(FUZZ_KEDA_SECONDS),$(FUZZ_KEDA_SMOKE_SECONDS)); \
	[ $@ = fuzz-keda ] || rm -rf $$corpus; \
	mkdir -p $$corpus $(FUZZ_OUT)/keda-artifacts; \
	$(FUZZ_ENV) $(FUZZ_KEDA_BIN) -timeout=10 tests/fuzz/keda-seeds/* >$(FUZZ_OUT)/keda-replay.log 2>&1 || \
		{ tail -40 $(FUZZ_OUT)/keda-replay.log; echo "$@: a seed input fails"; exit 1; }; \
	echo "$@: libFuzzer for $$secs s, -seed=1 (log: $(FUZZ_OUT)/keda.log)"; \
	$(FUZZ_ENV) $(FUZZ_KEDA_BIN) -seed=1 -max_total_time=$$secs -timeout=10 -rss_limit_mb=2048 \
		-max_len=8192 -print_final_stats=1 -artifact_prefix=$(FUZZ_OUT)/keda-artifacts/ \
		$$corpus tests/fuzz/keda-seeds >$(FUZZ_OUT)/keda.log 2>&1 || \
		{ tail -60 $(FUZZ_OUT)/keda.log; \
		  echo "$@: FAILED; the input is in $(FUZZ_OUT)/keda-artifacts/ (see docs/fuzzing.md)"; exit 1; }; \
	grep -E '^stat::number_of_executed_units|^Done' $(FUZZ_OUT)/keda.log | tr '\n' ' '; echo; \
	echo "$@: no crash, leak, sanitizer report or broken reader contract"

$(FUZZ_BIN): tests/fuzz/fuzz_module.c $(FUZZ_ENGINE_SRCS) $(FUZZ_ENGINE_HDRS)
	@mkdir -p $(@D)
	clang $(FUZZ_CFLAGS) -o $@ tests/fuzz/fuzz_module.c $(FUZZ_ENGINE_SRCS) $(LLVM_CFLAGS) $(LLVM_LIBS) -lm -lpthread -lcrypto

# The same target with both tiers (fuzz_module.c says why it is a separate
# binary and what it compares).
$(FUZZ_NATIVE_BIN): tests/fuzz/fuzz_module.c $(FUZZ_ENGINE_SRCS) $(FUZZ_ENGINE_HDRS)
	@mkdir -p $(@D)
	clang $(FUZZ_CFLAGS) -DFUZZ_NATIVE -o $@ tests/fuzz/fuzz_module.c $(FUZZ_ENGINE_SRCS) $(LLVM_CFLAGS) $(LLVM_LIBS) -lm -lpthread -lcrypto

$(DIFF_RUN): tests/fuzz/diff_run.c $(LIB)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -MMD -MP -MF $@.d $(LDFLAGS) -o $@ $< $(LIB) $(LIBS)
-include $(DIFF_RUN).d

$(FUZZ_OUT)/seeds/.stamp: $(FUZZ_SPEC_JSON) tests/fuzz/gen_inputs.mjs mk/fuzz.mk
	@rm -rf $(FUZZ_OUT)/seeds && mkdir -p $(FUZZ_OUT)/seeds/spec $(FUZZ_OUT)/seeds/ttf
	@if ls build/spec/*/*.wasm >/dev/null 2>&1; then cp build/spec/*/*.wasm $(FUZZ_OUT)/seeds/spec/; fi
	@node tests/fuzz/gen_inputs.mjs $(FUZZ_OUT)/seeds/ttf-in 900001 $(FUZZ_TTF_SEEDS)
	@for i in $$(seq 900001 $$((900000 + $(FUZZ_TTF_SEEDS)))); do \
		case $$((i % 3)) in \
		0) feat="$(FUZZ_TTF_FEATURES)" ;; \
		1) feat="$(FUZZ_TTF_FEATURES) -O2" ;; \
		2) feat="--all-features" ;; \
		esac; \
		wasm-opt -ttf $(FUZZ_OUT)/seeds/ttf-in/$$i.bin -o $(FUZZ_OUT)/seeds/ttf/$$i.wasm $$feat \
			>/dev/null 2>&1 || exit 1; \
	done
	@rm -rf $(FUZZ_OUT)/seeds/ttf-in
	@echo "fuzz-seeds: $$(ls $(FUZZ_OUT)/seeds/spec | wc -l) spec modules, $$(ls $(FUZZ_OUT)/seeds/ttf | wc -l) binaryen modules"
	@touch $@

fuzz-seeds: $(FUZZ_OUT)/seeds/.stamp

# Replays every saved regression (a crash input or a diff module) through the
# fuzz target, then fuzzes from the seeds for FUZZ_SMOKE_SECONDS with a fixed
# seed. New inputs go to a scratch corpus that is thrown away.
fuzz-smoke: $(FUZZ_BIN) $(FUZZ_OUT)/seeds/.stamp
	@regs=$$(ls tests/fuzz/regressions/*.wasm 2>/dev/null); \
	if [ -n "$$regs" ]; then \
		echo "fuzz-smoke: replaying $$(echo "$$regs" | wc -l) regression inputs"; \
		$(FUZZ_ENV) $(FUZZ_BIN) -timeout=10 $$regs >$(FUZZ_OUT)/regressions.log 2>&1 || \
			{ tail -40 $(FUZZ_OUT)/regressions.log; echo "fuzz-smoke: a regression input fails"; exit 1; }; \
	fi
	@rm -rf $(FUZZ_OUT)/smoke-corpus $(FUZZ_OUT)/artifacts && mkdir -p $(FUZZ_OUT)/smoke-corpus $(FUZZ_OUT)/artifacts
	@echo "fuzz-smoke: libFuzzer for $(FUZZ_SMOKE_SECONDS) s, -seed=1 (log: $(FUZZ_OUT)/smoke.log)"
	@$(FUZZ_ENV) $(FUZZ_BIN) -seed=1 -max_total_time=$(FUZZ_SMOKE_SECONDS) -timeout=10 \
		-rss_limit_mb=4096 -max_len=65536 -print_final_stats=1 \
		-artifact_prefix=$(FUZZ_OUT)/artifacts/ \
		$(FUZZ_OUT)/smoke-corpus $(FUZZ_OUT)/seeds >$(FUZZ_OUT)/smoke.log 2>&1 || \
		{ tail -60 $(FUZZ_OUT)/smoke.log; \
		  echo "fuzz-smoke: FAILED; the input is in $(FUZZ_OUT)/artifacts/ (see docs/fuzzing.md)"; exit 1; }
	@grep -E '^stat::number_of_executed_units|^Done' $(FUZZ_OUT)/smoke.log | tr '\n' ' '; echo
	@echo "fuzz-smoke: no crash, leak or sanitizer report"

diff-smoke: $(DIFF_RUN)
	@bash tests/fuzz/diff.sh --first 1 --count $(DIFF_SMOKE_COUNT) --runner $(DIFF_RUN) \
		--work $(FUZZ_OUT)/diff-smoke

# Replays the regression inputs, then fuzzes for FUZZ_NATIVE_SECONDS from
# the seeds and whatever fuzz_module's corpus holds; its own corpus is kept
# in build/fuzz/native-corpus, its findings go to build/fuzz/native-artifacts.
fuzz-native: $(FUZZ_NATIVE_BIN) $(FUZZ_OUT)/seeds/.stamp
	@mkdir -p $(FUZZ_OUT)/corpus $(FUZZ_OUT)/native-corpus $(FUZZ_OUT)/native-artifacts
	@regs=$$(ls tests/fuzz/regressions/*.wasm 2>/dev/null); \
	if [ -n "$$regs" ]; then \
		echo "fuzz-native: replaying $$(echo "$$regs" | wc -l) regression inputs"; \
		$(FUZZ_ENV) $(FUZZ_NATIVE_BIN) -timeout=30 $$regs >$(FUZZ_OUT)/native-regressions.log 2>&1 || \
			{ tail -40 $(FUZZ_OUT)/native-regressions.log; echo "fuzz-native: a regression input fails"; exit 1; }; \
	fi
	@echo "fuzz-native: libFuzzer for $(FUZZ_NATIVE_SECONDS) s (log: $(FUZZ_OUT)/native.log)"
	@$(FUZZ_ENV) $(FUZZ_NATIVE_BIN) -max_total_time=$(FUZZ_NATIVE_SECONDS) -timeout=30 \
		-rss_limit_mb=4096 -max_len=65536 -print_final_stats=1 \
		-artifact_prefix=$(FUZZ_OUT)/native-artifacts/ \
		$(FUZZ_OUT)/native-corpus $(FUZZ_OUT)/corpus $(FUZZ_OUT)/seeds >$(FUZZ_OUT)/native.log 2>&1 || \
		{ tail -60 $(FUZZ_OUT)/native.log; \
		  echo "fuzz-native: FAILED; the input is in $(FUZZ_OUT)/native-artifacts/ (see docs/fuzzing.md)"; exit 1; }
	@grep -E '^stat::number_of_executed_units|^Done' $(FUZZ_OUT)/native.log | tr '\n' ' '; echo
	@echo "fuzz-native: no crash, leak, sanitizer report or difference between the tiers"

fuzz: $(FUZZ_BIN) $(FUZZ_OUT)/seeds/.stamp $(DIFF_RUN)
	@mkdir -p $(FUZZ_OUT)/corpus $(FUZZ_OUT)/artifacts
	$(FUZZ_ENV) $(FUZZ_BIN) -max_total_time=$(FUZZ_SECONDS) -timeout=10 -rss_limit_mb=4096 \
		-max_len=65536 -print_final_stats=1 -artifact_prefix=$(FUZZ_OUT)/artifacts/ \
		$(FUZZ_OUT)/corpus $(FUZZ_OUT)/seeds
	@$(MAKE) --no-print-directory fuzz-native
	@$(MAKE) --no-print-directory fuzz-keda
	bash tests/fuzz/diff.sh --first $(FUZZ_DIFF_FIRST) --count $(FUZZ_DIFF_COUNT) \
		--runner $(DIFF_RUN) --work $(FUZZ_OUT)/diff
