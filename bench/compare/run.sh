#!/usr/bin/env bash
# run.sh — the comparison behind `make bench` (mk/bench-compare.mk runs it
# from the repository root after building wasmfn):
#
#   bash bench/compare/run.sh            # full run, about 10 minutes on 2 cores
#   QUICK=1 bash bench/compare/run.sh    # one-minute check, one short run
#
# The same three functions (bench/compare/fns/hello.c, examples/transform.c,
# bench/compare/fns/cpu.c) run on wasmfn, workerd (a fresh WebAssembly.Instance
# per request, and one reused instance), Node.js WASI (a node process per
# request), native CGI (fork/exec per request) and, for hello, nginx
# answering a static 200. Every server listens on 127.0.0.1; all of them are
# started by this script and stopped when it exits, however it exits.
#
# Raw results go to build/bench-compare/ (results.tsv, cold.tsv, the wrk and
# probe outputs); report.mjs turns them into the table in docs/benchmarks.md
# (unless BENCH_WRITE=0) and the plots in docs/bench/.
#
# Environment: WASMFN (default build/wasmfn), BENCH_PORT (first of the ports
# used, default 18400; it uses 12 from there), WORKERD (the workerd binary;
# default: the one npm installed under bench/node_modules), QUICK, BENCH_WRITE.
set -euo pipefail

WASMFN=${WASMFN:-build/wasmfn}
QUICK=${QUICK:-0}
BENCH_WRITE=${BENCH_WRITE:-1}
OUT=build/bench-compare
HERE=bench/compare
PORT=${BENCH_PORT:-18400}

# wrk: the same threads and connections for every system.
THREADS=2
CONNS=16
if [[ $QUICK == 1 ]]; then
    RUNS=1 DUR=2 WARMUP=0 COLD_N=20 WD_COLD_N=3 LAT_N=3 MEM_N=500
    BENCH_WRITE=0
else
    RUNS=3 DUR=8 WARMUP=1 COLD_N=100 WD_COLD_N=10 LAT_N=7 MEM_N=2000
fi
FNS=(hello hellof transform cpu)
SYSTEMS=(nginx wasmfn workerd-fresh workerd-reuse node-wasi cgi-native)

P_NGINX=$PORT P_WF=$((PORT + 1)) P_WFA=$((PORT + 2)) P_WD=$((PORT + 3)) P_WDC=$((PORT + 4))
P_NODE=$((PORT + 5)) P_CGI=$((PORT + 6)) P_WFM=$((PORT + 7)) P_WFMA=$((PORT + 8))

BENCH_NAME=bench
# shellcheck source=bench/lib.sh
source bench/lib.sh

port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

rss_kib() { sed -n 's/^VmRSS:[[:space:]]*\([0-9]*\) kB/\1/p' "/proc/$1/status"; }

