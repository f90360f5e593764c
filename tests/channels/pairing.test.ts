/**
 * Who may talk (SPEC §13), end to end: a real gateway, the built-in telegram plugin, a loopback
 * stand-in for api.telegram.org answering in the Bot API's shape (wire-formats B1), and the real CLI.
 */
import { expect, test } from "bun:test";
import { join } from "node:path";
import type { StreamFn } from "../../src/agent/loop.ts";
import { openSqliteStore } from "../../src/store/index.ts";
import { runExoclaw } from "../helpers/cli.ts";
import { startTestGateway, type TestGateway } from "../helpers/gateway.ts";
import type { TempDir } from "../helpers/temp.ts";
import { fakeBotApi, postUpdate, refusedCount, TELEGRAM_BOT as BOT, telegramHome } from "../helpers/telegram.ts";

const ADA = 1561073042;
const GROUP = -1001234567890;

let updateId = 679892927;
/** A Telegram Update with a text message (wire-formats B1.2); `chat` defaults to Ada's private chat. */
function update(
  text: string,
  over: { from?: number; chat?: { id: number; type: string }; entities?: unknown[]; reply_to_message?: unknown } = {},
): string {
  const from = over.from ?? ADA;
  const chat = over.chat ?? { id: from, type: "private" };
  return JSON.stringify({
    update_id: ++updateId,
    message: {
      message_id: updateId,
      from: { id: from, is_bot: false, first_name: `user${from}` },
      chat: { ...chat, ...(chat.type === "private" ? { first_name: `user${from}` } : { title: "Team" }) },
      date: 1636628439,
      text,
      ...(over.entities && { entities: over.entities }),
      ...(over.reply_to_message !== undefined && { reply_to_message: over.reply_to_message }),
    },
  });
}

async function until(cond: () => boolean | Promise<boolean>, what: string, ms = 15_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await Bun.sleep(10);
  }
}

interface Harness {
  home: TempDir;
  /** Every sendMessage body the fake Bot API received. */
  sent: { chat_id: number; text: string }[];
  /** Every user message the model was asked about. */
  asked: string[];
  stream: StreamFn;
  start(): Promise<TestGateway>;
  [Symbol.asyncDispose](): Promise<void>;
}

/** A state directory with a telegram channel configured with `access` (TOML lines), and a fake Bot API. */
function harness(access = "", pluginConfig = ""): Harness {
  const asked: string[] = [];
  const api = fakeBotApi();
  const home = telegramHome(api, access, pluginConfig);
  const stream: StreamFn = async function* (req) {
    const text = (req.messages.at(-1)!.parts[0] as { text: string }).text;
    asked.push(text);
    yield { type: "text", text: `answer to: ${text}` };
    yield { type: "done", stop_reason: "end_turn" };
  };
  return {
    home,
    sent: api.sent,
    asked,
    stream,
    start: () => startTestGateway({ home: home.path, streamFor: () => stream }),
    async [Symbol.asyncDispose]() {
      await api[Symbol.asyncDispose]();
      home[Symbol.dispose]();
    },
  };
}

/** Posts an Update and waits until the gateway has handled it (answered, or refused and done). */
async function post(gw: TestGateway, body: string): Promise<void> {
  const r = await postUpdate(gw, body);
  expect(r.status).toBe(200);
  await until(async () => (await gw.store.pendingInbound(10)).length === 0, "the message to be handled");
}

const codeIn = (text: string) => /pairing code: ([A-Z2-9]{8})/.exec(text)?.[1] ?? null;
const cli = (gw: { port: number; home: string }, ...args: string[]) =>
  runExoclaw([...args, "--port", String(gw.port)], { EXOCLAW_HOME: gw.home });

