// The official TypeScript MCP client driving the kernel's own /mcp, run by
// test/e2e/tools_test.go against a kernel started from this tree. It prints one JSON
// summary on stdout for the Go test to check.
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";

const url = new URL(process.env.AIOS_MCP_URL);
const agent = process.env.AIOS_AGENT;

const client = new Client({ name: "aios-e2e", version: "1.0.0" });
const transport = new StreamableHTTPClientTransport(url, {
  requestInit: { headers: { "X-AIOS-Agent": agent } },
});
await client.connect(transport);

const text = (r) => (r.content ?? []).filter((c) => c.type === "text").map((c) => c.text).join("\n");
const out = { protocol: transport.protocolVersion ?? null };

const { tools } = await client.listTools();
out.tools = tools.map((t) => t.name).sort();
out.echoAnnotations = tools.find((t) => t.name === "everything__echo")?.annotations ?? null;

const calc = await client.callTool({ name: "calculator", arguments: { expression: "6*7" } });
out.calculator = { text: text(calc), isError: calc.isError ?? false };

const echo = await client.callTool({ name: "everything__echo", arguments: { message: "through the kernel" } });
out.echo = { text: text(echo), isError: echo.isError ?? false };

await client.callTool({ name: "storage_write", arguments: { path: "mcp/note.txt", content: "written over MCP" } });
const read = await client.callTool({ name: "storage_read", arguments: { path: "mcp/note.txt" } });
out.read = { text: text(read), isError: read.isError ?? false };

const bad = await client.callTool({ name: "calculator", arguments: { expr: 1 } });
out.invalid = { text: text(bad), isError: bad.isError ?? false };

try {
  await client.callTool({ name: "no_such_tool", arguments: {} });
  out.unknown = "no error";
} catch (e) {
  out.unknown = String(e.message ?? e);
}

await client.close();
console.log(JSON.stringify(out));
