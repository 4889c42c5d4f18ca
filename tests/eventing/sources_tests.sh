#!/usr/bin/env bash
# tests/eventing/sources_tests.sh — NatsJetStreamSource, MqttSource and
# RabbitmqSource through the real daemon (`wasmfn serve`, configured with
# `wasmfn apply`), against the real servers from Debian on loopback, each
# with its own data dir: nats-server -js, mosquitto (persistence on),
# rabbitmq-server (its own node name, ports, epmd port and mnesia dir).
#
# For each source: 2,000 messages {"n":N} (N % 100 == 7 are poison: the
# sink answers 500), the daemon killed with SIGKILL while delivering, then
# restarted on the same data dir. Checks: every good message reached the
# sink (at least once), duplicates stay within the in-flight window, each
# poison message is in the dead-letter sink after 1 + retry attempts, an
# oversized message is dead-lettered with the reason, the metrics count.
# NATS and MQTT run first, while rabbitmq-server boots (it takes seconds).
#
# Env: WASMFN (binary), SRCPUB (built tests/eventing/srcpub.c).
# Ends with "eventing-sources: N passed, M failed".
set -u
WASMFN=${WASMFN:-build/wasmfn}
SRCPUB=${SRCPUB:-build/eventing/srcpub}
HERE=$(cd "$(dirname "$0")" && pwd)
passed=0
failed=0
tmp=$(mktemp -d)
pid= recpid=
. "$HERE/brokers.sh"
# shellcheck source=tests/lib/daemon.sh
. "$HERE/../lib/daemon.sh"
cleanup() {
    exec 2>/dev/null # no "Killed" notices
    for p in "$pid" "$recpid"; do [ -n "$p" ] && kill -9 "$p" 2>/dev/null; done
    brokers_stop
    wait 2>/dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT
ok() { echo "ok   $1"; passed=$((passed + 1)); }
bad() { echo "FAIL $1"; [ -n "${2:-}" ] && echo "     $2"; failed=$((failed + 1)); }
finish() {
    echo "eventing-sources: $passed passed, $failed failed"
    [ "$failed" = 0 ]
    exit
}

# ---- servers, all started at once --------------------------------------
# free_port never hands out a port twice, even when the random draw repeats
# (RabbitMQ takes seconds to bind its distribution port, and a server
# started meanwhile on the same port made it fail once).
RANDOM=7
free_port >"$tmp/p1" # in this shell, not $(...): a subshell reseeds RANDOM
RANDOM=7
free_port >"$tmp/p2"
p1=$(cat "$tmp/p1") p2=$(cat "$tmp/p2")
[ "$p1" != "$p2" ] && ok "free_port gives a port once (the same draw twice: $p1, then $p2)" ||
    bad "free_port gave $p1 twice"
brokers_start
# The sink: 500 for n % 100 == 7, 5 ms per delivery (so the kill below
# lands mid-stream).
node "$HERE/recorder.js" "$tmp/sinkport" 100 5 >"$tmp/sink.log" 2>&1 &
recpid=$!
until_ok 10 test -s "$tmp/sinkport" || { bad "the sink starts" "$(cat "$tmp/sink.log")"; finish; }
S=http://127.0.0.1:$(cat "$tmp/sinkport")
stat() { # stat SINK FIELD
    curl -s "$S/stats" | node -e "let d='';process.stdin.on('data',c=>d+=c).on('end',()=>{const s=JSON.parse(d)['$1'];console.log(s?(typeof s['$2']=='object'?JSON.stringify(s['$2']):s['$2']):0)})"
}

# start_daemon: (again) on $tmp/data, its output appended to $tmp/log.
start_daemon() {
    daemon_start "$tmp/log" "$tmp/data"
    local rc=$?
    pid=$daemon_pid
    [ "$rc" = 0 ] || { bad "daemon starts" "$(tail -5 "$tmp/log")"; finish; }
}
start_daemon
metric() { curl -s "$WASMFN_API/metrics" | grep -c "$1"; }

# ---- a bad spec is refused with the field named -------------------------
printf 'apiVersion: sources.wasmfn.dev/v1alpha1\nkind: NatsJetStreamSource\nmetadata: { name: nostream }\nspec:\n  servers: nats://127.0.0.1:%s\n  sink: { uri: "%s/x" }\n' \
    "$nport" "$S" >"$tmp/bad.yaml"
if "$WASMFN" apply -f "$tmp/bad.yaml" >"$tmp/out" 2>&1; then
    bad "a NatsJetStreamSource without spec.stream is refused" "$(cat "$tmp/out")"
else
    grep -q 'spec.stream' "$tmp/out" && ok "a source without spec.stream is refused: $(head -1 "$tmp/out")" ||
        bad "the error names spec.stream" "$(cat "$tmp/out")"
fi

# ---- NATS JetStream and MQTT: publish, deliver, kill -9 midway ------------
delivery() { # delivery NAME: retries, and dead letters to the sink's dlq-NAME
    echo "delivery: { retry: 2, backoffPolicy: linear, backoffDelay: PT0.05S, timeout: PT2S, deadLetterSink: { uri: \"$S/dlq-$1\" } }"
}
cat >"$tmp/nm.yaml" <<EOF
apiVersion: sources.wasmfn.dev/v1alpha1
kind: NatsJetStreamSource
metadata: { name: nats, annotations: { autoscaling.knative.dev/max-scale: "4" } }
spec:
  servers: nats://127.0.0.1:$nport
  stream: ORDERS
  subject: orders.new
  ackWait: PT3S
  sink: { uri: "$S/nats" }
  $(delivery nats)
---
apiVersion: sources.wasmfn.dev/v1alpha1
kind: MqttSource
metadata: { name: mqtt, annotations: { autoscaling.knative.dev/max-scale: "4" } }
spec:
  servers: mqtt://127.0.0.1:$mport
  topic: sensors/temp
  sink: { uri: "$S/mqtt" }
  $(delivery mqtt)
---
apiVersion: sources.wasmfn.dev/v1alpha1
kind: MqttSource
metadata: { name: mqttlock }
spec:
  servers: mqtt://127.0.0.1:$mport
  topic: sensors/lock
  sink: { uri: "$S/mqttlock" }
EOF
until_ok 20 "$SRCPUB" nats "nats://127.0.0.1:$nport" ORDERS orders.new 0 1 2>/dev/null ||
    { bad "nats-server starts" "$(tail -5 "$tmp/nats.log")"; finish; }
# Message 0 was the probe; 1..1999, then 2000 oversized (2 MiB > the 1 MiB limit).
SRCPUB_BIG=2000 "$SRCPUB" nats "nats://127.0.0.1:$nport" ORDERS orders.new 1 2000 ||
    bad "publish 2001 messages to JetStream"
"$WASMFN" apply -f "$tmp/nm.yaml" >"$tmp/out" 2>&1 || { bad "apply the NATS and MQTT sources" "$(cat "$tmp/out")"; finish; }
# The MQTT session exists once the source is connected; then publish.
until_ok 10 sh -c "curl -s $WASMFN_API/metrics | grep -q 'wasmfn_source_backlog{source=\"mqtt\"}'" ||
    { bad "the MQTT source connects" "$(tail -3 "$tmp/log"; tail -3 "$tmp/mosq.log")"; finish; }
# Paced (about 5 s for all), so the kill below lands while the broker is
# still handing the daemon new messages: a PUBACK sent before the durable
# commit loses the messages of the batch being committed at the kill, and
# the publisher, which got its PUBACKs from the broker, never resends them.
SRCPUB_RATE=400 SRCPUB_BIG=2000 "$SRCPUB" mqtt 127.0.0.1 "$mport" sensors/temp 0 2001 >"$tmp/mqttpub.log" 2>&1 &
mqttpub=$!
midway() { [ "$(stat "$1" okUnique)" -ge 300 ]; }
until_ok 20 midway nats && until_ok 20 midway mqtt
kill -9 "$pid"
wait "$pid" 2>/dev/null
kill -0 "$mqttpub" 2>/dev/null && ok "MqttSource: the daemon was killed while the publisher was still publishing" ||
    bad "MqttSource: the kill lands while publishing" "the publisher had finished"
at_kill_nats=$(stat nats okUnique)
at_kill_mqtt=$(stat mqtt okUnique)
echo "     (killed with $at_kill_nats NATS and $at_kill_mqtt MQTT messages delivered of 1980 good ones each)"
start_daemon
# The queue's write lock held by another process makes the source's commit
# fail (after SQLite's 5 s busy timeout), as a full or failing disk would:
# the source drops the connection without acknowledging, and the broker
# hands the messages over again once a commit succeeds. A PUBACK sent before
# the commit would lose them (the kill -9 above catches that only when it
# lands inside a commit). Checked below, after the NATS and MQTT checks.
: >"$tmp/lock.out"
"$SRCPUB" lock "$tmp/data/sources/mqtt-mqttlock.db" 6000 >"$tmp/lock.out" 2>&1 &
lockpid=$!
until_ok 5 grep -q locked "$tmp/lock.out" || bad "lock the MQTT queue" "$(cat "$tmp/lock.out")"
"$SRCPUB" mqtt 127.0.0.1 "$mport" sensors/lock 10 50 >"$tmp/lockpub.log" 2>&1 ||
    bad "publish 50 QoS 1 messages" "$(cat "$tmp/lockpub.log")"
wait "$mqttpub" || bad "publish 2001 QoS 1 messages to mosquitto" "$(cat "$tmp/mqttpub.log")"

# Good: n in 0..1999 with n % 100 != 7 -> 1980; poison 20, plus the big one.
settled() { [ "$(stat "$1" okUnique)" -ge 1980 ] && [ "$(stat "dlq-$1" unique)" -ge 21 ]; }
check_source() { # check_source NAME LABEL KILLED_AT INFLIGHT
    local name=$1 label=$2
    until_ok 30 settled "$name"
    local good dups dlq nfailed # not "failed": that is the suite's count
    good=$(stat "$name" okUnique)
    dups=$(($(stat "$name" ok) - good))
    dlq=$(stat "dlq-$name" unique)
    nfailed=$(stat "$name" failed)
    [ "$3" -lt 1980 ] && ok "$label: the daemon was killed midway ($3 of 1980 delivered)" ||
        bad "$label: the kill lands midway" "all $3 were delivered before it"
    [ "$good" = 1980 ] && ok "$label: after kill -9 and a restart all 1980 good messages were delivered" ||
        bad "$label: 1980 good messages delivered" "got $good"
    [ "$dups" -le "$4" ] && ok "$label: $dups duplicate deliveries (in flight at the kill: at most $4)" ||
        bad "$label: duplicates within the in-flight window ($4)" "got $dups: n = $(stat "$name" dupN)"
    [ "$dlq" = 21 ] && ok "$label: the 20 poison messages and the oversized one are in the dead-letter sink" ||
        bad "$label: 21 dead letters" "got $dlq: $(stat "dlq-$name" reasons)"
    [ "$nfailed" -ge 40 ] && ok "$label: poison messages were retried before dead-lettering ($nfailed failed attempts)" ||
        bad "$label: retries before dead letters" "$nfailed failed attempts"
    stat "dlq-$name" reasons | grep -q 'larger than the limit' &&
        ok "$label: the oversized message is dead-lettered with the reason" ||
        bad "$label: the oversized message's reason" "$(stat "dlq-$name" reasons)"
}
check_parallel() { # check_parallel NAME LABEL CAP: the backlog raised parallelism to at most CAP
    local most
    most=$(stat "$1" inflightMax)
    [ "$most" -gt 1 ] && [ "$most" -le "$3" ] &&
        ok "$2: with a backlog and a slow sink, $most deliveries ran at once (cap $3)" ||
        bad "$2: parallelism by backlog, more than 1 and at most $3 at once" "the sink saw at most $most"
}
# In flight: max-scale deliveries under way plus acks not yet at the broker.
# MQTT also redelivers what the broker had in flight to the session
# (mosquitto's max_inflight_messages, 20) when the kill lands after a batch
# reached the queue file but before its PUBACKs left (the fsync).
check_source nats "NatsJetStreamSource" "$at_kill_nats" 8
check_source mqtt "MqttSource" "$at_kill_mqtt" 28
check_parallel nats "NatsJetStreamSource" 4
check_parallel mqtt "MqttSource" 4
ce=$(stat nats ce)
echo "$ce" | grep -q '"type":"dev.wasmfn.sources.natsjetstream"' && echo "$ce" | grep -q '"subject":"orders.new"' &&
    echo "$ce" | grep -q '"tenant":"acme"' && echo "$ce" | grep -q "\"source\":\"nats://127.0.0.1:$nport/ORDERS\"" &&
    ok "NATS messages arrive as CloudEvents: type, source, subject, headers as extensions" ||
    bad "NATS CloudEvent attributes" "$ce"
ce=$(stat mqtt ce)
echo "$ce" | grep -q '"type":"dev.wasmfn.sources.mqtt"' && echo "$ce" | grep -q '"subject":"sensors/temp"' &&
    ok "MQTT messages arrive as CloudEvents with the topic as subject" || bad "MQTT CloudEvent attributes" "$ce"
[ "$(metric 'wasmfn_events_total{source="nats",trigger="",outcome="delivered"}')" = 1 ] &&
    [ "$(metric 'wasmfn_events_total{source="mqtt",trigger="",outcome="dead_lettered"}')" = 1 ] &&
    ok "wasmfn_events_total counts the sources' deliveries and dead letters" ||
    bad "source metrics" "$(curl -s "$WASMFN_API/metrics" | grep 'source=' | head)"

# ---- MQTT: no PUBACK before the durable commit (started above) ----------
wait "$lockpid"
fifty() { [ "$(stat mqttlock okUnique)" -ge 50 ]; }
if until_ok 15 fifty && grep -q 'sensors/lock.*database is locked' "$tmp/log"; then
    ok "MqttSource: a failed commit sends no PUBACK: all 50 messages arrived after it"
else
    bad "MqttSource: messages survive a failed commit" \
        "$(stat mqttlock okUnique) of 50 delivered; $(grep 'sensors/lock' "$tmp/log" | tail -2)"
fi

# ---- deleting an MqttSource ends its session and removes its queue ------
api_delete() { curl -s -o /dev/null -w '%{http_code}' -XDELETE -H "Authorization: Bearer $WASMFN_TOKEN" "$WASMFN_API/v1/eventing/$1"; }
[ "$(api_delete MqttSource/mqttlock)" = 200 ] || bad "delete the MqttSource mqttlock"
qgone() { [ ! -e "$tmp/data/sources/mqtt-mqttlock.db" ] && [ ! -e "$tmp/data/sources/mqtt-mqttlock.db-wal" ]; }
until_ok 10 qgone && ok "a deleted MqttSource's queue file is removed" ||
    bad "the deleted MqttSource's queue file is removed" "$(ls "$tmp/data/sources")"
# Published while no session exists: nobody subscribes, the broker keeps
# nothing. Had the session stayed, the source applied again under the same
# name (the same client id) would get it.
"$SRCPUB" mqtt 127.0.0.1 "$mport" sensors/lock 200 1 >/dev/null 2>&1 || bad "publish to sensors/lock"
sed -n '/name: mqttlock/,$p' "$tmp/nm.yaml" | sed '1i apiVersion: sources.wasmfn.dev/v1alpha1\nkind: MqttSource' >"$tmp/mqttlock.yaml"
"$WASMFN" apply -f "$tmp/mqttlock.yaml" >"$tmp/out" 2>&1 || bad "apply mqttlock again" "$(cat "$tmp/out")"
until_ok 10 sh -c "curl -s $WASMFN_API/metrics | grep -q 'wasmfn_source_backlog{source=\"mqttlock\"}'"
"$SRCPUB" mqtt 127.0.0.1 "$mport" sensors/lock 201 1 >/dev/null 2>&1 || bad "publish to sensors/lock"
got201() { curl -s "$S/n?name=mqttlock" | grep -q '201'; }
if until_ok 10 got201 && sleep 0.3 && ! curl -s "$S/n?name=mqttlock" | grep -q '200'; then
    ok "the deleted MqttSource's broker session ended: applied again, it gets only what came after"
else
    bad "the deleted MqttSource's session ends" "delivered: $(curl -s "$S/n?name=mqttlock" | tr ',' '\n' | tail -3 | tr '\n' ' ')"
fi

# ---- deleting a NatsJetStreamSource deletes its durable consumer ----------
# ... unless spec.consumer named it: a named consumer is the user's.
cat >"$tmp/natsdel.yaml" <<EOF
apiVersion: sources.wasmfn.dev/v1alpha1
kind: NatsJetStreamSource
metadata: { name: natsgone }
spec: { servers: "nats://127.0.0.1:$nport", stream: ORDERS, subject: orders.new, sink: { uri: "$S/gone" } }
---
apiVersion: sources.wasmfn.dev/v1alpha1
kind: NatsJetStreamSource
metadata: { name: natsnamed }
spec: { servers: "nats://127.0.0.1:$nport", stream: ORDERS, subject: orders.new, consumer: keepme, sink: { uri: "$S/gone" } }
EOF
consumers() { "$SRCPUB" nats-consumers "nats://127.0.0.1:$nport" ORDERS 2>&1 | sort | tr '\n' ' '; }
"$WASMFN" apply -f "$tmp/natsdel.yaml" >"$tmp/out" 2>&1 || bad "apply natsgone and natsnamed" "$(cat "$tmp/out")"
both() { consumers | grep -q 'keepme nats natsgone'; }
until_ok 10 both || bad "the two sources' consumers are created" "$(consumers)"
[ "$(api_delete NatsJetStreamSource/natsgone)" = 200 ] && [ "$(api_delete NatsJetStreamSource/natsnamed)" = 200 ] ||
    bad "delete natsgone and natsnamed"
gone() { [ "$(consumers)" = "keepme nats " ]; }
until_ok 10 gone && ok "a deleted NatsJetStreamSource's durable consumer is deleted; a named one stays" ||
    bad "the deleted NatsJetStreamSource's consumer is deleted" "consumers now: $(consumers); $(grep -a natsgone "$tmp/log" | tail -2)"

# ---- RabbitMQ: the same, once its broker is up ----------------------------
until_ok 60 "$SRCPUB" amqp "$AMQP" probe 0 1 2>/dev/null ||
    { bad "rabbitmq-server starts" "$(tail -5 "$tmp/rabbit/out.log")"; finish; }
# 0..1999, and 2000 oversized.
SRCPUB_BIG=2000 "$SRCPUB" amqp "$AMQP" orders 0 2001 || bad "publish 2001 messages to RabbitMQ"
cat >"$tmp/rabbit.yaml" <<EOF
apiVersion: sources.knative.dev/v1alpha1
kind: RabbitmqSource
metadata: { name: rabbit }
spec:
  broker: $AMQP
  rabbitmqResourcesConfig: { queueName: orders, predeclared: true, parallelism: 4 }
  sink: { uri: "$S/rabbit" }
  $(delivery rabbit)
EOF
"$WASMFN" apply -f "$tmp/rabbit.yaml" >"$tmp/out" 2>&1 || { bad "apply the RabbitmqSource" "$(cat "$tmp/out")"; finish; }
until_ok 20 midway rabbit
kill -9 "$pid"
wait "$pid" 2>/dev/null
at_kill=$(stat rabbit okUnique)
start_daemon
check_source rabbit "RabbitmqSource" "$at_kill" 8
check_parallel rabbit "RabbitmqSource" 4
# A silent broker must not go unnoticed for long: the daemon's connection
# probes after 30 s without traffic (librabbitmq turns keepalive on with the
# kernel's 2-hour default; ss shows the time left as "NNsec" or "NNmin").
# (Polled: while a frame is unacknowledged ss shows the retransmit timer.)
kalive() { ss -tnopH state established "( dport = :$rport )" 2>&1 | grep "pid=$pid,"; }
kalive_30s() { kalive | grep -Eq 'timer:\(keepalive,[0-9.]+(sec|ms),'; }
until_ok 3 kalive_30s &&
    ok "RabbitmqSource: its connection sends TCP keepalive probes after 30 s of silence" ||
    bad "RabbitmqSource: TCP keepalive within 30 s" "$(kalive | head -2)"
ce=$(stat rabbit ce)
echo "$ce" | grep -q '"type":"dev.knative.rabbitmq.event"' && echo "$ce" | grep -q '"id":"m-' &&
    ok "RabbitMQ messages arrive as CloudEvents with the message id as id" || bad "RabbitMQ CloudEvent attributes" "$ce"

# ---- RabbitMQ without a deadLetterSink: the queue's dead-letter exchange ---
# orders-dlx has x-dead-letter-exchange "" and routing key orders-dlx.dead:
# a message whose attempts are used up is rejected (basic.nack, no requeue)
# and RabbitMQ moves it to orders-dlx.dead.
SRCPUB_DLX=1 "$SRCPUB" amqp "$AMQP" orders-dlx 0 110 || bad "publish 110 messages to a queue with a DLX"
cat >"$tmp/rabbitdlx.yaml" <<EOF
apiVersion: sources.knative.dev/v1alpha1
kind: RabbitmqSource
metadata: { name: rabbitdlx }
spec:
  broker: $AMQP
  rabbitmqResourcesConfig: { queueName: orders-dlx, predeclared: true, parallelism: 2 }
  sink: { uri: "$S/rabbitdlx" }
  delivery: { retry: 2, backoffPolicy: linear, backoffDelay: PT0.05S, timeout: PT2S }
EOF
"$WASMFN" apply -f "$tmp/rabbitdlx.yaml" >"$tmp/out" 2>&1 || bad "apply a RabbitmqSource without deadLetterSink" "$(cat "$tmp/out")"
: >"$tmp/dead"
two_dead() {
    "$SRCPUB" amqp-get "$AMQP" orders-dlx.dead >>"$tmp/dead" 2>/dev/null
    [ "$(wc -l <"$tmp/dead")" -ge 2 ]
}
until_ok 20 two_dead
sleep 0.3 # a third one would show now
"$SRCPUB" amqp-get "$AMQP" orders-dlx.dead >>"$tmp/dead" 2>/dev/null
[ "$(sort "$tmp/dead" | tr -d '\n')" = '{"n":107}{"n":7}' ] && [ "$(stat rabbitdlx failed)" = 6 ] &&
    [ "$(stat rabbitdlx okUnique)" = 108 ] &&
    ok "RabbitmqSource: without deadLetterSink the 2 poison messages went to the queue's DLX after 3 attempts each" ||
    bad "RabbitmqSource: rejected to the dead-letter exchange" \
        "dead queue: $(tr '\n' ' ' <"$tmp/dead"); $(stat rabbitdlx failed) failed attempts, $(stat rabbitdlx okUnique) of 108 delivered"
[ "$(metric 'wasmfn_events_total{source="rabbitdlx",trigger="",outcome="rejected"} 2')" = 1 ] &&
    ok "wasmfn_events_total counts them as rejected" ||
    bad "the rejected metric" "$(curl -s "$WASMFN_API/metrics" | grep 'rabbitdlx' | head -5)"

# ---- the broker goes away and comes back; the daemon stops cleanly ---------
nats_stop
sleep 1.5 # the source notices and retries
nats_start
until_ok 20 "$SRCPUB" nats "nats://127.0.0.1:$nport" ORDERS orders.new 3000 200 2>/dev/null ||
    bad "nats-server restarts"
back() { [ "$(stat nats okUnique)" -ge 2178 ]; } # 1980 + 200, less 2 poison
until_ok 20 back && ok "after nats-server was killed and restarted the source reconnected and delivered 200 more" ||
    bad "the NATS source reconnects" "$(stat nats okUnique) delivered; $(grep 'source nats' "$tmp/log" | tail -2)"
kill -TERM "$pid"
wait "$pid"
st=$?
pid=
[ "$st" = 0 ] && ok "SIGTERM with three sources running: the daemon drains and exits 0" ||
    bad "SIGTERM exits 0" "exit status $st; $(tail -3 "$tmp/log")"
finish
