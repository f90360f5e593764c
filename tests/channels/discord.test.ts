/**
 * The built-in discord channel plugin with the signed vectors of wire-formats B2 (RFC 8032 key); the
 * two-step send's `{{previous:id}}` (a DM opened, then posted in) and doctor's word on a Discord owner
 * without a bot token. The owner's approval buttons end to end: tests/approvals/discord.test.ts.
 */
import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import type { StreamFn } from "../../src/agent/loop.ts";
import { chainRequest } from "../../src/channels/boundary.ts";
import { runDoctor } from "../../src/cli/_doctor.ts";
import { writeCredential } from "../../src/config/index.ts";
import { startTestGateway } from "../helpers/gateway.ts";
import { discordSignature } from "../helpers/signing.ts";
import { tempDir } from "../helpers/temp.ts";

const CMD = readFileSync(join(import.meta.dir, "../fixtures/webhooks/discord_cmd_body.json"));
// Signed with RFC 8032 TEST 1's secret key (tests/helpers/signing.ts) and a fresh timestamp (the
// published vectors are from 2023, outside the 5-minute window).
const signed = (body: string | Uint8Array, ts: string) => discordSignature(body, ts);

test("discord: PING gets PONG, a slash command is deferred then answered by editing the original response", async () => {
  const sent: { method: string; path: string; body: any }[] = [];
  const api = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    async fetch(req) {
      sent.push({ method: req.method, path: new URL(req.url).pathname, body: await req.json() });
      return Response.json({ id: "1" });
    },
  });
  using home = tempDir();
  writeCredential(home.path, "discord_public_key", "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a");
  home.file(
    "config.toml",
    `[[plugins]]\nname = "discord"\npath = "builtin:discord"\nallowed_hosts = ["127.0.0.1:${api.port}"]\nconfig = { api_base = "http://127.0.0.1:${api.port}", application_id = "11869" }\n\n` +
      `[channels.discord]\nsecrets = { public_key = "discord_public_key" }\ngroups = ["290926798626357999"]\n`,
  );
  const stream: StreamFn = async function* (req) {
    yield { type: "text", text: `You asked: ${(req.messages.at(-1)!.parts[0] as { text: string }).text}` };
    yield { type: "done", stop_reason: "end_turn" };
  };
  try {
    await using gw = await startTestGateway({ home: home.path, streamFor: () => stream });
    const post = (body: string | Uint8Array, ts: string, sig: string) =>
      fetch(`${gw.url}/webhook/discord`, {
        method: "POST",
        headers: { "content-type": "application/json", "x-signature-ed25519": sig, "x-signature-timestamp": ts },
        body,
      });
    const now = String(Math.floor(Date.now() / 1000));
    const pingSig = signed('{"type":1}', now);
    const pong = await post('{"type":1}', now, pingSig);
    expect(pong.status).toBe(200);
    expect(pong.headers.get("content-type")).toContain("application/json");
    expect(await pong.json()).toEqual({ type: 1 });
    // Discord probes with bad signatures and drops endpoints that accept them.
    expect((await post('{"type":1}', String(Number(now) + 1), pingSig)).status).toBe(401);
    // The published vector is correctly signed, but its 2023 timestamp is long past: a replay.
    const vectorSig =
      "1695961a47c91a1ec033b819b7e87e3dbc583dd0cee6d1fd0216f58ac87b6228ae531ddbf91fb7bc28d7edf7f08604da16f54624f38a6bc0614e4dc13cd47f0f";
    expect((await post('{"type":1}', "1700000000", vectorSig)).status).toBe(401);

    const deferred = await post(CMD, now, signed(CMD, now));
    expect(await deferred.json()).toEqual({ type: 5 });
    for (let i = 0; i < 100 && sent.length === 0; i++) await Bun.sleep(20);
    expect(sent).toEqual([
      {
        method: "PATCH",
        path: "/api/v10/webhooks/11869/A_UNIQUE_TOKEN/messages/@original",
        body: { content: "You asked: cardsearch The Gitrog Monster" },
      },
    ]);
    expect(await gw.store.getSession("main:discord:discord:645027906669510667")).not.toBeNull();
  } finally {
    await api.stop(true);
  }
});

