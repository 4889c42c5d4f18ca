# Makefile — builds wasmfn and runs its tests.
#
#   make              build/wasmfn (every src/*/*.c) and build/libwasmfn.a
#                     (every object but src/cli/main.c, for tests to link)
#   make deps         install missing Debian packages (scripts/deps.sh, root)
#   make run          deps + build + examples, then `wasmfn serve` with the
#                     examples deployed, until Ctrl-C (scripts/run.sh)
#   make test         deps, build, every TEST_STEPS target, then `make asan`
#   make test-unit    build and run every tests/*/test_*.c (cmocka)
#   make spec         the WebAssembly spec suite (mk/spec.mk); ONLY=i32 for one
#   make asan         the same unit tests and spec suite under ASan + UBSan,
#                     built in build-asan/
#   make install      copy build/wasmfn to $(PREFIX)/bin (default /usr/local)
#   make clean
#
# Fragments mk/*.mk add their own targets and append to TEST_STEPS (and to
# LIBS if they need a library); they may use BUILD, CC, CFLAGS, LDFLAGS, LIB,
# LIBS and WASMFN defined below.

.DEFAULT_GOAL := all

BUILD ?= build
PREFIX ?= /usr/local

ifeq ($(origin CC),default)
CC := gcc
endif

OPTFLAGS ?= -O2 -g
CFLAGS ?=
CFLAGS += -std=gnu11 $(OPTFLAGS) -Wall -Wextra -Isrc $(SANFLAGS)
DEPFLAGS = -MMD -MP
LDFLAGS ?=
LDFLAGS += $(SANFLAGS)
# Libraries every binary links with. Subsystems append theirs (-luv ...),
# here or in their mk/ fragment.
LIBS := -lm -lpthread

# src/shim is its own binary with its own generated code (mk/shim.mk).
SRCS := $(filter-out src/shim/%,$(wildcard src/*/*.c))
MAIN_SRC := src/cli/main.c
LIB_SRCS := $(filter-out $(MAIN_SRC),$(SRCS))
obj_of = $(patsubst src/%.c,$(BUILD)/obj/%.o,$(1))
LIB_OBJS := $(call obj_of,$(LIB_SRCS))
MAIN_OBJ := $(call obj_of,$(MAIN_SRC))
LIB := $(BUILD)/libwasmfn.a
WASMFN := $(BUILD)/wasmfn

UNIT_SRCS := $(sort $(wildcard tests/*/test_*.c))
UNIT_BINS := $(patsubst tests/%.c,$(BUILD)/tests/%,$(UNIT_SRCS))

# Targets `make test` runs after the build, in order. test-unit first;
# fragments append theirs (mk/spec.mk adds spec).
TEST_STEPS := test-unit

.PHONY: all deps run test test-unit asan install clean

all: $(WASMFN)

-include $(sort $(wildcard mk/*.mk))

$(BUILD)/obj/%.o: src/%.c
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(DEPFLAGS) -c $< -o $@

$(LIB): $(LIB_OBJS)
	@mkdir -p $(@D)
	rm -f $@
	ar rcs $@ $^

$(WASMFN): $(MAIN_OBJ) $(LIB)
	$(CC) $(LDFLAGS) -o $@ $(MAIN_OBJ) $(LIB) $(LIBS)

$(MAIN_SRC):
	@echo "$(MAIN_SRC) does not exist yet: build/wasmfn needs it" >&2
	@exit 1

# ---- unit tests ----

$(BUILD)/tests/%: tests/%.c $(LIB)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -MMD -MP -MF $@.d $(LDFLAGS) -o $@ $< $(LIB) -lcmocka $(LIBS)

# The unit test binaries alone, so `make test` and `make asan` build them
# with -j2 first (test-unit's own prerequisites build one at a time).
.PHONY: unit-bins
unit-bins: $(UNIT_BINS)

# Runs every unit test binary (from the repo root, so tests may read files
# by relative path) and fails if any failed; a hung test fails after 5 min.
test-unit: $(UNIT_BINS)
	@if [ -z "$(UNIT_BINS)" ]; then echo "test-unit: no tests/*/test_*.c"; exit 0; fi; \
	failed=""; \
	for t in $(UNIT_BINS); do \
		echo "== $$t"; \
		timeout 300 ./$$t || failed="$$failed $$t"; \
	done; \
	if [ -n "$$failed" ]; then echo "test-unit: FAILED:$$failed"; exit 1; fi; \
	echo "test-unit: all $(words $(UNIT_BINS)) test programs passed"

# ---- the whole suite ----

deps:
	@bash scripts/deps.sh

run: deps
	@$(MAKE) --no-print-directory -j2 all examples
	@WASMFN=$(WASMFN) WASMFN_DATA=$(WASMFN_DATA) LISTEN=$(LISTEN) ADMIN=$(ADMIN) bash scripts/run.sh

# Every step runs even when an earlier one failed, so one run shows every
# failure; the target fails at the end if any step did.
test: deps
	@$(MAKE) --no-print-directory -j2 all unit-bins
	@failed=""; npass=0; nfail=0; \
	for step in $(TEST_STEPS) asan; do \
		echo "==== make $$step"; t0=$$(date +%s); \
		if $(MAKE) --no-print-directory $$step; then npass=$$((npass + 1)); \
		else failed="$$failed $$step"; nfail=$$((nfail + 1)); fi; \
		echo "==== make $$step: $$(( $$(date +%s) - t0 )) s"; \
	done; \
	echo "make test: steps $(TEST_STEPS) asan"; \
	if [ -n "$$failed" ]; then echo "make test: failed steps:$$failed"; fi; \
	echo "test-steps: $$npass passed, $$nfail failed"; \
	[ -z "$$failed" ]

# The sanitizer build: everything again in build-asan/, with ASan and UBSan
# (UB aborts the test rather than printing and going on). Its daemon and
# WASI suites run in the native tier only: the host code they exercise is
# the same in both tiers, and the interpreter runs under the sanitizers in the unit
# tests (every native test runs it beside) and in `make spec` (both tiers).
ASAN_FLAGS := -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
asan:
	@$(MAKE) --no-print-directory -j2 BUILD=build-asan SANFLAGS="$(ASAN_FLAGS)" OPTFLAGS="-O1 -g" \
		build-asan/wasmfn unit-bins
	@$(MAKE) --no-print-directory BUILD=build-asan SANFLAGS="$(ASAN_FLAGS)" OPTFLAGS="-O1 -g" \
		DAEMON_TIERS=native test-unit $(ASAN_STEPS)

install: $(WASMFN)
	install -d $(DESTDIR)$(PREFIX)/bin
	install -m 0755 $(WASMFN) $(DESTDIR)$(PREFIX)/bin/wasmfn

clean:
	rm -rf build build-asan

-include $(LIB_OBJS:.o=.d) $(MAIN_OBJ:.o=.d) $(UNIT_BINS:=.d)
