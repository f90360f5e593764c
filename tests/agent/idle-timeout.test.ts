/**
 * Fault injection (issue 15): a model that stops sending. Without a limit a hung upstream held its
 * turn slot forever (a channel turn has no client to cancel it). `idle_timeout_ms` (per agent,
 * default 120 s) fails the call once no byte arrives for that long: retried, then the fallbacks, then
 * a clear error, and the next turn runs.
 */
import { expect, test } from "bun:test";
import * as v from "valibot";
import type { StreamFn } from "../../src/agent/loop.ts";
import { providerStream } from "../../src/agent/provider-factory.ts";
import type { StreamEvent } from "../../src/agent/types.ts";
import { ConfigSchema } from "../../src/config/schema.ts";
import { createLogger } from "../../src/lib/log.ts";
import { sse, startFakeUpstream } from "../helpers/fake-upstream.ts";
import { startTestGateway } from "../helpers/gateway.ts";
import { openSocket } from "../helpers/ws.ts";

const start = {
  type: "message_start",
  message: {
    id: "msg_T",
    type: "message",
    role: "assistant",
    model: "m",
    content: [],
    stop_reason: null,
    stop_sequence: null,
    usage: { input_tokens: 10, output_tokens: 1 },
  },
};
const answer = (text: string) =>
  sse(
    [
      start,
      { type: "content_block_start", index: 0, content_block: { type: "text", text: "" } },
      { type: "content_block_delta", index: 0, delta: { type: "text_delta", text } },
      { type: "content_block_stop", index: 0 },
      { type: "message_delta", delta: { stop_reason: "end_turn", stop_sequence: null }, usage: { output_tokens: 5 } },
      { type: "message_stop" },
    ],
    { named: true },
  );

const agentWith = (baseUrl: string, idle: number) =>
  v.parse(ConfigSchema, {
    agents: [{ id: "main", provider: "anthropic", model: "m", base_url: baseUrl, idle_timeout_ms: idle }],
  }).agents[0]!;
const run = async (stream: StreamFn) => {
  const out: StreamEvent[] = [];
  for await (const e of stream(
    {
      model: "m",
      system: "",
      maxTokens: 16,
      tools: [],
      messages: [{ role: "user", parts: [{ type: "text", text: "hi" }] }],
    },
    new AbortController().signal,
  ))
    out.push(e);
  return out;
};
const ctx = { home: "/nonexistent", env: {}, log: createLogger({ write: () => {} }), retry: { sleep: async () => {} } };

test("a stream that stalls mid-answer fails with an idle-timeout error after its retries, each request aborted", async () => {
  await using up = startFakeUpstream([{ body: answer("never finished"), hangAfterBytes: 200 }]);
  const events = await run(providerStream(agentWith(up.url, 200), ctx));
  const last = events.at(-1)!;
  expect(last.type).toBe("error");
  expect(last.type === "error" && last.error.message).toContain("no data from the model for 200 ms (idle_timeout_ms)");
  expect(up.requests.length).toBe(3); // the default attempts: a stall is retryable
  // Each stalled response was really abandoned on the network, not left hanging.
  expect(await up.waitForAbort()).toBe(true);
});

test("an upstream that never answers (no headers) times out too", async () => {
  const server = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    fetch: (req) =>
      new Promise<Response>((resolve) => req.signal.addEventListener("abort", () => resolve(new Response("")))),
  });
  try {
    const events = await run(providerStream(agentWith(`http://127.0.0.1:${server.port}`, 200), ctx));
    const last = events.at(-1)!;
    expect(last.type === "error" && last.error.message).toContain("idle_timeout_ms");
  } finally {
    await server.stop(true);
  }
});

test("a slow but steady stream is not cut: the limit is on silence, not on the whole call", async () => {
  // Every chunk within the limit, the whole answer well past it.
  await using up = startFakeUpstream([{ body: answer("slow and steady"), delayMs: 40 }]);
  const events = await run(providerStream(agentWith(up.url, 400), ctx));
  expect(events.at(-1)).toEqual({ type: "done", stop_reason: "end_turn" });
  expect(events.flatMap((e) => (e.type === "text" ? [e.text] : [])).join("")).toBe("slow and steady");
});

test("over a real gateway: a hung model gives chat.send a clear error, and the next turn runs", async () => {
  let hang = true;
  await using up = startFakeUpstream(() =>
    hang ? { body: answer("stalled"), hangAfterBytes: 100 } : { body: answer("back again") },
  );
  const toml = `[[agents]]\nid = "main"\nprovider = "anthropic"\nmodel = "m"\nbase_url = "${up.url}"\nidle_timeout_ms = 300\n`;
  await using gw = await startTestGateway({ toml, env: { ANTHROPIC_API_KEY: "sk-test" } });
  await using s = await openSocket(gw.wsUrl);
  const r1 = (await s.call("chat.send", { content: "hello" }, 1)) as Record<string, any>;
  expect(r1.result?.stop_reason).toBe("error");
  // The client is told why, in the turn's error event.
  const events = s.received
    .map((m) => m.value as Record<string, any>)
    .filter((m) => m.method === "chat.event" && m.params.id === 1 && m.params.event === "error");
  expect(JSON.stringify(events)).toContain("idle_timeout_ms");
  hang = false;
  const r2 = (await s.call("chat.send", { content: "again" }, 2)) as Record<string, any>;
  expect(r2.result?.text).toBe("back again");
  expect((await s.call("ping", undefined, 3)).result).toBe("pong");
}, 30_000);
