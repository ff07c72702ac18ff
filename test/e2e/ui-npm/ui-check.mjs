// Drives the kernel's dashboard (/ui) in headless Chromium, as a person would, while
// agents run, and checks what it shows against the kernel's own answers. Run by
// test/e2e/ui_test.go, which starts the kernel and the agents and passes:
//   AIOS_URL        the kernel
//   CHROMIUM        Debian's chromium
//   SCREENSHOTS     the folder for screenshots
//   AIOS_AGENTS     JSON: {agent: {llm, storage, tool}} the syscalls each finished agent made
//   AIOS_LIVE_AGENT an agent making LLM calls all along
// Prints one JSON line of what it saw; exits non-zero on the first failed check.
import { chromium } from 'playwright-core';
import { strict as assert } from 'node:assert';
import path from 'node:path';

const url = process.env.AIOS_URL;
const shots = process.env.SCREENSHOTS;
const agents = JSON.parse(process.env.AIOS_AGENTS);
const live = process.env.AIOS_LIVE_AGENT;
assert.ok(url && shots && process.env.CHROMIUM && live, 'AIOS_URL, CHROMIUM, SCREENSHOTS and AIOS_LIVE_AGENT must be set');

const saw = {};
const log = (...a) => console.error('ui-check:', ...a);

async function json(p) {
  const r = await fetch(url + p);
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
  page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
  page.on('requestfailed', (r) => { if (!r.url().endsWith('/api/events')) errors.push(`${r.url()}: ${r.failure()?.errorText}`); });
  const outside = [];
  page.on('request', (r) => { if (!r.url().startsWith(url)) outside.push(r.url()); });

  await page.goto(url + '/ui');
  assert.equal(new URL(page.url()).pathname, '/ui/');

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

  // The approvals placeholder.
  assert.match(await page.getByTestId('approvals').textContent(), /access manager/);

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

  assert.deepEqual(outside, [], 'the page loaded something from outside the kernel');
  assert.deepEqual(errors, [], 'the page reported errors');
} finally {
  await browser.close();
}
console.log(JSON.stringify(saw));
