// The AIOS dashboard: one EventSource on api/events. A "state" event (every 500 ms)
// carries the kernel's state; "end" events carry each syscall as it ends; "approvals"
// events the approvals panel's content whenever it changes; "shutdown" says the kernel
// stopped. With access.auth on, the page first asks api/session who it is; on 401 it
// shows a sign-in form that posts an admin key to login, which answers with a session
// cookie for /ui. Every request that changes something carries X-AIOS-UI: 1, which the
// server requires so that another site's form cannot post with the cookie. Plain DOM,
// no framework, nothing loaded from elsewhere.
'use strict';

const view = {
  state: null,
  calls: new Map(), // syscall id -> the latest view of it, in flight or ended
  offset: 0, // kernel clock minus ours, so bars end at the kernel's "now"
  windowSec: 60, // or 'fit': from the first call shown to now
  spanSec: 60, // the window drawn last
  agent: '', // the agent the timeline is narrowed to; '' for all
  picked: 0, // the syscall whose details show
  updates: 0,
};
const KEEP_MS = 5 * 60 * 1000;
const MAX_CALLS = 4000;

const $ = (id) => document.getElementById(id);

// el builds an element: attrs become attributes (data-* included), except className,
// and children may be strings or nodes.
function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'className') e.className = v;
    else e.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    e.append(c instanceof Node ? c : String(c));
  }
  return e;
}

const fmtInt = (n) => Math.round(n || 0).toLocaleString('en-US');

function fmtDur(ms) {
  if (ms < 1) return ms.toFixed(2) + ' ms';
  if (ms < 1000) return ms.toFixed(0) + ' ms';
  if (ms < 60000) return (ms / 1000).toFixed(2) + ' s';
  const s = Math.floor(ms / 1000);
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), r = s % 60;
  return (h ? h + 'h ' : '') + String(m).padStart(h ? 2 : 1, '0') + 'm ' + String(r).padStart(2, '0') + 's';
}

function fmtClock(ms) {
  const d = new Date(ms);
  return d.toLocaleTimeString('en-GB', { hour12: false }) + '.' + String(d.getMilliseconds()).padStart(3, '0');
}

const kernelNow = () => Date.now() + view.offset;

// --- signing in -----------------------------------------------------------------------

const UI_HEADER = { 'X-AIOS-UI': '1' };
let stream = null; // the EventSource while the page is signed in (or needs no sign-in)

function setConn(state, text) {
  const conn = $('connection');
  conn.dataset.state = state;
  conn.textContent = text;
}

// start asks who the page is: signed in (or the kernel asks for no keys), then the
// stream starts; 401, then the sign-in form shows.
async function start() {
  let r;
  try {
    r = await fetch('api/session', { cache: 'no-store' });
  } catch (e) {
    setConn('reconnecting', 'kernel unreachable');
    setTimeout(start, 2000);
    return;
  }
  if (r.status === 401) {
    showSignIn('');
    return;
  }
  showDashboard(r.ok ? await r.json() : {});
  connect();
}

function showSignIn(message) {
  if (stream) { stream.close(); stream = null; }
  $('main').hidden = true;
  $('session').hidden = true;
  $('approvals-alert').hidden = true;
  $('signin').hidden = false;
  setConn('signed-out', 'signed out');
  const err = $('signin-error');
  err.textContent = message;
  err.hidden = !message;
  $('signin-key').focus();
}

function showDashboard(info) {
  $('signin').hidden = true;
  $('main').hidden = false;
  // Only a session can be ended from here; a page that sent its key some other way has
  // nothing to sign out of.
  $('session').hidden = !info.session;
  $('session-who').textContent = info.principal || '';
}

