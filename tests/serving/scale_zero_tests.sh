#!/usr/bin/env bash
# scale_zero_tests.sh — scale from zero against the real daemon: a revision
# at zero unpins its compiled module, the module cache's byte bound
# (--module-cache-bytes) then evicts it, and the next request gets it back
# from its serialised artefact (never the compiler) on a worker, with the
# calls that arrive meanwhile waiting for that one load. Also: a damaged
# artefact is refused and rebuilt, a module that cannot be loaded at all
# is a 502 naming the fault (and a line in the function's log), and
# delete, redeploy and SIGTERM while a load is in flight stay correct.
#
# Functions: the examples, the serving test functions and two generated
# modules with 20,000 and 60,000 functions (wat2wasm), whose loads take
# milliseconds and which never fit in the cache. One line per test, then
# "scale-zero: N passed, M failed"; exits non-zero when anything failed.
#
#   WASMFN=build/wasmfn EXAMPLES_DIR=build/examples FNS_DIR=build/serving-fns \
#       bash tests/serving/scale_zero_tests.sh   (what `make test-scale-zero` runs)
set -u

WASMFN=$(realpath "${WASMFN:-build/wasmfn}")
EXAMPLES_DIR=$(realpath "${EXAMPLES_DIR:-build/examples}")
FNS_DIR=$(realpath "${FNS_DIR:-build/serving-fns}")

TMP=$(mktemp -d -t wasmfn-scale-zero.XXXXXX)
SUITE=scale-zero
# shellcheck source=tests/serving/lib.sh
source "$(dirname "$0")/lib.sh"

finish() {
    echo "scale-zero: $pass passed, $failed failed"
    [[ $failed == 0 ]]
    exit
}

for f in "$WASMFN" "$EXAMPLES_DIR/hello.wasm" "$EXAMPLES_DIR/echo.wasm" \
    "$EXAMPLES_DIR/transform.wasm" "$FNS_DIR/slow.wasm"; do
    if [[ ! -e $f ]]; then
        echo "scale-zero: $f is missing (run: make all examples serving-fns)" >&2
        exit 1
    fi
done
if ! command -v wat2wasm >/dev/null; then
    echo "scale-zero: wat2wasm is missing (make deps installs wabt)" >&2
    exit 1
fi

SERVE_FLAGS=(--workers 2)

# stop_daemon: SIGTERM and wait; returns the daemon's exit status.
stop_daemon() {
    kill -TERM "$DAEMON_PID" 2>/dev/null
    wait "$DAEMON_PID"
    local rc=$?
    DAEMON_PID=
    return $rc
}

# get PATH [curl args...]: "CODE BODY" of a data-plane request, the body's
# lines joined with spaces.
get() {
    local p=$1
    shift
    local out
    out=$(curl -s -m 30 -w '\n%{http_code}' "$@" "$DATA_URL$p")
    printf '%s %s' "${out##*$'\n'}" "$(head -n -1 <<<"$out" | tr '\n' ' ')"
}

loads() { metric wasmfn_module_loads_total "source=\"$1\""; }
pinned() { metric wasmfn_module_cache_modules 'state="pinned"'; }
unpinned() { metric wasmfn_module_cache_modules 'state="unpinned"'; }

# gen N: a WASI command module answering "big module", with N more functions.
gen() {
    echo '(module'
    echo '  (import "wasi_snapshot_preview1" "fd_write" (func $w (param i32 i32 i32 i32) (result i32)))'
    echo '  (memory (export "memory") 1)'
    echo '  (data (i32.const 64) "Content-Type: text/plain\n\nbig module\n")'
    echo '  (func (export "_start") (i32.store (i32.const 0) (i32.const 64))'
    echo '    (i32.store (i32.const 4) (i32.const 37))'
    echo '    (drop (call $w (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8))))'
    awk -v n="$1" 'BEGIN { for (i = 0; i < n; i++)
        printf "  (func (param i32) (result i32) (i32.add (i32.mul (local.get 0) (i32.const %d)) (i32.xor (local.get 0) (i32.const %d))))\n", i, i * 7 }'
    echo ')'
}

# svc NAME IMAGE [KEY=VALUE]: a Service at initial-scale 0 with a 6 s window.
svc() {
    cat <<EOF
apiVersion: serving.knative.dev/v1
kind: Service
metadata:
  name: $1
spec:
  template:
    metadata:
      annotations:
        autoscaling.knative.dev/initial-scale: "0"
        autoscaling.knative.dev/window: "6s"
    spec:
      timeoutSeconds: 10
      containers:
        - image: $2
EOF
    if [[ -n ${3:-} ]]; then
        printf '          env:\n            - name: %s\n              value: "%s"\n' "${3%%=*}" "${3#*=}"
    fi
}

