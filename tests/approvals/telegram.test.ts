/**
 * Approvals for the owner on Telegram (issue 16): the built-in telegram plugin (.wasm), a loopback
 * stand-in for api.telegram.org, real signed webhooks. A message from someone who is not the owner
 * taints the turn, so the agent's egress tool (builtin http-get, approval = "untrusted") waits; the
 * owner is sent an inline keyboard; a forged (unsigned) callback is refused at the door, a stranger's
 * signed press decides nothing, and the owner's press lets the call run (answered at once, while the
 * decision message to the owner may still hang; its loss is logged). The owner's own messages do
 * not taint.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import type { StreamFn } from "../../src/agent/loop.ts";
import { writeCredential } from "../../src/config/index.ts";
import { startTestGateway, type TestGateway } from "../helpers/gateway.ts";
import { type HeldRequest, heldRequest } from "../helpers/held.ts";
import { tempDir } from "../helpers/temp.ts";

type Msg = Record<string, any>;
const OWNER = 1561073042;
const STRANGER = 777000111;
const SECRET = "S3cr3t_token-approvals";

let api: ReturnType<typeof Bun.serve>;
let web: ReturnType<typeof Bun.serve>;
const sent: Msg[] = [];
const hits: string[] = [];
/** Set by a test: the decision message (`Allowed: …` / `Denied: …`) is held until the test answers it, as a slow Telegram would. */
let holdDecision: HeldRequest | null = null;
beforeAll(() => {
  api = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    async fetch(req) {
      const body = (await req.json()) as Msg;
      sent.push(body);
      if (holdDecision && /^(Allowed|Denied): /.test(String(body.text))) return holdDecision.hold(req);
      return Response.json({ ok: true, result: { message_id: sent.length } });
    },
  });
  web = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    fetch: (req) => (hits.push(new URL(req.url).pathname), new Response("page text")),
  });
});
afterAll(() => {
  api.stop(true);
  web.stop(true);
});

/** Fetches the URL named in the message, then says what came back. */
const model: StreamFn = async function* (req) {
  const last = req.messages.at(-1)!;
  if (last.role === "tool") yield { type: "text", text: `fetched: ${(last.parts[0] as { content: string }).content}` };
  else
    yield {
      type: "tool_call",
      id: "tu1",
      name: "http_get",
      input: { url: `http://127.0.0.1:${web.port}${(last.parts[0] as { text: string }).text}` },
    };
  yield { type: "done", stop_reason: last.role === "tool" ? "end_turn" : "tool_use" };
};

const textUpdate = (id: number, from: number, text: string) =>
  JSON.stringify({
    update_id: id,
    message: {
      message_id: id,
      from: { id: from, is_bot: false, first_name: "P" },
      chat: { id: from, type: "private" },
      date: 1636628439,
      text,
    },
  });
const pressUpdate = (id: number, from: number, data: string) =>
  JSON.stringify({
    update_id: id,
    callback_query: {
      id: `cb${id}`,
      from: { id: from, is_bot: false, first_name: "P" },
      message: { message_id: 5, chat: { id: from, type: "private" }, date: 1, text: "Approval needed" },
      chat_instance: "1",
      data,
    },
  });

async function telegramGateway(): Promise<
  { gw: TestGateway; post: (body: string, secret?: string | null) => Promise<Response> } & AsyncDisposable
> {
  const home = tempDir();
  writeCredential(home.path, "telegram_webhook_secret", SECRET);
  writeCredential(home.path, "telegram_bot_token", "987654321:AAE-approvals-token");
  home.file(
    "config.toml",
    `[[plugins]]\nname = "telegram"\npath = "builtin:telegram"\nallowed_hosts = ["127.0.0.1:${api.port}"]\nconfig = { api_base = "http://127.0.0.1:${api.port}" }\n\n` +
      `[[plugins]]\nname = "web"\npath = "builtin:http-get"\nallowed_hosts = ["127.0.0.1:${web.port}"]\napproval = "untrusted"\n\n` +
      `[channels.telegram]\nsecrets = { webhook_secret = "telegram_webhook_secret", bot_token = "telegram_bot_token" }\nallow_from = ["${OWNER}", "${STRANGER}"]\nowner = "${OWNER}"\n`,
  );
  const gw = await startTestGateway({ home: home.path, streamFor: () => model });
  const deadline = Date.now() + 15_000;
  while (gw.plugins.list().filter((p) => p.state === "loaded").length < 1 && Date.now() < deadline) await Bun.sleep(20);
  const post = (body: string, secret: string | null = SECRET) =>
    fetch(`${gw.url}/webhook/telegram`, {
      method: "POST",
      headers: {
        "content-type": "application/json",
        ...(secret !== null && { "x-telegram-bot-api-secret-token": secret }),
      },
      body,
    });
  return {
    gw,
    post,
    async [Symbol.asyncDispose]() {
      await gw[Symbol.asyncDispose]();
      home[Symbol.dispose]();
    },
  };
}

async function until<T>(what: string, probe: () => T | undefined | Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await Bun.sleep(20);
  }
}

