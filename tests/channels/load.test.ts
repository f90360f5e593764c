/**
 * Bounded work under a webhook burst (issue 10): Telegram webhooks are acknowledged at once however
 * slow the model is, at most `max_concurrent_turns` turns run, every message is answered in the end,
 * in order within each chat, and a chatty chat does not hold the others back.
 */
import { Database } from "bun:sqlite";
import { expect, test } from "bun:test";
import { join } from "node:path";
import { writeCredential } from "../../src/config/index.ts";
import { gatedModel, releaseNext, waitFor } from "../helpers/gated-model.ts";
import { startTestGateway } from "../helpers/gateway.ts";
import { tempDir } from "../helpers/temp.ts";

const SECRET = "S3cr3t_token-1";

/** A private-chat text message as Telegram sends it (wire-formats B1.2). */
const update = (updateId: number, chat: number, messageId: number, text: string) =>
  JSON.stringify({
    update_id: updateId,
    message: {
      message_id: messageId,
      from: { id: chat, is_bot: false, first_name: "Ada" },
      chat: { id: chat, first_name: "Ada", type: "private" },
      date: 1636628439,
      text,
    },
  });

/** A loopback stand-in for api.telegram.org that records every sendMessage, per chat, in arrival order. */
function fakeTelegram() {
  const byChat = new Map<number, string[]>();
  let total = 0;
  const server = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    async fetch(req) {
      const body = (await req.json()) as { chat_id: number; text: string };
      const list = byChat.get(body.chat_id) ?? [];
      byChat.set(body.chat_id, list);
      list.push(body.text);
      total++;
      return Response.json({
        ok: true,
        result: { message_id: total, date: 1636628440, chat: { id: body.chat_id, type: "private" }, text: body.text },
      });
    },
  });
  return {
    server,
    byChat,
    get total() {
      return total;
    },
  };
}

/**
 * The update ids in the order the gateway accepted (stored) them: webhooks posted at the same moment
 * have no order of their own, so "in order" means the order of acceptance.
 */
function acceptedOrder(home: string): number[] {
  const db = new Database(join(home, "exoclaw.db"), { readonly: true });
  try {
    return db
      .query<{ id: string }, []>("SELECT id FROM inbound ORDER BY received_at, rowid")
      .all()
      .map((r) => Number(r.id.slice("telegram:".length)));
  } finally {
    db.close();
  }
}

function telegramHome(apiPort: number, maxConcurrent: number) {
  const home = tempDir();
  writeCredential(home.path, "telegram_webhook_secret", SECRET);
  writeCredential(home.path, "telegram_bot_token", "987654321:AAE-secret-token");
  home.file(
    "config.toml",
    `[gateway]\nmax_concurrent_turns = ${maxConcurrent}\n\n` +
      `[[plugins]]\nname = "telegram"\npath = "builtin:telegram"\nallowed_hosts = ["127.0.0.1:${apiPort}"]\nconfig = { api_base = "http://127.0.0.1:${apiPort}" }\n\n` +
      // Open on purpose: a load test of strangers; no per-person rate, which would refuse the burst.
      `[channels.telegram]\nsecrets = { webhook_secret = "telegram_webhook_secret", bot_token = "telegram_bot_token" }\ndm_policy = "open"\nrate_per_minute = 0\n`,
  );
  return home;
}

