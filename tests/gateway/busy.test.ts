/**
 * A full turn queue as interactive callers see it (issue 10): WebSocket `chat.send` gets -32005 with
 * `data.retry_after_ms`, the OpenAI-compatible endpoint 429 with `Retry-After` (the official SDK's
 * RateLimitError), a queued turn cancelled by chat.cancel or a closed socket never reaches the model,
 * /metrics shows the queue, and a reload of `max_concurrent_turns` applies to waiting turns.
 */
import { expect, test } from "bun:test";
import OpenAI from "openai";
import { gatedModel, waitFor } from "../helpers/gated-model.ts";
import { startTestGateway } from "../helpers/gateway.ts";
import { openSocket } from "../helpers/ws.ts";

type Msg = Record<string, any>;
const TOKEN = "busy-token-1234567";
const CONFIG = "[gateway]\nopenai_compat = true\nmax_concurrent_turns = 1\nmax_queued_turns = 2\n";

const metric = async (url: string, name: string) => {
  const text = await (await fetch(`${url}/metrics`, { headers: { authorization: `Bearer ${TOKEN}` } })).text();
  return Number(new RegExp(`^${name} (\\S+)$`, "m").exec(text)?.[1] ?? NaN);
};

test("a full queue: chat.send gets -32005 with retry_after_ms, the OpenAI endpoint 429 with Retry-After; nothing reaches the model", async () => {
  const model = gatedModel();
  await using gw = await startTestGateway({ toml: CONFIG, token: TOKEN, streamFor: () => model.stream });
  await using ws = await openSocket(gw.wsUrl, { headers: { authorization: `Bearer ${TOKEN}` } });
  const send = (id: number, peer: string) => ws.call("chat.send", { content: `from ${peer}`, peer }, id);
  const running = send(1, "p1");
  await waitFor(() => model.waiting.length === 1, "the first turn to run");
  const queued = [send(2, "p2"), send(3, "p3")];
  await waitFor(async () => (await metric(gw.url, "exoclaw_turns_queued")) === 2, "two turns queued");

  const refused = (await send(4, "p4")) as Msg;
  expect(refused.error.code).toBe(-32005);
  expect(refused.error.data.retry_after_ms).toBeGreaterThan(0);
  expect(refused.error.message).toContain("busy");

  // The OpenAI-compatible endpoint: 429 in OpenAI's error shape with Retry-After, plain and streaming.
  const body = { model: "exoclaw:main", messages: [{ role: "user", content: "hi" }] };
  for (const stream of [false, true]) {
    const r = await fetch(`${gw.url}/v1/chat/completions`, {
      method: "POST",
      headers: { authorization: `Bearer ${TOKEN}`, "content-type": "application/json" },
      body: JSON.stringify({ ...body, stream }),
    });
    expect(r.status).toBe(429);
    expect(Number(r.headers.get("retry-after"))).toBeGreaterThanOrEqual(1);
    expect(Number(r.headers.get("retry-after-ms"))).toBeGreaterThan(0);
    expect(await r.json()).toMatchObject({
      error: { type: "rate_limit_error", code: "rate_limited", message: expect.stringContaining("busy") },
    });
  }
  const client = new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: TOKEN, maxRetries: 0 });
  const sdkError = await client.chat.completions
    .create({ model: "exoclaw:main", messages: [{ role: "user", content: "hi" }] })
    .then(
      () => null,
      (e: unknown) => e,
    );
  expect(sdkError).toBeInstanceOf(OpenAI.RateLimitError);
  expect((sdkError as InstanceType<typeof OpenAI.RateLimitError>).status).toBe(429);

  expect(await metric(gw.url, "exoclaw_turns_busy_total")).toBe(4);
  expect(await metric(gw.url, "exoclaw_turns_running")).toBe(1);
  model.open();
  expect(((await running) as Msg).result.text).toBe("reply:from p1");
  expect((await Promise.all(queued)).map((r) => (r as Msg).result.text)).toEqual(["reply:from p2", "reply:from p3"]);
  expect(model.seen).toEqual(["from p1", "from p2", "from p3"]);
  // Once the queue has room, the same caller is served.
  const client2 = new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: TOKEN, maxRetries: 0 });
  expect(
    (await client2.chat.completions.create({ model: "exoclaw:main", messages: [{ role: "user", content: "again" }] }))
      .choices[0]!.message.content,
  ).toBe("reply:again");
  expect(await metric(gw.url, "exoclaw_turn_wait_seconds_count")).toBe(4);
});

test("queued turns cancelled by chat.cancel or a closed socket leave the queue without reaching the model", async () => {
  const model = gatedModel();
  await using gw = await startTestGateway({ toml: CONFIG, token: TOKEN, streamFor: () => model.stream });
  await using ws = await openSocket(gw.wsUrl, { headers: { authorization: `Bearer ${TOKEN}` } });
  const running = ws.call("chat.send", { content: "first", peer: "p1" }, 1);
  await waitFor(() => model.waiting.length === 1, "the first turn to run");
  const queued = ws.call("chat.send", { content: "cancel me", peer: "p2" }, 2);
  const other = await openSocket(gw.wsUrl, { headers: { authorization: `Bearer ${TOKEN}` } });
  other.sendJson({
    jsonrpc: "2.0",
    id: 9,
    method: "chat.send",
    params: { content: "gone with the socket", peer: "p3" },
  });
  await waitFor(async () => (await metric(gw.url, "exoclaw_turns_queued")) === 2, "two turns queued");

  expect(((await ws.call("chat.cancel", { id: 2 })) as Msg).result).toEqual({ cancelled: 1 });
  expect(((await queued) as Msg).result).toMatchObject({ stop_reason: "cancelled", text: "" });
  await other[Symbol.asyncDispose]();
  await waitFor(
    async () => (await metric(gw.url, "exoclaw_turns_queued")) === 0,
    "the closed socket's turn to leave the queue",
  );
  // Room again: a new turn queues instead of being refused.
  const later = ws.call("chat.send", { content: "later", peer: "p4" }, 3);
  model.open();
  expect(((await running) as Msg).result.text).toBe("reply:first");
  expect(((await later) as Msg).result.text).toBe("reply:later");
  expect(model.seen).toEqual(["first", "later"]);
  expect(await gw.store.getSession("main:ws:local:p2")).toBeNull();
});

test("max_concurrent_turns is reloadable: raising it starts the waiting turns", async () => {
  const model = gatedModel();
  await using gw = await startTestGateway({
    toml: "[gateway]\nmax_concurrent_turns = 1\n",
    streamFor: () => model.stream,
  });
  await using ws = await openSocket(gw.wsUrl);
  const turns = [1, 2, 3].map((n) => ws.call("chat.send", { content: `t${n}`, peer: `p${n}` }, n));
  await waitFor(() => model.waiting.length === 1, "one turn running");
  await Bun.write(`${gw.home}/config.toml`, "[gateway]\nmax_concurrent_turns = 3\n");
  expect(((await ws.call("config.reload", {}, 10)) as Msg).result).toBeDefined();
  // The next scheduling step applies it: a new turn arriving lets all of them run.
  const fourth = ws.call("chat.send", { content: "t4", peer: "p4" }, 4);
  await waitFor(() => model.waiting.length === 3, "three turns running");
  model.open();
  await Promise.all([...turns, fourth]);
  expect(model.peak).toBe(3);
});
