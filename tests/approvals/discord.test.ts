/**
 * Approvals for the owner on Discord (issue 16): the built-in discord plugin (.wasm), a loopback
 * stand-in for discord.com that speaks its REST wire format (bot-token auth, `POST /users/@me/channels`
 * answering the DM channel, `POST /channels/{id}/messages`, and its error bodies), and interactions
 * signed with a real Ed25519 key (RFC 8032 TEST 1, as tests/channels/discord.test.ts). A WebSocket
 * turn's call of an `approval = "always"` tool waits; the owner is sent a DM with an action row of
 * buttons; an unsigned or wrongly signed press is refused with 401, a stranger's signed press decides
 * nothing and is told so (ephemeral), the owner's press decides (UPDATE_MESSAGE, then the decision in
 * the DM, which the interaction's answer does not wait for: a hanging DM send still lets the press be
 * answered, and its failure is logged). Without a bot token, or when Discord refuses the DM, the request is only logged and stays
 * answerable on every other surface.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { generateKeyPairSync, type KeyObject } from "node:crypto";
import type { StreamFn } from "../../src/agent/loop.ts";
import { writeCredential } from "../../src/config/index.ts";
import { startTestGateway, type TestGateway } from "../helpers/gateway.ts";
import { type HeldRequest, heldRequest } from "../helpers/held.ts";
import { DISCORD_KEY as KEY, DISCORD_PUBLIC_KEY as PUBLIC_KEY, discordHeaders } from "../helpers/signing.ts";
import { tempDir } from "../helpers/temp.ts";
import { openSocket } from "../helpers/ws.ts";

type Msg = Record<string, any>;
const APP = "1186000000000000000";
const OWNER = "53908232506183680";
const STRANGER = "80351110224678912";
const DM = "1187000000000000001";
const BOT_TOKEN = "MTE4NjAwMDAwMDAwMDAwMDAwMA.GxYzAb.approvals-bot-token-0123456789";
const OTHER_KEY = generateKeyPairSync("ed25519").privateKey;

const signedHeaders = (body: string, key: KeyObject = KEY) => ({
  "content-type": "application/json",
  ...discordHeaders(body, key),
});

let seq = 0;
/** A MESSAGE_COMPONENT interaction as Discord sends it: in the owner's DM (`user`), or in a guild (`member.user`). */
function press(user: string, customId: string, content: string, inGuild = false): string {
  const who = { id: user, username: "someone", discriminator: "0", global_name: "Someone", avatar: null };
  return JSON.stringify({
    type: 3,
    id: `12000000000000000${++seq}`,
    application_id: APP,
    token: `aW50ZXJhY3Rpb246press-token-${seq}`,
    version: 1,
    ...(inGuild
      ? {
          guild_id: "290926798626357999",
          channel_id: "645027906669510667",
          member: { user: who, roles: [], permissions: "2147483647" },
          context: 0,
        }
      : { channel_id: DM, user: who, context: 1 }),
    message: {
      id: "1188000000000000001",
      channel_id: DM,
      type: 0,
      content,
      components: [],
      author: { id: APP, username: "exoclaw", bot: true },
    },
    data: { custom_id: customId, component_type: 2 },
  });
}

