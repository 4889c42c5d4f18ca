#!/usr/bin/env bash
# native_tests.sh — the native tier end to end, as a user meets it: the
# daemon serving a new revision from the interpreter while it compiles
# native code in the background, then switching; native code kept on disk
# and loaded at restart without compiling; damaged, foreign or untrusted
# artefacts refused and rebuilt; a module the compiler refuses staying
# interpreted and served; the compiler running as a low-priority,
# memory-capped child. And `wasmfn compile` / `wasmfn run --tier` with its
# cache. One line per test, then "native: N passed, M failed"; exits
# non-zero when anything failed.
#
#   WASMFN=build/wasmfn EXAMPLES_DIR=build/examples FNS_DIR=build/serving-fns \
#       bash tests/serving/native_tests.sh   (what `make test-native` runs)
set -u

WASMFN=$(realpath "${WASMFN:-build/wasmfn}")
EXAMPLES_DIR=$(realpath "${EXAMPLES_DIR:-build/examples}")
FNS_DIR=$(realpath "${FNS_DIR:-build/serving-fns}")

TMP=$(mktemp -d -t wasmfn-native.XXXXXX)
SUITE=native
# shellcheck source=tests/serving/lib.sh
source "$(dirname "$0")/lib.sh"

finish() {
    echo "native: $pass passed, $failed failed"
    [[ $failed == 0 ]]
    exit
}

for f in "$WASMFN" "$EXAMPLES_DIR/hello.wasm" "$FNS_DIR/work.wasm" "$FNS_DIR/simd.wasm"; do
    if [[ ! -e $f ]]; then
        echo "native: $f is missing (run: make all examples serving-fns)" >&2
        exit 1
    fi
done

export WASMFN_CACHE_DIR="$TMP/cache"
SERVE_FLAGS=(--workers 1)

stop_daemon() {
    kill -TERM "$DAEMON_PID" 2>/dev/null
    wait "$DAEMON_PID"
    local rc=$?
    DAEMON_PID=
    return $rc
}

# tier NAME: the tier field of NAME's first revision, and its detail.
tier() { "$WASMFN" get "$1" -o json | sed -n 's/.*"tier": *"\([^"]*\)".*/\1/p' | head -1; }
detail() { "$WASMFN" get "$1" -o json | sed -n 's/.*"tierDetail": *"\([^"]*\)".*/\1/p' | head -1; }
# wait_tier NAME WANT [SECONDS]: until NAME's tier is WANT.
wait_tier() {
    local i
    for ((i = 0; i < ${3:-120} * 10; i++)); do
        [[ $(tier "$1") == "$2" ]] && return 0
        sleep 0.1
    done
    return 1
}
body() { curl -s -m 30 "$DATA_URL/fn/$1/?${2:-}"; }

# A module whose one function needs a native stack frame over the native
# tier's 16 KiB limit (2,200 f64 values live across a host call): the
# compiler refuses it, and it must still be served, interpreted.
gen_big_frame() {
    local n=2200 i
    echo '(module'
    echo '  (import "wasi_snapshot_preview1" "fd_write" (func $w (param i32 i32 i32 i32) (result i32)))'
    echo '  (memory (export "memory") 1)'
    echo '  (data (i32.const 64) "Content-Type: text/plain\n\nbig frame\n")'
    printf '  (func (export "_start") (local $s f64)'
    for ((i = 0; i < n; i++)); do printf ' (local f64)'; done
    echo
    for ((i = 0; i < n; i++)); do echo "    (local.set $((i + 1)) (f64.load offset=$((i * 8 % 60000)) (i32.const 128)))"; done
    echo '    (i32.store (i32.const 0) (i32.const 64)) (i32.store (i32.const 4) (i32.const 36))'
    echo '    (drop (call $w (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))'
    for ((i = 0; i < n; i++)); do echo "    (local.set 0 (f64.add (local.get 0) (f64.mul (local.get $((i + 1))) (f64.const $i.5))))"; done
    echo '    (f64.store (i32.const 8) (local.get 0)))'
    echo ')'
}
mkdir -p "$TMP/m" "$DATA"
cp "$FNS_DIR/work.wasm" "$FNS_DIR/simd.wasm" "$EXAMPLES_DIR/hello.wasm" "$TMP/m/"
if ! gen_big_frame >"$TMP/frame.wat" || ! wat2wasm "$TMP/frame.wat" -o "$TMP/m/frame.wasm"; then
    echo "native: wat2wasm failed" >&2
    exit 1
