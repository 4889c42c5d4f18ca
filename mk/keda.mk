# mk/keda.mk — KEDA's ScaledObject (src/keda): triggers read Prometheus,
# metrics APIs and RabbitMQ's management API with libcurl, Redis with
# hiredis, NATS JetStream with Debian's libnats, RabbitMQ over AMQP with
# librabbitmq, PostgreSQL with libpq and MySQL/MariaDB with MariaDB's
# Connector/C.
#
# Unit tests tests/keda/test_*.c run with `make test-unit`. `make test-keda`
# starts a real Prometheus (scraping a tiny exporter the test controls), a
# second one that requires basic auth, redis-server (alone, a Cluster, a
# Sentinel), PostgreSQL, MariaDB, nats-server -js,
# rabbitmq-server (published to with tests/eventing/srcpub.c) and the daemon
# on loopback, once, and checks ScaledObjects end to end (every trigger
# type but memory, and TriggerAuthentication), and a CPU-bound guest held
# to `cpu: 500m` (tests/keda/run_tests.sh). Run once, not per tier: the tier changes
# neither the scaling nor the CPU accounting.

LIBS += -lnats -lrabbitmq -lpq -lmariadb
CFLAGS += $(shell pkg-config --cflags libpq libmariadb 2>/dev/null)

TEST_STEPS += test-keda
# Under `make asan` too: the trigger readers parse what servers answer.
ASAN_STEPS += test-keda
.PHONY: test-keda

KEDA_JSPUB := $(BUILD)/keda/jspub
$(KEDA_JSPUB): tests/keda/jspub.c
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< -lnats

test-keda: $(WASMFN) examples serving-fns $(KEDA_JSPUB) $(EV_SRCPUB)
	@WASMFN=$(abspath $(WASMFN)) JSPUB=$(abspath $(KEDA_JSPUB)) SRCPUB=$(abspath $(EV_SRCPUB)) \
		EXAMPLES_DIR=$(EXAMPLES_DIR) FNS_DIR=$(SERVING_FNS_DIR) \
		bash tests/keda/run_tests.sh
