#!/usr/bin/env bash
# diff.sh — differential fuzzing of our engine against Node's V8.
#
# For each seed, makes a random valid module with binaryen (wasm-opt -ttf over
# deterministic bytes from gen_inputs.mjs), runs it with diff_run (our
# engine) and diff_run.mjs (V8), and compares the two transcripts. Before the
# random modules it replays every tests/fuzz/regressions/diff-*.wasm.
#
# Usage: tests/fuzz/diff.sh [--first N] [--count N] [--runner PATH] [--work DIR]
#   --first N    first seed (default 1)
#   --count N    number of seeds (default 100)
#   --runner P   our harness binary (default build/fuzz/diff_run)
#   --work DIR   scratch directory (default build/fuzz/diff)
# Run from the repository root. On a mismatch the module is saved as
# tests/fuzz/regressions/diff-SEED.wasm (with the two transcripts beside it
# in the work directory) and the script exits 1 after all seeds ran.
#
# What is normalised, because the two engines may legitimately differ:
#   - NaN payloads: modules are made with --denan (binaryen rewrites every
#     NaN a float operation produces into 0), and any NaN that still reaches
#     a log call or a result prints as "nan" on both sides.
#   - trap messages: every trap prints as "trap"; call-stack exhaustion as
#     "exhausted" (V8's RangeError), which is still told apart.
#   - stack depth: where both sides exhaust their call stacks in the same
#     call, the transcripts are compared only up to that call: the depth at
#     which a stack runs out, and so how much was logged before, is each
#     engine's choice. Exhaustion on one side only is a mismatch.
#   - time limits: where either side hits its time limit ("timeout": 5 s per
#     call for us, 120 s per module for node), the transcripts are compared
#     up to that call. Such seeds are named on stderr: binaryen's hang limit
#     makes every call short, so a timeout deserves a look.
#   - features: modules use only what both engines support (MVP + sign-ext,
#     mutable globals, non-trapping float-to-int, bulk memory, multi-value).
#     binaryen 108's reference-types output relies on the GC proposal's
#     subtyping (funcref values in anyref/externref places) and is invalid
#     WebAssembly 2.0: every tenth seed enables it anyway and both engines
#     must agree that such a module is invalid (or run it identically).
# Every third module is also optimised with binaryen's -O2 after --denan.
set -uo pipefail

first=1
count=100
runner=build/fuzz/diff_run
work=build/fuzz/diff
here=$(dirname "$0")
regressions="$here/regressions"

while (($#)); do
    case $1 in
    --first) first=$2; shift 2 ;;
    --count) count=$2; shift 2 ;;
    --runner) runner=$2; shift 2 ;;
    --work) work=$2; shift 2 ;;
    *) echo "usage: $0 [--first N] [--count N] [--runner PATH] [--work DIR]" >&2; exit 2 ;;
    esac
done

for tool in wasm-opt node timeout; do
    if ! command -v "$tool" >/dev/null; then
        echo "diff: $tool not found (make deps installs it)" >&2
        exit 1
    fi
done
if [[ ! -x $runner ]]; then
    echo "diff: $runner not built" >&2
    exit 1
fi

FEATURES=(--mvp-features --enable-sign-ext --enable-mutable-globals
    --enable-nontrapping-float-to-int --enable-bulk-memory --enable-multivalue)

rm -rf "$work"
mkdir -p "$work"

passed=0 failed=0 skipped=0 normalised=0 invalid=0

# Prints the number of the first "call" block (1-based) of file $2 that holds
# the line $1, or nothing.
first_block_with() {
    awk -v what="$1" '/^call /{n++} $0 == what {print n; exit}' "$2"
}

# Prints the lines before call block $2 of file $1.
before_block() {
    awk -v k="$2" '/^call /{n++} n>=k{exit} {print}' "$1"
}