fi

# ---- the daemon: tiering ---------------------------------------------------

start_daemon || {
    not_ok "daemon starts" "wasmfn serve did not become ready"
    finish
}
"$WASMFN" deploy work "$TMP/m/work.wasm" >/dev/null 2>&1
t0=$(tier work)
d0=$(detail work)
first=$(body work 200000)
if wait_tier work native; then switched=1; else switched=0; fi
after=$(body work 200000)
compiled=$(metric wasmfn_native_compiles_total 'outcome="ok"')
hist=$(metric wasmfn_native_compile_duration_seconds_count)
gauge_n=$(metric wasmfn_revision_tier 'revision="work-00001"' 'tier="native"')
gauge_i=$(metric wasmfn_revision_tier 'revision="work-00001"' 'tier="interp"')
check "a new revision serves at once from the interpreter, then switches to native code" \
    "tier right after deploy '$t0 ($d0)', switched $switched, answers '$first' / '$after'" \
    "$([[ $t0 == interp && $d0 == compiling && $switched == 1 && $first == "work 200000 "* && $after == "$first" ]]; echo $?)"
check "the tier is a metric, and compile time a histogram" \
    "compiles ok $compiled, histogram count $hist, wasmfn_revision_tier native $gauge_n interp $gauge_i" \
    "$([[ $compiled == 1 && $hist == 1 && $gauge_n == 1 && $gauge_i == 0 ]]; echo $?)"
# Guest recursion runs on the fiber's C stack under native code: it must
# go as deep as the interpreter lets it (8,192 frames on a pool fiber),
# and a runaway must still end in a clean trap, the daemon serving on.
deep=$(body work deep=8000)
runaway=$(curl -s -m 30 -o /dev/null -w '%{http_code}' "$DATA_URL/fn/work/?deep=100000000")
again=$(body work deep=10)
check "native code recurses as deep as the interpreter; a runaway traps and the daemon serves on" \
    "deep=8000: '$deep', runaway: HTTP $runaway, then '$again'" \
    "$([[ $deep == "deep 8000 2084921000" && $runaway == 502 && $again == "deep 10 "* ]]; echo $?)"
