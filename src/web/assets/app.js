// audiencesync status page. Fetches /api/status, /api/sizes and /api/insights, draws every
// section, and refreshes every 30 s. No dependencies; charts are drawn as SVG by lineChart()
// (time series), rateBars() (rates with intervals), weekLiftChart() and monthBars().
//
// Adding a section: add a field to the status JSON (src/web/status.rs) or to /api/insights
// (src/web/insights.rs), and an entry to SECTIONS below whose render() returns the section's
// nodes, or null while there is nothing to show.
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
const data = { status: null, sizes: null, insights: null };

const SECTIONS = [
  { id: 'overview', title: null, render: renderOverview },
  { id: 'audiences', title: 'Audiences', render: renderAudiences },
  { id: 'sizes', title: 'Audience size over time', render: renderSizes },
  { id: 'sync', title: 'Sync state: destination × audience', render: renderSync },
  { id: 'lift', title: 'Did remarketing work? Pushed vs held-out members', render: renderLift },
  { id: 'retention', title: 'Retention', render: renderRetention },
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

const isNum = (x) => typeof x === 'number' && Number.isFinite(x);
// A rate as a percentage with one decimal ("30.0%"); "–" when undefined.
const fmtRate = (x) => (isNum(x) ? `${(x * 100).toFixed(1)}%` : '–');
const sign = (x) => (x > 0 ? '+' : x < 0 ? '−' : '');
// `digits` of |x| with the sign in front, none when it rounds to zero ("+1.5", "0.0", "−2.0").
function signed(x, digits) {
  const text = Math.abs(x).toFixed(digits);
  return Number(text) === 0 ? text : `${sign(x)}${text}`;
}
// A signed difference of rates in percentage points ("+20.0 points").
const fmtPoints = (x) => (isNum(x) ? `${signed(x * 100, 1)} points` : '–');
const fmtSignedRate = (x) => (isNum(x) ? `${signed(x * 100, 1)}%` : '–');
// "30.0%" → "30.0": the unit goes after the second bound of an interval only.
const bare = (x, f) => f(x).replace(/ points$|%$/, '');
const ci = (low, high, f) => (isNum(low) && isNum(high)
  ? `95% CI ${bare(low, f)} to ${f(high)}` : 'no interval yet');

// Amounts are integers in minor units of the revenue currency (see /api/insights).
function fmtMoney(minor, withSign) {
  if (!isNum(minor)) return '–';
  const ins = data.insights;
  const exp = ins ? ins.currency_exponent : 2;
  const f = new Intl.NumberFormat('en-US', {
    style: 'currency', currency: (ins && ins.lift.revenue_currency) || 'USD',
    minimumFractionDigits: exp, maximumFractionDigits: exp,
  });
  const major = Math.abs(minor) / 10 ** exp;
  const text = f.format(major);
  const s = Number(major.toFixed(exp)) === 0 ? '' : sign(minor);
  return withSign || s === '−' ? `${s}${text}` : text;
}

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
    const [status, insights] = await Promise.all([
      getJson('/api/status'), getJson('/api/insights'), loadSizes()]);
    data.status = status;
    data.insights = insights;
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
  if (nodes) body.replaceChildren(...[nodes].flat(Infinity).filter((n) => n !== null && n !== undefined && n !== false));
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
    h('td', { class: 'held' }, holdoutCell(a)),
    h('td', { class: 'when' }, fmtAgo(a.last_changed_at, now)));
  const group = (title, rows) => (rows.length ? [
    h('tr', { class: 'group' }, h('th', { colspan: 6, scope: 'colgroup' }, title)),
    rows.map(row)] : []);
  return h('table', { class: 'grid audiences' },
    h('thead', {}, h('tr', {},
      h('th', { scope: 'col' }, 'Audience'),
      h('th', { scope: 'col', class: 'num' }, 'Members'),
      h('th', { scope: 'col', class: 'num' }, 'Eligible'),
      h('th', { scope: 'col' }, 'Eligible share'),
      h('th', { scope: 'col' }, 'Held out'),
      h('th', { scope: 'col' }, 'Last change'))),
    h('tbody', {},
      group('Remarketing audiences', status.audiences.filter((a) => !isStage(a.name))),
      group('Lifecycle stages', status.audiences.filter((a) => isStage(a.name)))));
}