# --- build ------------------------------------------------------------------
mkdir -p "$OUT/wasm" "$OUT/native" "$OUT/raw"
rm -f "$OUT"/raw/* "$OUT/results.tsv" "$OUT/cold.tsv" "$OUT/commands.txt"
[[ -x $WASMFN ]] || die "$WASMFN is missing (run make first)"
for p in $P_NGINX $P_WF $P_WFA $P_WD $P_WDC $P_NODE $P_CGI $P_WFM $P_WFMA; do
    if port_busy "$p"; then die "port $p on 127.0.0.1 is in use; set BENCH_PORT to a free range"; fi
done

CC=${CC:-gcc}
$CC -std=gnu11 -O2 -Wall -Wextra -o "$OUT/cgiserver" $HERE/cgiserver.c -lpthread
$CC -std=gnu11 -O2 -Wall -Wextra -o "$OUT/probe" $HERE/probe.c
PROBE=$OUT/probe
src_of() { if [[ $1 == transform ]]; then echo examples/transform.c; else echo "$HERE/fns/$1.c"; fi; }
for fn in "${FNS[@]}"; do
    # The same C, natively at -O2 and to wasm32-wasi at -O2 (as mk/examples.mk).
    $CC -std=gnu11 -O2 -o "$OUT/native/$fn" "$(src_of $fn)"
    clang --target=wasm32-wasi -O2 -Wl,--strip-debug -o "$OUT/wasm/$fn.wasm" "$(src_of $fn)"
done
sed -n "s/^wrk.body = '\(.*\)'$/\1/p" $HERE/post.lua >"$OUT/transform.json"
NODE=$(command -v node) || die "node is not installed (make deps)"

# Expected answers: the native build's output bodies, run as a CGI server
# runs it for a GET (hellof prints REQUEST_METHOD).
expect() {
    if [[ $1 == transform ]]; then
        REQUEST_METHOD=POST "$OUT/native/$1" <"$OUT/transform.json"
    else
        REQUEST_METHOD=GET "$OUT/native/$1" </dev/null
    fi | sed '1,/^$/d'
}
for fn in "${FNS[@]}"; do expect "$fn" >"$OUT/expect.$fn"; done

# --- workerd ------------------------------------------------------------
WORKERD=${WORKERD:-bench/node_modules/@cloudflare/workerd-linux-64/bin/workerd}
WORKERD_STATUS=ok
if [[ ! -x $WORKERD ]]; then
    WORKERD_STATUS="not installed: $WORKERD is missing ($(cat "$OUT/../bench-npm.log" 2>/dev/null | tail -1 || true))"
elif ! "$WORKERD" --version >"$OUT/raw/workerd-version" 2>&1; then
    WORKERD_STATUS="cannot run: $(head -c 300 "$OUT/raw/workerd-version" | tr '\n' ' ')"
fi
# workerd_config DIR PORT FN...: a config serving worker.mjs with those modules.
workerd_config() {
    local dir=$1 port=$2 fn
    shift 2
    mkdir -p "$dir"
    cp $HERE/worker.mjs $HERE/wasi_shim.mjs "$dir/"
    {
        for fn in "$@"; do echo "import $fn from './$fn.wasm';"; done
        echo "export default { $(echo "$@" | sed 's/ /, /g') };"
    } >"$dir/fns.mjs"
    {
        echo 'using Workerd = import "/workerd/workerd.capnp";'
        echo 'const config :Workerd.Config = ('
        echo '  services = [ (name = "main", worker = .bench) ],'
        echo "  sockets = [ (name = \"http\", address = \"127.0.0.1:$port\", http = (), service = \"main\") ],"
        echo ');'
        echo 'const bench :Workerd.Worker = ('
        echo '  modules = ['
        echo '    (name = "worker.mjs", esModule = embed "worker.mjs"),'
        echo '    (name = "wasi_shim.mjs", esModule = embed "wasi_shim.mjs"),'
        echo '    (name = "fns.mjs", esModule = embed "fns.mjs"),'
        for fn in "$@"; do
            cp "$OUT/wasm/$fn.wasm" "$dir/"
            echo "    (name = \"$fn.wasm\", wasm = embed \"$fn.wasm\"),"
        done
        echo '  ],'
        echo '  compatibilityDate = "2024-09-23",'
        echo ');'
    } >"$dir/config.capnp"
}

# A busy machine makes every figure lower. Wait (at most a minute) for the
# 1-minute load average to fall below 1; the report shows it either way.
if [[ $QUICK != 1 ]]; then
    for ((i = 0; i < 12; i++)); do
        awk '{exit !($1 < 1.0)}' /proc/loadavg && break
        ((i == 0)) && say "the machine is busy (load average $(cut -d' ' -f1 /proc/loadavg)); waiting up to a minute for it to settle"
        sleep 5
    done
fi

# --- start the servers ------------------------------------------------------
say "starting nginx, wasmfn, workerd, the Node.js WASI and CGI servers on 127.0.0.1:$PORT.."
NGX=$OUT/nginx
nginx_start "$NGX" "$P_NGINX"

WFDATA=$OUT/wasmfn-data
rm -rf "$WFDATA"
"$WASMFN" serve --listen 127.0.0.1:$P_WF --admin 127.0.0.1:$P_WFA --data "$WFDATA" >"$OUT/raw/wasmfn.log" 2>&1 &
PIDS+=($!)

if [[ $WORKERD_STATUS == ok ]]; then
    workerd_config "$OUT/workerd/all" $P_WD "${FNS[@]}"
    workerd_config "$OUT/workerd/cold" $P_WDC hello
    "$WORKERD" serve "$OUT/workerd/all/config.capnp" >"$OUT/raw/workerd.log" 2>&1 &
    PIDS+=($!)
fi

"$OUT/cgiserver" $P_NODE "$NODE" --no-warnings "$PWD/$HERE/node_wasi.mjs" "$PWD/$OUT/wasm/{}.wasm" &
PIDS+=($!)
"$OUT/cgiserver" $P_CGI "$PWD/$OUT/native/{}" &
PIDS+=($!)

wait_http "http://127.0.0.1:$P_NGINX/" || die "nginx did not start (see $NGX/logs/error.log)"
wait_http "http://127.0.0.1:$P_WFA/readyz" || die "wasmfn serve did not start (see $OUT/raw/wasmfn.log)"
if [[ $WORKERD_STATUS == ok ]] && ! wait_http "http://127.0.0.1:$P_WD/fresh/hello"; then
    WORKERD_STATUS="did not serve: $(tail -3 "$OUT/raw/workerd.log" | tr '\n' ' ')"
fi
[[ $WORKERD_STATUS == ok ]] || say "workerd left out: $WORKERD_STATUS"

# Deploy on wasmfn with the CLI: the three functions with default settings
# (fresh instance per request, initial-scale 1, no max-scale), and the
# functions for cold starts: RUNS*COLD_N copies of hello with
# initial-scale "0", each requested once, so each request finds no instance.
export WASMFN_API=127.0.0.1:$P_WFA
WASMFN_TOKEN=$(cat "$WFDATA/admin.token")
export WASMFN_TOKEN
for fn in "${FNS[@]}"; do
    "$WASMFN" deploy -q "$fn" "$OUT/wasm/$fn.wasm" >/dev/null
    echo "$WASMFN deploy $fn $OUT/wasm/$fn.wasm" >>"$OUT/commands.txt"
done
# Each serves from the interpreter until its native code is compiled in
# the background: measure the tier a function runs for good.
wait_native "${FNS[@]}" || die "native code was not ready in time (see $OUT/raw/wasmfn.log)"
COLD_TOTAL=$((RUNS * COLD_N))
for ((i = 1; i <= COLD_TOTAL; i++)); do
    cat <<EOF
---
apiVersion: serving.knative.dev/v1
kind: Service
metadata:
  name: cold-$i
spec:
  template:
    metadata:
      annotations:
        autoscaling.knative.dev/initial-scale: "0"
    spec:
      containers:
        - image: wasm/hello.wasm
EOF
done >"$OUT/cold.yaml"
"$WASMFN" apply -f "$OUT/cold.yaml" >/dev/null
echo "$WASMFN apply -f $OUT/cold.yaml   # cold-1..cold-$COLD_TOTAL: hello.wasm, initial-scale \"0\"" >>"$OUT/commands.txt"

url_of() { # SYSTEM FN
    case $1 in
    nginx) echo "http://127.0.0.1:$P_NGINX/" ;;
    wasmfn) echo "http://127.0.0.1:$P_WF/fn/$2/" ;;
    workerd-fresh) echo "http://127.0.0.1:$P_WD/fresh/$2" ;;
    workerd-reuse) echo "http://127.0.0.1:$P_WD/reuse/$2" ;;
    node-wasi) echo "http://127.0.0.1:$P_NODE/$2" ;;
    cgi-native) echo "http://127.0.0.1:$P_CGI/$2" ;;
    esac
}
port_of() { # SYSTEM
    case $1 in
    nginx) echo $P_NGINX ;; wasmfn) echo $P_WF ;; workerd-*) echo $P_WD ;;
    node-wasi) echo $P_NODE ;; cgi-native) echo $P_CGI ;;
    esac
}
path_of() { local u; u=$(url_of "$1" "$2"); echo "/${u#http://*/}"; }
active() { # SYSTEM FN: is this pair measured?
    [[ $1 == nginx && $2 != hello ]] && return 1
    [[ $1 == workerd-* && $WORKERD_STATUS != ok ]] && return 1
    return 0
}