test("discord: a failed edit of the deferred response is retried from the stored reply — the interaction is still answerable, the model is not asked again", async () => {
  const sent: { path: string; body: any }[] = [];
  let failFirst = true;
  const api = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    async fetch(req) {
      sent.push({ path: new URL(req.url).pathname, body: await req.json() });
      if (failFirst) {
        failFirst = false;
        return Response.json({ message: "503: Service Unavailable" }, { status: 503 });
      }
      return Response.json({ id: "1" });
    },
  });
  using home = tempDir();
  writeCredential(home.path, "discord_public_key", "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a");
  home.file(
    "config.toml",
    `[[plugins]]\nname = "discord"\npath = "builtin:discord"\nallowed_hosts = ["127.0.0.1:${api.port}"]\nconfig = { api_base = "http://127.0.0.1:${api.port}", application_id = "11869" }\n\n` +
      `[channels.discord]\nsecrets = { public_key = "discord_public_key" }\ngroups = ["290926798626357999"]\n`,
  );
  let calls = 0;
  const stream: StreamFn = async function* () {
    calls++;
    yield { type: "text", text: "The Gitrog Monster: 2BG, 6/6" };
    yield { type: "done", stop_reason: "end_turn" };
  };
  try {
    await using gw = await startTestGateway({ home: home.path, streamFor: () => stream, retryIntervalMs: 30 });
    const now = String(Math.floor(Date.now() / 1000));
    const r = await fetch(`${gw.url}/webhook/discord`, {
      method: "POST",
      headers: { "x-signature-ed25519": signed(CMD, now), "x-signature-timestamp": now },
      body: CMD,
    });
    expect(await r.json()).toEqual({ type: 5 });
    for (let i = 0; i < 250 && (sent.length < 2 || (await gw.store.pendingInbound(10)).length > 0); i++)
      await Bun.sleep(20);
    const edit = {
      path: "/api/v10/webhooks/11869/A_UNIQUE_TOKEN/messages/@original",
      body: { content: "The Gitrog Monster: 2BG, 6/6" },
    };
    expect(sent).toEqual([edit, edit]);
    expect(await gw.store.pendingInbound(10)).toEqual([]);
    expect(calls).toBe(1);
  } finally {
    await api.stop(true);
  }
});

/**
 * A Discord command shows "thinking…" until its deferred response is edited: every refused command
 * must still be answered (wire-formats B2.4: PATCH …/messages/@original), or the user waits forever.
 */
describe("discord: a refused command is answered, never left thinking", () => {
  const ADA = "53908232506183680";
  let seq = 0;
  /** A slash command from Ada: in her DM with the bot, or in `guild`. */
  const command = (text: string, guild?: string) => {
    const n = ++seq;
    return JSON.stringify({
      type: 2,
      id: `78600872971521${1000 + n}`,
      application_id: "11869",
      token: `TOKEN_${n}`,
      ...(guild
        ? { guild_id: guild, member: { user: { id: ADA, username: "Ada" } }, context: 0 }
        : { user: { id: ADA, username: "Ada" }, context: 1 }),
      channel_id: guild ? "645027906669510667" : "1300000000000000001",
      data: { name: "ask", options: [{ name: "q", type: 3, value: text }] },
    });
  };

  async function harness(access: string) {
    const edits: { path: string; content: string }[] = [];
    const api = Bun.serve({
      hostname: "127.0.0.1",
      port: 0,
      async fetch(req) {
        edits.push({ path: new URL(req.url).pathname, content: ((await req.json()) as { content: string }).content });
        return Response.json({ id: "1", content: "edited" });
      },
    });
    const home = tempDir();
    writeCredential(
      home.path,
      "discord_public_key",
      "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
    );
    home.file(
      "config.toml",
      `[[plugins]]\nname = "discord"\npath = "builtin:discord"\nallowed_hosts = ["127.0.0.1:${api.port}"]\nconfig = { api_base = "http://127.0.0.1:${api.port}", application_id = "11869" }\n\n` +
        access,
    );
    const asked: string[] = [];
    const stream: StreamFn = async function* (req) {
      asked.push((req.messages.at(-1)!.parts[0] as { text: string }).text);
      yield { type: "text", text: "an answer" };
      yield { type: "done", stop_reason: "end_turn" };
    };
    const gw = await startTestGateway({ home: home.path, streamFor: () => stream });
    /** Posts a signed command; resolves with the edit of its deferred response once the message is done. */
    const ask = async (body: string) => {
      const ts = String(Math.floor(Date.now() / 1000));
      const r = await fetch(`${gw.url}/webhook/discord`, {
        method: "POST",
        headers: { "x-signature-ed25519": signed(body, ts), "x-signature-timestamp": ts },
        body,
      });
      expect(r.status).toBe(200);
      expect(await r.json()).toEqual({ type: 5 });
      const token = (JSON.parse(body) as { token: string }).token;
      const path = `/api/v10/webhooks/11869/${token}/messages/@original`;
      for (
        let i = 0;
        i < 500 && (!edits.some((e) => e.path === path) || (await gw.store.pendingInbound(10)).length > 0);
        i++
      )
        await Bun.sleep(10);
      const mine = edits.filter((e) => e.path === path);
      expect(mine).toHaveLength(1);
      return mine[0]!.content;
    };
    return {
      asked,
      ask,
      gw,
      async [Symbol.asyncDispose]() {
        await gw[Symbol.asyncDispose]();
        await api.stop(true);
        home[Symbol.dispose]();
      },
    };
  }

  test("a stranger under pairing gets the pairing code in the edit; a second command, no new code, still an answer", async () => {
    await using h = await harness(`[channels.discord]\nsecrets = { public_key = "discord_public_key" }\n`);
    const first = await h.ask(command("hello"));
    expect(first).toMatch(/pairing code: [A-Z2-9]{8}/);
    const second = await h.ask(command("hello again"));
    expect(second).toBe("This assistant answers only people its owner has approved.");
    expect(h.asked).toEqual([]);
  });

  test("allowlist and an unlisted guild each answer with a short refusal; nothing reaches the model", async () => {
    await using h = await harness(
      `[channels.discord]\nsecrets = { public_key = "discord_public_key" }\ndm_policy = "allowlist"\ngroups = ["999"]\n`,
    );
    expect(await h.ask(command("let me in"))).toBe("This assistant answers only people its owner has approved.");
    expect(await h.ask(command("in the guild", "290926798626357999"))).toBe("This assistant does not answer here.");
    expect(h.asked).toEqual([]);
  });

  test("over rate_per_minute: the first command over the limit is told to slow down, later ones too (never left thinking)", async () => {
    await using h = await harness(
      `[channels.discord]\nsecrets = { public_key = "discord_public_key" }\nallow_from = ["${ADA}"]\nrate_per_minute = 1\n`,
    );
    expect(await h.ask(command("one"))).toBe("an answer");
    expect(await h.ask(command("two"))).toContain("1 a minute");
    expect(await h.ask(command("three"))).toContain("1 a minute");
    expect(h.asked).toEqual(["ask one"]);
  });

  test("over the person's budget: a short notice, nothing sent to the model", async () => {
    await using h = await harness(
      `[budgets]\nperson_daily_tokens = 10\n\n[channels.discord]\nsecrets = { public_key = "discord_public_key" }\nallow_from = ["${ADA}"]\n`,
    );
    expect(await h.ask(command("expensive question"))).toContain("usage limit");
    expect(h.asked).toEqual([]);
  });
});

