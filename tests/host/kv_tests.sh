#!/usr/bin/env bash
# kv_tests.sh — wasmfn_kv through the real daemon (docs/host-kv.md):
#   - a counter (examples/counter.c) incremented by 1,000 concurrent requests
#     ends at exactly 1,000, each request having seen a distinct value, and
#     still reads 1,000 after kill -9 of the daemon and a restart;
#   - a function without the grant cannot open the store (error 1), nor can
#     one granted other stores;
#   - TTL expiry; the key, value and store-size limits (error 4); a buffer
#     too small (3, with the size needed); keys by prefix; incr on text (5);
#     hostile pointers and handles answer 5, never a trap;
#   - `wasmfn kv list/get/set/delete` and /v1/kv;
#   - `wasmfn run --kv STORE --kv-dir DIR`: the same guest without a daemon;
#   - the same counter test with --redis and a redis-server started here;
#     then Redis stopped (SIGSTOP) and killed: KV calls answer 6 within the
#     2 s timeout and another function is served meanwhile, without waiting
#     for them (interp tier only).
# Starts everything on free loopback ports with temporary directories; one
# line per test, then "kv: N passed, M failed".
#
#   WASMFN=build/wasmfn EXAMPLES_DIR=build/examples FNS_DIR=build/host-fns \
#       bash tests/host/kv_tests.sh          (what `make test-kv` runs per tier)
set -u

WASMFN=$(realpath "${WASMFN:-build/wasmfn}")
EXAMPLES_DIR=$(realpath "${EXAMPLES_DIR:-build/examples}")
FNS_DIR=$(realpath "${FNS_DIR:-build/host-fns}")

TMP=$(mktemp -d -t wasmfn-kv.XXXXXX)
SUITE=kv
# shellcheck source=tests/serving/lib.sh
source "$(dirname "$0")/../serving/lib.sh"
T0=$(date +%s%N)

for f in "$WASMFN" "$EXAMPLES_DIR/counter.wasm" "$FNS_DIR/kvtest.wasm"; do
    if [[ ! -e $f ]]; then
        echo "kv: $f is missing (run: make all examples host-fns)" >&2
        exit 1
    fi
done

finish() {
    echo "kv: $pass passed, $failed failed ($((($(date +%s%N) - T0) / 1000000)) ms)"
    [[ $failed == 0 ]]
    exit
}

# kvt QUERY [curl args...]: calls kvtest; its answer (rc=N ...) on stdout.
kvt() {
    local q=$1
    shift
    curl -s -m 20 "$@" "$DATA_URL/fn/kvtest/?$q"
}

# burst N URL: N concurrent POSTs (curl --parallel, 100 at a time); each
# answer's status goes to $TMP/burst.codes and its body to $TMP/burst/I.
burst() {
    local n=$1 url=$2 i
    rm -rf "$TMP/burst"
    mkdir -p "$TMP/burst"
    : >"$TMP/burst.cfg"
    for ((i = 1; i <= n; i++)); do
        printf 'url = "%s"\noutput = "%s/burst/%d"\n' "$url" "$TMP" "$i" >>"$TMP/burst.cfg"
    done
    curl -s --no-progress-meter --parallel --parallel-max 100 -X POST -m 60 -w '%{http_code}\n' \
        -K "$TMP/burst.cfg" >"$TMP/burst.codes" 2>"$TMP/burst.err"
}

