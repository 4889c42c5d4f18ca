# mk/serving-tests.mk — `make test-serving`: integration tests that start the
# real daemon (`wasmfn serve`) on free loopback ports with a temporary data
# dir and drive it only through the CLI and HTTP (tests/serving/run_tests.sh).
# Needs the examples and the test functions tests/serving/fns/*.c (built to
# build/serving-fns/*.wasm the same way).
#
# Under `make asan` it runs against build-asan/wasmfn too.

SERVING_FNS_DIR := build/serving-fns
SERVING_FNS_SRCS := $(sort $(wildcard tests/serving/fns/*.c))
SERVING_FNS_WASM := $(patsubst tests/serving/fns/%.c,$(SERVING_FNS_DIR)/%.wasm,$(SERVING_FNS_SRCS))

TEST_STEPS += test-serving
ASAN_STEPS += test-serving

.PHONY: test-serving serving-fns

serving-fns: $(SERVING_FNS_WASM)

$(SERVING_FNS_DIR)/%.wasm: tests/serving/fns/%.c
	@mkdir -p $(@D)
	$(EXAMPLES_CC) $(EXAMPLES_CFLAGS) $< -o $@

# A guest with 128-bit SIMD (WebAssembly 2.0), for the native tier's tests.
$(SERVING_FNS_DIR)/simd.wasm: EXAMPLES_CFLAGS += -msimd128

test-serving: $(WASMFN) examples serving-fns
	@s=0; for t in $(DAEMON_TIERS); do echo "== $@ ($$t tier)"; \
		WASMFN=$(TIER_WRAPPER) WASMFN_REAL=$(abspath $(WASMFN)) TIER=$$t EXAMPLES_DIR=$(EXAMPLES_DIR) FNS_DIR=$(SERVING_FNS_DIR) \
		bash tests/serving/run_tests.sh || s=1; \
	done; exit $$s

# `make test-sched`: fair sharing of one worker between guests (fibers).
TEST_STEPS += test-sched
ASAN_STEPS += test-sched
.PHONY: test-sched
test-sched: $(WASMFN) examples serving-fns
	@s=0; for t in $(DAEMON_TIERS); do echo "== $@ ($$t tier)"; \
		WASMFN=$(TIER_WRAPPER) WASMFN_REAL=$(abspath $(WASMFN)) TIER=$$t EXAMPLES_DIR=$(EXAMPLES_DIR) FNS_DIR=$(SERVING_FNS_DIR) \
		bash tests/serving/sched_tests.sh || s=1; \
	done; exit $$s

# `make test-lifecycle`: one function must never hurt the others (the
# node's budget of instances, modules that can never start refused at
# deploy, old revisions pruned): tests/serving/lifecycle_tests.sh.
TEST_STEPS += test-lifecycle
ASAN_STEPS += test-lifecycle
.PHONY: test-lifecycle
test-lifecycle: $(WASMFN) examples serving-fns
	@s=0; for t in $(DAEMON_TIERS); do echo "== $@ ($$t tier)"; \
		WASMFN=$(TIER_WRAPPER) WASMFN_REAL=$(abspath $(WASMFN)) TIER=$$t EXAMPLES_DIR=$(EXAMPLES_DIR) FNS_DIR=$(SERVING_FNS_DIR) \
		bash tests/serving/lifecycle_tests.sh || s=1; \
	done; exit $$s
# `make test-hardening`: a hostile client against the daemon (issue 14):
# header flood, unauthenticated uploads, slowloris, descriptor exhaustion.
# Not per tier: it tests the HTTP layer, which no tier changes.
TEST_STEPS += test-hardening
ASAN_STEPS += test-hardening
.PHONY: test-hardening
test-hardening: $(WASMFN) examples
	@WASMFN=$(abspath $(WASMFN)) EXAMPLES_DIR=$(EXAMPLES_DIR) bash tests/serving/hardening_tests.sh
