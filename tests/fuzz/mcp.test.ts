/**
 * Fuzzing what an MCP server answers (issue 15): a real MCP server built with the official SDK on
 * loopback, whose `raw` tool answers what fast-check draws — at the SDK level (tool results of any
 * shape: content blocks of wrong types, huge texts, isError of wrong types) and at the HTTP level
 * (JSON-RPC envelopes with wrong ids, versions, error objects, non-JSON, SSE framing of garbage).
 * Properties: the turn finishes; the model gets a tool result that is a string of at most the cap
 * (1 MiB) or a tool error that says something (exoclaw's own name the server); no crash, no unhandled rejection; the gateway
 * still answers `ping` and `/health`, a well-behaved call afterwards still works, and the heap is back
 * near its baseline (eight people with a one-turn window, so the history cache is full after the
 * warm-up).
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import fc from "fast-check";
import type { StreamFn } from "../../src/agent/loop.ts";
import { startTestGateway, type TestGateway } from "../helpers/gateway.ts";
import { rpcIdOf, startMcpServer, type TestMcpServer } from "../helpers/mcp-server.ts";
import { tempDir } from "../helpers/temp.ts";
import { openSocket, type TestSocket } from "../helpers/ws.ts";
import { type HeapSnapshot, heapSnapshot, nearBaseline, params, TIMEOUT, warmUp } from "./_fuzz.ts";

type Msg = Record<string, any>;
const CAP = 1024 * 1024;

/** What the next call of `raw` answers: a CallToolResult-ish value via the SDK, or a whole HTTP answer. */
type Answer = { sdk: unknown } | { http: { status: number; type: string; body: (id: unknown) => string } };
let next: Answer = { sdk: { content: [] } };

const unhandled: unknown[] = [];
const onUnhandled = (e: unknown) => void unhandled.push(e);
let server: TestMcpServer;
let gw: TestGateway;
let ws: TestSocket;
let home: ReturnType<typeof tempDir>;
let tool = "search__raw";
const stream: StreamFn = async function* (req) {
  const last = req.messages.at(-1)!;
  if (last.role === "tool") {
    yield { type: "text", text: "done" };
    return yield { type: "done", stop_reason: "end_turn" };
  }
  yield { type: "tool_call", id: "tu1", name: tool, input: { q: "x" } };
  yield { type: "done", stop_reason: "tool_use" };
};

beforeAll(async () => {
  process.on("unhandledRejection", onUnhandled);
  server = await startMcpServer({
    tools: [
      { name: "lookup", run: () => ({ content: [{ type: "text", text: "a real answer" }] }) },
      // The SDK passes a handler's result through as it is: whatever shape the test drew.
      { name: "raw", run: () => ("sdk" in next ? next.sdk : { content: [] }) as never },
    ],
    intercept: (name, req) => {
      if (name !== "raw" || !("http" in next)) return undefined;
      const h = next.http;
      return rpcIdOf(req).then(
        (id) => new Response(h.body(id), { status: h.status, headers: { "content-type": h.type } }),
      );
    },
  });
  home = tempDir();
  home.file(
    "config.toml",
    `[[mcp]]\nname = "search"\nurl = "${server.url}"\napproval = "never"\ntimeout_ms = 500\n\n[memory]\nepisodic_turns = 1\n`,
  );
  gw = await startTestGateway({ home: home.path, streamFor: () => stream });
  ws = await openSocket(gw.wsUrl);
  const deadline = Date.now() + 15_000;
  while ((((await ws.call("mcp.list")) as Msg).result.servers[0]?.state ?? "") !== "connected" && Date.now() < deadline)
    await Bun.sleep(25);
});
afterAll(async () => {
  process.off("unhandledRejection", onUnhandled);
  await ws[Symbol.asyncDispose]();
  await gw[Symbol.asyncDispose]();
  await server[Symbol.asyncDispose]();
  home[Symbol.dispose]();
});

