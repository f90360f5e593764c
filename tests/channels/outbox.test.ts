/**
 * A reply that cannot be delivered (the user blocked the bot) is retried as a send, never as a turn:
 * the model is asked once, a side-effecting tool runs once, the history holds one turn.
 */
import { expect, test } from "bun:test";
import { createHmac } from "node:crypto";
import type { StreamFn } from "../../src/agent/loop.ts";
import { writeCredential } from "../../src/config/index.ts";
import { startTestGateway } from "../helpers/gateway.ts";
import { openSocket } from "../helpers/ws.ts";
import { tempDir } from "../helpers/temp.ts";

async function until(cond: () => Promise<boolean>, what: string): Promise<void> {
  for (let i = 0; i < 300; i++) {
    if (await cond()) return;
    await Bun.sleep(20);
  }
  throw new Error(`timed out waiting for ${what}`);
}

/** A model that calls http_get on `url` (a side effect on a loopback server), then answers. */
function toolThenAnswer(url: string) {
  let calls = 0;
  const stream: StreamFn = async function* (req) {
    calls++;
    const last = req.messages.at(-1)!;
    if (last.role === "user") {
      yield { type: "tool_call", id: `t${calls}`, name: "http_get", input: { url } };
      yield { type: "done", stop_reason: "tool_use" };
      return;
    }
    yield { type: "text", text: "Order placed." };
    yield { type: "done", stop_reason: "end_turn" };
  };
  return { stream, calls: () => calls };
}

function platformAndShop(refusal: () => Response) {
  const sends: string[] = [];
  let orders = 0;
  const server = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    async fetch(req) {
      const path = new URL(req.url).pathname;
      if (path === "/shop/order") {
        orders++;
        return new Response("order #" + orders);
      }
      sends.push(((await req.json()) as { text: string }).text);
      return refusal();
    },
  });
  return { server, sends, orders: () => orders };
}

test("telegram answers 403 (bot blocked): 5 send attempts of the stored reply, one model turn, one tool run, one turn in history", async () => {
  const { server, sends, orders } = platformAndShop(() => Response.json({ ok: false, error_code: 403, description: "Forbidden: bot was blocked by the user" }, { status: 403 }));
  const model = toolThenAnswer(`http://127.0.0.1:${server.port}/shop/order`);
  using home = tempDir();
  writeCredential(home.path, "tg_secret", "S3cr3t_token-1");
  writeCredential(home.path, "tg_bot", "987654321:AAE-secret-token");
  home.file(
    "config.toml",
    `[[plugins]]\nname = "http-get"\npath = "builtin:http-get"\nallowed_hosts = ["127.0.0.1:${server.port}"]\n\n` +
      `[[plugins]]\nname = "telegram"\npath = "builtin:telegram"\nallowed_hosts = ["127.0.0.1:${server.port}"]\nconfig = { api_base = "http://127.0.0.1:${server.port}" }\n\n` +
      `[channels.telegram]\nsecrets = { webhook_secret = "tg_secret", bot_token = "tg_bot" }\ndm_policy = "open"\n`,
  );
  try {
    await using gw = await startTestGateway({ home: home.path, streamFor: () => model.stream, retryIntervalMs: 30 });
    const update = '{"update_id":9001,"message":{"message_id":1,"from":{"id":42,"is_bot":false,"first_name":"Ada"},"chat":{"id":42,"type":"private"},"date":1636628439,"text":"order one pizza"}}';
    const r = await fetch(`${gw.url}/webhook/telegram`, { method: "POST", headers: { "x-telegram-bot-api-secret-token": "S3cr3t_token-1" }, body: update });
    expect(r.status).toBe(200);
    await until(async () => (await gw.store.pendingInbound(10))[0]?.attempts === 5, "five failed attempts");
    const [pending] = await gw.store.pendingInbound(10);
    expect(pending!.reply).toBe("Order placed.");
    expect(pending!.last_error).toContain("403");
    expect(sends).toEqual(Array(5).fill("Order placed."));
    expect(model.calls()).toBe(2); // one turn: the tool round and the answer
    expect(orders()).toBe(1);
    const history = await gw.store.history("main:telegram:bot:42", { limit: 50 });
    expect(history.map((m) => m.role)).toEqual(["user", "assistant", "tool", "assistant"]);
    // The operator sees it: `exoclaw status` counts the message as given up.
    await using ws = await openSocket(gw.wsUrl);
    expect(((await ws.call("status")) as { result: { inbound: unknown } }).result.inbound).toEqual({ pending: 0, dead: 1 });
  } finally {
    await server.stop(true);
  }
});

test("slack answers 200 {ok:false}: the message stays pending with the platform's error, and the retry only re-sends", async () => {
  const { server, sends, orders } = platformAndShop(() => Response.json({ ok: false, error: "not_in_channel" }));
  const model = toolThenAnswer(`http://127.0.0.1:${server.port}/shop/order`);
  const SIGNING = "8f742231b10e8888abcd99yyyzzz85a5";
  using home = tempDir();
  writeCredential(home.path, "slack_signing", SIGNING);
  writeCredential(home.path, "slack_bot", "xoxb-test-token-1");
  home.file(
    "config.toml",
    `[[plugins]]\nname = "http-get"\npath = "builtin:http-get"\nallowed_hosts = ["127.0.0.1:${server.port}"]\n\n` +
      `[[plugins]]\nname = "slack"\npath = "builtin:slack"\nallowed_hosts = ["127.0.0.1:${server.port}"]\nconfig = { api_base = "http://127.0.0.1:${server.port}" }\n\n` +
      `[channels.slack]\nsecrets = { signing_secret = "slack_signing", bot_token = "slack_bot" }\ndm_policy = "open"\n`,
  );
  try {
    await using gw = await startTestGateway({ home: home.path, streamFor: () => model.stream, retryIntervalMs: 30 });
    const body = JSON.stringify({ type: "event_callback", team_id: "T1", api_app_id: "A1", event_id: "Ev1", event: { type: "message", channel: "D1", channel_type: "im", user: "U1", text: "order one pizza" } });
    const ts = Math.floor(Date.now() / 1000);
    const sig = "v0=" + createHmac("sha256", SIGNING).update(`v0:${ts}:${body}`).digest("hex");
    const r = await fetch(`${gw.url}/webhook/slack`, { method: "POST", headers: { "x-slack-request-timestamp": String(ts), "x-slack-signature": sig }, body });
    expect(r.status).toBe(200);
    await until(async () => (await gw.store.pendingInbound(10))[0]?.attempts === 5, "five failed attempts");
    expect((await gw.store.pendingInbound(10))[0]!.last_error).toContain("not_in_channel");
    expect(sends).toEqual(Array(5).fill("Order placed."));
    expect([model.calls(), orders()]).toEqual([2, 1]);
  } finally {
    await server.stop(true);
  }
});
