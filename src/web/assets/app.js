// audiencesync status page. Fetches /api/status and /api/sizes, draws every section, and
// refreshes every 30 s. No dependencies; charts are drawn as SVG by lineChart().
//
// Adding a section (e.g. lift or retention once the daemon reports them): add a field to the
// status JSON (src/web/status.rs) and an entry to SECTIONS below whose render() returns the
// section's nodes, or null while there is nothing to show. lineChart() draws any set of time
// series.
'use strict';

const SVG_NS = 'http://www.w3.org/2000/svg';
const REFRESH_MS = 30000;
// Tableau 10: distinct, readable on white, and safe for the common colour-vision deficiencies.
const PALETTE = ['#4e79a7', '#f28e2b', '#e15759', '#76b7b2', '#59a14f',
  '#edc948', '#b07aa1', '#ff9da7', '#9c755f', '#bab0ac'];
const RANGES = [['24h', '24 h'], ['7d', '7 days'], ['30d', '30 days'], ['90d', '90 days']];
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

// What the operator chose; kept across refreshes.
const view = { range: '7d', metric: 'size', hidden: new Set() };
// The last answers, so a click redraws without a fetch.
const data = { status: null, sizes: null };

const SECTIONS = [
  { id: 'overview', title: null, render: renderOverview },
  { id: 'audiences', title: 'Audiences', render: renderAudiences },
  { id: 'sizes', title: 'Audience size over time', render: renderSizes },
  { id: 'sync', title: 'Sync state: destination × audience', render: renderSync },
];

// ---- DOM helpers (text only through textContent: error messages come from networks) ----

function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  setAttrs(el, attrs);
  append(el, children);
  return el;
}

function svg(tag, attrs, ...children) {
  const el = document.createElementNS(SVG_NS, tag);
  setAttrs(el, attrs);
  append(el, children);
  return el;
}

function setAttrs(el, attrs) {
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? '' : String(v));
  }
}

function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

// ---- formatting ----

const fmtInt = (n) => (n === null || n === undefined ? '–' : Number(n).toLocaleString('en-US'));

function fmtCompact(n) {
  const a = Math.abs(n);
  if (a >= 1e6) return `${+(n / 1e6).toFixed(a >= 1e7 ? 0 : 1)}M`;
  if (a >= 1e3) return `${+(n / 1e3).toFixed(a >= 1e4 ? 0 : 1)}k`;
  return String(Math.round(n));
}

const pad = (n) => String(n).padStart(2, '0');
const hhmm = (d) => `${pad(d.getHours())}:${pad(d.getMinutes())}`;
const day = (d) => `${MONTHS[d.getMonth()]} ${d.getDate()}`;

function fmtTime(secs) {
  const d = new Date(secs * 1000);
  return `${day(d)} ${d.getFullYear()}, ${hhmm(d)}`;
}

function fmtSpan(secs) {
  if (secs < 90) return `${Math.round(secs)} s`;
  if (secs < 5400) return `${Math.round(secs / 60)} min`;
  if (secs < 172800) return `${Math.round(secs / 3600)} h`;
  return `${Math.round(secs / 86400)} days`;
}

function fmtAgo(secs, now) {
  if (secs === null || secs === undefined) return 'never';
  const d = now - secs;
  if (d < -1) return `in ${fmtSpan(-d)}`;
  if (d < 60) return 'just now';
  return `${fmtSpan(d)} ago`;
}

const pct = (part, whole) => (whole > 0 ? Math.round((part / whole) * 100) : 0);

// ---- loading ----

async function getJson(url) {
  const r = await fetch(url, { credentials: 'same-origin', cache: 'no-store' });
  if (r.status === 401 || r.status === 403) throw new Error('this page needs the admin token');
  if (!r.ok) throw new Error(`${url}: HTTP ${r.status} ${(await r.text()).trim()}`);
  return r.json();
}

async function loadSizes() {
  data.sizes = await getJson(`/api/sizes?range=${encodeURIComponent(view.range)}&max_points=400`);
}

let timer = null;

