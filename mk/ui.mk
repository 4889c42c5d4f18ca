# mk/ui.mk — the web dashboard (docs/dashboard.md): ui/* compiled into the
# binary (scripts/embed-ui.sh writes BUILD/gen/ui_files.c, linked into
# libwasmfn.a beside src/api/ui.c, which serves it at /ui/ on the admin
# port), and its browser test.
#
#   make test-ui          headless Chromium (Debian's chromium, driven by
#                         puppeteer-core from npm, tests/ui/package.json) logs
#                         in, opens a function, watches its plots move; plus
#                         the Grafana dashboard's metric names against a live
#                         /metrics (tests/ui/run_tests.sh)
#   make ui-screenshots   the same run, saving docs/img/dashboard-*.png (with
#                         50 s of extra traffic first, so the plots have a shape)

UI_FILES := $(sort $(wildcard ui/*))
UI_GEN := $(BUILD)/gen/ui_files.c
UI_OBJ := $(BUILD)/obj/gen/ui_files.o
LIB_OBJS += $(UI_OBJ)

$(UI_GEN): $(UI_FILES) scripts/embed-ui.sh
	@mkdir -p $(@D)
	sh scripts/embed-ui.sh $@ ui $(notdir $(UI_FILES))

$(UI_OBJ): $(UI_GEN) src/api/ui_files.h
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -c $< -o $@

# npm ci once per lock file (tests/ui/node_modules is not committed).
UI_NPM_STAMP := tests/ui/node_modules/.wasmfn-stamp
$(UI_NPM_STAMP): tests/ui/package.json tests/ui/package-lock.json
	cd tests/ui && npm ci --no-audit --no-fund
	@touch $@

TEST_STEPS += test-ui
.PHONY: test-ui ui-screenshots
test-ui: $(WASMFN) examples $(UI_NPM_STAMP)
	@WASMFN=$(abspath $(WASMFN)) EXAMPLES_DIR=$(EXAMPLES_DIR) bash tests/ui/run_tests.sh

ui-screenshots: $(WASMFN) examples $(UI_NPM_STAMP)
	@WASMFN=$(abspath $(WASMFN)) EXAMPLES_DIR=$(EXAMPLES_DIR) SCREENSHOTS=docs/img SHOT_TRAFFIC_S=50 \
		bash tests/ui/run_tests.sh
