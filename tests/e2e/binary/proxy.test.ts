/**
 * The compiled gateway behind a reverse proxy (what Telegram's HTTPS requirement forces): with
 * `[gateway] public_url` and no token, the proxy's host name reaches the signed Telegram webhook and
 * is answered through the (loopback stand-in of the) Bot API, while the web page, /ready, /ws and the
 * unsigned http channel stay loopback-only. Any other host name is still the DNS-rebinding guard's.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
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

const PUBLIC = "bot.example.com";
const WEBHOOK_SECRET = "proxy-webhook-secret-1";
const BOT_TOKEN = "123456:AAE-proxy-bot-token";
const update = (id: number, text: string) =>
  JSON.stringify({
    update_id: id,
    message: {
      message_id: id,
      from: { id: 4242, is_bot: false, first_name: "Ada" },
      chat: { id: 4242, first_name: "Ada", type: "private" },
      date: 1636628439,
      text,
    },
  });

describe.if(NATIVE !== undefined)("the binary behind a reverse proxy: [gateway] public_url, no token", () => {
  const home = binaryHome();
  const model = startFakeUpstream((req) => ({ body: anthropicReply(`via the proxy: ${lastUserText(req)}`) }));
  const sent: { path: string; body: unknown }[] = [];
  const telegram = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    async fetch(req) {
      sent.push({ path: new URL(req.url).pathname, body: await req.json() });
      return Response.json({ ok: true, result: { message_id: 1 } });
    },
  });
  let gw: BinaryGateway;
  /** A request as the proxy forwards it: to loopback, with the public Host. */
  const viaProxy = (path: string, init: RequestInit = {}) =>
    fetch(`${gw.url}${path}`, { ...init, headers: { host: PUBLIC, ...(init.headers as Record<string, string>) } });
  const postUpdate = (body: string, secret = WEBHOOK_SECRET, host = PUBLIC) =>
    fetch(`${gw.url}/webhook/telegram`, {
      method: "POST",
      headers: { host, "content-type": "application/json", "x-telegram-bot-api-secret-token": secret },
      body,
    });

  beforeAll(async () => {
    await nativeBinary();
    for (const [name, value] of [
      ["tg_secret", WEBHOOK_SECRET],
      ["tg_bot", BOT_TOKEN],
    ] as const)
      expect((await runBinary(home, ["secret", "set", name], { stdin: value })).code).toBe(0);
    const api = `127.0.0.1:${telegram.port}`;
    home.file(
      "config.toml",
      `[gateway]\npublic_url = "https://${PUBLIC}"\n\n` +
        `[[agents]]\nid = "main"\nprovider = "anthropic"\nmodel = "claude-sonnet-4-5"\nbase_url = "${model.url}"\n\n` +
        `[[plugins]]\nname = "telegram"\npath = "builtin:telegram"\nallowed_hosts = ["${api}"]\nconfig = { api_base = "http://${api}" }\n\n` +
        `[channels.telegram]\nsecrets = { webhook_secret = "tg_secret", bot_token = "tg_bot" }\ndm_policy = "open"\n\n[channels.http]\n`,
    );
    gw = await startBinaryGateway(home);
  }, 120_000);

  afterAll(async () => {
    await gw?.stop();
    await telegram.stop(true);
    await model[Symbol.asyncDispose]();
    home[Symbol.dispose]();
  });

  test("a signed Telegram update through the public host is answered via sendMessage; a wrong secret gets 401 and reaches no model", async () => {
    expect((await postUpdate(update(1, "forged"), "not-the-secret")).status).toBe(401);
    const res = await postUpdate(update(2, "hello through the proxy"));
    expect(res.status).toBe(200);
    await until("the reply at the Bot API", () => (sent.length > 0 ? true : undefined));
    expect(sent).toEqual([
      { path: `/bot${BOT_TOKEN}/sendMessage`, body: { chat_id: 4242, text: "via the proxy: hello through the proxy" } },
    ]);
    expect(model.requests.map(lastUserText)).toEqual(["hello through the proxy"]);
  });

  test("on the public host the page, /ready and /ws are refused 403 saying a token opens them; the unsigned http channel gets 401", async () => {
    for (const path of ["/", "/ready", "/ws"]) {
      const r = await viaProxy(path);
      const message = ((await r.json()) as { error: { message: string } }).error.message;
      expect({ path, status: r.status }).toEqual({ path, status: 403 });
      expect(message).toContain(`on its public host ${PUBLIC} a gateway without a token answers only /webhook/`);
      expect(message).toContain("--token or EXOCLAW_TOKEN");
    }
    const before = model.requests.length;
    const http = await viaProxy("/webhook/http", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: '{"peer":"x","text":"through the proxy"}',
    });
    expect(http.status).toBe(401);
    expect(model.requests.length).toBe(before);
  });

  test("any other host name is still refused, even for a signed webhook; loopback keeps everything", async () => {
    const other = await postUpdate(update(3, "rebinding"), WEBHOOK_SECRET, "evil.example");
    expect(other.status).toBe(403);
    expect(((await other.json()) as { error: { message: string } }).error.message).toContain(
      "host evil.example not allowed",
    );
    expect((await fetch(`${gw.url}/ready`)).status).toBe(200);
    const http = await fetch(`${gw.url}/webhook/http`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: '{"peer":"local","text":"from loopback"}',
    });
    expect(http.status).toBe(200);
    expect(await http.json()).toMatchObject({ replies: [{ peer: "local", text: "via the proxy: from loopback" }] });
    expect(gw.stderr()).toBe("");
  });
});
