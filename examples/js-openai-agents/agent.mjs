// An agent on @openai/agents, on its default API (the Responses API, which the kernel
// serves at /v1/responses), run by the kernel's agent runtime:
//
//   cd examples/js-openai-agents && npm ci
//   aios agents run examples/js-openai-agents --task "Plan a picnic for six"
//
// The runtime points it at the kernel: OPENAI_BASE_URL and OPENAI_API_KEY reach the
// openai client unchanged, AIOS_AGENT and AIOS_PROGRAM name the agent and its program
// (sent as X-AIOS-Agent and X-AIOS-Session, so every call is scheduled as one program).
// Besides the model it uses the kernel's memory (/v1/memory), storage (/v1/storage) and a
// kernel tool (the calculator, through AIOS's /query), and prints its result as one JSON
// line after the runtime's result marker.
import OpenAI from 'openai';
import { Agent, run, tool, setDefaultOpenAIClient, setTracingDisabled } from '@openai/agents';
import { z } from 'zod';

const kernel = (process.env.AIOS_KERNEL_URL || 'http://localhost:8000').replace(/\/+$/, '');
const agentName = process.env.AIOS_AGENT || 'js-openai-agents';
const program = process.env.AIOS_PROGRAM || `js-${process.pid}`;
const task = process.env.AIOS_TASK || process.argv.slice(2).join(' ') || 'Plan a picnic for six';
const headers = { 'X-AIOS-Agent': agentName, 'X-AIOS-Session': program };
const RESULT_MARKER = '::aios-result::';

// kernelCall is one call of the kernel's REST routes (or /query), as this agent.
async function kernelCall(method, path, body, contentType = 'application/json') {
  const res = await fetch(kernel + path, {
    method,
    headers: { ...headers, ...(body === undefined ? {} : { 'Content-Type': contentType }) },
    body: body === undefined ? undefined : contentType === 'application/json' ? JSON.stringify(body) : body,
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${text}`);
  return res.headers.get('content-type')?.includes('application/json') ? JSON.parse(text) : text;
}

// The model: what the kernel serves, unless AIOS_MODEL names one.
const client = new OpenAI({
  baseURL: process.env.OPENAI_BASE_URL || `${kernel}/v1`,
  apiKey: process.env.OPENAI_API_KEY || 'aios',
  defaultHeaders: headers,
  maxRetries: 0,
});
setDefaultOpenAIClient(client);
setTracingDisabled(true);
const model = process.env.AIOS_MODEL || (await client.models.list()).data[0].id;

// Memory: notes from earlier runs that look like this task.
const recalled = (await kernelCall('POST', '/v1/memory/search', { content: task, k: 3 })).search_results ?? [];

// A kernel tool: the calculator, as an AIOS tool query of this program.
const calc = await kernelCall('POST', '/query', {
  agent_name: agentName,
  query_type: 'tool',
  query_data: { query_class: 'tool', tool_calls: [{ name: 'calculator', parameters: { expression: '6 * 4.5 + 12' } }], session: program },
});
if (calc.response.status_code !== 200) throw new Error(`calculator: ${calc.response.error}`);
const budget = calc.response.response_message;

// A function tool the model calls: it keeps the plan in the kernel's storage.
const saved = [];
const savePlan = tool({
  name: 'save_plan',
  description: 'Save the plan as a file, under a short title',
  parameters: z.object({ title: z.string(), plan: z.string() }),
  execute: async ({ title, plan }) => {
    const path = `plans/${program}.md`;
    await kernelCall('PUT', `/v1/storage/files/${path}`, `# ${title}\n\nBudget: ${budget}\n\n${plan}\n`, 'text/markdown');
    saved.push(path);
    return `saved as ${path}`;
  },
});

const planner = new Agent({
  name: 'Planner',
  instructions: `You plan outings. The budget is ${budget} euros. Save the plan with save_plan, then summarise it.`,
  model,
  tools: [savePlan],
  // The simulated model calls a tool only when it must; after the call the choice goes
  // back to auto (resetToolChoice), so the next turn answers in text.
  modelSettings: { toolChoice: 'required' },
});
const result = await run(planner, `${task}. Earlier notes: ${recalled.map((r) => r.content).join('; ') || 'none'}`);

// Storage: read the saved plan back; memory: remember this run.
const stored = saved.length ? await kernelCall('GET', `/v1/storage/files/${saved[0]}`) : '';
const note = await kernelCall('POST', '/v1/memory/notes', {
  content: `Planned: ${task} (budget ${budget} EUR)`,
  metadata: { tags: ['plan'], category: 'outings' },
});

console.error(`planned ${JSON.stringify(task)} in ${result.state.usage.requests} model requests`);
console.log(RESULT_MARKER + JSON.stringify({
  agent_name: agentName,
  result: result.finalOutput,
  budget,
  requests: result.state.usage.requests,
  file: saved[0] ?? null,
  file_bytes: stored.length,
  memory_id: note.memory_id,
  recalled: recalled.length,
}));
