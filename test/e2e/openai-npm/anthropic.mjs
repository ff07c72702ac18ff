// Anthropic's official SDK (@anthropic-ai/sdk) against the kernel's /v1/messages, and
// the openai SDK against the rest of /v1 (embeddings, one model, unknown routes): if this
// passes, Claude-style agents run on any backend the kernel serves.
// Run by test/e2e/anthropic_test.go, which starts the kernel and sets AIOS_BASE_URL.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';

const base = process.env.AIOS_BASE_URL;
if (!base) {
  throw new Error('AIOS_BASE_URL is not set: run this through `go test ./test/e2e` or point it at a running kernel');
}
const model = process.env.AIOS_MODEL || 'sim-llama3-8b';

const claude = new Anthropic({
  baseURL: base, // the SDK adds /v1/messages
  apiKey: 'sk-ant-unused',
  defaultHeaders: { 'X-AIOS-Agent': 'anthropic-e2e', 'X-AIOS-Session': 'anthropic-e2e-session' },
  // Retries would hide a failing first answer and slow a failing run down.
  maxRetries: 0,
  timeout: 30_000,
});

const openai = new OpenAI({ baseURL: `${base}/v1`, apiKey: 'unused', maxRetries: 0, timeout: 30_000 });

const weatherTool = {
  name: 'get_weather',
  description: 'Current weather for a city',
  input_schema: {
    type: 'object',
    properties: { city: { type: 'string' } },
    required: ['city'],
  },
};

test('messages.create answers with a text block, a stop reason and usage', async () => {
  const msg = await claude.messages.create({
    model,
    max_tokens: 32,
    system: 'You are a terse assistant.',
    messages: [{ role: 'user', content: 'Say hello in five words.' }],
  });
  assert.equal(msg.type, 'message');
  assert.equal(msg.role, 'assistant');
  assert.match(msg.id, /^msg_/);
  assert.equal(msg.model, model);
  assert.equal(msg.content[0].type, 'text');
  assert.ok(msg.content[0].text.length > 0, 'empty text');
  assert.ok(['end_turn', 'max_tokens'].includes(msg.stop_reason), `stop_reason ${msg.stop_reason}`);
  assert.ok(msg.usage.input_tokens > 0, `input_tokens ${msg.usage.input_tokens}`);
  assert.ok(msg.usage.output_tokens > 0 && msg.usage.output_tokens <= 32, `output_tokens ${msg.usage.output_tokens}`);
});

test('messages.stream emits text events and a final message', async () => {
  const stream = claude.messages.stream({
    model,
    max_tokens: 24,
    messages: [{ role: 'user', content: [{ type: 'text', text: 'Tell me about the sea.' }] }],
  });
  let streamed = '';
  stream.on('text', (delta) => {
    streamed += delta;
  });
  const msg = await stream.finalMessage();
  assert.ok(streamed.length > 0, 'no text events');
  assert.equal(msg.content.length, 1);
  assert.equal(msg.content[0].type, 'text');
  assert.equal(msg.content[0].text, streamed);
  assert.ok(['end_turn', 'max_tokens'].includes(msg.stop_reason), `stop_reason ${msg.stop_reason}`);
  assert.ok(msg.usage.output_tokens > 0, `output_tokens ${msg.usage.output_tokens}`);
  assert.ok(msg.usage.input_tokens > 0, `input_tokens ${msg.usage.input_tokens}`);
  assert.equal(await stream.finalText(), streamed);
});

test('tool use round trip: a forced tool_use, then its tool_result, then text', async () => {
  const messages = [{ role: 'user', content: 'What is the weather in Paris?' }];
  const first = await claude.messages.create({
    model,
    max_tokens: 64,
    tools: [weatherTool],
    tool_choice: { type: 'tool', name: 'get_weather' },
    messages,
  });
  assert.equal(first.stop_reason, 'tool_use');
  const use = first.content.find((b) => b.type === 'tool_use');
  assert.ok(use, `no tool_use block in ${JSON.stringify(first.content)}`);
  assert.equal(use.name, 'get_weather');
  assert.ok(use.id, 'tool_use without an id');
  assert.equal(typeof use.input, 'object');

  messages.push({ role: 'assistant', content: first.content });
  messages.push({
    role: 'user',
    content: [{ type: 'tool_result', tool_use_id: use.id, content: '18C and sunny' }],
  });
  const second = await claude.messages.create({ model, max_tokens: 32, tools: [weatherTool], messages });
  assert.notEqual(second.stop_reason, 'tool_use');
  assert.equal(second.content[0].type, 'text');
  assert.ok(second.content[0].text.length > 0, 'empty answer after the tool result');
});

