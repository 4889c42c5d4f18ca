# mk/serving.mk — the data plane (src/serving, src/runtime) and the HTTP
# server (src/http/server.c): the libraries they link. Their unit tests are
# tests/serving/test_*.c and tests/http/test_http.c, run by `make
# test-unit` like every other tests/*/test_*.c.

LIBS += -luv -lhttp_parser