const anyJson = fc.oneof(
  { weight: 4, arbitrary: fc.jsonValue({ maxDepth: 4 }) },
  { weight: 1, arbitrary: fc.nat(3 * CAP).map((n) => "z".repeat(n)) },
);
const block = fc.oneof(
  fc.record({ type: fc.constant("text"), text: fc.oneof(fc.string(), anyJson) }),
  fc.record({
    type: fc.constantFrom("image", "audio"),
    data: fc.oneof(fc.base64String(), anyJson),
    mimeType: fc.oneof(fc.string(), anyJson),
  }),
  fc.record({
    type: fc.constantFrom("resource", "resource_link"),
    uri: fc.oneof(fc.webUrl(), anyJson),
    resource: anyJson,
    name: anyJson,
  }),
  fc.record({ type: fc.string(), text: anyJson }, { requiredKeys: [] }),
  anyJson,
);
const sdkResult = fc.oneof(
  fc.record(
    {
      content: fc.array(block, { maxLength: 4 }),
      isError: fc.oneof(fc.boolean(), anyJson),
      structuredContent: anyJson,
    },
    { requiredKeys: ["content"] },
  ),
  fc.record({ content: anyJson }),
  anyJson,
);
const envelope = fc.oneof(
  fc.record(
    {
      jsonrpc: fc.oneof(fc.constant("2.0"), anyJson),
      id: fc.oneof(fc.constant("same"), anyJson),
      result: fc.oneof(sdkResult, anyJson),
    },
    { requiredKeys: [] },
  ),
  fc.record({
    jsonrpc: fc.constant("2.0"),
    id: fc.constant("same"),
    error: fc.oneof(
      fc.record(
        { code: fc.oneof(fc.integer(), anyJson), message: fc.oneof(fc.string(), anyJson), data: anyJson },
        { requiredKeys: [] },
      ),
      anyJson,
    ),
  }),
  fc.array(fc.record({ jsonrpc: fc.constant("2.0"), id: fc.constant("same"), result: sdkResult }), { maxLength: 3 }),
);
const httpAnswer = fc.oneof(
  envelope.map((e) => ({
    status: 200,
    type: "application/json",
    body: (id: unknown) => JSON.stringify(e).replaceAll('"same"', JSON.stringify(id)),
  })),
  envelope.map((e) => ({
    status: 200,
    type: "text/event-stream",
    body: (id: unknown) => `event: message\ndata: ${JSON.stringify(e).replaceAll('"same"', JSON.stringify(id))}\n\n`,
  })),
  fc
    .record({
      status: fc.constantFrom(200, 202, 204, 400, 404, 500, 503),
      type: fc.constantFrom("application/json", "text/event-stream", "text/html", ""),
      text: fc.string({ unit: "binary", maxLength: 400 }),
    })
    .map((r) => ({
      status: r.status,
      type: r.type,
      body: () => r.text,
    })),
);

async function callOnce(id: number) {
  const r = (await ws.call("chat.send", { content: "go", peer: `f${id % 8}` }, id)) as Msg;
  const events = ws.received
    .map((x) => x.value as Msg)
    .filter((m) => m.method === "chat.event" && m.params.id === id)
    .map((m) => m.params);
  // The test's own copies of every event and request: forgotten, so only the gateway's memory is measured.
  ws.received.length = 0;
  server.requests.length = 0;
  server.calls.length = 0;
  return {
    stop: r.result?.stop_reason,
    toolResult: events.find((e) => e.event === "tool_result")?.data as
      | { content: unknown; is_error: unknown }
      | undefined,
  };
}

let n = 0;
let baseline: HeapSnapshot;
const check = async () => {
  const { stop, toolResult } = await callOnce(++n);
  expect(stop).toBe("end_turn");
  expect(toolResult).toBeDefined();
  expect(typeof toolResult!.content).toBe("string");
  expect(typeof toolResult!.is_error).toBe("boolean");
  expect((toolResult!.content as string).length).toBeLessThanOrEqual(CAP + 1024);
  // An error says something: exoclaw's own failures name the server; a server's own isError keeps its words.
  if (toolResult!.is_error) expect((toolResult!.content as string).trim()).not.toBe("");
};

test(
  "tool results of any shape (through the SDK): a capped string result or a tool error naming the server",
  async () => {
    // A warm-up of both kinds of answer, then the baseline the heap must be back near at the end.
    await fc.assert(
      fc.asyncProperty(sdkResult, async (r) => ((next = { sdk: r }), check())),
      warmUp(15),
    );
    await fc.assert(
      fc.asyncProperty(httpAnswer, async (h) => ((next = { http: h }), check())),
      warmUp(15),
    );
    gw.logs.length = 0;
    baseline = heapSnapshot();
    await fc.assert(
      fc.asyncProperty(sdkResult, async (r) => ((next = { sdk: r }), check())),
      params(30),
    );
  },
  TIMEOUT,
);

test(
  "JSON-RPC answers of any shape (at the HTTP level): a tool error naming the server, or a capped result",
  async () => {
    await fc.assert(
      fc.asyncProperty(httpAnswer, async (h) => ((next = { http: h }), check())),
      params(30),
    );
  },
  TIMEOUT,
);

test("afterwards: ping, /health and a well-behaved tool call all still work", async () => {
  expect((await ws.call("ping")).result).toBe("pong");
  expect((await fetch(`${gw.url}/health`)).status).toBe(200);
  tool = "search__lookup";
  const { toolResult } = await callOnce(++n);
  expect(toolResult as unknown).toEqual({ tool_use_id: "tu1", content: "a real answer", is_error: false });
  expect(unhandled).toEqual([]);
  // Each MCP call used to leave its turn's abort signal, listeners and errors behind (found here).
  gw.logs.length = 0;
  expect(nearBaseline(baseline, heapSnapshot())).toBeNull();
});