line=$("$WASMFN" get work | grep 'work-00001')
check "wasmfn get shows the revision's tier" "row: $line" "$([[ $line == *" native "* ]]; echo $?)"
artefact=$(ls "$DATA"/artifacts/*.native-* 2>/dev/null | head -1)
check "native code is kept next to the module, sealed, with a key only the daemon's user reads" \
    "artefact '$artefact', key mode $(stat -c %a "$DATA/native.key" 2>/dev/null)" \
    "$([[ -s $artefact && $(stat -c %a "$DATA/native.key") == 600 ]]; echo $?)"

# The compiler is a child process at the lowest priority with its address
# space capped (the frame module compiles for seconds: catch it working).
"$WASMFN" deploy frame "$TMP/m/frame.wasm" >/dev/null 2>&1
cpid=
for ((i = 0; i < 100; i++)); do
    cpid=$(pgrep -P "$DAEMON_PID" -f 'compile --raw' | head -1)
    [[ -n $cpid ]] && break
    sleep 0.05
done
# (It sets its own limits first thing: give it a moment to get there.)
for ((i = 0; i < 40; i++)); do
    nice=$(ps -o ni= -p "$cpid" 2>/dev/null | tr -d ' ')
    aslimit=$(awk '/Max address space/ {print $5}' "/proc/$cpid/limits" 2>/dev/null)
    [[ $nice == 19 ]] && break
    sleep 0.05
done
# (A sanitizer build cannot cap its address space: ASan's shadow needs
# terabytes of it.)
want_limit=$((4 << 30))
ldd "$WASMFN" 2>/dev/null | grep -q libasan && want_limit=unlimited
check "the compiler runs as a child process at nice 19 with its address space capped" \
    "child '$cpid', nice '$nice', address space limit '$aslimit' (want $want_limit)" \
    "$([[ -n $cpid && $nice == 19 && $aslimit == "$want_limit" ]]; echo $?)"
for ((i = 0; i < 600; i++)); do
    [[ $(detail frame) == compiling ]] || break
    sleep 0.1
done
fd=$(detail frame)
fb=$(body frame)
failedc=$(metric wasmfn_native_compiles_total 'outcome="failed"')
check "a module the native compiler refuses stays interpreted, says why, and is served" \
    "tier $(tier frame) ($fd), answer '$fb', failed compiles $failedc" \
    "$([[ $(tier frame) == interp && $fd == "failed: "*"stack frame"* && $fb == "big frame" && $failedc == 1 ]]; echo $?)"
# A guest built with -msimd128: served at once, then by native code, with
# the same answer.
"$WASMFN" deploy simd "$TMP/m/simd.wasm" >/dev/null 2>&1
s0=$(body simd 5000)
if wait_tier simd native; then sswitched=1; else sswitched=0; fi
s1=$(body simd 5000)
check "a SIMD guest (-msimd128) is served, then switches to native code, same answer" \
    "answers '$s0' / '$s1', switched $sswitched ($(detail simd))" \
    "$([[ $s0 == "simd 5000 "* && $s1 == "$s0" && $sswitched == 1 ]]; echo $?)"
stop_daemon || not_ok "SIGTERM" "exit status not 0"

# ---- restarts: stored native code --------------------------------------------

start_daemon || finish
t1=$(tier work)
a1=$(body work 200000)
c1=$(metric wasmfn_native_compiles_total)
ft=$(tier frame)
check "after a restart the revision runs native code at once, loaded from disk, nothing compiled" \
    "tier '$t1', answer '$a1', compiles $c1; the refused module: '$ft'" \
    "$([[ $t1 == native && $a1 == "$first" && $c1 == 0 && $ft == interp ]]; echo $?)"
stop_daemon

# A damaged artefact is refused (never executed) and rebuilt.
python3 - "$artefact" <<'EOF'
import sys
p = sys.argv[1]
b = bytearray(open(p, 'rb').read())
b[len(b) // 2] ^= 0x5a
open(p, 'wb').write(b)
EOF
before=$(sha256sum "$artefact" | cut -d' ' -f1)
start_daemon || finish
t2=$(tier work)
wait_tier work native
a2=$(body work 200000)
after_sum=$(sha256sum "$artefact" 2>/dev/null | cut -d' ' -f1)
check "a damaged native artefact is refused, compiled again and rewritten" \
    "tier at start '$t2', answer '$a2', artefact rewritten: $([[ $before != "$after_sum" ]] && echo yes || echo no)" \
    "$([[ $t2 == interp && $a2 == "$first" && $before != "$after_sum" && -s $artefact ]]; echo $?)"
stop_daemon

# A key swapped for another (as someone who can write the directory might):
# every artefact fails its check and is rebuilt under the new key.
head -c 32 /dev/urandom >"$DATA/native.key.new" && chmod 600 "$DATA/native.key.new" &&
    mv "$DATA/native.key.new" "$DATA/native.key"
start_daemon || finish
t3=$(tier work)
wait_tier work native
check "artefacts sealed with another key are not trusted" \
    "tier at start '$t3' (want interp, then native: $(tier work))" \
    "$([[ $t3 == interp && $(tier work) == native ]]; echo $?)"
stop_daemon

# A key others can read cannot vouch for anything: the daemon says so, keeps
# no native code on disk and compiles in memory.
chmod 644 "$DATA/native.key"
rm -f "$DATA"/artifacts/*.native-*
start_daemon || finish
wait_tier work native
kept=$(ls "$DATA"/artifacts/*.native-* 2>/dev/null | wc -l)
warned=$(grep -c 'native.key: must be' "$LOG")
check "a key readable by others is refused: native code runs but is not kept on disk" \
    "tier $(tier work), artefacts $kept, warning lines $warned" \
    "$([[ $(tier work) == native && $kept == 0 && $warned == 1 ]]; echo $?)"
stop_daemon
chmod 600 "$DATA/native.key"

start_daemon --tier interp || finish
sleep 1
check "serve --tier interp compiles nothing" \
    "tier $(tier work), compiles $(metric wasmfn_native_compiles_total)" \
    "$([[ $(tier work) == interp && $(metric wasmfn_native_compiles_total) == 0 && $(body work 1000) == "work 1000 "* ]]; echo $?)"
stop_daemon

# ---- wasmfn compile and wasmfn run ---------------------------------------------

W="$TMP/m/work.wasm"
want=$("$WASMFN" run --tier interp "$W" 2>&1 | tail -1)
"$WASMFN" compile "$W" -o "$TMP/work.cwasm" 2>"$TMP/err"
crc=$?
got=$("$WASMFN" run --tier native "$TMP/work.cwasm" 2>&1 | tail -1)
n_cached=$(ls "$WASMFN_CACHE_DIR"/*.native 2>/dev/null | wc -l)
valid=$(wasm-validate "$TMP/work.cwasm" 2>&1 && echo valid)
check "wasmfn compile -o: a module carrying its native code, run without compiling" \
    "compile exit $crc ($(cat "$TMP/err")), output '$got' (want '$want'), cache entries $n_cached, $valid" \
    "$([[ $crc == 0 && $got == "$want" && $n_cached == 0 && $valid == valid ]]; echo $?)"

"$WASMFN" run --tier native "$W" >/dev/null 2>&1
entry=$(ls "$WASMFN_CACHE_DIR"/*.native 2>/dev/null | head -1)
m1=$(stat -c %Y.%s "$entry" 2>/dev/null)
sleep 1.1
got2=$("$WASMFN" run "$W" 2>&1 | tail -1)
m2=$(stat -c %Y.%s "$entry" 2>/dev/null)
check "wasmfn run caches native code and the next run uses it" \
    "entry '$entry', mtimes $m1 / $m2, output '$got2'" \
    "$([[ -s $entry && $m1 == "$m2" && $got2 == "$want" ]]; echo $?)"

printf 'garbage' | dd of="$entry" bs=1 seek=300 conv=notrunc 2>/dev/null
got3=$("$WASMFN" run "$W" 2>&1 | tail -1)
m3=$(stat -c %Y.%s "$entry" 2>/dev/null)
check "a damaged cache entry is deleted and compiled again" \
    "output '$got3', entry rewritten: $([[ $m3 != "$m1" ]] && echo yes || echo no)" \
    "$([[ $got3 == "$want" && -s $entry && $m3 != "$m1" ]]; echo $?)"

"$WASMFN" run --tier native "$TMP/m/frame.wasm" >"$TMP/out" 2>"$TMP/err"
rc=$?
check "wasmfn run --tier native on a module the compiler refuses: exit 126, one line" \
    "exit $rc, stderr: $(cat "$TMP/err")" \
    "$([[ $rc == 126 && $(wc -l <"$TMP/err") == 1 ]] && grep -q 'native code: .*stack frame' "$TMP/err"; echo $?)"
"$WASMFN" run --tier auto "$TMP/m/frame.wasm" >"$TMP/out" 2>"$TMP/err"
rc=$?
check "wasmfn run --tier auto falls back to the interpreter for it" \
    "exit $rc, stdout $(head -c 100 "$TMP/out"), stderr $(cat "$TMP/err")" \
    "$([[ $rc == 0 ]] && grep -q 'big frame' "$TMP/out"; echo $?)"

"$WASMFN" run --tier fast "$W" >/dev/null 2>"$TMP/err"
rc=$?
check "wasmfn run --tier with a bad value: usage error" "exit $rc: $(cat "$TMP/err")" \
    "$([[ $rc == 125 ]]; echo $?)"

finish
