# mk/shim.mk — containerd-shim-wasmfn-v1 (src/shim): containerd's runtime v2
# shim, runtime type io.containerd.wasmfn.v1, its own binary linking
# build/libwasmfn.a. See docs/kubernetes.md.
#
# The task service's messages are compiled with protoc-c from the .proto
# files Debian's golang-github-containerd-containerd-dev installs under the
# Go source tree (/usr/share/gocode/src), found here at build time. Those
# files carry gogoproto options that only Go's generator understands; a sed
# step copies them into $(BUILD)/shim-proto/src without those imports and
# options (they change Go names only, never the wire format) and protoc-c
# generates C from the copies into $(BUILD)/shim-proto/gen. Nothing
# generated is committed.

SHIM_BIN := $(BUILD)/containerd-shim-wasmfn-v1
SHIM_GOSRC := $(firstword $(wildcard /usr/share/gocode/src))
SHIM_CTRD := $(SHIM_GOSRC)/github.com/containerd/containerd
# The well-known types (any, empty, timestamp) come with libprotobuf-dev.
SHIM_WKT_DIR := $(firstword $(patsubst %/google/protobuf/any.proto,%,$(wildcard /usr/include/google/protobuf/any.proto /usr/local/include/google/protobuf/any.proto)))

SHIM_PROTOS := runtime/v2/task/shim.proto api/types/mount.proto api/types/task/task.proto \
	api/events/task.proto pkg/runtimeoptions/v1/api.proto
# Stats answers with cgroups v2's Metrics (io.containerd.cgroups.v2.Metrics),
# from golang-github-containerd-cgroups-dev, which `ctr task metrics` prints.
SHIM_CGROUPS_PROTOS := v2/stats/metrics.proto
SHIM_PDIR := $(BUILD)/shim-proto
SHIM_PSRC := $(addprefix $(SHIM_PDIR)/src/github.com/containerd/containerd/,$(SHIM_PROTOS)) \
	$(addprefix $(SHIM_PDIR)/src/github.com/containerd/cgroups/,$(SHIM_CGROUPS_PROTOS))
SHIM_GEN_C := $(patsubst $(SHIM_PDIR)/src/%.proto,$(SHIM_PDIR)/gen/%.pb-c.c,$(SHIM_PSRC)) \
	$(SHIM_PDIR)/gen/google/protobuf/any.pb-c.c $(SHIM_PDIR)/gen/google/protobuf/empty.pb-c.c \
	$(SHIM_PDIR)/gen/google/protobuf/timestamp.pb-c.c $(SHIM_PDIR)/gen/ttrpc.pb-c.c
SHIM_GEN_STAMP := $(SHIM_PDIR)/gen/.stamp

