// Baton operators' console: a single-page app over batond's same-origin JSON
// API (protobuf JSON with original field names; 64-bit integers as strings;
// default values omitted). No libraries and no build step. Data reaches the
// DOM only through textContent and attributes, never innerHTML.
'use strict';

// ------------------------------------------------------------------ state
const state = {
  signedIn: false,
  csrf: '',
  gen: 0,             // bumped on every navigation; stale loads compare it
  timer: 0,           // the auto-refresh interval of the view on screen
  busy: false,        // a refresh is in flight
  errorSource: '',    // what put up the error banner ('refresh' or '')
  actionResult: null, // {xid, ok, text}: the last action's outcome
  pending: null,      // {action, xid}: what the confirmation dialog is for
};
const REFRESH_MS = 5000;
const RATE_WINDOW_MS = 15 * 60 * 1000;

// ------------------------------------------------------------ enum tables
// Names in proto order (for numeric enums), and for each value the word the
// API's filters take, the words batonctl prints, and the colour tone.
const GLOBAL_NAMES = ['UNSPECIFIED', 'BEGUN', 'COMMITTING', 'COMMITTED',
  'ROLLING_BACK', 'ROLLED_BACK', 'COMMIT_STUCK', 'ROLLBACK_STUCK']
  .map((n) => 'GLOBAL_STATUS_' + n);
const GLOBAL = {
  GLOBAL_STATUS_UNSPECIFIED: { word: '', label: 'unspecified', tone: 'muted' },
  GLOBAL_STATUS_BEGUN: { word: 'begun', label: 'begun', tone: 'info' },
  GLOBAL_STATUS_COMMITTING: { word: 'committing', label: 'committing', tone: 'info' },
  GLOBAL_STATUS_COMMITTED: { word: 'committed', label: 'committed', tone: 'ok' },
  GLOBAL_STATUS_ROLLING_BACK: { word: 'rolling-back', label: 'rolling back', tone: 'undo' },
  GLOBAL_STATUS_ROLLED_BACK: { word: 'rolled-back', label: 'rolled back', tone: 'muted' },
  GLOBAL_STATUS_COMMIT_STUCK: { word: 'commit-stuck', label: 'commit-stuck', tone: 'bad' },
  GLOBAL_STATUS_ROLLBACK_STUCK: { word: 'rollback-stuck', label: 'rollback-stuck', tone: 'bad' },
};
const ATTENTION = ['GLOBAL_STATUS_COMMIT_STUCK', 'GLOBAL_STATUS_ROLLBACK_STUCK'];
const COMMIT_SIDE = ['GLOBAL_STATUS_COMMITTING', 'GLOBAL_STATUS_COMMITTED',
  'GLOBAL_STATUS_COMMIT_STUCK'];
const STATUS_WORDS = ['needs-attention', 'begun', 'committing', 'committed',
  'rolling-back', 'rolled-back', 'commit-stuck', 'rollback-stuck'];

const PROTOCOL_NAMES = ['PROTOCOL_UNSPECIFIED', 'PROTOCOL_TWO_PHASE',
  'PROTOCOL_TCC', 'PROTOCOL_SAGA'];
const PROTOCOL = {
  PROTOCOL_UNSPECIFIED: { word: '', label: '-', tone: 'muted' },
  PROTOCOL_TWO_PHASE: { word: '2pc', label: '2pc', tone: 'muted' },
  PROTOCOL_TCC: { word: 'tcc', label: 'tcc', tone: 'muted' },
  PROTOCOL_SAGA: { word: 'saga', label: 'saga', tone: 'muted' },
};

const BRANCH_NAMES = ['UNSPECIFIED', 'REGISTERED', 'PREPARED', 'PREPARE_FAILED',
  'COMMITTED', 'ROLLED_BACK', 'COMMIT_FAILED', 'ROLLBACK_FAILED']
  .map((n) => 'BRANCH_STATUS_' + n);
const BRANCH = {
  BRANCH_STATUS_UNSPECIFIED: { label: 'unspecified', tone: 'muted' },
  BRANCH_STATUS_REGISTERED: { label: 'registered', tone: 'warn' },
  BRANCH_STATUS_PREPARED: { label: 'prepared', tone: 'info' },
  BRANCH_STATUS_PREPARE_FAILED: { label: 'prepare-failed', tone: 'bad' },
  BRANCH_STATUS_COMMITTED: { label: 'committed', tone: 'ok' },
  BRANCH_STATUS_ROLLED_BACK: { label: 'rolled back', tone: 'muted' },
  BRANCH_STATUS_COMMIT_FAILED: { label: 'commit-failed', tone: 'bad' },
  BRANCH_STATUS_ROLLBACK_FAILED: { label: 'rollback-failed', tone: 'bad' },
};
const BRANCH_TYPE_NAMES = ['BRANCH_TYPE_UNSPECIFIED', 'BRANCH_TYPE_XA',
  'BRANCH_TYPE_TCC', 'BRANCH_TYPE_SAGA'];

const STEP_NAMES = ['UNSPECIFIED', 'PENDING', 'RUNNING', 'SUCCEEDED', 'FAILED',
  'COMPENSATION_PENDING', 'COMPENSATING', 'COMPENSATED', 'COMPENSATION_FAILED',
  'SKIPPED'].map((n) => 'STEP_STATUS_' + n);
const STEP = {
  STEP_STATUS_UNSPECIFIED: { label: 'unspecified', tone: 'muted' },
  STEP_STATUS_PENDING: { label: 'pending', tone: 'warn' },
  STEP_STATUS_RUNNING: { label: 'running', tone: 'info' },
  STEP_STATUS_SUCCEEDED: { label: 'succeeded', tone: 'ok' },
  STEP_STATUS_FAILED: { label: 'failed', tone: 'bad' },
  STEP_STATUS_COMPENSATION_PENDING: { label: 'compensation pending', tone: 'undo', comp: 'compensation pending' },
  STEP_STATUS_COMPENSATING: { label: 'compensating', tone: 'undo', comp: 'compensation running' },
  STEP_STATUS_COMPENSATED: { label: 'compensated', tone: 'muted', comp: 'compensation ran' },
  STEP_STATUS_COMPENSATION_FAILED: { label: 'compensation failed', tone: 'bad', comp: 'compensation failed' },
  STEP_STATUS_SKIPPED: { label: 'skipped', tone: 'skip', comp: 'nothing to undo' },
};

