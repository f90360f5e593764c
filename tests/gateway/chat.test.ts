import { describe, expect, test } from "bun:test";
import { copyFileSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import type { StreamFn } from "../../src/agent/loop.ts";
import { ProviderError } from "../../src/agent/provider-error.ts";
import type { ChatRequest, StreamEvent } from "../../src/agent/types.ts";
import { sha256Hex } from "../../src/sandbox/index.ts";
import { startTestGateway } from "../helpers/gateway.ts";
import { pluginPath, readWasm } from "../helpers/plugins.ts";
import { tempDir } from "../helpers/temp.ts";
import { openSocket, type TestSocket } from "../helpers/ws.ts";

type Msg = Record<string, any>;

/** A scripted model: answers each request by a function of it; records requests and aborts. */
function model(answer: (req: ChatRequest, n: number) => StreamEvent[], opts: { delayMs?: number } = {}) {
  const requests: ChatRequest[] = [];
  const aborted: number[] = [];
  const stream: StreamFn = async function* (req, signal) {
    const n = requests.push(structuredClone(req));
    for (const ev of answer(req, n)) {
      if (opts.delayMs) await Bun.sleep(opts.delayMs);
      if (signal.aborted) {
        aborted.push(n);
        yield {
          type: "error",
          error: new ProviderError("anthropic", "anthropic: request aborted", { reason: "aborted" }),
        };
        return;
      }
      yield ev;
    }
  };
  return { stream, requests, aborted };
}

const lastUserText = (req: ChatRequest) => {
  const m = [...req.messages].reverse().find((x) => x.role === "user");
  return (m?.parts[0] as { text?: string } | undefined)?.text ?? "";
};
const echoModel = (opts = {}) =>
  model(
    (req) => [
      { type: "text", text: "you said: " },
      { type: "text", text: lastUserText(req) },
      { type: "usage", input_tokens: 7, output_tokens: 3 },
      { type: "done", stop_reason: "end_turn" },
    ],
    opts,
  );

const eventsFor = (s: TestSocket, id: unknown) =>
  s.received
    .map((r) => r.value as Msg)
    .filter((m) => m.method === "chat.event" && m.params.id === id)
    .map((m) => m.params);

describe("chat.send", () => {
  test("streams chat.event notifications with seq, then the result; the turn is stored", async () => {
    const m = echoModel();
    await using gw = await startTestGateway({ streamFor: () => m.stream });
    await using ws = await openSocket(gw.wsUrl);
    const r = (await ws.call("chat.send", { content: "héllo 🦀" }, 1)) as Msg;
    expect(r.result).toEqual({
      session: "main:ws:local:main",
      agent: "main",
      matched_by: "default",
      text: "you said: héllo 🦀",
      usage: { input_tokens: 7, output_tokens: 3 },
      stop_reason: "end_turn",
    });
    const events = eventsFor(ws, 1);
    expect(events.map((e) => [e.seq, e.event])).toEqual([
      [1, "text"],
      [2, "text"],
      [3, "usage"],
      [4, "done"],
    ]);
    expect(events.every((e) => e.session === "main:ws:local:main")).toBe(true);
    const hist = (await ws.call("chat.history", { session: "main:ws:local:main" })) as Msg;
    expect(hist.result.messages.map((x: Msg) => [x.role, x.parts[0].text])).toEqual([
      ["user", "héllo 🦀"],
      ["assistant", "you said: héllo 🦀"],
    ]);
    expect(hist.result.messages[1].meta).toMatchObject({ provider: "anthropic", stop_reason: "end_turn" });
    // Usage is recorded from the provider's counts and shows in status.
    expect(await gw.store.sumUsage({ session: "main:ws:local:main" })).toMatchObject({
      calls: 1,
      input_tokens: 7,
      output_tokens: 3,
    });
    expect(((await ws.call("status")) as Msg).result.usage_today).toMatchObject({
      calls: 1,
      input_tokens: 7,
      output_tokens: 3,
    });
  });

  test("history is sent back to the model on the next turn", async () => {
    const m = echoModel();
    await using gw = await startTestGateway({ streamFor: () => m.stream });
    await using ws = await openSocket(gw.wsUrl);
    await ws.call("chat.send", { content: "first", peer: "u1" });
    await ws.call("chat.send", { content: "second", peer: "u1" });
    expect(m.requests[1]!.messages.map((x) => [x.role, (x.parts[0] as { text: string }).text])).toEqual([
      ["user", "first"],
      ["assistant", "you said: first"],
      ["user", "second"],
    ]);
  });

  test("after session.reset the next turn starts with no history", async () => {
    const m = echoModel();
    await using gw = await startTestGateway({ streamFor: () => m.stream });
    await using ws = await openSocket(gw.wsUrl);
    await ws.call("chat.send", { content: "remember this", peer: "r" });
    expect(((await ws.call("session.reset", { session: "main:ws:local:r" })) as Msg).result.removed_messages).toBe(2);
    await ws.call("chat.send", { content: "fresh start", peer: "r" });
    expect(m.requests[1]!.messages.map((x) => (x.parts[0] as { text: string }).text)).toEqual(["fresh start"]);
  });

  test("the history window is bounded by memory.episodic_turns", async () => {
    const m = echoModel();
    await using gw = await startTestGateway({ toml: "[memory]\nepisodic_turns = 2\n", streamFor: () => m.stream });
    await using ws = await openSocket(gw.wsUrl);
    for (let i = 0; i < 8; i++) await ws.call("chat.send", { content: `turn ${i}`, peer: "long" });
    // 2 turns × 4 messages = an 8-message window (a floor of 8 kept): the newest 8 of the 14 stored,
    // then the new message — never the whole history, and nothing recent dropped.
    const sent = m.requests.at(-1)!.messages;
    expect(sent.map((x) => (x.parts[0] as { text: string }).text)).toEqual([
      "turn 3",
      "you said: turn 3",
      "turn 4",
      "you said: turn 4",
      "turn 5",
      "you said: turn 5",
      "turn 6",
      "you said: turn 6",
      "turn 7",
    ]);
    expect(sent[0]!.role).toBe("user");
    expect((sent.at(-1)!.parts[0] as { text: string }).text).toBe("turn 7");
  });

  test("bindings route to agents; an explicit agent wins; an unknown agent is -32006; bad params -32602", async () => {
    using home = tempDir();
    home.file(
      "config.toml",
      '[[agents]]\nid = "main"\n[[agents]]\nid = "helper"\nsystem_prompt = "You help."\n[[bindings]]\nagent = "helper"\npeer = "vip"\n',
    );
    const m = echoModel();
    await using gw = await startTestGateway({ home: home.path, streamFor: () => m.stream });
    await using ws = await openSocket(gw.wsUrl);
    const vip = (await ws.call("chat.send", { content: "hi", peer: "vip" })) as Msg;
    expect(vip.result).toMatchObject({ agent: "helper", session: "helper:ws:local:vip", matched_by: "binding.peer" });
    expect(m.requests[0]!.system).toBe("You help.");
    const explicit = (await ws.call("chat.send", { content: "hi", agent: "main", peer: "vip" })) as Msg;
    expect(explicit.result).toMatchObject({ agent: "main", session: "main:ws:local:vip", matched_by: "explicit" });
    expect(((await ws.call("chat.send", { content: "hi", agent: "ghost" })) as Msg).error).toMatchObject({
      code: -32006,
    });
    expect(((await ws.call("chat.send", { content: "" })) as Msg).error).toMatchObject({
      code: -32602,
      data: { field: "content" },
    });
    expect(((await ws.call("chat.send", { content: "x", channel: "Bad Channel" })) as Msg).error).toMatchObject({
      code: -32602,
      data: { field: "channel" },
    });
  });

  test("turns of one session run one at a time, in arrival order", async () => {
    const m = echoModel({ delayMs: 5 });
    await using gw = await startTestGateway({ streamFor: () => m.stream });
    await using ws = await openSocket(gw.wsUrl);
    const replies = await Promise.all(
      ["one", "two", "three"].map((c, i) => ws.call("chat.send", { content: c, peer: "same" }, `r${i}`)),
    );
    expect(replies.map((r) => (r as Msg).result.text)).toEqual(["you said: one", "you said: two", "you said: three"]);
    // Each turn saw every earlier turn: they did not interleave.
    expect(m.requests.map((r) => r.messages.length)).toEqual([1, 3, 5]);
  });

  test("20 sockets chat at once and every event lands on the right request id", async () => {
    const m = echoModel({ delayMs: 1 });
    await using gw = await startTestGateway({ streamFor: () => m.stream });
    const sockets = await Promise.all(Array.from({ length: 20 }, () => openSocket(gw.wsUrl)));
    try {
      const results = await Promise.all(
        sockets.map((s, i) =>
          Promise.all([
            s.call("chat.send", { content: `s${i}a`, peer: `p${i}` }, "A"),
            s.call("chat.send", { content: `s${i}b`, peer: `q${i}` }, "B"),
          ]),
        ),
      );
      results.forEach(([a, b], i) => {
        expect((a as Msg).result.text).toBe(`you said: s${i}a`);
        expect((b as Msg).result.text).toBe(`you said: s${i}b`);
        for (const [id, text] of [
          ["A", `s${i}a`],
          ["B", `s${i}b`],
        ] as const) {
          const ev = eventsFor(sockets[i]!, id);
          expect(ev.map((e) => e.seq)).toEqual([1, 2, 3, 4]);
          expect(
            ev
              .filter((e) => e.event === "text")
              .map((e) => e.data)
              .join(""),
          ).toBe(`you said: ${text}`);
        }
      });
    } finally {
      await Promise.all(sockets.map((s) => s[Symbol.asyncDispose]()));
    }
  });

  test("chat.cancel aborts the running turn; stop_reason cancelled", async () => {
    const m = model(() => Array.from({ length: 200 }, () => ({ type: "text" as const, text: "." })), { delayMs: 5 });
    await using gw = await startTestGateway({ streamFor: () => m.stream });
    await using ws = await openSocket(gw.wsUrl);
    const pending = ws.call("chat.send", { content: "go on forever" }, "long");
    await ws.next((r) => (r.value as Msg).method === "chat.event");
    expect(((await ws.call("chat.cancel", { id: "long" })) as Msg).result).toEqual({ cancelled: 1 });
    const r = (await pending) as Msg;
    expect(r.result.stop_reason).toBe("cancelled");
    expect(m.aborted).toEqual([1]);
    expect(eventsFor(ws, "long").at(-1)).toMatchObject({ event: "done", data: { stop_reason: "cancelled" } });
    expect(((await ws.call("chat.cancel", { id: "nothing" })) as Msg).result).toEqual({ cancelled: 0 });
  });

  test("a client that disconnects mid-turn aborts the model call", async () => {
    const m = model(() => Array.from({ length: 200 }, () => ({ type: "text" as const, text: "." })), { delayMs: 5 });
    await using gw = await startTestGateway({ streamFor: () => m.stream });
    const ws = await openSocket(gw.wsUrl);
    ws.sendJson({ jsonrpc: "2.0", id: 1, method: "chat.send", params: { content: "hi" } });
    await ws.next((r) => (r.value as Msg).method === "chat.event");
    ws.ws.close();
    for (let i = 0; i < 100 && m.aborted.length === 0; i++) await Bun.sleep(10);
    expect(m.aborted).toEqual([1]);
  });

  test("a provider failure is an error event and stop_reason error; the gateway keeps serving", async () => {
    const m = model(() => [
      {
        type: "error",
        error: new ProviderError("openai", "openai: authentication failed (401) — check the API key", { status: 401 }),
      },
    ]);
    await using gw = await startTestGateway({ streamFor: () => m.stream });
    await using ws = await openSocket(gw.wsUrl);
    const r = (await ws.call("chat.send", { content: "hi" }, 9)) as Msg;
    expect(r.result.stop_reason).toBe("error");
    expect(eventsFor(ws, 9).map((e) => e.event)).toEqual(["error", "done"]);
    expect(eventsFor(ws, 9)[0].data).toEqual({
      code: -32003,
      message: "openai: authentication failed (401) — check the API key",
      provider: "openai",
    });
    expect((await ws.call("ping")).result).toBe("pong");
  });

  test("a turn that failed before the model answered leaves no dangling user message; the retry's history is clean", async () => {
    const m = model((_, n) =>
      n === 1
        ? [{ type: "error", error: new ProviderError("openai", "openai: overloaded (529)", { status: 529 }) }]
        : [
            { type: "text", text: "here now" },
            { type: "done", stop_reason: "end_turn" },
          ],
    );
    await using gw = await startTestGateway({ streamFor: () => m.stream });
    await using ws = await openSocket(gw.wsUrl);
    expect(((await ws.call("chat.send", { content: "hello?", peer: "d" })) as Msg).result.stop_reason).toBe("error");
    expect(((await ws.call("chat.send", { content: "hello?", peer: "d" })) as Msg).result.text).toBe("here now");
    // The second call saw one user message, not two in a row.
    expect(m.requests[1]!.messages.map((x) => x.role)).toEqual(["user"]);
    const history = ((await ws.call("chat.history", { session: "main:ws:local:d" })) as Msg).result;
    expect(history.messages.map((x: Msg) => x.role)).toEqual(["user", "assistant"]);
  });

  test("tools run in the sandbox: the model calls the echo plugin and gets its real output", async () => {
    using home = tempDir();
    mkdirSync(join(home.path, "plugins"));
    copyFileSync(pluginPath("echo"), join(home.path, "plugins/echo.wasm"));
    const pin = sha256Hex(await readWasm(pluginPath("echo")));
    home.file("config.toml", `[[plugins]]\nname = "echo"\npath = "plugins/echo.wasm"\nsha256 = "${pin}"\n`);
    const m = model((req, n) =>
      n === 1
        ? [
            { type: "tool_call", id: "tu1", name: "echo", input: { text: "from wasm ✓" } },
            { type: "done", stop_reason: "tool_use" },
          ]
        : [
            { type: "text", text: `tool said: ${(req.messages.at(-1)!.parts[0] as { content: string }).content}` },
            { type: "done", stop_reason: "end_turn" },
          ],
    );
    await using gw = await startTestGateway({ home: home.path, streamFor: () => m.stream });
    await using ws = await openSocket(gw.wsUrl);
    const r = (await ws.call("chat.send", { content: "echo something" }, "t")) as Msg;
    expect(r.result.text).toBe("tool said: from wasm ✓");
    expect(m.requests[0]!.tools.map((t) => t.name)).toEqual(["memory_save", "memory_search", "echo"]);
    const ev = eventsFor(ws, "t");
    expect(ev.map((e) => e.event)).toEqual(["tool_use", "tool_result", "text", "done"]);
    expect(ev[1].data).toEqual({ tool_use_id: "tu1", content: "from wasm ✓", is_error: false });
  });
});

describe("budgets and usage", () => {
  test("over budget, the turn stops with stop_reason budget, an error event -32002, and no model call", async () => {
    const m = model(() => [
      { type: "text", text: "ok" },
      { type: "usage", input_tokens: 320, output_tokens: 3 },
      { type: "done", stop_reason: "end_turn" },
    ]);
    await using gw = await startTestGateway({
      toml: '[[agents]]\nid = "main"\nmax_tokens = 100\n[budgets]\nsession_tokens = 400\n',
      streamFor: () => m.stream,
    });
    await using ws = await openSocket(gw.wsUrl);
    // The estimate (prompt with the tool schemas + max_tokens, under 400) fits; the call then really uses 323 tokens.
    expect(((await ws.call("chat.send", { content: "hi", peer: "b" })) as Msg).result.stop_reason).toBe("end_turn");
    const r = (await ws.call("chat.send", { content: "again", peer: "b" }, "over")) as Msg;
    expect(r.result.stop_reason).toBe("budget");
    const err = eventsFor(ws, "over").find((e) => e.event === "error");
    expect(err.data).toMatchObject({ code: -32002, data: { scope: "session_tokens", used: 323, limit: 400 } });
    expect(m.requests).toHaveLength(1);
  });

  test("usage.get reports tokens and cost per period, from the providers' counts", async () => {
    const m = echoModel();
    await using gw = await startTestGateway({ streamFor: () => m.stream });
    await using ws = await openSocket(gw.wsUrl);
    await ws.call("chat.send", { content: "hi", peer: "u" });
    const r = ((await ws.call("usage.get", { session: "main:ws:local:u" })) as Msg).result;
    expect(r.today).toMatchObject({ calls: 1, input_tokens: 7, output_tokens: 3, unpriced_calls: 0 });
    // claude-sonnet-4-5: $3 / $15 per million tokens.
    expect(r.today.cost_usd).toBeCloseTo((7 * 3 + 3 * 15) / 1e6, 12);
    expect(r.all.calls).toBe(1);
  });
});