async function refresh() {
  clearTimeout(timer);
  try {
    const [status] = await Promise.all([getJson('/api/status'), loadSizes()]);
    data.status = status;
    showProblem(null);
    renderAll();
    document.getElementById('updated').textContent =
      `updated ${hhmm(new Date())}:${pad(new Date().getSeconds())}`;
    document.body.dataset.loaded = 'true';
  } catch (e) {
    showProblem(`Cannot read the daemon's status (${e.message}); retrying every 30 s.`);
  }
  timer = setTimeout(refresh, REFRESH_MS);
}

function showProblem(text) {
  const el = document.getElementById('problem');
  el.hidden = !text;
  el.textContent = text || '';
}

function renderAll() {
  const st = data.status;
  document.getElementById('version').textContent = `v${st.version}`;
  document.getElementById('clock').textContent = `daemon clock ${fmtTime(st.now)}`;
  const main = document.getElementById('sections');
  for (const sec of SECTIONS) renderSection(main, sec);
}

function renderSection(main, sec) {
  let el = document.getElementById(`sec-${sec.id}`);
  if (!el) {
    el = h('section', { id: `sec-${sec.id}`, class: sec.title ? 'card' : 'bare' },
      sec.title ? h('h2', {}, sec.title) : null, h('div', { class: 'body' }));
    main.append(el);
  }
  const body = el.querySelector('.body');
  const nodes = sec.render(data);
  el.hidden = !nodes;
  if (nodes) body.replaceChildren(...[nodes].flat());
}

function rerender(id) {
  const sec = SECTIONS.find((s) => s.id === id);
  if (sec && data.status) renderSection(document.getElementById('sections'), sec);
}

// ---- sections ----

function renderOverview({ status }) {
  const lists = status.sync.lists;
  const parked = lists.filter((l) => l.parked).length;
  const inSync = lists.filter((l) => l.state === 'in_sync').length;
  const tile = (label, value, cls) => h('div', { class: `tile ${cls || ''}` },
    h('div', { class: 'tile-value' }, value), h('div', { class: 'tile-label' }, label));
  const ing = status.ingest;
  return h('div', { class: 'tiles' },
    tile('customers', fmtInt(ing.customers)),
    tile('events ingested', fmtInt(ing.events_ingested)),
    tile('events rejected', fmtInt(ing.events_rejected), ing.events_rejected > 0 ? 'warn' : ''),
    tile('duplicates', fmtInt(ing.events_duplicate)),
    tile('lists in sync', lists.length ? `${inSync} / ${lists.length}` : '–'),
    tile('lists parked', fmtInt(parked), parked > 0 ? 'bad' : ''));
}

const isStage = (name) => name.startsWith('stage_');

function renderAudiences({ status }) {
  const now = status.now;
  const row = (a) => h('tr', { 'data-audience': a.name },
    h('td', {}, h('div', { class: 'name' }, a.name), h('div', { class: 'def' }, a.definition)),
    h('td', { class: 'num' }, fmtInt(a.size)),
    h('td', { class: 'num' }, fmtInt(a.eligible)),
    h('td', { class: 'share' }, shareBar(a.eligible, a.size)),
    h('td', { class: 'when' }, fmtAgo(a.last_changed_at, now)));
  const group = (title, rows) => (rows.length ? [
    h('tr', { class: 'group' }, h('th', { colspan: 5, scope: 'colgroup' }, title)),
    rows.map(row)] : []);
  return h('table', { class: 'grid audiences' },
    h('thead', {}, h('tr', {},
      h('th', { scope: 'col' }, 'Audience'),
      h('th', { scope: 'col', class: 'num' }, 'Members'),
      h('th', { scope: 'col', class: 'num' }, 'Eligible'),
      h('th', { scope: 'col' }, 'Eligible share'),
      h('th', { scope: 'col' }, 'Last change'))),
    h('tbody', {},
      group('Remarketing audiences', status.audiences.filter((a) => !isStage(a.name))),
      group('Lifecycle stages', status.audiences.filter((a) => isStage(a.name)))));
}

