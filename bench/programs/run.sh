#!/usr/bin/env bash
# run.sh — benchmarks of real third-party C programs: the same program built
# from its Debian source package natively and to wasm32-wasi, timed natively,
# under Node.js (node:wasi, the same .wasm) and under `wasmfn run` with each
# of its tiers. `make bench-programs` (mk/bench-programs.mk) builds the
# programs with bench/programs/build.sh and then runs this from the
# repository root:
#
#   make bench-programs                    build (cached), run, print the
#                                          table, rewrite its section of
#                                          docs/benchmarks.md
#   make bench-programs BENCH_WRITE=0      the same, docs left alone
#   make bench-programs QUICK=1            pipeline check: small workloads,
#                                          one timed run each, no docs
#
# Programs and workloads (bench/programs/workloads/, all written for this
# benchmark; the programs' own sources are never committed):
#
#   lua      Lua 5.4 (lua5.4): `lua - SCALE < bench.lua`, six classic compute
#            problems (permutations, n-body, power iteration, binary trees,
#            text and word counts, a sieve)
#   sqlite   SQLite 3 shell (sqlite3): `sqlite3 -bail < bench.sql`, an
#            in-memory shop: 230,000 rows inserted, five indexes, joins,
#            aggregates, window functions, updates and deletes
#   bzip2    bzip2 (bzip2): `bzip2 -c` compressing 20 MiB of generated
#            log-like text (gen_input.c), and `bzip2 -dc` decompressing it,
#            timed as two workloads
#   bc       GNU bc (bc): `bc -l < bench.bc`, pi, e and square roots to
#            hundreds of digits, big factorials, Fibonacci numbers, powers
#
# Every run is a whole process, timed from the script's fork to the exit
# (wall clock, bash's EPOCHREALTIME), start-up included for everyone: the
# native binary's exec and dynamic linking, node's start-up, its reading and
# compiling the module, and wasmfn's loading, validating and compiling it.
# Input comes on stdin from a file, output goes to a file; no runner gets a
# preopened directory. Each runner's output of every run must equal the
# native build's byte for byte (bzip2's decompressed output must equal its
# input); any difference fails the benchmark, since it would mean an engine
# computed a wrong result. Exit status must be 0.
#
# Runners, in this order within each round:
#
#   native           build/programs/bin/native/NAME (gcc -O2), under env -i
#                    with only HOME (an empty directory) set
#   node             node --no-warnings tests/wasi/node_run.mjs F.wasm ARGS:
#                    Node's defaults (Liftoff first, TurboFan for hot
#                    functions; a function already running stays in Liftoff)
#   node-turbofan    the same with V8's --no-liftoff: every function compiled
#                    by TurboFan before it runs
#   wasmfn-TIER      build/wasmfn run --tier TIER F.wasm ARGS, for each TIER
#                    of WASMFN_TIERS. A tier `wasmfn run` rejects is skipped
#                    with a note; if wasmfn has no --tier option at all, the
#                    interp tier runs without the flag (the interpreter was
#                    then its only tier).
#
# Wasm runners get --env HOME=/ and nothing else. One warm-up round, then
# BENCH_REPS timed rounds; the table shows the median of the timed rounds
# and, apart, the warm-up ("first run"). The interpreter tier, 3-20x slower
# than native on these programs, runs BENCH_REPS_INTERP timed runs and no
# warm-up. wasmfn's cache of native code (WASMFN_CACHE_DIR) is a directory
# of the run's own, emptied before each workload: the first run of a tier
# that uses it compiles the module, later runs load the cached code, as a
# deployed function would. The wasmfn binary is copied first, so a rebuild
# of build/wasmfn during the run changes nothing.
#
# Node v20.20 here is killed by SIGSEGV in about half of its runs of the
# Lua workload (both modes), after the guest has returned and written all
# of its output: gdb shows the fault in JavaScript that V8 runs on the way
# out (Builtins_KeyedLoadIC_Megamorphic); exiting with process.exit() right
# after the guest did not avoid it, and the other workloads never crash.
# Such a run counts if its output is complete and correct, and the table
# notes how often it happened; a node killed before its output is complete
# is run again (three tries).
#
# Environment:
#   WASMFN             default build/wasmfn
#   WASMFN_TIERS       default "interp native"
#   NODE_MODES         default "default turbofan" (either or both)
#   BENCH_PROGRAMS     default "lua sqlite bzip2 bc"
#   BENCH_REPS         default 5          BENCH_REPS_INTERP   default 1
#   PROGRAMS_SCALE     workload size, default 1 (QUICK=1: 0.2)
#   BENCH_WRITE        default 1: rewrite the section of docs/benchmarks.md
#                      between <!-- programs-bench:begin/end --> (QUICK=1: 0)
#   QUICK              1: PROGRAMS_SCALE=0.2, BENCH_REPS=1, BENCH_WRITE=0
#
# Results: build/programs/run/ (times.tsv: workload, runner, round (0 is the
# warm-up), seconds; table.md; section.md, what goes into the docs; every
# runner's last output and stderr in out/).
set -euo pipefail

