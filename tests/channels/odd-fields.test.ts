/**
 * Signed, well-formed platform payloads with odd fields (issue 10): the gateway acknowledges them
 * with 200 as the platform expects — never 502, which the platform would retry (Telegram holds back
 * every later update behind it) — and answers what can be answered: a message id longer than 256
 * characters is accepted, answered once and deduped on a resend; a message the plugin reports
 * without a peer to answer, or an update without a chat, is ignored with a warning naming the field.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import type { StreamFn } from "../../src/agent/loop.ts";
import { writeCredential } from "../../src/config/index.ts";
import { startTestGateway, type TestGateway } from "../helpers/gateway.ts";
import { whatsappNotification } from "../helpers/payloads.ts";
import {
  SLACK_SIGNING_SECRET as SLACK_SIGNING,
  slackHeaders,
  WHATSAPP_APP_SECRET as WA_SECRET,
  whatsappSignature,
} from "../helpers/signing.ts";
import { tempDir } from "../helpers/temp.ts";

let gw: TestGateway;
let api: ReturnType<typeof Bun.serve>;
let home: ReturnType<typeof tempDir>;
const sent: { path: string; body: any }[] = [];
const asked: string[] = [];

beforeAll(async () => {
  api = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    async fetch(req) {
      sent.push({ path: new URL(req.url).pathname, body: await req.json() });
      return Response.json({
        ok: true,
        messaging_product: "whatsapp",
        messages: [{ id: "wamid.X" }],
        channel: "D1",
        ts: "1.2",
        result: { message_id: 1 },
      });
    },
  });
  home = tempDir();
  writeCredential(home.path, "wa_secret", WA_SECRET);
  writeCredential(home.path, "wa_verify", "vibecoding");
  writeCredential(home.path, "wa_token", "EAAG-access-token");
  writeCredential(home.path, "slack_signing", SLACK_SIGNING);
  writeCredential(home.path, "slack_token", "xoxb-test-token-1");
  writeCredential(home.path, "tg_secret", "S3cr3t_token-1");
  writeCredential(home.path, "tg_token", "987654321:AAE-secret-token");
  const plugin = (name: string) =>
    `[[plugins]]\nname = "${name}"\npath = "builtin:${name}"\nallowed_hosts = ["127.0.0.1:${api.port}"]\nconfig = { api_base = "http://127.0.0.1:${api.port}" }\n\n`;
  home.file(
    "config.toml",
    plugin("whatsapp") +
      plugin("slack") +
      plugin("telegram") +
      `[channels.whatsapp]\nsecrets = { app_secret = "wa_secret", verify_token = "wa_verify", access_token = "wa_token" }\ndm_policy = "open"\n\n` +
      `[channels.slack]\nsecrets = { signing_secret = "slack_signing", bot_token = "slack_token" }\ndm_policy = "open"\n\n` +
      `[channels.telegram]\nsecrets = { webhook_secret = "tg_secret", bot_token = "tg_token" }\ndm_policy = "open"\n`,
  );
  const stream: StreamFn = async function* (req) {
    const text = (req.messages.at(-1)!.parts[0] as { text: string }).text;
    asked.push(text);
    yield { type: "text", text: `answer to: ${text}` };
    yield { type: "done", stop_reason: "end_turn" };
  };
  gw = await startTestGateway({ home: home.path, streamFor: () => stream });
});
afterAll(async () => {
  await gw?.[Symbol.asyncDispose]();
  await api?.stop(true);
  home?.[Symbol.dispose]();
});

async function settle(): Promise<void> {
  for (let i = 0; i < 500 && (await gw.store.pendingInbound(10)).length > 0; i++) await Bun.sleep(10);
  expect(await gw.store.pendingInbound(10)).toEqual([]);
}

const whatsapp = (id: string, text: string) =>
  JSON.stringify(
    whatsappNotification({
      metadata: { phone_number_id: "106540352242922" },
      messages: [{ from: "16505551234", id, timestamp: "1669233778", type: "text", text: { body: text } }],
    }),
  );
const postWhatsapp = (body: string) =>
  fetch(`${gw.url}/webhook/whatsapp`, {
    method: "POST",
    headers: { "x-hub-signature-256": whatsappSignature(body) },
    body,
  });
const postSlack = (body: string) =>
  fetch(`${gw.url}/webhook/slack`, { method: "POST", headers: slackHeaders(body), body });
const postTelegram = (body: string) =>
  fetch(`${gw.url}/webhook/telegram`, {
    method: "POST",
    headers: { "x-telegram-bot-api-secret-token": "S3cr3t_token-1" },
    body,
  });

test("a message id of 300 characters: acknowledged 200, answered once; the platform's resend is a duplicate", async () => {
  const id = `wamid.${"HBgLMTY1MDM4Nzk0MzkVAgASGBQzQTRBNjU5OUFFRTAzODEwMTQ0RgA".repeat(6)}`.slice(0, 300);
  const before = sent.length;
  const r = await postWhatsapp(whatsapp(id, "a long id"));
  expect(r.status).toBe(200);
  expect(await r.json()).toEqual({ ok: true, accepted: 1 });
  await settle();
  const again = await postWhatsapp(whatsapp(id, "a long id"));
  expect(again.status).toBe(200);
  expect(await again.json()).toEqual({ ok: true, accepted: 0 });
  await settle();
  expect(sent.slice(before).map((s) => s.body.text?.body)).toEqual(["answer to: a long id"]);
});

test("a message the plugin reports without a peer (a Slack event with no channel) is ignored with 200 and a warning naming the field", async () => {
  const asks = asked.length;
  const body = JSON.stringify({
    type: "event_callback",
    team_id: "T1",
    api_app_id: "A1",
    event_id: "EvNoChannel",
    event: { type: "message", channel_type: "im", user: "U1", text: "where am I?" },
  });
  const r = await postSlack(body);
  expect(r.status).toBe(200);
  expect(await r.json()).toEqual({ ok: true, accepted: 0 });
  expect(asked).toHaveLength(asks);
  expect(gw.logs.some((l) => l.includes("channel message ignored") && l.includes('"field":"peer"'))).toBe(true);
  const metrics = await (await fetch(`${gw.url}/metrics`)).text();
  expect(metrics).toContain("# TYPE exoclaw_channel_ignored_total counter");
  expect(metrics).toMatch(/^exoclaw_channel_ignored_total\{channel="slack"\} 1$/m);
});

test("a Telegram update whose message has no chat, and one with extra fields and huge numbers, are acknowledged 200", async () => {
  const noChat = await postTelegram(
    JSON.stringify({
      update_id: 5001,
      message: { message_id: 1, from: { id: 1, is_bot: false, first_name: "A" }, date: 1, text: "no chat" },
    }),
  );
  expect(noChat.status).toBe(200);
  const odd = await postTelegram(
    JSON.stringify({
      update_id: 5002,
      a_future_field: { x: [1, null] },
      message: {
        message_id: 2 ** 53 + 1,
        from: { id: 7, is_bot: false, first_name: "A", is_premium: true },
        chat: { id: 7, type: "private" },
        date: 1e12,
        text: "odd but valid",
        link_preview_options: { is_disabled: true },
      },
    }),
  );
  expect(odd.status).toBe(200);
  await settle();
  expect(asked).toContain("odd but valid");
  expect(asked).not.toContain("no chat");
});
