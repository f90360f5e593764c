/**
 * The built-in channel plugins report what "who may talk" needs (docs/plugins.md): `group` for a
 * conversation of many people and `mentioned` when the message is addressed to the bot — read from
 * each platform's own payloads (wire-formats B1–B4).
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { grant, pluginPath, readWasm, startTestHost, type TestHost } from "../helpers/plugins.ts";

let t: TestHost;
beforeAll(async () => {
  t = startTestHost();
  for (const name of ["telegram", "slack", "discord", "whatsapp"])
    await t.host.load(grant(name), await readWasm(pluginPath(name)));
  await t.host.load(
    grant("telegram_named", { config: { bot_username: "@Exo_Bot" } }),
    await readWasm(pluginPath("telegram")),
  );
});
afterAll(() => t[Symbol.asyncDispose]());

type Parsed = { messages: Record<string, unknown>[] };
const parse = async (plugin: string, body: unknown) =>
  (
    JSON.parse(
      await t.host.callRaw(
        plugin,
        "parse_incoming",
        JSON.stringify({ headers: {}, query: {}, body: typeof body === "string" ? body : JSON.stringify(body) }),
      ),
    ) as Parsed
  ).messages;
const flags = (m: Record<string, unknown> | undefined) => ({
  group: m?.group ?? false,
  mentioned: m?.mentioned ?? false,
});

const fixture = (name: string) =>
  JSON.parse(readFileSync(join(import.meta.dir, `../fixtures/webhooks/${name}`), "utf8")) as Record<string, any>;

// Telegram (wire-formats B1.2): `telegram_named` has bot_username = "@Exo_Bot".
const tgGroup = { id: -100123, type: "supergroup" };
const tg = (chat: { id: number; type: string }, text: string, extra: Record<string, unknown> = {}) => ({
  update_id: 1,
  message: { message_id: 7, from: { id: 5, is_bot: false, first_name: "A" }, chat, date: 1, text, ...extra },
});
/** A group message whose text has one entity (a mention, a command) at `name`. */
const tgAt = (text: string, name: string, type = "mention") =>
  tg(tgGroup, text, { entities: [{ offset: text.indexOf(name), length: name.length, type }] });
const tgBot = (username: string) => ({ id: 9, is_bot: true, first_name: "B", username });
const tgReplyTo = (from: Record<string, unknown>, text = "sure") =>
  tg(tgGroup, text, { reply_to_message: { message_id: 6, from, chat: tgGroup, date: 1, text: "?" } });

// Slack (B4): the fixture event is an im; the others are that event changed.
const EVENT = fixture("slack_event_body.json");
const slack = (event: Record<string, unknown>) => ({
  ...EVENT,
  authorizations: [{ team_id: "T123ABC456", user_id: "UBOT", is_bot: true, is_enterprise_install: false }],
  event: { ...EVENT.event, ...event },
});
const inChannel = { channel: "C1", channel_type: "channel" };

// Discord (B2): the fixture slash command is in a guild; without guild_id it is a DM (context 1) or a group DM (2).
const CMD = fixture("discord_cmd_body.json");
const { guild_id: _guild, member: cmdMember, ...cmdDm } = CMD;

// WhatsApp (B3): the fixture is a direct message; `group_id` makes it a group's.
const WA = fixture("wa_body.json");
const wa = (extra: Record<string, unknown>) => {
  const body = structuredClone(WA);
  Object.assign(body.entry[0].changes[0].value.messages[0], extra);
  return body;
};

