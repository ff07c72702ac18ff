// The official openai npm SDK's Responses API (client.responses) against the kernel's
// /v1/responses: create, streaming (raw events and the stream helper), a function tool
// round trip through previous_response_id, text.format json_schema, retrieve and delete
// of stored responses, and errors. Run by test/e2e/responses_test.go, which starts the
// kernel and sets AIOS_BASE_URL.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';

const base = process.env.AIOS_BASE_URL;
if (!base) {
  throw new Error('AIOS_BASE_URL is not set: run this through `go test ./test/e2e` or point it at a running kernel');
}
const model = process.env.AIOS_MODEL || 'sim-llama3-8b';

function clientAs(agent) {
  return new OpenAI({
    baseURL: `${base}/v1`,
    apiKey: 'unused',
    defaultHeaders: { 'X-AIOS-Agent': agent },
    maxRetries: 0,
    timeout: 30_000,
  });
}
const client = clientAs('responses-e2e');

const weatherTool = {
  type: 'function',
  name: 'get_weather',
  description: 'Current weather for a city',
  parameters: {
    type: 'object',
    properties: { city: { type: 'string' } },
    required: ['city'],
    additionalProperties: false,
  },
  strict: true,
};

test('responses.create answers with a message, usage and output_text', async () => {
  const r = await client.responses.create({
    model,
    instructions: 'You are a terse assistant.',
    input: 'Say hello in five words.',
    max_output_tokens: 32,
  });
  assert.equal(r.object, 'response');
  assert.match(r.id, /^resp_/);
  assert.ok(['completed', 'incomplete'].includes(r.status), `status ${r.status}`);
  assert.equal(r.model, model);
  assert.equal(r.instructions, 'You are a terse assistant.');
  assert.equal(r.output.length, 1);
  const msg = r.output[0];
  assert.equal(msg.type, 'message');
  assert.equal(msg.role, 'assistant');
  assert.equal(msg.content[0].type, 'output_text');
  assert.deepEqual(msg.content[0].annotations, []);
  // output_text is the SDK's own: it joins the output_text parts.
  assert.equal(typeof r.output_text, 'string');
  assert.ok(r.output_text.length > 0, 'empty output_text');
  assert.equal(r.output_text, msg.content[0].text);
  assert.ok(r.usage.input_tokens > 0 && r.usage.output_tokens > 0, JSON.stringify(r.usage));
  assert.equal(r.usage.total_tokens, r.usage.input_tokens + r.usage.output_tokens);
  assert.equal(typeof r.usage.input_tokens_details.cached_tokens, 'number');
});

test('stream: true yields typed events whose deltas make the completed text', async () => {
  const stream = await client.responses.create({ model, input: 'Count to five.', stream: true, max_output_tokens: 24 });
  const types = [];
  let text = '';
  let completed;
  let last = -1;
  for await (const ev of stream) {
    types.push(ev.type);
    assert.equal(ev.sequence_number, last + 1, `sequence_number of ${ev.type}`);
    last = ev.sequence_number;
    if (ev.type === 'response.output_text.delta') text += ev.delta;
    if (ev.type === 'response.completed' || ev.type === 'response.incomplete') completed = ev.response;
  }
  assert.equal(types[0], 'response.created');
  assert.equal(types[1], 'response.in_progress');
  for (const t of ['response.output_item.added', 'response.content_part.added', 'response.output_text.delta',
    'response.output_text.done', 'response.content_part.done', 'response.output_item.done']) {
    assert.ok(types.includes(t), `no ${t} in ${types.join(', ')}`);
  }
  assert.ok(completed, `no terminal event in ${types.join(', ')}`);
  assert.ok(text.length > 0, 'no text streamed');
  assert.equal(completed.output[0].content[0].text, text);
});

test('responses.stream accumulates the final response', async () => {
  const deltas = [];
  const stream = client.responses.stream({ model, input: 'Tell me a fact.', max_output_tokens: 24 });
  stream.on('response.output_text.delta', (ev) => deltas.push(ev.delta));
  const final = await stream.finalResponse();
  assert.ok(deltas.length > 0, 'no delta events');
  assert.equal(final.output_text, deltas.join(''));
  assert.match(final.id, /^resp_/);
});

