# mk/serving.mk — the data plane (src/serving, src/runtime) and the HTTP
# server (src/common/http.c): the libraries they link. Their unit tests are
# tests/serving/test_*.c and tests/common/test_http.c, run by `make
# test-unit` like every other tests/*/test_*.c.

LIBS += -luv -lhttp_parser
