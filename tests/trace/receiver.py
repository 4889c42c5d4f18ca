#!/usr/bin/env python3
"""receiver.py — the trace suite's servers in one process (stdlib only).

  POST /v1/traces   an OTLP/HTTP JSON export: the body is appended, as one
                    line, to DIR/spans.jsonl; answers 200 {}.
  GET /upstream     an upstream for guests' outbound requests: answers
                    ?status=N (200 by default) with the body "upstream";
                    the request's traceparent goes to DIR/upstream.jsonl.
  POST /sink        an event sink: answers 500 to the first FAILS deliveries
                    of each event (by ce-id) and 204 after; every delivery's
                    ce-id, traceparent and answer go to DIR/sink.jsonl.

Usage: receiver.py DIR FAILS. Listens on 127.0.0.1, a free port, written to
DIR/port once it listens.
"""
import http.server
import json
import os
import sys
import threading

DIR = sys.argv[1]
FAILS = int(sys.argv[2])
lock = threading.Lock()
seen = {}


def append(name, line):
    with lock, open(os.path.join(DIR, name), "a") as f:
        f.write(line + "\n")


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def answer(self, code, body=b""):
        self.send_response(code)
        self.send_header("Content-Length", str(len(body)))
        if body:
            self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        path, _, query = self.path.partition("?")
        if path != "/upstream":
            self.answer(404)
            return
        status = int(query[len("status="):]) if query.startswith("status=") else 200
        append("upstream.jsonl", json.dumps({"traceparent": self.headers.get("traceparent")}))
        self.send_response(status)
        self.send_header("Content-Length", "8")
        self.end_headers()
        self.wfile.write(b"upstream")

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        if self.path == "/v1/traces":
            if self.headers.get("Content-Type") != "application/json":
                self.answer(415)
                return
            append("spans.jsonl", json.dumps(json.loads(body)))
            self.answer(200, b"{}")
        elif self.path == "/sink":
            ce_id = self.headers.get("ce-id", "")
            with lock:
                seen[ce_id] = seen.get(ce_id, 0) + 1
                n = seen[ce_id]
            code = 500 if n <= FAILS else 204
            append("sink.jsonl", json.dumps({
                "id": ce_id, "attempt": n, "status": code,
                "traceparent": self.headers.get("traceparent"),
                "ce_traceparent": self.headers.get("ce-traceparent")}))
            self.answer(code)
        else:
            self.answer(404)


server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
with open(os.path.join(DIR, "port.tmp"), "w") as f:
    f.write(str(server.server_address[1]))
os.rename(os.path.join(DIR, "port.tmp"), os.path.join(DIR, "port"))
server.serve_forever()
