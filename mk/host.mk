# mk/host.mk — host APIs beyond WASI (src/host/): wasmfn_kv, the key-value
# stores (docs/host-kv.md), and secrets and config maps as env values
# (docs/secrets.md).
#
#   make host-fns     tests/host/fns/*.c -> build/host-fns/*.wasm (wasm32-wasi)
#   make test-kv      tests/host/kv_tests.sh, once per tier: wasmfn_kv through
#                     the daemon (SQLite, then --redis with a redis-server it
#                     starts), the admin API and `wasmfn kv`
#
# Like the examples, the test functions do not depend on BUILD.

# Secrets are sealed with libsodium (src/store/secrets.c).
LIBS += -lsodium

HOST_FNS_DIR := build/host-fns
HOST_FNS_SRCS := $(sort $(wildcard tests/host/fns/*.c))
HOST_FNS_WASM := $(patsubst tests/host/fns/%.c,$(HOST_FNS_DIR)/%.wasm,$(HOST_FNS_SRCS))

.PHONY: host-fns test-kv

host-fns: $(HOST_FNS_WASM)

$(HOST_FNS_DIR)/%.wasm: tests/host/fns/%.c examples/wasmfn_kv.h
	@mkdir -p $(@D)
	$(EXAMPLES_CC) $(EXAMPLES_CFLAGS) $< -o $@

TEST_STEPS += test-kv
test-kv: $(WASMFN) examples host-fns
	@s=0; for t in $(DAEMON_TIERS); do echo "== $@ ($$t tier)"; \
		WASMFN=$(TIER_WRAPPER) WASMFN_REAL=$(abspath $(WASMFN)) TIER=$$t EXAMPLES_DIR=$(EXAMPLES_DIR) FNS_DIR=$(HOST_FNS_DIR) \
		bash tests/host/kv_tests.sh || s=1; \
	done; exit $$s

# `make test-secrets`: Secrets and ConfigMaps as env values, never in clear
# text anywhere a client, an operator or the disk could see
# (tests/host/secrets_tests.sh), once per tier.
TEST_STEPS += test-secrets
.PHONY: test-secrets
test-secrets: $(WASMFN) host-fns
	@s=0; for t in $(DAEMON_TIERS); do echo "== $@ ($$t tier)"; \
		WASMFN=$(TIER_WRAPPER) WASMFN_REAL=$(abspath $(WASMFN)) TIER=$$t FNS_DIR=$(HOST_FNS_DIR) \
		bash tests/host/secrets_tests.sh || s=1; \
	done; exit $$s
