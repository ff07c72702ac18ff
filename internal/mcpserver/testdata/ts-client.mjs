// The official TypeScript MCP client against mcpserver.Handler, run by ts_test.go. It
// prints one JSON summary on stdout for the Go test to check.
//
// The SDK lives in test/e2e/mcp-npm, which is not above this file, so a bare import
// would not find it (ESM ignores NODE_PATH). AIOS_MCP_SDK_DIR names the package; its
// own "exports" map says which file each entry point is, as Node would resolve it.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";

const sdkDir = process.env.AIOS_MCP_SDK_DIR;
const { exports } = JSON.parse(readFileSync(join(sdkDir, "package.json"), "utf8"));
const entry = (sub) => {
  const target = exports[sub] ?? exports["./*"];
  const file = (target.import?.default ?? target.import).replace("*", sub.slice(2));
  return import(pathToFileURL(join(sdkDir, file)).href);
};
const { Client } = await entry("./client/index.js");
const { StreamableHTTPClientTransport } = await entry("./client/streamableHttp.js");

const transport = new StreamableHTTPClientTransport(new URL(process.env.AIOS_MCP_URL), {
  requestInit: { headers: { "X-AIOS-Agent": process.env.AIOS_AGENT } },
});
const client = new Client({ name: "aios-ts-test", version: "1.0.0" });
await client.connect(transport);

const text = (r) => (r.content ?? []).filter((c) => c.type === "text").map((c) => c.text).join("\n");
const out = { protocol: transport.protocolVersion ?? null, server: client.getServerVersion() };

const { tools } = await client.listTools();
out.tools = tools.map((t) => ({ name: t.name, annotations: t.annotations ?? null, required: t.inputSchema?.required ?? [] }));

const echo = await client.callTool({ name: "echo", arguments: { text: "from typescript" } });
out.echo = { text: text(echo), isError: echo.isError ?? false };

const bad = await client.callTool({ name: "echo", arguments: { txt: 1 } });
out.badInput = { text: text(bad), isError: bad.isError ?? false };

const stats = await client.callTool({ name: "stats", arguments: {} });
out.stats = { structured: stats.structuredContent ?? null };

try {
  await client.callTool({ name: "nope", arguments: {} });
  out.unknown = { error: null };
} catch (e) {
  out.unknown = { code: e.code ?? null, message: e.message };
}

await client.close();
process.stdout.write(JSON.stringify(out) + "\n");
