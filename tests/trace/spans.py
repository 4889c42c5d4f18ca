#!/usr/bin/env python3
"""spans.py — checks on the spans an OTLP receiver got (tests/trace).

  spans.py FILE count TRACE
      prints how many spans of trace TRACE arrived.
  spans.py FILE server TRACE PARENT FN COLD TRIGGER
      the one SERVER span of FN in TRACE: its parent is PARENT (a span id,
      or "root"), faas.coldstart is COLD (true, false, or any: then the
      children must match what it says), faas.trigger is
      TRIGGER, the FaaS and http attributes are there; under it a queue
      and a run span (and an instantiate span when cold) inside its time.
      Prints "SPANID INVOCATION_ID".
  spans.py FILE deliveries TRACE PARENT STATUSES
      the CLIENT spans of event deliveries in TRACE, one per attempt, all
      children of PARENT, attempt k answered STATUSES[k] (comma-separated);
      failed ones have status ERROR. Prints their span ids in order.
  spans.py FILE client TRACE PARENT METHOD URL STATUS
      the one CLIENT span of a guest's outbound request in TRACE: a child
      of PARENT with http.request.method METHOD, url.full URL and
      http.response.status_code STATUS (status ERROR when it is >= 400),
      inside its parent's time. Prints its span id.

Exits 1 with a one-line reason when a check fails.
"""
import json
import sys

SERVER, CLIENT, INTERNAL = 2, 3, 1


def load(path):
    spans = []
    try:
        lines = open(path).read().splitlines()
    except FileNotFoundError:
        lines = []
    for line in lines:
        for rs in json.loads(line)["resourceSpans"]:
            names = {a["key"]: a["value"].get("stringValue")
                     for a in rs["resource"]["attributes"]}
            assert names.get("service.name") == "wasmfn", names
            for ss in rs["scopeSpans"]:
                for s in ss["spans"]:
                    s["attrs"] = {a["key"]: next(iter(a["value"].values()))
                                  for a in s.get("attributes", [])}
                    spans.append(s)
    return spans


def fail(msg):
    print(msg)
    sys.exit(1)


def times(s):
    return int(s["startTimeUnixNano"]), int(s["endTimeUnixNano"])


def check_ids(s):
    for k, n in (("traceId", 32), ("spanId", 16)):
        v = s[k]
        if len(v) != n or v.strip("0123456789abcdef"):
            fail(f"span {s['name']}: {k} {v!r} is not {n} lower-case hex digits")