# Every system must give the native build's answer before it is timed.
for fn in "${FNS[@]}"; do
    for sys in "${SYSTEMS[@]}"; do
        active "$sys" "$fn" || continue
        [[ $sys == nginx ]] && continue
        if [[ $fn == transform ]]; then
            got=$(curl -fsS --max-time 10 -H 'Content-Type: application/json' --data-binary @"$OUT/transform.json" "$(url_of "$sys" "$fn")")
        else
            got=$(curl -fsS --max-time 10 "$(url_of "$sys" "$fn")")
        fi || die "$sys: $fn failed"
        [[ $got == "$(cat "$OUT/expect.$fn")" ]] || die "$sys: $fn answered '$got', expected '$(cat "$OUT/expect.$fn")'"
    done
done
say "every system answers every function as the native build does"

# --- measurements ------------------------------------------------------------
record() { printf '%s\t%s\t%s\t%s\t%s\n' "$@" >>"$OUT/results.tsv"; }

# to_us VALUE-WITH-UNIT: wrk's "382.00us", "2.10ms", "1.02s" in microseconds
to_us() { awk -v v="$1" 'BEGIN {
    if (v ~ /us$/) m = 1; else if (v ~ /ms$/) m = 1000; else if (v ~ /m$/) m = 60e6; else if (v ~ /s$/) m = 1e6; else m = 1
    sub(/[a-z]+$/, "", v); printf "%.1f", v * m }'; }