describe("Telegram owner approvals", () => {
  test("a stranger's message taints the turn; the owner approves with the inline button; forged and stranger presses are refused", async () => {
    await using t = await telegramGateway();
    sent.length = 0;
    expect((await t.post(textUpdate(1001, STRANGER, "/from-stranger"))).status).toBe(200);
    // The owner is sent the request with an inline keyboard.
    const ask = await until("the owner's request", () => sent.find((m) => m.chat_id === OWNER && m.reply_markup));
    expect(ask.text).toContain(
      "Approval needed: agent main wants to call http_get (untrusted after a message from telegram:bot:777000111)",
    );
    const [allow, deny] = ask.reply_markup.inline_keyboard[0];
    expect(allow.text).toBe("Allow");
    expect(deny.text).toBe("Deny");
    const id = /^approval:allow:(ap_[0-9a-f]+)$/.exec(allow.callback_data)![1]!;
    expect(deny.callback_data).toBe(`approval:deny:${id}`);
    expect(hits).not.toContain("/from-stranger");

    // A forged press (no secret token, or a wrong one) is refused before any plugin sees it.
    expect((await t.post(pressUpdate(1002, OWNER, allow.callback_data), null)).status).toBe(401);
    expect((await t.post(pressUpdate(1003, OWNER, allow.callback_data), "guessed")).status).toBe(401);
    // A genuine press by someone who is not the owner decides nothing.
    expect((await t.post(pressUpdate(1004, STRANGER, allow.callback_data))).status).toBe(200);
    expect(t.gw.logs.some((l) => l.includes("approval button refused: the presser is not this channel's owner"))).toBe(
      true,
    );
    expect((await t.gw.store.getApproval(id))?.state).toBe("pending");
    expect(hits).not.toContain("/from-stranger");

    // The owner's press lets it run; the stranger gets the answer, the owner a confirmation. The
    // webhook is answered with answerCallbackQuery, which Telegram runs (the button stops spinning).
    const pressed = await t.post(pressUpdate(1005, OWNER, allow.callback_data));
    expect(pressed.status).toBe(200);
    expect(await pressed.json()).toEqual({ method: "answerCallbackQuery", callback_query_id: "cb1005" });
    expect(await t.gw.store.getApproval(id)).toMatchObject({
      state: "allowed",
      decided_by: `owner:telegram:bot:${OWNER}`,
    });
    await until("the stranger's answer", () =>
      sent.find((m) => m.chat_id === STRANGER && String(m.text).startsWith("fetched: HTTP 200")),
    );
    expect(hits).toContain("/from-stranger");
    await until("the owner's confirmation", () =>
      sent.find((m) => m.chat_id === OWNER && m.text === `Allowed: http_get (${id}).`),
    );
    const history = await t.gw.store.history("main:telegram:bot:777000111", { limit: 10 });
    expect(history.find((m) => m.role === "tool")?.meta?.approvals).toEqual([
      {
        id,
        tool: "http_get",
        tool_use_id: "tu1",
        state: "allowed",
        by: `owner:telegram:bot:${OWNER}`,
        why: "untrusted after a message from telegram:bot:777000111",
      },
    ]);

    // Pressing again: nothing is decided twice; the owner is told why.
    await t.post(pressUpdate(1006, OWNER, deny.callback_data));
    await until("the owner's notice", () =>
      sent.find((m) => m.chat_id === OWNER && String(m.text).includes("is not waiting any more: it was allowed")),
    );
  });

  test("a hanging sendMessage of the decision does not hold up the press's answer; its failure is logged", async () => {
    const held = heldRequest();
    holdDecision = held;
    try {
      await using t = await telegramGateway();
      sent.length = 0;
      await t.post(textUpdate(3001, STRANGER, "/slow-telegram"));
      const ask = await until("the owner's request", () => sent.find((m) => m.chat_id === OWNER && m.reply_markup));
      const allow = ask.reply_markup.inline_keyboard[0][0].callback_data as string;
      // Answered (answerCallbackQuery) while Telegram still sits on the decision message.
      const pressed = await t.post(pressUpdate(3002, OWNER, allow));
      expect(pressed.status).toBe(200);
      expect(await pressed.json()).toEqual({ method: "answerCallbackQuery", callback_query_id: "cb3002" });
      const answer = await held.arrived;
      expect(held.abandoned).toBe(false);
      const id = allow.slice("approval:allow:".length);
      expect(sent.some((m) => m.chat_id === OWNER && m.text === `Allowed: http_get (${id}).`)).toBe(true);
      answer(
        Response.json(
          { ok: false, error_code: 403, description: "Forbidden: bot was blocked by the user" },
          { status: 403 },
        ),
      );
      await until("the warning", () =>
        t.gw.logs.find(
          (l) =>
            l.includes("approval decision not delivered to the owner") &&
            l.includes(id) &&
            l.includes("bot was blocked by the user"),
        ),
      );
      await until("the stranger's answer", () =>
        sent.find((m) => m.chat_id === STRANGER && String(m.text).startsWith("fetched: HTTP 200")),
      );
    } finally {
      holdDecision = null;
    }
  });

  test("the owner's press on Deny refuses the call; the owner's own message does not taint its turn", async () => {
    await using t = await telegramGateway();
    sent.length = 0;
    await t.post(textUpdate(2001, STRANGER, "/denied"));
    const ask = await until("the owner's request", () => sent.find((m) => m.chat_id === OWNER && m.reply_markup));
    await t.post(pressUpdate(2002, OWNER, ask.reply_markup.inline_keyboard[0][1].callback_data));
    await until("the stranger's answer", () =>
      sent.find((m) => m.chat_id === STRANGER && String(m.text).includes("denied by the operator")),
    );
    expect(hits).not.toContain("/denied");
    // The owner's own request runs without asking anyone.
    await t.post(textUpdate(2003, OWNER, "/from-owner"));
    await until("the owner's answer", () =>
      sent.find((m) => m.chat_id === OWNER && String(m.text).startsWith("fetched: HTTP 200")),
    );
    expect(hits).toContain("/from-owner");
    expect(sent.filter((m) => m.reply_markup)).toHaveLength(1);
  });
});
