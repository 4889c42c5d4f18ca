// report.mjs — turns the raw results of bench/compare/run.sh into tables and
// plots.
//
//   node bench/compare/report.mjs build/bench-compare
//
// Reads DIR/results.tsv (run, system, function, metric, value), DIR/cold.tsv
// (run, system, microseconds) and DIR/meta.txt; writes DIR/compare.md and
// the plots (gnuplot, bench/compare/plots.gp). With BENCH_WRITE=1 (the
// default) the markdown replaces the text between the compare-bench markers
// of docs/benchmarks.md and the plots go to docs/bench/; with BENCH_WRITE=0
// everything stays in DIR.
//
// Every figure is the median over runs of a per-run value; a ratio is
// computed within each run first (both sides measured minutes apart at most)
// and then its median is taken.
import { readFileSync, writeFileSync, mkdirSync, copyFileSync, existsSync } from 'node:fs';
import { execFileSync } from 'node:child_process';

const dir = process.argv[2] || 'build/bench-compare';
const write = (process.env.BENCH_WRITE ?? '1') !== '0';
const docPath = 'docs/benchmarks.md';
const begin = '<!-- compare-bench:begin -->', end = '<!-- compare-bench:end -->';

const meta = Object.fromEntries(
    readFileSync(`${dir}/meta.txt`, 'utf8').split('\n').filter(Boolean).map((l) => {
        const i = l.indexOf('=');
        return [l.slice(0, i), l.slice(i + 1)];
    }),
);
const results = readFileSync(`${dir}/results.tsv`, 'utf8').split('\n').filter(Boolean)
    .map((l) => l.split('\t')).map(([run, sys, fn, metric, value]) => ({ run: +run, sys, fn, metric, value: +value }));
const cold = existsSync(`${dir}/cold.tsv`)
    ? readFileSync(`${dir}/cold.tsv`, 'utf8').split('\n').filter(Boolean).map((l) => l.split('\t'))
        .map(([run, sys, us]) => ({ run: +run, sys, us: +us }))
    : [];
const commands = existsSync(`${dir}/commands.txt`) ? readFileSync(`${dir}/commands.txt`, 'utf8').trim() : '';
const runs = [...new Set(results.map((r) => r.run))].sort((a, b) => a - b);

const median = (xs) => {
    const s = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
    if (!s.length) return NaN;
    return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const pct = (xs, p) => {
    const s = [...xs].sort((a, b) => a - b);
    if (!s.length) return NaN;
    return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)];
};
const get = (run, sys, fn, metric) => results.find((r) => r.run === run && r.sys === sys && r.fn === fn && r.metric === metric)?.value;
const perRun = (f) => median(runs.map(f));
const fig = (sys, fn, metric) => perRun((run) => get(run, sys, fn, metric));
const ratio = (a, b) => perRun((run) => {
    const x = a(run), y = b(run);
    return x !== undefined && y !== undefined && y !== 0 ? x / y : NaN;
});
const has = (sys, fn, metric) => results.some((r) => r.sys === sys && r.fn === fn && r.metric === metric);

const fmtInt = (x) => (Number.isFinite(x) ? (x < 100 ? x.toFixed(1) : Math.round(x).toLocaleString('en-US')) : '—');
const fmtMs = (us) => {
    if (!Number.isFinite(us)) return '—';
    const ms = us / 1000;
    return ms < 1 ? ms.toFixed(3) : ms < 10 ? ms.toFixed(2) : ms < 100 ? ms.toFixed(1) : ms.toFixed(0);
};
const fmtX = (x) => (Number.isFinite(x) ? (x >= 10 ? x.toFixed(1) : x >= 0.1 ? x.toFixed(2) : x.toPrecision(2)) + '×' : '—');
const fmtPct = (x) => (Number.isFinite(x) ? (x * 100).toFixed(0) + '%' : '—');

