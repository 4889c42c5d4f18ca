#!/usr/bin/env bash
# run_tests.sh — the WASI and `wasmfn run` tests.
#
#   WASMFN=build/wasmfn WASI_DIR=build/wasi bash tests/wasi/run_tests.sh [FILTER]
#
# Runs the programs of tests/wasi/ (built by `make wasi-programs` into
# WASI_DIR) under `wasmfn run` and checks what a user would see: stdout,
# stderr and exit status; files in the preopened directory and outside it;
# the same corpus under Node's built-in WASI (differential); and the compute
# kernels against the same C built natively. Prints one line per test and
# ends with `wasi: N passed, M failed`; exits non-zero if any failed. Each
# test runs in its own temporary directory, removed afterwards. FILTER (a
# substring) runs only the tests whose names contain it.
#
# TIER=interp|native runs every guest in that tier (`wasmfn run --tier`;
# mk/wasi.mk runs the suite once per tier). Native code is cached in
# WASMFN_CACHE_DIR (default: a directory of this run), so each module is
# compiled once.
set -u

WASMFN=$(realpath "${WASMFN:-build/wasmfn}")
WASI_DIR=$(realpath "${WASI_DIR:-build/wasi}")
HERE=$(cd "$(dirname "$0")" && pwd)
FILTER=${1:-}
TIER=${TIER:-}
ROOT=$(mktemp -d "${TMPDIR:-/tmp}/wasmfn-wasi.XXXXXX")
trap 'rm -rf "$ROOT"' EXIT
export WASMFN_CACHE_DIR=${WASMFN_CACHE_DIR:-$ROOT/cache}
if [[ -n $TIER ]]; then
    # Every `wasmfn run` below gets --tier: a wrapper stands in for the binary.
    real=$WASMFN
    WASMFN=$ROOT/wasmfn
    printf '#!/bin/sh\nif [ "$1" = run ]; then shift; exec "%s" run --tier %s "$@"; fi\nexec "%s" "$@"\n' \
        "$real" "$TIER" "$real" >"$WASMFN"
    chmod +x "$WASMFN"
fi
passed=0
failed=0

# A test is a shell function run in a subshell inside its own directory;
# it fails by returning non-zero after saying why on stdout.
run_test() {
    local name=$1
    shift
    if [[ -n "$FILTER" && "$name" != *"$FILTER"* ]]; then return; fi
    local dir
    dir=$(mktemp -d "$ROOT/t.XXXXXX")
    if [[ -n $TIER ]]; then name="[$TIER] $name"; fi
    if (cd "$dir" && "$@") >"$dir.log" 2>&1; then
        echo "ok   $name"
        passed=$((passed + 1))
    else
        echo "FAIL $name"
        sed 's/^/     | /' "$dir.log" | tail -n 25
        failed=$((failed + 1))
    fi
    rm -rf "$dir" "$dir.log"
}

W() { "$WASMFN" run "$@"; }
P() { echo "$WASI_DIR/$1.wasm"; }

# expect_status WANT CMD...: runs CMD, keeps out/err in ./out ./err.
expect_status() {
    local want=$1
    shift
    "$@" >out 2>err
    local got=$?
    if [[ $got -ne $want ]]; then
        echo "exit status $got, want $want: $*"
        echo "-- stdout:"; head -n 20 out
        echo "-- stderr:"; head -n 20 err
        return 1
    fi
}

# One line on stderr, matching a pattern.
expect_err_line() {
    local pattern=$1
    if [[ $(wc -l <err) -ne 1 ]]; then
        echo "stderr has $(wc -l <err) lines, want 1:"; cat err
        return 1
    fi
    if ! grep -qE -- "$pattern" err; then
        echo "stderr does not match /$pattern/:"; cat err
        return 1
    fi
}

expect_out() {
    if ! grep -qE -- "$1" out; then
        echo "stdout does not match /$1/:"; head -n 40 out
        return 1
    fi
}

# ---- args, env, exit codes, stdin --------------------------------------

t_args_env() {
    expect_status 0 env HOST_SECRET=leak "$WASMFN" run --env GREETING=hi --env=EMPTY= \
        --env "SPACED=a b=c" "$(P args_env)" one "two words" "" -x || return 1
    cat >want <<EOF
argc=5
argv[1]=one
argv[2]=two words
argv[3]=
argv[4]=-x
envc=3
env EMPTY=
env GREETING=hi
env SPACED=a b=c
GREETING=hi
EOF
    diff -u want out
}