async function signIn(ev) {
  ev.preventDefault();
  const key = $('signin-key').value.trim();
  const button = $('signin-submit');
  button.disabled = true;
  try {
    // The key goes as a header, as any client sends it: the server authenticates the
    // sign-in like every other request.
    const r = await fetch('login', { method: 'POST', cache: 'no-store', headers: { ...UI_HEADER, Authorization: 'Bearer ' + key } });
    const body = await r.json().catch(() => ({}));
    if (!r.ok) {
      const why = r.status === 401 ? 'That key is not valid'
        : r.status === 403 ? 'That key may not open the dashboard' : `Signing in failed (HTTP ${r.status})`;
      showSignIn(body.detail ? `${why}: ${body.detail}` : why + '.');
      return;
    }
    $('signin-key').value = '';
    showDashboard(body);
    connect();
  } catch (e) {
    showSignIn('That is not a key, or the kernel cannot be reached: ' + e.message);
  } finally {
    button.disabled = false;
  }
}

async function signOut() {
  try {
    await fetch('logout', { method: 'POST', headers: UI_HEADER });
  } catch (e) {
    // Signed out here all the same: the session ends on its own.
  }
  showSignIn('');
}

// --- the stream ---------------------------------------------------------------------

function connect() {
  if (stream) stream.close();
  const es = new EventSource('api/events');
  stream = es;
  es.addEventListener('open', () => setConn('live', 'live'));
  es.addEventListener('error', () => {
    if ($('connection').dataset.state === 'stopped') return;
    if (es.readyState === EventSource.CLOSED) {
      // The server answered, but not with the stream (401 once the session ends):
      // EventSource gives up, so ask again who the page is.
      stream = null;
      setConn('reconnecting', 'reconnecting…');
      setTimeout(start, 1000);
      return;
    }
    setConn('reconnecting', 'reconnecting…');
  });
  es.addEventListener('state', (ev) => onState(JSON.parse(ev.data)));
  es.addEventListener('end', (ev) => { remember(JSON.parse(ev.data)); scheduleTimeline(); });
  es.addEventListener('approvals', (ev) => onApprovals(JSON.parse(ev.data)));
  es.addEventListener('shutdown', () => {
    es.close();
    setConn('stopped', 'kernel stopped');
    $('status').textContent = 'stopped';
  });
}

function remember(c) {
  const old = view.calls.get(c.id);
  if (old && old.end_ms && !c.end_ms) return; // an ended call never runs again
  view.calls.set(c.id, c);
}

function onState(st) {
  view.state = st;
  view.offset = st.time_ms - Date.now();
  for (const c of st.recent || []) remember(c);
  // Calls in flight last time and not now have ended; their "end" event brings them back.
  const live = new Set(st.inflight.map((c) => c.id));
  for (const [id, c] of view.calls) {
    if (!c.end_ms && !live.has(id)) view.calls.delete(id);
  }
  for (const c of st.inflight) remember(c);
  prune();
  view.updates++;
  document.body.dataset.updates = String(view.updates);
  renderHeader(st);
  renderAgents(st);
  renderQueues(st);
  renderCores(st);
  renderTokens(st);
  renderTools(st);
  renderTimeline();
}

function prune() {
  const horizon = kernelNow() - KEEP_MS;
  for (const [id, c] of view.calls) {
    if (c.end_ms && c.end_ms < horizon) view.calls.delete(id);
  }
  if (view.calls.size > MAX_CALLS) {
    const ended = [...view.calls.values()].filter((c) => c.end_ms).sort((a, b) => a.end_ms - b.end_ms);
    for (const c of ended.slice(0, view.calls.size - MAX_CALLS)) view.calls.delete(c.id);
  }
}

// --- panels -------------------------------------------------------------------------

function renderHeader(st) {
  $('status').textContent = st.status;
  $('scheduler').textContent = st.scheduler;
  $('uptime').textContent = fmtDur(st.time_ms - st.started_ms);
  $('total-tokens').textContent = fmtInt(st.usage.total_tokens);
}