digest_of() { echo "sha256:$(sha256sum "$1" | cut -d' ' -f1)"; }

mkdir -p "$TMP/m" "$DATA"
cp "$EXAMPLES_DIR"/{hello,echo,transform}.wasm "$FNS_DIR/slow.wasm" "$TMP/m/"
if ! { gen 20000 >"$TMP/big.wat" && wat2wasm "$TMP/big.wat" -o "$TMP/m/big.wasm" &&
    gen 60000 >"$TMP/big2.wat" && wat2wasm "$TMP/big2.wat" -o "$TMP/m/big2.wasm"; }; then
    echo "scale-zero: wat2wasm failed" >&2
    exit 1
fi

SMALL=(zh ze zt zs)
declare -A IMAGE=([zh]=hello [ze]=echo [zt]=transform [zs]=slow [big]=big [big2]=big2)
declare -A ENVV=([zh]=GREETING=Zed [ze]=MARK=ze-1)
# answer_ok NAME "CODE BODY": whether it is NAME's right answer.
answer_ok() {
    case $1 in
    zh) [[ $2 == "200 Zed from wasmfn! (path /)"* ]] ;;
    ze) [[ $2 == "200 "* && $2 == *"MARK=ze-1"* ]] ;;
    zt) [[ $2 == "200 "* && $2 == *'"_FIELDS":1'* ]] ;;
    zs) [[ $2 == "200 slept 1 ms"* ]] ;;
    big | big2) [[ $2 == "200 big module"* ]] ;;
    *) false ;;
    esac
}
# call NAME: "CODE BODY" of the request each function is tested with.
call() {
    case $1 in
    zt) get "/fn/zt/" -X POST -H 'Content-Type: application/json' --data-binary '{"a":1}' ;;
    zs) get "/fn/zs/?ms=1" ;;
    *) get "/fn/$1/" ;;
    esac
}

# ---- phase A: deploy under the default bound and measure the modules ----

start_daemon || {
    not_ok "daemon starts" "wasmfn serve did not become ready"
    finish
}

declare -A SIZE
prev=0
applied=0
for n in "${SMALL[@]}" big big2; do
    svc "$n" "m/${IMAGE[$n]}.wasm" "${ENVV[$n]:-}" >"$TMP/$n.yaml"
    if "$WASMFN" apply -f "$TMP/$n.yaml" >/dev/null 2>"$TMP/err"; then
        applied=$((applied + 1))
    else
        not_ok "apply $n" "$(cat "$TMP/err")"
    fi
    b=$(metric wasmfn_module_cache_bytes)
    SIZE[$n]=$((b - prev))
    prev=$b
done
p=$(pinned)
u=$(unpinned)
pb=$(metric wasmfn_module_cache_pinned_bytes)
c=$(loads compiled)
check "initial-scale 0: 6 modules compiled at deploy, none pinned, all still cached" \
    "applied $applied, compiled $c, pinned $p ($pb bytes), unpinned $u" \
    "$([[ $applied == 6 && $c == 6 && $p == 0 && $pb == 0 && $u == 6 ]]; echo $?)"
stop_daemon || not_ok "SIGTERM (phase A)" "exit status not 0"

# A bound that holds any one small module but no two; the big ones never fit.
sizes=$(for n in "${SMALL[@]}"; do echo "${SIZE[$n]}"; done | sort -n)
min1=$(sed -n 1p <<<"$sizes")
min2=$(sed -n 2p <<<"$sizes")
max1=$(tail -1 <<<"$sizes")
if ((min1 <= 0 || max1 >= min1 + min2 || SIZE[big] <= min1 + min2)); then
    not_ok "module sizes allow a one-module bound" "sizes: $(tr '\n' ' ' <<<"$sizes") big ${SIZE[big]}"
    finish
fi
BOUND=$(((max1 + min1 + min2) / 2))

# ---- phase B: the same functions under that bound ----

start_daemon --module-cache-bytes "$BOUND" || {
    not_ok "daemon starts with --module-cache-bytes $BOUND" "did not become ready"
    finish
}
c=$(loads compiled)
s=$(loads serialized)
p=$(pinned)
u=$(unpinned)
bytes=$(metric wasmfn_module_cache_bytes)
check "restart: every module loaded from its artefact, none pinned, the cache within its bound" \
    "compiled $c serialized $s (want 0 6), pinned $p unpinned $u, $bytes bytes (bound $BOUND)" \
    "$([[ $c == 0 && $s == 6 && $p == 0 && $u -le 1 && $bytes -le $BOUND ]]; echo $?)"

