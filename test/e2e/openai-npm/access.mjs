// The openai SDK against a kernel with authentication on: a valid agent key works, and
// the same key, once revoked through the admin API, gets a 401 the SDK reports as
// AuthenticationError. Run by test/e2e/access_test.go, which starts the kernel with
// access.auth on and sets AIOS_BASE_URL, AIOS_AGENT_KEY, AIOS_KEY_ID and AIOS_ADMIN_KEY.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';

const base = process.env.AIOS_BASE_URL;
const agentKey = process.env.AIOS_AGENT_KEY;
const keyID = process.env.AIOS_KEY_ID;
const adminKey = process.env.AIOS_ADMIN_KEY;
if (!base || !agentKey || !keyID || !adminKey) {
  throw new Error('run this through `go test ./test/e2e -run Access`');
}
const model = process.env.AIOS_MODEL || 'sim-llama3-8b';
const client = new OpenAI({ baseURL: `${base}/v1`, apiKey: agentKey, maxRetries: 0, timeout: 30_000 });
const ask = () => client.chat.completions.create({ model, messages: [{ role: 'user', content: 'hi' }], max_tokens: 4 });

test('a valid key works, a revoked one gets AuthenticationError', async () => {
  const res = await ask();
  assert.ok(res.choices[0].message.content.length > 0);

  const noKey = new OpenAI({ baseURL: `${base}/v1`, apiKey: 'aios_agent_notakey', maxRetries: 0 });
  await assert.rejects(noKey.models.list(), (e) => e instanceof OpenAI.AuthenticationError && e.status === 401);

  const del = await fetch(`${base}/admin/keys/${keyID}`, { method: 'DELETE', headers: { Authorization: `Bearer ${adminKey}` } });
  assert.equal(del.status, 204);

  await assert.rejects(ask(), (e) => {
    assert.ok(e instanceof OpenAI.AuthenticationError, `expected AuthenticationError, got ${e}`);
    assert.equal(e.status, 401);
    assert.equal(e.code, 'caller_unauthorized');
    return true;
  });
});