wrk_cmd() { # SYSTEM FN DURATION
    local args=(wrk -t$THREADS -c$CONNS -d"$3"s --timeout 10s --latency)
    [[ $2 == transform ]] && args+=(-s $HERE/post.lua)
    echo "${args[*]} $(url_of "$1" "$2")"
}

wrk_run() { # RUN SYSTEM FN
    local run=$1 sys=$2 fn=$3 out cmd
    out=$OUT/raw/wrk.$run.$sys.$fn
    cmd=$(wrk_cmd "$sys" "$fn" $DUR)
    $cmd >"$out" 2>&1 || die "wrk failed for $sys $fn: $(tail -2 "$out")"
    local rps p50 p99 non2xx sockerr
    rps=$(sed -n 's/^Requests\/sec:[[:space:]]*//p' "$out")
    p50=$(to_us "$(awk '$1 == "50%" {print $2}' "$out")")
    p99=$(to_us "$(awk '$1 == "99%" {print $2}' "$out")")
    non2xx=$(sed -n 's/.*Non-2xx or 3xx responses:[[:space:]]*//p' "$out")
    sockerr=$(sed -n 's/.*Socket errors: connect \([0-9]*\), read \([0-9]*\), write \([0-9]*\), timeout \([0-9]*\).*/\1 \2 \3 \4/p' "$out" | awk '{print $1 + $2 + $3 + $4}')
    record "$run" "$sys" "$fn" rps "${rps:-0}"
    record "$run" "$sys" "$fn" p50_us "$p50"
    record "$run" "$sys" "$fn" p99_us "$p99"
    record "$run" "$sys" "$fn" errors "$((${non2xx:-0} + ${sockerr:-0}))"
    say "run $run: $sys $fn: $rps req/s, p50 $p50 us, p99 $p99 us, errors $((${non2xx:-0} + ${sockerr:-0}))"
}

for fn in "${FNS[@]}"; do
    for sys in "${SYSTEMS[@]}"; do
        active "$sys" "$fn" || continue
        echo "$(wrk_cmd "$sys" "$fn" $DUR)" >>"$OUT/commands.txt"
    done
done

if ((WARMUP)); then
    say "warm-up: 1 s of wrk on every system and function"
    for fn in "${FNS[@]}"; do
        for sys in "${SYSTEMS[@]}"; do
            active "$sys" "$fn" || continue
            $(wrk_cmd "$sys" "$fn" 1) >/dev/null 2>&1 || true
        done
    done
fi

cold_record() { # RUN SYSTEM FILE
    awk -v r="$1" -v s="$2" '{printf "%s\t%s\t%s\n", r, s, $1}' "$3" >>"$OUT/cold.tsv"
}

