# mk/trace.mk — `make test-trace`: OpenTelemetry traces, Server-Timing and
# JSON logs through the real daemon (tests/trace/run_tests.sh), with a
# receiver of its own (tests/trace/receiver.py: OTLP/HTTP JSON and an event
# sink, and an upstream for a guest's outbound requests: the test guest
# tests/host/fns/outbound.c, hence host-fns). Runs once: the tier does not
# change what is traced. The tracer's
# own code runs under the sanitizers in test-unit (tests/trace/test_trace.c).

TEST_STEPS += test-trace

.PHONY: test-trace

test-trace: $(WASMFN) examples host-fns
	@WASMFN=$(abspath $(WASMFN)) EXAMPLES_DIR=$(EXAMPLES_DIR) FNS_DIR=$(HOST_FNS_DIR) bash tests/trace/run_tests.sh
