# mk/eventing.mk — eventing (src/eventing): CloudEvents, PingSource,
# RedisStreamSource, Broker/Trigger. It links hiredis (Redis streams),
# libcurl (deliveries), SQLite (DATA/eventing.db), cJSON and libuv.
#
# Unit tests tests/eventing/test_*.c run with `make test-unit`.
# `make test-eventing` runs the integration tests: a real redis-server on a
# random loopback port, a node HTTP sink (tests/eventing/sink.js) and the
# real daemon (`wasmfn serve --tier interp`, objects applied through the
# admin API) — see run_tests.sh. No function runs in it, so it runs once
# rather than per tier.

LIBS += -lhiredis -lcurl -lsqlite3 -lcjson -luv
# NatsJetStreamSource, MqttSource, RabbitmqSource (src/eventing/nats.c, mqtt.c,
# rabbitmq.c): Debian's libnats-dev, libmosquitto-dev, librabbitmq-dev.
LIBS += -lnats -lmosquitto -lrabbitmq

TEST_STEPS += test-eventing

.PHONY: test-eventing

test-eventing: $(WASMFN)
	@WASMFN=$(WASMFN) bash tests/eventing/run_tests.sh

# `make asan` reruns it with the sanitizer build of the daemon.
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
