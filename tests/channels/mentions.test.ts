/**
 * The built-in channel plugins report what "who may talk" needs (docs/plugins.md): `group` for a
 * conversation of many people and `mentioned` when the message is addressed to the bot — read from
 * each platform's own payloads (wire-formats B1–B4).
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
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

describe("telegram", () => {
  const msg = (chat: { id: number; type: string }, text: string, extra: Record<string, unknown> = {}) => ({
    update_id: 1,
    message: { message_id: 7, from: { id: 5, is_bot: false, first_name: "A" }, chat, date: 1, text, ...extra },
  });
  const group = { id: -100123, type: "supergroup" };
  const bot = (username: string) => ({ id: 9, is_bot: true, first_name: "B", username });

  test("a private chat is no group; a group message is, and is mentioned only when addressed to a bot", async () => {
    expect(flags((await parse("telegram", msg({ id: 5, type: "private" }, "hi")))[0])).toEqual({
      group: false,
      mentioned: false,
    });
    expect(flags((await parse("telegram", msg(group, "hi all")))[0])).toEqual({ group: true, mentioned: false });
    // Every Telegram bot's username ends in "bot": without bot_username, any bot's mention counts.
    const mention = msg(group, "héllo 👋 @exo_bot ok", { entities: [{ offset: 9, length: 8, type: "mention" }] });
    expect(flags((await parse("telegram", mention))[0])).toEqual({ group: true, mentioned: true });
    expect(
      flags(
        (
          await parse("telegram", msg(group, "@alice hi", { entities: [{ offset: 0, length: 6, type: "mention" }] }))
        )[0],
      ).mentioned,
    ).toBe(false);
    expect(
      flags(
        (await parse("telegram", msg(group, "/ask", { entities: [{ offset: 0, length: 4, type: "bot_command" }] })))[0],
      ).mentioned,
    ).toBe(true);
    expect(
      flags(
        (
          await parse(
            "telegram",
            msg(group, "sure", {
              reply_to_message: { message_id: 6, from: bot("exo_bot"), chat: group, date: 1, text: "?" },
            }),
          )
        )[0],
      ).mentioned,
    ).toBe(true);
    expect(
      flags(
        (
          await parse(
            "telegram",
            msg(group, "sure", {
              reply_to_message: {
                message_id: 6,
                from: { id: 8, is_bot: false, first_name: "C" },
                chat: group,
                date: 1,
                text: "?",
              },
            }),
          )
        )[0],
      ).mentioned,
    ).toBe(false);
  });

  test("with bot_username, only this bot's mentions, commands and messages count", async () => {
    const at = (text: string, name: string, type = "mention") =>
      msg(group, text, { entities: [{ offset: text.indexOf(name), length: name.length, type }] });
    expect(flags((await parse("telegram_named", at("hey @exo_bot", "@exo_bot")))[0]).mentioned).toBe(true);
    expect(flags((await parse("telegram_named", at("hey @other_bot", "@other_bot")))[0]).mentioned).toBe(false);
    expect(
      flags((await parse("telegram_named", at("/ask@other_bot x", "/ask@other_bot", "bot_command")))[0]).mentioned,
    ).toBe(false);
    expect(
      flags((await parse("telegram_named", at("/ask@EXO_BOT x", "/ask@EXO_BOT", "bot_command")))[0]).mentioned,
    ).toBe(true);
    expect(
      flags(
        (
          await parse(
            "telegram_named",
            msg(group, "ok", {
              reply_to_message: { message_id: 6, from: bot("other_bot"), chat: group, date: 1, text: "?" },
            }),
          )
        )[0],
      ).mentioned,
    ).toBe(false);
    expect(
      flags(
        (
          await parse(
            "telegram_named",
            msg(group, "ok", {
              reply_to_message: { message_id: 6, from: bot("exo_bot"), chat: group, date: 1, text: "?" },
            }),
          )
        )[0],
      ).mentioned,
    ).toBe(true);
  });
});

describe("slack", () => {
  const EVENT = JSON.parse(
    readFileSync(join(import.meta.dir, "../fixtures/webhooks/slack_event_body.json"), "utf8"),
  ) as Record<string, any>;
  const withEvent = (
    event: Record<string, unknown>,
    authorizations = [{ team_id: "T123ABC456", user_id: "UBOT", is_bot: true, is_enterprise_install: false }],
  ) => ({
    ...EVENT,
    authorizations,
    event: { ...EVENT.event, ...event },
  });

  test("an im is no group; a channel message is mentioned only as app_mention or a reply in the bot's thread", async () => {
    expect(flags((await parse("slack", EVENT))[0])).toEqual({ group: false, mentioned: false });
    expect(
      flags((await parse("slack", withEvent({ channel: "C1", channel_type: "channel", text: "<@UBOT> hi" })))[0]),
    ).toEqual({ group: true, mentioned: false });
    const mention = withEvent({ type: "app_mention", channel: "C1", channel_type: undefined, text: "<@UBOT> hi" });
    expect(flags((await parse("slack", mention))[0])).toEqual({ group: true, mentioned: true });
    const inThread = withEvent({
      channel: "C1",
      channel_type: "channel",
      thread_ts: "1.0",
      parent_user_id: "UBOT",
      text: "and then?",
    });
    expect(flags((await parse("slack", inThread))[0])).toEqual({ group: true, mentioned: true });
    const othersThread = withEvent({
      channel: "C1",
      channel_type: "channel",
      thread_ts: "1.0",
      parent_user_id: "U777",
      text: "and then?",
    });
    expect(flags((await parse("slack", othersThread))[0]).mentioned).toBe(false);
  });
});

describe("discord", () => {
  const CMD = JSON.parse(
    readFileSync(join(import.meta.dir, "../fixtures/webhooks/discord_cmd_body.json"), "utf8"),
  ) as Record<string, any>;
  test("a command is addressed to the app; in a guild or a group DM it is a group message, in a bot DM not", async () => {
    const inGuild = (await parse("discord", CMD))[0];
    expect(flags(inGuild)).toEqual({ group: true, mentioned: true });
    expect(inGuild?.guild).toBe(CMD.guild_id);
    const { guild_id: _g, member, ...dm } = CMD;
    expect(flags((await parse("discord", { ...dm, id: "1", user: member.user, context: 1 }))[0])).toEqual({
      group: false,
      mentioned: false,
    });
    expect(flags((await parse("discord", { ...dm, id: "2", user: member.user, context: 2 }))[0])).toEqual({
      group: true,
      mentioned: true,
    });
  });
});

describe("whatsapp", () => {
  const WA = JSON.parse(readFileSync(join(import.meta.dir, "../fixtures/webhooks/wa_body.json"), "utf8")) as Record<
    string,
    any
  >;
  const withMessage = (extra: Record<string, unknown>) => {
    const body = structuredClone(WA);
    Object.assign(body.entry[0].changes[0].value.messages[0], extra);
    return body;
  };
  test("a direct message is no group; a group message is answered in the group, mentioned when it replies to the business or names its number", async () => {
    expect(flags((await parse("whatsapp", WA))[0])).toEqual({ group: false, mentioned: false });
    const inGroup = (await parse("whatsapp", withMessage({ group_id: "GRP1" })))[0];
    expect(inGroup).toMatchObject({ peer: "GRP1", sender: "16505551234", group: true });
    expect(inGroup?.mentioned).toBeUndefined();
    expect(
      flags(
        (
          await parse("whatsapp", withMessage({ group_id: "GRP1", context: { from: "15550783881", id: "wamid.X" } }))
        )[0],
      ).mentioned,
    ).toBe(true);
    expect(
      flags((await parse("whatsapp", withMessage({ group_id: "GRP1", text: { body: "hey @15550783881" } })))[0])
        .mentioned,
    ).toBe(true);
    const out = JSON.parse(
      await t.host.callRaw(
        "whatsapp",
        "format_outgoing",
        JSON.stringify({ to: { account: "106540352242922", peer: "GRP1" }, text: "hi all" }),
      ),
    ) as { requests: { body: string }[] };
    expect(JSON.parse(out.requests[0]!.body)).toMatchObject({ recipient_type: "group", to: "GRP1" });
  });
});