const SYSTEMS = ['nginx', 'wasmfn', 'workerd-fresh', 'workerd-reuse', 'node-wasi', 'cgi-native'];
const LABEL = {
    nginx: 'nginx, static 200',
    wasmfn: 'wasmfn (native tier, fresh instance per request)',
    'workerd-fresh': 'workerd, fresh `WebAssembly.Instance` per request',
    'workerd-reuse': 'workerd, one instance reused (memory reset)',
    'node-wasi': 'Node.js WASI, a process per request',
    'cgi-native': 'native CGI, fork/exec per request',
};
const FNS = ['hello', 'hellof', 'transform', 'cpu'];
const FN_LABEL = { hello: 'hello', hellof: 'hello (printf, getenv)', transform: 'JSON transform', cpu: 'CPU kernel' };

const md = [];
const quick = meta.quick === '1';
md.push(`Measured ${meta.date} on ${meta.model} (${meta.nproc} cores, ${meta.memory}, Linux ${meta.kernel}),`);
md.push(`commit ${meta.commit}, with \`make bench\`${quick ? ' QUICK=1 (one short run: not for quoting)' : ''}: ${runs.length} run${runs.length > 1 ? 's' : ''}, each figure the`);
md.push(`median over runs; ratios computed within each run. Node ${meta.node}, workerd ${meta.workerd || 'n/a'},`);
md.push(`nginx ${meta.nginx}, wrk ${meta.wrk}, gcc ${meta.gcc}, clang ${meta.clang}.`);
const loads = runs.map((run) => get(run, 'machine', '-', 'loadavg'));
md.push(`1-minute load average at the start of each run: ${loads.join(', ')} (on an idle machine it is near 0;`);
md.push('anything else running on the cores while the bench runs lowers every figure, the slowest systems most).');
if (meta.workerd_status !== 'ok') {
    md.push('');
    md.push(`**workerd is missing from this run**: ${meta.workerd_status}.`);
}
md.push('');

// --- key ratios ---
const wfHello = (run) => get(run, 'wasmfn', 'hello', 'rps');
const key = [];
key.push(`- wasmfn hello throughput: **${fmtPct(ratio(wfHello, (run) => get(run, 'nginx', 'hello', 'rps')))} of nginx**'s static 200 (target ≥ 50%)`);
key.push(`- wasmfn hello with printf and getenv: **${fmtPct(ratio((run) => get(run, 'wasmfn', 'hellof', 'rps'), (run) => get(run, 'nginx', 'hello', 'rps')))} of nginx** (target ≥ 50%)`);
if (has('workerd-fresh', 'hello', 'rps')) {
    for (const fn of FNS)
        key.push(`- wasmfn ÷ workerd (fresh instance per request), ${FN_LABEL[fn]} req/s: **${fmtX(ratio((run) => get(run, 'wasmfn', fn, 'rps'), (run) => get(run, 'workerd-fresh', fn, 'rps')))}**`);
}
const coldP = (sys, p) => perRun((run) => pct(cold.filter((c) => c.run === run && c.sys === sys).map((c) => c.us), p));
key.push(`- wasmfn cold start (first request to a function with no instance, new connection): **p50 ${fmtMs(coldP('wasmfn', 50))} ms, p99 ${fmtMs(coldP('wasmfn', 99))} ms** (target p99 ≤ 1 ms)`);
key.push(`- cold start p99, others: workerd process start ${fmtMs(coldP('workerd-process', 99))} ms, Node.js WASI process ${fmtMs(coldP('node-wasi', 99))} ms, native CGI fork/exec ${fmtMs(coldP('cgi-native', 99))} ms`);
const kernel = (sys) => (run) => {
    const c = get(run, sys, 'cpu', 'lat_us'), h = get(run, sys, 'hello', 'lat_us');
    return c !== undefined && h !== undefined ? c - h : undefined;
};
key.push(`- CPU kernel, wasmfn ÷ native: **${fmtX(ratio(kernel('wasmfn'), kernel('cgi-native')))}**`);
md.push('Key ratios:');
md.push('');
md.push(...key);
md.push('');

