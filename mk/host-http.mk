# mk/host-http.mk — `make test-host-http`: outbound HTTP from guests
# (wasi_experimental_http, docs/host-http.md) through the real daemon
# against a local upstream (tests/host/upstream.py), once per tier: the
# host functions are called from interpreted and from native code. About
# 8 s per tier.
# The test guests tests/host/fns/*.c are built with the C header guests
# use (examples/wasi_experimental_http.h).

HOST_FNS_DIR := build/host-fns
HOST_FNS_SRCS := $(sort $(wildcard tests/host/fns/*.c))
HOST_FNS_WASM := $(patsubst tests/host/fns/%.c,$(HOST_FNS_DIR)/%.wasm,$(HOST_FNS_SRCS))

TEST_STEPS += test-host-http
# Quick (under 10 s per tier with the sanitizers), and it is the code that
# reads guest pointers and hands transfers between threads.
ASAN_STEPS += test-host-http

.PHONY: test-host-http host-fns

host-fns: $(HOST_FNS_WASM)

$(HOST_FNS_DIR)/%.wasm: tests/host/fns/%.c examples/wasi_experimental_http.h
	@mkdir -p $(@D)
	$(EXAMPLES_CC) $(EXAMPLES_CFLAGS) -Iexamples $< -o $@

test-host-http: $(WASMFN) examples host-fns
	@s=0; for t in $(DAEMON_TIERS); do echo "== $@ ($$t tier)"; \
		WASMFN=$(TIER_WRAPPER) WASMFN_REAL=$(abspath $(WASMFN)) TIER=$$t EXAMPLES_DIR=$(EXAMPLES_DIR) FNS_DIR=$(HOST_FNS_DIR) \
		bash tests/host/http_tests.sh || s=1; \
	done; exit $$s

# The example that calls out includes the guest header.
$(EXAMPLES_DIR)/fetch.wasm: examples/wasi_experimental_http.h