// The operator actions, with what the confirmation dialog says about each.
const ACTIONS = [
  { id: 'retry', label: 'Retry', reason: false, danger: false,
    text: 'Make branches that failed owed again, send every owed command now and restart the retry window.' },
  { id: 'pause', label: 'Pause', reason: false, danger: false,
    text: 'Stop sending phase-two commands until the transaction is resumed.' },
  { id: 'resume', label: 'Resume', reason: false, danger: false,
    text: 'Start sending phase-two commands again; every owed command becomes due now.' },
  { id: 'force-commit', label: 'Force commit', reason: true, danger: true,
    text: 'Open: decide commit. On the commit side: mark every unfinished branch committed by hand and finish. A decision is never reversed.' },
  { id: 'force-rollback', label: 'Force rollback', reason: true, danger: true,
    text: 'Open: decide rollback. On the rollback side: mark every unfinished branch rolled back by hand and finish. A decision is never reversed.' },
  { id: 'forget', label: 'Forget', reason: true, danger: true,
    text: 'Drop this finished or needs-attention record for good. A tombstone with its audit trail stays.' },
];

// Maps an enum value (full name, number, or missing) to its proto name.
function enumKey(names, value) {
  if (typeof value === 'number') return names[value] || String(value);
  return value ? String(value) : names[0];
}
function lookup(table, names, value) {
  const key = enumKey(names, value);
  return table[key] || { word: key.toLowerCase(), label: key.toLowerCase(), tone: 'muted' };
}
const globalInfo = (v) => lookup(GLOBAL, GLOBAL_NAMES, v);
const protocolInfo = (v) => lookup(PROTOCOL, PROTOCOL_NAMES, v);
const branchInfo = (v) => lookup(BRANCH, BRANCH_NAMES, v);
const stepInfo = (v) => lookup(STEP, STEP_NAMES, v);

// ------------------------------------------------------------ DOM helpers
const $ = (id) => document.getElementById(id);
const SVG_NS = 'http://www.w3.org/2000/svg';

function setAttrs(node, attrs) {
  if (!attrs) return;
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v === true ? '' : String(v));
  }
}
function appendKids(node, kids) {
  for (const k of kids.flat(Infinity)) {
    if (k === null || k === undefined || k === false) continue;
    node.appendChild(k instanceof Node ? k : document.createTextNode(String(k)));
  }
}
function el(tag, attrs, ...kids) {
  const node = document.createElement(tag);
  setAttrs(node, attrs);
  appendKids(node, kids);
  return node;
}
function svgEl(tag, attrs, ...kids) {
  const node = document.createElementNS(SVG_NS, tag);
  setAttrs(node, attrs);
  appendKids(node, kids);
  return node;
}
function badge(info, extra) {
  return el('span', { class: `badge tone-${info.tone}${extra ? ' ' + extra : ''}` }, info.label);
}
// A horizontally scrolling table: head is a list of labels, rows lists of
// cells (strings or nodes), or {attrs, cells}.
function table(id, head, rows) {
  const thead = el('thead', null, el('tr', null, head.map((h) => el('th', { scope: 'col' }, h))));
  const tbody = el('tbody', null, rows.map((r) => {
    const row = Array.isArray(r) ? { cells: r } : r;
    return el('tr', row.attrs, row.cells.map((c) => (c instanceof Node && c.nodeName === 'TH') ? c : el('td', null, c)));
  }));
  return el('div', { class: 'table-wrap' }, el('table', { id }, thead, tbody));
}
function section(title, ...kids) {
  return el('section', { class: 'panel' }, el('h2', null, title), kids);
}
// What the API says of nodes that did not answer ("missing"): their
// transactions are left out of what is shown, so the page says so.
function missingBanner(missing) {
  if (!missing || missing.length === 0) return null;
  return el('div', { class: 'alert alert-warn', id: 'missing-nodes', role: 'status' },
    el('strong', null, plural(missing.length, 'node', 'nodes') + ' did not answer: '),
    missing.map((m, i) => [i ? '; ' : '',
      el('span', { 'data-node': String(num(m.node)) },
        `node ${num(m.node)} at ${m.address} (shard${(m.shards || []).length === 1 ? '' : 's'} ${(m.shards || []).join(', ') || '-'}): ${m.error}`)]),
    missing.length === 1 ? '. Its transactions are not shown here and wait for it.'
      : '. Their transactions are not shown here and wait for them.');
}
function txLink(xid, attrs) {
  return el('a', Object.assign({ href: '#/tx/' + encodeURIComponent(xid), class: 'xid' }, attrs), xid);
}
function mount(node) {
  const view = $('view');
  view.replaceChildren(node);
}

// ------------------------------------------------------------- formatting
const num = (v) => { const n = Number(v); return Number.isFinite(n) ? n : 0; };
const pad = (n, w = 2) => String(n).padStart(w, '0');
const orDash = (s) => (s ? String(s) : '-');

