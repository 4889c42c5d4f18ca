# mk/spec.mk — the WebAssembly core spec suite (../shared/wasm-spec-testsuite).
#
#   make spec            convert every .wast with wast2json (only those newer
#                        than their JSON) and run build/spec-runner over all
#   make spec ONLY=i32   one script (or several: ONLY="i32 i64"; globs work)
#
# The JSON lives in build/spec/NAME/ whatever BUILD is, so the sanitizer
# build reuses it. The runner's last line is `spec: N passed, M failed, K
# skipped`; it exits non-zero when M > 0.

SPEC_SUITE ?= ../shared/wasm-spec-testsuite
SPEC_OUT := build/spec
# Which tiers run: both (default), interp or native (make spec SPEC_TIER=native).
SPEC_TIER ?= both
SPEC_RUNNER := $(BUILD)/spec-runner
SPEC_NAMES := $(sort $(basename $(notdir $(wildcard $(SPEC_SUITE)/*.wast))))
ifneq ($(ONLY),)
SPEC_SELECTED := $(foreach p,$(ONLY),$(filter $(subst *,%,$(p)),$(SPEC_NAMES)))
else
SPEC_SELECTED := $(SPEC_NAMES)
endif
SPEC_JSON := $(foreach n,$(SPEC_SELECTED),$(SPEC_OUT)/$(n)/$(n).json)

TEST_STEPS += spec
ASAN_STEPS += spec

.PHONY: spec

# wast2json writes the JSON and every module it refers to; it writes them
# into a scratch directory that replaces the old one only when it succeeded.
define spec_json_rule
$(SPEC_OUT)/$(1)/$(1).json: $(SPEC_SUITE)/$(1).wast
	@rm -rf $(SPEC_OUT)/$(1).tmp && mkdir -p $(SPEC_OUT)/$(1).tmp
	@wast2json $$< -o $(SPEC_OUT)/$(1).tmp/$(1).json
	@rm -rf $(SPEC_OUT)/$(1) && mv $(SPEC_OUT)/$(1).tmp $(SPEC_OUT)/$(1)
endef
$(foreach n,$(SPEC_NAMES),$(eval $(call spec_json_rule,$(n))))

$(SPEC_RUNNER): tests/spec/spec_runner.c $(LIB)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -MMD -MP -MF $@.d $(LDFLAGS) -o $@ $< $(LIB) -lcjson $(LIBS)
-include $(SPEC_RUNNER).d

spec: $(SPEC_RUNNER) $(SPEC_JSON)
	@if [ ! -d "$(SPEC_SUITE)" ]; then echo "spec: $(SPEC_SUITE) not found" >&2; exit 1; fi
	@if [ -z "$(SPEC_SELECTED)" ]; then echo "spec: no script matches ONLY=$(ONLY)" >&2; exit 1; fi
	timeout 1800 ./$(SPEC_RUNNER) --tier $(SPEC_TIER) $(SPEC_OUT) $(SPEC_SELECTED)