t_argv0() {
    cp "$(P args_env)" prog.wasm
    expect_status 0 W prog.wasm && expect_out '^argc=1$' || return 1
    # argv[0] is the module's file name as given.
    expect_status 0 W "$(P exit_code)" 0 && expect_out '^exiting with 0 via return$'
}

t_exit_codes() {
    local c how
    for c in 0 1 3 42 123 255; do
        for how in return exit _Exit; do
            expect_status $c W "$(P exit_code)" $c $how || return 1
            expect_out "^exiting with $c via $how\$" || return 1
            [[ ! -s err ]] || { echo "unexpected stderr:"; cat err; return 1; }
        done
    done
}

t_stdin_pipe() {
    seq 1 30000 >input
    head -c 65536 /dev/urandom >>input
    "$WASI_DIR/native/stdin_cat" <input >want || return 1
    expect_status 0 W "$(P stdin_cat)" <input || return 1
    cmp want out || return 1
    # Empty stdin and a closed stdin (wasmfn puts /dev/null there) both
    # read as end of file.
    expect_status 0 W "$(P stdin_cat)" </dev/null && expect_out '^bytes=0 ' || return 1
    expect_status 0 W "$(P stdin_cat)" <&- && expect_out '^bytes=0 '
}

t_stdout_closed_pipe() {
    # A reader that goes away gives the guest EPIPE, not wasmfn a SIGPIPE.
    seq 1 200000 >input
    W "$(P stdin_cat)" <input 2>err | head -c 10 >/dev/null
    local st=${PIPESTATUS[0]}
    [[ $st -lt 124 ]] || { echo "wasmfn died with $st"; cat err; return 1; }
}

# ---- files and directories ----------------------------------------------

t_file_io() {
    mkdir box
    expect_status 0 W --dir box:/sandbox "$(P file_io)" /sandbox && expect_out 'file_io: all ok' ||
        return 1
    [[ "$(cat box/data.txt)" == "HELLO appended line 42" ]] || { echo "host sees: $(cat box/data.txt)"; return 1; }
    [[ ! -e box/big.bin ]] || { echo "big.bin not removed"; return 1; }
}

t_file_io_guest_dot() {
    # The guest may name its preopen "." and use relative paths.
    mkdir box
    expect_status 0 W --dir "box:." "$(P file_io)" . && expect_out 'file_io: all ok'
}

t_fs_ops() {
    mkdir box
    expect_status 0 W --dir "$PWD/box:/data" "$(P fs_ops)" /data && expect_out 'fs_ops: all ok' ||
        return 1
    expect_out '^listing tree \(151\):' || return 1
    [[ -z "$(ls -A box)" ]] || { echo "left behind:"; ls -la box; return 1; }
}

t_fs_walk() {
    # The same two programs with the portable resolver instead of openat2.
    mkdir box
    expect_status 0 env WASMFN_WASI_NO_OPENAT2=1 "$WASMFN" run --dir box:/sandbox "$(P file_io)" /sandbox &&
        expect_out 'file_io: all ok' || return 1
    rm -rf box && mkdir box
    expect_status 0 env WASMFN_WASI_NO_OPENAT2=1 "$WASMFN" run --dir box:/data "$(P fs_ops)" /data &&
        expect_out 'fs_ops: all ok'
}

t_raw_calls() {
    # Bad pointers, bad descriptors, rights and struct layouts, through the
    # raw imports.
    mkdir box
    expect_status 0 W --dir box:/box "$(P raw)" && expect_out '^raw: all ok$' || return 1
    [[ $(grep -c '^ok ' out) -ge 45 ]] || { echo "only $(grep -c '^ok ' out) checks ran"; return 1; }
    [[ -z "$(ls -A box)" ]] || { echo "left behind:"; ls -la box; return 1; }
}

t_no_preopen() {
    # Without --dir the guest has no filesystem at all.
    expect_status 1 W "$(P file_io)" /sandbox || return 1
    expect_out '^FAIL create data.txt'
}

# The sandbox layout: box/ is preopened; outside/ must stay untouched.
make_box() {
    local t=$PWD
    mkdir -p outside/keep box/sub box/insub
    echo secret >outside/secret.txt
    echo inside >box/inside.txt
    echo x >box/insub/x.txt
    ln -s "$t/outside" box/out
    ln -s .. box/up
    ln -s ../outside/secret.txt box/upsecret
    ln -s ../../outside box/sub/esc
    ln -s ../inside.txt box/sub/back
    ln -s insub box/in
    ln -s ../outside/newfile box/dangling
    ln -s loop2 box/loop1
    ln -s loop1 box/loop2
}

