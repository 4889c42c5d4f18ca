// recorder.js — the HTTP sink of the source tests (sources_tests.sh) and the
// source bench (bench/eventing/sources.sh). It records every delivery by
// path and by the event data's field n, and fails the poison ones.
//
//   node recorder.js PORT_FILE [POISON_MOD] [DELAY_MS]
//
// POST /NAME     a delivery to sink NAME: 500 when n % POISON_MOD == 7
//                (POISON_MOD 0: never), else 200, after DELAY_MS
// GET /stats     {NAME: {total, unique, dups, ok, failed, maxN, inflightMax,
//                         dupN: the first 30 n values answered 200 more than once,
//                         ce: {id,source,type,subject,...} of the last one,
//                         reasons: the first distinct dead-letter reasons}}
// GET /n?name=NAME   the distinct n values that NAME answered 200 for
'use strict';
const http = require('http');
const fs = require('fs');

const poisonMod = Number(process.argv[3] || 0);
const delay = Number(process.argv[4] || 0);
const sinks = {};

function sink(name) {
  if (!sinks[name])
    sinks[name] = { total: 0, ok: 0, failed: 0, seen: new Map(), okSet: new Set(), inflight: 0,
                    inflightMax: 0, ce: null, reasons: [], okCount: new Map() };
  return sinks[name];
}

const server = http.createServer((req, res) => {
  const url = new URL(req.url, 'http://x');
  if (req.method === 'GET' && url.pathname === '/stats') {
    const out = {};
    for (const [k, s] of Object.entries(sinks)) {
      let dups = 0;
      const dupN = [];
      for (const c of s.seen.values()) if (c > 1) dups += c - 1;
      for (const [n, c] of s.okCount) if (c > 1 && dupN.length < 30) dupN.push(n);
      out[k] = { total: s.total, unique: s.seen.size, okUnique: s.okSet.size, dups, ok: s.ok,
                 failed: s.failed, inflightMax: s.inflightMax, ce: s.ce, reasons: s.reasons,
                 dupN };
    }
    res.setHeader('Content-Type', 'application/json');
    res.end(JSON.stringify(out));
    return;
  }
  if (req.method === 'GET' && url.pathname === '/n') {
    const s = sink(url.searchParams.get('name'));
    res.end(JSON.stringify([...s.okSet]));
    return;
  }
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => {
    const name = url.pathname.slice(1);
    const s = sink(name);
    s.total++;
    s.inflight++;
    s.inflightMax = Math.max(s.inflightMax, s.inflight);
    let n = NaN;
    try {
      n = Number(JSON.parse(Buffer.concat(chunks).toString()).n);
    } catch (e) { /* not JSON */ }
    s.seen.set(n, (s.seen.get(n) || 0) + 1);
    const ce = {};
    for (const [h, v] of Object.entries(req.headers))
      if (h.startsWith('ce-')) ce[h.slice(3)] = v;
    ce.contenttype = req.headers['content-type'];
    s.ce = ce;
    if (ce.deadletterreason && s.reasons.length < 10 && !s.reasons.includes(ce.deadletterreason))
      s.reasons.push(ce.deadletterreason);
    const fail = poisonMod > 0 && !name.startsWith('dlq') && n % poisonMod === 7;
    // A delivery counts once its answer went out to a client still there: a
    // request whose sender died (kill -9) while we waited was not delivered.
    let gone = false;
    res.on('close', () => { if (!res.writableFinished) gone = true; });
    setTimeout(() => {
      s.inflight--;
      if (gone) return;
      if (fail) {
        s.failed++;
        res.statusCode = 500;
        res.end('poison');
      } else {
        res.end('ok', () => {
          s.ok++;
          s.okSet.add(n);
          s.okCount.set(n, (s.okCount.get(n) || 0) + 1);
        });
      }
    }, delay);
  });
});
server.listen(0, '127.0.0.1', () => {
  fs.writeFileSync(process.argv[2], String(server.address().port));
});
