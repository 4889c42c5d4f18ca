// dashboard.mjs ADMIN_URL DATA_URL TOKEN SHOTS_DIR — the web dashboard in
// headless Chromium (Debian's chromium, driven by puppeteer-core), as a
// user sees it:
//   - the login form; a wrong token refused; the right one accepted;
//   - the overview lists the deployed functions with their numbers, the
//     node's capacity, the ScaledObjects (one deciding, one failing) and
//     the event sources; a function's page names its ScaledObject;
//   - a function's page: after requests are sent, its plots and totals
//     move (the charts' data attributes, the request count);
//   - the live log tail shows what a failing function writes;
//   - the token never appears in a URL the page loads (nor in a cookie),
//     nothing is fetched from outside the daemon, no script error, no
//     Content-Security-Policy violation; logging out forgets the token.
// Saves dashboard-login.png, dashboard-overview.png, dashboard-function.png
// into SHOTS_DIR. Prints one line per check; exits 1 if any failed.
import fs from 'node:fs';
import path from 'node:path';
import puppeteer from 'puppeteer-core';

const [admin, data, token, shots] = process.argv.slice(2);
let failed = 0;
const ok = (cond, what, detail) => {
  console.log((cond ? 'ok   ' : 'FAIL ') + what + (cond || detail === undefined ? '' : ': ' + detail));
  if (!cond) failed++;
};
const sleep = ms => new Promise(r => setTimeout(r, ms));
// Polls fn (in node) until it returns a truthy value or ms pass.
async function until(fn, ms) {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn().catch(() => null);
    if (v || Date.now() > end) return v;
    await sleep(100);
  }
}

