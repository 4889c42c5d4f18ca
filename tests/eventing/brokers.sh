# tests/eventing/brokers.sh — sourced by tests/eventing/sources_tests.sh,
# tests/keda/run_tests.sh and bench/eventing/sources.sh: starts the Debian
# brokers on loopback, each on a free port with its own data dir under
# $tmp, and stops what it started.
#
#   brokers_start          nats-server -js, mosquitto and rabbitmq-server (in
#                          the background: it boots in seconds); sets nport,
#                          mport, rport, AMQP
#   rabbit_start           rabbitmq-server alone (tests/keda/run_tests.sh);
#                          sets rabbit_port, AMQP
#   brokers_stop           kills them (and rabbitmq's own epmd)
#   nats_stop, nats_start  kill -9 nats-server, and start it again
#   until_ok SECONDS CMD   CMD every 0.1 s until it succeeds
#   free_port              a loopback port nobody listens on

until_ok() {
    local end=$((SECONDS + $1))
    shift
    while ! "$@"; do
        [ "$SECONDS" -ge "$end" ] && return 1
        sleep 0.1
    done
}
# free_port: a port nothing listens on, and never one this test was given
# before: a port handed out is free until its server binds it, and a server
# that takes seconds to start (RabbitMQ's distribution port) must not see
# another server take it first. The ports given are kept in $tmp.
free_port() { # the brokers cannot listen on port 0 and tell us
    local p given=${tmp:?free_port needs tmp}/.free_ports
    while :; do
        p=$((10000 + RANDOM % 20000)) # below the ephemeral ports (32768-): nobody takes it meanwhile
        grep -qx "$p" "$given" 2>/dev/null && continue
        (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null && continue
        echo "$p" >>"$given"
        echo "$p"
        return
    done
}

brokers_pids=
rabbit_pgid=
rabbit_start() {
    rabbit_port=$(free_port)
    local epmd_port
    epmd_port=$(free_port)
    mkdir -p "$tmp/rabbit/home"
    : >"$tmp/rabbit/plugins"
    # Our own epmd (Erlang's port mapper) on its own port, in the foreground:
    # the one Erlang would start itself daemonizes and outlives us.
    epmd -port "$epmd_port" -address 127.0.0.1 >"$tmp/epmd.log" 2>&1 &
    brokers_pids="$brokers_pids $!"
    (
        cd "$tmp/rabbit" || exit 1
        export HOME=$tmp/rabbit/home RABBITMQ_NODE_PORT=$rabbit_port RABBITMQ_NODE_IP_ADDRESS=127.0.0.1 \
            RABBITMQ_DIST_PORT=$(free_port) ERL_EPMD_PORT=$epmd_port ERL_EPMD_ADDRESS=127.0.0.1 \
            RABBITMQ_NODENAME=wasmfn$rabbit_port@localhost RABBITMQ_MNESIA_BASE=$tmp/rabbit/mnesia \
            RABBITMQ_LOG_BASE=$tmp/rabbit/log RABBITMQ_ENABLED_PLUGINS_FILE=$tmp/rabbit/plugins \
            RABBITMQ_CONFIG_FILE=$tmp/rabbit/rabbit RABBITMQ_PID_FILE=$tmp/rabbit/pid \
            RABBITMQ_CONF_ENV_FILE=$tmp/rabbit/env RABBITMQ_ADVANCED_CONFIG_FILE=$tmp/rabbit/adv.config
        exec setsid /usr/lib/rabbitmq/bin/rabbitmq-server >"$tmp/rabbit/out.log" 2>&1
    ) &
    rabbit_pgid=$!
    AMQP=amqp://guest:guest@127.0.0.1:$rabbit_port # no trailing "/": that names the vhost ""
}

brokers_start() {
    rabbit_start
    rport=$rabbit_port

    nport=$(free_port)
    printf 'max_payload: 8MB\n' >"$tmp/nats.conf"
    nats_start

    mport=$(free_port)
    mkdir -p "$tmp/mosq"
    cat >"$tmp/mosq.conf" <<EOC
listener $mport 127.0.0.1
allow_anonymous true
persistence true
persistence_location $tmp/mosq/
max_queued_messages 100000
user $(id -un)
EOC
    mosquitto -c "$tmp/mosq.conf" >"$tmp/mosq.log" 2>&1 &
    brokers_pids="$brokers_pids $!"
}

nats_pid=
nats_start() { # also after nats_stop: the same port and store
    nats-server -c "$tmp/nats.conf" -js -a 127.0.0.1 -p "$nport" -sd "$tmp/nats" >>"$tmp/nats.log" 2>&1 &
    nats_pid=$!
}
nats_stop() { # safe under set -e (the bench's exit trap runs it)
    if [ -n "$nats_pid" ]; then
        kill -9 "$nats_pid" 2>/dev/null || true
        wait "$nats_pid" 2>/dev/null || true
    fi
    nats_pid=
}

brokers_stop() {
    nats_stop
    for p in $brokers_pids; do kill -9 "$p" 2>/dev/null || true; done
    if [ -n "$rabbit_pgid" ]; then
        kill -9 -- "-$rabbit_pgid" 2>/dev/null || true # rabbitmq-server's group
    fi
    brokers_pids=
    rabbit_pgid=
}
