"""tests/keda/exporter.py PORT FILE — a Prometheus exporter the test
controls: GET /metrics answers `wasmfn_test_queue V`, V read from FILE at
each scrape (the test writes it). GET /api/stats answers the same V as JSON
({"components": {"worker": {"tasks": V}}}) for the metrics-api trigger,
only with the header X-API-KEY: k3y (else 401)."""
import http.server
import json
import sys

port, path = int(sys.argv[1]), sys.argv[2]


class Handler(http.server.BaseHTTPRequestHandler):
    def answer(self, status, ctype, body):
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        with open(path) as f:
            value = f.read().strip() or "0"
        if self.path == "/api/stats":
            if self.headers.get("X-API-KEY") != "k3y":
                self.answer(401, "text/plain", b"no key\n")
                return
            doc = {"components": {"worker": {"tasks": float(value)}}}
            self.answer(200, "application/json", json.dumps(doc).encode())
            return
        body = ("# TYPE wasmfn_test_queue gauge\nwasmfn_test_queue %s\n" % value).encode()
        self.answer(200, "text/plain; version=0.0.4", body)

    def log_message(self, *args):
        pass


http.server.HTTPServer(("127.0.0.1", port), Handler).serve_forever()
