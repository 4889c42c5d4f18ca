#!/usr/bin/env bash
# report.sh — runs engine_bench and records its table in docs/benchmarks.md.
#
# Usage: bench/engine/report.sh ENGINE_BENCH KERNELS.wasm REPS [KERNELS_SIMD.wasm]
# (`make bench-engine` runs it). Prints the table; unless BENCH_WRITE=0,
# replaces the text between the engine-bench markers of docs/benchmarks.md
# with the table, the date, the machine and the commit.
set -euo pipefail

bench=$1 wasm=$2 reps=$3 simd=${4:-}
doc=docs/benchmarks.md
out=$(dirname "$bench")/engine.md

status=0
"$bench" --reps "$reps" --node bench/engine/node_bench.mjs ${simd:+--simd "$simd"} "$wasm" >"$out.table" || status=$?
cat "$out.table"
if ((status != 0)); then
    echo "report.sh: engine_bench failed (a wrong checksum or an error, see above); docs not written" >&2
    exit "$status"
fi

model=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)
commit=$(git rev-parse --short --verify -q HEAD 2>/dev/null || echo unknown)
if [[ $commit != unknown ]] && ! git diff-index --quiet HEAD -- src/engine bench/engine 2>/dev/null; then
    commit="$commit (with uncommitted changes to the engine or the bench)"
fi
{
    echo "Measured $(date -u +%Y-%m-%d) on ${model:-an unknown CPU} ($(nproc) cores),"
    echo "commit $commit, with \`make bench-engine\` (median of $reps runs after one"
    echo "warm-up run; Node $(node --version 2>/dev/null || echo n/a), gcc $(gcc -dumpfullversion), clang $(clang -dumpversion))."
    echo
    cat "$out.table"
} >"$out"

if [[ ${BENCH_WRITE:-1} != 0 ]]; then
    begin='<!-- engine-bench:begin -->' end='<!-- engine-bench:end -->'
    if [[ ! -f $doc ]] || ! grep -qF "$begin" "$doc"; then
        echo "report.sh: $doc has no $begin marker; not writing" >&2
        exit 1
    fi
    awk -v begin="$begin" -v end="$end" -v file="$out" '
        $0 == begin { print; while ((getline line < file) > 0) print line; skip = 1; next }
        $0 == end { skip = 0 }
        !skip { print }
    ' "$doc" >"$doc.tmp" && mv "$doc.tmp" "$doc"
    echo "report.sh: wrote the table into $doc"
fi
