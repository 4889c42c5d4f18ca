// chart.js — the dashboard's line charts: plain SVG, no library.
//
// wfChart.render(box, {times, step, series: [{label, values}], unit}) draws
// into the element box one line per series over the sample times (Unix
// seconds, one every `step` seconds); a null value leaves a gap. The <svg>
// carries what it shows as data attributes (data-points: samples with a
// value, data-sum and data-last of the first series), which the browser
// test reads. Hovering shows the values at that time.
'use strict';

(function () {
  const NS = 'http://www.w3.org/2000/svg';
  const W = 600, H = 170, L = 46, R = 10, T = 10, B = 22;

  function el(tag, attrs, text) {
    const e = document.createElementNS(NS, tag);
    for (const k in attrs) e.setAttribute(k, attrs[k]);
    if (text !== undefined) e.textContent = text;
    return e;
  }

  // The smallest "round" number (1, 2, 2.5, 5 times a power of ten) >= v.
  function niceCeil(v) {
    if (!(v > 0)) return 1;
    const p = Math.pow(10, Math.floor(Math.log10(v)));
    for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= v) return m * p;
    return 10 * p;
  }

  function fmt(v, unit) {
    if (v === null || v === undefined) return '–';
    let s;
    if (v >= 1000) s = (v / 1000).toFixed(v >= 10000 ? 0 : 1) + 'k';
    else if (v >= 100 || Number.isInteger(v)) s = String(Math.round(v));
    else if (v >= 1) s = v.toFixed(1);
    else s = v.toPrecision(2);
    return unit ? s + ' ' + unit : s;
  }

  function ago(seconds) {
    if (seconds <= 0) return 'now';
    return seconds >= 60 ? '-' + Math.round(seconds / 60) + 'm' : '-' + Math.round(seconds) + 's';
  }

  function render(box, opts) {
    const times = opts.times, n = times.length, step = opts.step || 10;
    let max = 0, points = 0;
    for (const s of opts.series)
      for (const v of s.values) if (v !== null && v > max) max = v;
    const top = niceCeil(max);
    const x = i => L + (n <= 1 ? 0 : (i / (n - 1)) * (W - L - R));
    const y = v => T + (1 - v / top) * (H - T - B);

    const svg = el('svg', { viewBox: `0 0 ${W} ${H}`, class: 'chart', role: 'img',
                            'aria-label': opts.title || '' });
    for (let g = 0; g <= 4; g++) {
      const v = (top * g) / 4, yy = y(v);
      svg.appendChild(el('line', { x1: L, x2: W - R, y1: yy, y2: yy, class: 'grid' }));
      svg.appendChild(el('text', { x: L - 6, y: yy + 4, class: 'ylabel' }, fmt(v, '')));
    }
    const end = n ? times[n - 1] + step : 0;
    for (const i of [0, Math.floor((n - 1) / 2), n - 1]) {
      if (i < 0) continue;
      const anchor = i === 0 ? 'start' : i === n - 1 ? 'end' : 'middle';
      svg.appendChild(el('text', { x: x(i), y: H - 6, class: 'xlabel', 'text-anchor': anchor },
                         i === n - 1 ? 'now' : ago(end - times[i])));
    }
    opts.series.forEach((s, k) => {
      // One polyline per run of values; nulls are gaps.
      let run = [];
      const flush = () => {
        if (run.length === 1)
          svg.appendChild(el('circle', { cx: run[0][0], cy: run[0][1], r: 2, class: 'dot s' + k }));
        else if (run.length)
          svg.appendChild(el('polyline', { points: run.map(p => p.join(',')).join(' '),
                                           class: 'line s' + k, fill: 'none' }));
        run = [];
      };
      s.values.forEach((v, i) => {
        if (v === null || v === undefined) return flush();
        if (k === 0) points++;
        run.push([x(i).toFixed(1), y(v).toFixed(1)]);
      });
      flush();
    });

    // Hover: a cursor line and the values at that sample.
    const cursor = el('line', { y1: T, y2: H - B, class: 'cursor', visibility: 'hidden' });
    const tip = el('text', { x: L + 4, y: T + 12, class: 'tip', visibility: 'hidden' });
    svg.appendChild(cursor);
    svg.appendChild(tip);
    svg.addEventListener('mousemove', ev => {
      const r = svg.getBoundingClientRect();
      const px = ((ev.clientX - r.left) / r.width) * W;
      const i = Math.max(0, Math.min(n - 1, Math.round(((px - L) / (W - L - R)) * (n - 1))));
      cursor.setAttribute('x1', x(i));
      cursor.setAttribute('x2', x(i));
      cursor.setAttribute('visibility', 'visible');
      tip.textContent = ago(end - times[i]) + ': ' +
        opts.series.map(s => s.label + ' ' + fmt(s.values[i], opts.unit)).join(', ');
      tip.setAttribute('visibility', 'visible');
    });
    svg.addEventListener('mouseleave', () => {
      cursor.setAttribute('visibility', 'hidden');
      tip.setAttribute('visibility', 'hidden');
    });

    const first = opts.series[0] ? opts.series[0].values : [];
    const sum = first.reduce((a, v) => a + (v || 0), 0);
    svg.setAttribute('data-points', String(points));
    svg.setAttribute('data-sum', String(Math.round(sum * 1000) / 1000));
    svg.setAttribute('data-last', String(first.length ? first[first.length - 1] : ''));
    svg.setAttribute('data-max', String(max));

    const legend = document.createElement('div');
    legend.className = 'legend';
    opts.series.forEach((s, k) => {
      const sw = document.createElement('span');
      sw.className = 'swatch s' + k;
      legend.appendChild(sw);
      legend.appendChild(document.createTextNode(s.label + (opts.unit ? ' (' + opts.unit + ')' : '') + ' '));
    });
    box.replaceChildren(svg, legend);
  }

  window.wfChart = { render, fmt };
})();
