# mk/bench-compare.mk — `make bench`'s side-by-side comparison (bench/compare/):
# wasmfn against workerd, Node.js WASI, native CGI and nginx on this machine.
#
#   make bench           deps, workerd from npm, then every benchmark: the
#                        engine kernels (mk/bench.mk) and this comparison,
#                        which rewrites its section of docs/benchmarks.md and
#                        docs/bench/*.png (about 10 minutes on 2 cores)
#   make bench QUICK=1   a one-minute check of the whole pipeline: one short
#                        run, nothing written to docs/ (results in
#                        build/bench-compare/)
#   make bench-compare   the comparison alone
#
# BENCH_PORT=N moves the 9 loopback ports it uses (default 18400..18408).
# workerd comes from npm (bench/package.json pins it; bench/node_modules is
# not committed). If npm or workerd fails, the comparison runs without it and
# the docs say what failed (build/bench-npm.log).

QUICK ?= 0
BENCH_COMPARE_OUT := $(BUILD)/bench-compare
BENCH_NPM_STAMP := bench/node_modules/.package-lock.json

ifeq ($(QUICK),1)
# the engine kernels too: one timed run, and the docs left alone
BENCH_REPS := 1
BENCH_WRITE := 0
endif

.PHONY: bench-compare bench-npm

bench: bench-compare

# With `make bench`, the comparison runs after the engine kernels, never
# beside them (timings of two benchmarks sharing 2 cores mean nothing).
ifneq ($(filter bench,$(MAKECMDGOALS)),)
bench-compare: | bench-engine
endif

$(BENCH_NPM_STAMP): bench/package.json bench/package-lock.json
	@mkdir -p $(BUILD)
	@echo "bench: npm ci in bench/ (workerd)"
	@if (cd bench && npm ci --no-audit --no-fund) >$(BUILD)/bench-npm.log 2>&1; then \
	    touch $@; \
	else \
	    echo "bench: npm ci failed, workerd will be left out: $$(tail -1 $(BUILD)/bench-npm.log)" >&2; \
	fi

bench-npm: $(BENCH_NPM_STAMP)

bench-compare: deps $(WASMFN) bench-npm
	QUICK=$(QUICK) BENCH_WRITE=$(BENCH_WRITE) WASMFN=$(WASMFN) bash bench/compare/run.sh