# Runs one module on both sides and compares. $1 module, $2 label for
# messages, $3 where to save it on a mismatch (empty: do not save).
check_module() {
    local wasm=$1 label=$2 save=$3
    local ours="$work/$label.ours" v8="$work/$label.v8"
    timeout 120 "$runner" "$wasm" >"$ours" 2>"$ours.err"
    local rc=$?
    if ((rc == 126 || rc == 127)); then
        echo "diff: cannot run $runner (status $rc); stopping" >&2
        exit 1
    fi
    if ((rc != 0)); then
        echo "diff: $label: our harness exited with status $rc (crash or hang)" >&2
        tail -5 "$ours.err" >&2
        failed=$((failed + 1))
        [[ -n $save ]] && cp "$wasm" "$save"
        return
    fi
    timeout 120 node "$here/diff_run.mjs" "$wasm" >"$v8" 2>"$v8.err"
    rc=$?
    if ((rc == 124)); then
        echo timeout >>"$v8"
    elif ((rc != 0)); then
        echo "diff: $label: node exited with status $rc" >&2
        tail -5 "$v8.err" >&2
        skipped=$((skipped + 1))
        return
    fi
    if cmp -s "$ours" "$v8"; then
        passed=$((passed + 1))
        [[ $(head -1 "$ours") == invalid ]] && invalid=$((invalid + 1))
        return
    fi
    # Exhaustion must happen on both sides in the same call (binaryen's hang
    # limit keeps recursion shallow, so exhaustion on one side only is a
    # bug); a timeout may happen on one side only (V8 is much faster).
    local ea eb ta tb k=""
    ea=$(first_block_with exhausted "$ours") eb=$(first_block_with exhausted "$v8")
    ta=$(first_block_with timeout "$ours") tb=$(first_block_with timeout "$v8")
    [[ -n $ea && $ea == "$eb" ]] && k=$ea
    for t in $ta $tb; do
        [[ -z $k || $t -lt $k ]] && k=$t
    done
    if [[ -n $k ]] && cmp -s <(before_block "$ours" "$k") <(before_block "$v8" "$k"); then
        passed=$((passed + 1))
        normalised=$((normalised + 1))
        echo "diff: $label: compared up to call $k (stack exhaustion or timeout)" >&2
        return
    fi
    failed=$((failed + 1))
    echo "diff: MISMATCH $label (ours: $ours, V8: $v8)" >&2
    diff "$ours" "$v8" | head -20 >&2
    if [[ -n $save ]]; then
        cp "$wasm" "$save"
        echo "diff: saved the module as $save" >&2
    fi
}

# 1. Known regressions first.
for wasm in "$regressions"/diff-*.wasm; do
    [[ -e $wasm ]] || continue
    check_module "$wasm" "regression-$(basename "$wasm" .wasm)" ""
done

# 2. Random modules from fixed seeds.
node "$here/gen_inputs.mjs" "$work/inputs" "$first" "$count" || exit 1
for ((seed = first; seed < first + count; seed++)); do
    flags=("${FEATURES[@]}")
    ((seed % 10 == 0)) && flags+=(--enable-reference-types)
    # A third of the modules are also optimised by binaryen, for the code
    # shapes a compiler emits (br_table, select, fused loops, ...).
    passes=(--denan)
    ((seed % 3 == 1)) && passes+=(-O2)
    wasm="$work/$seed.wasm"
    if [[ ! -f $work/inputs/$seed.bin ]]; then
        echo "diff: $work/inputs/$seed.bin vanished (was the work directory removed?); stopping" >&2
        exit 1
    fi
    if ! wasm-opt -ttf "$work/inputs/$seed.bin" -o "$wasm" "${flags[@]}" "${passes[@]}" \
        >/dev/null 2>"$work/$seed.wasm-opt.err"; then
        echo "diff: seed $seed: wasm-opt failed" >&2
        skipped=$((skipped + 1))
        continue
    fi
    check_module "$wasm" "seed-$seed" "$regressions/diff-$seed.wasm"
done

echo "diff: $normalised compared up to a stack exhaustion or timeout; $invalid invalid on both sides"
echo "diff: $passed passed, $failed failed, $skipped skipped"
((failed == 0))
