/**
 * Fault injection (issue 15), the model side, over a real gateway and the real Anthropic provider
 * against a fake upstream speaking its wire format: an upstream that answers 529 (overloaded) for as
 * long as it is asked, one that closes the connection mid-stream, and one that goes quiet (the
 * idle-timeout metric). The retry waits go through the provider's `sleep` seam, recorded instead of
 * slept, so "for minutes" costs no real time.
 */
import { expect, test } from "bun:test";
import { providerStream } from "../../src/agent/provider-factory.ts";
import { createLogger } from "../../src/lib/log.ts";
import { type Reply, sse, startFakeUpstream } from "../helpers/fake-upstream.ts";
import { startTestGateway } from "../helpers/gateway.ts";
import { openSocket } from "../helpers/ws.ts";

const TOKEN = "fault-token-0123456789abcdef";
const start = {
  type: "message_start",
  message: {
    id: "msg_F",
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
/** Anthropic's overloaded answer, verbatim (wire-formats.md A1, HTTP errors). */
const overloaded: Reply = {
  status: 529,
  headers: { "content-type": "application/json", "request-id": "req_011Cd65WVh8Zrvno3NunpJ73" },
  body: JSON.stringify({
    type: "error",
    error: { type: "overloaded_error", message: "Overloaded" },
    request_id: "req_011Cd65WVh8Zrvno3NunpJ73",
  }),
};
const AUTH = { headers: { authorization: `Bearer ${TOKEN}` } };
const toml = (url: string, extra = "") =>
  `[[agents]]\nid = "main"\nprovider = "anthropic"\nmodel = "m"\nbase_url = "${url}"\n${extra}`;

/** A gateway whose providers record their retry waits instead of sleeping them. */
async function gatewayWithRecordedWaits(url: string, extra = "") {
  const waits: number[] = [];
  const home = { path: "" };
  const gw = await startTestGateway({
    toml: toml(url, extra),
    token: TOKEN,
    env: { ANTHROPIC_API_KEY: "sk-test" },
    streamFor: (agent) =>
      providerStream(agent, {
        home: home.path,
        env: { ANTHROPIC_API_KEY: "sk-test" },
        log: createLogger({ write: () => {} }),
        retry: { sleep: async (ms) => void waits.push(ms) },
      }),
  });
  home.path = gw.home;
  return { gw, waits };
}
const metrics = async (url: string) =>
  (await fetch(`${url}/metrics`, { headers: { authorization: `Bearer ${TOKEN}` } })).text();
const errorEvents = (s: Awaited<ReturnType<typeof openSocket>>, id: number) =>
  JSON.stringify(
    s.received
      .map((m) => m.value as Record<string, any>)
      .filter((m) => m.method === "chat.event" && m.params.id === id && m.params.event === "error"),
  );

test("529 for as long as it is asked: the retries back off and stop, the turn ends with a clear error, metered once", async () => {
  await using up = startFakeUpstream(() => overloaded);
  const { gw, waits } = await gatewayWithRecordedWaits(up.url);
  await using _gw = gw;
  await using s = await openSocket(gw.wsUrl, AUTH);
  const r = (await s.call("chat.send", { content: "are you there?" }, 1)) as Record<string, any>;
  expect(r.result?.stop_reason).toBe("error");
  expect(errorEvents(s, 1)).toContain("overloaded");
  // Three attempts in all (the default), two waits between them, the second longer than the first
  // (equal jitter: [250, 500] then [500, 1000] ms): backoff, not a hot loop.
  expect(up.requests.length).toBe(3);
  expect(waits.length).toBe(2);
  expect(waits[1]!).toBeGreaterThan(waits[0]!);
  // One model call in the ledger for the turn, whatever the number of HTTP attempts.
  expect((await gw.store.sumUsage({})).calls).toBe(1);
  expect(await metrics(gw.url)).toContain('exoclaw_chat_turns_total{agent="main",stop_reason="error"} 1');
  // The gateway still serves.
  expect((await s.call("ping", undefined, 2)).result).toBe("pong");
  expect((await fetch(`${gw.url}/health`)).status).toBe(200);
});

test("529 with a huge retry-after: the wait is capped, not slept for ten minutes", async () => {
  await using up = startFakeUpstream(() => ({
    ...overloaded,
    headers: { ...overloaded.headers, "retry-after": "600" },
  }));
  const { gw, waits } = await gatewayWithRecordedWaits(up.url);
  await using _gw = gw;
  await using s = await openSocket(gw.wsUrl, AUTH);
  const r = (await s.call("chat.send", { content: "hi" }, 1)) as Record<string, any>;
  expect(r.result?.stop_reason).toBe("error");
  expect(waits.length).toBe(2);
  for (const w of waits) expect(w).toBeLessThanOrEqual(8000);
});

test("the model closes the connection mid-stream before any text: retried, and the turn answers", async () => {
  let n = 0;
  await using up = startFakeUpstream(() =>
    n++ === 0 ? { body: answer("first try"), dropAfterBytes: 120 } : { body: answer("second try") },
  );
  const { gw } = await gatewayWithRecordedWaits(up.url);
  await using _gw = gw;
  await using s = await openSocket(gw.wsUrl, AUTH);
  const r = (await s.call("chat.send", { content: "hi" }, 1)) as Record<string, any>;
  expect(r.result?.text).toBe("second try");
  expect(up.requests.length).toBe(2);
});

test("the model closes the connection after text was sent: a clear error, no repeat of the text, the next turn runs", async () => {
  let n = 0;
  const body = answer("half an answer that never ends");
  const cut = body.indexOf("event: message_delta");
  await using up = startFakeUpstream(() =>
    n++ === 0 ? { body, dropAfterBytes: cut } : { body: answer("whole answer") },
  );
  const { gw } = await gatewayWithRecordedWaits(up.url);
  await using _gw = gw;
  await using s = await openSocket(gw.wsUrl, AUTH);
  const r = (await s.call("chat.send", { content: "hi" }, 1)) as Record<string, any>;
  expect(r.result?.stop_reason).toBe("error");
  expect(errorEvents(s, 1)).toContain("connection lost");
  // Text already shown is never retried (it would be shown twice).
  expect(up.requests.length).toBe(1);
  const r2 = (await s.call("chat.send", { content: "again" }, 2)) as Record<string, any>;
  expect(r2.result?.text).toBe("whole answer");
});

test("/metrics counts the turns ended by idle_timeout_ms", async () => {
  let hang = true;
  await using up = startFakeUpstream(() =>
    hang ? { body: answer("stalled"), hangAfterBytes: 100 } : { body: answer("fine") },
  );
  const { gw } = await gatewayWithRecordedWaits(up.url, "idle_timeout_ms = 200\n");
  await using _gw = gw;
  await using s = await openSocket(gw.wsUrl, AUTH);
  expect(await metrics(gw.url)).not.toContain("exoclaw_idle_timeouts_total{");
  expect(((await s.call("chat.send", { content: "hi" }, 1)) as Record<string, any>).result?.stop_reason).toBe("error");
  hang = false;
  expect(((await s.call("chat.send", { content: "hi" }, 2)) as Record<string, any>).result?.text).toBe("fine");
  const text = await metrics(gw.url);
  expect(text).toContain("# TYPE exoclaw_idle_timeouts_total counter");
  // One turn ended by the idle timeout (its three stalled attempts are one turn); the good one is not counted.
  expect(text).toContain('exoclaw_idle_timeouts_total{agent="main"} 1');
}, 30_000);
