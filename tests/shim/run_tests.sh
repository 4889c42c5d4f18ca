#!/usr/bin/env bash
# run_tests.sh — containerd-shim-wasmfn-v1 through a real, private containerd
# (Debian's containerd: its own root, state, sockets and config under a
# temporary directory; CRI disabled), driven with `ctr` as a user would:
#   images built here as OCI layouts and imported; `ctr run --runtime
#   io.containerd.wasmfn.v1` of a WASI command (output on the FIFOs, args,
#   env, rootfs as "/", the host's files out of reach, exit status);
#   SIGTERM and SIGKILL stopping a spinning guest promptly; its metrics
#   (`ctr task metrics`: cgroups v2 Metrics) running and stopped; a memory limit;
#   a broken module refused at create with its reason; task events reaching
#   containerd; an HTTP function (wasmfn.dev/http=true) on the host network
#   answering curl and /metrics, then drained by SIGTERM; native code: a
#   first start interpreted while the node's cache is filled in the
#   background, the next one native (the shim's log line in containerd's
#   log; wasmfn_revision_tier on an HTTP function's /metrics), a damaged
#   artefact refused and rebuilt, the runtime options' tier and cache_dir.
# Needs root (containerd mounts). Env: SHIM (the binary), CMD_WASM
# (tests/shim/fns/cmd.c built), HELLO_WASM (examples/hello.wasm).
# Ends with "shim: N passed, M failed"; exits non-zero on a failure.
set -uo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
: "${SHIM:?}" "${CMD_WASM:?}" "${HELLO_WASM:?}"
pass=0
fail=0
ok() { pass=$((pass + 1)); echo "  ok   $1"; }
bad() { fail=$((fail + 1)); echo "  FAIL $1"; }
check() { if eval "$2"; then ok "$1"; else bad "$1"; fi; }
finish() {
    echo "shim: $pass passed, $fail failed"
    [[ $fail -eq 0 ]]
}
skip_all() { echo "shim: $1"; echo "shim: 0 passed, 1 failed"; exit 1; }

[[ $(id -u) -eq 0 ]] || skip_all "needs root (containerd mounts the rootfs)"
for tool in containerd ctr curl python3; do
    command -v $tool >/dev/null || skip_all "$tool is missing (make deps)"
done

# A short directory (see containerd.sh).
T=$(mktemp -d /tmp/wfs.XXXXXX)
source "$HERE/containerd.sh"
trap ctrd_stop EXIT
ctrd_start "$T" "$SHIM" || skip_all "containerd did not start"

# Overlayfs where the kernel allows it here, else containerd's native copy.
SNAP=overlayfs
echo hi >"$T/data.txt"
python3 "$HERE/mkimage.py" "$T/cmd.tar" docker.io/wasmfn/cmd:1 --file "$CMD_WASM:/cmd.wasm" \
    --file "$T/data.txt:/data.txt" --entrypoint '["/cmd.wasm"]' --env GREETING=hi --workdir /work
if ! C images import --snapshotter $SNAP "$T/cmd.tar" >/dev/null 2>&1; then
    SNAP=native
    C images import --snapshotter $SNAP "$T/cmd.tar" >/dev/null || skip_all "ctr images import failed"
fi
echo "  (snapshotter $SNAP)"
# The shim's configuration (runtime options): native code cached in $T.
printf 'tier = "auto"\ncache_dir = "%s"\n' "$T/cache" >"$T/shim.toml"
RUN=(run --snapshotter $SNAP --runtime io.containerd.wasmfn.v1 --runtime-config-path "$T/shim.toml")
# A value from `ctr task metrics` output in $m.
metric() { awk -v k="$1" '$1 == k {print $2}' <<<"$m"; }
# The line the shim logs (into containerd's log) for container $1's tier.
tier_line() { grep -a "shim: container $1: " "$T/containerd.log" | tail -1; }

