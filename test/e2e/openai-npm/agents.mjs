// @openai/agents on its default API, the Responses API, against the kernel: an agent
// with a function tool runs to a final answer, plain and streamed. Run by
// test/e2e/responses_test.go, which starts the kernel and sets AIOS_BASE_URL.
//
// The simulated model never calls a tool under tool_choice "auto", so the agent asks
// for one ("required"); resetToolChoice (the default) puts it back to auto after the
// call, so the next turn answers in text.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { Agent, run, tool, setDefaultOpenAIClient, setTracingDisabled } from '@openai/agents';
import { z } from 'zod';

const base = process.env.AIOS_BASE_URL;
if (!base) {
  throw new Error('AIOS_BASE_URL is not set: run this through `go test ./test/e2e` or point it at a running kernel');
}
const model = process.env.AIOS_MODEL || 'sim-llama3-8b';

setTracingDisabled(true);
setDefaultOpenAIClient(new OpenAI({
  baseURL: `${base}/v1`,
  apiKey: 'x',
  defaultHeaders: { 'X-AIOS-Agent': 'agents-e2e' },
  maxRetries: 0,
  timeout: 30_000,
}));

function weatherAgent(calls) {
  const getWeather = tool({
    name: 'get_weather',
    description: 'Current weather for a city',
    parameters: z.object({ city: z.string() }),
    execute: async ({ city }) => {
      calls.push(city);
      return `It is 18 degrees and sunny in ${city}.`;
    },
  });
  return new Agent({
    name: 'Weather assistant',
    instructions: 'Answer questions about the weather. Use the get_weather tool.',
    model,
    tools: [getWeather],
    modelSettings: { toolChoice: 'required' },
  });
}

test('run() calls the tool, then answers', async () => {
  const calls = [];
  const result = await run(weatherAgent(calls), 'What is the weather in Oslo?');
  assert.equal(calls.length, 1, `tool calls: ${JSON.stringify(calls)}`);
  assert.equal(typeof calls[0], 'string');
  assert.equal(typeof result.finalOutput, 'string');
  assert.ok(result.finalOutput.length > 0, 'empty final output');
  const kinds = result.newItems.map((i) => i.type);
  assert.ok(kinds.includes('tool_call_item'), kinds.join(', '));
  assert.ok(kinds.includes('tool_call_output_item'), kinds.join(', '));
  assert.ok(kinds.includes('message_output_item'), kinds.join(', '));
  // Each model call went through /v1/responses and reported usage.
  assert.ok(result.state.usage.requests >= 2, `requests ${result.state.usage.requests}`);
  assert.ok(result.state.usage.inputTokens > 0, `input tokens ${result.state.usage.inputTokens}`);
});

test('run() with stream: true streams the same run', async () => {
  const calls = [];
  const stream = await run(weatherAgent(calls), 'What is the weather in Lima?', { stream: true });
  let deltas = '';
  for await (const ev of stream) {
    if (ev.type === 'raw_model_stream_event' && ev.data.type === 'output_text_delta') deltas += ev.data.delta;
  }
  await stream.completed;
  assert.equal(calls.length, 1, `tool calls: ${JSON.stringify(calls)}`);
  assert.ok(stream.finalOutput.length > 0, 'empty final output');
  assert.equal(deltas, stream.finalOutput);
});
