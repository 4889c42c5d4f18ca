# mk/coldstart.mk — `make bench-coldstart` (part of `make bench`):
#
#   build/bench/coldstart_bench   instance-from-image timings for hello.wasm,
#                                 interpreted and with native code (--native)
#                                 (bench/coldstart/coldstart_bench.c)
#   bench/coldstart/http_zero.sh  HTTP requests to 100 functions scaled to
#                                 zero through the real daemon, --tier interp
#                                 and with native code
#
# COLDSTART_ITERS=N sets the in-process iterations (default 20000). Results
# are recorded by hand in docs/benchmarks.md ("Cold starts"). Never part of
# `make test`.

COLDSTART_BENCH := $(BUILD)/bench/coldstart_bench
COLDSTART_ITERS ?= 20000

.PHONY: bench-coldstart

bench: bench-coldstart

$(COLDSTART_BENCH): bench/coldstart/coldstart_bench.c $(LIB)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(LIB) $(LIBS)

bench-coldstart: $(COLDSTART_BENCH) $(WASMFN) examples
	./$(COLDSTART_BENCH) $(EXAMPLES_DIR)/hello.wasm $(COLDSTART_ITERS)
	./$(COLDSTART_BENCH) --native $(EXAMPLES_DIR)/hello.wasm $(COLDSTART_ITERS)
	WASMFN_ARGS="--tier interp" bash bench/coldstart/http_zero.sh $(WASMFN) $(EXAMPLES_DIR)/hello.wasm 100
	bash bench/coldstart/http_zero.sh $(WASMFN) $(EXAMPLES_DIR)/hello.wasm 100