# counter_checks LABEL: 1,000 concurrent increments of a fresh counter.
counter_checks() {
    local label=$1 codes distinct max
    burst 1000 "$DATA_URL/fn/counter/hits"
    codes=$(sort "$TMP/burst.codes" | uniq -c | tr -s ' ' | tr '\n' ';')
    check "$label: 1,000 concurrent increments all answer 200" "$codes" \
        "$([[ $(grep -c '^200$' "$TMP/burst.codes") == 1000 ]]; echo $?)"
    distinct=$(cat "$TMP"/burst/* | sort -n | uniq | wc -l)
    max=$(cat "$TMP"/burst/* | sort -n | tail -1)
    check "$label: the increments saw 1,000 distinct values, 1 to 1,000" \
        "distinct $distinct, max $max" "$([[ $distinct == 1000 && $max == 1000 ]]; echo $?)"
    local v
    v=$(curl -s -m 10 "$DATA_URL/fn/counter/hits")
    check "$label: the counter reads 1000" "got '$v'" "$([[ $v == 1000 ]]; echo $?)"
}

# ---- SQLite -------------------------------------------------------------------

SERVE_FLAGS=(--workers 4 --kv-max-key-bytes 64 --kv-max-value-bytes 4096 --kv-max-store-keys 20
    --kv-max-store-bytes 20000)
if ! start_daemon; then
    not_ok "daemon starts" "see above"
    finish
fi
# The example's manifest grants the store with the annotation.
"$WASMFN" apply -f "$(dirname "$0")/../../examples/counter.yaml" >/dev/null
"$WASMFN" deploy kvtest "$FNS_DIR/kvtest.wasm" --kv kvtest --kv full --kv big -q >/dev/null
"$WASMFN" deploy nokv "$EXAMPLES_DIR/counter.wasm" -q >/dev/null
out=$("$WASMFN" get kvtest -o json)
check "wasmfn get shows the granted stores" "$out" \
    "$([[ $out == *'"kvStores":["kvtest","full","big"]'* ]]; echo $?)"

counter_checks "sqlite"

# kill9: SIGKILL the daemon (quietly: no "Killed" job message).
kill9() {
    { kill -KILL "$DAEMON_PID" && wait "$DAEMON_PID"; } 2>/dev/null
    DAEMON_PID=
}
kill9
if ! start_daemon; then
    not_ok "daemon restarts after kill -9" "see above"
    finish
fi
v=$(curl -s -m 10 "$DATA_URL/fn/counter/hits")
check "sqlite: after kill -9 and a restart the counter still reads 1000" "got '$v'" \
    "$([[ $v == 1000 ]]; echo $?)"
v=$("$WASMFN" kv get counters hits)
check "wasmfn kv get counters hits prints 1000" "got '$v'" "$([[ $v == 1000 ]]; echo $?)"

# ---- grants -------------------------------------------------------------------

st=$(curl -s -m 10 -o "$TMP/body" -w '%{http_code}' -X POST "$DATA_URL/fn/nokv/hits")
check "a function without a grant cannot open the store (error 1)" "status $st: $(cat "$TMP/body")" \
    "$([[ $st == 500 && $(cat "$TMP/body") == *"open counters: error 1"* ]]; echo $?)"
out=$(kvt "op=open&store=counters")
check "a function granted other stores cannot open this one (error 1)" "$out" \
    "$([[ $out == "rc=1" ]]; echo $?)"
out=$(kvt "op=open&store=kvtest")
check "a granted store opens" "$out" "$([[ $out == "rc=0" ]]; echo $?)"
out=$(kvt "op=badhandle")
check "a handle open never gave is refused (error 5)" "$out" "$([[ $out == "rc=5" ]]; echo $?)"
v=$(curl -s -m 10 "$DATA_URL/fn/counter/hits")
check "the failed opens changed nothing" "got '$v'" "$([[ $v == 1000 ]]; echo $?)"

# ---- values, TTL, keys ---------------------------------------------------------

out=$(kvt "op=set&key=greeting" -d 'hello')
check "set answers 0" "$out" "$([[ $out == "rc=0" ]]; echo $?)"
out=$(kvt "op=get&key=greeting")
check "get returns the value and its length" "$out" \
    "$([[ $out == $'rc=0\nlen=5\nhello' ]]; echo $?)"
out=$(kvt "op=get&key=greeting&buf=2")
check "get into a buffer too small: error 3 with the size needed" "$out" \
    "$([[ $out == $'rc=3\nlen=5' ]]; echo $?)"
out=$(kvt "op=get&key=nosuchkey")
check "get of a missing key: error 2" "$out" "$([[ $out == rc=2* ]]; echo $?)"
out=$(kvt "op=incr&key=greeting")
check "incr on a value that is not a number: error 5" "$out" "$([[ $out == rc=5* ]]; echo $?)"
out=$(kvt "op=incr&key=n&delta=-7")
check "incr of a missing key counts from 0" "$out" "$([[ $out == $'rc=0\nvalue=-7' ]]; echo $?)"
out=$(kvt "op=get&key=n")
check "incr stores decimal text" "$out" "$([[ $out == $'rc=0\nlen=2\n-7' ]]; echo $?)"
kvt "op=set&key=max" -d 9223372036854775807 >/dev/null
out=$(kvt "op=incr&key=max&delta=1")
check "incr that would overflow: error 5" "$out" "$([[ $out == rc=5* ]]; echo $?)"
kvt "op=set&key=a1" -d 1 >/dev/null
kvt "op=set&key=a2" -d 2 >/dev/null
kvt "op=set&key=b1" -d 3 >/dev/null
out=$(kvt "op=keys&prefix=a")
check "keys by prefix, separated by newlines" "$out" \
    "$([[ $out == $'rc=0\nlen=5\na1\na2' ]]; echo $?)"
out=$(kvt "op=keys&prefix=a&buf=3")
check "keys into a buffer too small: error 3 with the size needed" "$out" \
    "$([[ $out == $'rc=3\nlen=5' ]]; echo $?)"
out=$(kvt "op=delete&key=a1")
out2=$(kvt "op=delete&key=a1")
check "delete answers 0, then 2" "$out / $out2" "$([[ $out == rc=0 && $out2 == rc=2 ]]; echo $?)"

t_set=$(date +%s%N)
out=$(kvt "op=set&key=short&ttl=400" -d 'soon gone')
got=$(kvt "op=get&key=short")
check "a value with a TTL is there before it expires" "$out / $got" \
    "$([[ $out == rc=0 && $got == rc=0* ]]; echo $?)"
gone=1
for ((i = 0; i < 40; i++)); do
    sleep 0.1
    if [[ $(kvt "op=get&key=short") == rc=2* ]]; then gone=0; break; fi
done
check "it is gone once its TTL has passed (error 2)" "still there after 4 s" "$gone"
ms=$((($(date +%s%N) - t_set) / 1000000))
check "it expired no sooner than its TTL" "gone $ms ms after the set" "$([[ $ms -ge 400 ]]; echo $?)"

# ---- limits --------------------------------------------------------------------

k64=$(printf 'k%.0s' $(seq 64))
out=$(kvt "op=set&key=$k64" -d v)
check "a key of the largest size (64 bytes here) is taken" "$out" "$([[ $out == rc=0 ]]; echo $?)"
out=$(kvt "op=set&key=${k64}x" -d v)
check "a key over --kv-max-key-bytes: error 4" "$out" "$([[ $out == rc=4 ]]; echo $?)"
out=$(kvt "op=set&key=v&size=4096")
check "a value of the largest size (4096 here) is taken" "$out" "$([[ $out == rc=0 ]]; echo $?)"
out=$(kvt "op=set&key=v&size=4097")
check "a value over --kv-max-value-bytes: error 4" "$out" "$([[ $out == rc=4 ]]; echo $?)"
for ((i = 1; i <= 20; i++)); do kvt "op=set&store=full&key=k$i" -d x >/dev/null; done
out=$(kvt "op=set&store=full&key=k21" -d x)
check "the 21st key of a store capped at 20 keys: error 4" "$out" "$([[ $out == rc=4 ]]; echo $?)"
out=$(kvt "op=set&store=full&key=k20" -d y)
check "a full store still takes a new value for an existing key" "$out" "$([[ $out == rc=0 ]]; echo $?)"
kvt "op=delete&store=full&key=k1" >/dev/null
out=$(kvt "op=set&store=full&key=k21" -d x)
check "after a delete there is room again" "$out" "$([[ $out == rc=0 ]]; echo $?)"
for i in 1 2 3 4; do kvt "op=set&store=big&key=b$i&size=4000" >/dev/null; done
out=$(kvt "op=set&store=big&key=b5&size=4000")
check "a store over --kv-max-store-bytes (20000): error 4" "$out" "$([[ $out == rc=4 ]]; echo $?)"
kvt "op=set&store=big&key=t&size=3000&ttl=1" >/dev/null 2>&1
out=$(kvt "op=badptr")
want=$'open=5\nopen_out=5\nget_key=5\nget_buf=5\nget_written=5\nset_val=5\nincr_out=5\nkeys_buf=5\nempty_key=5\nnewline_key=5'
check "hostile pointers, lengths and keys answer 5, never a trap" "$out" \
    "$([[ $out == "$want" ]]; echo $?)"
check "the daemon logged no storage failure" "$(grep 'wasmfn: kv:' "$LOG")" \
    "$(! grep -q 'wasmfn: kv:' "$LOG"; echo $?)"

# ---- the admin API and CLI -----------------------------------------------------

out=$("$WASMFN" kv list)
check "wasmfn kv list shows the stores" "$out" \
    "$([[ $out == *counters*1*4* && $out == *kvtest* ]]; echo $?)"
out=$("$WASMFN" kv list kvtest --prefix a)
check "wasmfn kv list STORE --prefix P lists its keys" "$out" "$([[ $out == a2 ]]; echo $?)"
"$WASMFN" kv set kvtest fromcli 'set by the CLI' >/dev/null
out=$(kvt "op=get&key=fromcli")
check "wasmfn kv set: the guest reads the value" "$out" \
    "$([[ $out == $'rc=0\nlen=14\nset by the CLI' ]]; echo $?)"
"$WASMFN" kv delete kvtest fromcli >/dev/null
out=$(kvt "op=get&key=fromcli")
check "wasmfn kv delete: the guest no longer finds it" "$out" "$([[ $out == rc=2* ]]; echo $?)"
"$WASMFN" kv get kvtest fromcli >/dev/null 2>"$TMP/err"
rc=$?
check "wasmfn kv get of a missing key exits 1 naming it" "exit $rc: $(cat "$TMP/err")" \
    "$([[ $rc == 1 && $(cat "$TMP/err") == *"no such key"* ]]; echo $?)"
head -c 5000 /dev/zero >"$TMP/5000"
st=$(curl -s -o "$TMP/body" -w '%{http_code}' -X PUT -H "Authorization: Bearer $WASMFN_TOKEN" \
    --data-binary "@$TMP/5000" "$ADMIN_URL/v1/kv/kvtest/huge")
check "PUT /v1/kv over the value limit: 413 naming it" "$st $(cat "$TMP/body")" \
    "$([[ $st == 413 && $(cat "$TMP/body") == *"over the limit of 4096"* ]]; echo $?)"
st=$(curl -s -o /dev/null -w '%{http_code}' "$ADMIN_URL/v1/kv")
check "/v1/kv wants the token" "got $st" "$([[ $st == 401 ]]; echo $?)"

kill9

# ---- wasmfn run links wasmfn_kv too (SQLite in --kv-dir) ------------------------

mkdir -p "$TMP/runkv"
runkv() { # runkv QUERY [run flags...]: kvtest under `wasmfn run`
    local q=$1
    shift
    "$WASMFN" run --tier "${TIER:-interp}" --cache-dir "$TMP/cache" --env "QUERY_STRING=$q" "$@" \
        "$FNS_DIR/kvtest.wasm"
}
a=$(runkv "op=incr&key=runs&delta=2" --kv kvtest --kv-dir "$TMP/runkv" 2>&1)
b=$(runkv "op=incr&key=runs&delta=2" --kv kvtest --kv-dir "$TMP/runkv" 2>&1)
[[ $a == *$'rc=0\nvalue=2' && $b == *$'rc=0\nvalue=4' && -s $TMP/runkv/kv.db ]]
check "wasmfn run --kv: the store is kept in --kv-dir across runs" "$a / $b" "$?"
out=$(runkv "op=open" 2>&1)
check "wasmfn run without --kv: open answers 1 (not granted)" "$out" "$([[ $out == *rc=1 ]]; echo $?)"
out=$(runkv "op=open" --kv kvtest 2>&1)
st=$?
[[ $st == 125 && $out == *--kv-dir* ]]
check "wasmfn run --kv without --kv-dir: a usage error naming it" "exit $st: $out" "$?"

# ---- Redis ---------------------------------------------------------------------

if ! command -v redis-server >/dev/null; then
    not_ok "redis-server is installed" "not found"
    finish
fi
rpid=
for _ in 1 2 3 4 5; do
    rport=$((20000 + RANDOM % 20000))
    redis-server --port "$rport" --bind 127.0.0.1 --save '' --appendonly no --dir "$TMP" \
        --daemonize no >"$TMP/redis.log" 2>&1 &
    rpid=$!
    for ((i = 0; i < 50; i++)); do
        redis-cli -p "$rport" ping >/dev/null 2>&1 && break
        sleep 0.1
    done
    redis-cli -p "$rport" ping >/dev/null 2>&1 && break
    kill -KILL "$rpid" 2>/dev/null
    wait "$rpid" 2>/dev/null
    rpid=
done
if [[ -z $rpid ]]; then
    not_ok "redis-server starts" "$(cat "$TMP/redis.log")"
    finish
fi
BG_PIDS+=("$rpid")

DATA="$TMP/data-redis"
mkdir -p "$DATA"
SERVE_FLAGS=(--workers 4 --redis "redis://127.0.0.1:$rport")
if ! start_daemon; then
    not_ok "daemon starts with --redis" "see above"
    finish
fi
"$WASMFN" deploy counter "$EXAMPLES_DIR/counter.wasm" --kv counters -q >/dev/null
"$WASMFN" deploy kvtest "$FNS_DIR/kvtest.wasm" --kv kvtest -q >/dev/null
counter_checks "redis"
v=$(redis-cli -p "$rport" GET wasmfn:kv:counters:hits)
check "redis: the counter is the Redis string wasmfn:kv:counters:hits" "got '$v'" \
    "$([[ $v == 1000 ]]; echo $?)"
kill9
if start_daemon; then
    v=$(curl -s -m 10 "$DATA_URL/fn/counter/hits")
    check "redis: after kill -9 and a restart the counter reads 1000" "got '$v'" \
        "$([[ $v == 1000 ]]; echo $?)"
else
    not_ok "daemon restarts with --redis" "see above"
fi
kvt "op=set&key=a1" -d 1 >/dev/null
kvt "op=set&key=a*" -d 2 >/dev/null
kvt "op=set&key=b1" -d 3 >/dev/null
out=$(kvt "op=keys&prefix=a")
check "redis: keys by prefix" "$out" \
    "$([[ $out == $'rc=0\nlen=5\na1\na*' || $out == $'rc=0\nlen=5\na*\na1' ]]; echo $?)"
out=$(kvt "op=set&key=short&ttl=300" -d x)
gone=1
for ((i = 0; i < 40; i++)); do
    sleep 0.1
    if [[ $(kvt "op=get&key=short") == rc=2* ]]; then gone=0; break; fi
done
check "redis: a value with a TTL expires" "$out, still there after 4 s" "$gone"
out=$(kvt "op=incr&key=b1&delta=5")
check "redis: incr of decimal text" "$out" "$([[ $out == $'rc=0\nvalue=8' ]]; echo $?)"
v=$("$WASMFN" kv get counters hits)
check "redis: wasmfn kv get reads through Redis" "got '$v'" "$([[ $v == 1000 ]]; echo $?)"

# ---- a Redis that stops answering, then one that is gone ----------------------
# Once: the tier does not change how a host call waits.
if [[ ${TIER:-interp} == interp ]]; then
    "$WASMFN" deploy hello "$EXAMPLES_DIR/hello.wasm" -q >/dev/null
    "$WASMFN" deploy kvshort "$FNS_DIR/kvtest.wasm" --kv kvtest --timeout 1 -q >/dev/null
    ms() { echo $((($(date +%s%N) - $1) / 1000000)); }
    # Stopped (SIGSTOP): connections still open (the kernel accepts them)
    # but no answer comes. As many KV calls as there are workers (4); each
    # must end in error 6 at the 2 s command timeout, and hello is served
    # at once meanwhile: a guest waiting for Redis parks, holding no worker.
    kill -STOP "$rpid"
    t=$(date +%s%N)
    stuck=()
    for k in 1 2 3 4; do
        kvt "op=get&key=b1" >"$TMP/stuck.$k" &
        stuck+=($!)
    done
    sleep 0.2
    hello=$(curl -s -m 10 -o /dev/null -w '%{http_code}' "$DATA_URL/fn/hello/")
    hello_ms=$(ms "$t")
    # A function whose deadline (1 s) comes first stops at it: its guest
    # let go of the call, which runs on until Redis's timeout without it.
    t2=$(date +%s%N)
    short=$(curl -s -m 10 -o /dev/null -w '%{http_code}' "$DATA_URL/fn/kvshort/?op=get&key=b1")
    short_ms=$(ms "$t2")
    wait "${stuck[@]}"
    all_ms=$(ms "$t")
    kill -CONT "$rpid"
    got=$(cat "$TMP"/stuck.* | tr '\n' ' ')
    [[ $(grep -c '^rc=6$' "$TMP"/stuck.*  | grep -c ':1$') == 4 && $hello == 200 &&
        $hello_ms -lt 1500 && $all_ms -lt 6000 ]]
    check "redis stopped: 4 KV calls (one per worker) answer 6 at the 2 s timeout, hello served at once meanwhile" \
        "calls: $got in $all_ms ms; hello $hello after $hello_ms ms" "$?"
    [[ $short == 504 && $short_ms -lt 1800 ]]
    check "redis stopped: a KV call ends at its function's 1 s deadline (504), not at Redis's timeout" \
        "$short after $short_ms ms" "$?"
    out=$(kvt "op=get&key=b1")
    check "redis resumed: KV calls work again" "$out" "$([[ $out == $'rc=0\nlen=1\n8' ]]; echo $?)"
    # Gone (killed): the connection is refused at once.
    kill -KILL "$rpid"
    wait "$rpid" 2>/dev/null
    t=$(date +%s%N)
    out=$(kvt "op=incr&key=b1&delta=1")
    took=$(ms "$t")
    hello=$(curl -s -m 10 -o /dev/null -w '%{http_code}' "$DATA_URL/fn/hello/")
    [[ $out == rc=6* && $took -lt 2500 && $hello == 200 ]]
    check "redis gone: a KV call answers 6 within the timeout, hello still served" \
        "$out in $took ms; hello $hello" "$?"
fi

finish