/** The fake discord.com: the calls it got, and switches for the errors it answers. */
const calls: { method: string; path: string; auth: string | null; body: Msg }[] = [];
let closedDms = false;
/** Set by a test: the decision DM (`Allowed: …` / `Denied: …`) is held until the test answers it, as a slow Discord would. */
let holdDecision: HeldRequest | null = null;
let api: ReturnType<typeof Bun.serve>;
beforeAll(() => {
  api = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    async fetch(req) {
      const path = new URL(req.url).pathname;
      const body = (await req.json().catch(() => ({}))) as Msg;
      calls.push({ method: req.method, path, auth: req.headers.get("authorization"), body });
      if (req.headers.get("authorization") !== `Bot ${BOT_TOKEN}`)
        return Response.json({ message: "401: Unauthorized", code: 0 }, { status: 401 });
      if (req.method === "POST" && path === "/api/v10/users/@me/channels") {
        if (!/^\d+$/.test(String(body.recipient_id)))
          return Response.json(
            {
              message: "Invalid Form Body",
              code: 50035,
              errors: {
                recipient_id: { _errors: [{ code: "NUMBER_TYPE_COERCE", message: "Value is not snowflake." }] },
              },
            },
            { status: 400 },
          );
        return Response.json({
          id: DM,
          type: 1,
          last_message_id: null,
          flags: 0,
          recipients: [
            { id: body.recipient_id, username: "owner", discriminator: "0", global_name: "Owner", avatar: null },
          ],
        });
      }
      const channel = /^\/api\/v10\/channels\/([^/]+)\/messages$/.exec(path)?.[1];
      if (req.method === "POST" && channel !== undefined) {
        if (channel !== DM) return Response.json({ message: "Unknown Channel", code: 10003 }, { status: 404 });
        if (closedDms)
          return Response.json({ message: "Cannot send messages to this user", code: 50007 }, { status: 403 });
        if (holdDecision && /^(Allowed|Denied): /.test(String(body.content))) return holdDecision.hold(req);
        return Response.json({
          id: `11890000000000000${calls.length}`,
          channel_id: DM,
          type: 0,
          content: body.content,
          components: body.components ?? [],
          author: { id: APP, username: "exoclaw", bot: true },
        });
      }
      return Response.json({ message: "404: Not Found", code: 0 }, { status: 404 });
    },
  });
});
afterAll(() => api.stop(true));

const model: StreamFn = async function* (req) {
  const last = req.messages.at(-1)!;
  if (last.role === "tool")
    yield { type: "text", text: `echo said: ${(last.parts[0] as { content: string }).content}` };
  else yield { type: "tool_call", id: "tu1", name: "echo", input: { text: "@everyone ünïcode" } };
  yield { type: "done", stop_reason: last.role === "tool" ? "end_turn" : "tool_use" };
};

async function discordGateway(
  withToken = true,
): Promise<
  { gw: TestGateway; post: (body: string, headers: Record<string, string>) => Promise<Response> } & AsyncDisposable