function renderAgents(st) {
  const body = $('agents').tBodies[0];
  const rows = st.agents.map((a) => {
    const live = a.queued + a.running > 0;
    const progs = el('td', { className: 'progs', 'data-testid': 'agent-programs' });
    a.programs.forEach((p, i) => {
      if (i) progs.append(', ');
      progs.append(el('span', { className: 'prog' + (p.inflight ? ' live' : ''), title: p.inflight ? p.inflight + ' in flight' : null }, p.name));
    });
    const tr = el('tr', {
      className: 'agent' + (view.agent === a.name ? ' selected' : ''),
      'data-testid': 'agent-row', 'data-agent': a.name, 'aria-selected': view.agent === a.name ? 'true' : 'false',
    },
    el('td', { 'data-testid': 'agent-name' }, el('span', { className: 'dot' + (live ? ' live' : '') }), a.name),
    progs,
    el('td', { className: 'num', 'data-testid': 'agent-queued' }, a.queued),
    el('td', { className: 'num', 'data-testid': 'agent-running' }, a.running),
    el('td', { className: 'num', 'data-testid': 'agent-calls' }, fmtInt(a.usage.calls)),
    el('td', { className: 'num', 'data-testid': 'agent-tokens', 'data-value': a.usage.total_tokens }, fmtInt(a.usage.total_tokens)));
    tr.addEventListener('click', () => selectAgent(view.agent === a.name ? '' : a.name));
    return tr;
  });
  body.replaceChildren(...rows);
  $('agents-empty').hidden = rows.length > 0;
}

function renderQueues(st) {
  const most = Math.max(1, ...st.modules.map((m) => m.queued + m.running));
  const rows = st.modules.map((m) => el('tr', { 'data-testid': 'queue-row', 'data-module': m.name, className: m.enabled ? '' : 'off' },
    el('td', {}, el('i', { className: 'sw ' + m.name }), m.name, m.enabled ? '' : ' (off)'),
    el('td', { className: 'num', 'data-testid': 'queued' }, m.queued),
    el('td', { className: 'num', 'data-testid': 'running' }, m.running),
    el('td', { style: null }, bar((m.queued / most) * 100, 'queue'))));
  $('queues').tBodies[0].replaceChildren(...rows);
  const ws = st.working_set;
  $('workingset').replaceChildren(ws
    ? el('div', { className: 'kv-line' }, `working set: ${ws.active} programs active holding ${fmtInt(ws.tokens)} tokens; ${ws.admissions} admitted, ${ws.suspensions} suspended`)
    : el('div', { className: 'kv-line' }, 'working-set admission is off'));
}

function bar(pct, kind) {
  const inner = el('span');
  inner.style.width = Math.max(0, Math.min(100, pct)).toFixed(1) + '%';
  return el('div', { className: 'bar ' + (kind || '') + (kind === 'kv' && pct >= 90 ? ' high' : ''), 'data-pct': pct.toFixed(1) }, inner);
}

function renderCores(st) {
  const running = new Map();
  for (const c of st.inflight) {
    if (c.core) (running.get(c.core) || running.set(c.core, []).get(c.core)).push(c);
  }
  const cards = st.cores.map((c) => {
    const pct = c.max_tokens_inflight > 0 ? (100 * c.tokens_inflight) / c.max_tokens_inflight : 0;
    const state = c.healthy ? (c.state || 'ok') : (c.state || 'down');
    const calls = running.get(c.id) || [];
    const kv = bar(pct, 'kv');
    kv.dataset.testid = 'kv-bar';
    return el('div', { className: 'core', 'data-testid': 'core', 'data-core': c.id },
      el('div', { className: 'head' }, el('b', { title: c.id }, c.id), el('span', { className: 'badge ' + state }, state)),
      el('div', { className: 'row' }, 'in flight',
        el('b', { 'data-testid': 'core-inflight' }, `${c.inflight} / ${c.max_inflight || '∞'}`),
        `· done ${fmtInt(c.completed)} · failed ${fmtInt(c.failed)}`),
      el('div', { className: 'row' }, 'KV', kv,
        el('span', { 'data-testid': 'core-kv' }, c.max_tokens_inflight > 0
          ? `${fmtInt(c.tokens_inflight)} / ${fmtInt(c.max_tokens_inflight)} (${pct.toFixed(0)}%)`
          : `${fmtInt(c.tokens_inflight)} tokens`)),
      calls.length ? el('ul', {}, ...calls.map((x) => el('li', { 'data-testid': 'core-call', 'data-agent': x.agent },
        `${x.agent} / ${x.program} #${x.id} · ${fmtInt(x.tokens)} tokens`))) : null);
  });
  $('cores').replaceChildren(...cards);
}