test("2,000 webhooks at once against a slow model: all acknowledged while it is blocked, at most max_concurrent_turns at once, all answered in order per chat", async () => {
  const api = fakeTelegram();
  using home = telegramHome(api.server.port!, 8);
  const model = gatedModel();
  try {
    await using gw = await startTestGateway({ home: home.path, streamFor: () => model.stream });
    const CHATS = 40;
    const PER_CHAT = 50;
    const posts: Promise<Response>[] = [];
    for (let i = 0; i < PER_CHAT; i++) {
      for (let c = 0; c < CHATS; c++) {
        const n = i * CHATS + c;
        posts.push(
          fetch(`${gw.url}/webhook/telegram`, {
            method: "POST",
            headers: { "content-type": "application/json", "x-telegram-bot-api-secret-token": SECRET },
            body: update(100_000 + n, 5000 + c, i + 1, `chat${c} m${i}`),
          }),
        );
      }
    }
    const acks = await Promise.all(posts);
    // Every acknowledgement arrived while the model had not answered anything.
    expect(api.total).toBe(0);
    expect(acks.map((r) => r.status).filter((s) => s !== 200)).toEqual([]);
    expect(
      (await Promise.all(acks.map((r) => r.json()))).filter((b) => (b as { accepted?: number }).accepted !== 1),
    ).toEqual([]);
    await waitFor(() => model.waiting.length === 8, "the turn slots to fill");
    const metrics = await (await fetch(`${gw.url}/metrics`)).text();
    expect(metrics).toContain("exoclaw_turns_running 8\n");

    model.open();
    await waitFor(() => api.total === CHATS * PER_CHAT, `all ${CHATS * PER_CHAT} replies (got ${api.total})`, 60_000);
    expect(model.peak).toBeLessThanOrEqual(8);
    expect(model.seen.length).toBe(CHATS * PER_CHAT);
    const textOf = (updateId: number) =>
      `chat${(updateId - 100_000) % CHATS} m${Math.floor((updateId - 100_000) / CHATS)}`;
    const accepted = acceptedOrder(gw.home).map(textOf);
    for (let c = 0; c < CHATS; c++) {
      const mine = accepted.filter((t) => t.startsWith(`chat${c} `));
      expect(mine.length).toBe(PER_CHAT);
      expect(api.byChat.get(5000 + c)).toEqual(mine.map((t) => `reply:${t}`));
    }
    // Nothing left pending (a message is marked delivered just after the platform's answer to its
    // send, so the last few may still be settling when their reply arrives), and the wait shows in /metrics.
    await waitFor(async () => (await gw.store.pendingInbound(10)).length === 0, "no message left pending");
    const after = await (await fetch(`${gw.url}/metrics`)).text();
    expect(after).toContain(`exoclaw_turn_wait_seconds_count ${CHATS * PER_CHAT}\n`);
    expect(after).toContain("exoclaw_turns_queued 0\n");
  } finally {
    await api.server.stop(true);
  }
}, 90_000);

test("fairness: one chat with 100 waiting messages does not hold back 10 chats with one each", async () => {
  const api = fakeTelegram();
  using home = telegramHome(api.server.port!, 1);
  const model = gatedModel();
  try {
    await using gw = await startTestGateway({ home: home.path, streamFor: () => model.stream });
    const post = (updateId: number, chat: number, messageId: number, text: string) =>
      fetch(`${gw.url}/webhook/telegram`, {
        method: "POST",
        headers: { "content-type": "application/json", "x-telegram-bot-api-secret-token": SECRET },
        body: update(updateId, chat, messageId, text),
      });
    // The chatty chat's 100 arrive first, all before any of the others.
    for (const r of await Promise.all(
      Array.from({ length: 100 }, (_, i) => post(1000 + i, 7000, i + 1, `chatty m${i}`)),
    ))
      expect(r.status).toBe(200);
    for (const r of await Promise.all(Array.from({ length: 10 }, (_, c) => post(2000 + c, 8000 + c, 1, `quiet${c}`))))
      expect(r.status).toBe(200);
    // One turn at a time: let them through one by one, recording who the model served.
    const order: string[] = [];
    while (order.length < 110) order.push(await releaseNext(model, `model call ${order.length + 1}`));
    const lastQuiet = Math.max(...Array.from({ length: 10 }, (_, c) => order.indexOf(`quiet${c}`)));
    const chattyBefore = order.slice(0, lastQuiet).filter((t) => t.startsWith("chatty")).length;
    // Round-robin: the quiet chats alternate with the chatty one rather than waiting for its 100.
    expect(chattyBefore).toBeLessThanOrEqual(15);
    // And the chatty chat still ran in its own order (the order its webhooks were accepted in).
    const chattyAccepted = acceptedOrder(gw.home)
      .filter((id) => id < 2000)
      .map((id) => `chatty m${id - 1000}`);
    expect(order.filter((t) => t.startsWith("chatty"))).toEqual(chattyAccepted);
    await waitFor(() => api.total === 110, "all 110 replies");
    expect(model.peak).toBe(1);
  } finally {
    await api.server.stop(true);
  }
}, 60_000);