# Many calls at once (one curl, parallel connections) to a function at zero
# whose module is not cached: they wait in the queue for a load from the
# artefact, then all run. A straggler arriving after the others were
# answered (the revision at zero again) may cause a second load, so up to
# 2 loads are accepted here; test_scale_zero.c holds the load on a gate and
# checks one load for all waiting calls exactly.
s0=$(loads serialized)
urls=()
for i in $(seq 20); do urls+=("$DATA_URL/fn/big/" -o "$TMP/burst.$i"); done
curl -s -m 30 -Z --parallel-immediate --parallel-max 20 "${urls[@]}" 2>/dev/null
good=$(cat "$TMP"/burst.* | grep -c "^big module$")
s1=$(loads serialized)
c=$(loads compiled)
cold=$(metric wasmfn_cold_starts_total 'function="big"')
coldn=$(metric wasmfn_cold_start_duration_seconds_count 'function="big"')
check "20 concurrent calls to an evicted module: loaded from its artefact, all answered, cold starts" \
    "$good/20 right, serialized +$((s1 - s0)) (want 1 or 2), compiled $c, cold $cold (timed $coldn)" \
    "$([[ $good == 20 && $((s1 - s0)) -ge 1 && $((s1 - s0)) -le 2 && $c == 0 && $cold -ge 1 &&
        $cold == "$coldn" ]]; echo $?)"

# Round robin over the small functions: with room for one module, calls
# find their modules evicted and reload them from the artefacts.
s0=$(loads serialized)
bad=""
for round in 1 2; do
    for n in "${SMALL[@]}"; do
        a=$(call "$n")
        answer_ok "$n" "$a" || bad+="$n: ${a:0:80}; "
    done
done
s1=$(loads serialized)
cold=0
for n in "${SMALL[@]}"; do cold=$((cold + $(metric wasmfn_cold_starts_total "function=\"$n\""))); done
c=$(loads compiled)
check "round robin over 4 functions at zero: right answers, evicted modules reloaded, none compiled" \
    "${bad:-answers right}; serialized +$((s1 - s0)) (want >= 4), compiled $c, cold $cold" \
    "$([[ -z $bad && $((s1 - s0)) -ge 4 && $c == 0 && $cold -ge 4 ]]; echo $?)"

# The module used last is still cached: no load for the next call.
s0=$(loads serialized)
a=$(call zs)
s1=$(loads serialized)
check "a module the LRU has not evicted is found in memory (no load)" \
    "answer '${a:0:60}', serialized +$((s1 - s0))" \
    "$(answer_ok zs "$a" && [[ $s1 == "$s0" ]]; echo $?)"

# After that traffic the revisions scale up (pinning their modules) and a
# window later back to zero: nothing pinned, no warm instance, and the
# cache back within its bound (the big modules evicted).
saw_pinned=0
for ((i = 0; i < 40; i++)); do
    (($(pinned) > 0)) && saw_pinned=1 && break
    sleep 0.1
done
zero=0
for ((i = 0; i < 150; i++)); do
    if [[ $(pinned) == 0 && $(metric wasmfn_module_cache_pinned_bytes) == 0 &&
        $(metric wasmfn_instances 'state="warm"') == 0 ]]; then
        zero=1
        break
    fi
    sleep 0.1
done
bytes=$(metric wasmfn_module_cache_bytes)
u=$(unpinned)
check "scaled to zero: revisions unpin their modules, the bound evicts the rest" \
    "pinned while warm: $saw_pinned; at zero: $zero; cached $u modules, $bytes bytes (bound $BOUND)" \
    "$([[ $saw_pinned == 1 && $zero == 1 && $u -le 1 && $bytes -le $BOUND ]]; echo $?)"

# A damaged artefact is refused (integrity check) and the module compiled
# again from its .wasm; the call still gets its answer.
art="$DATA/artifacts/$(sha256sum "$TMP/m/transform.wasm" | cut -d' ' -f1).compiled"
if [[ -f $art ]]; then
    len=$(stat -c %s "$art")
    printf '\xff\xfe' | dd of="$art" bs=1 seek=$((len / 2)) conv=notrunc status=none
    cp "$art" "$TMP/damaged"
    c0=$(loads compiled)
    a=$(call zt)
    c1=$(loads compiled)
    check "a damaged artefact: refused, the module compiled again and its artefact rewritten" \
        "answer '${a:0:60}', compiled +$((c1 - c0))" \
        "$(answer_ok zt "$a" && [[ $((c1 - c0)) == 1 ]] && ! cmp -s "$art" "$TMP/damaged"; echo $?)"