# Events as containerd sees them, for the whole run.
C events >"$T/events" 2>&1 &
EVPID=$!

echo "== a WASI command"
out=$(timeout 30 ctr -a "$T/c.sock" "${RUN[@]}" --rm docker.io/wasmfn/cmd:1 c1 /cmd.wasm hello 7 2>"$T/c1.err")
rc=$?
check "exit status is the guest's (7)" '[[ $rc -eq 7 ]]'
check "stdout reaches ctr through the FIFO" 'grep -qx "arg1=hello" <<<"$out"'
check "argv[0] is process.args[0]" 'grep -qx "arg0=/cmd.wasm" <<<"$out"'
check "the image's env applies" 'grep -qx "GREETING=hi" <<<"$out"'
check "the image's working directory is \$PWD" 'grep -qx "PWD=/work" <<<"$out"'
check "the rootfs is /" 'grep -qx "/data.txt: hi" <<<"$out"'
check "the host's files are out of reach" 'grep -qx "/etc/hostname: missing" <<<"$out"'
check "stderr reaches ctr" 'grep -qx "to stderr" "$T/c1.err"'
out=$(timeout 30 ctr -a "$T/c.sock" "${RUN[@]}" --rm --env GREETING=yo docker.io/wasmfn/cmd:1 c2 /cmd.wasm hello 0 2>/dev/null)
rc=$?
check "exit 0, and ctr --env overrides the image's" '[[ $rc -eq 0 ]] && grep -qx "GREETING=yo" <<<"$out"'

echo "== stopping a running guest"
for sig in SIGTERM SIGKILL; do
    want=$([[ $sig == SIGTERM ]] && echo 143 || echo 137)
    C "${RUN[@]}" -d --memory-limit $((32 << 20)) docker.io/wasmfn/cmd:1 "s-$sig" /cmd.wasm spin >/dev/null 2>&1
    for _ in $(seq 1 100); do
        [[ $(C task ls 2>/dev/null | awk -v t="s-$sig" '$1 == t {print $3}') == RUNNING ]] && break
        sleep 0.05
    done
    sleep 0.2 # the guest is in its loop now
    if [[ $sig == SIGTERM ]]; then
        m=$(C task metrics "s-$sig" 2>&1)
        check "ctr task metrics: a running guest's CPU time, memory, limit and threads" \
            '[[ $(metric cpu.usage_usec) -gt 0 && $(metric memory.usage) -gt $((1 << 20)) &&
                $(metric memory.usage_limit) == $((32 << 20)) && $(metric pids.current) -ge 1 ]]'
    fi
    t0=$(date +%s%3N)
    C task kill -s $sig "s-$sig"
    st=
    for _ in $(seq 1 100); do
        st=$(C task ls 2>/dev/null | awk -v t="s-$sig" '$1 == t {print $3}')
        [[ $st == STOPPED ]] && break
        sleep 0.02
    done
    ms=$(($(date +%s%3N) - t0))
    if [[ $sig == SIGTERM ]]; then
        m=$(C task metrics "s-$sig" 2>&1)
        check "ctr task metrics: a stopped guest's CPU time, no memory or threads" \
            '[[ $(metric cpu.usage_usec) -gt 0 && $(metric memory.usage) == 0 && $(metric pids.current) == 0 ]]'
    fi
    # ctr reports a non-zero exit status as a warning
    code=$(C task delete "s-$sig" 2>&1 | grep -o 'exit code [0-9]*' | grep -o '[0-9]*$')
    C containers rm "s-$sig" >/dev/null 2>&1
    check "$sig stops a spinning guest within 2 s (took ${ms} ms)" '[[ $st == STOPPED && $ms -lt 2000 ]]'
    check "$sig: exit status $want" '[[ $code == "$want" ]]'
done