function shareBar(part, whole) {
  const p = pct(part, whole);
  const fill = h('span', { class: 'fill' });
  fill.style.width = `${p}%`;
  return h('span', { class: 'share-cell' }, h('span', { class: 'bar' }, fill),
    h('span', { class: 'pct' }, whole > 0 ? `${p}%` : '–'));
}

function renderSizes({ status, sizes }) {
  const toolbar = h('div', { class: 'toolbar' },
    h('div', { class: 'seg', role: 'group', 'aria-label': 'range' },
      RANGES.map(([r, label]) => h('button', {
        type: 'button', class: r === view.range ? 'on' : '', 'aria-pressed': r === view.range,
        onclick: () => { view.range = r; loadSizes().then(() => rerender('sizes'), (e) => showProblem(e.message)); },
      }, label))),
    h('div', { class: 'seg', role: 'group', 'aria-label': 'measure' },
      [['size', 'Members'], ['eligible', 'Eligible']].map(([m, label]) => h('button', {
        type: 'button', class: m === view.metric ? 'on' : '', 'aria-pressed': m === view.metric,
        onclick: () => { view.metric = m; rerender('sizes'); },
      }, label))),
    h('span', { class: 'muted' },
      `${fmtInt(sizes.samples.length)} samples, one every ${fmtSpan(sizes.interval_seconds)}`));
  if (!sizes.samples.length) {
    return [toolbar, h('p', { class: 'empty' },
      `No samples in this range yet: the daemon records every audience's size every ${fmtSpan(sizes.interval_seconds)}.`)];
  }
  const to = Math.max(status.now, sizes.samples[sizes.samples.length - 1].at);
  let from = sizes.samples[0].at;
  if (to - from < 60) from = to - 3600;
  const series = sizes.audiences.map((name, i) => ({
    name,
    color: PALETTE[i % PALETTE.length],
    points: sizes.samples.map((s) => [s.at, s[view.metric][i]]),
  }));
  const chart = (title, list) => h('figure', { class: 'chart-box' },
    h('figcaption', {}, title),
    lineChart({ series: list, from, to, label: `${title}: ${view.metric === 'size' ? 'members' : 'eligible members'} over time` }));
  // Lifecycle stages get their own palette order, so neighbours differ in both charts.
  const stages = series.filter((s) => isStage(s.name)).map((s, i) => ({ ...s, color: PALETTE[(i + 5) % PALETTE.length] }));
  return [toolbar, h('div', { class: 'charts' },
    chart('Remarketing audiences', series.filter((s) => !isStage(s.name))),
    chart('Lifecycle stages', stages))];
}

function renderSync({ status }) {
  const sync = status.sync;
  if (!sync.running) return h('p', { class: 'empty' }, 'The sync engine is not running.');
  if (!sync.lists.length) {
    return h('p', { class: 'empty' }, 'No destinations are configured ([[destinations]] in the config file).');
  }
  const now = status.now;
  const LABEL = { in_sync: 'in sync', pending: 'pending', retrying: 'retrying', throttled: 'throttled', parked: 'parked' };
  const row = (l) => {
    const fill = h('span', { class: 'fill' });
    fill.style.width = `${l.desired > 0 ? Math.min(100, pct(l.confirmed, l.desired)) : (l.confirmed ? 100 : 0)}%`;
    const pending = l.pending_adds || l.pending_removes
      ? [h('span', { class: 'add' }, `+${fmtInt(l.pending_adds)}`), ' ', h('span', { class: 'rm' }, `−${fmtInt(l.pending_removes)}`)]
      : '–';
    const problem = [];
    if (l.last_error) problem.push(h('div', { class: 'err' }, l.last_error));
    if (l.advice) problem.push(h('div', { class: 'fix' }, h('b', {}, 'Fix: '), l.advice));
    if (l.throttled_until) problem.push(h('div', { class: 'muted' }, `throttled by the network until ${fmtTime(l.throttled_until)}`));
    if (l.set_aside) problem.push(h('div', { class: 'muted' }, `${fmtInt(l.set_aside)} members refused by the network, set aside`));
    if (l.match_rate) problem.push(h('div', { class: 'muted' }, `match rate ${matchRate(l.match_rate)}`));
    return h('tr', { 'data-destination': l.destination, 'data-audience': l.audience, class: `state-${l.state}` },
      h('td', {}, h('div', { class: 'name' }, l.destination), l.list_id ? h('div', { class: 'def' }, `list ${l.list_id}`) : null),
      h('td', {}, l.audience),
      h('td', {}, h('span', { class: `badge ${l.state}` }, LABEL[l.state] || l.state)),
      h('td', { class: 'num' }, `${fmtInt(l.confirmed)} / ${fmtInt(l.desired)}`, h('span', { class: 'bar thin' }, fill)),
      h('td', { class: 'num' }, pending),
      h('td', { class: 'when' }, fmtAgo(l.last_success_at, now)),
      h('td', { class: 'problem' }, problem.length ? problem : h('span', { class: 'muted' }, '–')));
  };
  return h('table', { class: 'grid sync' },
    h('thead', {}, h('tr', {},
      h('th', { scope: 'col' }, 'Destination'),
      h('th', { scope: 'col' }, 'Audience'),
      h('th', { scope: 'col' }, 'State'),
      h('th', { scope: 'col', class: 'num' }, 'Confirmed / desired'),
      h('th', { scope: 'col', class: 'num' }, 'Pending'),
      h('th', { scope: 'col' }, 'Last success'),
      h('th', { scope: 'col' }, 'Last error and its fix'))),
    h('tbody', {}, sync.lists.map(row)));
}

