# mk/oci.mk — the OCI distribution client (src/oci) and `make test-oci`.
#
# src/oci links libcurl, cJSON and libcrypto (already in LIBS) and zlib for
# gzip layers. tests/oci/test_ref.c (reference parsing) runs with
# test-unit. `make test-oci` runs tests/oci/run_tests.sh: Debian's
# docker-registry on loopback ports (plain HTTP, htpasswd auth, TLS with a
# self-signed certificate), skopeo for an image we did not push ourselves,
# and `wasmfn push` / `pull` / `registry login` against them.

LIBS += -lz

TEST_STEPS += test-oci
ASAN_STEPS += test-oci

.PHONY: test-oci

test-oci: $(WASMFN)
	@WASMFN=$(abspath $(WASMFN)) bash tests/oci/run_tests.sh

# `make test-oci-daemon` runs tests/oci/daemon_tests.sh: `wasmfn serve`
# resolving `image:` registry references when a manifest is applied.
TEST_STEPS += test-oci-daemon

.PHONY: test-oci-daemon

test-oci-daemon: $(WASMFN) $(EXAMPLES_DIR)/hello.wasm $(EXAMPLES_DIR)/echo.wasm
	@WASMFN=$(abspath $(WASMFN)) HELLO=$(abspath $(EXAMPLES_DIR)/hello.wasm) \
	    ECHO=$(abspath $(EXAMPLES_DIR)/echo.wasm) bash tests/oci/daemon_tests.sh
