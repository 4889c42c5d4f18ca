# mk/eventing.mk — eventing (src/eventing): CloudEvents, PingSource,
# RedisStreamSource, Broker/Trigger. It links hiredis (Redis streams),
# libcurl (deliveries), SQLite (DATA/eventing.db), cJSON and libuv.
#
# Unit tests tests/eventing/test_*.c run with `make test-unit`.
# `make test-eventing` runs the integration tests: a real redis-server on a
# random loopback port, a node HTTP sink (tests/eventing/sink.js) and the
# harness tests/eventing/harness.c, a small daemon that runs eventing on a
# uv loop (the real subsystem, driven over HTTP) — see run_tests.sh.

LIBS += -lhiredis -lcurl -lsqlite3 -lcjson -luv
# NatsJetStreamSource, MqttSource, RabbitmqSource (src/eventing/nats.c, mqtt.c,
# rabbitmq.c): Debian's libnats-dev, libmosquitto-dev, librabbitmq-dev.
LIBS += -lnats -lmosquitto -lrabbitmq

EV_HARNESS := $(BUILD)/eventing/ev-harness

TEST_STEPS += test-eventing

.PHONY: test-eventing

$(EV_HARNESS): tests/eventing/harness.c $(LIB)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(LIB) $(LIBS)

test-eventing: $(EV_HARNESS)
	@HARNESS=$(EV_HARNESS) bash tests/eventing/run_tests.sh

# `make asan` reruns it with the sanitizer build of the harness.
ASAN_STEPS += test-eventing

# `make test-eventing-daemon`: eventing through the real daemon (`wasmfn serve
# --redis`): PingSource, RedisStreamSource with retries and dead letters,
# Broker ingress on the data plane, Trigger filters and reply events.
EV_FNS := $(BUILD)/eventing-fns/evsink.wasm
TEST_STEPS += test-eventing-daemon
ASAN_STEPS += test-eventing-daemon
.PHONY: test-eventing-daemon

$(BUILD)/eventing-fns/%.wasm: tests/eventing/fns/%.c
	@mkdir -p $(@D)
	$(EXAMPLES_CC) $(EXAMPLES_CFLAGS) $< -o $@

test-eventing-daemon: $(WASMFN) $(EV_FNS) serving-fns
	@s=0; for t in $(DAEMON_TIERS); do echo "== $@ ($$t tier)"; \
		WASMFN=$(TIER_WRAPPER) WASMFN_REAL=$(abspath $(WASMFN)) TIER=$$t EVSINK=$(EV_FNS) SLOW=$(SERVING_FNS_DIR)/slow.wasm bash tests/eventing/daemon_tests.sh || s=1; \
	done; exit $$s

# `make test-eventing-sources`: NatsJetStreamSource, MqttSource and
# RabbitmqSource through the real daemon against nats-server, mosquitto and
# rabbitmq-server on loopback (tests/eventing/sources_tests.sh): 2,000
# messages each with a kill -9 midway, poison and oversized messages to the
# dead-letter sink. Runs once (the tier does not matter to eventing).
EV_SRCPUB := $(BUILD)/eventing/srcpub
TEST_STEPS += test-eventing-sources
.PHONY: test-eventing-sources

$(EV_SRCPUB): tests/eventing/srcpub.c
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< -lnats -lmosquitto -lrabbitmq -lsqlite3

test-eventing-sources: $(WASMFN) $(EV_SRCPUB)
	@WASMFN=$(WASMFN) SRCPUB=$(EV_SRCPUB) bash tests/eventing/sources_tests.sh

# About 35 s under the sanitizers: it runs there too (the libraries' buffers
# and our handles of their messages are where memory errors would be).
ASAN_STEPS += test-eventing-sources