echo "== limits and bad modules"
out=$(timeout 30 ctr -a "$T/c.sock" "${RUN[@]}" --rm --memory-limit $((16 << 20)) docker.io/wasmfn/cmd:1 m1 /cmd.wasm grow 64 2>/dev/null)
rc=$?
check "a 16 MiB memory limit stops a 64 MiB allocation" '[[ $rc -eq 3 ]] && grep -qx "no memory" <<<"$out"'
out=$(timeout 30 ctr -a "$T/c.sock" "${RUN[@]}" --rm docker.io/wasmfn/cmd:1 m2 /cmd.wasm grow 64 2>/dev/null)
check "without one the same allocation succeeds" 'grep -qx "grew 1" <<<"$out"'
err=$(timeout 30 ctr -a "$T/c.sock" "${RUN[@]}" --rm docker.io/wasmfn/cmd:1 b1 /data.txt 2>&1)
rc=$?
check "a file that is not Wasm fails create, saying so" '[[ $rc -ne 0 ]] && grep -q "/data.txt: not a WebAssembly module" <<<"$err"'
err=$(timeout 30 ctr -a "$T/c.sock" "${RUN[@]}" --rm docker.io/wasmfn/cmd:1 b2 /../../../etc/hostname 2>&1)
rc=$?
check "a module path cannot leave the rootfs" '[[ $rc -ne 0 ]] && grep -q "No such file or directory in the image" <<<"$err"'
out=$(timeout 30 ctr -a "$T/c.sock" "${RUN[@]}" --rm docker.io/wasmfn/cmd:1 b3 /cmd.wasm hello 0 2>/dev/null)
check "the shim keeps working after those" 'grep -qx "arg1=hello" <<<"$out"'

echo "== native code"
check "a first start runs interpreted while the cache is filled" \
    'tier_line c1 | grep -q "/cmd.wasm: interpreted (not cached; compiling it in the background"'
hex=$(sha256sum "$CMD_WASM" | cut -c1-64)
art=
for _ in $(seq 1 600); do
    art=$(ls "$T/cache/$hex"-*.native 2>/dev/null | head -1)
    [[ -n $art ]] && break
    sleep 0.1
done
check "the background compile stores the module's native code" '[[ -n $art ]]'
out=$(timeout 30 ctr -a "$T/c.sock" "${RUN[@]}" --rm docker.io/wasmfn/cmd:1 n1 /cmd.wasm hello 7 2>/dev/null)
rc=$?
check "the next start runs native code from the cache" \
    'tier_line n1 | grep -q "/cmd.wasm: native code (from the cache $T/cache)"'
check "native code gives the same output and exit status" '[[ $rc -eq 7 ]] && grep -qx "arg1=hello" <<<"$out" && grep -qx "/data.txt: hi" <<<"$out"'
C "${RUN[@]}" -d docker.io/wasmfn/cmd:1 n2 /cmd.wasm spin >/dev/null 2>&1
for _ in $(seq 1 100); do
    [[ $(C task ls 2>/dev/null | awk '$1 == "n2" {print $3}') == RUNNING ]] && break
    sleep 0.05
done
sleep 0.2
C task kill -s SIGTERM n2
for _ in $(seq 1 100); do
    [[ $(C task ls 2>/dev/null | awk '$1 == "n2" {print $3}') == STOPPED ]] && break
    sleep 0.02
done
code=$(C task delete n2 2>&1 | grep -o 'exit code [0-9]*' | grep -o '[0-9]*$')
C containers rm n2 >/dev/null 2>&1
check "SIGTERM interrupts a spinning guest in native code too (143)" \
    'tier_line n2 | grep -q "native code" && [[ $code == 143 ]]'
# One byte of the sealed artefact changed: refused, run interpreted, rebuilt.
python3 -c 'import sys; p=sys.argv[1]; b=bytearray(open(p,"rb").read()); b[len(b)//2]^=1; open(p,"wb").write(b)' "$art"
out=$(timeout 30 ctr -a "$T/c.sock" "${RUN[@]}" --rm docker.io/wasmfn/cmd:1 n3 /cmd.wasm hello 0 2>/dev/null)
check "a damaged artefact is refused and the guest runs interpreted" \
    'tier_line n3 | grep -q "interpreted (its cached code was refused" && grep -qx "arg1=hello" <<<"$out"'
