/** The built-in telegram channel plugin against the Bot API's documented shapes (wire-formats B1). */
import { expect, test } from "bun:test";
import type { StreamFn } from "../../src/agent/loop.ts";
import { writeCredential } from "../../src/config/index.ts";
import { startTestGateway } from "../helpers/gateway.ts";
import { tempDir } from "../helpers/temp.ts";

// The private text message of wire-formats B1.2, as Telegram sends it.
const UPDATE =
  '{"update_id":679892927,"message":{"message_id":3,"from":{"id":1561073042,"is_bot":false,"first_name":"Ada","last_name":"Lovelace","username":"ada_l","language_code":"en"},"chat":{"id":1561073042,"first_name":"Ada","last_name":"Lovelace","username":"ada_l","type":"private"},"date":1636628439,"text":"Hi bot!"}}';

test("telegram: a verified Update is answered with sendMessage; the bot token is filled in by the host; long replies are split", async () => {
  const sent: { path: string; body: any }[] = [];
  const api = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    async fetch(req) {
      sent.push({ path: new URL(req.url).pathname, body: await req.json() });
      return Response.json({ ok: true, result: { message_id: 42 } });
    },
  });
  using home = tempDir();
  writeCredential(home.path, "telegram_webhook_secret", "S3cr3t_token-1");
  writeCredential(home.path, "telegram_bot_token", "987654321:AAE-secret-token");
  // The operator points the built-in plugin at a loopback stand-in for api.telegram.org.
  home.file(
    "config.toml",
    `[[plugins]]\nname = "telegram"\npath = "builtin:telegram"\nallowed_hosts = ["127.0.0.1:${api.port}"]\nconfig = { api_base = "http://127.0.0.1:${api.port}" }\n\n` +
      `[channels.telegram]\nsecrets = { webhook_secret = "telegram_webhook_secret", bot_token = "telegram_bot_token" }\nallow_from = ["1561073042"]\n`,
  );
  const long = "x".repeat(5000);
  const stream: StreamFn = async function* (req) {
    const text = (req.messages.at(-1)!.parts[0] as { text: string }).text;
    yield { type: "text", text: text === "long please" ? long : `Hello Ada, you said: ${text}` };
    yield { type: "done", stop_reason: "end_turn" };
  };
  try {
    await using gw = await startTestGateway({ home: home.path, streamFor: () => stream });
    const post = (body: string, secret = "S3cr3t_token-1") =>
      fetch(`${gw.url}/webhook/telegram`, {
        method: "POST",
        headers: { "content-type": "application/json", "x-telegram-bot-api-secret-token": secret },
        body,
      });
    expect((await post(UPDATE, "nope")).status).toBe(401);
    const r = await post(UPDATE);
    expect(r.status).toBe(200);
    for (let i = 0; i < 100 && sent.length === 0; i++) await Bun.sleep(20);
    expect(sent).toEqual([
      {
        path: "/bot987654321:AAE-secret-token/sendMessage",
        body: { chat_id: 1561073042, text: "Hello Ada, you said: Hi bot!" },
      },
    ]);
    expect(await gw.store.getSession("main:telegram:bot:1561073042")).not.toBeNull();
    // A sticker (no text) is acknowledged and ignored.
    expect(
      await (
        await post('{"update_id":679892928,"message":{"message_id":4,"chat":{"id":1,"type":"private"},"sticker":{}}}')
      ).json(),
    ).toEqual({ ok: true, accepted: 0 });
    await post(UPDATE.replace("679892927", "679892929").replace("Hi bot!", "long please"));
    for (let i = 0; i < 100 && sent.length < 3; i++) await Bun.sleep(20);
    expect(sent.slice(1).map((s) => s.body.text.length)).toEqual([4096, 904]);
    expect(gw.logs.join("\n")).not.toContain("AAE-secret-token");
  } finally {
    await api.stop(true);
  }
});