SHIM_SRCS := $(sort $(wildcard src/shim/*.c))
SHIM_OBJS := $(patsubst src/shim/%.c,$(BUILD)/obj/shim/%.o,$(SHIM_SRCS)) \
	$(patsubst $(SHIM_PDIR)/gen/%.c,$(SHIM_PDIR)/obj/%.o,$(SHIM_GEN_C))
SHIM_CFLAGS := -I$(SHIM_PDIR)/gen

# Removes gogoproto (and containerd's fieldpath plugin) imports and options.
SHIM_STRIP := /^[[:space:]]*import( weak)? "(([^"]*\/)?gogoproto\/gogo\.proto|.*fieldpath\.proto)";/d; \
	/^[[:space:]]*option \((gogoproto|containerd\.plugin)\.[^)]*\)/d; \
	s/ *\[\(gogoproto\.[^]]*\]//g

all: $(SHIM_BIN)

.PHONY: shim
shim: $(SHIM_BIN)

$(SHIM_PDIR)/src/github.com/containerd/containerd/%.proto: $(SHIM_CTRD)/%.proto
	@mkdir -p $(@D)
	sed -E '$(SHIM_STRIP)' $< > $@

$(SHIM_PDIR)/src/github.com/containerd/cgroups/%.proto: $(SHIM_GOSRC)/github.com/containerd/cgroups/%.proto
	@mkdir -p $(@D)
	sed -E '$(SHIM_STRIP)' $< > $@

$(SHIM_GEN_STAMP): $(SHIM_PSRC) src/shim/ttrpc.proto
	@if [ -z "$(SHIM_GOSRC)" ] || [ -z "$(SHIM_WKT_DIR)" ]; then \
		echo "mk/shim.mk: containerd's .proto files or protobuf's well-known types are missing" \
		     "(golang-github-containerd-containerd-dev, libprotobuf-dev: make deps)" >&2; exit 1; fi
	@mkdir -p $(SHIM_PDIR)/gen
	protoc-c --c_out=$(SHIM_PDIR)/gen -I$(SHIM_PDIR)/src -I$(SHIM_WKT_DIR) $(SHIM_PSRC) \
		$(SHIM_WKT_DIR)/google/protobuf/any.proto $(SHIM_WKT_DIR)/google/protobuf/empty.proto \
		$(SHIM_WKT_DIR)/google/protobuf/timestamp.proto
	protoc-c --c_out=$(SHIM_PDIR)/gen -Isrc/shim src/shim/ttrpc.proto
	@touch $@

$(SHIM_GEN_C): $(SHIM_GEN_STAMP)

$(SHIM_PDIR)/obj/%.o: $(SHIM_PDIR)/gen/%.c
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(SHIM_CFLAGS) -w -c $< -o $@

$(BUILD)/obj/shim/%.o: src/shim/%.c $(SHIM_GEN_STAMP)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(SHIM_CFLAGS) $(DEPFLAGS) -c $< -o $@

$(SHIM_BIN): $(SHIM_OBJS) $(LIB)
	$(CC) $(LDFLAGS) -o $@ $(SHIM_OBJS) $(LIB) -lprotobuf-c $(LIBS)

-include $(SHIM_OBJS:.o=.d)

# `make test-shim`: tests/shim/run_tests.sh, the shim through a private
# containerd driven by ctr (needs root). Once, not per tier: the shim runs
# the interpreter. Not under the sanitizers: containerd execs the shim.
SHIM_FNS_DIR := $(BUILD)/shim-fns
TEST_STEPS += test-shim
.PHONY: test-shim

$(SHIM_FNS_DIR)/%.wasm: tests/shim/fns/%.c
	@mkdir -p $(@D)
	$(EXAMPLES_CC) $(EXAMPLES_CFLAGS) $< -o $@

test-shim: $(SHIM_BIN) $(SHIM_FNS_DIR)/cmd.wasm $(EXAMPLES_DIR)/hello.wasm
	@SHIM=$(abspath $(SHIM_BIN)) CMD_WASM=$(abspath $(SHIM_FNS_DIR)/cmd.wasm) \
	    HELLO_WASM=$(abspath $(EXAMPLES_DIR)/hello.wasm) bash tests/shim/run_tests.sh

# `make test-deploy`: every manifest in deploy/ parsed and checked against
# the Kubernetes, Knative and KEDA shapes (tests/shim/check_deploy.py), and
# the checker shown to catch each fault planted in tests/shim/bad-deploy/.
TEST_STEPS += test-deploy
.PHONY: test-deploy
test-deploy:
	@python3 tests/shim/check_deploy.py deploy
	@out=$$(python3 tests/shim/check_deploy.py tests/shim/bad-deploy); \
	if echo "$$out" | grep -q '^deploy: 2 files, 5 documents, 12 faults$$'; then \
		echo "deploy: the planted faults are all found"; \
	else echo "$$out"; echo "deploy: FAILED: check_deploy.py missed planted faults"; exit 1; fi

# `make bench-shim`: bench/shim/start_latency.sh, start-to-answer latency
# of containers through a private containerd, the wasmfn shim against runc
# running the same program natively (needs root; results by hand in
# docs/benchmarks.md). SHIM_BENCH_N starts per row (default 50). Not part of
# `make bench`: some minutes of container starts and native compiles, and
# root.
SHIM_BENCH_DIR := $(BUILD)/bench/shim
SHIM_BENCH_N ?= 50
.PHONY: bench-shim

$(SHIM_BENCH_DIR)/hello.wasm: bench/shim/hello.c
	@mkdir -p $(@D)
	$(EXAMPLES_CC) $(EXAMPLES_CFLAGS) $< -o $@

$(SHIM_BENCH_DIR)/%-static: bench/shim/%.c
	@mkdir -p $(@D)
	$(CC) -O2 -Wall -Wextra -static $< -o $@

bench-shim: $(SHIM_BIN) $(SHIM_BENCH_DIR)/hello.wasm $(SHIM_BENCH_DIR)/hello-static \
		$(SHIM_BENCH_DIR)/httpd-static $(EXAMPLES_DIR)/hello.wasm
	@SHIM=$(abspath $(SHIM_BIN)) HELLO_WASM=$(abspath $(SHIM_BENCH_DIR)/hello.wasm) \
	    HELLO_NATIVE=$(abspath $(SHIM_BENCH_DIR)/hello-static) \
	    HTTPD_NATIVE=$(abspath $(SHIM_BENCH_DIR)/httpd-static) \
	    HTTP_WASM=$(abspath $(EXAMPLES_DIR)/hello.wasm) N=$(SHIM_BENCH_N) \
	    bash bench/shim/start_latency.sh
