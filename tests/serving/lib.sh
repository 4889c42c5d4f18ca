# lib.sh — what the daemon test scripts share (sourced, never run on its
# own): results (ok / not_ok / check), cleanup of whatever a script started
# on every exit path, and starting `wasmfn serve` on free loopback ports.
#
# Before sourcing, set SUITE (the name in messages), WASMFN and TMP (a
# fresh temporary directory, removed at exit). Scripts add background
# pids to BG_PIDS; SERVE_FLAGS holds flags every start_daemon passes.

# shellcheck source=tests/lib/daemon.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib/daemon.sh"

DATA="$TMP/data"
DAEMON_PID=
BG_PIDS=()
SERVE_FLAGS=()
pass=0
failed=0
failures=()

cleanup() {
    local p
    for p in "${BG_PIDS[@]}"; do kill "$p" 2>/dev/null; done
    if [[ -n $DAEMON_PID ]]; then
        kill -KILL "$DAEMON_PID" 2>/dev/null
        wait "$DAEMON_PID" 2>/dev/null
    fi
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

ok() {
    echo "ok   $1"
    pass=$((pass + 1))
}
not_ok() {
    echo "FAIL $1: $2"
    failed=$((failed + 1))
    failures+=("$1")
}
# check NAME DETAIL STATUS: ok when STATUS is 0, else FAIL with DETAIL.
check() {
    if [[ $3 == 0 ]]; then ok "$1"; else not_ok "$1" "$2"; fi
}

# start_daemon [serve flags...]: serve on free ports (port 0: the daemon
# picks, and says which in its first line) with $DATA, SERVE_FLAGS and the
# flags given; sets LOG, DATA_URL, ADMIN_URL, WASMFN_API, WASMFN_TOKEN.
# Returns non-zero if it is not ready within 20 s.
starts=0
start_daemon() {
    starts=$((starts + 1))
    LOG="$TMP/serve.$starts.log"
    local i
    # Its URLs (tests/lib/daemon.sh), then its /readyz.
    if daemon_start "$LOG" "$DATA" "${SERVE_FLAGS[@]}" "$@"; then
        DAEMON_PID=$daemon_pid DATA_URL=$daemon_url ADMIN_URL=$WASMFN_API
        for ((i = 0; i < 100; i++)); do
            [[ $(curl -s -o /dev/null -w '%{http_code}' "$ADMIN_URL/readyz") == 200 ]] && return 0
            kill -0 "$DAEMON_PID" 2>/dev/null || break
            sleep 0.1
        done
    fi
    DAEMON_PID=$daemon_pid
    if ! kill -0 "$DAEMON_PID" 2>/dev/null; then
        wait "$DAEMON_PID"
        echo "$SUITE: wasmfn serve exited with status $? at start; its log:" >&2
        DAEMON_PID=
    else
        echo "$SUITE: wasmfn serve not ready after 20 s; its log:" >&2
    fi
    tail -20 "$LOG" >&2
    return 1
}

# metric NAME LABEL...: the sum of the samples of NAME on $ADMIN_URL/metrics
# whose labels contain every LABEL (e.g. 'revision="x-00001"'); 0 when there
# are none. Integers print as integers.
metric() {
    local name=$1
    shift
    curl -s -m 10 "$ADMIN_URL/metrics" | awk -v name="$name" -v want="$*" '
        BEGIN { n = split(want, w, " ") }
        index($0, name "{") == 1 || $1 == name {
            for (i = 1; i <= n; i++) if (index($0, w[i]) == 0) next
            sum += $NF
        }
        END { printf "%.12g\n", sum + 0 }'
}
