// Drives the kernel's dashboard (/ui) in headless Chromium, as a person would, while
// agents run, and checks what it shows against the kernel's own answers. Run by
// test/e2e/ui_test.go, which starts the kernel and the agents and passes:
//   AIOS_URL        the kernel
//   CHROMIUM        Debian's chromium
//   SCREENSHOTS     the folder for screenshots
//   AIOS_AGENTS     JSON: {agent: {llm, storage, tool}} the syscalls each finished agent made
//   AIOS_LIVE_AGENT an agent making LLM calls all along
//   AIOS_ADMIN_KEY  the admin key the page signs in with (the kernel has access.auth on)
//   AIOS_APPROVER, AIOS_APPROVER_KEY, AIOS_APPROVER_FILES
//                   an agent, its key, and JSON: files of its that this script deletes;
//                   each delete waits in the approvals panel for the browser's decision
// Prints one JSON line of what it saw; exits non-zero on the first failed check.
import { chromium } from 'playwright-core';
import { strict as assert } from 'node:assert';
import path from 'node:path';

const url = process.env.AIOS_URL;
const shots = process.env.SCREENSHOTS;
const agents = JSON.parse(process.env.AIOS_AGENTS);
const live = process.env.AIOS_LIVE_AGENT;
const admin = process.env.AIOS_ADMIN_KEY;
const approver = process.env.AIOS_APPROVER;
const approverKey = process.env.AIOS_APPROVER_KEY;
const files = JSON.parse(process.env.AIOS_APPROVER_FILES || '[]');
assert.ok(url && shots && process.env.CHROMIUM && live && admin && approver && approverKey && files.length === 3,
  'AIOS_URL, CHROMIUM, SCREENSHOTS, AIOS_LIVE_AGENT, AIOS_ADMIN_KEY, AIOS_APPROVER(_KEY) and three AIOS_APPROVER_FILES must be set');

const saw = {};
const log = (...a) => console.error('ui-check:', ...a);

// json reads the kernel's own answer, as the admin.
async function json(p) {
  const r = await fetch(url + p, { headers: { Authorization: 'Bearer ' + admin } });
  assert.equal(r.status, 200, `GET ${p}: HTTP ${r.status}`);
  return r.json();
}

const num = (s) => Number(String(s).replace(/[^0-9.-]/g, ''));

