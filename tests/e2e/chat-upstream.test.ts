/**
 * End to end: a WebSocket client, the gateway, the agent loop, a real wire provider, and a fake
 * upstream speaking Anthropic's format on loopback. Cancelling or disconnecting must reach the
 * upstream as an aborted HTTP request.
 */
import { describe, expect, test } from "bun:test";
import { startFakeUpstream, sse } from "../helpers/fake-upstream.ts";
import { startTestGateway } from "../helpers/gateway.ts";
import { openSocket } from "../helpers/ws.ts";

type Msg = Record<string, any>;
const KEY = "sk-ant-e2e-0123456789";
const start = {
  type: "message_start",
  message: {
    id: "m",
    type: "message",
    role: "assistant",
    model: "claude",
    content: [],
    stop_reason: null,
    usage: { input_tokens: 20, output_tokens: 1 },
  },
};
const textStream = (pieces: string[]) =>
  sse(
    [
      start,
      { type: "content_block_start", index: 0, content_block: { type: "text", text: "" } },
      ...pieces.map((t) => ({ type: "content_block_delta", index: 0, delta: { type: "text_delta", text: t } })),
      { type: "content_block_stop", index: 0 },
      { type: "message_delta", delta: { stop_reason: "end_turn" }, usage: { output_tokens: 9 } },
      { type: "message_stop" },
    ],
    { named: true },
  );
const config = (url: string) =>
  `[[agents]]\nid = "main"\nprovider = "anthropic"\nmodel = "claude-sonnet-4-5"\nbase_url = "${url}"\n# A custom base_url gets no provider-wide key unless the agent names it (finding 13).\napi_key_env = "ANTHROPIC_API_KEY"\nsystem_prompt = "Be kind."\n`;

describe("chat through a real provider against a fake Anthropic upstream", () => {
  test("a turn streams, is stored, and the upstream got the right request", async () => {
    await using up = startFakeUpstream([{ body: textStream(["Hej ", "då 👋"]) }]);
    await using gw = await startTestGateway({ toml: config(up.url), env: { ANTHROPIC_API_KEY: KEY } });
    await using ws = await openSocket(gw.wsUrl);
    const r = (await ws.call("chat.send", { content: "hello", peer: "e2e" }, 1)) as Msg;
    expect(r.result).toMatchObject({
      text: "Hej då 👋",
      stop_reason: "end_turn",
      usage: { input_tokens: 20, output_tokens: 9 },
    });
    expect(up.requests[0]!.headers["x-api-key"]).toBe(KEY);
    expect(up.requests[0]!.body).toMatchObject({
      model: "claude-sonnet-4-5",
      system: "Be kind.",
      messages: [{ role: "user", content: "hello" }],
    });
    expect((await gw.store.getSession("main:ws:local:e2e"))?.message_count).toBe(2);
    expect(gw.logs.join("\n")).not.toContain(KEY);
  });

  test("chat.cancel aborts the upstream HTTP request", async () => {
    await using up = startFakeUpstream([{ body: textStream(Array.from({ length: 100 }, () => "word ")), delayMs: 15 }]);
    await using gw = await startTestGateway({ toml: config(up.url), env: { ANTHROPIC_API_KEY: KEY } });
    await using ws = await openSocket(gw.wsUrl);
    const pending = ws.call("chat.send", { content: "talk a lot" }, "c1");
    await ws.next((m) => (m.value as Msg).method === "chat.event" && (m.value as Msg).params.event === "text");
    await ws.call("chat.cancel", { id: "c1" });
    expect(((await pending) as Msg).result.stop_reason).toBe("cancelled");
    for (let i = 0; i < 100 && up.aborted === 0; i++) await Bun.sleep(10);
    expect(up.aborted).toBe(1);
  });

  test("a client disconnect aborts the upstream HTTP request", async () => {
    await using up = startFakeUpstream([{ body: textStream(Array.from({ length: 100 }, () => "word ")), delayMs: 15 }]);
    await using gw = await startTestGateway({ toml: config(up.url), env: { ANTHROPIC_API_KEY: KEY } });
    const ws = await openSocket(gw.wsUrl);
    ws.sendJson({ jsonrpc: "2.0", id: 1, method: "chat.send", params: { content: "talk" } });
    await ws.next((m) => (m.value as Msg).method === "chat.event" && (m.value as Msg).params.event === "text");
    ws.ws.close();
    for (let i = 0; i < 100 && up.aborted === 0; i++) await Bun.sleep(10);
    expect(up.aborted).toBe(1);
  });

  test("a missing API key is a clear provider error, and the upstream says 401", async () => {
    await using up = startFakeUpstream([
      {
        status: 401,
        body: [
          new TextEncoder().encode(
            '{"type":"error","error":{"type":"authentication_error","message":"invalid x-api-key"}}',
          ),
        ],
      },
    ]);
    await using gw = await startTestGateway({ toml: config(up.url) });
    await using ws = await openSocket(gw.wsUrl);
    const r = (await ws.call("chat.send", { content: "hi" }, 5)) as Msg;
    expect(r.result.stop_reason).toBe("error");
    const err = ws.received.map((m) => m.value as Msg).find((m) => m.params?.event === "error");
    expect(err?.params.data).toEqual({
      code: -32003,
      message: "anthropic: authentication failed (401) — check the API key",
      provider: "anthropic",
    });
    expect(up.requests[0]!.headers["x-api-key"]).toBeUndefined();
  });
});

test("the gateway process takes the API key from its environment (ANTHROPIC_API_KEY)", async () => {
  const { spawnGateway } = await import("../helpers/cli.ts");
  const { tempDir } = await import("../helpers/temp.ts");
  await using up = startFakeUpstream([{ body: textStream(["ok"]) }]);
  using home = tempDir();
  home.file("config.toml", config(up.url));
  await using gw = await spawnGateway(["--port", "0"], { EXOCLAW_HOME: home.path, ANTHROPIC_API_KEY: KEY });
  await using ws = await openSocket(`ws://127.0.0.1:${gw.port}/ws`);
  expect(((await ws.call("chat.send", { content: "hi" })) as Msg).result.text).toBe("ok");
  expect(up.requests[0]!.headers["x-api-key"]).toBe(KEY);
  expect(gw.lines.join("")).not.toContain(KEY);
});