// Google's MATCH_RATE_RANGE_20_TO_30 as "20 to 30 %", MATCH_RATE_RANGE_NOT_ELIGIBLE as "not eligible".
function matchRate(raw) {
  const words = raw.replace(/^MATCH_RATE_RANGE_/, '').replace(/_/g, ' ').toLowerCase();
  return /^\d/.test(words) ? `${words} %` : words;
}

// ---- charts ----

// Round up to 1, 2, 2.5 or 5 times a power of ten.
function niceCeil(v) {
  if (v <= 0) return 1;
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 2.5, 5, 10]) if (v <= m * p) return m * p;
  return 10 * p;
}

const TICK_STEPS = [60, 300, 900, 1800, 3600, 10800, 21600, 43200, 86400, 172800, 604800, 1209600, 2592000];

// Time ticks at whole local minutes, hours or days.
function timeTicks(from, to, most) {
  const span = to - from;
  const step = TICK_STEPS.find((s) => span / s <= most) || TICK_STEPS[TICK_STEPS.length - 1];
  const offset = new Date(from * 1000).getTimezoneOffset() * 60;
  const ticks = [];
  for (let t = Math.ceil((from - offset) / step) * step + offset; t <= to; t += step) ticks.push(t);
  const label = (t) => {
    const d = new Date(t * 1000);
    if (step >= 86400) return day(d);
    return span > 86400 && d.getHours() === 0 && d.getMinutes() === 0 ? day(d) : hhmm(d);
  };
  return ticks.map((t) => [t, label(t)]);
}