test("doctor: a discord owner without a bot token is warned about (approval requests only logged); with one, not", async () => {
  using home = tempDir();
  writeCredential(home.path, "discord_public_key", "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a");
  writeCredential(home.path, "discord_bot_token", "MTE4.Gx.bot-token");
  const env = { EXOCLAW_HOME: home.path, XDG_CONFIG_HOME: join(home.path, "xdg") };
  const channels = async (secrets: string) => {
    home.file(
      "config.toml",
      `[[agents]]\nid = "main"\nprovider = "ollama"\n\n[channels.discord]\nsecrets = { ${secrets} }\nowner = "53908232506183680"\n`,
    );
    return (await runDoctor({ env, units: { system: "/nonexistent", user: "/nonexistent" } })).filter(
      (c) => c.id === "channels",
    );
  };
  expect(await channels(`public_key = "discord_public_key"`)).toContainEqual({
    id: "channels",
    status: "warn",
    message:
      "discord: owner is set but there is no bot_token: approval requests cannot be sent to the owner there (only logged; answer them with exoclaw approvals or the web page)",
    fix: 'bot_token = "discord_bot_token" in secrets under [channels.discord], then exoclaw secret set discord_bot_token',
  });
  expect(
    (await channels(`public_key = "discord_public_key", bot_token = "discord_bot_token"`)).map((c) => c.status),
  ).toEqual(["ok"]);
});

test("a two-step send: {{previous:id}} is the id of the answer before it, and only an id — else the send is refused, saying why", () => {
  const post = { method: "POST", url: "https://discord.com/api/v10/channels/{{previous:id}}/messages", body: "{}" };
  expect(chainRequest(post, '{"id":"1187000000000000001","type":1}')).toEqual({
    ...post,
    url: "https://discord.com/api/v10/channels/1187000000000000001/messages",
  });
  const refused = "a request names {{previous:id}}, but the answer before it has no id to fill in";
  expect(chainRequest(post, undefined)).toBe(refused);
  expect(chainRequest(post, "<html>bad gateway</html>")).toBe(refused);
  expect(chainRequest(post, '{"id":1187000000000000001}')).toBe(refused);
  // What the platform answers never becomes a path, a query or another host.
  for (const id of ["../../users/@me", "1?x=1", "a@evil.example", "{{secret:bot_token}}", ""])
    expect(chainRequest(post, JSON.stringify({ id }))).toBe(refused);
  // A request that names no earlier answer is sent as it is.
  const plain = { url: "https://discord.com/api/v10/users/@me/channels" };
  expect(chainRequest(plain, undefined)).toBe(plain);
});