test("pairing: a stranger gets one pairing code and reaches no model; approved they are answered, across a restart; revoked they are refused again", async () => {
  await using h = harness();
  let code: string;
  {
    await using gw = await h.start();
    await post(gw, update("hello?"));
    expect(h.sent).toHaveLength(1);
    expect(h.sent[0]!.chat_id).toBe(ADA);
    code = codeIn(h.sent[0]!.text)!;
    expect(code).not.toBeNull();
    // Nothing reached a model: no turn, no session, no usage.
    expect(h.asked).toEqual([]);
    expect(await gw.store.getSession(`main:telegram:bot:${ADA}`)).toBeNull();
    expect((await gw.store.sumUsage({})).calls).toBe(0);
    // Writing again within minutes sends no second code.
    await post(gw, update("anyone there?"));
    expect(h.sent).toHaveLength(1);
    expect(await refusedCount(gw, "stranger")).toBe(2);

    const listed = await cli(gw, "pairing", "list");
    expect(listed.code).toBe(0);
    expect(listed.stdout).toContain(code);
    expect(listed.stdout).toContain(`telegram:bot:${ADA}`);
    // The operator types it as they read it.
    const approved = await cli(gw, "pairing", "approve", code.toLowerCase().slice(0, 4) + "-" + code.slice(4));
    expect(approved).toMatchObject({
      code: 0,
      stdout: `approved telegram:bot:${ADA}: their next message is answered\n`,
    });
    const again = await cli(gw, "pairing", "approve", code);
    expect(again.code).toBe(1);
    expect(again.stderr).toContain(`no pending pairing code ${code}`);

    await post(gw, update("now?"));
    expect(h.sent.at(-1)).toEqual({ chat_id: ADA, text: "answer to: now?" });
    expect(h.asked).toEqual(["now?"]);
  }
  // The approval is in the store: a new gateway on the same state directory answers Ada.
  await using gw = await h.start();
  await post(gw, update("still there?"));
  expect(h.sent.at(-1)).toEqual({ chat_id: ADA, text: "answer to: still there?" });
  const json = JSON.parse((await cli(gw, "pairing", "list", "--json")).stdout) as {
    pairings: { person: string; status: string }[];
  };
  expect(json.pairings).toMatchObject([{ person: `telegram:bot:${ADA}`, status: "approved" }]);

  const revoked = await cli(gw, "pairing", "revoke", `telegram:bot:${ADA}`);
  expect(revoked.code).toBe(0);
  const before = h.asked.length;
  await post(gw, update("and now?"));
  expect(h.asked).toHaveLength(before);
  const fresh = codeIn(h.sent.at(-1)!.text);
  expect(fresh).not.toBeNull();
  expect(fresh).not.toBe(code);
  const unknown = await cli(gw, "pairing", "revoke", "telegram:bot:42");
  expect(unknown.code).toBe(1);
  expect(unknown.stderr).toContain("no pairing for telegram:bot:42");
});

test("pairing without a running gateway: `pairing approve` writes the store, and the next gateway answers", async () => {
  await using h = harness();
  let port: number;
  {
    await using gw = await h.start();
    port = gw.port;
    await post(gw, update("let me in"));
  }
  const code = codeIn(h.sent[0]!.text)!;
  // Nobody listens on that port any more: the CLI goes to the store itself.
  const approved = await runExoclaw(["pairing", "approve", code, "--url", `ws://127.0.0.1:${port}/ws`], {
    EXOCLAW_HOME: h.home.path,
  });
  expect(approved).toMatchObject({ code: 0, stdout: `approved telegram:bot:${ADA}: their next message is answered\n` });
  await using gw = await h.start();
  await post(gw, update("hi"));
  expect(h.sent.at(-1)).toEqual({ chat_id: ADA, text: "answer to: hi" });
});

test("groups: answered only in a listed group and only when the bot is mentioned or replied to", async () => {
  await using h = harness(`groups = ["${GROUP}"]\n`, `, bot_username = "exo_bot"`);
  await using gw = await h.start();
  const group = { id: GROUP, type: "supergroup" };
  const mention = (text: string, name: string) => ({
    chat: group,
    entities: [{ offset: text.indexOf(name), length: name.length, type: "mention" }],
  });
  await post(gw, update("talking among ourselves", { chat: group, from: 111 }));
  await post(
    gw,
    update("@exo_bot help", {
      chat: { id: -100999, type: "group" },
      from: 111,
      entities: [{ offset: 0, length: 8, type: "mention" }],
    }),
  );
  await post(gw, update("ask @other_bot instead", { ...mention("ask @other_bot instead", "@other_bot"), from: 111 }));
  expect(h.sent).toEqual([]);
  expect(h.asked).toEqual([]);
  expect(await refusedCount(gw, "not_mentioned")).toBe(2);
  expect(await refusedCount(gw, "group_not_listed")).toBe(1);

  // A mention of this bot, by someone nobody paired: a listed group is open to its members.
  await post(gw, update("hey @exo_bot what's up", { ...mention("hey @exo_bot what's up", "@exo_bot"), from: 111 }));
  expect(h.sent).toEqual([{ chat_id: GROUP, text: "answer to: hey @exo_bot what's up" }]);
  // A reply to one of the bot's messages.
  await post(
    gw,
    update("thanks!", {
      chat: group,
      from: 222,
      reply_to_message: { message_id: 101, from: BOT, chat: group, date: 1, text: "answer" },
    }),
  );
  expect(h.sent.at(-1)).toEqual({ chat_id: GROUP, text: "answer to: thanks!" });
  expect(h.asked).toEqual(["hey @exo_bot what's up", "thanks!"]);
});

test("rate_per_minute: beyond it a person's messages reach no model; one 'slow down' a minute, and every message is handled", async () => {
  await using h = harness(`allow_from = ["${ADA}"]\nrate_per_minute = 2\n`);
  await using gw = await h.start();
  for (const text of ["one", "two", "three", "four"]) await post(gw, update(text));
  expect(h.asked).toEqual(["one", "two"]);
  expect(h.sent.map((s) => s.text)).toEqual([
    "answer to: one",
    "answer to: two",
    expect.stringContaining("2 a minute"),
  ]);
  expect(await refusedCount(gw, "rate_limited")).toBe(2);
  expect(await gw.store.pendingInbound(10)).toEqual([]);
});