function renderTokens(st) {
  const agents = st.agents.filter((a) => a.usage.calls > 0);
  const most = Math.max(1, ...agents.map((a) => a.usage.total_tokens));
  const rows = agents.map((a) => {
    const p = el('span');
    p.style.width = ((100 * a.usage.prompt_tokens) / most).toFixed(1) + '%';
    const c = el('span', { className: 'c' });
    c.style.left = p.style.width;
    c.style.width = ((100 * a.usage.completion_tokens) / most).toFixed(1) + '%';
    return el('div', { className: 'tok', 'data-testid': 'token-row', 'data-agent': a.name },
      el('span', { className: 'name', title: a.name }, a.name),
      el('div', { className: 'bar', title: `prompt ${fmtInt(a.usage.prompt_tokens)} · completion ${fmtInt(a.usage.completion_tokens)}` }, p, c),
      el('span', { className: 'val', 'data-testid': 'token-total', 'data-value': a.usage.total_tokens }, fmtInt(a.usage.total_tokens)));
  });
  $('tokens').replaceChildren(...(rows.length ? rows : [el('p', { className: 'empty' }, 'No LLM call has ended yet.')]));
}

function renderTools(st) {
  const tools = (st.tools && st.tools.tools) || [];
  const rows = tools.map((t) => el('tr', { 'data-testid': 'tool-row', 'data-tool': t.name },
    el('td', {}, t.name),
    el('td', { className: 'num' }, `${t.inflight} / ${(t.limits && t.limits.concurrency) || '∞'}`),
    el('td', { className: 'num', 'data-testid': 'tool-calls' }, fmtInt(t.calls)),
    el('td', { className: 'num' }, fmtInt(t.errors)),
    el('td', {}, el('span', { className: 'badge ' + (t.breaker_state === 'closed' ? '' : 'open') }, t.breaker_state || 'closed'))));
  $('tools').tBodies[0].replaceChildren(...rows);
  $('tools').hidden = !st.tools;
  $('tools-empty').hidden = !!st.tools;
  const m = st.memory;
  $('memory').replaceChildren(m
    ? el('div', { className: 'kv-line' }, `memory: ${fmtInt(m.notes)} notes, ${fmtInt(m.hot_notes)} hot (${fmtInt(m.hot_bytes)} of ${fmtInt(m.budget_bytes)} bytes), ${fmtInt(m.evictions)} evictions, ${fmtInt(m.faults)} faults`)
    : '');
}

// --- the timeline ---------------------------------------------------------------------

let timelinePending = false;
function scheduleTimeline() {
  if (timelinePending) return;
  timelinePending = true;
  requestAnimationFrame(() => { timelinePending = false; renderTimeline(); });
}

function selectAgent(name) {
  view.agent = name;
  $('filter').hidden = !name;
  $('filter-agent').textContent = name;
  if (view.state) renderAgents(view.state);
  renderTimeline();
}