// --- throughput ---
md.push(`### Throughput and latency under load`);
md.push('');
md.push(`\`wrk -t${meta.threads} -c${meta.connections} -d${meta.duration}s --latency\` against each system (the same for all);`);
md.push('latency is wrk\'s, under that load. "errors" counts non-2xx answers and socket errors over all runs.');
md.push('');
md.push('| function | system | req/s | ÷ wasmfn | p50 ms | p99 ms | errors |');
md.push('|---|---|---:|---:|---:|---:|---:|');
for (const fn of FNS) {
    for (const sys of SYSTEMS) {
        if (!has(sys, fn, 'rps')) continue;
        const errs = results.filter((r) => r.sys === sys && r.fn === fn && r.metric === 'errors').reduce((n, r) => n + r.value, 0);
        const rel = sys === 'wasmfn' ? '1' : fmtX(ratio((run) => get(run, sys, fn, 'rps'), (run) => get(run, 'wasmfn', fn, 'rps')));
        md.push(`| ${FN_LABEL[fn]} | ${LABEL[sys]} | ${fmtInt(fig(sys, fn, 'rps'))} | ${rel} | ${fmtMs(fig(sys, fn, 'p50_us'))} | ${fmtMs(fig(sys, fn, 'p99_us'))} | ${errs} |`);
    }
}
md.push('');

// --- cold starts ---
const COLD = [
    ['wasmfn', 'wasmfn: first request to a function deployed with `initial-scale: "0"` (no instance), daemon running'],
    ['workerd-process', 'workerd: process start to the first answer (`workerd serve`, one worker, hello only)'],
    ['node-wasi', 'Node.js WASI: a request = a new `node` process compiling and running the module'],
    ['cgi-native', 'native CGI: a request = fork/exec of the native binary'],
    ['wasmfn-warm', 'for reference: wasmfn, a function with a warm instance'],
    ['nginx', 'for reference: nginx static 200 (the HTTP floor)'],
];
md.push('### Cold starts');
md.push('');
md.push('Time from connect to the last byte of the answer, a new connection per request, requests one at a time');
md.push('(workerd: from the fork of the process). p50 and p99 are per run, then the median over runs.');
md.push('');
md.push('| system | what is measured | samples per run | p50 ms | p99 ms |');
md.push('|---|---|---:|---:|---:|');
for (const [sys, what] of COLD) {
    const n = cold.filter((c) => c.sys === sys && c.run === runs[0]).length;
    if (!n) continue;
    md.push(`| ${sys} | ${what} | ${n} | ${fmtMs(coldP(sys, 50))} | ${fmtMs(coldP(sys, 99))} |`);
}
md.push('');
if (meta.cold_counted !== meta.cold_total)
    md.push(`**Warning**: wasmfn counted ${meta.cold_counted} cold starts for the ${meta.cold_total} first requests (\`wasmfn_cold_starts_total\`): some were not cold.`);
else
    md.push(`wasmfn's own counter agrees: \`wasmfn_cold_starts_total\` summed over the cold-N functions is ${meta.cold_counted}, one per request.`);
md.push('');

// --- CPU kernel ---
md.push('### CPU-bound kernel vs native');
md.push('');
md.push(`\`fns/cpu.c\` (sieve + FNV hash over 1 MiB, 4 rounds), requested ${meta.lat_n} times one at a time on a new connection;`);
md.push('the kernel\'s time is the median request time of `cpu` minus that of `hello` on the same system in the same run,');
md.push('and the ratio divides it by the same difference for native CGI.');
md.push('');
md.push('| system | cpu request ms | hello request ms | kernel ms | kernel ÷ native |');
md.push('|---|---:|---:|---:|---:|');
for (const sys of SYSTEMS) {
    if (!has(sys, 'cpu', 'lat_us')) continue;
    md.push(`| ${LABEL[sys]} | ${fmtMs(fig(sys, 'cpu', 'lat_us'))} | ${fmtMs(fig(sys, 'hello', 'lat_us'))} | ${fmtMs(perRun(kernel(sys)))} | ${sys === 'cgi-native' ? '1' : fmtX(ratio(kernel(sys), kernel('cgi-native')))} |`);
}
md.push('');

