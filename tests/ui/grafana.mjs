// grafana.mjs DASHBOARD.json ADMIN_URL TMPDIR PROMETHEUS — checks the
// Grafana dashboard (deploy/grafana/) against a running daemon:
//   - it is a Grafana dashboard model: schemaVersion, uid, title, a
//     DS_PROMETHEUS datasource input, panels with ids, grid positions and
//     Prometheus targets that use ${DS_PROMETHEUS};
//   - every wasmfn_* name its queries use is a sample name the daemon's
//     /metrics exports now;
//   - a real Prometheus scraping the daemon every second accepts every
//     query (with Grafana's variables filled in) and answers each with at
//     least one series.
// Prints one line per problem; exits 1 if there is any.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';

const [file, adminUrl, tmp, promBin] = process.argv.slice(2);
const problems = [];
const bad = m => problems.push(m);
const sleep = ms => new Promise(r => setTimeout(r, ms));

const dash = JSON.parse(fs.readFileSync(file, 'utf8'));
if (!Number.isInteger(dash.schemaVersion) || dash.schemaVersion < 30) bad('schemaVersion missing or below 30');
if (!dash.uid || !dash.title) bad('uid or title missing');
if (!(dash.__inputs || []).some(i => i.name === 'DS_PROMETHEUS' && i.type === 'datasource' && i.pluginId === 'prometheus'))
  bad('__inputs has no DS_PROMETHEUS prometheus datasource');

const vars = {};
for (const v of (dash.templating && dash.templating.list) || []) {
  if (v.type === 'constant') vars[v.name] = v.query;
  else if (v.type === 'query') vars[v.name] = v.allValue || '.*';
}
// What Grafana substitutes at query time.
vars.__rate_interval = '1m';
vars.__range = '1h';
vars.__interval = '15s';
const fill = expr => expr.replace(/\$\{?(\w+)\}?/g, (m, name) => {
  if (!(name in vars)) bad(`query uses the unknown variable $${name}: ${expr}`);
  return vars[name] ?? m;
});

const queries = [];
const ids = new Set();
for (const p of dash.panels || []) {
  if (!Number.isInteger(p.id) || ids.has(p.id)) bad(`panel "${p.title}": id missing or repeated`);
  ids.add(p.id);
  const g = p.gridPos || {};
  if (![g.h, g.w, g.x, g.y].every(Number.isInteger) || g.x + g.w > 24) bad(`panel "${p.title}": bad gridPos`);
  if (p.type === 'row') continue;
  if (!p.datasource || p.datasource.uid !== '${DS_PROMETHEUS}') bad(`panel "${p.title}": datasource is not \${DS_PROMETHEUS}`);
  if (!Array.isArray(p.targets) || !p.targets.length) bad(`panel "${p.title}": no targets`);
  for (const t of p.targets || []) {
    if (!t.expr || !t.refId) bad(`panel "${p.title}": a target without expr or refId`);
    if (!t.datasource || t.datasource.uid !== '${DS_PROMETHEUS}') bad(`panel "${p.title}" ${t.refId}: datasource is not \${DS_PROMETHEUS}`);
    queries.push({ panel: p.title, expr: t.expr });
  }
}
if (queries.length < 10) bad(`only ${queries.length} queries`);

// The daemon's sample names. Billing's counters appear at metering's
// first flush after the test's requests, which a loaded machine may delay:
// read /metrics until every name is there, for up to 20 s.
const used = new Set();
for (const q of queries) for (const m of q.expr.match(/\bwasmfn_[a-z0-9_]+/g) || []) used.add(m);
for (const v of (dash.templating && dash.templating.list) || [])
  for (const m of (v.definition || '').match(/\bwasmfn_[a-z0-9_]+/g) || []) used.add(m);
let missing = [...used];
for (const end = Date.now() + 20000; missing.length && Date.now() < end;) {
  const text = await (await fetch(adminUrl + '/metrics')).text();
  const exported = new Set(text.split('\n').filter(l => l && !l.startsWith('#')).map(l => l.split(/[{ ]/)[0]));
  missing = [...used].filter(m => !exported.has(m));
  if (missing.length) await new Promise(r => setTimeout(r, 500));
}
for (const m of missing) bad(`metric ${m} is not exported by the daemon`);
console.log(`grafana: ${dash.panels.length} panels, ${queries.length} queries over ${used.size} metric names`);

// A real Prometheus, scraping the daemon every second.
const port = await new Promise(res => {
  const s = net.createServer().listen(0, '127.0.0.1', () => { const p = s.address().port; s.close(() => res(p)); });
});
const target = new URL(adminUrl).host;
const cfg = path.join(tmp, 'prometheus.yml');
fs.writeFileSync(cfg, `global: { scrape_interval: 1s, evaluation_interval: 1s }
scrape_configs:
  - job_name: wasmfn
    static_configs: [ { targets: ['${target}'] } ]
`);
const prom = spawn(promBin, [`--config.file=${cfg}`, `--storage.tsdb.path=${path.join(tmp, 'prometheus-data')}`,
  `--web.listen-address=127.0.0.1:${port}`, '--log.level=warn'], { stdio: ['ignore', 'ignore', 'pipe'] });
let promErr = '';
prom.stderr.on('data', d => { promErr += d; });
const api = async q => {
  const r = await fetch(`http://127.0.0.1:${port}/api/v1/query?query=${encodeURIComponent(q)}`);
  return r.json();
};
try {
  // Three scrapes, so that rate() over them has something to work with.
  let scrapes = 0;
  for (let i = 0; i < 150 && scrapes < 3; i++) {
    await sleep(100);
    try {
      const r = await api('count_over_time(up{job="wasmfn"}[1m])');
      scrapes = r.data && r.data.result[0] ? +r.data.result[0].value[1] : 0;
    } catch { /* not up yet */ }
  }
  if (scrapes < 3) {
    bad(`prometheus did not scrape the daemon 3 times in 15 s: ${promErr.slice(-500)}`);
  } else {
    for (const q of queries) {
      const r = await api(fill(q.expr));
      if (r.status !== 'success') bad(`panel "${q.panel}": Prometheus refused ${q.expr}: ${r.error}`);
      else if (!r.data.result.length) bad(`panel "${q.panel}": no series for ${q.expr}`);
    }
  }
} finally {
  prom.kill('SIGTERM');
}
for (const p of problems) console.log('problem: ' + p);
process.exit(problems.length ? 1 : 0);