> {
  const home = tempDir();
  writeCredential(home.path, "discord_public_key", PUBLIC_KEY);
  if (withToken) writeCredential(home.path, "discord_bot_token", BOT_TOKEN);
  home.file(
    "config.toml",
    `[[plugins]]\nname = "discord"\npath = "builtin:discord"\nallowed_hosts = ["127.0.0.1:${api.port}"]\nconfig = { api_base = "http://127.0.0.1:${api.port}", application_id = "${APP}" }\n\n` +
      `[[plugins]]\nname = "echo"\npath = "builtin:echo"\napproval = "always"\n\n` +
      `[channels.discord]\nsecrets = { public_key = "discord_public_key"${withToken ? `, bot_token = "discord_bot_token"` : ""} }\nowner = "${OWNER}"\n`,
  );
  const gw = await startTestGateway({ home: home.path, streamFor: () => model });
  await until("the plugins", () =>
    gw.plugins.list().filter((p) => p.state === "loaded").length >= 2 ? true : undefined,
  );
  return {
    gw,
    post: (body, headers) => fetch(`${gw.url}/webhook/discord`, { method: "POST", headers, body }),
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

const posted = () => calls.filter((c) => c.path === `/api/v10/channels/${DM}/messages`);

/** Waits for the owner's DM and presses its Allow or Deny button as the owner: the approval's id and the answer. */
async function ownerPresses(
  t: { post: (body: string, headers: Record<string, string>) => Promise<Response> },
  which: "allow" | "deny",
): Promise<{ id: string; pressed: Response }> {
  const ask = await until("the owner's DM", () => posted().find((c) => c.body.components));
  const data = ask.body.components[0].components[which === "allow" ? 0 : 1].custom_id as string;
  expect(data).toStartWith(`approval:${which}:`);
  const body = press(OWNER, data, ask.body.content);
  return { id: data.slice(`approval:${which}:`.length), pressed: await t.post(body, signedHeaders(body)) };
}

describe("Discord owner approvals", () => {
  test("the owner gets a DM with buttons; forged and stranger presses decide nothing; the owner's press allows", async () => {
    calls.length = 0;
    closedDms = false;
    await using t = await discordGateway();
    await using ws = await openSocket(t.gw.wsUrl);
    const turn = ws.call("chat.send", { content: "echo", peer: "discord-owner" }, "t1");
    const id = ((await ws.next((r) => (r.value as Msg).params?.event === "approval", 10_000)).value as Msg).params.data
      .id as string;
    const ask = await until("the owner's DM", () => posted().find((c) => c.body.components));
    // Two steps with the bot token: open the owner's DM, then post in the channel Discord answered.
    const open = calls.find((c) => c.path === "/api/v10/users/@me/channels")!;
    expect(open).toMatchObject({ method: "POST", auth: `Bot ${BOT_TOKEN}`, body: { recipient_id: OWNER } });
    expect(calls.indexOf(open)).toBeLessThan(calls.indexOf(ask));
    expect(ask.auth).toBe(`Bot ${BOT_TOKEN}`);
    expect(ask.body.content).toContain("Approval needed: agent main wants to call echo (always)");
    // What the tool's input says (@everyone) pings nobody.
    expect(ask.body.allowed_mentions).toEqual({ parse: [] });
    expect(ask.body.components).toEqual([
      {
        type: 1,
        components: [
          { type: 2, style: 3, label: "Allow", custom_id: `approval:allow:${id}` },
          { type: 2, style: 4, label: "Deny", custom_id: `approval:deny:${id}` },
        ],
      },
    ]);

    // Unsigned, or signed with another key: refused at the door, no plugin reads it.
    const owners = press(OWNER, `approval:allow:${id}`, ask.body.content);
    expect((await t.post(owners, { "content-type": "application/json" })).status).toBe(401);
    expect((await t.post(owners, signedHeaders(owners, OTHER_KEY))).status).toBe(401);
    // A stranger's genuine press (the request forwarded into a guild): told, only they see it; nothing decided.
    const strangers = press(STRANGER, `approval:allow:${id}`, ask.body.content, true);
    const refused = await t.post(strangers, signedHeaders(strangers));
    expect(refused.status).toBe(200);
    const notYours = (await refused.json()) as Msg;
    expect(notYours.type).toBe(4);
    expect(notYours.data.flags).toBe(64);
    expect(notYours.data.content).toContain("not yours");
    expect(t.gw.logs.some((l) => l.includes("approval button refused: the presser is not this channel's owner"))).toBe(
      true,
    );
    expect((await t.gw.store.getApproval(id))?.state).toBe("pending");

    // The owner's press: the message is updated at once (no buttons left), the call runs, the decision follows in the DM.
    const pressed = await t.post(owners, signedHeaders(owners));
    expect(pressed.status).toBe(200);
    const update = (await pressed.json()) as Msg;
    expect(update.type).toBe(7);
    expect(update.data.components).toEqual([]);
    expect(update.data.content).toStartWith(ask.body.content);
    expect(update.data.content).toContain("You pressed Allow.");
    expect(((await turn) as Msg).result.text).toBe("echo said: @everyone ünïcode");
    expect(await t.gw.store.getApproval(id)).toMatchObject({
      state: "allowed",
      decided_by: `owner:discord:${APP}:${OWNER}`,
    });
    await until("the decision in the DM", () => posted().find((c) => c.body.content === `Allowed: echo (${id}).`));
    // No DM was ever opened for the stranger.
    expect(calls.filter((c) => c.path === "/api/v10/users/@me/channels").map((c) => c.body.recipient_id)).not.toContain(
      STRANGER,
    );
  });

  test("a hanging DM send does not hold up the interaction's answer; the DM's failure is logged", async () => {
    calls.length = 0;
    closedDms = false;
    // The fake keeps the decision DM open until this test has seen the interaction answered.
    const held = heldRequest();
    holdDecision = held;
    try {
      await using t = await discordGateway();
      await using ws = await openSocket(t.gw.wsUrl);
      const turn = ws.call("chat.send", { content: "echo", peer: "discord-slow" }, "t1");
      // Answered while Discord still sits on the DM (were the answer to wait for it, this would never return).
      const { id, pressed } = await ownerPresses(t, "allow");
      expect(pressed.status).toBe(200);
      const update = (await pressed.json()) as Msg;
      expect(update.type).toBe(7);
      expect(update.data.content).toContain("You pressed Allow.");
      expect(((await turn) as Msg).result.text).toBe("echo said: @everyone ünïcode");
      expect((await t.gw.store.getApproval(id))?.state).toBe("allowed");
      // The DM was asked for; Discord finally refuses it: logged, with Discord's reason.
      const answer = await held.arrived;
      // Still held: the gateway did not give up on the DM to get the press answered.
      expect(held.abandoned).toBe(false);
      expect(posted().some((c) => c.body.content === `Allowed: echo (${id}).`)).toBe(true);
      answer(Response.json({ message: "Cannot send messages to this user", code: 50007 }, { status: 403 }));
      await until("the warning", () =>
        t.gw.logs.find(
          (l) =>
            l.includes("approval decision not delivered to the owner") &&
            l.includes(id) &&
            l.includes("Cannot send messages to this user"),
        ),
      );
    } finally {
      holdDecision = null;
    }
  });

  test("the owner's press on Deny refuses the call, and is recorded so", async () => {
    calls.length = 0;
    closedDms = false;
    await using t = await discordGateway();
    await using ws = await openSocket(t.gw.wsUrl);
    const turn = ws.call("chat.send", { content: "echo", peer: "discord-deny" }, "t1");
    const { id, pressed } = await ownerPresses(t, "deny");
    expect(((await pressed.json()) as Msg).data.content).toContain("You pressed Deny.");
    expect(((await turn) as Msg).result.text).toContain("denied");
    expect(await t.gw.store.getApproval(id)).toMatchObject({
      state: "denied",
      decided_by: `owner:discord:${APP}:${OWNER}`,
    });
    await until("the decision in the DM", () => posted().find((c) => c.body.content === `Denied: echo (${id}).`));
  });

  test("Discord refusing the DM (the owner's DMs are closed) is logged; the request stays answerable", async () => {
    calls.length = 0;
    closedDms = true;
    await using t = await discordGateway();
    await using ws = await openSocket(t.gw.wsUrl);
    const turn = ws.call("chat.send", { content: "echo", peer: "discord-closed" }, "t1");
    const id = ((await ws.next((r) => (r.value as Msg).params?.event === "approval", 10_000)).value as Msg).params.data
      .id as string;
    await until("the warning", () =>
      t.gw.logs.find(
        (l) =>
          l.includes("approval request not delivered to the owner") && l.includes("Cannot send messages to this user"),
      ),
    );
    expect(((await ws.call("approval.resolve", { id, allow: true })) as Msg).result.state).toBe("allowed");
    expect(((await turn) as Msg).result.text).toBe("echo said: @everyone ünïcode");
  });

  test("without a bot token nothing is sent to Discord: the request is logged and answered elsewhere", async () => {
    calls.length = 0;
    closedDms = false;
    await using t = await discordGateway(false);
    await using ws = await openSocket(t.gw.wsUrl);
    const turn = ws.call("chat.send", { content: "echo", peer: "discord-no-token" }, "t1");
    const id = ((await ws.next((r) => (r.value as Msg).params?.event === "approval", 10_000)).value as Msg).params.data
      .id as string;
    await until("the warning", () =>
      t.gw.logs.find((l) => l.includes("approval request not delivered to the owner") && l.includes("bot_token")),
    );
    expect(calls).toEqual([]);
    expect(((await ws.call("approval.resolve", { id, allow: false })) as Msg).result.state).toBe("denied");
    expect(((await turn) as Msg).result.text).toContain("denied");
  });
});