# Memory per live instance, each run on a fresh process: the process's
# resident set before and after making MEM_N instances live, divided by
# MEM_N (wasmfn: warm instances of hello kept by min-scale; workerd:
# WebAssembly.Instance objects of hello held by the worker). For Node.js
# WASI and native CGI an instance is a process: its peak resident set.
memory_run() { # RUN
    local run=$1 pid before after data=$OUT/wasmfn-mem w i
    rm -rf "$data"
    "$WASMFN" serve --listen 127.0.0.1:$P_WFM --admin 127.0.0.1:$P_WFMA --data "$data" >"$OUT/raw/wasmfn-mem.log" 2>&1 &
    pid=$!
    PIDS+=($pid)
    wait_http "http://127.0.0.1:$P_WFMA/readyz" || die "wasmfn serve (memory) did not start"
    (
        export WASMFN_API=127.0.0.1:$P_WFMA WASMFN_TOKEN
        WASMFN_TOKEN=$(cat "$data/admin.token")
        "$WASMFN" deploy -q hello "$OUT/wasm/hello.wasm" >/dev/null
        wait_native hello
        curl -fs -o /dev/null "http://127.0.0.1:$P_WFM/fn/hello/"
        sleep 0.5
        rss_kib $pid >"$OUT/raw/mem-before"
        "$WASMFN" deploy -q mem "$OUT/wasm/hello.wasm" --min-scale $MEM_N >/dev/null
    )
    before=$(cat "$OUT/raw/mem-before")
    for ((i = 0; i < 200; i++)); do
        w=$(curl -fs "http://127.0.0.1:$P_WFMA/metrics" | sed -n 's/^wasmfn_instances{function="mem",.*state="warm"} //p')
        [[ $w == "$MEM_N" ]] && break
        sleep 0.1
    done
    [[ $w == "$MEM_N" ]] || die "wasmfn did not reach $MEM_N warm instances in 20 s (has ${w:-none})"
    sleep 0.5
    after=$(rss_kib $pid)
    record "$run" wasmfn hello mem_kib "$(awk -v a="$after" -v b="$before" -v n=$MEM_N 'BEGIN {printf "%.2f", (a - b) / n}')"
    stop_all_but_main $pid

    if [[ $WORKERD_STATUS == ok ]]; then
        "$WORKERD" serve "$OUT/workerd/cold/config.capnp" >"$OUT/raw/workerd-mem.log" 2>&1 &
        pid=$!
        PIDS+=($pid)
        wait_http "http://127.0.0.1:$P_WDC/fresh/hello" || die "workerd (memory) did not start"
        sleep 0.5
        before=$(rss_kib $pid)
        curl -fs -o /dev/null --max-time 60 "http://127.0.0.1:$P_WDC/hold?fn=hello&n=$MEM_N" || die "workerd: /hold failed"
        sleep 0.5
        after=$(rss_kib $pid)
        record "$run" workerd hello mem_kib "$(awk -v a="$after" -v b="$before" -v n=$MEM_N 'BEGIN {printf "%.2f", (a - b) / n}')"
        stop_all_but_main $pid
    fi
    record "$run" node-wasi hello mem_kib "$("$PROBE" rss -- "$NODE" --no-warnings $HERE/node_wasi.mjs "$OUT/wasm/hello.wasm")"
    record "$run" cgi-native hello mem_kib "$("$PROBE" rss -- "$OUT/native/hello")"
}

# stop_all_but_main PID: stops the one helper process PID and forgets it.
stop_all_but_main() {
    local pid=$1 p keep=()
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    for p in "${PIDS[@]}"; do [[ $p == "$pid" ]] || keep+=("$p"); done
    PIDS=("${keep[@]}")
}