// until retries check (which throws on a mismatch) until it passes or ms pass: the page
// updates twice a second, and the kernel keeps moving while the live agent runs.
async function until(what, check, ms = 15000) {
  const deadline = Date.now() + ms;
  for (;;) {
    try {
      return await check();
    } catch (e) {
      if (Date.now() > deadline) throw new Error(`${what}: ${e.message}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

const browser = await chromium.launch({ executablePath: process.env.CHROMIUM, headless: true, args: ['--no-sandbox'] });
try {
  const page = await browser.newPage({ viewport: { width: 1400, height: 940 } });
  const errors = [];
  page.on('pageerror', (e) => errors.push(e.message));
  // The sign-in's refusals (401 before signing in, 403 for an agent's key, 401 after
  // signing out) are answers the page handles; Chromium logs each as a console error.
  const expected = /Failed to load resource: the server responded with a status of 40[13]/;
  page.on('console', (m) => { if (m.type() === 'error' && !expected.test(m.text())) errors.push(m.text()); });
  page.on('requestfailed', (r) => { if (!r.url().endsWith('/api/events')) errors.push(`${r.url()}: ${r.failure()?.errorText}`); });
  const outside = [];
  page.on('request', (r) => { if (!r.url().startsWith(url)) outside.push(r.url()); });

  await page.goto(url + '/ui');
  assert.equal(new URL(page.url()).pathname, '/ui/');

  // Signing in: the kernel asks for keys, so the page asks for one. An agent's key may
  // not open the dashboard; the admin's does, and the page then says who signed in.
  await page.getByTestId('signin').waitFor();
  assert.equal(await page.locator('#main').isVisible(), false, 'the dashboard shows before signing in');
  await page.getByTestId('signin-key').fill(approverKey);
  await page.getByTestId('signin-submit').click();
  await until('an agent key refused', async () => {
    assert.ok(await page.getByTestId('signin-error').isVisible());
    assert.match(await page.getByTestId('signin-error').textContent(), /may not open the dashboard/);
  });
  await page.screenshot({ path: path.join(shots, 'signin.png') });
  await page.getByTestId('signin-key').fill(admin);
  await page.getByTestId('signin-submit').click();
  await page.locator('#main').waitFor();
  assert.match(await page.getByTestId('session').textContent(), /signed in as admin:/);
  // The browser keeps a session cookie, not the key.
  const cookies = await page.context().cookies();
  assert.equal(cookies.length, 1, `cookies: ${cookies.map((c) => c.name)}`);
  assert.equal(cookies[0].httpOnly, true);
  assert.equal(cookies[0].sameSite, 'Strict');
  assert.ok(!cookies[0].value.includes(admin) && !admin.includes(cookies[0].value), 'the cookie holds the admin key');
  saw.signedIn = true;

  // Live: connected, and the state keeps arriving.
  await page.locator('[data-testid=connection][data-state=live]').waitFor();
  const updates = async () => Number(await page.locator('body').getAttribute('data-updates'));
  const first = await until('a first update', async () => { const n = await updates(); assert.ok(n >= 1); return n; });
  await until('live updates', async () => assert.ok((await updates()) >= first + 2, 'no new state after the first'));
  saw.updates = await updates();

  // Header against /core/status.
  const status = await json('/core/status');
  assert.equal(await page.getByTestId('status').textContent(), status.status);
  assert.equal(await page.getByTestId('scheduler').textContent(), status.scheduler);

  // Every agent shows; the finished ones with the tokens the kernel charged them.
  const names = [...Object.keys(agents), live];
  for (const a of names) await page.locator(`[data-testid=agent-row][data-agent="${a}"]`).waitFor();
  saw.agents = await page.locator('[data-testid=agent-row]').evaluateAll((rows) => rows.map((r) => r.dataset.agent));
  saw.tokens = {};
  for (const a of Object.keys(agents)) {
    const usage = (await json('/admin/usage?agent=' + encodeURIComponent(a))).agents[a];
    assert.ok(usage && usage.total_tokens > 0, `the kernel charged ${a} nothing`);
    const row = page.locator(`[data-testid=agent-row][data-agent="${a}"]`);
    await until(`${a}'s tokens`, async () => {
      const shown = num(await row.getByTestId('agent-tokens').textContent());
      assert.equal(shown, usage.total_tokens, `page shows ${shown} tokens for ${a}, /admin/usage says ${usage.total_tokens}`);
      assert.equal(num(await row.getByTestId('agent-calls').textContent()), usage.calls);
      const bar = num(await page.locator(`[data-testid=token-row][data-agent="${a}"] [data-testid=token-total]`).textContent());
      assert.equal(bar, usage.total_tokens, `the token panel shows ${bar} for ${a}`);
    });
    saw.tokens[a] = usage.total_tokens;
  }
  // The total moves while the live agent runs; the page must catch up with the kernel.
  await until('total tokens', async () => {
    const total = (await json('/admin/usage')).total.total_tokens;
    assert.equal(num(await page.getByTestId('total-tokens').textContent()), total);
  });

  // The live agent's work in flight: in its row, and on the core running it.
  await until(`${live} in flight`, async () => {
    const row = page.locator(`[data-testid=agent-row][data-agent="${live}"]`);
    const n = num(await row.getByTestId('agent-running').textContent()) + num(await row.getByTestId('agent-queued').textContent());
    assert.ok(n > 0, `${live} shows nothing in flight`);
    assert.ok(await page.locator(`[data-testid=core-call][data-agent="${live}"]`).count() > 0, `no core shows ${live}'s call`);
  });

  // Queues: a row per module, as /core/status counts them (both move; compare enabled
  // modules and that counts are numbers).
  const modules = await page.locator('[data-testid=queue-row]').evaluateAll((rows) => rows.map((r) => r.dataset.module));
  assert.deepEqual(modules, ['llm', 'memory', 'storage', 'tool']);
  for (const m of modules) {
    const q = await page.locator(`[data-testid=queue-row][data-module=${m}] [data-testid=queued]`).textContent();
    assert.ok(Number.isInteger(num(q)), `queue ${m}: ${q}`);
  }
  // Cores: one card per core, with its capacity and a KV bar.
  const cores = await page.locator('[data-testid=core]').evaluateAll((cs) => cs.map((c) => c.dataset.core));
  assert.deepEqual(cores, status.llm_cores.map((c) => c.id));
  for (const c of status.llm_cores) {
    const card = page.locator(`[data-testid=core][data-core="${c.id}"]`);
    assert.match(await card.getByTestId('core-inflight').textContent(), new RegExp(`^\\d+ / ${c.max_inflight}$`));
    assert.match(await card.getByTestId('core-kv').textContent(), new RegExp(`/ ${c.max_tokens_inflight.toLocaleString('en-US')} \\(\\d+%\\)`));
    const pct = Number(await card.getByTestId('kv-bar').getAttribute('data-pct'));
    assert.ok(pct >= 0 && pct <= 100, `KV bar at ${pct}%`);
  }
  saw.cores = cores;

  // Approvals: the approver deletes its files; each delete waits for a decision, and
  // the panel lists them. Approve the first and the last, deny the second with a reason.
  await until('an empty approvals panel', async () =>
    assert.match(await page.getByTestId('approvals-note').textContent(), /No call is waiting/));
  const deletes = files.map((f) => fetch(url + '/v1/storage/files/' + f, {
    method: 'DELETE', headers: { Authorization: 'Bearer ' + approverKey },
  }).then(async (r) => ({ file: f, status: r.status, body: await r.text() })));
  const rowOf = (f) => page.locator('[data-testid=approval-row]').filter({ has: page.locator('[data-testid=approval-path]', { hasText: f }) });
  await until('three approvals waiting', async () => {
    assert.equal(await page.locator('[data-testid=approval-row]').count(), 3);
    assert.equal(await page.getByTestId('approvals-count').textContent(), '3 pending');
    assert.equal(await page.getByTestId('approvals-alert').textContent(), '3 approvals waiting');
    for (const f of files) {
      const row = rowOf(f);
      assert.equal(await row.count(), 1, `no approval row for ${f}`);
      assert.equal(await row.getAttribute('data-action'), 'storage.delete');
      assert.equal(await row.getByTestId('approval-who').textContent(), approver);
    }
  });
  await page.getByTestId('approvals').scrollIntoViewIfNeeded();
  await page.screenshot({ path: path.join(shots, 'approvals.png') });
  const decisions = [true, false, true];
  for (const [i, f] of files.entries()) {
    const row = rowOf(f);
    if (!decisions[i]) await row.getByTestId('approval-reason').fill('keep the draft');
    await row.getByTestId(decisions[i] ? 'approve' : 'deny').click();
    await until(`${f} decided`, async () => assert.equal(await rowOf(f).count(), 0));
  }
  const results = await Promise.all(deletes);
  saw.approvals = {};
  for (const [i, r] of results.entries()) {
    // An approved delete goes ahead (204); a denied one fails with policy_denied (403).
    assert.equal(r.status, decisions[i] ? 204 : 403, `DELETE ${r.file}: ${r.status} ${r.body}`);
    if (!decisions[i]) assert.match(r.body, /policy_denied/);
    const get = await fetch(url + '/v1/storage/files/' + r.file, { headers: { Authorization: 'Bearer ' + approverKey } });
    await get.arrayBuffer();
    assert.equal(get.status, decisions[i] ? 404 : 200, `GET ${r.file} after the decision`);
    saw.approvals[r.file] = decisions[i] ? 'approved' : 'denied';
  }
  // Every decision is recorded with who made it; the panel shows the latest first.
  await until('the recent decisions', async () => {
    const rows = await page.locator('[data-testid=decision-row]').evaluateAll((rs) => rs.map((r) => r.dataset.status));
    assert.deepEqual(rows.slice(0, 3), ['approved', 'denied', 'approved']);
    assert.equal(await page.locator('[data-testid=decision-row]').nth(1).getByTestId('decision-reason').textContent(), 'keep the draft');
    assert.equal(await page.getByTestId('approvals-alert').isVisible(), false);
  });
  const decided = (await json('/v1/approvals?status=all')).data ?? [];
  for (const f of files) {
    const d = decided.find((a) => (a.path || '').endsWith(f));
    assert.ok(d && /^admin:/.test(d.decided_by), `${f}'s approval was not decided by the admin: ${JSON.stringify(d)}`);
  }

  // The timeline over 5 minutes holds every call of the finished agents: a bar per
  // syscall, by module, as many as they made.
  await page.getByTestId('window-300').click();
  assert.match(await page.getByTestId('window-300').getAttribute('class'), /\bon\b/);
  saw.bars = {};
  for (const [a, want] of Object.entries(agents)) {
    const lane = page.locator(`[data-testid=lane][data-agent="${a}"]`);
    await lane.waitFor();
    const llmCalls = (await json('/admin/usage?agent=' + encodeURIComponent(a))).agents[a].calls;
    const got = await until(`${a}'s bars`, async () => {
      const mods = await lane.locator('[data-testid=bar]').evaluateAll((bs) => bs.map((b) => b.dataset.module + ':' + b.dataset.state));
      const count = (m) => mods.filter((x) => x === m + ':done').length;
      const got = { llm: count('llm'), storage: count('storage'), tool: count('tool') };
      assert.deepEqual(got, { llm: llmCalls, storage: want.storage, tool: want.tool }, `${a}'s bars (${mods.length} in all)`);
      return got;
    });
    assert.ok(got.llm >= want.llm, `${a} made ${want.llm} LLM requests, the timeline shows ${got.llm}`);
    saw.bars[a] = got;
  }
  await until(`${live}'s bars`, async () => assert.ok(await page.locator(`[data-testid=lane][data-agent="${live}"] [data-testid=bar]`).count() > 0));
  await page.getByTestId('window-30').click();
  await page.screenshot({ path: path.join(shots, 'dashboard.png') });

  // Click an agent: the timeline narrows to it, one lane per program it ran.
  const pick = Object.keys(agents)[0];
  await page.getByTestId('window-300').click();
  await page.locator(`[data-testid=agent-row][data-agent="${pick}"]`).click();
  await page.locator(`[data-testid=agent-row][data-agent="${pick}"][aria-selected=true]`).waitFor();
  assert.equal(await page.getByTestId('timeline-filter').isVisible(), true);
  assert.equal(await page.locator('#filter-agent').textContent(), pick);
  await until('the filtered timeline', async () => {
    const bars = await page.locator('[data-testid=bar]').evaluateAll((bs) => bs.map((b) => b.dataset.agent));
    assert.ok(bars.length > 0 && bars.every((a) => a === pick), `bars of ${[...new Set(bars)]} with ${pick} selected`);
    const lanes = await page.locator('[data-testid=lane]').evaluateAll((ls) => ls.map((l) => l.dataset.lane));
    const programs = (await page.locator(`[data-testid=agent-row][data-agent="${pick}"] [data-testid=agent-programs]`).textContent()).split(', ');
    assert.deepEqual(lanes, [...programs].sort(), 'lanes are the agent\'s programs');
  });
  // Fit the window to its calls; then click one of its bars: the details name the
  // syscall.
  await page.getByTestId('window-fit').click();
  const bar = page.locator('[data-testid=bar][data-module=storage]').first();
  const id = await bar.getAttribute('data-id');
  await bar.click();
  await until('the call detail', async () => {
    const d = await page.getByTestId('call-detail').textContent();
    assert.match(d, new RegExp(`^#${id} storage .* agent ${pick} `));
    assert.match(d, /state done/);
  });
  await page.screenshot({ path: path.join(shots, 'agent-selected.png') });
  saw.selected = { agent: pick, call: Number(id) };

  // Clear the filter: every agent's lane is back.
  await page.getByTestId('clear-filter').click();
  await until('all lanes back', async () => {
    const lanes = await page.locator('[data-testid=lane]').evaluateAll((ls) => ls.map((l) => l.dataset.agent));
    for (const a of names) assert.ok(lanes.includes(a), `no lane for ${a} after clearing the filter: ${lanes}`);
  });
  assert.equal(await page.getByTestId('timeline-filter').isVisible(), false);
  await page.screenshot({ path: path.join(shots, 'dashboard-full.png'), fullPage: true });

  // Signing out ends the session on the server: the form is back, and the cookie the
  // browser held opens nothing any more.
  const held = (await page.context().cookies())[0];
  await page.getByTestId('signout').click();
  await page.getByTestId('signin').waitFor();
  const after = await fetch(url + '/ui/api/state', { headers: { Cookie: `${held.name}=${held.value}` } });
  assert.equal(after.status, 401, 'the signed-out session still opens the dashboard');
  saw.signedOut = true;

  assert.deepEqual(outside, [], 'the page loaded something from outside the kernel');
  assert.deepEqual(errors, [], 'the page reported errors');
} finally {
  await browser.close();
}
console.log(JSON.stringify(saw));
