#!/usr/bin/env bash
# bench/eventing/sources.sh — delivery throughput of NatsJetStreamSource,
# MqttSource and RabbitmqSource: N messages (default 20000) waiting in the
# broker, then the source applied to a running `wasmfn serve` with a `uri:`
# sink (tests/eventing/recorder.js answering 200 at once); messages/s is N
# over the time from the apply until the sink has seen all N (so it
# includes the consumer's ramp-up from zero parallelism). MQTT messages
# are published after the apply (the session must exist first), so its
# clock starts at the first publish.
#
#   bash bench/eventing/sources.sh [N] [MAX_SCALE]     (after `make all`)
#
# Brokers from Debian on loopback (tests/eventing/brokers.sh), the daemon
# with its default delivery settings; MAX_SCALE (default 10) is the
# sources' autoscaling.knative.dev/max-scale.
set -euo pipefail
BENCH_NAME=sources
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
. "$ROOT/bench/lib.sh"
N=${1:-20000}
MAXS=${2:-10}
WASMFN=${WASMFN:-$ROOT/build/wasmfn}
SRCPUB=${SRCPUB:-$ROOT/build/eventing/srcpub}
[ -x "$SRCPUB" ] || make -C "$ROOT" -s "build/eventing/srcpub" >/dev/null
tmp=$(mktemp -d)
. "$ROOT/tests/eventing/brokers.sh"
trap 'brokers_stop; stop_all; rm -rf "$tmp"' EXIT
brokers_start
node "$ROOT/tests/eventing/recorder.js" "$tmp/sinkport" 0 0 >"$tmp/sink.log" 2>&1 &
PIDS+=($!)
until_ok 10 test -s "$tmp/sinkport" || die "the sink does not start"
S=http://127.0.0.1:$(cat "$tmp/sinkport")
"$WASMFN" serve --data "$tmp/data" --listen 127.0.0.1:0 --admin 127.0.0.1:0 >"$tmp/log" 2>&1 &
PIDS+=($!)
until_ok 10 grep -q 'admin API on' "$tmp/log" || die "the daemon does not start"
export WASMFN_API=$(grep -o 'admin API on .*' "$tmp/log" | awk '{print $4}')
export WASMFN_TOKEN=$(cat "$tmp/data/admin.token")
seen() { curl -s "$S/stats" | node -e "let d='';process.stdin.on('data',c=>d+=c).on('end',()=>{const s=JSON.parse(d)['$1'];console.log(s?s.okUnique:0)})"; }
all_seen() { [ "$(seen "$1")" -ge "$N" ]; }
now() { date +%s.%N; }
report() { # report NAME START
    until_ok 600 all_seen "$1" || die "$1: only $(seen "$1") of $N delivered"
    local t
    t=$(echo "$(now) - $2" | bc)
    printf '%-22s %6d messages in %6.2f s = %7.0f messages/s\n' "$3" "$N" "$t" "$(echo "$N / $t" | bc -l)"
}
meta() { echo "metadata: { name: $1, annotations: { autoscaling.knative.dev/max-scale: \"$MAXS\" } }"; }

until_ok 20 "$SRCPUB" nats "nats://127.0.0.1:$nport" ORDERS orders.new "$N" 1 2>/dev/null || die "nats-server"
"$SRCPUB" nats "nats://127.0.0.1:$nport" ORDERS orders.new 0 "$N" >/dev/null || die "publish to nats"
cat >"$tmp/nats.yaml" <<EOY
apiVersion: sources.wasmfn.dev/v1alpha1
kind: NatsJetStreamSource
$(meta nats)
spec: { servers: "nats://127.0.0.1:$nport", stream: ORDERS, subject: orders.new, sink: { uri: "$S/nats" } }
EOY
t0=$(now)
"$WASMFN" apply -f "$tmp/nats.yaml" >/dev/null
report nats "$t0" NatsJetStreamSource

cat >"$tmp/mqtt.yaml" <<EOY
apiVersion: sources.wasmfn.dev/v1alpha1
kind: MqttSource
$(meta mqtt)
spec: { servers: "mqtt://127.0.0.1:$mport", topic: bench, sink: { uri: "$S/mqtt" } }
EOY
"$WASMFN" apply -f "$tmp/mqtt.yaml" >/dev/null
until_ok 10 sh -c "curl -s $WASMFN_API/metrics | grep -q 'wasmfn_source_backlog{source=\"mqtt\"}'" || die "mqtt source"
t0=$(now)
"$SRCPUB" mqtt 127.0.0.1 "$mport" bench 0 "$N" >/dev/null || die "publish to mosquitto"
report mqtt "$t0" MqttSource

until_ok 90 "$SRCPUB" amqp "$AMQP" probe 0 1 2>/dev/null || die "rabbitmq-server"
"$SRCPUB" amqp "$AMQP" orders 0 "$N" >/dev/null || die "publish to rabbitmq"
cat >"$tmp/rabbit.yaml" <<EOY
apiVersion: sources.knative.dev/v1alpha1
kind: RabbitmqSource
$(meta rabbit)
spec: { broker: "$AMQP", rabbitmqResourcesConfig: { queueName: orders, predeclared: true }, sink: { uri: "$S/rabbit" } }
EOY
t0=$(now)
"$WASMFN" apply -f "$tmp/rabbit.yaml" >/dev/null
report rabbit "$t0" RabbitmqSource