// Each lane is an agent, or, with an agent selected, one of its programs. Calls that
// overlap in a lane (parallel tool calls, say) go on rows of their own.
function renderTimeline() {
  const now = kernelNow();
  view.spanSec = view.windowSec === 'fit' ? fitSeconds(now) : view.windowSec;
  const win = view.spanSec * 1000;
  const t0 = now - win;
  const lanes = new Map();
  for (const c of view.calls.values()) {
    const end = c.end_ms || now;
    if (end < t0) continue;
    if (view.agent && c.agent !== view.agent) continue;
    const key = view.agent ? c.program : c.agent;
    (lanes.get(key) || lanes.set(key, []).get(key)).push(c);
  }
  const keys = [...lanes.keys()].sort();
  // A bar is drawn at least 3 px wide (a storage call takes a millisecond), so rows are
  // packed by what is drawn, with a pixel between bars, not by the calls' times alone.
  const trackPx = Math.max(100, $('timeline').clientWidth - 150);
  const minMs = (win * 4) / trackPx;
  const grid = (100 * tickStep()) / view.spanSec + '% 100%';
  const out = keys.map((key) => {
    const calls = lanes.get(key).sort((a, b) => a.arrival_ms - b.arrival_ms || a.id - b.id);
    const rowEnds = [];
    const track = el('div', { className: 'track' });
    for (const c of calls) {
      const end = c.end_ms || now;
      const from = Math.max(c.arrival_ms, t0);
      let row = rowEnds.findIndex((e) => e <= from);
      if (row < 0) { row = rowEnds.length; rowEnds.push(0); }
      rowEnds[row] = Math.max(end, from + minMs);
      track.append(callBar(c, t0, win, end, row));
    }
    track.style.height = (rowEnds.length * 14 + 2) + 'px';
    track.style.backgroundSize = grid;
    const agent = view.agent || key;
    const label = el('div', { className: 'label', 'data-testid': 'lane-label', title: view.agent ? `program ${key}` : `agent ${key}: click to show its programs` }, key);
    label.addEventListener('click', () => selectAgent(view.agent ? '' : agent));
    return el('div', { className: 'lane', 'data-testid': 'lane', 'data-lane': key, 'data-agent': agent }, label, track);
  });
  $('timeline').replaceChildren(...(out.length ? out : [el('p', { className: 'empty' }, 'No syscall in this window.')]));
  renderAxis();
  if (view.picked) showDetail(view.calls.get(view.picked));
}

function callBar(c, t0, win, end, row) {
  const from = Math.max(c.arrival_ms, t0);
  const span = Math.max(end - from, 0);
  const started = c.start_ms || end; // never started: queued all along
  const queued = Math.max(Math.min(started, end) - from, 0);
  const pct = (x) => (100 * x) / win;
  const inflight = !c.end_ms;
  const b = el('div', {
    className: `call ${c.state}` + (view.picked === c.id ? ' picked' : ''),
    'data-testid': 'bar', 'data-id': c.id, 'data-agent': c.agent, 'data-program': c.program,
    'data-module': c.module, 'data-state': c.state, 'data-preempted': c.preempted,
    title: `${c.agent} / ${c.program} · ${c.module} ${c.op}${c.resource ? ' ' + c.resource : ''} · ${c.state}`,
  });
  b.style.left = pct(from - t0) + '%';
  b.style.width = pct(span) + '%';
  b.style.top = (row * 14 + 1) + 'px';
  if (queued > 0) {
    const q = el('div', { className: 'seg queued' });
    q.style.flex = `${queued} 0 0`;
    b.append(q);
  }
  if (c.start_ms && end > started) {
    const r = el('div', { className: `seg ${c.module}` + (c.preempted ? ' preempted' : '') + (inflight && c.state === 'running' ? ' running' : '') });
    r.style.flex = `${end - Math.max(started, from)} 0 0`;
    b.append(r);
  }
  b.addEventListener('click', (ev) => { ev.stopPropagation(); view.picked = c.id; renderTimeline(); });
  return b;
}

// fitSeconds is the window that holds the shown calls (the selected agent's, or all),
// from the first one's arrival to now, with a little room; at least 2 s.
function fitSeconds(now) {
  let first = now;
  for (const c of view.calls.values()) {
    if (!view.agent || c.agent === view.agent) first = Math.min(first, c.arrival_ms);
  }
  return Math.max(2, Math.ceil(((now - first) * 1.05) / 1000));
}

// tickStep is the spacing of the axis's ticks: the first of these that leaves at most
// eight.
const tickStep = () => [1, 2, 5, 10, 15, 30, 60, 120, 300, 600].find((s) => view.spanSec / s <= 8) || 600;

function renderAxis() {
  const step = tickStep();
  const ticks = [];
  for (let s = Math.floor(view.spanSec / step) * step; s >= 0; s -= step) {
    const t = el('span', {}, s === 0 ? 'now' : `−${s} s`);
    t.style.left = (100 * (view.spanSec - s)) / view.spanSec + '%';
    ticks.push(t);
  }
  $('axis').replaceChildren(...ticks);
}

