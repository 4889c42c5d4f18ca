#!/usr/bin/env bash
# diff.sh — differential fuzzing of our engine's two tiers against each
# other and against Node's V8.
#
# For each seed, makes a random valid module with binaryen (wasm-opt -ttf over
# deterministic bytes from gen_inputs.mjs) and runs it three times, side by
# side: in our interpreter (diff_run --tier interp), in our native tier
# (diff_run --tier native: compiled once through LLVM, start function,
# calls and image instances all native) and in V8 (diff_run.mjs). The three
# transcripts are compared pairwise — interpreter/V8, native/V8,
# native/interpreter — and any disagreement is a mismatch. Before the
# random modules it replays every tests/fuzz/regressions/diff-*.wasm.
#
# Usage: tests/fuzz/diff.sh [--first N] [--count N] [--runner PATH] [--work DIR]
#   --first N    first seed (default 1)
#   --count N    number of seeds (default 100)
#   --runner P   our harness binary (default build/fuzz/diff_run)
#   --work DIR   scratch directory (default build/fuzz/diff)
# Run from the repository root. On a mismatch the module is saved as
# tests/fuzz/regressions/diff-SEED.wasm (with the transcripts beside it in
# the work directory: LABEL.interp, LABEL.native, LABEL.v8) and the script
# exits 1 after all seeds ran.
#
# A module the native compiler refuses for its documented frame limit
# (diff_run exits 3) stays interpreted, as it would in production: it is
# named on stderr and counted, and only the interpreter and V8 are compared.
# Any other compile or attach failure of a valid module shows in the native
# transcript ("native compile fail: ...") and is a mismatch.
#
# What is normalised, because engines (and tiers) may legitimately differ:
#   - NaN payloads: modules are made with --denan (binaryen rewrites every
#     NaN a float operation produces into 0), and any NaN that still reaches
#     a log call or a result prints as "nan" on both sides.
#   - trap messages: every trap prints as "trap"; call-stack exhaustion as
#     "exhausted" (V8's RangeError), which is still told apart.
#   - stack depth: where both sides exhaust their call stacks in the same
#     call, the transcripts are compared only up to that call: the depth at
#     which a stack runs out, and so how much was logged before, is each
#     engine's choice (the interpreter counts frames, native code measures
#     the thread's stack, V8 has its own). Exhaustion on one side only is a
#     mismatch: binaryen's hang limit (10, decremented at every function
#     entry and loop) keeps recursion a few calls deep, far from any of the
#     three limits, so it means a wrong result or a broken stack check.
#     Native code may turn recursion into something else (LLVM inlines and
#     turns self tail calls into loops): an infinite recursion then runs
#     until the deadline instead of exhausting, which the next rule covers
#     ("timeout" against "exhausted" in the same call is compared up to that
#     call). It cannot turn an infinite recursion into a result: every entry
#     keeps its stack check and fuel poll, which LLVM may not delete.
#   - time limits: where either side hits its time limit ("timeout": 5 s per
#     call for us, 120 s per module for node), the transcripts are compared
#     up to that call. Such seeds are named on stderr: binaryen's hang limit
#     makes every call short, so a timeout deserves a look.
#   - features: modules use only what both engines support (MVP + sign-ext,
#     mutable globals, non-trapping float-to-int, bulk memory, multi-value,
#     and SIMD in every fifth seed). JS has no v128 values, so calls with
#     v128 in the signature (exports, the log-v128 import) are refused on
#     both sides alike ("error v128 at the JS boundary").
#     binaryen 108's reference-types output relies on the GC proposal's
#     subtyping (funcref values in anyref/externref places) and is invalid
#     WebAssembly 2.0: every tenth seed enables it anyway and both engines
#     must agree that such a module is invalid (or run it identically).
#     The native tier compiles only modules that validate, so it agrees
#     with the interpreter on "invalid" by construction.
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

passed=0 failed=0 skipped=0 normalised=0 invalid=0 native_refused=0

# Prints the number of the first "call" block (1-based) of file $2 that holds
# the line $1, or nothing.
first_block_with() {
    awk -v what="$1" '/^call /{n++} $0 == what {print n; exit}' "$2"
}

# Prints the lines before call block $2 of file $1.
before_block() {
    awk -v k="$2" '/^call /{n++} n>=k{exit} {print}' "$1"
}

