# mk/api.mk — the store (src/store) and the admin API (src/api) link with
# SQLite (the registry), cJSON (the API's JSON), OpenSSL's libcrypto (the
# blobs' SHA-256) and libuv (timers for `logs -f`). Their unit tests are
# tests/store/test_store.c and tests/api/test_manifest.c, run by test-unit.

LIBS += -lsqlite3 -lcjson -lcrypto -luv