function showDetail(c) {
  const d = $('detail');
  if (!c) { d.textContent = 'That syscall has left the window.'; return; }
  const end = c.end_ms || kernelNow();
  // Time not spent queued was spent running (or between a preemption and the queue).
  const ran = c.start_ms ? end - c.arrival_ms - c.waited_ms : 0;
  d.dataset.id = c.id;
  d.dataset.agent = c.agent;
  d.textContent = [
    `#${c.id} ${c.module} ${c.op}${c.resource ? ' ' + c.resource : ''} · agent ${c.agent} · program ${c.program}`,
    `state ${c.state}${c.kind ? ' (' + c.kind + ')' : ''}${c.core ? ' on ' + c.core : ''}`,
    `arrived ${fmtClock(c.arrival_ms)} · queued ${fmtDur(c.waited_ms)} · running ${fmtDur(Math.max(ran, 0))} · ` +
      `turnaround ${fmtDur(end - c.arrival_ms)}${c.end_ms ? '' : ' so far'}`,
    `slices ${c.slices} · preempted ${c.preempted}${c.tokens ? ' · KV ' + fmtInt(c.tokens) + ' tokens' : ''}`,
  ].join('\n');
}

// --- approvals ------------------------------------------------------------------------

const approvals = {
  data: null, // the last "approvals" event, with the page's own decisions applied
  rows: new Map(), // approval id -> its row: kept across updates, so a reason being typed stays
  decided: new Set(), // ids decided from this page, which a late event must not bring back
};

function onApprovals(a) {
  a.pending = a.pending.filter((p) => !approvals.decided.has(p.id));
  approvals.data = a;
  renderApprovals();
}

const who = (principal) => principal.replace(/^agent:/, '');
const deadlineLeft = (p) => Date.parse(p.deadline) - kernelNow();

function fmtLeft(ms) {
  const s = Math.max(0, Math.ceil(ms / 1000));
  return s < 60 ? `${s} s` : `${Math.floor(s / 60)}m ${String(s % 60).padStart(2, '0')}s`;
}

function renderApprovals() {
  const a = approvals.data;
  if (!a) return;
  const note = $('approvals-note');
  const table = $('approvals');
  // Past its deadline a call is denied: it leaves the list even before the server says so.
  const pending = a.enabled && !a.message ? a.pending.filter((p) => deadlineLeft(p) > 0) : [];
  pending.sort((x, y) => Date.parse(x.created) - Date.parse(y.created) || x.id.localeCompare(y.id));
  const ids = new Set(pending.map((p) => p.id));
  for (const [id, tr] of approvals.rows) {
    if (!ids.has(id)) { tr.remove(); approvals.rows.delete(id); }
  }
  for (const p of pending) {
    if (!approvals.rows.has(p.id)) {
      const tr = approvalRow(p);
      approvals.rows.set(p.id, tr);
      table.tBodies[0].append(tr);
    }
  }
  table.hidden = pending.length === 0;
  note.hidden = pending.length > 0;
  note.textContent = a.message || 'No call is waiting for a decision.';
  note.dataset.state = !a.enabled ? 'off' : a.message ? 'error' : 'none';
  $('approvals-count').textContent = a.enabled && !a.message ? `${pending.length} pending` : '';
  const alert = $('approvals-alert');
  alert.hidden = pending.length === 0;
  alert.textContent = `${pending.length} approval${pending.length === 1 ? '' : 's'} waiting`;

  const recent = a.enabled && !a.message ? a.recent : [];
  $('decisions').tBodies[0].replaceChildren(...recent.map((d) => el('tr', { 'data-testid': 'decision-row', 'data-id': d.id, 'data-status': d.status },
    el('td', { title: d.decided_at }, d.decided_at ? fmtClock(Date.parse(d.decided_at)) : ''),
    el('td', {}, el('span', { className: 'badge ' + d.status, 'data-testid': 'decision-status' }, d.status)),
    el('td', {}, d.decided_by),
    el('td', { className: 'why', 'data-testid': 'decision-reason' }, d.decided_reason || '—'),
    el('td', { title: d.principal }, who(d.principal)),
    el('td', {}, d.action),
    el('td', {}, d.resource),
    el('td', { className: 'path' }, d.path || '—'))));
  $('decisions').hidden = recent.length === 0;
  $('decisions-title').hidden = recent.length === 0;
  tickApprovals();
}