// UTC, as batonctl prints it.
function fmtTime(ms) {
  ms = num(ms);
  if (!ms) return '-';
  const d = new Date(ms);
  return `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())} ` +
    `${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())}.${pad(d.getUTCMilliseconds(), 3)}Z`;
}
// A duration as batonctl's FormatAge: 4.2s, 3m05s, 2h03m, 1d02h.
function fmtAge(ms) {
  ms = Math.max(0, num(ms));
  const s = Math.floor(ms / 1000);
  if (s < 60) return `${s}.${Math.floor((ms % 1000) / 100)}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${pad(s % 60)}s`;
  if (s < 86400) return `${Math.floor(s / 3600)}h${pad(Math.floor((s % 3600) / 60))}m`;
  return `${Math.floor(s / 86400)}d${pad(Math.floor((s % 86400) / 3600))}h`;
}
// Relative to now in words: "3 s ago", "in 12 min".
function fmtRelative(ms) {
  ms = num(ms);
  if (!ms) return '-';
  const diff = Date.now() - ms;
  const s = Math.floor(Math.abs(diff) / 1000);
  let text;
  if (s < 60) text = `${s} s`;
  else if (s < 3600) text = `${Math.floor(s / 60)} min`;
  else if (s < 86400) text = `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
  else text = `${Math.floor(s / 86400)} d ${Math.floor((s % 86400) / 3600)} h`;
  return diff >= 0 ? `${text} ago` : `in ${text}`;
}
// A <time> element: the UTC instant, with the relative time beside it.
function timeNode(ms, withRelative = true) {
  ms = num(ms);
  if (!ms) return '-';
  const iso = new Date(ms).toISOString();
  return el('span', { class: 'when' }, el('time', { datetime: iso, title: new Date(ms).toString() }, fmtTime(ms)),
    withRelative ? el('span', { class: 'rel' }, ' (' + fmtRelative(ms) + ')') : null);
}
function fmtRate(v) {
  return Number.isInteger(v) ? String(v) : v.toFixed(1);
}
function plural(n, one, many) {
  return `${n} ${n === 1 ? one : many}`;
}

// ------------------------------------------------------------- API client
class ApiError extends Error {
  constructor(status, message, auth = false) {
    super(message);
    this.status = status;
    this.auth = auth;
  }
}

// Calls the API; resolves with the parsed JSON reply. A 401 (except from
// login) ends the session and shows the sign-in form.
async function api(method, path, body) {
  const headers = { Accept: 'application/json' };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  // Every call but sign-in carries the CSRF token, reads included: the
  // cookie alone (browsers send it to every port of the host) opens nothing.
  if (path !== '/api/login') headers['X-CSRF-Token'] = state.csrf;
  let res;
  try {
    res = await fetch(path, {
      method, headers, credentials: 'same-origin', cache: 'no-store',
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (e) {
    throw new ApiError(0, 'Cannot reach batond: ' + (e && e.message ? e.message : 'network error'));
  }
  let text = '';
  try { text = await res.text(); } catch (e) { text = ''; }
  let data = {};
  if (text) {
    try { data = JSON.parse(text); } catch (e) { data = null; }
  }
  const message = data && typeof data.error === 'string' && data.error
    ? data.error : `HTTP ${res.status} ${res.statusText || ''}`.trim();
  if (res.status === 401 && path !== '/api/login') {
    sessionEnded();
    throw new ApiError(401, message, true);
  }
  if (!res.ok) throw new ApiError(res.status, message);
  if (data === null || typeof data !== 'object') throw new ApiError(res.status, 'batond sent a reply that is not JSON');
  return data;
}

// ---------------------------------------------------------- error banner
function showError(message, source = '') {
  const box = $('error');
  box.textContent = String(message || 'Something went wrong');
  box.hidden = false;
  state.errorSource = source;
}
function clearError() {
  const box = $('error');
  box.hidden = true;
  box.textContent = '';
  state.errorSource = '';
}
function handleError(e, source = '') {
  if (e && e.auth) return; // the sign-in form is already showing
  showError(e && e.message ? e.message : String(e), source);
}

// --------------------------------------------------------------- session
// Where this origin keeps the session's CSRF token between page loads.
const CSRF_KEY = 'baton_csrf';
function startSession(s) {
  state.signedIn = true;
  state.csrf = s && s.csrf_token ? String(s.csrf_token) : '';
  try { localStorage.setItem(CSRF_KEY, state.csrf); } catch (e) { /* private mode */ }
  $('signin-view').hidden = true;
  $('nav').hidden = false;
  $('signout').hidden = false;
  $('view').hidden = false;
}
function showSignin(note) {
  $('nav').hidden = true;
  $('signout').hidden = true;
  $('view').hidden = true;
  $('view').replaceChildren();
  $('signin-note').textContent = note || '';
  $('signin-view').hidden = false;
  $('token').focus();
}
function sessionEnded(note) {
  const was = state.signedIn;
  state.signedIn = false;
  state.csrf = '';
  try { localStorage.removeItem(CSRF_KEY); } catch (e) { /* private mode */ }
  state.gen++;
  stopTimer();
  const dialog = $('confirm');
  if (dialog.open) dialog.close();
  showSignin(note || (was ? 'Your session has ended. Sign in again.' : ''));
}
async function onSignin(ev) {
  ev.preventDefault();
  const token = $('token').value.trim();
  if (!token) {
    showError('Enter the admin token.');
    return;
  }
  $('signin-submit').disabled = true;
  try {
    const s = await api('POST', '/api/login', { token });
    clearError();
    $('token').value = '';
    startSession(s);
    go('#/');
  } catch (e) {
    handleError(e);
    $('token').select();
  } finally {
    $('signin-submit').disabled = false;
  }
}
async function onSignout() {
  try {
    await api('POST', '/api/logout');
    clearError();
    sessionEnded('Signed out.');
  } catch (e) {
    handleError(e);
  }
}

// ----------------------------------------------------------------- router
function parseHash() {
  const h = location.hash.replace(/^#/, '') || '/';
  const q = h.indexOf('?');
  return {
    path: q < 0 ? h : h.slice(0, q),
    params: new URLSearchParams(q < 0 ? '' : h.slice(q + 1)),
  };
}
function go(hash) {
  if (location.hash === hash) route();
  else location.hash = hash;
}
function stopTimer() {
  if (state.timer) clearInterval(state.timer);
  state.timer = 0;
}
// Renders the page the hash names; `load(gen, refreshing)` draws it.
function route() {
  if (!state.signedIn) return;
  state.gen++;
  stopTimer();
  clearError();
  state.actionResult = null;
  const { path, params } = parseHash();
  markNav(path, params);
  let load;
  let refresh = false;
  if (path === '/') {
    load = (gen) => loadOverview(gen);
    refresh = true;
  } else if (path === '/transactions') {
    load = (gen) => loadTransactions(gen, params);
  } else if (path.startsWith('/tx/')) {
    let xid = path.slice(4);
    try { xid = decodeURIComponent(xid); } catch (e) { /* keep it raw */ }
    load = (gen) => loadTx(gen, xid);
  } else if (path === '/participants') {
    load = (gen) => loadParticipants(gen);
    refresh = true;
  } else {
    mount(el('p', { class: 'muted' }, 'No such page. ', el('a', { href: '#/' }, 'Go to the overview.')));
    return;
  }
  const gen = state.gen;
  mount(el('p', { class: 'muted loading' }, 'Loading…'));
  load(gen).catch((e) => {
    if (gen !== state.gen || (e && e.auth)) return;
    handleError(e);
    if ($('view').querySelector(':scope > .loading')) mount(el('p', { class: 'muted' }, 'Could not load this page. ',
      el('button', { type: 'button', onclick: () => route() }, 'Try again')));
  });
  if (refresh) state.timer = setInterval(() => autoRefresh(load, gen), REFRESH_MS);
}
function autoRefresh(load, gen) {
  if (state.busy || document.hidden || gen !== state.gen) return;
  state.busy = true;
  load(gen).then(() => {
    if (state.errorSource === 'refresh') clearError();
  }).catch((e) => {
    if (gen === state.gen) handleError(e, 'refresh');
  }).finally(() => { state.busy = false; });
}
function markNav(path, params) {
  let current = '';
  if (path === '/') current = 'overview';
  else if (path === '/participants') current = 'participants';
  else if (path === '/transactions') {
    const s = params.getAll('status');
    current = s.length === 1 && s[0] === 'needs-attention' && params.toString() === 'status=needs-attention'
      ? 'attention' : 'transactions';
  }
  for (const a of document.querySelectorAll('#nav a[data-nav]')) {
    if (a.dataset.nav === current) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
}

// --------------------------------------------------------------- overview
async function loadOverview(gen) {
  const data = await api('GET', '/api/overview');
  if (gen !== state.gen) return;
  const width = Math.max(300, Math.min(1160, ($('view').clientWidth || 760) - 34));
  mount(renderOverview(data, width));
}
function renderOverview(data, chartWidth) {
  const stats = data.stats || {};
  const counts = (stats.unfinished || []).map((c) => ({
    status: enumKey(GLOBAL_NAMES, c.status), protocol: enumKey(PROTOCOL_NAMES, c.protocol), count: num(c.count),
  }));
  const attention = counts.filter((c) => ATTENTION.includes(c.status)).reduce((a, c) => a + c.count, 0);
  const parts = [el('h1', null, 'Overview')];
  if (stats.store_error) {
    parts.push(el('div', { class: 'alert', id: 'store-error', role: 'alert' },
      el('strong', null, 'Store failed: '), stats.store_error,
      ' — batond acknowledges nothing more until it is restarted once the cause is fixed.'));
  }
  parts.push(missingBanner(data.missing));
  parts.push(summaryCards(stats, data.oldest, attention));
  if (data.topology) parts.push(section('Nodes', nodesTable(data.topology)));
  parts.push(section('Unfinished transactions by status and protocol', countsTable(counts)));
  parts.push(section('Transactions per second, last 15 minutes', rateChart(data.rate || [], chartWidth), rateSummary(data.rate || [])));
  parts.push(section(data.topology ? 'Processes, summed' : 'Process', processList(stats)));
  return el('div', { class: 'overview' }, parts);
}
const HEALTH_TONE = { SERVING: 'ok', NOT_SERVING: 'warn', UNREACHABLE: 'bad' };
const SHARD_TONE = { SERVING: 'ok', DRAINING: 'warn', DOWN: 'bad' };
// An enum's name without its prefix ("NODE_HEALTH_SERVING" is "SERVING").
const shortName = (v, prefix) => String(v || prefix + 'UNSPECIFIED').replace(prefix, '');
function nodesTable(topology) {
  const shards = topology.shards || [];
  const rows = (topology.nodes || []).map((n) => {
    const health = shortName(n.health, 'NODE_HEALTH_');
    const own = shards.filter((s) => num(s.node) === num(n.id));
    return { attrs: { 'data-node': String(num(n.id)), class: health === 'UNREACHABLE' ? 'attention attention-active' : null },
      cells: [String(num(n.id)), el('span', { class: 'mono' }, orDash(n.address)),
        badge({ label: health.toLowerCase().replace('_', ' '), tone: HEALTH_TONE[health] || 'muted' }),
        el('span', { class: 'wrap' }, own.map((s, i) => {
          const st = shortName(s.state, 'SHARD_STATE_');
          return [i ? ' ' : '', badge({ label: `${num(s.id)} ${st.toLowerCase()}`, tone: SHARD_TONE[st] || 'muted' })];
        })),
        String(own.reduce((a, s) => a + num(s.unfinished), 0)),
        num(n.last_seen_ms_ago) ? fmtAge(num(n.last_seen_ms_ago)) + ' ago' : 'now'] };
  });
  return table('nodes', ['node', 'address', 'health', 'shards', 'unfinished', 'heard from'], rows);
}
function card(id, label, value, extraClass) {
  return el('div', { class: 'card' + (extraClass ? ' ' + extraClass : ''), id },
    el('div', { class: 'card-value' }, value), el('div', { class: 'card-label' }, label));
}
function summaryCards(stats, oldest, attention) {
  let xid = oldest && oldest.xid ? oldest.xid : stats.oldest_unfinished_xid;
  const begun = num(oldest && oldest.xid ? oldest.begun_unix_ms : stats.oldest_unfinished_begun_unix_ms);
  const oldestValue = xid
    ? el('span', null, txLink(xid, { id: 'oldest-link' }), el('span', { class: 'age' }, ' begun ' + fmtAge(Date.now() - begun) + ' ago'))
    : el('span', { class: 'muted' }, 'none');
  return el('div', { class: 'cards' },
    card('stat-attention', el('a', { id: 'needs-attention-link', href: '#/transactions?status=needs-attention' }, 'needs attention'),
      String(attention), attention > 0 ? 'card-attention' : ''),
    card('stat-unfinished', el('a', { href: '#/transactions' }, 'unfinished'), String(num(stats.live_transactions))),
    card('stat-backlog', el('span', { title: 'Branches owed a phase-two command, waiting for a retry or a participant' }, 'phase-two backlog'),
      String(num(stats.retry_backlog))),
    card('stat-oldest', 'oldest unfinished', oldestValue, 'card-wide'));
}
// Needs-attention statuses first, then the other unfinished ones.
function countsTable(counts) {
  const order = ATTENTION.concat(['GLOBAL_STATUS_BEGUN', 'GLOBAL_STATUS_COMMITTING', 'GLOBAL_STATUS_ROLLING_BACK']);
  for (const c of counts) if (!order.includes(c.status)) order.push(c.status);
  const protocols = ['PROTOCOL_TWO_PHASE', 'PROTOCOL_TCC', 'PROTOCOL_SAGA'];
  for (const c of counts) if (!protocols.includes(c.protocol)) protocols.push(c.protocol);
  const cell = (s, p) => counts.filter((c) => c.status === s && (p === null || c.protocol === p)).reduce((a, c) => a + c.count, 0);
  const link = (n, s, p) => {
    if (!n) return el('span', { class: 'zero' }, '0');
    const q = new URLSearchParams();
    if (globalInfo(s).word) q.append('status', globalInfo(s).word);
    if (p && protocolInfo(p).word) q.append('protocol', protocolInfo(p).word);
    return el('a', { href: '#/transactions?' + q.toString() }, String(n));
  };
  const rows = order.map((s) => {
    const total = cell(s, null);
    const attn = ATTENTION.includes(s);
    return {
      attrs: { 'data-status': globalInfo(s).word, class: attn ? 'attention' + (total > 0 ? ' attention-active' : '') : null },
      cells: [el('th', { scope: 'row' }, badge(globalInfo(s)), attn ? el('span', { class: 'attn-note' }, ' needs attention') : null),
        ...protocols.map((p) => link(cell(s, p), s, p)), el('strong', null, link(total, s, null))],
    };
  });
  const sum = counts.reduce((a, c) => a + c.count, 0);
  rows.push({ attrs: { class: 'total' }, cells: [el('th', { scope: 'row' }, 'total'),
    ...protocols.map((p) => String(counts.filter((c) => c.protocol === p).reduce((a, c) => a + c.count, 0))), el('strong', null, String(sum))] });
  return table('counts', ['status', ...protocols.map((p) => protocolInfo(p).word || 'other'), 'total'], rows);
}
function processList(stats) {
  const syncs = num(stats.store_syncs);
  const batches = num(stats.store_batches);
  const items = [
    ['store', stats.store_error ? 'FAILED: ' + stats.store_error : 'ok'],
    ['store syncs', String(syncs)],
    ['store batches', String(batches) + (syncs ? ` (${(batches / syncs).toFixed(2)} per sync)` : '')],
    ['CPU seconds', num(stats.cpu_seconds).toFixed(1)],
    ['resident memory', (num(stats.resident_bytes) / (1024 * 1024)).toFixed(1) + ' MiB'],
    ['pid', orDash(stats.pid)],
  ];
  return el('dl', { class: 'details' }, items.map(([k, v]) => [el('dt', null, k), el('dd', null, v)]));
}

// ------------------------------------------------------------- rate chart
const SERIES = [['begun', 'begun'], ['committed', 'committed'], ['rolled_back', 'rolled back']];
// A whole-number grid step so that four steps cover v.
function niceStep(v) {
  const raw = v / 4;
  if (raw <= 1) return 1;
  const p = Math.pow(10, Math.floor(Math.log10(raw)));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= raw && Number.isInteger(m * p)) return m * p;
  return 10 * p;
}
function rateChart(rate, width) {
  const W = Math.round(width), H = 220, L = 46, R = 14, T = 12, B = 26;
  const pw = W - L - R, ph = H - T - B;
  const pts = rate.map((r) => ({ t: num(r.t_unix_ms), begun: num(r.begun), committed: num(r.committed), rolled_back: num(r.rolled_back) }))
    .filter((p) => p.t > 0).sort((a, b) => a.t - b.t);
  const end = pts.length ? pts[pts.length - 1].t : Date.now();
  const start = end - RATE_WINDOW_MS;
  const shown = pts.filter((p) => p.t >= start);
  let max = 0;
  for (const p of shown) for (const [k] of SERIES) max = Math.max(max, p[k]);
  const top = niceStep(max) * 4;
  const x = (t) => L + ((t - start) / RATE_WINDOW_MS) * pw;
  const y = (v) => T + ph - (v / top) * ph;
  const root = svgEl('svg', { id: 'rate-chart', class: 'chart', viewBox: `0 0 ${W} ${H}`, width: W, height: H,
    role: 'img', 'aria-label': 'Begun, committed and rolled back transactions per second over the last 15 minutes' });
  for (let i = 0; i <= 4; i++) {
    const v = (top * i) / 4;
    root.append(svgEl('line', { class: 'grid', x1: L, x2: W - R, y1: y(v), y2: y(v) }),
      svgEl('text', { class: 'axis', x: L - 6, y: y(v) + 4, 'text-anchor': 'end' }, fmtRate(v)));
  }
  for (const m of [15, 10, 5, 0]) {
    root.append(svgEl('text', { class: 'axis', x: x(end - m * 60000), y: H - 8,
      'text-anchor': m === 15 ? 'start' : m === 0 ? 'end' : 'middle' }, m ? `−${m} min` : 'now'));
  }
  for (const [key, label] of SERIES) {
    if (shown.length === 0) break;
    const points = shown.map((p) => `${x(p.t).toFixed(1)},${y(p[key]).toFixed(1)}`).join(' ');
    const line = svgEl('polyline', { class: `series series-${key}`, points }, svgEl('title', null, label));
    root.append(line);
  }
  if (shown.length === 0) {
    root.append(svgEl('text', { class: 'axis', x: L + pw / 2, y: T + ph / 2, 'text-anchor': 'middle' }, 'no data yet'));
  }
  const legend = el('ul', { class: 'legend-list chart-legend', id: 'rate-legend', 'aria-label': 'series' },
    SERIES.map(([key, label]) => el('li', null, el('span', { class: `legend-line line-${key}` }), label)));
  return el('div', { class: 'chart-wrap' }, legend, root);
}
function rateSummary(rate) {
  const last = rate.length ? rate[rate.length - 1] : null;
  const recent = rate.slice(-60);
  const avg = (k) => recent.length ? recent.reduce((a, r) => a + num(r[k]), 0) / recent.length : 0;
  if (!last) return el('p', { class: 'muted small' }, 'No rate samples yet.');
  return el('p', { class: 'muted small', id: 'rate-summary' },
    'Last minute, average per second: ', SERIES.map(([k, label], i) => [i ? ', ' : '', fmtRate(Math.round(avg(k) * 10) / 10) + ' ' + label]), '.');
}

// ----------------------------------------------------------- transactions
const FILTERS = ['status', 'protocol', 'name', 'older_than', 'resource'];
async function loadTransactions(gen, params) {
  const results = el('div', { id: 'tx-results' }, el('p', { class: 'muted loading' }, 'Loading…'));
  mount(el('div', null, el('h1', null, 'Transactions'), filterForm(params), results));
  const q = new URLSearchParams();
  for (const f of FILTERS) for (const v of params.getAll(f)) if (v) q.append(f, v);
  q.set('limit', '100');
  if (params.get('page_token')) q.set('page_token', params.get('page_token'));
  let data;
  try {
    data = await api('GET', '/api/transactions?' + q.toString());
  } catch (e) {
    if (gen === state.gen) results.replaceChildren(el('p', { class: 'muted' }, 'Could not list transactions.'));
    throw e;
  }
  if (gen !== state.gen) return;
  results.replaceChildren(...[missingBanner(data.missing), txTable(data.transactions || []),
    pager(params, data.next_page_token || '')].filter(Boolean));
}
function field(label, control) {
  return el('label', { class: 'field' }, el('span', null, label), control);
}
function filterForm(params) {
  const status = params.get('status') || '';
  const sel = el('select', { id: 'filter-status', name: 'status' },
    el('option', { value: '' }, 'any unfinished'),
    STATUS_WORDS.map((w) => el('option', { value: w, selected: w === status }, w)));
  const proto = el('select', { id: 'filter-protocol', name: 'protocol' },
    el('option', { value: '' }, 'any'),
    ['2pc', 'tcc', 'saga'].map((w) => el('option', { value: w, selected: w === params.get('protocol') }, w)));
  const text = (id, name, ph, extra) => el('input', Object.assign({ id, name, type: 'text', placeholder: ph,
    value: params.get(name) || '', autocomplete: 'off', spellcheck: 'false' }, extra));
  const form = el('form', { id: 'filters', class: 'filters panel' },
    field('Status', sel), field('Protocol', proto),
    field('Name', text('filter-name', 'name', 'exact name')),
    field('Older than', text('filter-older-than', 'older_than', 'e.g. 30s, 10m, 2h',
      { pattern: '\\s*\\d+\\s*(ms|s|m|h|d)?\\s*', title: 'A number and a unit: ms, s, m, h or d' })),
    field('Resource', text('filter-resource', 'resource', 'branch or step resource')),
    el('div', { class: 'filter-buttons' },
      el('button', { type: 'submit', id: 'filter-apply', class: 'primary' }, 'Apply'),
      el('a', { href: '#/transactions', class: 'button', id: 'filter-clear' }, 'Clear')));
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    const q = new URLSearchParams();
    for (const f of FILTERS) {
      const v = (form.elements[f] && form.elements[f].value || '').trim();
      if (v) q.set(f, v);
    }
    go('#/transactions' + (q.toString() ? '?' + q.toString() : ''));
  });
  return form;
}
// "reason / last error": the transaction's reason, else its first failure.
function txProblem(t) {
  if (t.reason) return t.reason;
  for (const b of t.branches || []) if (b.last_error || b.phase_one_error) return b.last_error || b.phase_one_error;
  for (const p of (t.saga && t.saga.steps) || []) if (p.last_error) return p.last_error;
  return '';
}
function txTable(list) {
  if (list.length === 0) return el('p', { class: 'muted', id: 'tx-empty' }, 'No transactions match.');
  const now = Date.now();
  const rows = list.map((t) => {
    const status = enumKey(GLOBAL_NAMES, t.status);
    const saga = t.saga && (t.saga.steps || (t.saga.definition && t.saga.definition.steps));
    const parts = saga ? plural(saga.length, 'step', 'steps') : plural((t.branches || []).length, 'branch', 'branches');
    return {
      attrs: { 'data-xid': t.xid || '', class: ATTENTION.includes(status) ? 'attention' : null },
      cells: [txLink(t.xid || ''), orDash(t.name), protocolInfo(t.protocol).label,
        [badge(globalInfo(status)), t.paused ? badge({ label: 'paused', tone: 'warn' }, 'small') : null],
        el('span', { title: fmtTime(t.begun_unix_ms) }, fmtAge(now - num(t.begun_unix_ms))), parts,
        el('span', { class: 'wrap' }, orDash(txProblem(t)))],
    };
  });
  return el('div', null, el('p', { class: 'muted small' }, plural(list.length, 'transaction', 'transactions') + ' on this page'),
    table('tx-table', ['xid', 'name', 'protocol', 'status', 'age', 'branches / steps', 'reason / last error'], rows));
}
function pager(params, next) {
  const base = new URLSearchParams(params);
  base.delete('page_token');
  const hash = (token) => {
    const q = new URLSearchParams(base);
    if (token) q.set('page_token', token);
    return '#/transactions' + (q.toString() ? '?' + q.toString() : '');
  };
  return el('nav', { class: 'pager', 'aria-label': 'pages' },
    params.get('page_token') ? el('a', { id: 'first-page', class: 'button', href: hash('') }, '« first page') : null,
    next ? el('a', { id: 'next-page', class: 'button', href: hash(next) }, 'next page »') : null);
}

// ------------------------------------------------------- one transaction
async function loadTx(gen, xid, afterAction) {
  let t;
  try {
    t = await api('GET', '/api/transactions/' + encodeURIComponent(xid));
  } catch (e) {
    if (gen !== state.gen || e.auth || e.status !== 404) throw e;
    mount(el('div', null, el('h1', null, 'Transaction ', el('code', null, xid)), actionResultNode(xid),
      el('p', { class: 'muted', id: 'tx-missing' }, 'No such transaction: it never existed here, or it was forgotten and purged.')));
    if (afterAction !== 'forget') showError(e.message);
    return;
  }
  if (gen !== state.gen) return;
  mount(renderTx(t));
}
function renderTx(t) {
  const xid = t.xid || '';
  const status = enumKey(GLOBAL_NAMES, t.status);
  const saga = t.saga ? t.saga : null;
  return el('div', { class: 'tx', 'data-xid': xid },
    el('div', { class: 'tx-head' },
      el('h1', null, 'Transaction ', el('code', { id: 'tx-xid' }, xid)),
      el('button', { type: 'button', id: 'tx-reload', class: 'small-button',
        onclick: () => { const g = state.gen; loadTx(g, xid).catch((e) => { if (g === state.gen) handleError(e); }); } }, 'Reload'),
      el('div', { class: 'badges' }, badge(globalInfo(status), ATTENTION.includes(status) ? 'big' : ''),
        badge({ label: protocolInfo(t.protocol).label, tone: 'muted' }),
        t.paused ? badge({ label: 'paused', tone: 'warn' }) : null)),
    actionBar(t), actionResultNode(xid),
    section('Details', txDetails(t, status)),
    section('Timeline', timeline(t, status)),
    saga ? section('Saga steps', sagaGraphPanel(saga), stepTable(saga)) : section('Branches', branchTable(t.branches || [])),
    section('Audit', auditTable(t.audit || [])));
}
function txDetails(t, status) {
  const items = [
    ['name', orDash(t.name)],
    ['protocol', protocolInfo(t.protocol).label],
    ['status', globalInfo(status).label + (ATTENTION.includes(status) ? ' (needs attention)' : '')],
    ['paused', t.paused ? 'yes — no phase-two commands go out until resumed' : 'no'],
    ['reason', orDash(t.reason)],
    ['begun', timeNode(t.begun_unix_ms)],
    ['deadline', timeNode(t.deadline_unix_ms)],
    ['decided', timeNode(t.decided_unix_ms)],
    ['finished', timeNode(t.finished_unix_ms)],
    ['next action', timeNode(t.next_action_unix_ms)],
    ['timeout', t.timeout_ms ? `${num(t.timeout_ms)} ms` : '-'],
    ['request id', orDash(t.request_id)],
  ];
  return el('dl', { class: 'details', id: 'tx-details' }, items.map(([k, v]) => [el('dt', null, k), el('dd', null, v)]));
}
function timeline(t, status) {
  const events = [];
  const add = (ms, label, text, cls) => { if (num(ms)) events.push({ ms: num(ms), label, text, cls }); };
  add(t.begun_unix_ms, 'begun', t.timeout_ms ? `timeout ${num(t.timeout_ms)} ms` : '', 'ev-begun');
  if (!num(t.decided_unix_ms) && status === 'GLOBAL_STATUS_BEGUN') {
    add(t.deadline_unix_ms, 'deadline', 'rolled back with reason "timeout" if still open', 'ev-future');
  }
  add(t.decided_unix_ms, COMMIT_SIDE.includes(status) ? 'decided: commit' : 'decided: rollback',
    COMMIT_SIDE.includes(status) ? '' : t.reason || '', 'ev-decided');
  add(t.finished_unix_ms, 'finished: ' + globalInfo(status).label, '', 'ev-finished');
  for (const a of t.audit || []) {
    add(a.unix_ms, 'operator: ' + (a.action || '?'),
      [a.actor ? 'by ' + a.actor : '', a.reason ? 'reason: ' + a.reason : '', a.detail || ''].filter(Boolean).join(' · '), 'ev-audit');
  }
  events.sort((a, b) => a.ms - b.ms);
  if (!events.length) return el('p', { class: 'muted' }, 'No events.');
  return el('ol', { class: 'timeline', id: 'timeline' }, events.map((e) => el('li', { class: e.cls },
    el('span', { class: 'tl-time' }, timeNode(e.ms, false)), el('span', { class: 'tl-label' }, e.label),
    e.text ? el('span', { class: 'tl-text' }, e.text) : null)));
}
function branchTable(branches) {
  if (!branches.length) return el('p', { class: 'muted' }, 'No branches registered.');
  return table('branches', ['branch', 'type', 'resource', 'status', 'attempts', 'last error', 'next retry', 'instance'],
    branches.map((b) => {
      const err = b.last_error || (b.phase_one_error ? 'phase one: ' + b.phase_one_error : '');
      return { attrs: { 'data-branch': String(b.branch_id || '0') },
        cells: [String(b.branch_id || '0'), enumKey(BRANCH_TYPE_NAMES, b.type).replace('BRANCH_TYPE_', '').toLowerCase(),
          orDash(b.resource), badge(branchInfo(b.status)), String(num(b.attempts)),
          el('span', { class: 'wrap' }, orDash(err)), timeNode(b.next_retry_unix_ms), orDash(b.instance_id)] };
    }));
}
// Pairs each definition step with its progress (same order).
function sagaSteps(saga) {
  const defs = (saga.definition && saga.definition.steps) || [];
  const progress = saga.steps || [];
  return defs.map((d, i) => ({ def: d, p: progress[i] || {} }));
}
function stepAttempts(p) {
  const c = num(p.compensation_attempts);
  return String(num(p.attempts)) + (c > 0 ? '+' + c : '');
}
function stepTable(saga) {
  const steps = sagaSteps(saga);
  if (!steps.length) return el('p', { class: 'muted' }, 'The saga has no steps.');
  return table('steps', ['step', 'action resource', 'compensation', 'after', 'status', 'attempts', 'last error', 'next attempt'],
    steps.map(({ def, p }) => ({ attrs: { 'data-step': def.name || '' },
      cells: [orDash(def.name), orDash(def.action && def.action.resource),
        (def.compensation && def.compensation.resource) || 'same resource',
        el('span', { class: 'wrap-sm' }, orDash((def.depends_on || []).join(', '))), badge(stepInfo(p.status)), stepAttempts(p),
        el('span', { class: 'wrap' }, orDash(p.last_error)), timeNode(p.next_attempt_unix_ms)] })));
}
function auditTable(audit) {
  if (!audit.length) return el('p', { class: 'muted' }, 'No operator actions yet.');
  return table('audit', ['when', 'action', 'by', 'reason', 'detail'], audit.map((a) => [
    timeNode(a.unix_ms), orDash(a.action), orDash(a.actor), el('span', { class: 'wrap' }, orDash(a.reason)),
    el('span', { class: 'wrap' }, orDash(a.detail))]));
}

// -------------------------------------------------------------- saga DAG
// Depth of each step: 0 without dependencies, else one past its deepest
// dependency. Unknown names and cycles are tolerated.
function stepDepths(defs) {
  const index = new Map(defs.map((d, i) => [d.name || '', i]));
  const depth = new Array(defs.length).fill(-1);
  const visiting = new Set();
  const visit = (i) => {
    if (depth[i] >= 0) return depth[i];
    if (visiting.has(i)) return 0;
    visiting.add(i);
    let best = 0;
    for (const dep of defs[i].depends_on || []) {
      const j = index.get(dep);
      if (j !== undefined) best = Math.max(best, visit(j) + 1);
    }
    visiting.delete(i);
    depth[i] = best;
    return best;
  };
  defs.forEach((_, i) => visit(i));
  return { depth, index };
}
function compNote(p) {
  const info = stepInfo(p.status);
  if (info.comp) return info.comp;
  const c = num(p.compensation_attempts);
  return c > 0 ? `compensation tried ×${c}` : 'no compensation run';
}
function clip(s, n) {
  return s.length > n ? s.slice(0, n - 1) + '…' : s;
}
function sagaGraph(saga) {
  const steps = sagaSteps(saga);
  const defs = steps.map((s) => s.def);
  const { depth, index } = stepDepths(defs);
  const layers = [];
  depth.forEach((d, i) => { (layers[d] = layers[d] || []).push(i); });
  const BW = 204, BH = 60, GX = 56, GY = 16, P = 12;
  const rows = Math.max(1, ...Array.from(layers, (l) => (l ? l.length : 0)));
  const W = P * 2 + layers.length * BW + Math.max(0, layers.length - 1) * GX;
  const H = P * 2 + rows * BH + (rows - 1) * GY;
  const pos = [];
  layers.forEach((layer, li) => {
    if (!layer) return;
    const off = ((rows - layer.length) * (BH + GY)) / 2;
    layer.forEach((i, r) => { pos[i] = { x: P + li * (BW + GX), y: P + off + r * (BH + GY) }; });
  });
  const root = svgEl('svg', { id: 'saga-graph', class: 'saga-graph', viewBox: `0 0 ${W} ${H}`, width: W, height: H,
    role: 'img', 'aria-label': 'Saga steps by dependency' },
  svgEl('defs', null, svgEl('marker', { id: 'saga-arrow', viewBox: '0 0 10 10', refX: 9, refY: 5,
    markerWidth: 7, markerHeight: 7, orient: 'auto' }, svgEl('path', { class: 'arrowhead', d: 'M0,0 L10,5 L0,10 z' }))));
  defs.forEach((d, i) => {
    for (const dep of d.depends_on || []) {
      const j = index.get(dep);
      if (j === undefined || !pos[j] || !pos[i]) continue;
      const x1 = pos[j].x + BW, y1 = pos[j].y + BH / 2, x2 = pos[i].x - 2, y2 = pos[i].y + BH / 2;
      root.append(svgEl('path', { class: 'edge', 'marker-end': 'url(#saga-arrow)',
        d: `M${x1},${y1} C${x1 + GX / 2},${y1} ${x2 - GX / 2},${y2} ${x2},${y2}` },
      svgEl('title', null, `${dep} → ${d.name || ''}`)));
    }
  });
  steps.forEach(({ def, p }, i) => {
    const info = stepInfo(p.status);
    const name = def.name || `step ${i + 1}`;
    const g = svgEl('g', { class: `step tone-${info.tone}`, transform: `translate(${pos[i].x},${pos[i].y})`, 'data-step': name },
      svgEl('title', null, `${name}: ${info.label}; attempts ${stepAttempts(p)}${p.last_error ? '; ' + p.last_error : ''}`),
      svgEl('rect', { width: BW, height: BH, rx: 7 }),
      svgEl('text', { class: 'step-name', x: 10, y: 19 }, clip(name, 22)),
      svgEl('text', { class: 'step-status', x: 10, y: 36 }, info.label + (num(p.attempts) > 1 ? ` · ×${num(p.attempts)}` : '')),
      svgEl('text', { class: 'step-comp', x: 10, y: 52 }, '↩ ' + compNote(p)));
    root.append(g);
  });
  return root;
}
function sagaLegend() {
  const shown = ['STEP_STATUS_SUCCEEDED', 'STEP_STATUS_PENDING', 'STEP_STATUS_RUNNING', 'STEP_STATUS_FAILED',
    'STEP_STATUS_COMPENSATION_PENDING', 'STEP_STATUS_COMPENSATING', 'STEP_STATUS_COMPENSATED',
    'STEP_STATUS_COMPENSATION_FAILED', 'STEP_STATUS_SKIPPED'];
  return el('ul', { class: 'legend-list', id: 'saga-legend', 'aria-label': 'step status colours' },
    shown.map((s) => el('li', null, el('span', { class: `swatch-box tone-${STEP[s].tone}` }), STEP[s].label)));
}
function sagaGraphPanel(saga) {
  const def = saga.definition || {};
  const notes = [def.forward_recovery ? 'forward recovery (never compensates)' : 'compensates on failure',
    def.max_parallel ? `at most ${def.max_parallel} in flight` : 'no parallelism limit'];
  return el('div', { class: 'saga' }, el('p', { class: 'muted small' }, notes.join(' · ')), sagaLegend(),
    el('div', { class: 'graph-wrap' }, sagaGraph(saga)));
}

// ---------------------------------------------------------------- actions
function actionBar(t) {
  return el('div', { class: 'actions', role: 'group', 'aria-label': 'operator actions' },
    ACTIONS.map((a) => el('button', { type: 'button', id: 'action-' + a.id, class: a.danger ? 'danger' : null,
      onclick: () => openConfirm(a, t.xid || '') }, a.label)));
}
function actionResultNode(xid) {
  const r = state.actionResult && state.actionResult.xid === xid ? state.actionResult : null;
  return el('div', { id: 'action-result', class: r ? (r.ok ? 'result ok' : 'result fail') : 'result', role: 'status',
    'aria-live': 'polite' }, r ? r.text : '');
}
function openConfirm(action, xid) {
  state.pending = { action, xid };
  $('confirm-title').textContent = `${action.label} ${xid}?`;
  $('confirm-text').textContent = action.text;
  $('confirm-reason-label').textContent = action.reason ? 'Reason (required, kept in the audit)' : 'Reason (optional)';
  const reason = $('confirm-reason');
  reason.value = '';
  reason.required = action.reason;
  $('confirm-ok').textContent = action.label;
  $('confirm-ok').className = action.danger ? 'danger' : 'primary';
  updateConfirmOk();
  const dialog = $('confirm');
  if (!dialog.open) dialog.showModal();
  reason.focus();
}
function updateConfirmOk() {
  const p = state.pending;
  $('confirm-ok').disabled = !p || (p.action.reason && !$('confirm-reason').value.trim());
}
function closeConfirm() {
  state.pending = null;
  const dialog = $('confirm');
  if (dialog.open) dialog.close();
}
function onConfirm() {
  const p = state.pending;
  const reason = $('confirm-reason').value.trim();
  if (!p || (p.action.reason && !reason)) return;
  closeConfirm();
  runAction(p.action, p.xid, reason).catch((e) => handleError(e));
}
// Sends the action, shows its outcome and reloads the transaction.
async function runAction(action, xid, reason) {
  const gen = state.gen;
  for (const b of document.querySelectorAll('.actions button')) b.disabled = true;
  let ok = false;
  try {
    const r = await api('POST', `/api/transactions/${encodeURIComponent(xid)}/${action.id}`, { reason });
    const t = r.transaction || {};
    const audit = t.audit || [];
    const detail = audit.length ? audit[audit.length - 1].detail : '';
    ok = true;
    state.actionResult = { xid, ok: true, text: `${action.label}: done. ${t.xid || xid} is ${globalInfo(t.status).label}` +
      `${t.paused ? ' (paused)' : ''}${detail ? '; ' + detail : ''}.` };
  } catch (e) {
    if (e.auth) return;
    state.actionResult = { xid, ok: false, text: `${action.label} refused: ${e.message}` };
    showError(e.message);
  }
  if (gen !== state.gen) return;
  const box = $('action-result');
  if (box) box.textContent = state.actionResult.text;
  try {
    await loadTx(gen, xid, ok ? action.id : '');
  } finally {
    for (const b of document.querySelectorAll('.actions button')) b.disabled = false;
  }
}

// ----------------------------------------------------------- participants
async function loadParticipants(gen) {
  const data = await api('GET', '/api/participants');
  if (gen !== state.gen) return;
  const list = (data.participants || []).slice().sort((a, b) =>
    String(a.service || '').localeCompare(String(b.service || '')) ||
    String(a.instance_id || '').localeCompare(String(b.instance_id || '')));
  // Each participant attaches to every node; the column shows to which.
  const nodeIds = new Set(list.flatMap((p) => String(p.nodes || '').split(',').filter(Boolean)));
  const clustered = nodeIds.size > 1 || (data.missing || []).length > 0;
  const head = ['service', 'instance', 'resources', 'attached since', 'last seen', 'in flight'];
  if (clustered) head.push('nodes');
  const body = list.length === 0
    ? el('p', { class: 'muted', id: 'participants-empty' }, 'No participants attached.')
    : table('participants', head,
      list.map((p) => ({ attrs: { 'data-instance': p.instance_id || '' },
        cells: [orDash(p.service), orDash(p.instance_id), el('span', { class: 'wrap' }, orDash((p.resources || []).join(', '))),
          timeNode(p.attached_unix_ms), el('span', { title: fmtTime(p.last_seen_unix_ms) }, fmtRelative(p.last_seen_unix_ms)),
          String(num(p.commands_in_flight)), ...(clustered ? [orDash(p.nodes)] : [])] })));
  mount(el('div', null, el('h1', null, 'Participants'), missingBanner(data.missing),
    el('p', { class: 'muted small' }, plural(list.length, 'participant', 'participants') +
      (clustered ? ' attached to the cluster.' : ' attached to this coordinator.')),
    section('Attached participants', body)));
}

// ------------------------------------------------------------------ start
function init() {
  $('signin').addEventListener('submit', (ev) => { onSignin(ev).catch(handleError); });
  $('signout').addEventListener('click', () => { onSignout().catch(handleError); });
  $('error').addEventListener('click', clearError);
  $('confirm-reason').addEventListener('input', updateConfirmOk);
  $('confirm-ok').addEventListener('click', onConfirm);
  $('confirm-cancel').addEventListener('click', closeConfirm);
  $('confirm').addEventListener('cancel', () => { state.pending = null; });
  window.addEventListener('hashchange', route);
  window.addEventListener('unhandledrejection', (ev) => { ev.preventDefault(); handleError(ev.reason); });
  try { state.csrf = localStorage.getItem(CSRF_KEY) || ''; } catch (e) { state.csrf = ''; }
  api('GET', '/api/session').then((s) => {
    startSession(s);
    route();
  }).catch((e) => {
    if (!e.auth) showError(e.message);
    if (!state.signedIn) showSignin('');
  });
}

if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', init);
else init();