rotate() { # N ITEMS...: the items, starting from the N-th (mod count)
    local n=$1
    shift
    local items=("$@") i
    for ((i = 0; i < ${#items[@]}; i++)); do echo "${items[(i + n) % ${#items[@]}]}"; done
}

for ((run = 1; run <= RUNS; run++)); do
    say "run $run of $RUNS"
    # other work on the machine skews everything: the report shows this
    record $run machine - loadavg "$(cut -d' ' -f1 /proc/loadavg)"
    # Throughput and latency under load: wrk, peers interleaved, the order
    # of the systems rotated by one each run.
    for fn in "${FNS[@]}"; do
        for sys in $(rotate $((run - 1)) "${SYSTEMS[@]}"); do
            active "$sys" "$fn" || continue
            wrk_run $run "$sys" "$fn"
        done
    done

    # Sequential latency of hello and cpu on a new connection each (the
    # CPU kernel's time = cpu minus hello, compared with native).
    for sys in $(rotate $((run - 1)) "${SYSTEMS[@]}"); do
        for fn in hello cpu; do
            active "$sys" "$fn" || continue
            "$PROBE" get "$(port_of "$sys")" "$(path_of "$sys" "$fn")" $LAT_N >"$OUT/raw/lat.$run.$sys.$fn"
            record $run "$sys" "$fn" lat_us "$(median <"$OUT/raw/lat.$run.$sys.$fn")"
        done
    done

    # Cold starts: the first request to something that has no instance.
    first=$(((run - 1) * COLD_N + 1))
    "$PROBE" get $P_WF "/fn/cold-%d/" $COLD_N $first >"$OUT/raw/cold.$run.wasmfn"
    cold_record $run wasmfn "$OUT/raw/cold.$run.wasmfn"
    "$PROBE" get $P_WF "/fn/hello/" $COLD_N >"$OUT/raw/cold.$run.wasmfn-warm"
    cold_record $run wasmfn-warm "$OUT/raw/cold.$run.wasmfn-warm"
    "$PROBE" get $P_NGINX "/" $COLD_N >"$OUT/raw/cold.$run.nginx"
    cold_record $run nginx "$OUT/raw/cold.$run.nginx"
    "$PROBE" get $P_CGI "/hello" $((COLD_N / 2)) >"$OUT/raw/cold.$run.cgi-native"
    cold_record $run cgi-native "$OUT/raw/cold.$run.cgi-native"
    "$PROBE" get $P_NODE "/hello" $((COLD_N / 5)) >"$OUT/raw/cold.$run.node-wasi"
    cold_record $run node-wasi "$OUT/raw/cold.$run.node-wasi"
    if [[ $WORKERD_STATUS == ok ]]; then
        if "$PROBE" start $P_WDC /fresh/hello $WD_COLD_N -- "$WORKERD" serve "$OUT/workerd/cold/config.capnp" >"$OUT/raw/cold.$run.workerd"; then
            cold_record $run workerd-process "$OUT/raw/cold.$run.workerd"
        else
            say "run $run: workerd's cold start failed; left out of this run"
        fi
    fi

    memory_run $run
done

for ((run = 1; run <= RUNS; run++)); do
    echo "$PROBE get $P_WF /fn/cold-%d/ $COLD_N $(((run - 1) * COLD_N + 1))   # run $run" >>"$OUT/commands.txt"
done
cat >>"$OUT/commands.txt" <<EOF
$PROBE get $P_WF /fn/hello/ $COLD_N
$PROBE get $P_CGI /hello $((COLD_N / 2))
$PROBE get $P_NODE /hello $((COLD_N / 5))
$PROBE start $P_WDC /fresh/hello $WD_COLD_N -- $WORKERD serve $OUT/workerd/cold/config.capnp
$PROBE get PORT PATH $LAT_N   # hello and cpu on every system
$PROBE rss -- node --no-warnings $HERE/node_wasi.mjs $OUT/wasm/hello.wasm
$PROBE rss -- $OUT/native/hello
EOF

# Check that wasmfn's cold-start requests were cold: its own counter.
cold_counted=$(curl -fs "http://127.0.0.1:$P_WFA/metrics" |
    awk '/^wasmfn_cold_starts_total\{function="cold-/ {n += $2} END {print n + 0}')
echo "$cold_counted" >"$OUT/cold-counted"
say "wasmfn counted $cold_counted cold starts for the $COLD_TOTAL first requests to cold-N"

stop_all

# --- report -------------------------------------------------------------------
{
    echo "model=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)"
    echo "nproc=$(nproc)"
    echo "memory=$(awk '/^MemTotal/ {printf "%.0f GiB", $2 / 1048576}' /proc/meminfo)"
    echo "kernel=$(uname -r)"
    commit=$(git rev-parse --short --verify -q HEAD 2>/dev/null || echo unknown)
    if [[ $commit != unknown ]] && ! git diff-index --quiet HEAD -- src bench examples 2>/dev/null; then
        commit="$commit (with uncommitted changes)"
    fi
    echo "commit=$commit"
    echo "date=$(date -u +%Y-%m-%d)"
    echo "node=$("$NODE" --version)"
    echo "workerd=$(if [[ $WORKERD_STATUS == ok ]]; then "$WORKERD" --version; fi)"
    echo "workerd_status=$WORKERD_STATUS"
    echo "nginx=$("$NGINX" -v 2>&1 | sed 's/.*: //')"
    echo "wrk=$(wrk -v 2>&1 | head -1 | awk '{print $2}')"
    echo "gcc=$($CC -dumpfullversion)"
    echo "clang=$(clang -dumpversion)"
    echo "runs=$RUNS"
    echo "duration=$DUR"
    echo "threads=$THREADS"
    echo "connections=$CONNS"
    echo "cold_n=$COLD_N"
    echo "wd_cold_n=$WD_COLD_N"
    echo "lat_n=$LAT_N"
    echo "mem_n=$MEM_N"
    echo "cold_total=$COLD_TOTAL"
    echo "cold_counted=$cold_counted"
    echo "quick=$QUICK"
} >"$OUT/meta.txt"

BENCH_WRITE=$BENCH_WRITE "$NODE" $HERE/report.mjs "$OUT"