for _ in $(seq 1 600); do
    [[ -f $art ]] && break
    sleep 0.1
done
out=$(timeout 30 ctr -a "$T/c.sock" "${RUN[@]}" --rm docker.io/wasmfn/cmd:1 n4 /cmd.wasm hello 0 2>/dev/null)
check "... and compiled again for the next start" 'tier_line n4 | grep -q "native code (from the cache"'
printf '# no native code\ntier = "interp"\n' >"$T/interp.toml"
timeout 30 ctr -a "$T/c.sock" "${RUN[@]/$T\/shim.toml/$T/interp.toml}" --rm docker.io/wasmfn/cmd:1 n5 /cmd.wasm hello 0 >/dev/null 2>&1
check "tier \"interp\" in the runtime options keeps the interpreter" \
    'tier_line n5 | grep -q "interpreted (tier \"interp\""'
printf 'tier = "auto"\n\ncache = "/x"\n' >"$T/bad.toml"
err=$(timeout 30 ctr -a "$T/c.sock" "${RUN[@]/$T\/shim.toml/$T/bad.toml}" --rm docker.io/wasmfn/cmd:1 n6 /cmd.wasm 2>&1)
rc=$?
check "a bad configuration fails create, naming file and line" \
    '[[ $rc -ne 0 ]] && grep -q "bad.toml:3: unknown key .cache." <<<"$err"'

echo "== an HTTP function"
# A port free on every address: the function listens on 0.0.0.0:$PORT.
port=$(python3 "$HERE/free_port.py")
python3 "$HERE/mkimage.py" "$T/web.tar" docker.io/wasmfn/hello:1 --file "$HELLO_WASM:/hello.wasm" \
    --entrypoint '["/hello.wasm"]'
C images import --snapshotter $SNAP "$T/web.tar" >/dev/null
# Killed while its module compiles: the compiler goes with it.
# A task that did not start says why (its ctr output, containerd's lines).
started() {
    [[ -n $(C task ls 2>/dev/null | awk -v id="$1" '$1 == id {print $2}') ]] && return 0
    echo "  ($1 did not start: $(tail -3 "$T/$1.out" | tr '\n' ' ')| containerd: $(grep -a "$1" "$T/containerd.log" | tail -3 | tr '\n' ' '))"
    return 1
}
C "${RUN[@]}" -d --net-host --env PORT=$port --annotation wasmfn.dev/http=true \
    docker.io/wasmfn/hello:1 w0 >"$T/w0.out" 2>&1
for _ in $(seq 1 100); do curl -s -m 2 -o /dev/null "http://127.0.0.1:$port/" && break; sleep 0.05; done
gpid=$(C task ls 2>/dev/null | awk '$1 == "w0" {print $2}')
cpid=
for _ in $(seq 1 100); do
    started w0 >/dev/null || break
    cpid=$(pgrep -P "$gpid" -f "compile --raw") && break
    sleep 0.02
done
started w0 || true
# Running: it exists and is not a zombie (whoever inherits it reaps it).
running() { [[ -e /proc/$1 ]] && [[ $(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) != Z ]]; }
# At most 0.5 s: the compile itself takes over a second of CPU (at nice
# 19), so a compiler that outlived its parent would still be running.
C task kill -s SIGKILL w0
for _ in $(seq 1 25); do
    [[ -n $cpid ]] && ! running "$cpid" && break
    sleep 0.02
done
check "a compile in progress ends with the HTTP function killed during it" \
    '[[ -n $cpid ]] && ! running "$cpid"'
for _ in $(seq 1 100); do
    [[ $(C task ls 2>/dev/null | awk '$1 == "w0" {print $3}') == STOPPED ]] && break
    sleep 0.02