// A line chart of time series [{name, color, points: [[unixSecs, value|null], …]}] between
// `from` and `to`, with a legend that hides and shows series and a hover read-out.
function lineChart({ series, from, to, label, width = 560, height = 250 }) {
  const m = { l: 52, r: 16, t: 12, b: 28 };
  const iw = width - m.l - m.r;
  const ih = height - m.t - m.b;
  const shown = series.filter((s) => !view.hidden.has(s.name));
  let max = 0;
  for (const s of shown) for (const [, v] of s.points) if (v !== null && v > max) max = v;
  const yMax = niceCeil(max);
  const x = (t) => m.l + ((t - from) / (to - from)) * iw;
  const y = (v) => m.t + ih - (v / yMax) * ih;
  const f = (n) => n.toFixed(1);

  const root = svg('svg', { class: 'chart', viewBox: `0 0 ${width} ${height}`, role: 'img', 'aria-label': label });
  for (let i = 0; i <= 4; i++) {
    const v = (yMax * i) / 4;
    root.append(
      svg('line', { class: i ? 'grid' : 'axis', x1: m.l, x2: width - m.r, y1: f(y(v)), y2: f(y(v)) }),
      svg('text', { class: 'ylabel', x: m.l - 8, y: f(y(v) + 4), 'text-anchor': 'end' }, fmtCompact(v)));
  }
  for (const [t, text] of timeTicks(from, to, 6)) {
    root.append(
      svg('line', { class: 'tick', x1: f(x(t)), x2: f(x(t)), y1: m.t + ih, y2: m.t + ih + 4 }),
      svg('text', { class: 'xlabel', x: f(x(t)), y: height - 8, 'text-anchor': 'middle' }, text));
  }
  for (const s of shown) {
    const pts = s.points.filter(([, v]) => v !== null);
    if (pts.length > 1) {
      root.append(svg('path', {
        class: 'line', stroke: s.color, 'data-series': s.name,
        d: `M${pts.map(([t, v]) => `${f(x(t))},${f(y(v))}`).join('L')}`,
      }));
    }
    const [lt, lv] = pts[pts.length - 1] || [];
    if (lt !== undefined) root.append(svg('circle', { class: 'dot', cx: f(x(lt)), cy: f(y(lv)), r: 3, fill: s.color }));
  }

  // Hover: a vertical rule and the values of the nearest sample.
  const rule = svg('line', { class: 'rule', x1: 0, x2: 0, y1: m.t, y2: m.t + ih, visibility: 'hidden' });
  const overlay = svg('rect', { class: 'overlay', x: m.l, y: m.t, width: iw, height: ih });
  root.append(rule, overlay);
  const tip = h('div', { class: 'tip', hidden: true });
  const times = (shown[0] || series[0] || { points: [] }).points.map(([t]) => t);
  overlay.addEventListener('mousemove', (e) => {
    if (!times.length) return;
    const box = root.getBoundingClientRect();
    const t = from + (((e.clientX - box.left) / box.width) * width - m.l) / iw * (to - from);
    let i = 0;
    for (let j = 1; j < times.length; j++) if (Math.abs(times[j] - t) < Math.abs(times[i] - t)) i = j;
    const px = x(times[i]);
    rule.setAttribute('x1', f(px));
    rule.setAttribute('x2', f(px));
    rule.setAttribute('visibility', 'visible');
    const rows = shown.map((s) => [s, s.points[i] ? s.points[i][1] : null])
      .filter(([, v]) => v !== null).sort((a, b) => b[1] - a[1]);
    tip.replaceChildren(h('div', { class: 'tip-time' }, fmtTime(times[i])),
      ...rows.map(([s, v]) => h('div', { class: 'tip-row' }, swatch(s.color), ` ${s.name} `, h('b', {}, fmtInt(v)))));
    tip.hidden = false;
    const left = (px / width) * box.width;
    tip.style.left = `${left > box.width / 2 ? left - tip.offsetWidth - 12 : left + 12}px`;
    tip.style.top = `${(m.t / height) * box.height}px`;
  });
  overlay.addEventListener('mouseleave', () => {
    tip.hidden = true;
    rule.setAttribute('visibility', 'hidden');
  });

  const legend = h('div', { class: 'legend' }, series.map((s) => {
    const last = s.points.length ? s.points[s.points.length - 1][1] : null;
    return h('button', {
      type: 'button', class: view.hidden.has(s.name) ? 'off' : '', 'aria-pressed': !view.hidden.has(s.name),
      title: view.hidden.has(s.name) ? 'show' : 'hide',
      onclick: () => {
        if (view.hidden.has(s.name)) view.hidden.delete(s.name); else view.hidden.add(s.name);
        rerender('sizes');
      },
    }, swatch(s.color), ` ${s.name} `, h('b', {}, fmtInt(last)));
  }));
  return h('div', { class: 'chart-wrap' }, legend, h('div', { class: 'plot' }, root, tip));
}

function swatch(color) {
  return svg('svg', { class: 'swatch', viewBox: '0 0 10 10', 'aria-hidden': 'true' },
    svg('circle', { cx: 5, cy: 5, r: 4.5, fill: color }));
}

refresh();