else
    not_ok "a damaged artefact" "no artefact at $art"
fi

# A module that cannot be loaded at all (artefact and blob gone): 502 with
# one line naming the module and the fault, and the function's log says so.
d=$(digest_of "$TMP/m/echo.wasm")
rm -f "$DATA/artifacts/${d#sha256:}.compiled" "$DATA/blobs/sha256/${d#sha256:}"
a=$(call ze)
lines=$(curl -s "$DATA_URL/fn/ze/" | wc -l)
logs=$("$WASMFN" logs ze 2>&1)
check "an unloadable module: 502 naming the module and the fault, in the function's log" \
    "answer '${a:0:160}', body lines $lines, logs: ${logs:0:200}" \
    "$([[ $a == "502 function ze: cannot load module $d: "*"not found"* && $lines == 1 &&
        $logs == *"cannot load module $d"* ]]; echo $?)"

# Delete, and redeploy, while a load is in flight: calls admitted before
# finish on the old revision, later ones see the new state, and the daemon
# carries on (under ASan this also checks for use-after-free).
for i in $(seq 8); do
    get /fn/big/ >"$TMP/del.$i" &
    BG_PIDS+=($!)
done
sleep 0.003
"$WASMFN" delete big >/dev/null 2>&1
wait "${BG_PIDS[@]}"
BG_PIDS=()
codes=$(for i in $(seq 8); do cut -d' ' -f1 "$TMP/del.$i"; done | sort | uniq -c | tr -s ' \n' ' ')
bad=$(for i in $(seq 8); do
    a=$(cat "$TMP/del.$i")
    answer_ok big "$a" || [[ $a == 404* ]] || echo x
done)
a=$(call zh)
check "delete while the module loads: every call answered 200 or 404, the daemon carries on" \
    "codes:$codes; then zh '${a:0:40}'" "$([[ -z $bad ]] && answer_ok zh "$a"; echo $?)"

svc big m/big.wasm >"$TMP/big.yaml"
"$WASMFN" apply -f "$TMP/big.yaml" >/dev/null 2>&1
for i in $(seq 8); do
    get /fn/big/ >"$TMP/put.$i" &
    BG_PIDS+=($!)
done
sleep 0.003
svc big m/big.wasm NEW=1 >"$TMP/big.yaml"
"$WASMFN" apply -f "$TMP/big.yaml" >/dev/null 2>&1
wait "${BG_PIDS[@]}"
BG_PIDS=()
good=0
for i in $(seq 8); do answer_ok big "$(cat "$TMP/put.$i")" && good=$((good + 1)); done
a=$(call big)
check "a new revision while the old one's module loads: every call answered, then the new one serves" \
    "$good/8 right; then '${a:0:40}'" "$([[ $good == 8 ]] && answer_ok big "$a"; echo $?)"

# SIGTERM while calls wait for a load: once the calls are in (all six
# queued for the load, or, when the load was quicker, all answered) the
# daemon drains: every call is served, then a clean exit.
for i in $(seq 6); do
    get /fn/big2/ >"$TMP/term.$i" &
    BG_PIDS+=($!)
done
queued=0
for ((i = 0; i < 400; i++)); do
    queued=$(metric wasmfn_queue_depth 'function="big2"')
    [[ $queued == 6 ]] && break
    running=0
    for p in "${BG_PIDS[@]}"; do kill -0 "$p" 2>/dev/null && running=1; done
    [[ $running == 0 ]] && break
    sleep 0.005
done
stop_daemon
rc=$?
wait "${BG_PIDS[@]}"
BG_PIDS=()
good=0
for i in $(seq 6); do answer_ok big2 "$(cat "$TMP/term.$i")" && good=$((good + 1)); done
san=$(grep -c -E 'AddressSanitizer|LeakSanitizer|runtime error' "$LOG")
check "SIGTERM with calls waiting for a load (or just served): all served, exit 0" \
    "exit $rc, $good/6 served ($queued were queued for the load), sanitizer reports $san" \
    "$([[ $rc == 0 && $good == 6 && $san == 0 ]]; echo $?)"

finish
