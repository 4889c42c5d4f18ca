# mk/async-tests.mk — `make test-async`: asynchronous invocations
# (Prefer: respond-async, GET /v1/invocations/ID) against the real daemon
# (tests/serving/async_tests.sh). Uses the examples and the serving test
# functions (mk/serving-tests.mk).

TEST_STEPS += test-async
ASAN_STEPS += test-async

.PHONY: test-async

test-async: $(WASMFN) examples serving-fns
	@s=0; for t in $(DAEMON_TIERS); do echo "== $@ ($$t tier)"; \
		WASMFN=$(TIER_WRAPPER) WASMFN_REAL=$(abspath $(WASMFN)) TIER=$$t EXAMPLES_DIR=$(EXAMPLES_DIR) FNS_DIR=$(SERVING_FNS_DIR) \
		bash tests/serving/async_tests.sh || s=1; \
	done; exit $$s
