#!/usr/bin/env bash
# run.sh — what `make run` does after the build: starts `wasmfn serve` with a
# data dir of its own, applies every examples/*.yaml with the CLI, prints
# curl lines to try, and keeps the daemon in the foreground until Ctrl-C
# (which drains it: in-flight requests finish, then it exits).
#
#   WASMFN=build/wasmfn WASMFN_DATA=build/run-data \
#   LISTEN=127.0.0.1:8080 ADMIN=127.0.0.1:8081 bash scripts/run.sh
set -euo pipefail

WASMFN=${WASMFN:-build/wasmfn}
DATA=${WASMFN_DATA:-build/run-data}
LISTEN=${LISTEN:-127.0.0.1:8080}
ADMIN=${ADMIN:-127.0.0.1:8081}
mkdir -p "$DATA"

"$WASMFN" serve --listen "$LISTEN" --admin "$ADMIN" --data "$DATA" &
pid=$!
stop() {
    trap - INT TERM
    echo
    echo "run: stopping wasmfn serve (draining in-flight requests)"
    kill -TERM "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    exit 0
}
trap stop INT TERM

for ((i = 0; ; i++)); do
    if ! kill -0 "$pid" 2>/dev/null; then
        wait "$pid" || true
        echo "run: wasmfn serve did not start (is $LISTEN or $ADMIN in use? set LISTEN=/ADMIN=)" >&2
        exit 1
    fi
    if curl -fs -o /dev/null "http://$ADMIN/readyz"; then break; fi
    if ((i > 100)); then
        echo "run: wasmfn serve is not ready after 10 s" >&2
        kill -TERM "$pid"
        exit 1
    fi
    sleep 0.1
done

export WASMFN_API="http://$ADMIN"
WASMFN_TOKEN=$(cat "$DATA/admin.token")
export WASMFN_TOKEN
for y in examples/*.yaml; do
    "$WASMFN" apply -f "$y" || echo "run: $y did not apply" >&2
done

cat <<EOF

wasmfn is serving on http://$LISTEN (data plane) and http://$ADMIN (admin API),
data in $DATA. Try:

  curl http://$LISTEN/fn/hello/
  curl -H 'Host: hello.default.localhost' http://$LISTEN/
  curl -d 'a body' -H 'X-Demo: 1' 'http://$LISTEN/fn/echo/some/path?x=1'
  curl -d '{"a":1,"b":2}' http://$LISTEN/fn/transform/
  curl -i http://$LISTEN/fn/fail/
  curl http://$ADMIN/metrics | grep ^wasmfn_

The CLI (in another shell):

  export WASMFN_API=http://$ADMIN WASMFN_TOKEN=\$(cat $DATA/admin.token)
  $WASMFN list
  $WASMFN get hello
  $WASMFN invoke echo -d hi --path /x
  $WASMFN logs fail -f

The admin API with curl:

  curl -H "Authorization: Bearer \$(cat $DATA/admin.token)" http://$ADMIN/v1/functions

Ctrl-C stops the daemon.
EOF

wait "$pid"
