# mk/throughput.mk — `make bench-throughput` (part of `make bench`):
# hello-world requests/s with a fresh instance per request against nginx's
# static 200, same wrk command, same run (bench/throughput/run.sh; about a
# minute). RUNS=N and DUR=S change the runs and their length. Results are
# recorded by hand in docs/benchmarks.md ("Throughput"). Never part of
# `make test`.

.PHONY: bench-throughput

bench: bench-throughput

# after the comparison when both run (two benchmarks must not share 2 cores)
ifneq ($(filter bench,$(MAKECMDGOALS)),)
bench-throughput: | bench-compare
endif

bench-throughput: deps $(WASMFN)
	WASMFN=$(WASMFN) bash bench/throughput/run.sh
