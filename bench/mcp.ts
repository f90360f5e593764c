/**
 * MCP benchmark: one tool call to a real MCP server (the official SDK, stateless streamable HTTP on
 * loopback) through exoclaw's client — the egress fetch (resolve once, check every address, connect
 * to the checked one, whole answer read under the cap and checked), secret header filled, result
 * scrubbed — beside the same call made directly with the SDK's Client and the global fetch. Both in
 * one run, interleaved; compare the ratio, not absolute times.
 *
 *   bun bench/mcp.ts [--calls 400] [--rounds 5]
 */
import { parseArgs } from "node:util";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { Server } from "@modelcontextprotocol/sdk/server/index.js";
import { WebStandardStreamableHTTPServerTransport } from "@modelcontextprotocol/sdk/server/webStandardStreamableHttp.js";
import { CallToolRequestSchema, ListToolsRequestSchema } from "@modelcontextprotocol/sdk/types.js";
import { silentLogger } from "../src/lib/log.ts";
import { McpConnection } from "../src/mcp/index.ts";

const { values } = parseArgs({
  options: { calls: { type: "string", default: "400" }, rounds: { type: "string", default: "5" } },
});
const CALLS = Number(values.calls);
const ROUNDS = Number(values.rounds);

const srv = Bun.serve({
  hostname: "127.0.0.1",
  port: 0,
  async fetch(req) {
    if (req.method !== "POST") return new Response(null, { status: 405 });
    const server = new Server({ name: "bench", version: "1" }, { capabilities: { tools: {} } });
    server.setRequestHandler(ListToolsRequestSchema, () => ({
      tools: [{ name: "echo", inputSchema: { type: "object", properties: { text: { type: "string" } } } }],
    }));
    server.setRequestHandler(CallToolRequestSchema, (r) => ({
      content: [{ type: "text", text: String(r.params.arguments?.text ?? "") }],
    }));
    const transport = new WebStandardStreamableHTTPServerTransport({ sessionIdGenerator: undefined });
    await server.connect(transport);
    return transport.handleRequest(req);
  },
});
const url = `http://127.0.0.1:${srv.port}/mcp`;
const text = "a short tool result of about sixty characters, as tools often return";

const direct = new Client({ name: "direct", version: "1" });
await direct.connect(
  new StreamableHTTPClientTransport(new URL(url), {
    requestInit: { headers: { authorization: "Bearer bench-secret-value" } },
  }),
);
const exo = new McpConnection(
  {
    name: "bench",
    url,
    headers: { Authorization: "Bearer {{secret:k}}" },
    secrets: ["k"],
    tools: ["*"],
    timeout_ms: 10_000,
    approval: "never",
  },
  { secret: () => "bench-secret-value", log: silentLogger },
);
await exo.ensure();

async function measure(call: () => Promise<unknown>): Promise<{ perSec: number; p50: number; p99: number }> {
  const times: number[] = [];
  const t0 = performance.now();
  for (let i = 0; i < CALLS; i++) {
    const s = performance.now();
    await call();
    times.push(performance.now() - s);
  }
  const total = performance.now() - t0;
  times.sort((a, b) => a - b);
  return { perSec: (CALLS / total) * 1000, p50: times[Math.floor(CALLS / 2)]!, p99: times[Math.floor(CALLS * 0.99)]! };
}

const viaSdk = () => direct.callTool({ name: "echo", arguments: { text } });
const viaExo = async () => {
  const r = await exo.call("echo", { text });
  if (r.is_error) throw new Error(r.content);
};
await measure(viaSdk);
await measure(viaExo); // warm-up
const rows: { sdk: Awaited<ReturnType<typeof measure>>; exo: Awaited<ReturnType<typeof measure>> }[] = [];
for (let r = 0; r < ROUNDS; r++) rows.push({ sdk: await measure(viaSdk), exo: await measure(viaExo) });
const median = (xs: number[]) => xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const sdk = {
  perSec: median(rows.map((r) => r.sdk.perSec)),
  p50: median(rows.map((r) => r.sdk.p50)),
  p99: median(rows.map((r) => r.sdk.p99)),
};
const ex = {
  perSec: median(rows.map((r) => r.exo.perSec)),
  p50: median(rows.map((r) => r.exo.p50)),
  p99: median(rows.map((r) => r.exo.p99)),
};
console.log(`MCP tool call, ${CALLS} sequential calls × ${ROUNDS} rounds (medians), loopback, stateless SSE server`);
console.log(`| path | calls/s | p50 ms | p99 ms |\n|---|---|---|---|`);
console.log(`| SDK Client, global fetch | ${sdk.perSec.toFixed(0)} | ${sdk.p50.toFixed(3)} | ${sdk.p99.toFixed(3)} |`);
console.log(
  `| exoclaw (egress fetch, checks, scrub) | ${ex.perSec.toFixed(0)} | ${ex.p50.toFixed(3)} | ${ex.p99.toFixed(3)} |`,
);
console.log(
  `overhead per call: ${(ex.p50 - sdk.p50).toFixed(3)} ms at p50 (${((ex.p50 / sdk.p50 - 1) * 100).toFixed(0)}%)`,
);
await direct.close();
await exo.stop();
await srv.stop(true);
