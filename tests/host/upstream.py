#!/usr/bin/env python3
"""upstream.py — the HTTP server outbound-HTTP tests call (http_tests.sh).

Listens on 127.0.0.1 at a free port, writes "port N" to stdout once ready,
and appends one line to COUNT_FILE per TCP connection it accepts, so a
test can prove that a refused request never connected.

  /echo?status=N   answers N (default 200) with X-Upstream: yes and a body
                   naming the method, the guest's x-from-guest header and
                   the request body
  /redirect        302 to /echo (the guest must see the 302)
  /big?bytes=N     N bytes of 'x'
  /slow?ms=N       answers 200 after N ms
  /hang            never answers (until the test stops the server)
"""
import http.server
import socketserver
import sys
import time
import urllib.parse

count_file = sys.argv[1]


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def answer(self, status, body, headers=()):
        self.send_response(status)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def handle_any(self):
        u = urllib.parse.urlparse(self.path)
        q = urllib.parse.parse_qs(u.query)
        n = int(self.headers.get("Content-Length") or 0)
        data = self.rfile.read(n) if n else b""
        if u.path == "/echo":
            status = int(q.get("status", ["200"])[0])
            body = ("method=%s\nfrom-guest=%s\ncontent-type=%s\nreceived=" % (
                self.command, self.headers.get("x-from-guest"),
                self.headers.get("content-type"))).encode() + data
            self.answer(status, body, [("X-Upstream", "yes"), ("Content-Type", "text/plain")])
        elif u.path == "/redirect":
            self.answer(302, b"moved", [("Location", "/echo")])
        elif u.path == "/big":
            self.answer(200, b"x" * int(q.get("bytes", ["0"])[0]))
        elif u.path == "/slow":
            time.sleep(int(q.get("ms", ["0"])[0]) / 1000)
            self.answer(200, b"slow")
        elif u.path == "/hang":
            time.sleep(3600)
        else:
            self.answer(404, b"no such path")

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = handle_any


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True

    def verify_request(self, request, client_address):
        with open(count_file, "a") as f:
            f.write("connection\n")
        return True


srv = Server(("127.0.0.1", 0), Handler)
print("port %d" % srv.server_address[1], flush=True)
srv.serve_forever()
