/** The built-in slack channel plugin (wire-formats B4), with requests signed as Slack signs them. */
import { expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import type { StreamFn } from "../../src/agent/loop.ts";
import { writeCredential } from "../../src/config/index.ts";
import { startTestGateway } from "../helpers/gateway.ts";
import { nowS, SLACK_SIGNING_SECRET, slackHeaders } from "../helpers/signing.ts";
import { tempDir } from "../helpers/temp.ts";

const SIGNING = SLACK_SIGNING_SECRET;
const sign = (body: string, ts = nowS()) => ({ ...slackHeaders(body, ts), "content-type": "application/json" });
const EVENT = readFileSync(join(import.meta.dir, "../fixtures/webhooks/slack_event_body.json"), "utf8");

test("slack: url_verification, a DM answered with chat.postMessage, bot echoes and retries ignored, stale signatures refused", async () => {
  const sent: { path: string; auth: string | null; body: any }[] = [];
  const api = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    async fetch(req) {
      sent.push({ path: new URL(req.url).pathname, auth: req.headers.get("authorization"), body: await req.json() });
      return Response.json({ ok: true, channel: "D024BE91L", ts: "1503435956.000247" });
    },
  });
  using home = tempDir();
  writeCredential(home.path, "slack_signing_secret", SIGNING);
  writeCredential(home.path, "slack_bot_token", "xoxb-test-token-1");
  home.file(
    "config.toml",
    `[[plugins]]\nname = "slack"\npath = "builtin:slack"\nallowed_hosts = ["127.0.0.1:${api.port}"]\nconfig = { api_base = "http://127.0.0.1:${api.port}" }\n\n` +
      `[channels.slack]\nsecrets = { signing_secret = "slack_signing_secret", bot_token = "slack_bot_token" }\nallow_from = ["U2147483697"]\n`,
  );
  const stream: StreamFn = async function* (req) {
    yield { type: "text", text: `heard: ${(req.messages.at(-1)!.parts[0] as { text: string }).text}` };
    yield { type: "done", stop_reason: "end_turn" };
  };
  try {
    await using gw = await startTestGateway({ home: home.path, streamFor: () => stream });
    const post = (body: string, headers = sign(body)) =>
      fetch(`${gw.url}/webhook/slack`, { method: "POST", headers, body });
    const challenge =
      '{"token":"Jhj5dZrVaK7ZwHHjRyZWjbDl","challenge":"3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P","type":"url_verification"}';
    const v = await post(challenge);
    expect(v.status).toBe(200);
    expect(await v.json()).toEqual({ challenge: "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P" });
    expect((await post(challenge, sign(challenge, Math.floor(Date.now() / 1000) - 301))).status).toBe(401);

    expect((await post(EVENT)).status).toBe(200);
    for (let i = 0; i < 100 && sent.length === 0; i++) await Bun.sleep(20);
    expect(sent).toEqual([
      {
        path: "/api/chat.postMessage",
        auth: "Bearer xoxb-test-token-1",
        body: { channel: "D024BE91L", text: "heard: Hello hello can you hear me?" },
      },
    ]);
    // Slack retries (same event_id) and the bot's own messages get no answer.
    expect(await (await post(EVENT)).json()).toEqual({ ok: true, accepted: 0 });
    const own = JSON.stringify({
      ...JSON.parse(EVENT),
      event_id: "Ev2",
      event: { type: "message", channel: "D024BE91L", bot_id: "B1", text: "heard: …" },
    });
    expect(await (await post(own)).json()).toEqual({ ok: true, accepted: 0 });
    // Neither was stored (accepted: 0), so nothing is left to send them later.
    expect(await gw.store.pendingInbound(10)).toEqual([]);
    expect(sent).toHaveLength(1);
    expect(await gw.store.getSession("main:slack:A0PNCHHK2:D024BE91L")).not.toBeNull();
  } finally {
    await api.stop(true);
  }
});

test("slack: a stranger's DM gets a pairing code by chat.postMessage; in channels only app_mention in a listed channel is answered", async () => {
  const sent: { channel: string; text: string }[] = [];
  const api = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    async fetch(req) {
      const body = (await req.json()) as { channel: string; text: string };
      sent.push(body);
      return Response.json({ ok: true, channel: body.channel, ts: "1503435956.000247" });
    },
  });
  using home = tempDir();
  writeCredential(home.path, "slack_signing_secret", SIGNING);
  writeCredential(home.path, "slack_bot_token", "xoxb-test-token-1");
  home.file(
    "config.toml",
    `[[plugins]]\nname = "slack"\npath = "builtin:slack"\nallowed_hosts = ["127.0.0.1:${api.port}"]\nconfig = { api_base = "http://127.0.0.1:${api.port}" }\n\n` +
      `[channels.slack]\nsecrets = { signing_secret = "slack_signing_secret", bot_token = "slack_bot_token" }\ngroups = ["C0LISTED"]\n`,
  );
  const asked: string[] = [];
  const stream: StreamFn = async function* (req) {
    asked.push((req.messages.at(-1)!.parts[0] as { text: string }).text);
    yield { type: "text", text: "on it" };
    yield { type: "done", stop_reason: "end_turn" };
  };
  try {
    await using gw = await startTestGateway({ home: home.path, streamFor: () => stream });
    const base = JSON.parse(EVENT) as Record<string, any>;
    const event = (id: string, e: Record<string, unknown>) =>
      JSON.stringify({ ...base, event_id: id, event: { ...base.event, ...e } });
    const post = async (body: string) => {
      expect((await fetch(`${gw.url}/webhook/slack`, { method: "POST", headers: sign(body), body })).status).toBe(200);
      for (let i = 0; i < 500 && (await gw.store.pendingInbound(1)).length > 0; i++) await Bun.sleep(10);
    };
    await post(EVENT);
    expect(sent).toHaveLength(1);
    expect(sent[0]!.channel).toBe("D024BE91L");
    expect(sent[0]!.text).toMatch(/pairing code: [A-Z2-9]{8}/);
    await post(event("Ev3", { channel: "C0OTHER", channel_type: "channel", text: "hi" }));
    await post(event("Ev4", { type: "app_mention", channel: "C0OTHER", channel_type: undefined, text: "<@UBOT> hi" }));
    await post(event("Ev5", { channel: "C0LISTED", channel_type: "channel", text: "<@UBOT> hi" }));
    expect(sent).toHaveLength(1);
    await post(
      event("Ev6", { type: "app_mention", channel: "C0LISTED", channel_type: undefined, text: "<@UBOT> summarise" }),
    );
    expect(sent.at(-1)).toEqual({ channel: "C0LISTED", text: "on it" });
    expect(asked).toEqual(["<@UBOT> summarise"]);
  } finally {
    await api.stop(true);
  }
});