test("the http channel, which answers in its own response, is told busy (429, Retry-After) before anything is stored", async () => {
  const model = gatedModel();
  await using gw = await startTestGateway({
    toml: "[gateway]\nmax_concurrent_turns = 1\nmax_queued_turns = 1\n\n[channels.http]\n",
    streamFor: () => model.stream,
  });
  const post = (peer: string, id: string) =>
    fetch(`${gw.url}/webhook/http`, { method: "POST", body: JSON.stringify({ peer, text: `from ${peer}`, id }) });
  const first = post("alice", "m1");
  await waitFor(() => model.waiting.length === 1, "alice's turn to run");
  const second = post("bob", "m2");
  await waitFor(
    async () => /^exoclaw_turns_queued 1$/m.test(await (await fetch(`${gw.url}/metrics`)).text()),
    "bob's turn queued",
  );
  const refused = await post("carol", "m3");
  expect(refused.status).toBe(429);
  expect(Number(refused.headers.get("retry-after"))).toBeGreaterThanOrEqual(1);
  expect(await refused.json()).toMatchObject({
    error: {
      code: "rate_limited",
      message: expect.stringContaining("busy"),
      data: { retry_after_ms: expect.any(Number) },
    },
  });
  model.open();
  expect(((await (await first).json()) as { replies: { text: string }[] }).replies[0]!.text).toBe("reply:from alice");
  expect(((await (await second).json()) as { replies: { text: string }[] }).replies[0]!.text).toBe("reply:from bob");
  // Refused before it was stored: the same id sent again is answered, not taken for a duplicate.
  expect(((await (await post("carol", "m3")).json()) as { replies: { text: string }[] }).replies[0]!.text).toBe(
    "reply:from carol",
  );
});

test("messages accepted but not run before a restart are drained at the next start, within the bound and in order per chat", async () => {
  const api = fakeTelegram();
  using home = telegramHome(api.server.port!, 2);
  try {
    const blocked = gatedModel();
    const first = await startTestGateway({ home: home.path, streamFor: () => blocked.stream });
    const posts = [];
    for (let i = 0; i < 5; i++)
      for (let c = 0; c < 4; c++)
        posts.push(
          fetch(`${first.url}/webhook/telegram`, {
            method: "POST",
            headers: { "content-type": "application/json", "x-telegram-bot-api-secret-token": SECRET },
            body: update(300 + i * 4 + c, 9000 + c, i + 1, `c${c} m${i}`),
          }),
        );
    for (const r of await Promise.all(posts)) expect(r.status).toBe(200);
    await waitFor(() => blocked.waiting.length === 2, "two turns running");
    // Stopped under load: what is in memory finishes during the drain, the rest stays in the store.
    const stopped = first[Symbol.asyncDispose]();
    blocked.open();
    await stopped;
    const before = api.total;
    expect(before).toBeLessThan(20);
    const model = gatedModel();
    model.open();
    await using gw = await startTestGateway({ home: home.path, streamFor: () => model.stream, retryIntervalMs: 200 });
    await waitFor(() => api.total === 20, `all 20 replies after the restart (got ${api.total})`);
    expect(model.peak).toBeLessThanOrEqual(2);
    for (let c = 0; c < 4; c++) {
      const accepted = acceptedOrder(gw.home)
        .filter((id) => (id - 300) % 4 === c)
        .map((id) => `reply:c${c} m${Math.floor((id - 300) / 4)}`);
      expect(api.byChat.get(9000 + c)).toEqual(accepted);
    }
  } finally {
    await api.server.stop(true);
  }
}, 60_000);