test("allowlist: only allow_from and people approved before are answered; others are ignored, silently, and counted", async () => {
  await using h = harness(`dm_policy = "allowlist"\nallow_from = ["${ADA}"]\n`);
  await using gw = await h.start();
  const carol = 333;
  await gw.store.savePairing({
    person: `telegram:bot:${carol}`,
    channel: "telegram",
    status: "approved",
    code: null,
    created_at: 1,
    expires_at: null,
    notified_at: null,
    approved_at: 2,
  });
  await post(gw, update("from Ada"));
  await post(gw, update("from a stranger", { from: 222 }));
  await post(gw, update("from Carol", { from: carol }));
  expect(h.asked).toEqual(["from Ada", "from Carol"]);
  expect(h.sent).toEqual([
    { chat_id: ADA, text: "answer to: from Ada" },
    { chat_id: carol, text: "answer to: from Carol" },
  ]);
  expect(await refusedCount(gw, "not_allowed")).toBe(1);
  // No code was handed out.
  expect(await gw.store.listPairings({ status: "pending" })).toEqual([]);
});

test('dm_policy = "open" answers strangers and `status` flags it as an exposure; SIGHUP-style reload closes it again', async () => {
  await using h = harness(`dm_policy = "open"\n`);
  await using gw = await h.start();
  await post(gw, update("hi from anyone", { from: 444 }));
  expect(h.sent).toEqual([{ chat_id: 444, text: "answer to: hi from anyone" }]);
  const status = await cli(gw, "status");
  expect(status.code).toBe(0);
  expect(status.stdout).toContain(`EXPOSED      channel telegram: dm_policy = "open"`);
  expect(status.stdout).toContain("who talks    telegram: open");

  h.home.file("config.toml", (await Bun.file(`${h.home.path}/config.toml`).text()).replace('dm_policy = "open"\n', ""));
  gw.app.reload();
  await post(gw, update("hi again", { from: 444 }));
  expect(codeIn(h.sent.at(-1)!.text)).not.toBeNull();
  expect(h.asked).toEqual(["hi from anyone"]);
  const json = JSON.parse((await cli(gw, "status", "--json")).stdout) as {
    exposures: string[];
    channels: Record<string, { dm_policy: string }>;
  };
  expect(json.exposures).toEqual([]);
  expect(json.channels.telegram!.dm_policy).toBe("pairing");
});

test("a stranger's message left pending by a crash before it was judged is refused at the next start: no turn, no code", async () => {
  await using h = harness();
  // What a crash between the store and the access check leaves behind: an accepted, pending message.
  const store = openSqliteStore(join(h.home.path, "exoclaw.db"));
  const m = { id: "679892000", account: "bot", peer: String(ADA), sender: String(ADA), text: "sneak in" };
  await store.acceptInbound({
    id: `telegram:${m.id}`,
    channel: "telegram",
    payload: JSON.stringify(m),
    received_at: Date.now(),
  });
  await store.close();
  await using gw = await h.start();
  await until(async () => (await gw.store.pendingInbound(10)).length === 0, "the retry pass");
  expect(h.asked).toEqual([]);
  expect(h.sent).toEqual([]);
  expect(await refusedCount(gw, "stranger")).toBe(1);
});

test('per-person budget: a person over person_daily_tokens gets a short notice — never "(no reply)" — and nothing reaches the model', async () => {
  await using h = harness(`allow_from = ["${ADA}"]\n\n[budgets]\nperson_daily_tokens = 10\n`);
  await using gw = await h.start();
  await post(gw, update("what does this cost?"));
  expect(h.asked).toEqual([]);
  expect(h.sent).toHaveLength(1);
  expect(h.sent[0]).toEqual({ chat_id: ADA, text: expect.stringContaining("usage limit") });
  expect(h.sent[0]!.text).not.toContain("(no reply)");
  expect((await gw.store.sumUsage({})).calls).toBe(0);
});

test("bot_username set on the channel: only this bot's mentions count in a group, and a reload changes it", async () => {
  await using h = harness(`groups = ["${GROUP}"]\nbot_username = "@Exo_Bot"\n`);
  await using gw = await h.start();
  const mention = (text: string, name: string) => ({
    chat: { id: GROUP, type: "supergroup" },
    from: 111,
    entities: [{ offset: text.indexOf(name), length: name.length, type: "mention" }],
  });
  await post(gw, update("ask @other_bot", mention("ask @other_bot", "@other_bot")));
  await post(gw, update("hey @exo_bot", mention("hey @exo_bot", "@exo_bot")));
  expect(h.asked).toEqual(["hey @exo_bot"]);

  h.home.file(
    "config.toml",
    (await Bun.file(`${h.home.path}/config.toml`).text()).replace(
      'bot_username = "@Exo_Bot"',
      'bot_username = "other_bot"',
    ),
  );
  gw.app.reload();
  await post(gw, update("hey @exo_bot, again", mention("hey @exo_bot, again", "@exo_bot")));
  await post(gw, update("now @other_bot", mention("now @other_bot", "@other_bot")));
  expect(h.asked).toEqual(["hey @exo_bot", "now @other_bot"]);
});

test("bot_username that is not a username is a config error naming the key", async () => {
  await using h = harness(`bot_username = "exo bot!"\n`);
  await expect(h.start()).rejects.toThrow(/bot_username/);
});
