/**
 * MCP benchmark: one tool call to a real MCP server (the official SDK, stateless streamable HTTP on
 * loopback) through exoclaw's client — the egress fetch (resolve once, check every address, connect
 * to the checked one, whole answer read under the cap and checked), secret header filled, result
 * scrubbed — against the same call made directly with the SDK's Client and the global fetch, in the
 * same run, interleaved:
 * - paired calls: one call each way, the pair's order alternating; the overhead is the
 *   distribution of the per-pair differences (exoclaw − SDK);
 * - calls/s: `--calls` sequential calls each way per repetition, `--reps` repetitions, interleaved.
 * Every call must come back with the echoed text and no error; anything else fails the run.
 *
 *   bun bench/mcp.ts [--calls 400] [--reps 5] [--smoke]
 *
 * The server, both clients and the timing all live in this process (same cost for both sides).
 */
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { Server } from "@modelcontextprotocol/sdk/server/index.js";
import { WebStandardStreamableHTTPServerTransport } from "@modelcontextprotocol/sdk/server/webStandardStreamableHttp.js";
import { CallToolRequestSchema, ListToolsRequestSchema } from "@modelcontextprotocol/sdk/types.js";
import { silentLogger } from "../src/lib/log.ts";
import { McpConnection } from "../src/mcp/index.ts";
import {
  benchArgs,
  int,
  interleave,
  num,
  onCleanup,
  pairDiffs,
  pairRatios,
  printHeader,
  ratio,
  runBench,
  spread,
  step,
  summarize,
  table,
  us,
} from "./_lib.ts";

const args = benchArgs("mcp", { calls: { type: "string" } }, 600);
const { smoke, reps } = args;
const CALLS = num(args.values.calls, 400, smoke, 20);
const PAIRS = smoke ? 20 : 2000;
const TEXT = "a short tool result of about sixty characters, as tools often return";

await runBench("mcp", async () => {
  printHeader(
    "mcp",
    args,
    `${PAIRS} paired calls; calls/s over ${CALLS} sequential calls per side per rep; stateless streamable HTTP server (the SDK's) on loopback`,
  );
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
  onCleanup(() => srv.stop(true));
  const url = `http://127.0.0.1:${srv.port}/mcp`;

  const direct = new Client({ name: "direct", version: "1" });
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
  await step("connect both clients", 15_000, async () => {
    await direct.connect(
      new StreamableHTTPClientTransport(new URL(url), {
        requestInit: { headers: { authorization: "Bearer bench-secret-value" } },
      }),
    );
    onCleanup(() => direct.close());
    await exo.ensure();
    onCleanup(() => exo.stop());
  });

  const viaSdk = async () => {
    const r = (await direct.callTool({ name: "echo", arguments: { text: TEXT } })) as {
      isError?: boolean;
      content?: { type: string; text?: string }[];
    };
    if (r.isError || r.content?.[0]?.text !== TEXT)
      throw new Error(`the SDK's call answered ${JSON.stringify(r).slice(0, 200)}`);
  };
  const viaExo = async () => {
    const r = await exo.call("echo", { text: TEXT });
    if (r.is_error || !r.content.includes(TEXT))
      throw new Error(`exoclaw's call answered ${JSON.stringify(r).slice(0, 200)}`);
  };
  const timed = (call: () => Promise<void>) => async () => {
    const t0 = performance.now();
    await call();
    return performance.now() - t0;
  };
  const window = (call: () => Promise<void>) => async () => {
    const t0 = performance.now();
    for (let i = 0; i < CALLS; i++) await call();
    return (CALLS / (performance.now() - t0)) * 1000;
  };

  await step("warm up", 60_000, async () => {
    for (let i = 0; i < (smoke ? 5 : 200); i++) await viaSdk(), await viaExo();
  });
  const paired = await step("paired calls", 60_000 + PAIRS * 100, () =>
    interleave(PAIRS, { exoclaw: timed(viaExo), sdk: timed(viaSdk) }),
  );
  const rates = await step("calls/s windows", 60_000 + reps * CALLS * 2 * 100, () =>
    interleave(reps, { exoclaw: window(viaExo), sdk: window(viaSdk) }),
  );

  const e = summarize(paired.exoclaw);
  const s = summarize(paired.sdk);
  const d = summarize(pairDiffs(paired.exoclaw, paired.sdk));
  table(
    ["measure", "exoclaw (egress fetch, checks, secret header, scrub)", "SDK Client, global fetch (same run)"],
    [
      [
        `tool call, p50 / p99 of ${int(PAIRS)} paired calls`,
        `${us(e.median)} / ${us(e.p99)}`,
        `${us(s.median)} / ${us(s.p99)}`,
      ],
      [
        `overhead per call: per-pair difference (exoclaw − SDK) over ${int(PAIRS)} pairs, median / p90`,
        `${us(d.median)} / ${us(d.p90)}`,
        "",
      ],
      [
        `calls/s, ${CALLS} sequential calls, median (min–max) of ${reps}`,
        spread(summarize(rates.exoclaw), int),
        `${spread(summarize(rates.sdk), int)}; per-pair ratio exoclaw / SDK ${spread(summarize(pairRatios(rates.exoclaw, rates.sdk)), ratio)}`,
      ],
    ],
  );
});
