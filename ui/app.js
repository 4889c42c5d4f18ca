// app.js — the wasmfn dashboard (docs/dashboard.md). Two pages, chosen by
// the URL's fragment: the overview (#/) and one function (#/fn/NAME).
//
// Auth: the admin token typed into the login form is kept in
// sessionStorage (this tab only, gone when it closes) and sent as
// "Authorization: Bearer" on every fetch; it is never put in a URL or a
// cookie. A 401 logs out.
//
// Everything shown is built with textContent / createElement, never
// innerHTML: function names, log lines and event specs are data.
'use strict';

(function () {
  const KEY = 'wasmfn.token';
  const REFRESH_MS = 2000;
  const LOG_LINES = 300;
  let generation = 0;       // bumped on every navigation: stale loops stop
  let logAbort = null;      // the open log stream, if any

  const $ = id => document.getElementById(id);

  function h(tag, attrs, ...kids) {
    const e = document.createElement(tag);
    for (const k in attrs || {}) {
      const v = attrs[k];
      if (v === null || v === undefined || v === false) continue;
      if (k === 'class') e.className = v;
      else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
      else e.setAttribute(k, v === true ? '' : v);
    }
    for (const kid of kids.flat()) {
      if (kid === null || kid === undefined || kid === false) continue;
      e.appendChild(typeof kid === 'object' ? kid : document.createTextNode(String(kid)));
    }
    return e;
  }

  // ---- the admin API ---------------------------------------------------

  class AuthError extends Error {}

  async function api(path, opts = {}) {
    const token = sessionStorage.getItem(KEY);
    if (!token) throw new AuthError('not logged in');
    const res = await fetch(path, {
      headers: { Authorization: 'Bearer ' + token },
      cache: 'no-store',
      signal: opts.signal,
    });
    if (res.status === 401) throw new AuthError('the token was refused');
    if (opts.raw) return res;
    const body = await res.json().catch(() => null);
    if (!res.ok) throw new Error((body && body.error) || res.status + ' ' + res.statusText);
    return body;
  }

  // A call whose failure (other than auth) is shown in place, not fatal.
  const soft = p => p.catch(e => {
    if (e instanceof AuthError) throw e;
    return { error: e.message };
  });

  // Local midnight, for "cost so far today".
  function midnight() {
    const d = new Date();
    d.setHours(0, 0, 0, 0);
    return d.toISOString().replace(/\.\d+Z$/, 'Z');
  }

  // ---- formatting ------------------------------------------------------

  function ms(v) {
    if (v === null || v === undefined) return '–';
    if (v < 1) return (v * 1000).toFixed(0) + ' µs';
    if (v < 100) return v.toFixed(v < 10 ? 2 : 1) + ' ms';
    if (v < 10000) return v.toFixed(0) + ' ms';
    return (v / 1000).toFixed(1) + ' s';
  }
  const rate = v => (v === null || v === undefined ? '–' : v < 10 ? v.toFixed(2) : v.toFixed(1));
  const pct = v => (v === null || v === undefined ? '–' : (v * 100).toFixed(v < 0.1 ? 1 : 0) + ' %');
  function bytes(v) {
    if (!v && v !== 0) return '–';
    const u = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
    let i = 0;
    while (v >= 1024 && i < u.length - 1) { v /= 1024; i++; }
    return (i ? v.toFixed(v < 10 ? 1 : 0) : v) + ' ' + u[i];
  }
  const cost = v => (v === null || v === undefined ? '–' : v.toFixed(6));
  const time = t => new Date(t).toLocaleTimeString();

  function traffic(fn) {
    return (fn.traffic || []).map(t =>
      (t.revisionName || '?') + ' ' + t.percent + '%' + (t.latestRevision ? ' (latest)' : '')).join(', ');
  }

  // ---- page plumbing ---------------------------------------------------

  function setStatus(text, bad) {
    const s = $('status');
    s.textContent = text;
    s.className = bad ? 'error' : 'muted';
  }

  function showLogin(message) {
    generation++;
    stopLog();
    $('main').hidden = true;
    $('main').replaceChildren();
    $('logout').hidden = true;
    $('crumbs').replaceChildren();
    $('login').hidden = false;
    $('login-error').textContent = message || '';
    setStatus('');
    $('token').focus();
  }

  function logout(message) {
    sessionStorage.removeItem(KEY);
    showLogin(message);
  }

  // Runs tick now and every REFRESH_MS until the page changes.
  function every(tick) {
    const gen = generation;
    const run = async () => {
      if (gen !== generation) return;
      try {
        await tick();
        if (gen === generation) setStatus('updated ' + new Date().toLocaleTimeString());
      } catch (e) {
        if (e instanceof AuthError) return logout('The token was refused: log in again.');
        if (gen === generation) setStatus(e.message, true);
      }
      if (gen === generation) setTimeout(run, REFRESH_MS);
    };
    run();
  }

  function stopLog() {
    if (logAbort) logAbort.abort();
    logAbort = null;
  }

  function crumbs(name) {
    const c = [h('a', { href: '#/' }, 'Functions')];
    if (name) c.push(h('span', { class: 'sep' }, '›'), h('span', {}, name));
    $('crumbs').replaceChildren(...c);
  }

  function route() {
    generation++;
    stopLog();
    if (!sessionStorage.getItem(KEY)) return showLogin();
    $('login').hidden = true;
    $('main').hidden = false;
    $('logout').hidden = false;
    const m = /^#\/fn\/([a-z0-9-]+)$/.exec(location.hash);
    if (m) functionPage(m[1]);
    else overview();
  }

  // ---- the overview ----------------------------------------------------

  function card(title, value, sub, id) {
    return h('div', { class: 'card', id },
      h('div', { class: 'card-title' }, title),
      h('div', { class: 'card-value' }, value),
      sub ? h('div', { class: 'card-sub muted' }, sub) : null);
  }

  function meter(value, max) {
    return h('progress', { value: String(Math.min(value, max)), max: String(max || 1) });
  }

  function renderNode(box, node) {
    const i = node.instances, m = node.memory;
    box.replaceChildren(
      h('h2', {}, 'Node'),
      h('div', { class: 'cards' },
        card('Instances', i.live + ' / ' + i.budget,
          [meter(i.live, i.budget), h('div', {}, i.warm + ' warm, ' + i.busy + ' busy, ' +
            node.queued + ' queued; warm share ' + i.warmBudget)], 'node-instances'),
        card('Instance memory', bytes(m.instanceReservedBytes),
          [meter(m.instanceReservedBytes, m.instanceBudgetBytes),
            h('div', {}, 'reserved of ' + bytes(m.instanceBudgetBytes))]),
        card('Daemon memory', bytes(m.processResidentBytes), 'resident; host has ' +
          bytes(m.hostAvailableBytes) + ' free of ' + bytes(m.hostTotalBytes)),
        card('Modules', String(node.moduleCache.modules), bytes(node.moduleCache.bytes) +
          ' compiled, ' + node.moduleCache.nativeModules + ' native; ' + node.workers + ' workers')));
  }

  function renderFunctions(box, fns, stats, usage) {
    const byName = {};
    for (const s of stats.functions) byName[s.name] = s;
    const costs = {};
    if (Array.isArray(usage)) for (const u of usage) costs[u.function] = u.cost;
    if (!fns.length) {
      box.replaceChildren(h('p', { class: 'muted' }, 'No function deployed yet: ',
        h('code', {}, 'wasmfn deploy NAME F.wasm'), '.'));
      return;
    }
    const rows = fns.map(fn => {
      const s = byName[fn.name] || {};
      const inst = fn.instances || {};
      return h('tr', { 'data-function': fn.name },
        h('td', {}, h('a', { href: '#/fn/' + fn.name }, fn.name)),
        h('td', {}, fn.latestRevision || '–'),
        h('td', { class: 'small' }, traffic(fn)),
        h('td', { class: 'num', 'data-k': 'instances' }, (inst.warm || 0) + ' / ' + (inst.busy || 0)),
        h('td', { class: 'num', 'data-k': 'rps' }, rate(s.requestsPerSecond)),
        h('td', { class: 'num', 'data-k': 'errors' }, pct(s.errorRate)),
        h('td', { class: 'num', 'data-k': 'p50' }, ms(s.p50Ms)),
        h('td', { class: 'num', 'data-k': 'p99' }, ms(s.p99Ms)),
        h('td', { class: 'num', 'data-k': 'cold' }, (s.coldStarts || 0) +
          (s.coldStartMeanMs !== null && s.coldStartMeanMs !== undefined ? ' · ' + ms(s.coldStartMeanMs) : '')),
        h('td', { class: 'num', 'data-k': 'cost' }, cost(costs[fn.name] || 0)));
    });
    box.replaceChildren(...[h('table', { id: 'functions' },
      h('thead', {}, h('tr', {}, ['Function', 'Revision', 'Traffic', 'Warm / busy', 'Req/s',
        'Errors', 'p50', 'p99', 'Cold starts · mean', 'Cost today'].map(t => h('th', {}, t)))),
      h('tbody', {}, rows)),
      usage && usage.error ? h('p', { class: 'error' }, 'usage: ' + usage.error) : null,
      h('p', { class: 'muted small' }, 'Rates, errors, latency and cold starts over the last ' +
        stats.windowSeconds + ' s; instances now.')].filter(Boolean));
  }

  function sinkOf(spec) {
    const s = spec && (spec.sink || spec.subscriber);
    if (!s) return spec && spec.broker ? 'broker ' + spec.broker : '–';
    if (s.ref) return (s.ref.kind || '') + ' ' + (s.ref.name || '');
    return s.uri || '–';
  }

  function renderEvents(box, ev) {
    if (ev.error) {
      box.replaceChildren(h('h2', {}, 'Event sources'), h('p', { class: 'muted' }, ev.error));
      return;
    }
    const items = ev.filter(o => o.kind !== 'Broker');
    if (!items.length) {
      box.replaceChildren(h('h2', {}, 'Event sources'),
        h('p', { class: 'muted' }, 'No event source or trigger applied.'));
      return;
    }
    const num = v => (v === undefined ? '–' : String(v));
    box.replaceChildren(h('h2', {}, 'Event sources'), h('table', { id: 'sources' },
      h('thead', {}, h('tr', {}, ['Kind', 'Name', 'Sink', 'Backlog', 'Parallelism', 'Delivered',
        'Dead-lettered'].map(t => h('th', {}, t)))),
      h('tbody', {}, items.map(o => h('tr', { 'data-source': o.name },
        h('td', {}, o.kind), h('td', {}, o.name), h('td', {}, sinkOf(o.spec)),
        h('td', { class: 'num', 'data-k': 'backlog' }, num(o.status.backlog)),
        h('td', { class: 'num' }, num(o.status.parallelism)),
        h('td', { class: 'num' }, num(o.status.delivered)),
        h('td', { class: 'num' }, num(o.status.deadLettered)))))));
  }

  // "cron 1 / 1, metrics-api – / 5": each trigger's last value against its target.
  function triggersText(so) {
    const num = v => (v === null || v === undefined ? '–' : String(+v.toFixed(3)));
    return (so.status.triggers || []).map(t => t.type + ' ' + num(t.value) + ' / ' + num(t.target))
      .join(', ');
  }

  function scaledState(so) {
    const st = so.status;
    if (st.paused) return 'paused' + (st.pausedReplicas !== undefined ? ' at ' + st.pausedReplicas : '');
    if (st.fallback) return 'fallback';
    return st.active ? 'active' : 'inactive';
  }

  // KEDA ScaledObjects: which Service each scales, its triggers' values,
  // the count it decided and its last error.
  function renderScaling(box, sos) {
    const title = h('h2', {}, 'Scaling (KEDA)');
    if (sos.error) {
      box.replaceChildren(title, h('p', { class: 'muted' }, sos.error));
      return;
    }
    if (!sos.length) {
      box.replaceChildren(title, h('p', { class: 'muted' }, 'No ScaledObject applied.'));
      return;
    }
    box.replaceChildren(title, h('table', { id: 'scaledobjects' },
      h('thead', {}, h('tr', {}, ['ScaledObject', 'Service', 'Triggers (value / target)', 'State',
        'Desired', 'Min–max', 'Last poll', 'Last error'].map(t => h('th', {}, t)))),
      h('tbody', {}, sos.map(so => h('tr', { 'data-scaledobject': so.name,
        class: so.status.lastError ? 'bad' : '' },
        h('td', {}, so.name),
        h('td', {}, h('a', { href: '#/fn/' + so.scaleTargetRef }, so.scaleTargetRef)),
        h('td', { class: 'small', 'data-k': 'triggers' }, triggersText(so)),
        h('td', { 'data-k': 'state' }, scaledState(so)),
        h('td', { class: 'num', 'data-k': 'desired' },
          so.status.desiredReplicas === null ? '–' : String(so.status.desiredReplicas)),
        h('td', { class: 'num' }, so.minReplicaCount + '–' + so.maxReplicaCount),
        h('td', {}, so.status.lastPollTime ? time(so.status.lastPollTime) : '–'),
        h('td', { class: 'small', 'data-k': 'error' }, so.status.lastError || ''))))));
  }

  function overview() {
    crumbs(null);
    const nodeBox = h('section', { id: 'node' });
    const fnBox = h('div', {});
    const scaleBox = h('section', { id: 'scaling' });
    const evBox = h('section', { id: 'events' });
    $('main').replaceChildren(h('section', {}, h('h2', {}, 'Functions'), fnBox), nodeBox, scaleBox,
      evBox);
    every(async () => {
      const [fns, stats, usage, ev, sos] = await Promise.all([
        api('/v1/functions'), api('/v1/stats?window=1m'),
        soft(api('/v1/usage?since=' + encodeURIComponent(midnight()))), soft(api('/v1/eventing')),
        soft(api('/v1/scaledobjects'))]);
      renderFunctions(fnBox, fns, stats, usage);
      renderNode(nodeBox, stats.node);
      renderScaling(scaleBox, sos);
      renderEvents(evBox, ev);
    });
  }

  // ---- one function ----------------------------------------------------

  function renderRevisions(box, fn) {
    const pctOf = {};
    for (const t of fn.traffic || []) pctOf[t.revisionName] = (pctOf[t.revisionName] || 0) + t.percent;
    box.replaceChildren(h('table', { id: 'revisions' },
      h('thead', {}, h('tr', {}, ['Revision', 'Created', 'Traffic', 'Image', 'Tier', 'Scale (min–max)',
        'Memory', 'Timeout'].map(t => h('th', {}, t)))),
      h('tbody', {}, fn.revisions.slice().reverse().map(r => h('tr', {},
        h('td', {}, r.name + (r.name === fn.latestRevision ? ' (latest)' : '')),
        h('td', {}, new Date(r.created).toLocaleString()),
        h('td', { class: 'num' }, (pctOf[r.name] || 0) + ' %'),
        h('td', { class: 'small mono', title: r.image }, r.imageRef || r.image.slice(0, 19) + '…'),
        h('td', {}, r.tier + (r.tierDetail ? ' (' + r.tierDetail + ')' : '')),
        h('td', { class: 'num' }, r.minScale + '–' + (r.maxScale || '∞')),
        h('td', { class: 'num' }, bytes(r.memoryLimitBytes)),
        h('td', { class: 'num' }, r.timeoutSeconds + ' s'))))));
  }

  function renderInvocations(box, list) {
    if (!list.length) {
      box.replaceChildren(h('p', { class: 'muted' }, 'No invocation yet.'));
      return;
    }
    box.replaceChildren(h('table', { id: 'invocations' },
      h('thead', {}, h('tr', {}, ['Time', 'Revision', 'Trigger', 'Status', 'Duration', 'Cold start',
        'Invocation', 'Trace'].map(t => h('th', {}, t)))),
      h('tbody', {}, list.map(v => h('tr', { class: v.status >= 500 ? 'bad' : '' },
        h('td', {}, time(v.time)), h('td', {}, v.revision), h('td', {}, v.trigger),
        h('td', { class: 'num', 'data-k': 'status' }, String(v.status)),
        h('td', { class: 'num' }, ms(v.durationMs)),
        h('td', {}, v.coldStart ? 'yes' : ''),
        // The ids the logs (wasmfn logs -o json) and the trace's spans
        // carry: from a slow call to its log lines and its trace.
        h('td', { class: 'small mono', 'data-k': 'id' }, v.id || ''),
        h('td', { class: 'small mono', 'data-k': 'trace' }, v.traceId || ''))))));
  }

  function renderCharts(boxes, series) {
    const s = series.samples;
    const times = s.map(x => x.time);
    const pick = k => s.map(x => x[k]);
    const common = { times, step: series.stepSeconds };
    wfChart.render(boxes.rps, Object.assign({ title: 'requests per second', unit: '/s',
      series: [{ label: 'requests', values: pick('requestsPerSecond') },
        { label: 'errors', values: s.map((x, i) => (x.requests ? x.errors * x.requestsPerSecond / x.requests : 0)) }] }, common));
    wfChart.render(boxes.latency, Object.assign({ title: 'latency', unit: 'ms',
      series: [{ label: 'p50', values: pick('p50Ms') }, { label: 'p99', values: pick('p99Ms') }] }, common));
    wfChart.render(boxes.instances, Object.assign({ title: 'instances', unit: '',
      series: [{ label: 'warm', values: pick('warm') }, { label: 'busy', values: pick('busy') }] }, common));
    wfChart.render(boxes.cold, Object.assign({ title: 'cold starts', unit: '',
      series: [{ label: 'cold starts', values: pick('coldStarts') }] }, common));
    const total = s.reduce((a, x) => a + x.requests, 0);
    const colds = s.reduce((a, x) => a + x.coldStarts, 0);
    $('total-requests').textContent = String(total);
    $('total-cold').textContent = String(colds);
  }

  async function followLog(name, pre) {
    stopLog();
    const ctl = new AbortController();
    logAbort = ctl;
    const lines = [];
    const show = text => {
      const atEnd = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 4;
      lines.push(...text.split('\n').filter(l => l.length));
      if (lines.length > LOG_LINES) lines.splice(0, lines.length - LOG_LINES);
      pre.textContent = lines.length ? lines.join('\n') : '(nothing logged yet)';
      if (atEnd) pre.scrollTop = pre.scrollHeight;
    };
    try {
      const res = await api('/v1/functions/' + name + '/logs?follow=1&tail=100', { raw: true, signal: ctl.signal });
      if (!res.ok) throw new Error('logs: ' + res.status);
      show('');
      const reader = res.body.getReader();
      const dec = new TextDecoder();
      let rest = '';
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        rest += dec.decode(value, { stream: true });
        const cut = rest.lastIndexOf('\n');
        if (cut >= 0) {
          show(rest.slice(0, cut));
          rest = rest.slice(cut + 1);
        }
      }
    } catch (e) {
      if (ctl.signal.aborted) return;
      if (e instanceof AuthError) return logout('The token was refused: log in again.');
      pre.textContent += '\n(log stream ended: ' + e.message + ')';
    }
  }

  function functionPage(name) {
    crumbs(name);
    const head = h('div', { class: 'fn-head' });
    const cards = h('div', { class: 'cards', id: 'fn-cards' });
    const box = id => h('div', { class: 'chart-box', id });
    const boxes = { rps: box('chart-rps'), latency: box('chart-latency'),
      instances: box('chart-instances'), cold: box('chart-cold') };
    const revs = h('div', {}), invs = h('div', {});
    const pre = h('pre', { id: 'log', class: 'log' }, '(connecting…)');
    $('main').replaceChildren(head, cards,
      h('section', {}, h('h2', {}, 'Last hour ', h('span', { class: 'muted small' },
        h('span', { id: 'total-requests' }, '0'), ' requests, ',
        h('span', { id: 'total-cold' }, '0'), ' cold starts; 10-second samples')),
        h('div', { class: 'charts' },
          h('figure', {}, h('figcaption', {}, 'Requests per second'), boxes.rps),
          h('figure', {}, h('figcaption', {}, 'Latency p50 / p99'), boxes.latency),
          h('figure', {}, h('figcaption', {}, 'Instances'), boxes.instances),
          h('figure', {}, h('figcaption', {}, 'Cold starts'), boxes.cold))),
      h('section', {}, h('h2', {}, 'Revisions'), revs),
      h('section', {}, h('h2', {}, 'Recent invocations'), invs),
      h('section', {}, h('h2', {}, 'Log'), pre));
    followLog(name, pre);
    const enc = encodeURIComponent(name);
    every(async () => {
      const [fn, series, stats, recent, usage, sos] = await Promise.all([
        api('/v1/functions/' + enc), api('/v1/functions/' + enc + '/series?window=1h'),
        api('/v1/stats?window=1m'), api('/v1/functions/' + enc + '/invocations?limit=20'),
        soft(api('/v1/usage?function=' + enc + '&since=' + encodeURIComponent(midnight()))),
        soft(api('/v1/scaledobjects'))]);
      const so = Array.isArray(sos) ? sos.find(o => o.scaleTargetRef === name) : null;
      const s = stats.functions.find(f => f.name === name) || {};
      const u = Array.isArray(usage) && usage[0] ? usage[0] : {};
      head.replaceChildren(...[h('h1', {}, name),
        h('div', { class: 'muted' }, 'latest revision ', h('b', {}, fn.latestRevision || '–'),
          ' · traffic ', traffic(fn), ' · ', h('code', {}, fn.url)),
        so ? h('div', { class: 'muted', id: 'fn-scaled' }, 'scaled by ScaledObject ',
          h('b', {}, so.name), ' (' + scaledState(so) + ', desired ' +
          (so.status.desiredReplicas === null ? '–' : so.status.desiredReplicas) + '): ' +
          triggersText(so)) : null,
        so && so.status.lastError ? h('p', { class: 'error' }, so.name + ': ' + so.status.lastError)
          : null,
        fn.warnings && fn.warnings.length ? h('p', { class: 'error' }, fn.warnings.join('; ')) : null]
        .filter(Boolean));
      cards.replaceChildren(
        card('Requests/s', rate(s.requestsPerSecond), 'last minute', 'card-rps'),
        card('Errors', pct(s.errorRate), (s.errors || 0) + ' in the last minute'),
        card('Latency p50', ms(s.p50Ms), 'p99 ' + ms(s.p99Ms)),
        card('Cold starts', String(s.coldStarts || 0), 'mean ' + ms(s.coldStartMeanMs)),
        card('Instances', (fn.instances.warm || 0) + ' warm', (fn.instances.busy || 0) + ' busy, ' +
          (fn.queueDepth || 0) + ' queued'),
        card('Cost today', cost(u.cost || 0), (u.requests || 0) + ' requests, ' +
          (u.gb_seconds || 0).toFixed(4) + ' GB-s'));
      renderCharts(boxes, series);
      renderRevisions(revs, fn);
      renderInvocations(invs, recent);
    });
  }

  // ---- start -----------------------------------------------------------

  $('login-form').addEventListener('submit', async ev => {
    ev.preventDefault();
    const t = $('token').value.trim();
    $('token').value = '';
    if (!t) return;
    sessionStorage.setItem(KEY, t);
    try {
      await api('/v1/functions');
    } catch (e) {
      sessionStorage.removeItem(KEY);
      $('login-error').textContent = e instanceof AuthError ? 'That token was refused.' : e.message;
      return;
    }
    route();
  });
  $('logout').addEventListener('click', () => logout(''));
  window.addEventListener('hashchange', route);
  route();
})();