test('a function tool round trip continues through previous_response_id', async () => {
  const first = await client.responses.create({
    model,
    input: 'What is the weather in Oslo?',
    tools: [weatherTool],
    tool_choice: 'required',
  });
  const calls = first.output.filter((o) => o.type === 'function_call');
  assert.equal(calls.length, 1, JSON.stringify(first.output));
  const call = calls[0];
  assert.equal(call.name, 'get_weather');
  assert.ok(call.call_id, 'no call_id');
  assert.match(call.id, /^fc_/);
  assert.equal(typeof JSON.parse(call.arguments), 'object');

  const second = await client.responses.create({
    model,
    previous_response_id: first.id,
    input: [{ type: 'function_call_output', call_id: call.call_id, output: JSON.stringify({ temperature_c: -3 }) }],
    tools: [weatherTool],
  });
  assert.equal(second.previous_response_id, first.id);
  assert.equal(second.status, 'completed');
  assert.ok(second.output_text.length > 0, 'no answer after the tool output');
  // The conversation came along: the second prompt holds the first.
  assert.ok(second.usage.input_tokens > first.usage.input_tokens,
    `input tokens ${second.usage.input_tokens} <= ${first.usage.input_tokens}`);
});

test('a streamed function call sends its arguments as events', async () => {
  const stream = client.responses.stream({
    model,
    input: 'Weather in Lima?',
    tools: [weatherTool],
    tool_choice: { type: 'function', name: 'get_weather' },
  });
  let argsDone;
  stream.on('response.function_call_arguments.done', (ev) => { argsDone = ev.arguments; });
  const final = await stream.finalResponse();
  const call = final.output.find((o) => o.type === 'function_call');
  assert.ok(call, JSON.stringify(final.output));
  assert.equal(argsDone, call.arguments);
  assert.equal(call.status, 'completed');
});

test('text.format json_schema answers JSON that conforms to the schema', async () => {
  const r = await client.responses.create({
    model,
    input: 'Name a city and its country.',
    text: {
      format: {
        type: 'json_schema',
        name: 'city',
        schema: {
          type: 'object',
          properties: { city: { type: 'string' }, country: { type: 'string' } },
          required: ['city', 'country'],
          additionalProperties: false,
        },
        strict: true,
      },
    },
  });
  assert.equal(r.text.format.type, 'json_schema');
  const parsed = JSON.parse(r.output_text);
  assert.deepEqual(Object.keys(parsed).sort(), ['city', 'country']);
  assert.equal(typeof parsed.city, 'string');
  assert.equal(typeof parsed.country, 'string');
});

test('stored responses are retrieved and deleted by their agent only', async () => {
  const r = await client.responses.create({ model, input: 'Remember this.', metadata: { run: 'e2e' } });
  assert.equal(r.store, true);
  const got = await client.responses.retrieve(r.id);
  assert.equal(got.id, r.id);
  assert.equal(got.output_text, r.output_text);
  assert.deepEqual(got.metadata, { run: 'e2e' });

  const items = [];
  for await (const it of client.responses.inputItems.list(r.id)) items.push(it);
  assert.equal(items.length, 1);
  assert.equal(items[0].type, 'message');
  assert.equal(items[0].content[0].text, 'Remember this.');

  await assert.rejects(clientAs('someone-else').responses.retrieve(r.id), (e) => e instanceof OpenAI.NotFoundError);
  await client.responses.delete(r.id);
  await assert.rejects(client.responses.retrieve(r.id), (e) => e instanceof OpenAI.NotFoundError);

  const unstored = await client.responses.create({ model, input: 'Forget this.', store: false });
  assert.equal(unstored.store, false);
  await assert.rejects(client.responses.retrieve(unstored.id), (e) => e instanceof OpenAI.NotFoundError);
});

test('errors are OpenAI-shaped and name the parameter', async () => {
  await assert.rejects(
    client.responses.create({ model, input: 'x', previous_response_id: 'resp_does_not_exist' }),
    (e) => e instanceof OpenAI.NotFoundError && e.code === 'previous_response_not_found' && e.param === 'previous_response_id',
  );
  await assert.rejects(
    client.responses.create({ model, input: [{ type: 'function_call_output', call_id: 'call_nowhere', output: '1' }] }),
    (e) => e instanceof OpenAI.BadRequestError && e.param === 'input[0].call_id',
  );
  await assert.rejects(
    client.responses.create({ model, input: 'x', tools: [{ type: 'web_search' }] }),
    (e) => e instanceof OpenAI.BadRequestError && e.param === 'tools[0].type',
  );
  await assert.rejects(
    client.responses.create({ model, input: 'x', background: true }),
    (e) => e instanceof OpenAI.BadRequestError && e.param === 'background',
  );
});