test('a streamed tool use accumulates its input from input_json_delta events', async () => {
  const stream = claude.messages.stream({
    model,
    max_tokens: 64,
    tools: [weatherTool],
    tool_choice: { type: 'any' },
    messages: [{ role: 'user', content: 'Weather in Oslo?' }],
  });
  const msg = await stream.finalMessage();
  assert.equal(msg.stop_reason, 'tool_use');
  const use = msg.content.find((b) => b.type === 'tool_use');
  assert.ok(use, `no tool_use block in ${JSON.stringify(msg.content)}`);
  assert.equal(use.name, 'get_weather');
  assert.equal(typeof use.input, 'object');
});

test('errors arrive as the SDK error classes', async () => {
  await assert.rejects(
    claude.messages.create({ model, messages: [{ role: 'user', content: 'hi' }] }),
    (err) => {
      assert.ok(err instanceof Anthropic.BadRequestError, `got ${err?.constructor?.name}: ${err}`);
      assert.equal(err.status, 400);
      assert.equal(err.error?.error?.type, 'invalid_request_error');
      assert.match(err.message, /max_tokens/);
      return true;
    },
  );
  await assert.rejects(
    claude.messages.create({
      model,
      max_tokens: 8,
      messages: [{ role: 'user', content: [{ type: 'image', source: { type: 'base64', media_type: 'image/png', data: 'AA==' } }] }],
    }),
    (err) => err instanceof Anthropic.BadRequestError && /image input is not supported/.test(err.message),
  );
  await assert.rejects(
    claude.messages.create({ model: 'claude-not-served', max_tokens: 8, messages: [{ role: 'user', content: 'hi' }] }),
    (err) => err instanceof Anthropic.NotFoundError && err.error?.error?.type === 'not_found_error',
  );
});

test('openai SDK: embeddings.create returns unit vectors, deterministically', async () => {
  const input = ['the cat sat on the mat', 'a cat on a mat'];
  const a = await openai.embeddings.create({ model, input }); // base64 on the wire, the SDK's default
  const b = await openai.embeddings.create({ model, input, encoding_format: 'float' });
  assert.equal(a.object, 'list');
  assert.equal(a.data.length, 2);
  assert.ok(a.usage.prompt_tokens > 0);
  for (const [i, d] of a.data.entries()) {
    assert.equal(d.index, i);
    assert.ok(d.embedding.length > 0);
    const norm = Math.sqrt(d.embedding.reduce((s, x) => s + x * x, 0));
    assert.ok(Math.abs(norm - 1) < 1e-4, `norm ${norm}`);
    b.data[i].embedding.forEach((x, j) => assert.ok(Math.abs(x - d.embedding[j]) < 1e-6));
  }
  const small = await openai.embeddings.create({ model, input: 'hello', dimensions: 32 });
  assert.equal(small.data[0].embedding.length, 32);
  await assert.rejects(openai.embeddings.create({ model: 'not-a-model', input: 'x' }), (err) => err instanceof OpenAI.NotFoundError);
});

test('openai SDK: models.retrieve, and unknown models and routes are NotFoundError', async () => {
  const m = await openai.models.retrieve(model);
  assert.equal(m.id, model);
  assert.equal(m.object, 'model');
  await assert.rejects(openai.models.retrieve('gpt-nonesuch'), (err) => {
    assert.ok(err instanceof OpenAI.NotFoundError, `got ${err?.constructor?.name}`);
    assert.equal(err.code, 'model_not_found');
    return true;
  });
  await assert.rejects(openai.get('/nonesuch'), (err) => {
    assert.ok(err instanceof OpenAI.NotFoundError, `got ${err?.constructor?.name}`);
    assert.equal(err.code, 'unknown_url');
    assert.equal(err.type, 'invalid_request_error');
    return true;
  });
});

test('openai SDK: legacy completions, streaming and not', async () => {
  const c = await openai.completions.create({ model, prompt: 'Once upon a time', max_tokens: 8 });
  assert.equal(c.object, 'text_completion');
  assert.ok(c.choices[0].text.length > 0);
  let text = '';
  const stream = await openai.completions.create({ model, prompt: 'Once upon a time', max_tokens: 8, stream: true });
  for await (const chunk of stream) {
    text += chunk.choices[0]?.text ?? '';
  }
  assert.ok(text.length > 0, 'empty streamed completion');
});