# Compares transcripts $1 and $2 with the normalisations above; true when
# they agree. Sets upto to the call they were compared up to ("" when
# compared whole).
agree() {
    local a=$1 b=$2
    upto=""
    cmp -s "$a" "$b" && return 0
    # Exhaustion must happen on both sides in the same call (binaryen's hang
    # limit keeps recursion shallow, so exhaustion on one side only is a
    # bug); a timeout may happen on one side only (V8 and native code are
    # much faster than the interpreter).
    local ea eb ta tb t k=""
    ea=$(first_block_with exhausted "$a") eb=$(first_block_with exhausted "$b")
    ta=$(first_block_with timeout "$a") tb=$(first_block_with timeout "$b")
    [[ -n $ea && $ea == "$eb" ]] && k=$ea
    for t in $ta $tb; do
        [[ -z $k || $t -lt $k ]] && k=$t
    done
    if [[ -n $k ]] && cmp -s <(before_block "$a" "$k") <(before_block "$b" "$k"); then
        upto=$k
        return 0
    fi
    return 1
}

# Runs one module in both of our tiers and in V8, and compares the three
# transcripts pairwise: interpreter and V8, native code and V8, native code
# and interpreter. $1 module, $2 label for messages, $3 where to save it on
# a mismatch (empty: do not save).
check_module() {
    local wasm=$1 label=$2 save=$3
    local interp="$work/$label.interp" native="$work/$label.native" v8="$work/$label.v8"
    # The three runs are independent: run them side by side (the native
    # one spends most of its time in LLVM).
    timeout 120 "$runner" --tier interp "$wasm" >"$interp" 2>"$interp.err" &
    local pid_interp=$!
    timeout 120 "$runner" --tier native "$wasm" >"$native" 2>"$native.err" &
    local pid_native=$!
    timeout 120 node "$here/diff_run.mjs" "$wasm" >"$v8" 2>"$v8.err" &
    local pid_v8=$!
    local rc_interp rc_native rc_v8
    wait "$pid_interp"; rc_interp=$?
    wait "$pid_native"; rc_native=$?
    wait "$pid_v8"; rc_v8=$?

    local rc tier bad=""
    for tier in interp native; do
        [[ $tier == interp ]] && rc=$rc_interp || rc=$rc_native
        if ((rc == 126 || rc == 127)); then
            echo "diff: cannot run $runner (status $rc); stopping" >&2
            exit 1
        fi
        if [[ $tier == native ]] && ((rc == 3)); then
            # The native compiler refused the module for its frame limit
            # (diff_run.c): it stays interpreted, as it would in production.
            echo "diff: $label: native tier refused it: $(tail -1 "$native.err")" >&2
            native_refused=$((native_refused + 1))
            native=""
            continue
        fi
        if ((rc != 0)); then
            echo "diff: $label: our harness (--tier $tier) exited with status $rc (crash or hang)" >&2
            tail -5 "$work/$label.$tier.err" >&2
            bad=1
        fi
    done
    if [[ -n $bad ]]; then
        failed=$((failed + 1))
        [[ -n $save ]] && cp "$wasm" "$save" && echo "diff: saved the module as $save" >&2
        return
    fi
    if ((rc_v8 == 124)); then
        echo timeout >>"$v8"
    elif ((rc_v8 != 0)); then
        echo "diff: $label: node exited with status $rc_v8" >&2
        tail -5 "$v8.err" >&2
        v8=""
    fi

    # Each pair that can be compared: "A B" with the names the messages use.
    local pairs=() pair a b na nb normalised_here="" mismatched=()
    [[ -n $v8 ]] && pairs+=("$interp|$v8|interpreter|V8")
    [[ -n $v8 && -n $native ]] && pairs+=("$native|$v8|native|V8")
    [[ -n $native ]] && pairs+=("$native|$interp|native|interpreter")
    for pair in "${pairs[@]}"; do
        IFS="|" read -r a b na nb <<<"$pair"
        if agree "$a" "$b"; then
            [[ -n $upto ]] && normalised_here+="${normalised_here:+,} $na/$nb up to call $upto"
        else
            mismatched+=("$a|$b|$na|$nb")
        fi
    done
    if ((${#mismatched[@]} == 0)); then
        if [[ -z $v8 ]]; then
            # Nothing to hold our tiers against (they agreed with each other).
            skipped=$((skipped + 1))
            return
        fi
        passed=$((passed + 1))
        [[ $(head -1 "$interp") == invalid ]] && invalid=$((invalid + 1))
        if [[ -n $normalised_here ]]; then
            normalised=$((normalised + 1))
            echo "diff: $label: compared$normalised_here (stack exhaustion or timeout)" >&2
        fi
        return
    fi
    failed=$((failed + 1))
    for pair in "${mismatched[@]}"; do
        IFS="|" read -r a b na nb <<<"$pair"
        echo "diff: MISMATCH $label, $na vs $nb ($a, $b)" >&2
        diff "$a" "$b" | head -20 >&2
    done
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
    ((seed % 5 == 2)) && flags+=(--enable-simd)
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

echo "diff: $normalised compared up to a stack exhaustion or timeout; $invalid invalid on every side;" \
    "$native_refused refused by the native compiler (its frame limit)"
echo "diff: $passed passed, $failed failed, $skipped skipped"
((failed == 0))
