// The official openai npm SDK against the kernel's /v1: if this passes, any agent
// framework built on that SDK can be pointed at the kernel with no code change.
// Run by test/e2e/npm_test.go, which starts the kernel and sets AIOS_BASE_URL.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';

const base = process.env.AIOS_BASE_URL;
if (!base) {
  throw new Error('AIOS_BASE_URL is not set: run this through `go test ./test/e2e` or point it at a running kernel');
}
const model = process.env.AIOS_MODEL || 'sim-llama3-8b';

const client = new OpenAI({
  baseURL: `${base}/v1`,
  apiKey: 'unused',
  defaultHeaders: { 'X-AIOS-Agent': 'npm-e2e', 'X-AIOS-Session': 'npm-e2e-session' },
  // Retries would hide a failing first answer and slow a failing run down.
  maxRetries: 0,
  timeout: 30_000,
});

const messages = [
  { role: 'system', content: 'You are a terse assistant.' },
  { role: 'user', content: 'Say hello in five words.' },
];

const weatherTool = {
  type: 'function',
  function: {
    name: 'get_weather',
    description: 'Current weather for a city',
    parameters: {
      type: 'object',
      properties: { city: { type: 'string' } },
      required: ['city'],
    },
  },
};

test('models.list includes the served model', async () => {
  const ids = [];
  for await (const m of client.models.list()) {
    ids.push(m.id);
  }
  assert.ok(ids.includes(model), `models ${JSON.stringify(ids)} do not include ${model}`);
});

test('non-streaming chat completion has text, usage and a finish reason', async () => {
  const c = await client.chat.completions.create({ model, messages, max_tokens: 32 });
  assert.equal(c.object, 'chat.completion');
  assert.equal(c.choices.length, 1);
  const choice = c.choices[0];
  assert.equal(choice.message.role, 'assistant');
  assert.equal(typeof choice.message.content, 'string');
  assert.ok(choice.message.content.length > 0, 'empty completion text');
  assert.ok(['stop', 'length'].includes(choice.finish_reason), `finish_reason ${choice.finish_reason}`);
  assert.ok(c.usage, 'no usage');
  assert.ok(c.usage.prompt_tokens > 0, `prompt_tokens ${c.usage.prompt_tokens}`);
  assert.ok(c.usage.completion_tokens > 0, `completion_tokens ${c.usage.completion_tokens}`);
  assert.equal(c.usage.total_tokens, c.usage.prompt_tokens + c.usage.completion_tokens);
});

test('streaming chat completion yields text deltas and a final usage chunk', async () => {
  const stream = await client.chat.completions.create({
    model,
    messages,
    max_tokens: 32,
    stream: true,
    stream_options: { include_usage: true },
  });
  let text = '';
  let finish = null;
  let usage = null;
  let chunks = 0;
  let chunksAfterUsage = 0;
  for await (const chunk of stream) {
    chunks++;
    if (usage) chunksAfterUsage++;
    assert.equal(chunk.object, 'chat.completion.chunk');
    for (const choice of chunk.choices) {
      text += choice.delta?.content ?? '';
      if (choice.finish_reason) finish = choice.finish_reason;
    }
    if (chunk.usage) {
      // OpenAI's include_usage contract: the usage chunk has no choices.
      assert.deepEqual(chunk.choices, []);
      usage = chunk.usage;
    }
  }
  assert.ok(chunks > 2, `only ${chunks} chunks`);
  assert.ok(text.length > 0, 'joined deltas are empty');
  assert.ok(['stop', 'length'].includes(finish), `finish_reason ${finish}`);
  assert.ok(usage, 'no usage chunk');
  assert.equal(chunksAfterUsage, 0, 'chunks after the usage chunk');
  assert.ok(usage.completion_tokens > 0);
  assert.equal(usage.total_tokens, usage.prompt_tokens + usage.completion_tokens);
});

test('a malformed request is an APIError with status 400', async () => {
  await assert.rejects(
    client.chat.completions.create({ model, messages: 'not an array' }),
    (err) => {
      assert.ok(err instanceof OpenAI.APIError, `not an APIError: ${err}`);
      assert.ok(err instanceof OpenAI.BadRequestError, `not a BadRequestError: ${err}`);
      assert.equal(err.status, 400);
      assert.ok(err.message.length > 0);
      return true;
    },
  );
});

test('tool_choice naming a function returns a call of that function', async () => {
  const c = await client.chat.completions.create({
    model,
    messages: [{ role: 'user', content: 'What is the weather in Paris?' }],
    tools: [weatherTool],
    tool_choice: { type: 'function', function: { name: 'get_weather' } },
  });
  const calls = c.choices[0].message.tool_calls;
  assert.ok(Array.isArray(calls) && calls.length > 0, `no tool calls in ${JSON.stringify(c.choices[0])}`);
  const call = calls[0];
  assert.equal(call.type, 'function');
  assert.equal(call.function.name, 'get_weather');
  assert.ok(call.id, 'tool call without id');
  assert.equal(typeof JSON.parse(call.function.arguments), 'object');
});

test('a streamed tool call is assembled by the SDK stream helper', async () => {
  // The helper accumulates deltas by index and validates the stream's shape, stricter
  // than iterating chunks by hand.
  const runner = client.chat.completions.stream({
    model,
    messages: [{ role: 'user', content: 'What is the weather in Oslo?' }],
    tools: [weatherTool],
    tool_choice: { type: 'function', function: { name: 'get_weather' } },
  });
  const final = await runner.finalChatCompletion();
  const calls = final.choices[0].message.tool_calls;
  assert.ok(Array.isArray(calls) && calls.length > 0, `no tool calls in ${JSON.stringify(final.choices[0])}`);
  assert.equal(calls[0].function.name, 'get_weather');
  assert.equal(typeof JSON.parse(calls[0].function.arguments), 'object');
});
