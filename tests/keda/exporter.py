"""tests/keda/exporter.py PORT FILE — a Prometheus exporter the test
controls: GET /metrics answers `wasmfn_test_queue V`, V read from FILE at
each scrape (the test writes it)."""
import http.server
import sys

port, path = int(sys.argv[1]), sys.argv[2]


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        with open(path) as f:
            value = f.read().strip() or "0"
        body = ("# TYPE wasmfn_test_queue gauge\nwasmfn_test_queue %s\n" % value).encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; version=0.0.4")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


http.server.HTTPServer(("127.0.0.1", port), Handler).serve_forever()
