// sink.js — the HTTP sink the eventing integration tests deliver to. It
// answers deterministically per event and records every delivery.
//
//   node sink.js PORT_FILE
//
// POST /NAME (a "service"): records {svc, id, type, source, time, n, status,
// recv} and answers by the service's name:
//   flaky*    500 when the event's data field n (a number) % 10 == 3, else 200
//   slow*     like flaky, after a 3 ms pause (so a backlog builds up)
//   replier   200 with a reply event in binary mode (ce-type reply.TYPE)
//   anything else: 200
// GET /log?svc=NAME   the records of that service as JSON
// GET /stats          {svc: {count, maxConcurrent}}
// POST /reset         forgets everything
'use strict';
const http = require('http');
const fs = require('fs');

let log = [];
const stats = {};
const inflight = {};

function decide(svc, n) {
  if ((svc.startsWith('flaky') || svc.startsWith('slow')) && Number.isFinite(n) && n % 10 === 3)
    return 500;
  return 200;
}

const server = http.createServer((req, res) => {
  const url = new URL(req.url, 'http://x');
  if (req.method === 'GET' && url.pathname === '/log') {
    const svc = url.searchParams.get('svc');
    res.setHeader('Content-Type', 'application/json');
    res.end(JSON.stringify(log.filter((r) => !svc || r.svc === svc)));
    return;
  }
  if (req.method === 'GET' && url.pathname === '/stats') {
    res.setHeader('Content-Type', 'application/json');
    res.end(JSON.stringify(stats));
    return;
  }
  if (req.method === 'POST' && url.pathname === '/reset') {
    log = [];
    for (const k of Object.keys(stats)) delete stats[k];
    res.end('ok');
    return;
  }
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => {
    const svc = url.pathname.slice(1);
    const body = Buffer.concat(chunks).toString();
    let n = NaN;
    try {
      const d = JSON.parse(body);
      if (d && d.n !== undefined) n = Number(d.n);
    } catch (e) { /* not JSON */ }
    const st = (stats[svc] = stats[svc] || { count: 0, maxConcurrent: 0 });
    inflight[svc] = (inflight[svc] || 0) + 1;
    st.maxConcurrent = Math.max(st.maxConcurrent, inflight[svc]);
    st.count++;
    const status = decide(svc, n);
    const rec = {
      svc, status, n, body,
      id: req.headers['ce-id'], type: req.headers['ce-type'],
      source: req.headers['ce-source'], time: req.headers['ce-time'],
      specversion: req.headers['ce-specversion'],
      contentType: req.headers['content-type'],
      recv: Date.now(),
    };
    for (const [k, v] of Object.entries(req.headers))
      if (k.startsWith('ce-') && !(k.slice(3) in rec)) rec[k.slice(3)] = v;
    log.push(rec);
    const answer = () => {
      inflight[svc]--;
      if (svc === 'replier' && status === 200) {
        res.writeHead(200, {
          'ce-specversion': '1.0',
          'ce-id': 'reply-' + req.headers['ce-id'],
          'ce-source': '/replier',
          'ce-type': 'reply.' + req.headers['ce-type'],
          'Content-Type': 'application/json',
        });
        res.end(JSON.stringify({ replyTo: req.headers['ce-id'] }));
        return;
      }
      res.writeHead(status, { 'Content-Type': 'text/plain' });
      res.end(status === 200 ? 'ok' : 'fail');
    };
    if (svc.startsWith('slow')) setTimeout(answer, 3);
    else answer();
  });
});

server.keepAliveTimeout = 60000;
server.listen(0, '127.0.0.1', () => {
  const tmp = process.argv[2] + '.tmp';
  fs.writeFileSync(tmp, String(server.address().port) + '\n');
  fs.renameSync(tmp, process.argv[2]);
});