snapshot_outside() {
    (cd outside && find . -printf '%p %y %s %m\n' | sort && cat secret.txt) | md5sum
}

sandbox_case() {
    make_box
    local before
    before=$(snapshot_outside)
    expect_status 0 "$@" run --dir box:/box "$(P sandbox)" /box || return 1
    expect_out 'sandbox: all ok' || return 1
    if grep -q '^FAIL' out; then grep '^FAIL' out; return 1; fi
    # Enough checks ran (a guest that stops early must not pass).
    [[ $(grep -c '^ok ' out) -ge 50 ]] || { echo "only $(grep -c '^ok ' out) checks ran"; return 1; }
    [[ "$(snapshot_outside)" == "$before" ]] || { echo "outside/ changed"; ls -laR outside; return 1; }
    [[ ! -e newfile && ! -e outside/newfile && ! -e outside/created.txt ]] || { echo "created outside"; return 1; }
}

t_sandbox_openat2() { sandbox_case "$WASMFN"; }
t_sandbox_walk() { sandbox_case env WASMFN_WASI_NO_OPENAT2=1 "$WASMFN"; }

# ---- clocks, random, poll, limits ---------------------------------------

t_clocks() {
    expect_status 0 W "$(P clocks)" && expect_out 'clocks: all ok'
}

t_random() {
    expect_status 0 W "$(P random)" || return 1
    local a b
    a=$(cat out)
    expect_status 0 W "$(P random)" || return 1
    b=$(cat out)
    [[ "$a" =~ ^[0-9a-f]{64}$ ]] || { echo "not 32 hex bytes: $a"; return 1; }
    [[ "$a" != "$b" ]] || { echo "two runs gave the same bytes: $a"; return 1; }
}

t_poll_sleep() {
    echo "some input" >input
    expect_status 0 W "$(P poll)" <input && expect_out 'poll: all ok'
}

t_timeout_loop() {
    expect_status 124 timeout -s KILL 60 "$WASMFN" run --timeout 200 "$(P spin)" loop || return 1
    expect_err_line '^wasmfn: timeout: deadline exceeded' && expect_out '^spinning$'
}

t_timeout_calls() {
    expect_status 124 timeout -s KILL 60 "$WASMFN" run --timeout 200 "$(P spin)" calls || return 1
    expect_err_line '^wasmfn: timeout: deadline exceeded'
}

t_timeout_sleep() {
    # A guest asleep in poll_oneoff is stopped at its deadline too, and does
    # not get to run on after waking.
    expect_status 124 timeout -s KILL 60 "$WASMFN" run --timeout 200 "$(P spin)" sleep || return 1
    expect_err_line '^wasmfn: timeout: deadline exceeded' || return 1
    if grep -q 'woke up' out; then echo "guest ran past its deadline"; return 1; fi
}

t_no_timeout_needed() {
    # A generous timeout does not disturb a program that finishes.
    expect_status 7 W --timeout 60000 "$(P exit_code)" 7 exit
}

t_memory_limit() {
    expect_status 0 W --memory 16 "$(P memory)" || return 1
    expect_out '^malloc failed$' || return 1
    local n
    n=$(sed -n 's/^allocated \([0-9]*\) MiB.*/\1/p' out)
    [[ -n "$n" && $n -ge 8 && $n -lt 16 ]] || { echo "got $n MiB under a 16 MiB cap"; return 1; }
    expect_status 0 W "$(P memory)" && expect_out '^allocated 64 MiB' || return 1
    # A cap below the module's initial memory: it cannot even start.
    expect_status 0 W --memory 1 "$(P memory)" && expect_out '^allocated 0 MiB'
}

# ---- traps ----------------------------------------------------------------

t_traps() {
    local mode want
    for mode in unreachable div0 oob stack calls indirect; do
        case $mode in
        unreachable) want='unreachable' ;;
        div0) want='integer divide by zero' ;;
        oob | stack) want='out of bounds memory access' ;;
        calls) want='call stack exhausted' ;;
        indirect) want='indirect call type mismatch' ;;
        esac
        expect_status 134 W "$(P trap)" $mode || return 1
        expect_err_line "^wasmfn: trap: $want in function [0-9]+" || return 1
        expect_out "^about to trap: $mode\$" || return 1
    done
}