def main():
    path, cmd, trace = sys.argv[1], sys.argv[2], sys.argv[3]
    spans = [s for s in load(path) if s["traceId"] == trace]
    for s in spans:
        check_ids(s)
    if cmd == "count":
        print(len(spans))
        return
    if cmd == "server":
        parent, fn, cold, trigger = sys.argv[4:8]
        srv = [s for s in spans if s["kind"] == SERVER and s["attrs"].get("faas.name") == fn]
        if len(srv) != 1:
            fail(f"{len(srv)} SERVER spans of {fn} in trace {trace} (want 1); "
                 f"spans: {[x['name'] for x in spans]}")
        s = srv[0]
        a = s["attrs"]
        want_parent = None if parent == "root" else parent
        if s.get("parentSpanId") != want_parent:
            fail(f"server span parent {s.get('parentSpanId')}, want {want_parent}")
        if cold == "any":  # a call that may or may not find a warm instance
            cold = "true" if a.get("faas.coldstart") is True else "false"
        if a.get("faas.coldstart") is not (cold == "true"):
            fail(f"faas.coldstart {a.get('faas.coldstart')}, want {cold}")
        if a.get("faas.trigger") != trigger:
            fail(f"faas.trigger {a.get('faas.trigger')}, want {trigger}")
        if not str(a.get("faas.version", "")).startswith(fn + "-0000"):
            fail(f"faas.version {a.get('faas.version')}")
        inv = a.get("faas.invocation_id", "")
        if len(inv) != 32:
            fail(f"faas.invocation_id {inv!r}")
        if a.get("http.request.method") not in ("GET", "POST"):
            fail(f"http.request.method {a.get('http.request.method')}")
        if a.get("http.response.status_code") not in ("200", "204"):
            fail(f"http.response.status_code {a.get('http.response.status_code')}")
        if s["name"] != f"{a['http.request.method']} /fn/{fn}":
            fail(f"server span name {s['name']!r}")
        t0, t1 = times(s)
        # Its INTERNAL children (CLIENT children are the guest's outbound
        # requests, checked by "client").
        kids = {c["name"]: c for c in spans
                if c.get("parentSpanId") == s["spanId"] and c["kind"] == INTERNAL}
        want = {"queue", "run"} | ({"instantiate"} if cold == "true" else set())
        if not want <= set(kids) or (cold != "true" and "instantiate" in kids):
            fail(f"children of the server span: {sorted(kids)}, want {sorted(want)}")
        for c in kids.values():
            c0, c1 = times(c)
            if c["kind"] != INTERNAL or not (t0 <= c0 <= c1 <= t1):
                fail(f"child {c['name']} [{c0},{c1}] not inside the server span [{t0},{t1}]")
        if kids["run"]["startTimeUnixNano"] < kids["queue"]["endTimeUnixNano"]:
            fail("the run starts before the queue wait ends")
        print(s["spanId"], inv)
        return
    if cmd == "deliveries":
        parent, statuses = sys.argv[4], sys.argv[5].split(",")
        dl = [s for s in spans if s["kind"] == CLIENT]
        dl.sort(key=lambda s: int(s["attrs"].get("wasmfn.delivery.attempt", "0")))
        got = [(s["attrs"].get("wasmfn.delivery.attempt"),
                s["attrs"].get("http.response.status_code")) for s in dl]
        want = [(str(k + 1), st) for k, st in enumerate(statuses)]
        if got != want:
            fail(f"deliveries (attempt, status) {got}, want {want}")
        for s in dl:
            if s.get("parentSpanId") != parent:
                fail(f"attempt {s['attrs']['wasmfn.delivery.attempt']}: parent "
                     f"{s.get('parentSpanId')}, want {parent}")
            failed = not s["attrs"]["http.response.status_code"].startswith("2")
            if (s["status"].get("code") == 2) != failed:
                fail(f"attempt {s['attrs']['wasmfn.delivery.attempt']}: status {s['status']}")
            if not s["attrs"].get("cloudevents.event_id"):
                fail("a delivery span without cloudevents.event_id")
        print(" ".join(s["spanId"] for s in dl))
        return
    if cmd == "client":
        parent, method, url, status = sys.argv[4:8]
        cl = [s for s in spans if s["kind"] == CLIENT and "url.full" in s["attrs"]]
        if len(cl) != 1:
            fail(f"{len(cl)} outbound CLIENT spans in trace {trace} (want 1); "
                 f"spans: {[x['name'] for x in spans]}")
        s = cl[0]
        a = s["attrs"]
        if s.get("parentSpanId") != parent:
            fail(f"client span parent {s.get('parentSpanId')}, want {parent}")
        got = (s["name"], a.get("http.request.method"), a.get("url.full"),
               a.get("http.response.status_code"))
        if got != (method, method, url, status):
            fail(f"client span (name, method, url.full, status) {got}, "
                 f"want {(method, method, url, status)}")
        if (s["status"].get("code") == 2) != (int(status) >= 400):
            fail(f"client span status {s['status']} for HTTP {status}")
        par = [p for p in spans if p["spanId"] == parent]
        if par:
            p0, p1 = times(par[0])
            c0, c1 = times(s)
            if not (p0 <= c0 <= c1 <= p1):
                fail(f"client span [{c0},{c1}] not inside its parent [{p0},{p1}]")
        print(s["spanId"])
        return
    fail(f"unknown check {cmd}")


main()
