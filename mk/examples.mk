# mk/examples.mk — the example functions and the CLI's libraries.
#
#   make examples    examples/*.c -> build/examples/*.wasm (clang, wasm32-wasi);
#                    the manifests examples/*.yaml name these files by a path
#                    relative to themselves (../build/examples/NAME.wasm)
#
# The CLI's admin-API client (src/cli/client.c, manifest.c) links libcurl and
# libyaml; cJSON is already in LIBS (mk/api.mk), listing it twice is harmless.
#
# Like the WASI test programs, the examples do not depend on BUILD: the
# sanitizer build reuses them.

LIBS += -lcurl -lyaml -lcjson

EXAMPLES_CC ?= clang
# --strip-debug keeps the name section (function names in trap messages)
# and drops DWARF, which is most of an -O2 module's size.
EXAMPLES_CFLAGS ?= --target=wasm32-wasi -O2 -Wall -Wextra -Wl,--strip-debug
EXAMPLES_DIR := build/examples
EXAMPLES_SRCS := $(sort $(wildcard examples/*.c))
EXAMPLES_WASM := $(patsubst examples/%.c,$(EXAMPLES_DIR)/%.wasm,$(EXAMPLES_SRCS))

.PHONY: examples

examples: $(EXAMPLES_WASM)

$(EXAMPLES_DIR)/%.wasm: examples/%.c
	@mkdir -p $(@D)
	$(EXAMPLES_CC) $(EXAMPLES_CFLAGS) $< -o $@

# `make run` (scripts/run.sh): the daemon's data dir and addresses.
# `make run WASMFN_DATA=/some/dir LISTEN=127.0.0.1:9080 ADMIN=127.0.0.1:9081`
WASMFN_DATA ?= build/run-data
LISTEN ?= 127.0.0.1:8080
ADMIN ?= 127.0.0.1:8081