# ---- bad input --------------------------------------------------------------

wat() { wat2wasm "$1.wat" -o "$1.wasm"; }

t_bad_inputs() {
    echo "not wasm at all" >junk.wasm
    expect_status 126 W junk.wasm && expect_err_line '^wasmfn: junk.wasm: .*magic' || return 1
    head -c 200 "$(P exit_code)" >trunc.wasm
    expect_status 126 W trunc.wasm && expect_err_line '^wasmfn: trunc.wasm: .*byte' || return 1
    expect_status 127 W missing.wasm && expect_err_line '^wasmfn: missing.wasm: No such file' || return 1
    mkdir adir
    expect_status 126 W adir && expect_err_line '^wasmfn: adir: ' || return 1

    cat >imp.wat <<'EOF'
(module
  (import "env" "foo" (func (param i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "_start")))
EOF
    wat imp || return 1
    expect_status 126 W imp.wasm && expect_err_line '^wasmfn: imp.wasm: unknown import env\.foo \(func \(i\)i\)' || return 1

    cat >sig.wat <<'EOF'
(module
  (import "wasi_snapshot_preview1" "fd_write" (func (param i32 i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "_start")))
EOF
    wat sig || return 1
    expect_status 126 W sig.wasm &&
        expect_err_line 'wasi_snapshot_preview1\.fd_write has type \(ii\)i, expected \(iiii\)i' || return 1

    cat >unk.wat <<'EOF'
(module
  (import "wasi_snapshot_preview1" "fd_teleport" (func (param i32) (result i32)))
  (func (export "_start")))
EOF
    wat unk || return 1
    expect_status 126 W unk.wasm && expect_err_line 'wasi_snapshot_preview1\.fd_teleport' || return 1

    cat >nostart.wat <<'EOF'
(module
  (memory (export "memory") 1)
  (func (export "main")))
EOF
    wat nostart || return 1
    expect_status 126 W nostart.wasm && expect_err_line '^wasmfn: nostart.wasm: .*_start' || return 1

    cat >exit.wat <<'EOF'
(module
  (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
  (memory (export "memory") 1)
  (func (export "_start") (call $exit (i32.const 9)) unreachable))
EOF
    wat exit || return 1
    expect_status 9 W exit.wasm
}

t_usage() {
    expect_status 125 W && expect_err_line 'no module' || return 1
    expect_status 125 W --timeout soon "$(P exit_code)" && expect_err_line '--timeout' || return 1
    expect_status 125 W --memory 0 "$(P exit_code)" && expect_err_line '--memory' || return 1
    expect_status 125 W --env NOEQUALS "$(P exit_code)" && expect_err_line '--env' || return 1
    expect_status 125 W --bogus "$(P exit_code)" && expect_err_line 'unknown option' || return 1
    expect_status 125 W --dir does-not-exist "$(P exit_code)" && expect_err_line 'does-not-exist' ||
        return 1
    expect_status 0 W --help && expect_out '^usage: wasmfn run' || return 1
    expect_status 0 "$WASMFN" --help && expect_out 'run' || return 1
    expect_status 0 "$WASMFN" help run && expect_out '^usage: wasmfn run' || return 1
    expect_status 2 "$WASMFN" frobnicate && expect_err_line "unknown command 'frobnicate'"
}

# ---- differential: wasmfn vs Node's WASI --------------------------------------

NODE_RUN="$HERE/node_run.mjs"

# diff_case NAME SETUP ARGS...: runs ARGS under both with the same setup in
# separate directories, compares stdout and exit status.
diff_case() {
    local name=$1 setup=$2
    shift 2
    mkdir -p "n-$name" "w-$name"
    local sn sw
    (cd "n-$name" && $setup && node --no-warnings "$NODE_RUN" "$@" <../input >../n.out 2>../n.err)
    sn=$?
    if [[ $sn -gt 128 ]]; then
        # Node itself crashed (seen now and then with big guest memories):
        # that says nothing about wasmfn, so give it one more go.
        rm -rf "n-$name" && mkdir "n-$name"
        (cd "n-$name" && $setup && node --no-warnings "$NODE_RUN" "$@" <../input >../n.out 2>../n.err)
        sn=$?
    fi
    (cd "w-$name" && $setup && "$WASMFN" run "$@" <../input >../w.out 2>../w.err)
    sw=$?
    if [[ $sn -ne $sw ]] || ! cmp -s n.out w.out; then
        echo "$name: node exit $sn, wasmfn exit $sw"
        diff -u n.out w.out | head -n 30
        cat n.err w.err | head -n 10
        return 1
    fi
}

no_setup() { :; }
box_setup() { mkdir box; }

t_differential_node() {
    command -v node >/dev/null || { echo "node not found"; return 1; }
    seq 1 5000 >input
    local bad=0
    diff_case args no_setup --env GREETING=hi --env X=1 "$(P args_env)" a "b c" || bad=1
    diff_case exit3 no_setup "$(P exit_code)" 3 exit || bad=1
    diff_case exit0 no_setup "$(P exit_code)" 0 return || bad=1
    diff_case stdin no_setup "$(P stdin_cat)" || bad=1
    diff_case file_io box_setup --dir box:/sandbox "$(P file_io)" /sandbox || bad=1
    diff_case fs_ops box_setup --dir box:/data "$(P fs_ops)" /data || bad=1
    diff_case clocks no_setup "$(P clocks)" || bad=1
    diff_case sort no_setup "$(P sort)" || bad=1
    diff_case hash no_setup "$(P hash)" || bad=1
    diff_case float no_setup "$(P float)" || bad=1
    diff_case trees no_setup "$(P trees)" || bad=1
    return $bad
}

# ---- compute kernels vs native ----------------------------------------------

native_case() {
    "$WASI_DIR/native/$1" >want || { echo "native $1 failed"; return 1; }
    expect_status 0 W "$(P "$1")" || return 1
    cmp want out || { diff -u want out | head -n 20; return 1; }
}

t_native_sort() { native_case sort; }
t_native_hash() { native_case hash; }
t_native_float() { native_case float; }
t_native_trees() { native_case trees; }

# The SIMD kernel, built with -msimd128 (mk/wasi.mk): WebAssembly SIMD in
# both tiers.
t_native_simd() { native_case simd; }

# -----------------------------------------------------------------------------

for f in "$WASMFN" "$WASI_DIR/exit_code.wasm" "$WASI_DIR/native/sort"; do
    [[ -e "$f" ]] || { echo "wasi: $f is missing (make wasi-programs)"; echo "wasi: 0 passed, 1 failed"; exit 1; }
done

run_test "args and env reach the guest, host env does not" t_args_env
run_test "argv[0] and a module copied elsewhere" t_argv0
run_test "exit codes via return, exit, _Exit" t_exit_codes
run_test "stdin is piped through byte for byte" t_stdin_pipe
run_test "a closed stdout pipe does not kill wasmfn" t_stdout_closed_pipe
run_test "file I/O inside a preopen" t_file_io
run_test "file I/O with the preopen named ." t_file_io_guest_dot
run_test "directories: mkdir, listing, rename, unlink, rmdir" t_fs_ops
run_test "file I/O and directories with the portable resolver" t_fs_walk
run_test "no --dir means no filesystem" t_no_preopen
run_test "raw calls: EFAULT, EBADF, rights, layouts" t_raw_calls
run_test "sandbox escapes fail (openat2)" t_sandbox_openat2
run_test "sandbox escapes fail (portable walk)" t_sandbox_walk
run_test "clocks move forward" t_clocks
run_test "random bytes differ between runs" t_random
run_test "poll_oneoff sleeps and wakes on stdin" t_poll_sleep
run_test "--timeout stops an infinite loop" t_timeout_loop
run_test "--timeout stops an endless call loop" t_timeout_calls
run_test "--timeout stops a guest asleep in poll_oneoff" t_timeout_sleep
run_test "a timeout that is not reached changes nothing" t_no_timeout_needed
run_test "--memory makes malloc fail" t_memory_limit
run_test "traps exit 134 with one line naming the trap" t_traps
run_test "bad modules: one line, exit 126/127" t_bad_inputs
run_test "usage errors exit 125, help exits 0" t_usage
run_test "differential: same stdout and status as Node's WASI" t_differential_node
run_test "native: sort" t_native_sort
run_test "native: hash" t_native_hash
run_test "native: float" t_native_float
run_test "native: allocation-heavy trees" t_native_trees
run_test "native: SIMD kernel (-msimd128)" t_native_simd

echo "wasi${TIER:+ ($TIER tier)}: $passed passed, $failed failed"
[[ $failed -eq 0 ]]
