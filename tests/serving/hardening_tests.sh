#!/usr/bin/env bash
# hardening_tests.sh — what a hostile client does to a running daemon (issue
# 14): a header flood, an unauthenticated upload to the admin API, slowloris
# connections, more connections than the process has descriptors for, and
# malformed requests. Each check runs the attack with tests/serving/
# hardening.py and asks that /healthz and a hello request are still answered
# within 100 ms. Starts `wasmfn serve` on free loopback ports with a
# temporary data dir; prints one line per test and "hardening: N passed, M
# failed"; exits non-zero on failure.
#
#   WASMFN=build/wasmfn EXAMPLES_DIR=build/examples \
#       bash tests/serving/hardening_tests.sh      (what `make test-hardening` runs)
set -u

WASMFN=$(realpath "${WASMFN:-build/wasmfn}")
EXAMPLES_DIR=$(realpath "${EXAMPLES_DIR:-build/examples}")
HERE=$(dirname "$(realpath "$0")")
TMP=$(mktemp -d -t wasmfn-hardening.XXXXXX)
SUITE=hardening
# shellcheck source=tests/serving/lib.sh
source "$HERE/lib.sh"

for tool in python3 curl; do
    if ! command -v "$tool" >/dev/null; then
        echo "hardening: $tool is missing" >&2
        exit 1
    fi
done

# run_check NAME ARGS...: hardening.py's lines, counted.
run_check() {
    local line
    while IFS= read -r line; do
        case $line in
        "ok   "*) ok "${line#ok   }" ;;
        "FAIL "*) rest=${line#FAIL }; not_ok "${rest%%: *}" "${rest#*: }" ;;
        *) echo "$line" ;;
        esac
    done < <(python3 "$HERE/hardening.py" "$@" 2>&1)
}

PER_IP=50
if ! start_daemon --workers 1 --max-connections-per-ip "$PER_IP"; then exit 1; fi
"$WASMFN" deploy hello "$EXAMPLES_DIR/hello.wasm" >/dev/null || exit 1

run_check header-flood "$DATA_URL" "$ADMIN_URL" "$DAEMON_PID"
run_check auth-before-body "$DATA_URL" "$ADMIN_URL" "$DAEMON_PID"
run_check slowloris "$DATA_URL" "$ADMIN_URL" "$DAEMON_PID" "$PER_IP"
run_check bad-escape "$DATA_URL" "$ADMIN_URL" "$DAEMON_PID"

# A process limited to 256 descriptors: 300 data-plane connections from
# several addresses must leave the admin port reachable.
kill -TERM "$DAEMON_PID" 2>/dev/null
wait "$DAEMON_PID" 2>/dev/null
DAEMON_PID=
printf '#!/usr/bin/env bash\nulimit -n 256\nexec "%s" "$@"\n' "$WASMFN" >"$TMP/wasmfn-256"
chmod +x "$TMP/wasmfn-256"
WASMFN="$TMP/wasmfn-256"
if ! start_daemon --workers 1 --tier interp; then exit 1; fi
run_check fd-exhaustion "$DATA_URL" "$ADMIN_URL" "$DAEMON_PID" 300

echo "hardening: $pass passed, $failed failed"
[[ $failed == 0 ]]
