# mk/density.mk — `make bench-density` (part of `make bench`): live
# instances per node (bench/density/density.sh through the real daemon)
# and the C stack a guest's run needs on a fiber (stack_probe).
#
#   DENSITY_N=30000 DENSITY_SLEEP_MS=20000   the defaults: 30,000 async
#                                            calls each sleeping 20 s
#
# The script raises vm.max_map_count (sysctl, root) and the open-file
# limit for its own run; see its header. Results are recorded by hand in
# docs/benchmarks.md ("Density"). Never part of `make test`.

DENSITY_CLIENT := $(BUILD)/bench/density_client
STACK_PROBE := $(BUILD)/bench/stack_probe
DENSITY_N ?= 30000
DENSITY_SLEEP_MS ?= 20000

.PHONY: bench-density

bench: bench-density

$(DENSITY_CLIENT): bench/density/density_client.c
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< -lpthread

$(STACK_PROBE): bench/density/stack_probe.c $(LIB)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(LIB) $(LIBS)

bench-density: $(DENSITY_CLIENT) $(STACK_PROBE) $(WASMFN) examples serving-fns $(WASI_WASM)
	./$(STACK_PROBE) $(WASI_WASM) $(EXAMPLES_DIR)/*.wasm $(SERVING_FNS_DIR)/*.wasm
	bash bench/density/density.sh $(WASMFN) $(SERVING_FNS_DIR)/slow.wasm $(DENSITY_CLIENT) \
		$(DENSITY_N) $(DENSITY_SLEEP_MS)