type Flags = { group?: boolean; mentioned?: boolean };
/** plugin, what the message is, the payload, what the plugin must report (only the flags named). */
const CASES: [string, string, unknown, Flags][] = [
  ["telegram", "a private chat", tg({ id: 5, type: "private" }, "hi"), { group: false, mentioned: false }],
  ["telegram", "a group message", tg(tgGroup, "hi all"), { group: true, mentioned: false }],
  // Every Telegram bot's username ends in "bot": without bot_username, any bot's mention counts.
  [
    "telegram",
    "a bot's @mention after non-ASCII text",
    tg(tgGroup, "héllo 👋 @exo_bot ok", { entities: [{ offset: 9, length: 8, type: "mention" }] }),
    { group: true, mentioned: true },
  ],
  ["telegram", "a person's @mention", tgAt("@alice hi", "@alice"), { mentioned: false }],
  ["telegram", "a command", tgAt("/ask", "/ask", "bot_command"), { mentioned: true }],
  ["telegram", "a reply to a bot", tgReplyTo(tgBot("exo_bot")), { mentioned: true }],
  ["telegram", "a reply to a person", tgReplyTo({ id: 8, is_bot: false, first_name: "C" }), { mentioned: false }],
  // With bot_username, only this bot's mentions, commands and messages count.
  ["telegram_named", "this bot's @mention", tgAt("hey @exo_bot", "@exo_bot"), { mentioned: true }],
  ["telegram_named", "another bot's @mention", tgAt("hey @other_bot", "@other_bot"), { mentioned: false }],
  [
    "telegram_named",
    "a command for another bot",
    tgAt("/ask@other_bot x", "/ask@other_bot", "bot_command"),
    { mentioned: false },
  ],
  [
    "telegram_named",
    "a command for this bot, in other case",
    tgAt("/ask@EXO_BOT x", "/ask@EXO_BOT", "bot_command"),
    { mentioned: true },
  ],
  ["telegram_named", "a reply to another bot", tgReplyTo(tgBot("other_bot"), "ok"), { mentioned: false }],
  ["telegram_named", "a reply to this bot", tgReplyTo(tgBot("exo_bot"), "ok"), { mentioned: true }],
  // Slack: mentioned only as app_mention or a reply in the bot's thread.
  ["slack", "an im", EVENT, { group: false, mentioned: false }],
  [
    "slack",
    "a channel message naming the bot",
    slack({ ...inChannel, text: "<@UBOT> hi" }),
    { group: true, mentioned: false },
  ],
  [
    "slack",
    "an app_mention",
    slack({ type: "app_mention", channel: "C1", channel_type: undefined, text: "<@UBOT> hi" }),
    { group: true, mentioned: true },
  ],
  [
    "slack",
    "a reply in the bot's thread",
    slack({ ...inChannel, thread_ts: "1.0", parent_user_id: "UBOT", text: "and then?" }),
    { group: true, mentioned: true },
  ],
  [
    "slack",
    "a reply in someone else's thread",
    slack({ ...inChannel, thread_ts: "1.0", parent_user_id: "U777", text: "and then?" }),
    { mentioned: false },
  ],
  // Discord: a command is addressed to the app; in a guild or a group DM it is a group message, in a bot DM not.
  ["discord", "a command in a guild", CMD, { group: true, mentioned: true }],
  [
    "discord",
    "a command in a bot DM",
    { ...cmdDm, id: "1", user: cmdMember.user, context: 1 },
    { group: false, mentioned: false },
  ],
  [
    "discord",
    "a command in a group DM",
    { ...cmdDm, id: "2", user: cmdMember.user, context: 2 },
    { group: true, mentioned: true },
  ],
  // WhatsApp: mentioned when a group message replies to the business or names its number.
  ["whatsapp", "a direct message", WA, { group: false, mentioned: false }],
  [
    "whatsapp",
    "a group reply to the business",
    wa({ group_id: "GRP1", context: { from: "15550783881", id: "wamid.X" } }),
    { mentioned: true },
  ],
  [
    "whatsapp",
    "a group message naming its number",
    wa({ group_id: "GRP1", text: { body: "hey @15550783881" } }),
    { mentioned: true },
  ],
];

test.each(CASES)("%s: %s", async (plugin, _what, body, want) => {
  const messages = await parse(plugin, body);
  expect(messages).toHaveLength(1);
  expect(flags(messages[0])).toMatchObject(want);
});

test("discord: a guild's command carries its guild", async () => {
  expect((await parse("discord", CMD))[0]?.guild).toBe(CMD.guild_id);
});

test("whatsapp: a group message is answered in the group, from its sender, with no mention unless there is one", async () => {
  const inGroup = (await parse("whatsapp", wa({ group_id: "GRP1" })))[0];
  expect(inGroup).toMatchObject({ peer: "GRP1", sender: "16505551234", group: true });
  expect(inGroup?.mentioned).toBeUndefined();
  const out = JSON.parse(
    await t.host.callRaw(
      "whatsapp",
      "format_outgoing",
      JSON.stringify({ to: { account: "106540352242922", peer: "GRP1" }, text: "hi all" }),
    ),
  ) as { requests: { body: string }[] };
  expect(JSON.parse(out.requests[0]!.body)).toMatchObject({ recipient_type: "group", to: "GRP1" });
});
