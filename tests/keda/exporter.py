"""tests/keda/exporter.py PORT FILE [TLSPORT CERTDIR] — a Prometheus exporter
the test controls: GET /metrics answers `wasmfn_test_queue V` (and
`wasmfn_test_jobs{queue="main"} V`, beside a series of another queue), V read
from FILE at each scrape (the test writes it). For the metrics-api trigger,
GET /api/stats answers the same V as JSON ({"components": {"worker":
{"tasks": V}}}), only with the header X-API-KEY: k3y (else 401), and GET
/api/stats.yaml as YAML. With TLSPORT, the same over HTTPS on that port
(CERTDIR/server.pem and server.key), only to a client whose certificate
CERTDIR/ca.pem signed."""
import http.server
import json
import ssl
import sys
import threading

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
        if self.path == "/api/stats.yaml":
            body = "components:\n  worker:\n    tasks: %s\n" % value
            self.answer(200, "application/yaml", body.encode())
            return
        body = ("# TYPE wasmfn_test_queue gauge\nwasmfn_test_queue %s\n"
                "# TYPE wasmfn_test_jobs gauge\n"
                "wasmfn_test_jobs{queue=\"other\"} 1000\n"
                "wasmfn_test_jobs{queue=\"main\"} %s\n" % (value, value)).encode()
        self.answer(200, "text/plain; version=0.0.4", body)

    def log_message(self, *args):
        pass


if len(sys.argv) > 4:
    tls_port, certs = int(sys.argv[3]), sys.argv[4]
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(certs + "/server.pem", certs + "/server.key")
    ctx.load_verify_locations(certs + "/ca.pem")
    ctx.verify_mode = ssl.CERT_REQUIRED
    tls = http.server.ThreadingHTTPServer(("127.0.0.1", tls_port), Handler)
    tls.socket = ctx.wrap_socket(tls.socket, server_side=True)
    threading.Thread(target=tls.serve_forever, daemon=True).start()

http.server.HTTPServer(("127.0.0.1", port), Handler).serve_forever()
