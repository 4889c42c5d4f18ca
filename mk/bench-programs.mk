# mk/bench-programs.mk — `make bench-programs` (part of `make bench`): real
# third-party C programs (Lua, the SQLite shell, bzip2, GNU bc), built from
# their Debian source packages natively (gcc -O2) and to wasm32-wasi (clang
# -O2), timed natively, under Node.js's WASI and under `wasmfn run` for
# each tier (bench/programs/run.sh; its header says what is measured).
#
#   make bench-programs               fetch and build (cached in
#                                     build/programs/), run, print the table,
#                                     rewrite its section of docs/benchmarks.md
#   make bench-programs BENCH_WRITE=0 docs left alone
#   make bench-programs QUICK=1       a quick pipeline check (small
#                                     workloads, one run each, docs left alone)
#
# WASMFN_TIERS (default "interp native") lists the tiers to time; a tier
# `wasmfn run --tier` rejects is skipped with a note. BENCH_REPS (default 5,
# mk/bench.mk) timed runs per runner, BENCH_REPS_INTERP (default 1) for the
# interpreter; BENCH_PROGRAMS="lua sqlite bzip2 bc" picks programs. About
# 10 minutes with both tiers on an idle 2-core machine (7 with the
# interpreter alone), plus 2 for the first build.
# Never part of `make test`: a timing fails nothing, but an output that
# differs from the native build's fails the benchmark.
#
#   make bench-compile                the native tier's compile time and
#                                     object size per MiB of Wasm code, over
#                                     the same four programs
#                                     (bench/programs/compile_stats.sh)

WASMFN_TIERS ?= interp native
BENCH_PROGRAMS ?= lua sqlite bzip2 bc
BENCH_REPS_INTERP ?= 1

.PHONY: bench-programs bench-compile

bench: bench-programs bench-compile

# after the comparison and the throughput run when `make bench` runs them
# all (two benchmarks must not share 2 cores)
ifneq ($(filter bench,$(MAKECMDGOALS)),)
bench-programs: | bench-throughput
endif

bench-programs: deps $(WASMFN)
	@bash bench/programs/build.sh $(BENCH_PROGRAMS)
	@WASMFN=$(WASMFN) WASMFN_TIERS="$(WASMFN_TIERS)" BENCH_PROGRAMS="$(BENCH_PROGRAMS)" \
		BENCH_REPS=$(BENCH_REPS) BENCH_REPS_INTERP=$(BENCH_REPS_INTERP) \
		BENCH_WRITE=$(BENCH_WRITE) QUICK=$(QUICK) bash bench/programs/run.sh

ifneq ($(filter bench,$(MAKECMDGOALS)),)
bench-compile: | bench-programs
endif

bench-compile: deps $(WASMFN)
	@bash bench/programs/build.sh $(BENCH_PROGRAMS)
	@bash bench/programs/compile_stats.sh $(WASMFN) \
		$(foreach p,$(BENCH_PROGRAMS),build/programs/bin/wasm/$(if $(filter sqlite,$(p)),sqlite3,$(p)).wasm)