done
C task delete w0 >/dev/null 2>&1
C containers rm w0 >/dev/null 2>&1
C "${RUN[@]}" -d --net-host --env PORT=$port --annotation wasmfn.dev/http=true \
    docker.io/wasmfn/hello:1 w1 >"$T/w1.out" 2>&1
body=
for _ in $(seq 1 100); do
    body=$(curl -s -m 2 "http://127.0.0.1:$port/some/path?x=1") && break
    sleep 0.05
done
started w1 || true
check "curl gets the function's answer on \$PORT" 'grep -q "Hello from wasmfn! (path /some/path)" <<<"$body"'
curl -s -o /dev/null "http://127.0.0.1:$port/again"
metrics=$(curl -s "http://127.0.0.1:$port/metrics")
check "/metrics counts both requests" 'grep -q "^wasmfn_requests_total{function=\"fn\",revision=\"fn-00001\",code=\"200\"} 2$" <<<"$metrics"'
native='wasmfn_revision_tier{function="fn",revision="fn-00001",tier="native"} 1'
check "a first start serves interpreted while it compiles" \
    'tier_line w1 | grep -q "/hello.wasm: HTTP function: interpreted until its background compile into $T/cache is done"'
for _ in $(seq 1 600); do
    curl -s "http://127.0.0.1:$port/metrics" | grep -qF "$native" && break
    sleep 0.1
done
body=$(curl -s "http://127.0.0.1:$port/native")
check "it switches to native code when its background compile is done" \
    'curl -s "http://127.0.0.1:$port/metrics" | grep -qF "$native" && grep -q "(path /native)" <<<"$body"'
C task kill w1
st=
for _ in $(seq 1 100); do
    st=$(C task ls 2>/dev/null | awk '$1 == "w1" {print $3}')
    [[ $st == STOPPED ]] && break
    sleep 0.05
done
code=$(C task delete w1 2>&1 | grep -o 'exit code [0-9]*')
C containers rm w1 >/dev/null 2>&1
check "SIGTERM drains it and it exits 0" '[[ $st == STOPPED && -z $code ]]'
check "the port is closed afterwards" '! curl -s -m 1 -o /dev/null "http://127.0.0.1:$port/"'
C "${RUN[@]}" -d --net-host --env PORT=$port --annotation wasmfn.dev/http=true \
    docker.io/wasmfn/hello:1 w2 >"$T/w2.out" 2>&1
body=
for _ in $(seq 1 100); do
    body=$(curl -s -m 2 "http://127.0.0.1:$port/") && break
    sleep 0.05
done
started w2 || true
# The tier gauge is set at the data plane's next tick (1 s): the first
# value it shows must be native.
tier=
for _ in $(seq 1 40); do
    tier=$(curl -s "http://127.0.0.1:$port/metrics" | grep -o '^wasmfn_revision_tier{.*tier="[a-z]*"} 1$')
    [[ -n $tier ]] && break
    sleep 0.05
done
check "the next start of the function serves native code at once" \
    'grep -q "Hello from wasmfn" <<<"$body" && [[ $tier == "$native" ]] && tier_line w2 | grep -q "HTTP function: native code (from the cache"'
C task kill w2
for _ in $(seq 1 100); do
    [[ $(C task ls 2>/dev/null | awk '$1 == "w2" {print $3}') == STOPPED ]] && break
    sleep 0.05
done
C task delete w2 >/dev/null 2>&1
C containers rm w2 >/dev/null 2>&1

echo "== events"
sleep 0.3
kill $EVPID 2>/dev/null
for topic in /tasks/create /tasks/start /tasks/exit /tasks/delete; do
    check "containerd received $topic from the shim" 'grep -q " $topic " "$T/events"'
done
check "no shim is left running" '! pgrep -f "containerd-shim-wasmfn-v1 .*-address $T/c.sock" >/dev/null'

finish