// Members held out (never pushed), their share of the members, and the configured share.
function holdoutCell(a) {
  if (a.holdout_fraction === '0' && !a.holdout) return h('span', { class: 'muted' }, '–');
  const configured = a.holdout_fraction === '0'
    ? 'none configured now' : `configured ${+(Number(a.holdout_fraction) * 100).toFixed(2)}%`;
  return [
    h('div', { class: 'held-count' }, fmtInt(a.holdout)),
    h('div', { class: 'def' }, `${a.size > 0 ? `${pct(a.holdout, a.size)}% of members` : 'no members'} · ${configured}`)];
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
  const LABEL = {
    in_sync: 'in sync', pending: 'pending', awaiting: 'awaiting network', retrying: 'retrying',
    throttled: 'throttled', paused: 'paused (daily quota)', replacing: 'replacing', differs: 'differs', parked: 'parked',
  };
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
    if (l.in_flight) problem.push(h('div', { class: 'muted' }, `${fmtInt(l.in_flight)} sent, awaiting the network's outcome`));
    for (const [reason, n] of Object.entries(l.refused || {})) {
      problem.push(h('div', { class: 'muted refused' }, `${fmtInt(n)} refused by the network: ${reason}`));
    }
    if (l.match_rate) problem.push(h('div', { class: 'muted' }, `upload match rate ${matchRate(l.match_rate)}`));
    const net = l.remote || {};
    const size = net.size_upper != null
      ? (net.size_lower != null && net.size_lower !== net.size_upper ? `${fmtInt(net.size_lower)}–${fmtInt(net.size_upper)}` : fmtInt(net.size_upper))
      : null;
    const reported = [size ? `size ${size}` : null, net.match_rate ? `match rate ${net.match_rate}` : null, net.operation_status || null].filter(Boolean);
    if (reported.length) problem.push(h('div', { class: 'muted network' }, `network reports: ${reported.join(' · ')}`));
    const job = l.job;
    if (job) {
      const progress = job.kind === 'full' && job.total ? ` ${fmtInt(job.sent)} / ${fmtInt(job.total)}` : '';
      const detail = job.detail ? ` — ${job.detail}` : '';
      problem.push(h('div', { class: `job job-${job.state}` }, `${job.id} (${job.kind}): ${job.state}${progress}${detail}`));
    }
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

// ---- did remarketing work? (docs/INSIGHTS.md: groups, windows, intervals, verdicts) ----

const VERDICT = {
  LIFT_VERDICT_POSITIVE: ['positive', 'Yes: pushed members converted more'],
  LIFT_VERDICT_NEGATIVE: ['negative', 'No: pushed members converted less'],
  LIFT_VERDICT_INCONCLUSIVE: ['inconclusive', 'Inconclusive: no clear difference'],
  LIFT_VERDICT_TOO_SMALL: ['too_small', 'Too small to tell yet'],
  LIFT_VERDICT_NO_HOLDOUT: ['no_holdout', 'No holdout to compare with'],
};

const verdictOf = (lift) => VERDICT[lift.verdict] || ['too_small', lift.verdict];

// An audience is measured when a holdout is configured or held-out entries were recorded.
const measured = (a) => a.holdout_fraction !== '0'
  || a.total.holdout.members + a.total.holdout.open_members > 0;

function renderLift({ status, insights }) {
  const all = insights.lift.audiences;
  const shown = all.filter(measured);
  const others = status.audiences.map((a) => a.name).filter((n) => !shown.some((a) => a.audience === n));
  const note = others.length ? h('p', { class: 'muted small' },
    `No holdout for ${others.join(', ')}: every eligible member is pushed, so there is nothing to compare with. `,
    'Set a share in ', h('code', {}, 'audiences.holdout'), ' to measure an audience.') : null;
  if (!shown.length) {
    return [h('p', { class: 'empty' },
      'No audience has a holdout yet. With a holdout share, that part of an audience\'s members is never pushed, ',
      'and this section compares what pushed and held-out members bought after they entered.'), note];
  }
  const intro = h('p', { class: 'muted small' },
    'After entering an audience, did the members pushed to the ad networks buy more than the randomly held-out ones? ',
    'Only entries whose outcome window has closed count; intervals are 95%.');
  return [intro, shown.map(liftCard), note];
}

function liftCard(a) {
  const t = a.total;
  const [cls, words] = verdictOf(t);
  const windowDays = fmtSpan(a.outcome_window_seconds);
  const share = a.holdout_fraction === '0' ? 'holdout no longer configured'
    : `holdout ${+(Number(a.holdout_fraction) * 100).toFixed(2)}%`;
  return h('article', { class: 'lift-card', 'data-lift': a.audience },
    h('header', { class: 'lift-head' },
      h('div', {}, h('span', { class: 'name' }, a.audience),
        h('span', { class: 'muted' }, ` · ${share} · outcome window ${windowDays}`)),
      h('span', { class: `verdict ${cls}` }, words)),
    h('p', { class: 'conclusion' }, t.conclusion),
    h('div', { class: 'lift-grid' },
      h('div', {},
        h('figure', { class: 'chart-box' },
          h('figcaption', {}, 'Conversion rate after entry, 95% interval'),
          rateBars([['pushed', t.pushed], ['held out', t.holdout]], `${a.audience}: conversion rate of pushed and held-out members`)),
        liftLines(t)),
      groupFigures(a)),
    h('figure', { class: 'chart-box weeks' },
      h('figcaption', {}, 'Absolute lift by week of entry (percentage points, 95% interval)'),
      weekLiftChart(a),
      h('div', { class: 'key muted small' },
        h('span', { class: 'k positive' }, 'interval above 0'), h('span', { class: 'k inconclusive' }, 'contains 0'),
        h('span', { class: 'k negative' }, 'below 0'), h('span', { class: 'k too_small' }, 'too few entries'),
        'open: every window of that week is still open; hover a week for its counts')));
}

// Absolute, relative and revenue-per-member lift with their intervals.
function liftLines(t) {
  const line = (key, label, value, interval) => h('tr', { 'data-figure': key },
    h('th', { scope: 'row' }, label),
    h('td', { class: 'num value' }, value),
    h('td', { class: 'ci' }, interval));
  return h('table', { class: 'grid compact lifts' },
    h('tbody', {},
      line('absolute', 'Absolute lift', fmtPoints(t.absolute_lift), ci(t.absolute_lift_low, t.absolute_lift_high, fmtPoints)),
      line('relative', 'Relative lift', fmtSignedRate(t.relative_lift), isNum(t.relative_lift)
        ? ci(t.relative_lift_low, t.relative_lift_high, fmtSignedRate) : 'needs a held-out conversion'),
      line('revenue_lift', 'Revenue per member lift', fmtMoney(t.revenue_per_member_lift_minor, true),
        ci(t.revenue_per_member_lift_low_minor, t.revenue_per_member_lift_high_minor, (x) => fmtMoney(x, true)))));
}

// Pushed and held-out groups side by side, then the entries that do not count (yet).
function groupFigures(a) {
  const t = a.total;
  const row = (key, label, f) => h('tr', { 'data-figure': key },
    h('th', { scope: 'row' }, label),
    h('td', { class: 'num pushed' }, f(t.pushed)),
    h('td', { class: 'num holdout' }, f(t.holdout)));
  const open = t.pushed.open_members + t.holdout.open_members;
  const inel = a.ineligible.members + a.ineligible.open_members;
  return h('div', { class: 'figures' },
    h('table', { class: 'grid compact' },
      h('thead', {}, h('tr', {}, h('th', {}, ''), h('th', { class: 'num' }, 'Pushed'), h('th', { class: 'num' }, 'Held out'))),
      h('tbody', {},
        row('members', 'Entries, closed windows', (g) => fmtInt(g.members)),
        row('converted', 'Converted', (g) => fmtInt(g.converted)),
        row('rate', 'Conversion rate', (g) => fmtRate(g.conversion_rate)),
        row('rate_ci', '95% interval', (g) => (isNum(g.conversion_rate_low)
          ? `${bare(g.conversion_rate_low, fmtRate)} to ${fmtRate(g.conversion_rate_high)}` : '–')),
        row('revenue', 'Revenue per member', (g) => fmtMoney(g.revenue_per_member_minor)))),
    open ? h('p', { class: 'muted small', 'data-figure': 'open' },
      `${fmtInt(open)} more entries (${fmtInt(t.pushed.open_members)} pushed, ${fmtInt(t.holdout.open_members)} held out) `
      + `are still inside their outcome window (${fmtSpan(a.outcome_window_seconds)}); `
      + `${fmtInt(t.pushed.open_converted + t.holdout.open_converted)} of them bought so far. They count once their window closes.`) : null,
    inel ? h('p', { class: 'muted small' },
      `${fmtInt(inel)} entries of members without consent or identifiers are in neither group (never pushed either way).`) : null);
}

// Horizontal bars of rates with their 95% intervals as whiskers: [[label, GroupOutcome], …].
function rateBars(groups, label) {
  const width = 520;
  const rowH = 40;
  const m = { l: 72, r: 150, t: 8, b: 24 };
  const height = m.t + m.b + rowH * groups.length;
  const iw = width - m.l - m.r;
  let max = 0;
  for (const [, g] of groups) {
    for (const v of [g.conversion_rate, g.conversion_rate_high]) if (isNum(v) && v > max) max = v;
  }
  const ticks = niceTicks(0, Math.min(1, max || 0.1), 4);
  const xMax = ticks[ticks.length - 1];
  const x = (v) => m.l + (v / xMax) * iw;
  const f = (n) => n.toFixed(1);
  const root = svg('svg', { class: 'chart rates', viewBox: `0 0 ${width} ${height}`, role: 'img', 'aria-label': label });
  ticks.forEach((v, i) => {
    root.append(
      svg('line', { class: i ? 'grid' : 'axis', x1: f(x(v)), x2: f(x(v)), y1: m.t, y2: height - m.b }),
      svg('text', { class: 'xlabel', x: f(x(v)), y: height - 8, 'text-anchor': 'middle' }, `${+(v * 100).toFixed(1)}%`));
  });
  groups.forEach(([name, g], i) => {
    const yc = m.t + rowH * i + rowH / 2;
    const cls = i === 0 ? 'pushed' : 'holdout';
    root.append(svg('text', { class: 'glabel', x: m.l - 8, y: f(yc + 4), 'text-anchor': 'end' }, name));
    if (!isNum(g.conversion_rate)) {
      root.append(svg('text', { class: 'note', x: m.l + 6, y: f(yc + 4) }, 'no closed windows yet'));
      return;
    }
    const bar = svg('rect', { class: `rate ${cls}`, x: m.l, y: f(yc - 9), width: f(Math.max(0, x(g.conversion_rate) - m.l)), height: 18, rx: 2 },
      svg('title', {}, `${name}: ${fmtRate(g.conversion_rate)} (${fmtInt(g.converted)} of ${fmtInt(g.members)}), 95% interval ${bare(g.conversion_rate_low, fmtRate)} to ${fmtRate(g.conversion_rate_high)}`));
    root.append(bar);
    if (isNum(g.conversion_rate_low)) {
      const [lo, hi] = [x(g.conversion_rate_low), x(g.conversion_rate_high)];
      root.append(
        svg('line', { class: 'whisker', x1: f(lo), x2: f(hi), y1: f(yc), y2: f(yc) }),
        svg('line', { class: 'whisker', x1: f(lo), x2: f(lo), y1: f(yc - 6), y2: f(yc + 6) }),
        svg('line', { class: 'whisker', x1: f(hi), x2: f(hi), y1: f(yc - 6), y2: f(yc + 6) }));
    }
    root.append(svg('text', { class: 'value', x: width - m.r + 10, y: f(yc + 4) },
      `${fmtRate(g.conversion_rate)}`, svg('tspan', { class: 'muted-svg' }, ` ${fmtInt(g.converted)} of ${fmtInt(g.members)}`)));
  });
  return root;
}

// Absolute lift per ISO week of entry: a dot and its 95% interval per week, a line at 0.
function weekLiftChart(a) {
  const weeks = a.cohorts;
  const est = weeks.filter((c) => isNum(c.lift.absolute_lift));
  if (!est.length) {
    return h('p', { class: 'empty' },
      weeks.length ? 'No entry week has closed windows in both groups yet.' : 'No entries yet.');
  }
  const width = 920;
  const height = 200;
  const m = { l: 52, r: 12, t: 12, b: 30 };
  const iw = width - m.l - m.r;
  const ih = height - m.t - m.b;
  let lo = 0;
  let hi = 0;
  for (const c of est) {
    const l = c.lift;
    for (const v of [l.absolute_lift, l.absolute_lift_low, l.absolute_lift_high]) {
      if (isNum(v)) { lo = Math.min(lo, v); hi = Math.max(hi, v); }
    }
  }
  if (hi - lo < 0.02) hi = lo + 0.02;
  const ticks = niceTicks(lo, hi, 4);
  const [bottom, top] = [ticks[0], ticks[ticks.length - 1]];
  const y = (v) => m.t + ((top - v) / (top - bottom)) * ih;
  const step = iw / weeks.length;
  const x = (i) => m.l + step * (i + 0.5);
  const f = (n) => n.toFixed(1);
  const root = svg('svg', { class: 'chart weeks', viewBox: `0 0 ${width} ${height}`, role: 'img', 'aria-label': `${a.audience}: absolute lift by week of entry` });
  for (const v of ticks) {
    root.append(
      svg('line', { class: v === 0 ? 'zero' : 'grid', x1: m.l, x2: width - m.r, y1: f(y(v)), y2: f(y(v)) }),
      svg('text', { class: 'ylabel', x: m.l - 8, y: f(y(v) + 4), 'text-anchor': 'end' }, `${v > 0 ? '+' : v < 0 ? '−' : ''}${+Math.abs(v * 100).toFixed(1)}`));
  }
  const every = Math.max(1, Math.ceil(weeks.length / 14));
  weeks.forEach((c, i) => {
    const l = c.lift;
    const [cls] = verdictOf(l);
    if (i % every === 0 || i === weeks.length - 1) {
      const text = i === 0 || c.week.slice(0, 4) !== weeks[i - 1].week.slice(0, 4) ? c.week : c.week.slice(5);
      root.append(svg('text', { class: 'xlabel', x: f(x(i)), y: height - 10, 'text-anchor': 'middle' }, text));
    }
    const tip = svg('title', {}, `${c.week}: ${l.conclusion}. Pushed ${fmtInt(l.pushed.converted)} of ${fmtInt(l.pushed.members)}, `
      + `held out ${fmtInt(l.holdout.converted)} of ${fmtInt(l.holdout.members)}; `
      + `${fmtInt(l.pushed.open_members + l.holdout.open_members)} windows open.`);
    if (!isNum(l.absolute_lift)) {
      root.append(svg('text', { class: 'note', x: f(x(i)), y: f(y(0) - 6), 'text-anchor': 'middle' }, 'open', tip));
      return;
    }
    const g = svg('g', { class: `week ${cls}`, 'data-week': c.week }, tip);
    if (isNum(l.absolute_lift_low)) {
      const cap = Math.min(6, step / 4);
      g.append(
        svg('line', { class: 'whisker', x1: f(x(i)), x2: f(x(i)), y1: f(y(l.absolute_lift_low)), y2: f(y(l.absolute_lift_high)) }),
        svg('line', { class: 'whisker', x1: f(x(i) - cap), x2: f(x(i) + cap), y1: f(y(l.absolute_lift_low)), y2: f(y(l.absolute_lift_low)) }),
        svg('line', { class: 'whisker', x1: f(x(i) - cap), x2: f(x(i) + cap), y1: f(y(l.absolute_lift_high)), y2: f(y(l.absolute_lift_high)) }));
    }
    g.append(svg('circle', { class: 'dot', cx: f(x(i)), cy: f(y(l.absolute_lift)), r: 4 }));
    root.append(g);
  });
  return root;
}

// ---- retention (docs/INSIGHTS.md: retention metrics) ----

function renderRetention({ insights }) {
  const r = insights.retention;
  const last = r.periods[r.periods.length - 1];
  const tile = (key, label, value, sub) => h('div', { class: 'tile', 'data-figure': key },
    h('div', { class: 'tile-value' }, value), h('div', { class: 'tile-label' }, label),
    sub ? h('div', { class: 'tile-sub' }, sub) : null);
  const tiles = h('div', { class: 'tiles four' },
    tile('retention_rate', `customer retention rate, ${last ? monthLabel(last.label, true) : '–'}`,
      fmtRate(last && last.retention_rate),
      last ? `(${fmtInt(last.customers_at_end)} active at the end − ${fmtInt(last.new_customers)} new) / ${fmtInt(last.customers_at_start)} at the start` : null),
    tile('repeat_purchase_rate', 'repeat-purchase rate', fmtRate(r.repeat_purchase_rate),
      `${fmtInt(r.repeat_buyers)} of ${fmtInt(r.buyers)} buyers bought again`),
    tile('vip_revenue_share', 'of 365-day revenue from VIP members', fmtRate(r.vip_revenue_share),
      `they are ${fmtRate(r.vip_customer_share)} of active customers; benchmark: 25% bring 60%`),
    tile('revenue_per_customer', 'average revenue per customer, 365 days', fmtMoney(r.average_revenue_per_customer_minor),
      `${fmtMoney(r.revenue_365d_minor)} from ${fmtInt(r.active_customers)} active customers`));
  return [tiles,
    h('div', { class: 'charts' },
      h('figure', { class: 'chart-box' },
        h('figcaption', {}, 'Customer retention rate by month'),
        monthBars(r.periods)),
      h('div', {},
        h('figure', { class: 'chart-box' },
          h('figcaption', {}, 'Revenue concentration (VIP audience vs everyone, 365 days)'),
          concentration(r)),
        h('figure', { class: 'chart-box' },
          h('figcaption', {}, `Reactivation per lapsed tier (entries of the last ${r.periods.length} months)`),
          reactivationTable(r.reactivation)))),
    h('figure', { class: 'chart-box' },
      h('figcaption', {}, 'Cohorts by month of first purchase: share buying again each later month'),
      cohortTable(r.cohorts))];
}

// "2026-10" → "Oct 2026" (long) or "Oct" ("Jan 27" at a year change).
function monthLabel(label, long) {
  const [y, mo] = label.split('-').map(Number);
  const name = MONTHS[mo - 1] || label;
  if (long) return `${name} ${y}`;
  return mo === 1 ? `${name} ’${String(y).slice(2)}` : name;
}

// Bars of the customer retention rate of each complete month, with its value on top.
function monthBars(periods) {
  if (!periods.length) return h('p', { class: 'empty' }, 'No complete month yet.');
  const width = 560;
  const height = 230;
  const m = { l: 44, r: 8, t: 18, b: 28 };
  const iw = width - m.l - m.r;
  const ih = height - m.t - m.b;
  const y = (v) => m.t + ih - v * ih;
  const step = iw / periods.length;
  const f = (n) => n.toFixed(1);
  const root = svg('svg', { class: 'chart months', viewBox: `0 0 ${width} ${height}`, role: 'img', 'aria-label': 'customer retention rate by month' });
  for (let i = 0; i <= 4; i++) {
    const v = i / 4;
    root.append(
      svg('line', { class: i ? 'grid' : 'axis', x1: m.l, x2: width - m.r, y1: f(y(v)), y2: f(y(v)) }),
      svg('text', { class: 'ylabel', x: m.l - 8, y: f(y(v) + 4), 'text-anchor': 'end' }, `${v * 100}%`));
  }
  periods.forEach((p, i) => {
    const cx = m.l + step * (i + 0.5);
    const bw = Math.min(34, step * 0.62);
    root.append(svg('text', { class: 'xlabel', x: f(cx), y: height - 9, 'text-anchor': 'middle' }, monthLabel(p.label)));
    const tip = svg('title', {}, `${p.label}: retention ${fmtRate(p.retention_rate)}; active ${fmtInt(p.customers_at_start)} at the start, `
      + `${fmtInt(p.customers_at_end)} at the end, of whom ${fmtInt(p.new_customers)} new, ${fmtInt(p.retained_customers)} retained, `
      + `${fmtInt(p.returning_customers)} returning; ${fmtInt(p.buyers)} buyers, ${fmtMoney(p.revenue_minor)}`);
    if (!isNum(p.retention_rate)) {
      root.append(svg('text', { class: 'note', x: f(cx), y: f(y(0) - 6), 'text-anchor': 'middle' }, '–', tip));
      return;
    }
    const v = Math.max(0, Math.min(1, p.retention_rate));
    root.append(
      svg('rect', { class: 'col', x: f(cx - bw / 2), y: f(y(v)), width: f(bw), height: f(y(0) - y(v)), rx: 2, 'data-month': p.label }, tip),
      svg('text', { class: 'barlabel', x: f(cx), y: f(y(v) - 5), 'text-anchor': 'middle' }, `${Math.round(p.retention_rate * 100)}%`));
  });
  return root;
}

// Two bars: the VIP members' share of active customers and of revenue, each with the
// benchmark (25% of customers, 60% of revenue) marked.
function concentration(r) {
  const row = (label, value, bench) => {
    const fill = h('span', { class: 'fill' });
    fill.style.width = `${isNum(value) ? Math.round(Math.min(1, value) * 100) : 0}%`;
    const mark = h('span', { class: 'bench', title: `benchmark ${bench * 100}%` });
    mark.style.left = `${bench * 100}%`;
    return h('div', { class: 'conc-row' },
      h('span', { class: 'conc-label' }, label),
      h('span', { class: 'bar wide' }, fill, mark),
      h('span', { class: 'conc-value' }, fmtRate(value), h('span', { class: 'muted' }, ` vs ${bench * 100}%`)));
  };
  return h('div', { class: 'conc' },
    row('customers', r.vip_customer_share, 0.25),
    row('revenue', r.vip_revenue_share, 0.6),
    h('p', { class: 'muted small' },
      `${fmtInt(r.vip_active_customers)} active VIP members brought ${fmtMoney(r.vip_revenue_365d_minor)} of ${fmtMoney(r.revenue_365d_minor)}. `,
      'The often-quoted benchmark: 25% of customers bring 60% of revenue (the ticks).'));
}

function reactivationTable(tiers) {
  return h('table', { class: 'grid compact react' },
    h('thead', {}, h('tr', {},
      h('th', { scope: 'col' }, 'Tier'),
      h('th', { scope: 'col', class: 'num' }, 'Entered'),
      h('th', { scope: 'col', class: 'num' }, 'Back within 90 d'),
      h('th', { scope: 'col', class: 'num' }, 'Rate'),
      h('th', { scope: 'col', class: 'num' }, 'Open'))),
    h('tbody', {}, tiers.map((t) => h('tr', { 'data-tier': t.audience },
      h('td', {}, t.audience),
      h('td', { class: 'num' }, fmtInt(t.entered)),
      h('td', { class: 'num' }, fmtInt(t.reactivated)),
      h('td', { class: 'num rate' }, fmtRate(t.rate)),
      h('td', { class: 'num muted', title: `${fmtInt(t.open_reactivated)} of them back already` }, fmtInt(t.open))))));
}

// Cohort retention as a heat table: one row per first-purchase month, one column per later month.
function cohortTable(cohorts) {
  const span = cohorts.reduce((n, c) => Math.max(n, c.months.length), 0);
  if (!cohorts.some((c) => c.customers > 0)) return h('p', { class: 'empty' }, 'No first purchases in these months.');
  let max = 0;
  for (const c of cohorts) for (const k of c.months) if (isNum(k.rate) && k.rate > max) max = k.rate;
  const cell = (k) => {
    if (!k || !isNum(k.rate)) return h('td', { class: 'heat none' }, '');
    const td = h('td', { class: 'heat', title: `${fmtRate(k.rate)}: ${fmtInt(k.customers)} bought in month +${k.months_after}` }, `${Math.round(k.rate * 100)}%`);
    const a = max > 0 ? k.rate / max : 0;
    td.style.backgroundColor = `rgba(47, 93, 138, ${(0.08 + 0.82 * a).toFixed(3)})`;
    if (a > 0.55) td.classList.add('dark');
    return td;
  };
  return h('div', { class: 'scroll' }, h('table', { class: 'grid compact cohorts' },
    h('thead', {}, h('tr', {},
      h('th', { scope: 'col' }, 'First purchase'),
      h('th', { scope: 'col', class: 'num' }, 'Customers'),
      Array.from({ length: span }, (_, i) => h('th', { scope: 'col', class: 'num' }, `+${i + 1}`)))),
    h('tbody', {}, cohorts.map((c) => h('tr', { 'data-cohort': c.first_purchase_month },
      h('th', { scope: 'row' }, monthLabel(c.first_purchase_month, true)),
      h('td', { class: 'num' }, fmtInt(c.customers)),
      Array.from({ length: span }, (_, i) => cell(c.customers > 0 ? c.months[i] : null)))))));
}

// ---- charts ----

// Round up to 1, 2, 2.5 or 5 times a power of ten.
function niceCeil(v) {
  if (v <= 0) return 1;
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 2.5, 5, 10]) if (v <= m * p) return m * p;
  return 10 * p;
}

// About `n` ticks at a round step (1, 2, 2.5 or 5 × 10^k) covering [lo, hi].
function niceTicks(lo, hi, n) {
  const step = niceCeil((hi - lo) / n);
  const ticks = [];
  const last = Math.ceil(hi / step - 1e-9);
  for (let i = Math.floor(lo / step + 1e-9); i <= last; i++) ticks.push(+(i * step).toFixed(10));
  return ticks;
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
