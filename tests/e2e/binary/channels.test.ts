/**
 * Every built-in channel of the compiled binary, by webhook, against one loopback stand-in for the
 * platforms' APIs (wire-formats B1–B4): signed as each platform signs, answered the way each
 * platform is answered, the bot tokens filled in by the host. A forged request gets 401 and reaches
 * neither the model nor the platform. One gateway for the whole file.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createHmac, generateKeyPairSync, sign } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { startFakeUpstream } from "../../helpers/fake-upstream.ts";
import {
  type BinaryGateway,
  binaryHome,
  NATIVE,
  nativeBinary,
  runBinary,
  startBinaryGateway,
  until,
} from "../../helpers/binary.ts";
import { anthropicReply, lastUserText } from "./_replies.ts";

const WEBHOOKS = join(import.meta.dir, "../../fixtures/webhooks");
const DISCORD_CMD = readFileSync(join(WEBHOOKS, "discord_cmd_body.json"));
const WA_BODY = readFileSync(join(WEBHOOKS, "wa_body.json"));
const SLACK_EVENT = readFileSync(join(WEBHOOKS, "slack_event_body.json"), "utf8");
const TG_UPDATE =
  '{"update_id":679892927,"message":{"message_id":3,"from":{"id":1561073042,"is_bot":false,"first_name":"Ada","username":"ada_l","language_code":"en"},"chat":{"id":1561073042,"first_name":"Ada","username":"ada_l","type":"private"},"date":1636628439,"text":"Hi bot!"}}';

const GATEWAY_TOKEN = "binary-gateway-token";
const SECRETS = {
  telegram_webhook_secret: "S3cr3t_token-1",
  telegram_bot_token: "987654321:AAE-binary-bot-token",
  wa_app_secret: "test_app_secret",
  wa_verify: "vibecoding",
  wa_token: "EAAG-binary-access-token",
  slack_signing_secret: "8f742231b10e8888abcd99yyyzzz85a5",
  slack_bot_token: "xoxb-binary-token-1",
};

// A Discord application's key pair, made here: the test signs like Discord, the gateway holds the public half.
const discordKeys = generateKeyPairSync("ed25519");
const DISCORD_PUBLIC = discordKeys.publicKey.export({ format: "der", type: "spki" }).subarray(-32).toString("hex");
const discordSig = (body: string | Uint8Array, ts: string) =>
  sign(null, Buffer.concat([Buffer.from(ts), Buffer.from(body)]), discordKeys.privateKey).toString("hex");
const slackHeaders = (body: string, ts = Math.floor(Date.now() / 1000)) => ({
  "content-type": "application/json",
  "x-slack-request-timestamp": String(ts),
  "x-slack-signature":
    "v0=" + createHmac("sha256", SECRETS.slack_signing_secret).update(`v0:${ts}:${body}`).digest("hex"),
});
const nowS = () => String(Math.floor(Date.now() / 1000));

interface Received {
  method: string;
  path: string;
  auth: string | null;
  body: any;
}

describe.if(NATIVE !== undefined)("the binary's built-in channels by webhook", () => {
  const home = binaryHome();
  const model = startFakeUpstream((req) => ({ body: anthropicReply(`echo: ${lastUserText(req)}`) }));
  const received: Received[] = [];
  // api.telegram.org, discord.com, graph.facebook.com and slack.com in one: each plugin's api_base.
  const platform = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    async fetch(req) {
      const path = new URL(req.url).pathname;
      const body = (await req.json()) as { channel?: string };
      received.push({ method: req.method, path, auth: req.headers.get("authorization"), body });
      if (path.startsWith("/bot")) return Response.json({ ok: true, result: { message_id: 42 } });
      if (path === "/api/chat.postMessage") {
        // Slack's errors are 200s with ok: false.
        if (body.channel === "C-ARCHIVED") return Response.json({ ok: false, error: "is_archived" });
        return Response.json({ ok: true, channel: body.channel, ts: "1503435956.000247" });
      }
      if (path.startsWith("/v23.0/"))
        return Response.json({ messaging_product: "whatsapp", messages: [{ id: "wamid.X" }] });
      return Response.json({ id: "1" });
    },
  });
  const api = `127.0.0.1:${platform.port}`;
  let gw: BinaryGateway;

  /** Resolves once the platform stand-in has received `n` requests in all. */
  const receivedCount = (n: number) =>
    until(`${n} platform request(s)`, () => (received.length >= n ? received.slice() : undefined));

  beforeAll(async () => {
    await nativeBinary();
    // The operator's way: `exoclaw secret set NAME` reading stdin.
    for (const [name, value] of Object.entries({ ...SECRETS, discord_public_key: DISCORD_PUBLIC })) {
      const r = await runBinary(home, ["secret", "set", name], { stdin: value });
      expect(r.stderr).toBe("");
    }
    const plugin = (name: string, extra = "") =>
      `[[plugins]]\nname = "${name}"\npath = "builtin:${name}"\nallowed_hosts = ["${api}"]\nconfig = { api_base = "http://${api}"${extra} }\n\n`;
    home.file(
      "config.toml",
      `[[agents]]\nid = "main"\nprovider = "anthropic"\nmodel = "claude-sonnet-4-5"\nbase_url = "${model.url}"\n\n` +
        plugin("telegram") +
        plugin("discord", ', application_id = "11869"') +
        plugin("whatsapp") +
        plugin("slack") +
        `[channels.telegram]\nsecrets = { webhook_secret = "telegram_webhook_secret", bot_token = "telegram_bot_token" }\n\n` +
        // Telegram keeps the default (pairing); the others are open, so each test is about its wire.
        `[channels.discord]\nsecrets = { public_key = "discord_public_key" }\ndm_policy = "open"\ngroups = ["*"]\n\n` +
        // The same plugin as a second, closed channel: a refused command must still be answered.
        `[channels.discord_closed]\nplugin = "discord"\nsecrets = { public_key = "discord_public_key" }\ndm_policy = "allowlist"\n\n` +
        `[channels.whatsapp]\nsecrets = { app_secret = "wa_app_secret", verify_token = "wa_verify", access_token = "wa_token" }\ndm_policy = "open"\n\n` +
        `[channels.slack]\nsecrets = { signing_secret = "slack_signing_secret", bot_token = "slack_bot_token" }\ndm_policy = "open"\n\n` +
        `[channels.http]\n`,
    );
    gw = await startBinaryGateway(home, { env: { EXOCLAW_TOKEN: GATEWAY_TOKEN } });
  }, 120_000);

  afterAll(async () => {
    await gw?.stop();
    await platform.stop(true);
    await model[Symbol.asyncDispose]();
    home[Symbol.dispose]();
  });

  const webhook = (channel: string, init: RequestInit & { query?: string } = {}) =>
    fetch(`${gw.url}/webhook/${channel}${init.query ?? ""}`, { method: "POST", ...init });

  test("telegram: a wrong secret token gets 401; a stranger gets a pairing code and no model; after `pairing approve` the same person is answered", async () => {
    const before = { model: model.requests.length, platform: received.length };
    const post = (secret: string, update = TG_UPDATE) =>
      webhook("telegram", {
        headers: { "content-type": "application/json", "x-telegram-bot-api-secret-token": secret },
        body: update,
      });
    expect((await post("not-the-secret")).status).toBe(401);
    expect((await post(SECRETS.telegram_webhook_secret)).status).toBe(200);
    const coded = await receivedCount(before.platform + 1);
    const notice = coded[before.platform]!;
    expect({ method: notice.method, path: notice.path }).toEqual({
      method: "POST",
      path: `/bot${SECRETS.telegram_bot_token}/sendMessage`,
    });
    const code = /pairing code: ([A-Z0-9]{8})/.exec((notice.body as { text: string }).text)?.[1];
    expect(code).toBeDefined();
    expect(model.requests.length - before.model).toBe(0); // the stranger reached no model
    // The operator, with the binary, against the running gateway.
    const approved = await runBinary(home, [
      "pairing",
      "approve",
      code!,
      "--port",
      String(gw.port),
      "--token",
      GATEWAY_TOKEN,
    ]);
    expect({ code: approved.code, stderr: approved.stderr }).toEqual({ code: 0, stderr: "" });
    expect(approved.stdout).toContain("approved telegram:bot:1561073042");
    expect((await post(SECRETS.telegram_webhook_secret, TG_UPDATE.replace("679892927", "679892928"))).status).toBe(200);
    const got = await receivedCount(before.platform + 2);
    // Only the verified ones reached the platform (the forged one came first), the second as an answer.
    expect(got[before.platform + 1]).toEqual({
      method: "POST",
      path: `/bot${SECRETS.telegram_bot_token}/sendMessage`,
      auth: null,
      body: { chat_id: 1561073042, text: "echo: Hi bot!" },
    });
    expect(model.requests.length - before.model).toBe(1);
  });

  test("discord: PING gets PONG; a bad signature gets 401; a slash command is deferred, then the original response is edited", async () => {
    const before = { model: model.requests.length, platform: received.length };
    const post = (body: string | Uint8Array, ts: string, sig: string) =>
      webhook("discord", {
        headers: { "content-type": "application/json", "x-signature-ed25519": sig, "x-signature-timestamp": ts },
        body,
      });
    const ts = nowS();
    const pong = await post('{"type":1}', ts, discordSig('{"type":1}', ts));
    expect(pong.status).toBe(200);
    expect(pong.headers.get("content-type")).toContain("application/json");
    expect(await pong.json()).toEqual({ type: 1 });
    // Signed with another key: what Discord's own probe does before it accepts an endpoint.
    const other = generateKeyPairSync("ed25519").privateKey;
    const forged = sign(null, Buffer.concat([Buffer.from(ts), DISCORD_CMD]), other).toString("hex");
    expect((await post(DISCORD_CMD, ts, forged)).status).toBe(401);
    const deferred = await post(DISCORD_CMD, ts, discordSig(DISCORD_CMD, ts));
    expect(deferred.status).toBe(200);
    expect(await deferred.json()).toEqual({ type: 5 });
    const got = await receivedCount(before.platform + 1);
    expect(got.slice(before.platform)).toEqual([
      {
        method: "PATCH",
        path: "/api/v10/webhooks/11869/A_UNIQUE_TOKEN/messages/@original",
        auth: null,
        body: { content: "echo: cardsearch The Gitrog Monster" },
      },
    ]);
    expect(model.requests.length - before.model).toBe(1);
  });

  test('discord: a refused command (allowlist, a DM from someone not on it) is answered with a short refusal — never left "thinking…" — and reaches no model', async () => {
    const before = { model: model.requests.length, platform: received.length };
    const body = JSON.stringify({
      type: 2,
      id: "786008729715299999",
      application_id: "11869",
      token: "CLOSED_TOKEN",
      user: { id: "53908232506183680", username: "Mason" },
      context: 1,
      channel_id: "1300000000000000001",
      data: { name: "ask", options: [{ name: "q", type: 3, value: "hello?" }] },
    });
    const ts = nowS();
    const r = await webhook("discord_closed", {
      headers: {
        "content-type": "application/json",
        "x-signature-ed25519": discordSig(body, ts),
        "x-signature-timestamp": ts,
      },
      body,
    });
    expect(r.status).toBe(200);
    expect(await r.json()).toEqual({ type: 5 });
    const got = await receivedCount(before.platform + 1);
    expect(got.slice(before.platform)).toEqual([
      {
        method: "PATCH",
        path: "/api/v10/webhooks/11869/CLOSED_TOKEN/messages/@original",
        auth: null,
        body: { content: "This assistant answers only people its owner has approved." },
      },
    ]);
    expect(model.requests.length - before.model).toBe(0);
  });

  test("whatsapp: the GET handshake; a bad X-Hub-Signature-256 gets 401; a signed message is answered through the Graph API with the access token", async () => {
    const verify = await fetch(
      `${gw.url}/webhook/whatsapp?hub.mode=subscribe&hub.challenge=1158201444&hub.verify_token=${SECRETS.wa_verify}`,
    );
    expect(verify.status).toBe(200);
    expect(await verify.text()).toBe("1158201444");
    expect(
      (await fetch(`${gw.url}/webhook/whatsapp?hub.mode=subscribe&hub.challenge=1&hub.verify_token=wrong`)).status,
    ).toBe(403);

    const before = { model: model.requests.length, platform: received.length };
    const sig = (body: Uint8Array | string) =>
      "sha256=" + createHmac("sha256", SECRETS.wa_app_secret).update(body).digest("hex");
    const post = (body: Uint8Array | string, signature: string) =>
      webhook("whatsapp", { headers: { "content-type": "application/json", "x-hub-signature-256": signature }, body });
    // The same JSON re-serialized is other bytes: the signature over the raw body no longer holds.
    expect((await post(JSON.stringify(JSON.parse(WA_BODY.toString()), null, 1), sig(WA_BODY))).status).toBe(401);
    expect((await post(WA_BODY, sig(WA_BODY))).status).toBe(200);
    const got = await receivedCount(before.platform + 1);
    expect(got.slice(before.platform)).toEqual([
      {
        method: "POST",
        path: "/v23.0/106540352242922/messages",
        auth: `Bearer ${SECRETS.wa_token}`,
        body: {
          messaging_product: "whatsapp",
          recipient_type: "individual",
          to: "16505551234",
          type: "text",
          text: { preview_url: false, body: "echo: Does it come in another color?" },
        },
      },
    ]);
    expect(model.requests.length - before.model).toBe(1);
  });

  test("slack: url_verification; a stale or forged signature gets 401; a DM is answered with chat.postMessage and the bot token", async () => {
    const challenge =
      '{"token":"Jhj5dZrVaK7ZwHHjRyZWjbDl","challenge":"3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P","type":"url_verification"}';
    const v = await webhook("slack", { headers: slackHeaders(challenge), body: challenge });
    expect(v.status).toBe(200);
    expect(await v.json()).toEqual({ challenge: "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P" });

    const before = { model: model.requests.length, platform: received.length };
    expect(
      (
        await webhook("slack", {
          headers: slackHeaders(SLACK_EVENT, Math.floor(Date.now() / 1000) - 301),
          body: SLACK_EVENT,
        })
      ).status,
    ).toBe(401);
    expect(
      (
        await webhook("slack", {
          headers: { ...slackHeaders(SLACK_EVENT), "x-slack-signature": `v0=${"0".repeat(64)}` },
          body: SLACK_EVENT,
        })
      ).status,
    ).toBe(401);
    expect((await webhook("slack", { headers: slackHeaders(SLACK_EVENT), body: SLACK_EVENT })).status).toBe(200);
    const got = await receivedCount(before.platform + 1);
    expect(got.slice(before.platform)).toEqual([
      {
        method: "POST",
        path: "/api/chat.postMessage",
        auth: `Bearer ${SECRETS.slack_bot_token}`,
        body: { channel: "D024BE91L", text: "echo: Hello hello can you hear me?" },
      },
    ]);
    expect(model.requests.length - before.model).toBe(1);
  });

  test("http: the reply is in the response body; a wrong gateway token gets 401 and reaches no model", async () => {
    const before = model.requests.length;
    const post = (token: string, text: string) =>
      webhook("http", {
        headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
        body: JSON.stringify({ peer: "alice", text }),
      });
    expect((await post("wrong-token", "sneaky")).status).toBe(401);
    const r = await post(GATEWAY_TOKEN, "hi there");
    expect(r.status).toBe(200);
    expect(await r.json()).toMatchObject({
      replies: [{ peer: "alice", text: "echo: hi there", stop_reason: "end_turn" }],
    });
    expect(model.requests.slice(before).map(lastUserText)).toEqual(["hi there"]);
  });

  test("the host's secrets and the gateway token never reach the gateway's output", () => {
    const logs = gw.logs.map((l) => JSON.stringify(l)).join("\n") + gw.stderr();
    for (const value of [...Object.values(SECRETS), GATEWAY_TOKEN]) expect(logs).not.toContain(value);
  });

  // Last: this message stays pending (it is retried later), which the status below counts.
  test("slack: a 200 {ok:false, error: is_archived} from chat.postMessage is a permanent refusal — the message is dead-lettered, not counted as sent", async () => {
    const before = received.length;
    const event = JSON.stringify({
      ...JSON.parse(SLACK_EVENT),
      event_id: "EvArchived1",
      event: { ...JSON.parse(SLACK_EVENT).event, channel: "C-ARCHIVED", text: "anyone?" },
    });
    expect((await webhook("slack", { headers: slackHeaders(event), body: event })).status).toBe(200);
    expect((await receivedCount(before + 1)).at(-1)).toMatchObject({
      path: "/api/chat.postMessage",
      body: { channel: "C-ARCHIVED", text: "echo: anyone?" },
    });
    const failed = await gw.waitForLog(
      (l) => String(l.msg).startsWith("channel delivery failed; dead-lettered") && l.channel === "slack",
    );
    expect(String(failed.error)).toContain("is_archived");
    // Every other message was delivered; this one waits in the inbox.
    const status = await until("one dead-lettered message", async () => {
      const r = await runBinary(home, ["status", "--json", "--port", String(gw.port), "--token", GATEWAY_TOKEN]);
      const s = JSON.parse(r.stdout) as { inbound: { pending: number; dead: number } };
      return s.inbound.dead === 1 ? s : undefined;
    });
    expect(status.inbound).toEqual({ pending: 0, dead: 1 });
  });
});
