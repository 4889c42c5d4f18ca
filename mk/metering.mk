# mk/metering.mk — metering (src/metering, docs/metering.md).
#
#   make bench-metering   ns per mtr_record call with 1..8 threads, and the
#                         time of one flush (bench/metering/metering_bench.c);
#                         part of `make bench`. METERING_BENCH_N records per
#                         thread (default 2000000).
#
# The unit tests (tests/metering/test_*.c) run with test-unit. SQLite and
# cJSON are already in LIBS (mk/api.mk).

METERING_BENCH := $(BUILD)/bench/metering_bench
METERING_BENCH_N ?= 2000000

.PHONY: bench-metering

bench: bench-metering

$(METERING_BENCH): bench/metering/metering_bench.c $(LIB)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(LIB) $(LIBS)

bench-metering: $(METERING_BENCH)
	@$(METERING_BENCH) "" $(METERING_BENCH_N)

# `make test-metering`: metering through the real daemon (tests/metering/run_tests.sh).
TEST_STEPS += test-metering

.PHONY: test-metering
test-metering: $(WASMFN) examples serving-fns
	@s=0; for t in $(DAEMON_TIERS); do echo "== $@ ($$t tier)"; \
		WASMFN=$(TIER_WRAPPER) WASMFN_REAL=$(abspath $(WASMFN)) TIER=$$t EXAMPLES_DIR=$(EXAMPLES_DIR) FNS_DIR=$(SERVING_FNS_DIR) \
		bash tests/metering/run_tests.sh || s=1; \
	done; exit $$s

# `make bench-metering-throughput`: hello-world req/s with metering on and off
# (bench/metering/throughput.sh); part of `make bench`.
.PHONY: bench-metering-throughput
bench: bench-metering-throughput
bench-metering-throughput: $(WASMFN) examples
	@PIN=1 bash bench/metering/throughput.sh $(if $(filter 1,$(QUICK)),1 3,6 8)