cd "$(dirname "$0")/../.."
# shellcheck disable=SC2034  # read by bench/lib.sh
BENCH_NAME=bench-programs
# shellcheck source=bench/lib.sh
source bench/lib.sh

WASMFN=${WASMFN:-build/wasmfn}
WASMFN_TIERS=${WASMFN_TIERS:-interp native}
NODE_MODES=${NODE_MODES:-default turbofan}
BENCH_PROGRAMS=${BENCH_PROGRAMS:-lua sqlite bzip2 bc}
QUICK=${QUICK:-0}
if [[ $QUICK == 1 ]]; then
    PROGRAMS_SCALE=${PROGRAMS_SCALE:-0.2} BENCH_REPS=1 BENCH_WRITE=0
fi
PROGRAMS_SCALE=${PROGRAMS_SCALE:-1}
REPS=${BENCH_REPS:-5}
INTERP_REPS=${BENCH_REPS_INTERP:-1}
BENCH_WRITE=${BENCH_WRITE:-1}

here=bench/programs
bin=build/programs/bin
work=build/programs/run
doc=docs/benchmarks.md
mkdir -p "$work/in" "$work/out" "$work/home"
rm -f "$work"/out/*

[[ -x $WASMFN ]] || die "$WASMFN not found (make builds it)"
# The binary measured stays the same for the whole run, even if build/wasmfn
# is rebuilt meanwhile.
cp "$WASMFN" "$work/wasmfn"
WASMFN=$work/wasmfn
load_start=$(cut -d' ' -f1 /proc/loadavg)
command -v node >/dev/null || die "node not found"
[[ $PROGRAMS_SCALE =~ ^[0-9]*\.?[0-9]+$ ]] || die "PROGRAMS_SCALE must be a positive number"
[[ $REPS =~ ^[1-9][0-9]*$ && $INTERP_REPS =~ ^[1-9][0-9]*$ ]] || die "BENCH_REPS and BENCH_REPS_INTERP must be positive integers"

# ---- workloads ----
# For each: the program, the file on its stdin, its arguments, a one-line
# description, and (bzip2 -d) a file the output must equal instead of the
# native run's output.

declare -A W_PROG W_STDIN W_ARGS W_DESC W_EXPECT
WORKLOADS=()

workload() { # NAME PROGRAM STDIN DESCRIPTION ARGS...
    local name=$1
    W_PROG[$name]=$2 W_STDIN[$name]=$3 W_DESC[$name]=$4
    shift 4
    W_ARGS[$name]="$(printf '%q ' "$@")"
    WORKLOADS+=("$name")
}

scale_int() { awk -v s="$PROGRAMS_SCALE" -v n="$1" 'BEGIN { v = int(n * s + 0.5); print (v < 1 ? 1 : v) }'; }

for p in $BENCH_PROGRAMS; do
    case $p in
    lua)
        workload lua lua "$here/workloads/bench.lua" \
            "\`lua - $PROGRAMS_SCALE < bench.lua\`: permutations, n-body, power iteration, binary trees, text, sieve" \
            - "$PROGRAMS_SCALE"
        ;;
    sqlite)
        workload sqlite sqlite3 "$here/workloads/bench.sql" \
            "\`sqlite3 -bail < bench.sql\`: in-memory, $(scale_int 30000) customers, 2000 products, $(scale_int 200000) orders inserted, 5 indexes, joins, aggregates, window functions, updates, deletes" \
            -bail -cmd ".parameter set @scale $PROGRAMS_SCALE"
        ;;
    bzip2)
        mib=$(scale_int 20)
        input=$work/in/input-${mib}MiB.txt
        if [[ ! -f $input ]]; then
            gcc -O2 -o "$work/gen_input" "$here/workloads/gen_input.c"
            "$work/gen_input" "$mib" >"$input.tmp" && mv "$input.tmp" "$input"
        fi
        # the compressed input of the decompression workload: the native build's
        "$bin/native/bzip2" -c <"$input" >"$work/in/input-${mib}MiB.txt.bz2"
        workload bzip2-c bzip2 "$input" "\`bzip2 -c\`: compress $mib MiB of generated log text" -c
        workload bzip2-d bzip2 "$work/in/input-${mib}MiB.txt.bz2" "\`bzip2 -dc\`: decompress it" -d -c
        W_EXPECT[bzip2-d]=$input
        ;;
    bc)
        { echo "k = $PROGRAMS_SCALE"; cat "$here/workloads/bench.bc"; } >"$work/in/bench.bc"
        workload bc bc "$work/in/bench.bc" \
            "\`bc -l < bench.bc\`: pi, e, square roots to hundreds of digits; factorial, Fibonacci, powers" -l
        ;;
    *) die "unknown program '$p' in BENCH_PROGRAMS (known: lua sqlite bzip2 bc)" ;;
    esac
    case $p in sqlite) exe=sqlite3 ;; *) exe=$p ;; esac
    [[ -x $bin/native/$exe && -f $bin/wasm/$exe.wasm ]] ||
        die "$bin/native/$exe or $bin/wasm/$exe.wasm missing: run bash bench/programs/build.sh"
done
((${#WORKLOADS[@]})) || die "no workloads (BENCH_PROGRAMS is empty)"

# ---- runners ----

RUNNERS=(native)
declare -A R_LABEL R_REPS R_WARM
R_LABEL[native]="native (gcc -O2)" R_REPS[native]=$REPS R_WARM[native]=1
NOTES=()

for m in $NODE_MODES; do
    case $m in
    default) RUNNERS+=(node) R_LABEL[node]="node (defaults)" R_REPS[node]=$REPS R_WARM[node]=1 ;;
    turbofan)
        RUNNERS+=(node-turbofan) R_LABEL[node-turbofan]="node --no-liftoff (TurboFan only)"
        R_REPS[node-turbofan]=$REPS R_WARM[node-turbofan]=1
        ;;
    *) die "unknown NODE_MODES entry '$m' (known: default turbofan)" ;;
    esac
done

# A module that does nothing, to ask wasmfn which tiers it accepts.
probe=$work/probe.wasm
[[ -f $probe ]] || printf 'int main(void) { return 0; }\n' |
    clang --target=wasm32-wasi -O2 -x c - -o "$probe" || die "cannot build the probe module"

declare -A R_TIER
for tier in $WASMFN_TIERS; do
    r=wasmfn-$tier
    if WASMFN_CACHE_DIR=$PWD/$work/wasmfn-cache "$WASMFN" run --tier "$tier" "$probe" >/dev/null 2>"$work/probe.err"; then
        R_TIER[$r]=$tier
        R_LABEL[$r]="wasmfn --tier $tier"
    else
        why=$(head -1 "$work/probe.err")
        if [[ $tier == interp ]] && grep -q -- "--tier" "$work/probe.err" &&
            "$WASMFN" run "$probe" >/dev/null 2>&1; then
            R_TIER[$r]=""
            R_LABEL[$r]="wasmfn (interpreter)"
            NOTES+=("\`wasmfn run\` has no \`--tier\` option at this commit (\"$why\"): the interpreter, its only tier, ran without the flag.")
        else
            NOTES+=("tier $tier skipped: \`wasmfn run --tier $tier\` was rejected (\"$why\").")
            say "skipping tier $tier: $why"
            continue
        fi
    fi
    RUNNERS+=("$r")
    if [[ $tier == interp ]]; then
        R_REPS[$r]=$INTERP_REPS R_WARM[$r]=0
    else
        R_REPS[$r]=$REPS R_WARM[$r]=1
    fi
done

# runner_cmd RUNNER WORKLOAD: fills the array CMD.
runner_cmd() {
    local r=$1 w=$2 prog=${W_PROG[$2]} args
    eval "args=(${W_ARGS[$w]})"
    case $r in
    native) CMD=(env -i "HOME=$PWD/$work/home" "$bin/native/$prog" "${args[@]}") ;;
    node) CMD=(node --no-warnings tests/wasi/node_run.mjs --env HOME=/ "$bin/wasm/$prog.wasm" "${args[@]}") ;;
    node-turbofan)
        CMD=(node --no-warnings --no-liftoff tests/wasi/node_run.mjs --env HOME=/ "$bin/wasm/$prog.wasm" "${args[@]}")
        ;;
    wasmfn-*)
        CMD=("$WASMFN" run)
        if [[ -n ${R_TIER[$r]} ]]; then CMD+=(--tier "${R_TIER[$r]}"); fi
        CMD+=(--env HOME=/ "$bin/wasm/$prog.wasm" "${args[@]}")
        ;;
    esac
}

declare -A CRASHES CRASH_SIG

# run_once RUNNER WORKLOAD ROUND: runs, checks the output, records the time
# (ROUND 0 is the warm-up: checked and recorded, but not in the median).
run_once() {
    local r=$1 w=$2 round=$3 t0 t1 rc try crashed=0
    local o=$work/out/$w.$r e=$work/out/$w.$r.err
    local expect=${W_EXPECT[$w]:-$work/out/$w.reference}
    runner_cmd "$r" "$w"
    for try in 1 2 3; do
        rc=0
        t0=$EPOCHREALTIME
        WASMFN_CACHE_DIR=$PWD/$work/wasmfn-cache "${CMD[@]}" <"${W_STDIN[$w]}" >"$o" 2>"$e" || rc=$?
        t1=$EPOCHREALTIME
        # Node killed by a signal (V8 crashes here on its way out, after the
        # guest finished; see the header): the run counts when its
        # output is complete and correct, and the table says how often it
        # happened; a node killed before that is run again. Any other
        # failure, and any failure of native or wasmfn, fails the benchmark.
        if [[ $r == node* ]] && ((rc > 128)); then
            if [[ -f $expect ]] && cmp -s "$o" "$expect"; then
                crashed=$((rc - 128))
                rc=0
            elif ((try < 3)); then
                NOTES+=("${R_LABEL[$r]} was killed by signal $((rc - 128)) before finishing $w (round $round); that run was repeated.")
                say "$w: ${R_LABEL[$r]} killed by signal $((rc - 128)) before finishing; repeating the run"
                continue
            fi
        fi
        break
    done
    if ((rc != 0)); then
        head -5 "$e" >&2
        die "$w: ${R_LABEL[$r]} exited with status $rc (command: ${CMD[*]}; stderr: $e)"
    fi
    if [[ $r == native && -z ${W_EXPECT[$w]:-} && ! -f $expect ]]; then
        cp "$o" "$expect"
    elif ! cmp -s "$o" "$expect"; then
        cmp "$o" "$expect" >&2 || true
        die "$w: the output of ${R_LABEL[$r]} differs from $([[ -n ${W_EXPECT[$w]:-} ]] && echo "the expected $expect" || echo "the native build's") ($o): an engine computed a wrong result"
    fi
    if ((crashed)); then
        CRASHES[$w,$r]=$((${CRASHES[$w,$r]:-0} + 1)) CRASH_SIG[$r]=$crashed
        say "$w: ${R_LABEL[$r]} was killed by signal $crashed after writing its complete, correct output"
    fi
    local secs
    secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.4f", b - a }')
    printf '%s\t%s\t%d\t%s\n' "$w" "$r" "$round" "$secs" >>"$work/times.tsv"
    say "$w round $round: ${R_LABEL[$r]} $secs s"
}

: >"$work/times.tsv"
maxreps=0
for r in "${RUNNERS[@]}"; do
    if ((R_REPS[$r] > maxreps)); then maxreps=${R_REPS[$r]}; fi
done
say "workloads: ${WORKLOADS[*]}; runners: ${RUNNERS[*]}; $REPS timed rounds (interp: $INTERP_REPS), scale $PROGRAMS_SCALE"
for w in "${WORKLOADS[@]}"; do
    rm -f "$work/out/$w.reference"
    # wasmfn's cache of native code starts empty for each workload, so the
    # first run of a tier that uses it includes compiling the module
    rm -rf "$work/wasmfn-cache"
    # Round 0 (warm-up) starts with native, which makes the reference output.
    for ((round = 0; round <= maxreps; round++)); do
        for r in "${RUNNERS[@]}"; do
            if ((round == 0 && R_WARM[$r] == 0)) || ((round > R_REPS[$r])); then continue; fi
            run_once "$r" "$w" "$round"
        done
    done
done

# ---- the table ----

med() { awk -F'\t' -v w="$1" -v r="$2" '$1 == w && $2 == r && $3 > 0 { print $4 }' "$work/times.tsv" | median; }
# the time of a runner's first run of a workload (the warm-up, if it had one)
first() { awk -F'\t' -v w="$1" -v r="$2" '$1 == w && $2 == r { print $4; exit }' "$work/times.tsv"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f×", a / b; else print "" }'; }
fmt_s() { awk -v a="$1" 'BEGIN { printf (a < 10 ? "%.3f" : "%.2f"), a }'; }

has_node=0 has_tf=0
if [[ " ${RUNNERS[*]} " == *" node "* ]]; then has_node=1; fi
if [[ " ${RUNNERS[*]} " == *" node-turbofan "* ]]; then has_tf=1; fi

declare -A MED
for w in "${WORKLOADS[@]}"; do
    for r in "${RUNNERS[@]}"; do MED[$w,$r]=$(med "$w" "$r"); done
done

version_of() { awk -v n="$1" '$1 == n { print $2 " " $3 }' build/programs/versions 2>/dev/null; }

{
    head="| workload | runner | first run s | runs | median s | ÷ native"
    sep="|---|---|---:|---:|---:|---:"
    if ((has_node)); then head+=" | ÷ node" sep+="|---:"; fi
    if ((has_tf)); then head+=" | ÷ node TurboFan" sep+="|---:"; fi
    echo "$head |"
    echo "$sep|"
    for w in "${WORKLOADS[@]}"; do
        label="**$w**"
        for r in "${RUNNERS[@]}"; do
            m=${MED[$w,$r]}
            row="| $label | ${R_LABEL[$r]} | $(fmt_s "$(first "$w" "$r")") | ${R_REPS[$r]} | $(fmt_s "$m") | $(ratio "$m" "${MED[$w,native]}")"
            label=""
            if ((has_node)); then row+=" | $(ratio "$m" "${MED[$w,node]}")"; fi
            if ((has_tf)); then row+=" | $(ratio "$m" "${MED[$w,node-turbofan]}")"; fi
            echo "$row |"
        done
    done
    echo
    # geometric means of the ratios over the workloads, per runner
    echo "Geometric mean over the ${#WORKLOADS[@]} workloads:"
    echo
    head="| runner | ÷ native" sep="|---|---:"
    if ((has_node)); then head+=" | ÷ node" sep+="|---:"; fi
    if ((has_tf)); then head+=" | ÷ node TurboFan" sep+="|---:"; fi
    echo "$head |"
    echo "$sep|"
    for r in "${RUNNERS[@]}"; do
        row="| ${R_LABEL[$r]}"
        bases=(native)
        if ((has_node)); then bases+=(node); fi
        if ((has_tf)); then bases+=(node-turbofan); fi
        for base in "${bases[@]}"; do
            g=$(for w in "${WORKLOADS[@]}"; do echo "${MED[$w,$r]} ${MED[$w,$base]}"; done |
                awk '{ s += log($1 / $2); n++ } END { if (n) printf "%.2f×", exp(s / n) }')
            row+=" | $g"
        done
        echo "$row |"
    done
    echo
    # the target, for every wasmfn tier measured: within 1.5x of native, and
    # faster than the faster of the node modes measured
    echo "Target: each program within 1.5× of native and faster than Node (the faster of the Node modes measured):"
    echo
    any=0
    for r in "${RUNNERS[@]}"; do
        [[ $r == wasmfn-* ]] || continue
        if ((!any)); then
            echo "| runner | workload | ÷ native | ÷ faster node | ≤ 1.5× native | faster than node |"
            echo "|---|---|---:|---:|---|---|"
        fi
        any=1
        for w in "${WORKLOADS[@]}"; do
            m=${MED[$w,$r]}
            best=""
            if ((has_node)); then best=${MED[$w,node]}; fi
            if ((has_tf)); then
                t=${MED[$w,node-turbofan]}
                if [[ -z $best ]]; then best=$t; else best=$(awk -v a="$best" -v b="$t" 'BEGIN { print (b < a) ? b : a }'); fi
            fi
            ok_native=$(awk -v m="$m" -v n="${MED[$w,native]}" 'BEGIN { print (m <= 1.5 * n) ? "met" : "not met" }')
            if [[ -n $best ]]; then
                ok_node=$(awk -v m="$m" -v b="$best" 'BEGIN { print (m < b) ? "met" : "not met" }')
                echo "| ${R_LABEL[$r]} | $w | $(ratio "$m" "${MED[$w,native]}") | $(ratio "$m" "$best") | $ok_native | $ok_node |"
            else
                echo "| ${R_LABEL[$r]} | $w | $(ratio "$m" "${MED[$w,native]}") | | $ok_native | (node not measured) |"
            fi
        done
    done
    if ((!any)); then echo "No wasmfn tier was measured."; fi
    echo
    echo "\"first run\" is the warm-up run (not in the median; for wasmfn, with its cache of native code empty);"
    echo "for a runner without a warm-up, its first timed run."
    echo
    for w in "${WORKLOADS[@]}"; do
        for r in "${RUNNERS[@]}"; do
            n=${CRASHES[$w,$r]:-0}
            if ((n > 0)); then
                NOTES+=("${R_LABEL[$r]} was killed by SIG$(kill -l "${CRASH_SIG[$r]}") on its way out in $n of its $((R_REPS[$r] + R_WARM[$r])) runs of $w, after writing complete and correct output; those runs are counted (a crash of Node/V8, not of the guest).")
            fi
        done
    done
    for n in "${NOTES[@]}"; do echo "- Note: $n"; done
} >"$work/table.md"

cat "$work/table.md"

model=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)
commit=$(git rev-parse --short --verify -q HEAD 2>/dev/null || echo unknown)
if [[ $commit != unknown && -n $(git status --porcelain -- src bench/programs 2>/dev/null) ]]; then
    commit="$commit (with uncommitted changes to src/ or bench/programs/)"
fi
versions=""
for p in $BENCH_PROGRAMS; do versions+="${versions:+, }$p $(version_of "$p" | sed 's/^[^ ]* //') (Debian source package $(version_of "$p" | cut -d' ' -f1))"; done
{
    echo "Measured $(date -u +%Y-%m-%d) on ${model:-an unknown CPU} ($(nproc) cores), commit $commit,"
    echo "with \`make bench-programs\`: median of the timed runs after one warm-up run"
    echo "(the interpreter tier: no warm-up), whole processes, wall time, scale $PROGRAMS_SCALE."
    echo "Programs: $versions. Node $(node --version), gcc $(gcc -dumpfullversion), clang $(clang -dumpversion),"
    echo "wasi-libc $(dpkg-query -W -f='${Version}' wasi-libc 2>/dev/null || echo unknown). 1-minute load average at the start and"
    echo "the end of the run: $load_start, $(cut -d' ' -f1 /proc/loadavg) (near 0 on an idle machine; anything else running"
    echo "on the cores slows every runner, the longest runs most)."
    echo
    for w in "${WORKLOADS[@]}"; do echo "- **$w**: ${W_DESC[$w]}"; done
    echo
    cat "$work/table.md"
} >"$work/section.md"

if [[ $BENCH_WRITE != 0 ]]; then
    begin='<!-- programs-bench:begin -->' end='<!-- programs-bench:end -->'
    if [[ ! -f $doc ]] || ! grep -qF "$begin" "$doc"; then
        die "$doc has no $begin marker; not writing"
    fi
    awk -v begin="$begin" -v end="$end" -v file="$work/section.md" '
        $0 == begin { print; while ((getline line < file) > 0) print line; skip = 1; next }
        $0 == end { skip = 0 }
        !skip { print }
    ' "$doc" >"$doc.tmp" && mv "$doc.tmp" "$doc"
    say "wrote the table into $doc"
fi