// --- memory ---
const MEM = [
    ['wasmfn', `resident set growth of \`wasmfn serve\` for ${meta.mem_n} warm instances of hello (\`--min-scale ${meta.mem_n}\`), ÷ ${meta.mem_n}`],
    ['workerd', `resident set growth of \`workerd\` for ${meta.mem_n} live \`WebAssembly.Instance\`s of hello, ÷ ${meta.mem_n}`],
    ['node-wasi', 'peak resident set of one `node` process running hello (an instance is a process; shared pages counted in full)'],
    ['cgi-native', 'peak resident set of one native hello process (same caveat)'],
];
md.push('### Memory per live instance');
md.push('');
md.push('| system | KiB per instance | how |');
md.push('|---|---:|---|');
for (const [sys, how] of MEM) {
    if (!has(sys, 'hello', 'mem_kib')) continue;
    const v = fig(sys, 'hello', 'mem_kib');
    md.push(`| ${sys} | ${Number.isFinite(v) ? (v < 100 ? v.toFixed(1) : fmtInt(v)) : '—'} | ${how} |`);
}
md.push('');
md.push('Plots: [requests/s](bench/rps.png), [cold-start latency CDF](bench/coldstart-cdf.png), [memory per instance](bench/memory.png).');
md.push('');
md.push('![requests per second per system](bench/rps.png)');
md.push('![cold-start latency CDF](bench/coldstart-cdf.png)');
md.push('![memory per live instance](bench/memory.png)');
md.push('');
md.push('The exact commands (ports from `BENCH_PORT`, default 18400; paths relative to the repository):');
md.push('');
md.push('```');
md.push(commands);
md.push('```');

const text = md.join('\n') + '\n';
writeFileSync(`${dir}/compare.md`, text);
process.stdout.write(text);

// --- plot data ---
const plotDir = `${dir}/plots`;
mkdirSync(plotDir, { recursive: true });
{
    const rows = ['# function ' + SYSTEMS.join(' ')];
    for (const fn of FNS)
        rows.push([fn, ...SYSTEMS.map((s) => (has(s, fn, 'rps') ? fig(s, fn, 'rps').toFixed(1) : 'NaN'))].join(' '));
    writeFileSync(`${plotDir}/rps.dat`, rows.join('\n') + '\n');
}
{
    // one block per system, separated by two blank lines (gnuplot index)
    const blocks = [], names = [];
    for (const [sys] of COLD) {
        const xs = cold.filter((c) => c.sys === sys).map((c) => c.us).sort((a, b) => a - b);
        if (!xs.length) continue;
        names.push(sys);
        blocks.push(xs.map((us, i) => `${(us / 1000).toFixed(4)} ${((i + 1) / xs.length).toFixed(4)}`).join('\n'));
    }
    writeFileSync(`${plotDir}/cold.dat`, blocks.join('\n\n\n') + '\n');
    writeFileSync(`${plotDir}/cold.names`, names.join(' '));
}
{
    const rows = [];
    for (const [sys] of MEM) if (has(sys, 'hello', 'mem_kib')) rows.push(`${sys} ${fig(sys, 'hello', 'mem_kib').toFixed(2)}`);
    writeFileSync(`${plotDir}/memory.dat`, rows.join('\n') + '\n');
}
try {
    execFileSync('gnuplot', ['-e', `dir='${plotDir}'; names='${readFileSync(`${plotDir}/cold.names`, 'utf8')}'`, 'bench/compare/plots.gp'], { stdio: 'inherit' });
} catch (e) {
    console.error(`report.mjs: gnuplot failed: ${e.message}`);
    process.exit(1);
}

if (write) {
    const doc = readFileSync(docPath, 'utf8');
    const a = doc.indexOf(begin), b = doc.indexOf(end);
    if (a < 0 || b < a) {
        console.error(`report.mjs: ${docPath} has no ${begin} ... ${end} markers; not writing`);
        process.exit(1);
    }
    writeFileSync(docPath, doc.slice(0, a + begin.length) + '\n' + text + doc.slice(b));
    mkdirSync('docs/bench', { recursive: true });
    for (const f of ['rps.png', 'coldstart-cdf.png', 'memory.png']) copyFileSync(`${plotDir}/${f}`, `docs/bench/${f}`);
    console.error(`report.mjs: wrote ${docPath} and docs/bench/*.png`);
} else {
    console.error(`report.mjs: BENCH_WRITE=0: results in ${dir}/compare.md and ${plotDir}/*.png only`);
}
