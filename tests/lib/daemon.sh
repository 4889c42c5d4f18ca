# tests/lib/daemon.sh — sourced by the daemon test suites that keep their
# own results and cleanup (tests/serving/lib.sh has its own start_daemon
# for the suites built on it): starts `wasmfn serve` on port 0 and reads
# where it listens from its log.
#
#   daemon_start LOG DATA [serve flags...]
#       runs "$WASMFN" serve --data DATA --listen 127.0.0.1:0 --admin
#       127.0.0.1:0 FLAGS in the background, appending to LOG, and waits up
#       to 10 s for its "data plane on URL, admin API on URL" line. Sets
#       daemon_pid and daemon_url (the data plane's URL) and exports
#       WASMFN_API and WASMFN_TOKEN (DATA/admin.token) for the CLI. Returns
#       1 when the daemon exited or the line did not come in time.

daemon_start() {
    local log=$1 data=$2 off line i
    shift 2
    # Only what this daemon writes is read: a restart may append to the
    # log of the one before, whose line names ports nobody listens on now.
    # (`command`: a suite may name its own functions like tools; the
    # sources suite has a stat.)
    off=0
    [ -e "$log" ] && off=$(command wc -c <"$log")
    "$WASMFN" serve --data "$data" --listen 127.0.0.1:0 --admin 127.0.0.1:0 "$@" >>"$log" 2>&1 &
    daemon_pid=$!
    daemon_url=
    for ((i = 0; i < 200; i++)); do
        # read fails on a last line without its newline: a line still being
        # written would give a cut port.
        while IFS= read -r line; do
            case $line in
            *"data plane on http://"*", admin API on http://"*)
                daemon_url=${line#*data plane on }
                daemon_url=${daemon_url%%,*}
                export WASMFN_API=${line##* }
                export WASMFN_TOKEN
                WASMFN_TOKEN=$(command cat "$data/admin.token")
                return 0
                ;;
            esac
        done < <(command tail -c +$((off + 1)) "$log" 2>/dev/null)
        kill -0 "$daemon_pid" 2>/dev/null || return 1
        command sleep 0.05
    done
    return 1
}
