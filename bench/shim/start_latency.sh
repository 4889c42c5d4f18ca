#!/usr/bin/env bash
# start_latency.sh — how long a container takes to answer, through a real
# containerd: the wasmfn shim (io.containerd.wasmfn.v1) against runc
# (io.containerd.runc.v2, Debian's containerd and runc) running the same
# program compiled natively, in the same run. `make bench-shim`; needs root.
#
#   commands  N × `ctr run --rm IMAGE` one after another; measured from
#             starting ctr to the first line of output ("first line") and
#             to ctr's return, the container deleted ("exit"). The program
#             is bench/shim/hello.c, built as a WASI command and as a static
#             binary (gcc -static) in a FROM-scratch-style image.
#   HTTP      N × `ctr run -d --net-host` of a server, measured from starting
#             ctr to the first 200 from curl (polled without pause); then
#             killed and deleted, untimed. wasmfn: examples/hello.wasm as an
#             HTTP function (wasmfn.dev/http=true); runc: bench/shim/httpd.c,
#             a static native server.
#
# The wasmfn rows come twice: warm (the module's native code in the node's
# cache, the usual case) and cold (the cache emptied before each start: the
# start runs interpreted and leaves a background compile, which is waited
# for, untimed, before the next start so that it does not slow it down).
#
# Env: SHIM, HELLO_WASM (hello.c for wasm32-wasi), HELLO_NATIVE (static),
# HTTPD_NATIVE (static), HTTP_WASM (examples/hello.wasm); N (default 50).
# Prints p50/p90/max in ms per row and the wasmfn/runc ratios of the p50s,
# and the machine's load average before and after.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
BENCH_NAME=bench-shim
source "$HERE/../lib.sh"
: "${SHIM:?}" "${HELLO_WASM:?}" "${HELLO_NATIVE:?}" "${HTTPD_NATIVE:?}" "${HTTP_WASM:?}"
N=${N:-50}
[[ $(id -u) -eq 0 ]] || die "needs root (containerd mounts the rootfs)"
for tool in containerd ctr runc curl python3; do
    command -v $tool >/dev/null || die "$tool is missing (make deps)"
done

T=$(mktemp -d /tmp/wfb.XXXXXX)
source "$HERE/../../tests/shim/containerd.sh"
trap 'stop_all; ctrd_stop || true' EXIT
ctrd_start "$T" "$SHIM" || die "containerd did not start"
load_before=$(cut -d' ' -f1-3 /proc/loadavg)

MKIMAGE=$HERE/../../tests/shim/mkimage.py
SNAP=overlayfs
img() { python3 "$MKIMAGE" "$T/$1.tar" "$2" --file "$3" --entrypoint "$4" && C images import --snapshotter $SNAP "$T/$1.tar" >/dev/null 2>&1; }
img w bench/wasm-hello:1 "$HELLO_WASM:/hello.wasm" '["/hello.wasm"]' || {
    SNAP=native # overlayfs where the kernel allows it here, else containerd's native copy
    img w bench/wasm-hello:1 "$HELLO_WASM:/hello.wasm" '["/hello.wasm"]' || die "ctr images import failed"
}
img n bench/native-hello:1 "$HELLO_NATIVE:/hello" '["/hello"]'
img wh bench/wasm-http:1 "$HTTP_WASM:/hello.wasm" '["/hello.wasm"]'
img nh bench/native-http:1 "$HTTPD_NATIVE:/httpd" '["/httpd"]'
printf 'tier = "auto"\ncache_dir = "%s"\n' "$T/cache" >"$T/shim.toml"
WASMFN=(--runtime io.containerd.wasmfn.v1 --runtime-config-path "$T/shim.toml")
RUNC=(--runtime io.containerd.runc.v2)

us() { local t=${EPOCHREALTIME/./}; echo "$t"; }

# Waits until no compiler of this run is left: the detached ones
# (compile --cache-dir) and the children they and HTTP functions start
# (compile --raw, argv[0] the shim's real path).
SHIM_REAL=$(readlink -f "$SHIM")
compilers_wait() {
    for _ in $(seq 1 2400); do
        pgrep -f "compile --cache-dir $T/|^$SHIM_REAL compile --raw" >/dev/null || return 0
        sleep 0.05
    done
    die "a native compile did not finish within 2 minutes"
}

# cmd_once NAME RUNTIME-ARGS... IMAGE: one timed `ctr run --rm`; appends
# first-line and exit times (µs) to $T/NAME.first and $T/NAME.exit.
cmd_once() {
    local name=$1 id=c$RANDOM$RANDOM
    shift
    local t0 t1 t2 line
    t0=$(us)
    exec {fd}< <(ctr -a "$T/c.sock" run --rm --snapshotter $SNAP "$@" "$id" 2>&1)
    read -r line <&$fd || true
    t1=$(us)
    cat <&$fd >/dev/null
    exec {fd}<&-
    wait $! 2>/dev/null || true
    t2=$(us)
    [[ $line == hello ]] || die "$name: the container said '$line', not hello"
    echo $((t1 - t0)) >>"$T/$name.first"
    echo $((t2 - t0)) >>"$T/$name.exit"
}

