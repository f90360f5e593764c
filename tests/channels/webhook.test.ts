/** POST /webhook/:channel end to end: verification, parse in the sandbox, dedupe, turn, reply/send. */
import { describe, expect, test } from "bun:test";
import { copyFileSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import type { StreamFn } from "../../src/agent/loop.ts";
import { writeCredential } from "../../src/config/index.ts";
import { sha256Hex } from "../../src/sandbox/index.ts";
import { startTestGateway } from "../helpers/gateway.ts";
import { fixturePath, readWasm } from "../helpers/plugins.ts";
import { tempDir } from "../helpers/temp.ts";

const stream: StreamFn = async function* (req) {
  const last = req.messages.at(-1)!.parts[0] as { text: string };
  yield { type: "text", text: `echo: ${last.text}` };
  yield { type: "done", stop_reason: "end_turn" };
};

describe("the http channel", () => {
  test("{peer, text} in, the reply in the response; a resent id is answered once", async () => {
    await using gw = await startTestGateway({ toml: "[channels.http]\n", streamFor: () => stream });
    const post = (body: unknown) => fetch(`${gw.url}/webhook/http`, { method: "POST", body: JSON.stringify(body) });
    const r = await post({ peer: "alice", text: "héllo", id: "m1" });
    expect(r.status).toBe(200);
    expect(await r.json()).toEqual({
      replies: [
        { id: "m1", peer: "alice", session: "main:http:default:alice", text: "echo: héllo", stop_reason: "end_turn" },
      ],
      duplicates: 0,
    });
    expect(await (await post({ peer: "alice", text: "héllo", id: "m1" })).json()).toEqual({
      replies: [],
      duplicates: 1,
    });
    const bad = await post({ peer: "alice" });
    expect(bad.status).toBe(400);
    expect(await bad.json()).toEqual({ error: "peer and text are required strings" });
    expect((await fetch(`${gw.url}/webhook/nope`, { method: "POST", body: "{}" })).status).toBe(404);
    expect((await gw.store.history("main:http:default:alice", { limit: 10 })).map((m) => m.role)).toEqual([
      "user",
      "assistant",
    ]);
  });

  test("with a gateway token, the http channel needs it", async () => {
    await using gw = await startTestGateway({
      toml: "[channels.http]\n",
      token: "chan-token-1",
      streamFor: () => stream,
    });
    expect((await fetch(`${gw.url}/webhook/http`, { method: "POST", body: '{"peer":"a","text":"b"}' })).status).toBe(
      401,
    );
    const ok = await fetch(`${gw.url}/webhook/http`, {
      method: "POST",
      headers: { authorization: "Bearer chan-token-1" },
      body: '{"peer":"a","text":"b"}',
    });
    expect(ok.status).toBe(200);
  });
});

describe("a signed channel with outbound sends (relay fixture, Telegram-shaped)", () => {
  async function setup() {
    const home = tempDir();
    const sent: { path: string; body: any }[] = [];
    const platform = Bun.serve({
      hostname: "127.0.0.1",
      port: 0,
      async fetch(req) {
        sent.push({ path: new URL(req.url).pathname, body: await req.json() });
        return Response.json({ ok: true, result: {} });
      },
    });
    mkdirSync(join(home.path, "plugins"));
    copyFileSync(fixturePath("relay"), join(home.path, "plugins/relay.wasm"));
    writeCredential(home.path, "relay_secret", "S3cr3t_token-1");
    writeCredential(home.path, "relay_token", "123456:ABC-bot-token");
    home.file(
      "config.toml",
      `[[plugins]]\nname = "relay"\npath = "plugins/relay.wasm"\nsha256 = "${sha256Hex(await readWasm(fixturePath("relay")))}"\nallowed_hosts = ["127.0.0.1:${platform.port}"]\nconfig = { base_url = "http://127.0.0.1:${platform.port}" }\n\n` +
        `[channels.relay]\nplugin = "relay"\nsecrets = { webhook_secret = "relay_secret", bot_token = "relay_token" }\ndm_policy = "open"\n`,
    );
    return { home, sent, platform };
  }
  const update = (id: number, text: string) =>
    JSON.stringify({
      update_id: id,
      message: { message_id: 3, chat: { id: 1561073042, type: "private" }, date: 1636628439, text },
    });

  test("a forged request gets 401 and reaches no plugin; a good one is acknowledged, answered and sent with the secret filled in", async () => {
    const { home, sent, platform } = await setup();
    try {
      await using gw = await startTestGateway({ home: home.path, streamFor: () => stream });
      const forged = await fetch(`${gw.url}/webhook/relay`, {
        method: "POST",
        headers: { "x-telegram-bot-api-secret-token": "guess" },
        body: update(1, "hi"),
      });
      expect(forged.status).toBe(401);
      expect(await gw.store.pendingInbound(10)).toEqual([]);
      const ok = await fetch(`${gw.url}/webhook/relay`, {
        method: "POST",
        headers: { "x-telegram-bot-api-secret-token": "S3cr3t_token-1" },
        body: update(679892927, "Hi bot! ✓"),
      });
      expect(ok.status).toBe(200);
      expect(await ok.json()).toEqual({ ok: true, accepted: 1 });
      for (let i = 0; i < 100 && sent.length === 0; i++) await Bun.sleep(20);
      expect(sent).toEqual([
        { path: "/bot123456:ABC-bot-token/sendMessage", body: { chat_id: "1561073042", text: "echo: Hi bot! ✓" } },
      ]);
      for (let i = 0; i < 50 && (await gw.store.pendingInbound(10)).length > 0; i++) await Bun.sleep(20);
      expect(await gw.store.pendingInbound(10)).toEqual([]);
      // Telegram retries a delivery: the same update_id is not answered twice.
      const again = await fetch(`${gw.url}/webhook/relay`, {
        method: "POST",
        headers: { "x-telegram-bot-api-secret-token": "S3cr3t_token-1" },
        body: update(679892927, "Hi bot! ✓"),
      });
      expect(await again.json()).toEqual({ ok: true, accepted: 0 });
      // Not stored again, so nothing is left to send it later.
      expect(await gw.store.pendingInbound(10)).toEqual([]);
      expect(sent).toHaveLength(1);
    } finally {
      await platform.stop(true);
      home[Symbol.dispose]();
    }
  });

  test("a failed turn is retried while the gateway runs, and delivered once the model answers", async () => {
    const { home, sent, platform } = await setup();
    try {
      let fail = true;
      const flaky: StreamFn = async function* (req) {
        if (fail) {
          fail = false;
          yield {
            type: "error",
            error: new (await import("../../src/agent/provider-error.ts")).ProviderError(
              "anthropic",
              "anthropic: overloaded (529)",
              { status: 529, retryable: true },
            ),
          };
          return;
        }
        yield* stream(req, new AbortController().signal);
      };
      await using gw = await startTestGateway({ home: home.path, streamFor: () => flaky, retryIntervalMs: 100 });
      await fetch(`${gw.url}/webhook/relay`, {
        method: "POST",
        headers: { "x-telegram-bot-api-secret-token": "S3cr3t_token-1" },
        body: update(11, "retry me"),
      });
      for (let i = 0; i < 150 && sent.length === 0; i++) await Bun.sleep(20);
      expect(sent.map((s) => s.body.text)).toEqual(["echo: retry me"]);
      // Done once delivered: nothing pending is left for the retry loop to send again.
      for (let i = 0; i < 100 && (await gw.store.pendingInbound(10)).length > 0; i++) await Bun.sleep(20);
      expect(await gw.store.pendingInbound(10)).toEqual([]);
      expect(sent).toHaveLength(1);
    } finally {
      await platform.stop(true);
      home[Symbol.dispose]();
    }
  });

  test("a failed send leaves the message pending, and the next start delivers it", async () => {
    const { home, sent, platform } = await setup();
    try {
      const failing: StreamFn = async function* () {
        yield {
          type: "error",
          error: new (await import("../../src/agent/provider-error.ts")).ProviderError(
            "anthropic",
            "anthropic: overloaded (529)",
            { status: 529, retryable: true },
          ),
        };
      };
      {
        await using gw = await startTestGateway({ home: home.path, streamFor: () => failing });
        const r = await fetch(`${gw.url}/webhook/relay`, {
          method: "POST",
          headers: { "x-telegram-bot-api-secret-token": "S3cr3t_token-1" },
          body: update(7, "are you there?"),
        });
        expect(r.status).toBe(200);
        let pending = await gw.store.pendingInbound(10);
        for (let i = 0; i < 100 && pending[0]?.attempts !== 1; i++)
          pending = (await Bun.sleep(20), await gw.store.pendingInbound(10));
        expect(pending.map((p) => [p.id, p.attempts])).toEqual([["relay:7", 1]]);
        expect(pending[0]!.last_error).toContain("overloaded");
      }
      await using gw = await startTestGateway({ home: home.path, streamFor: () => stream });
      for (let i = 0; i < 100 && sent.length === 0; i++) await Bun.sleep(20);
      expect(sent.map((s) => s.body.text)).toEqual(["echo: are you there?"]);
      for (let i = 0; i < 50 && (await gw.store.pendingInbound(10)).length > 0; i++) await Bun.sleep(20);
      expect(await gw.store.pendingInbound(10)).toEqual([]);
    } finally {
      await platform.stop(true);
      home[Symbol.dispose]();
    }
  });
});
