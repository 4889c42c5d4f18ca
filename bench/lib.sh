# lib.sh — shell helpers shared by the benchmark scripts (sourced, never run
# on its own): messages, the servers a script starts in the background and
# stops on exit however it exits, waiting for HTTP, medians.
#
# Before sourcing, set BENCH_NAME (the prefix of messages). Add every
# background server's pid to PIDS.

say() { echo "${BENCH_NAME:-bench}: $*" >&2; }
die() {
    echo "${BENCH_NAME:-bench}: $*" >&2
    exit 1
}

PIDS=()
stop_all() {
    local pid
    for pid in "${PIDS[@]}"; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    for pid in "${PIDS[@]}"; do
        # bounded: a server that ignores SIGTERM for 5 s gets SIGKILL
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    PIDS=()
}
trap stop_all EXIT
trap 'exit 130' INT TERM

# wait_http URL: until it answers 200, at most 20 s.
wait_http() {
    local i
    for ((i = 0; i < 200; i++)); do
        if curl -fs -o /dev/null --max-time 2 "$1"; then return 0; fi
        sleep 0.1
    done
    return 1
}

# median: of the numbers on stdin, one per line
median() { sort -n | awk '{a[NR] = $1} END {if (NR) print a[int((NR + 1) / 2)]; else print ""}'; }
