/**
 * `chat.cancel {session}` on one gateway (no NATS: the in-process bus, the same code path as a
 * cluster's): it cancels that session's turns whoever started them — another WebSocket, the
 * OpenAI-compatible endpoint, a channel message — and no other session's; `{id}` stays the calling
 * connection's own. A cancelled channel message is done: nothing sent, not retried, its session's next
 * message answered.
 */
import { expect, test } from "bun:test";
import { writeCredential } from "../../src/config/index.ts";
import { gatedModel, waitFor } from "../helpers/gated-model.ts";
import { startTestGateway } from "../helpers/gateway.ts";
import { tempDir } from "../helpers/temp.ts";
import { openSocket } from "../helpers/ws.ts";

type Msg = Record<string, any>;

test("chat.cancel {session} cancels that session's turns started on another socket or on /v1, and no other session's", async () => {
  const m = gatedModel();
  await using gw = await startTestGateway({ toml: "[gateway]\nopenai_compat = true\n", streamFor: () => m.stream });
  await using ws1 = await openSocket(gw.wsUrl);
  await using ws2 = await openSocket(gw.wsUrl);
  const mine = ws1.call("chat.send", { content: "first", peer: "ada" }, "a") as Promise<Msg>;
  const other = ws1.call("chat.send", { content: "other", peer: "bob" }, "b") as Promise<Msg>;
  const v1 = fetch(`${gw.url}/v1/chat/completions`, {
    method: "POST",
    headers: { "content-type": "application/json", "x-exoclaw-session": "s1" },
    body: JSON.stringify({ model: "exoclaw:main", messages: [{ role: "user", content: "over http" }] }),
  });
  await waitFor(() => m.waiting.length === 3, "three model calls");
  // Another connection names ada's session: ada's turn ends, bob's and the /v1 one run on.
  expect(((await ws2.call("chat.cancel", { session: "main:ws:local:ada" })) as Msg).result).toEqual({ cancelled: 1 });
  expect((await mine).result).toMatchObject({ stop_reason: "cancelled", session: "main:ws:local:ada" });
  await waitFor(() => m.current === 2, "ada's model call to end");
  // {id} is per connection: ws2 has no request "b".
  expect(((await ws2.call("chat.cancel", { id: "b" })) as Msg).result).toEqual({ cancelled: 0 });
  // The OpenAI-compatible request's session, by its key.
  expect(((await ws2.call("chat.cancel", { session: "main:openai:local:s1" })) as Msg).result).toEqual({
    cancelled: 1,
  });
  const res = await v1;
  expect(res.status).toBe(200);
  expect(((await res.json()) as Msg).choices[0].finish_reason).toBe("stop");
  expect(m.current).toBe(1);
  m.waiting.find((c) => c.text === "other")!.release();
  expect((await other).result).toMatchObject({ stop_reason: "end_turn", text: "reply:other" });
  expect(((await ws2.call("chat.cancel", { session: "main:ws:local:bob" })) as Msg).result).toEqual({ cancelled: 0 });
});

test("a channel message's turn cancelled by chat.cancel {session} is done: nothing sent, not retried; the next message is answered", async () => {
  const sent: { text: string }[] = [];
  const api = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    async fetch(req) {
      sent.push((await req.json()) as { text: string });
      return Response.json({ ok: true, result: { message_id: sent.length } });
    },
  });
  using home = tempDir();
  writeCredential(home.path, "tg_secret", "S3cr3t_token-1");
  writeCredential(home.path, "tg_bot", "987654321:AAE-secret-token");
  home.file(
    "config.toml",
    `[[plugins]]\nname = "telegram"\npath = "builtin:telegram"\nallowed_hosts = ["127.0.0.1:${api.port}"]\nconfig = { api_base = "http://127.0.0.1:${api.port}" }\n\n` +
      `[channels.telegram]\nsecrets = { webhook_secret = "tg_secret", bot_token = "tg_bot" }\nallow_from = ["77"]\n`,
  );
  const m = gatedModel();
  const update = (n: number, text: string) =>
    JSON.stringify({
      update_id: n,
      message: {
        message_id: n,
        from: { id: 77, is_bot: false, first_name: "Ada" },
        chat: { id: 77, type: "private" },
        date: 1636628439,
        text,
      },
    });
  try {
    // A short retry interval: a message left pending would be tried again within the test.
    await using gw = await startTestGateway({ home: home.path, streamFor: () => m.stream, retryIntervalMs: 50 });
    await using ws = await openSocket(gw.wsUrl);
    const post = (body: string) =>
      fetch(`${gw.url}/webhook/telegram`, {
        method: "POST",
        headers: { "content-type": "application/json", "x-telegram-bot-api-secret-token": "S3cr3t_token-1" },
        body,
      });
    expect((await post(update(1, "stop me"))).status).toBe(200);
    await waitFor(() => m.waiting.length === 1, "the channel turn's model call");
    const session = "main:telegram:bot:77";
    expect(((await ws.call("chat.cancel", { session })) as Msg).result).toEqual({ cancelled: 1 });
    await waitFor(async () => (await gw.store.countInbound()).pending === 0, "the message to be done");
    m.open();
    expect((await post(update(2, "next"))).status).toBe(200);
    await waitFor(() => sent.length === 1, "the reply to the next message");
    expect(sent.map((s) => s.text)).toEqual(["reply:next"]);
    // The cancelled message ran once and is in the history once, before the next one.
    expect(m.seen).toEqual(["stop me", "next"]);
    const hist = await gw.store.history(session, { limit: 10 });
    expect(hist.filter((x) => x.role === "user").map((x) => (x.parts[0] as { text: string }).text)).toEqual([
      "stop me",
      "next",
    ]);
    expect((await gw.store.countInbound()).pending).toBe(0);
  } finally {
    await api.stop(true);
  }
});