const exe = process.env.CHROMIUM || ['/usr/bin/chromium', '/usr/bin/chromium-browser'].find(p => fs.existsSync(p));
const browser = await puppeteer.launch({
  executablePath: exe,
  headless: true,
  // Chromium refuses to run as root with its sandbox.
  args: [...(process.getuid && process.getuid() === 0 ? ['--no-sandbox'] : []),
    '--disable-gpu', '--no-first-run', '--disable-dev-shm-usage'],
});
try {
  const page = await browser.newPage();
  await page.setViewport({ width: 1360, height: 900 });
  const urls = [], outside = [], errors = [];
  await page.setRequestInterception(true);
  page.on('request', req => {
    urls.push(req.url());
    // Everything the dashboard needs comes from the daemon: block the rest.
    if (!req.url().startsWith(admin + '/') && !req.url().startsWith('data:')) {
      outside.push(req.url());
      return req.abort();
    }
    req.continue();
  });
  page.on('pageerror', e => errors.push('page error: ' + e.message));
  page.on('console', m => {
    // The 401 of the wrong-token attempt is expected; anything else is not.
    if (m.type() === 'error' && !/401/.test(m.text())) errors.push('console: ' + m.text());
  });

  // ---- login ----
  await page.goto(admin + '/ui/', { waitUntil: 'load' });
  await page.waitForSelector('#login-form', { visible: true });
  ok(await page.$eval('#main', e => getComputedStyle(e).display === 'none'), 'not logged in: the login form, no data');
  if (shots) await page.screenshot({ path: path.join(shots, 'dashboard-login.png') });
  await page.type('#token', 'not-the-token');
  await page.click('#login-form button[type=submit]');
  await page.waitForFunction(() => document.getElementById('login-error').textContent.length > 0, { timeout: 5000 });
  ok(/refused/.test(await page.$eval('#login-error', e => e.textContent)), 'a wrong token is refused');
  await page.type('#token', token);
  await page.click('#login-form button[type=submit]');
  await page.waitForSelector('#functions tr[data-function="hello"]', { timeout: 10000 });
  const names = await page.$$eval('#functions tbody tr', rows => rows.map(r => r.dataset.function));
  ok(['echo', 'fail', 'hello'].every(n => names.includes(n)), 'logged in: the overview lists echo, fail and hello', names);
  ok(await page.$eval('#login', e => getComputedStyle(e).display === 'none'), 'the login form is gone');
  ok(!page.url().includes(token), 'the token is not in the URL', page.url());
  ok(await page.evaluate(() => document.cookie === ''), 'no cookie');
  ok(await page.evaluate(t => sessionStorage.getItem('wasmfn.token') === t, token), 'the token is in sessionStorage');

  // The overview's numbers: fail's error rate, the node, the PingSource.
  await page.waitForFunction(() => {
    const c = document.querySelector('#functions tr[data-function="fail"] td[data-k="errors"]');
    return c && c.textContent.startsWith('100');
  }, { timeout: 5000 }).catch(() => {});
  const failErr = await page.$eval('#functions tr[data-function="fail"] td[data-k="errors"]', e => e.textContent);
  ok(failErr.startsWith('100'), 'fail shows a 100 % error rate', failErr);
  const helloCold = await page.$eval('#functions tr[data-function="hello"] td[data-k="cold"]', e => e.textContent);
  ok(/^[1-9]\d* · \d/.test(helloCold), 'hello shows its cold starts and their mean time', helloCold);
  const inst = await page.$eval('#node-instances .card-value', e => e.textContent);
  ok(/^\d+ \/ \d+$/.test(inst), 'the node card shows instances of the budget', inst);
  await page.waitForSelector('#sources tr[data-source="heartbeat"]', { timeout: 5000 }).catch(() => {});
  const backlog = await page.$eval('#sources tr[data-source="heartbeat"] td[data-k="backlog"]', e => e.textContent).catch(() => null);
  ok(backlog !== null && /^\d+$/.test(backlog), 'the PingSource is listed with its backlog', backlog);
  // The scaling table: echo's cron window decided 2, fail's trigger fails.
  const soRow = (name, k) => page.$eval(`#scaledobjects tr[data-scaledobject="${name}"] td[data-k="${k}"]`,
    e => e.textContent).catch(() => null);
  const echoSo = await until(async () => ((await soRow('echo-scaler', 'desired')) === '2' ?
    { desired: '2', state: await soRow('echo-scaler', 'state'), triggers: await soRow('echo-scaler', 'triggers') } : null), 8000);
  ok(echoSo && echoSo.state === 'active' && echoSo.triggers === 'cron 2 / 1',
     'the scaling table shows echo-scaler active, its cron trigger 2 / 1 (desiredReplicas against a target of 1), desired 2', JSON.stringify(echoSo));
  const failSo = await until(async () => {
    const e = await soRow('fail-scaler', 'error');
    return e && e.includes('127.0.0.1:1') ? e : null;
  }, 8000);
  ok(failSo !== null, "the scaling table shows fail-scaler's last error", failSo);
  if (shots) await page.screenshot({ path: path.join(shots, 'dashboard-overview.png'), fullPage: true });

  // ---- a function's page: its plots move after requests ----
  await page.click('#functions tr[data-function="hello"] a');
  await page.waitForSelector('#chart-rps svg', { timeout: 5000 });
  ok(page.url().endsWith('#/fn/hello'), 'clicking hello opens its page', page.url());
  const total = () => page.$eval('#total-requests', e => +e.textContent);
  const before = await total();
  // What the requests/s plot draws (its lines' points).
  const drawn = () => page.$eval('#chart-rps svg', e =>
    [...e.querySelectorAll('.s0')].map(l => l.getAttribute('points') || l.getAttribute('cy')).join('|'));
  const lineBefore = await drawn();
  const N = 20;
  for (let i = 0; i < N; i++) await fetch(data + '/fn/hello/').then(r => r.text());
  const after = await until(async () => ((await total()) >= before + N ? total() : null), 8000);
  ok(after === before + N, `the page counts the ${N} new requests (${before} -> ${before + N})`, after);
  const chart = await page.$eval('#chart-rps svg', e => ({ max: +e.dataset.max, points: +e.dataset.points }));
  const lineAfter = await drawn();
  ok(lineAfter !== lineBefore && chart.max > 0, 'the requests/s plot moved',
     JSON.stringify({ lineBefore, lineAfter: lineAfter.slice(-200), ...chart }));
  // (The current sample may have just begun, empty: look at the whole hour.)
  const lat = await page.$eval('#chart-latency svg', e => ({ max: +e.dataset.max, points: +e.dataset.points }));
  ok(lat.max > 0 && lat.points > 0, 'the latency plot shows p50 and p99', JSON.stringify(lat));
  const rows = await page.$$eval('#invocations tbody tr', rs => rs.map(r => r.querySelector('[data-k=status]').textContent));
  ok(rows.length === 20 && rows.every(s => s === '200'), 'recent invocations: the last 20, all 200', rows);
  const ids = await page.$$eval('#invocations tbody tr', rs => rs.map(r => r.querySelector('[data-k=id]').textContent));
  ok(ids.every(i => /^[0-9a-f]{32}$/.test(i)) && new Set(ids).size === ids.length,
     'recent invocations: each with its own invocation id', ids);
  const revs = await page.$$eval('#revisions tbody tr', rs => rs.length);
  ok(revs === 1, 'the revisions table lists hello-00001', revs);
  // make ui-screenshots: some minutes' worth of uneven traffic first, so
  // that the plots have a shape to show (not part of the test).
  const extra = +(process.env.SHOT_TRAFFIC_S || 0);
  for (let t0 = Date.now(), k = 0; Date.now() - t0 < extra * 1000; k++) {
    const burst = 4 + Math.round(12 * (1 + Math.sin(k / 6)));
    await Promise.all(Array.from({ length: burst }, (_, i) =>
      fetch(data + (i === 0 && k % 9 === 0 ? '/fn/fail/' : '/fn/hello/')).then(r => r.text())));
    await sleep(250);
  }
  if (extra) await sleep(2500);
  if (shots) await page.screenshot({ path: path.join(shots, 'dashboard-function.png'), fullPage: true });

  // ---- the live log tail of a failing function ----
  await page.evaluate(() => { location.hash = '#/fn/fail'; });
  await page.waitForFunction(() => document.getElementById('log') &&
    !document.getElementById('log').textContent.startsWith('(connecting'), { timeout: 5000 });
  const scaled = await until(() => page.$eval('#fn-scaled', e => e.textContent).catch(() => null), 5000);
  ok(scaled !== null && scaled.includes('fail-scaler') && scaled.includes('metrics-api – / 5'),
     "fail's page names the ScaledObject that scales it, with its trigger", scaled);
  await fetch(data + '/fn/fail/?mode=dashboard-test').then(r => r.text());
  const logged = await page.waitForFunction(() => document.getElementById('log').textContent.includes('mode dashboard-test'),
    { timeout: 5000 }).then(() => true, () => false);
  ok(logged, 'the log tail shows the line fail just wrote');

  // ---- the token stays out of URLs; logging out forgets it ----
  ok(!urls.some(u => u.includes(token)), 'the token appeared in no URL the page loaded', urls.filter(u => u.includes(token)));
  ok(outside.length === 0, 'nothing fetched from outside the daemon', outside);
  await page.click('#logout');
  await page.waitForSelector('#login-form', { visible: true });
  ok(await page.evaluate(() => sessionStorage.getItem('wasmfn.token') === null), 'logging out forgets the token');
  ok(errors.length === 0, 'no script error or CSP violation', errors);
} catch (e) {
  ok(false, 'the dashboard test ran to its end', e.stack || e);
} finally {
  await browser.close();
}
process.exit(failed ? 1 : 0);