# http_once NAME PORT RUNTIME-ARGS... IMAGE: one timed start to the first
# 200. With WAIT_NATIVE=1, the container is left serving until its
# /metrics says native code serves (its compile is then in the cache).
http_once() {
    local name=$1 port=$2 id=h$RANDOM$RANDOM
    shift 2
    local t0 t1 ok=
    t0=$(us)
    C run -d --snapshotter $SNAP --net-host --env PORT=$port "$@" "$id" >/dev/null 2>&1
    for _ in $(seq 1 20000); do
        if curl -fs -o /dev/null --max-time 1 "http://127.0.0.1:$port/"; then ok=1; break; fi
    done
    t1=$(us)
    if [[ ${WAIT_NATIVE:-0} == 1 ]]; then
        for _ in $(seq 1 2400); do
            curl -s "http://127.0.0.1:$port/metrics" | grep -q 'tier="native"} 1' && break
            sleep 0.05
        done
    fi
    C task kill -s SIGKILL "$id" >/dev/null 2>&1 || true
    for _ in $(seq 1 200); do
        [[ $(C task ls 2>/dev/null | awk -v t="$id" '$1 == t {print $3}') == STOPPED ]] && break
        sleep 0.01
    done
    C task delete "$id" >/dev/null 2>&1 || true
    C containers rm "$id" >/dev/null 2>&1 || true
    [[ -n $ok ]] || die "$name: no 200 from the container"
    echo $((t1 - t0)) >>"$T/$name.first"
}

free_port() { python3 "$HERE/../../tests/shim/free_port.py"; }

say "N=$N per row, snapshotter $SNAP, load average $load_before"
# One untimed start of each, so that images, the page cache and (warm
# rows) the native code cache are in place.
cmd_once warmup "${RUNC[@]}" bench/native-hello:1
cmd_once warmup "${WASMFN[@]}" bench/wasm-hello:1
compilers_wait
port=$(free_port)
WAIT_NATIVE=1 http_once warmup "$port" "${WASMFN[@]}" --annotation wasmfn.dev/http=true bench/wasm-http:1
http_once warmup "$port" "${RUNC[@]}" bench/native-http:1
[[ $(ls "$T/cache/"*.native 2>/dev/null | wc -l) -eq 2 ]] || die "the warm-up did not leave both modules' native code in the cache"

# Interleaved, so that a change of the machine's load affects every row.
for i in $(seq 1 "$N"); do
    cmd_once cmd-runc "${RUNC[@]}" bench/native-hello:1
    cmd_once cmd-wasmfn-warm "${WASMFN[@]}" bench/wasm-hello:1
    http_once http-runc "$port" "${RUNC[@]}" bench/native-http:1
    http_once http-wasmfn-warm "$port" "${WASMFN[@]}" --annotation wasmfn.dev/http=true bench/wasm-http:1
    say "round $i/$N"
done
for i in $(seq 1 "$N"); do
    rm -rf "$T/cache"
    cmd_once cmd-wasmfn-cold "${WASMFN[@]}" bench/wasm-hello:1
    compilers_wait
    rm -rf "$T/cache"
    http_once http-wasmfn-cold "$port" "${WASMFN[@]}" --annotation wasmfn.dev/http=true bench/wasm-http:1
    compilers_wait
    say "cold round $i/$N"
done
load_after=$(cut -d' ' -f1-3 /proc/loadavg)

# pct FILE P: the P-th percentile (nearest rank) of the µs in FILE, in ms.
pct() { sort -n "$1" | awk -v p="$2" '{a[NR] = $1} END {i = int((p * NR + 99) / 100); if (i < 1) i = 1; printf "%.1f", a[i] / 1000}'; }
row() { printf '| %-44s | %7s | %7s | %7s |\n' "$1" "$(pct "$2" 50)" "$(pct "$2" 90)" "$(pct "$2" 100)"; }
ratio() { awk -v a="$(pct "$1" 50)" -v b="$(pct "$2" 50)" 'BEGIN {printf "%.2f", a / b}'; }

echo
echo "containerd start-to-answer latency, N=$N per row (ms); load average $load_before before, $load_after after"
echo
echo "| row | p50 | p90 | max |"
echo "|---|---|---|---|"
row "command, first line: runc, static native" "$T/cmd-runc.first"
row "command, first line: wasmfn, native (warm cache)" "$T/cmd-wasmfn-warm.first"
row "command, first line: wasmfn, cold cache" "$T/cmd-wasmfn-cold.first"
row "command, exit (ctr run --rm returns): runc" "$T/cmd-runc.exit"
row "command, exit: wasmfn, warm" "$T/cmd-wasmfn-warm.exit"
row "command, exit: wasmfn, cold" "$T/cmd-wasmfn-cold.exit"
row "HTTP, first 200: runc, static native server" "$T/http-runc.first"
row "HTTP, first 200: wasmfn, native (warm cache)" "$T/http-wasmfn-warm.first"
row "HTTP, first 200: wasmfn, cold cache" "$T/http-wasmfn-cold.first"
echo
echo "p50 ratios wasmfn/runc: command first line warm $(ratio "$T/cmd-wasmfn-warm.first" "$T/cmd-runc.first"), cold $(ratio "$T/cmd-wasmfn-cold.first" "$T/cmd-runc.first"); HTTP first 200 warm $(ratio "$T/http-wasmfn-warm.first" "$T/http-runc.first"), cold $(ratio "$T/http-wasmfn-cold.first" "$T/http-runc.first")"