function approvalRow(p) {
  const reason = el('input', { type: 'text', placeholder: 'reason (optional)', maxlength: 500, 'data-testid': 'approval-reason', 'aria-label': 'reason' });
  const yes = el('button', { type: 'button', className: 'approve', 'data-testid': 'approve' }, 'approve');
  const no = el('button', { type: 'button', className: 'deny', 'data-testid': 'deny' }, 'deny');
  const err = el('div', { className: 'error', 'data-testid': 'approval-error', hidden: true });
  const tr = el('tr', { 'data-testid': 'approval-row', 'data-id': p.id, 'data-action': p.action, 'data-path': p.path || '' },
    el('td', { 'data-testid': 'approval-who', title: p.principal + (p.tenant ? ` of tenant ${p.tenant}` : '') }, who(p.principal)),
    el('td', { 'data-testid': 'approval-action' }, p.action),
    el('td', {}, p.resource),
    el('td', { className: 'path', 'data-testid': 'approval-path' }, p.path || '—'),
    el('td', { className: 'why', 'data-testid': 'approval-why' }, p.reason),
    el('td', { className: 'num', 'data-testid': 'approval-left' }, fmtLeft(deadlineLeft(p))),
    el('td', { className: 'decide' }, reason, yes, no, err));
  const decide = async (approve) => {
    yes.disabled = no.disabled = reason.disabled = true;
    err.hidden = true;
    try {
      const r = await fetch('api/approvals/' + encodeURIComponent(p.id), {
        method: 'POST', headers: { ...UI_HEADER, 'Content-Type': 'application/json' },
        body: JSON.stringify({ approve, reason: reason.value.trim() }),
      });
      const body = await r.json().catch(() => ({}));
      if (r.status === 401) { showSignIn('Your session has ended: sign in again.'); return; }
      if (!r.ok) throw new Error(body.detail || `HTTP ${r.status}`);
      approvals.decided.add(p.id);
      const a = approvals.data;
      a.pending = a.pending.filter((x) => x.id !== p.id);
      a.recent = [body, ...a.recent.filter((x) => x.id !== body.id)].slice(0, 10);
      renderApprovals();
    } catch (e) {
      // Decided elsewhere or past its deadline, say: the next update removes the row.
      err.textContent = e.message;
      err.hidden = false;
      yes.disabled = no.disabled = reason.disabled = false;
    }
  };
  yes.addEventListener('click', () => decide(true));
  no.addEventListener('click', () => decide(false));
  return tr;
}

// tickApprovals counts the deadlines down; a row whose deadline passed goes.
function tickApprovals() {
  const a = approvals.data;
  if (!a) return;
  for (const p of a.pending) {
    const tr = approvals.rows.get(p.id);
    if (!tr) continue;
    const left = deadlineLeft(p);
    if (left <= 0) { renderApprovals(); return; }
    const cell = tr.querySelector('[data-testid=approval-left]');
    cell.textContent = fmtLeft(left);
    cell.classList.toggle('soon', left < 30000);
  }
}

// --- start --------------------------------------------------------------------------

document.addEventListener('DOMContentLoaded', () => {
  for (const b of document.querySelectorAll('button[data-window]')) {
    b.addEventListener('click', () => {
      view.windowSec = b.dataset.window === 'fit' ? 'fit' : Number(b.dataset.window);
      for (const o of document.querySelectorAll('button[data-window]')) o.classList.toggle('on', o === b);
      renderTimeline();
    });
  }
  $('clear-filter').addEventListener('click', () => selectAgent(''));
  $('signin-form').addEventListener('submit', signIn);
  $('signout').addEventListener('click', signOut);
  setInterval(tickApprovals, 1000);
  start();
});
