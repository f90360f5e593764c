/**
 * Fuzzing what a hostile plugin answers (issue 15): a real .wasm fixture (tests/fixtures/plugins/
 * mirror.ts) outputs exactly what the test tells it — describe its config's `describe`, call its
 * input's `raw` or `hex` bytes, parse_incoming the webhook body, format_outgoing the reply text —
 * so fast-check drives every output: arbitrary bytes, JSON of every shape, wrong field types, huge
 * values. Properties: a clear error naming the plugin, never a crash or an unhandled rejection; the
 * gateway still answers `ping` and `/health`, and later messages are still worked off.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import fc from "fast-check";
import type { StreamFn } from "../../src/agent/loop.ts";
import { SandboxError } from "../../src/sandbox/errors.ts";
import { startTestGateway, type TestGateway } from "../helpers/gateway.ts";
import { fixturePath, grant, readWasm, startTestHost, type TestHost } from "../helpers/plugins.ts";
import { openSocket, type TestSocket } from "../helpers/ws.ts";
import { eventually, heapBack, heapSnapshot, params, TIMEOUT, warmUp } from "./_fuzz.ts";

const TOOL_DESCRIBE = {
  abi: 1,
  name: "mirror",
  version: "1.0.0",
  kind: "tool",
  description: "d",
  tools: [{ name: "mirror", description: "m", input_schema: { type: "object" } }],
};
const CHANNEL_DESCRIBE = {
  abi: 1,
  name: "mirror",
  version: "1.0.0",
  kind: "channel",
  description: "d",
  channel: { id: "mirror", verify: "none" },
  wants: { hosts: [], paths: [], secrets: [] },
};

const unhandled: unknown[] = [];
const onUnhandled = (e: unknown) => void unhandled.push(e);
beforeAll(() => process.on("unhandledRejection", onUnhandled));
afterAll(() => void process.off("unhandledRejection", onUnhandled));

/** Any JSON value, deep or wide, with the odd huge string. */
const anyJson = fc.oneof(
  { weight: 3, arbitrary: fc.jsonValue({ maxDepth: 4 }) },
  { weight: 1, arbitrary: fc.nat(200_000).map((n) => "x".repeat(n)) },
  { weight: 1, arbitrary: fc.integer({ min: 1, max: 300 }).map((d) => "[".repeat(d) + "]".repeat(d)) },
);
/** A valid shape with one field replaced by something of the wrong type or size. */
function mutated(base: Record<string, unknown>): fc.Arbitrary<unknown> {
  const keys = Object.keys(base);
  return fc
    .record({
      key: fc.constantFrom(...keys, "tools.0.name", "tools.0.input_schema", "channel.verify", "extra"),
      value: anyJson,
    })
    .map(({ key, value }) => {
      const copy = structuredClone(base) as Record<string, any>;
      const path = key.split(".");
      let at: any = copy;
      for (const p of path.slice(0, -1)) at = at?.[p] ?? (at[p] = {});
      if (at && typeof at === "object") at[path.at(-1)!] = value;
      return copy;
    });
}
/** Output text: raw bytes' worth of strings, JSON of any shape, or a mutated valid answer. */
const outputText = (valid: Record<string, unknown>) =>
  fc.oneof(
    fc.string({ unit: "binary", maxLength: 300 }),
    anyJson.map((j) => JSON.stringify(j)),
    mutated(valid).map((j) => JSON.stringify(j)),
  );

describe("describe", () => {
  let t: TestHost;
  let wasm: Uint8Array;
  beforeAll(async () => {
    t = startTestHost();
    wasm = await readWasm(fixturePath("mirror"));
  });
  afterAll(() => t.host.stop());

  test(
    "whatever describe answers: the plugin loads, or its load fails with a SandboxError naming it",
    async () => {
      await fc.assert(
        fc.asyncProperty(fc.oneof(outputText(TOOL_DESCRIBE), outputText(CHANNEL_DESCRIBE)), async (text) => {
          let loaded = false;
          try {
            await t.host.load(grant("mirror", { config: { describe: text } }), wasm);
            loaded = true;
          } catch (e) {
            expect(e).toBeInstanceOf(SandboxError);
            expect((e as Error).message).toStartWith("plugin mirror: ");
            expect((e as Error).message.length).toBeLessThan(2000);
          }
          if (loaded) {
            const d = t.host.get("mirror")!.description;
            expect(["tool", "channel"]).toContain(d.kind);
            t.host.unload("mirror");
          }
        }),
        params(25),
      );
      expect(unhandled).toEqual([]);
    },
    TIMEOUT,
  );
});

describe("call", () => {
  let t: TestHost;
  beforeAll(async () => {
    t = startTestHost();
    await t.host.load(grant("mirror"), await readWasm(fixturePath("mirror")));
  });
  afterAll(() => t.host.stop());

  const hostile = fc.oneof(
    outputText({ content: "ok", is_error: false }).map((raw) => ({ raw })),
    fc.uint8Array({ minLength: 1, maxLength: 300 }).map((b) => ({ hex: Buffer.from(b).toString("hex") })),
    // Huge outputs from a small input: up to 3 MiB of content (the host's output cap is 1 MiB).
    fc.nat(3 * 1024).map((n) => ({ raw: "y".repeat(1024), repeat: n })),
    fc.nat(3 * 1024).map((n) => ({ raw: `{"content":"${"y".repeat(1024)}"}`, repeat: n })),
  );

  test(
    "whatever call answers: a {content} result, or a SandboxError naming the plugin; the next call still works",
    async () => {
      await fc.assert(
        fc.asyncProperty(hostile, async (input) => {
          try {
            const r = await t.host.callTool("mirror", "mirror", input);
            expect(typeof r.content).toBe("string");
            expect(r.is_error === undefined || typeof r.is_error === "boolean").toBe(true);
          } catch (e) {
            expect(e).toBeInstanceOf(SandboxError);
            expect((e as Error).message).toContain("mirror");
          }
        }),
        params(40),
      );
      expect(await t.host.callTool("mirror", "mirror", { raw: '{"content":"still here"}' })).toEqual({
        content: "still here",
        is_error: false,
      });
      expect(unhandled).toEqual([]);
    },
    TIMEOUT,
  );
});

describe("over a gateway", () => {
  let gw: TestGateway;
  let ws: TestSocket;
  /** What the scripted model does next: call the mirror tool with this input, or answer with this text. */
  let toolInput: unknown = null;
  let replyText = "fine";
  const toolResults: unknown[] = [];
  const stream: StreamFn = async function* (req) {
    const last = req.messages.at(-1)!;
    const result = last.parts.find((p) => p.type === "tool_result");
    if (toolInput !== null && !result) {
      yield { type: "tool_call", id: "tu1", name: "mirror", input: toolInput as Record<string, unknown> };
      return yield { type: "done", stop_reason: "tool_use" };
    }
    if (result) toolResults.push(result);
    yield { type: "text", text: replyText };
    yield { type: "done", stop_reason: "end_turn" };
  };
  beforeAll(async () => {
    const pin = new Bun.CryptoHasher("sha256").update(await readWasm(fixturePath("mirror"))).digest("hex");
    const toml =
      `[[plugins]]\nname = "mirror"\npath = "${fixturePath("mirror")}"\nsha256 = "${pin}"\n\n` +
      `[[plugins]]\nname = "mirrorch"\npath = "${fixturePath("mirror")}"\nsha256 = "${pin}"\nconfig = { describe = ${JSON.stringify(JSON.stringify({ ...CHANNEL_DESCRIBE, name: "mirrorch" }))} }\n\n` +
      `[channels.mirror]\nplugin = "mirrorch"\ndm_policy = "open"\nrate_per_minute = 0\n\n[memory]\nepisodic_turns = 1\n`;
    gw = await startTestGateway({ toml, streamFor: () => stream, retryIntervalMs: 60_000 });
    ws = await openSocket(gw.wsUrl);
    // Both real: a vacuous pass (the tool unknown, the channel unloaded) would prove nothing.
    expect(gw.plugins.list().map((p) => [p.name, p.state])).toEqual([
      ["mirror", "loaded"],
      ["mirrorch", "loaded"],
    ]);
  });
  afterAll(async () => {
    await ws[Symbol.asyncDispose]();
    await gw[Symbol.asyncDispose]();
  });
  /** No channel message still queued or being answered. */
  const settled = () =>
    eventually(async () => (await gw.store.pendingInbound(1000)).every((m) => m.attempts > 0), 10_000);
  const alive = async () => {
    expect((await ws.call("ping")).result).toBe("pong");
    expect((await fetch(`${gw.url}/health`)).status).toBe(200);
  };

  test(
    "a tool call answered with garbage: the model gets a tool error naming the plugin, the turn finishes",
    async () => {
      await fc.assert(
        fc.asyncProperty(outputText({ content: "ok" }), async (raw) => {
          toolInput = { raw };
          toolResults.length = 0;
          const r = (await ws.call("chat.send", { content: "use the tool" })) as Record<string, any>;
          expect(r.result?.stop_reason).toBe("end_turn");
          expect(toolResults.length).toBe(1);
          const res = toolResults[0] as { content: string; is_error?: boolean };
          if (res.is_error) expect(res.content).toContain("mirror");
        }),
        params(10),
      );
      // The tool is real: a well-formed answer reaches the model as it is.
      toolInput = { raw: '{"content":"real answer"}' };
      toolResults.length = 0;
      await ws.call("chat.send", { content: "once more" });
      expect(toolResults).toEqual([
        { type: "tool_result", tool_use_id: "tu1", content: "real answer", is_error: false },
      ]);
      toolInput = null;
      await alive();
    },
    TIMEOUT,
  );

  test(
    "parse_incoming answering garbage: the webhook gets a 2xx/4xx or the documented 502 naming the plugin, never another 5xx",
    async () => {
      const property = fc.asyncProperty(
        fc.oneof(
          outputText({ messages: [{ id: "m1", account: "a", peer: "p", text: "hi" }] }),
          fc
            .record(
              {
                messages: fc.array(
                  fc.record(
                    { id: fc.string(), account: fc.string(), peer: fc.string(), text: anyJson },
                    { requiredKeys: [] },
                  ),
                  { maxLength: 3 },
                ),
                reply: anyJson,
              },
              { requiredKeys: ["messages"] },
            )
            .map((o) => JSON.stringify(o)),
        ),
        async (body) => {
          const r = await fetch(`${gw.url}/webhook/mirror`, {
            method: "POST",
            headers: { "content-type": "application/json" },
            body,
          });
          const text = await r.text();
          let own: unknown;
          try {
            own = (JSON.parse(body) as { reply?: { status?: unknown } })?.reply?.status;
          } catch {
            own = undefined;
          }
          if (r.status >= 500 && r.status !== own) {
            // The outside is told which channel failed, not the plugin's words; the log names the plugin.
            expect(r.status).toBe(502);
            expect(text).toContain("channel mirror: the plugin could not read this request");
            expect(gw.logs.some((l) => l.includes('"plugin":"mirrorch"') || l.includes("plugin mirrorch"))).toBe(true);
          }
        },
      );
      // A warm-up, then the baseline the heap must be back near after the fuzz.
      await fc.assert(property, warmUp(20));
      await settled();
      gw.logs.length = 0;
      const baseline = heapSnapshot();
      // One round of the fuzz: run here, and again by heapBack when the heap is over its limit.
      const round = async () => {
        await fc.assert(property, params(40));
        await settled();
      };
      await round();
      await alive();
      gw.logs.length = 0;
      expect(
        await heapBack(baseline, async () => {
          await round();
          gw.logs.length = 0;
        }),
      ).toBeNull();
    },
    TIMEOUT,
  );

  test(
    "format_outgoing answering garbage: the reply fails to send with an error naming the plugin and waits in the inbox, nothing crashes",
    async () => {
      let n = 0;
      await fc.assert(
        fc.asyncProperty(
          outputText({ requests: [{ method: "POST", url: "http://127.0.0.1:9/x", headers: {}, body: "" }] }),
          async (text) => {
            replyText = text;
            const id = `fo-${++n}`;
            const body = JSON.stringify({ messages: [{ id, account: "a", peer: `p${n}`, text: "hello" }] });
            const r = await fetch(`${gw.url}/webhook/mirror`, {
              method: "POST",
              headers: { "content-type": "application/json" },
              body,
            });
            const answer = await r.text();
            if (r.status >= 500) {
              expect(r.status).toBe(502);
              expect(answer).toContain("mirrorch");
            }
            // Handled: sent (an empty request list is a valid answer), or kept with the reason.
            expect(
              await eventually(
                async () => !(await gw.store.pendingInbound(1000)).some((m) => m.id.endsWith(id) && m.attempts === 0),
                10_000,
              ),
            ).toBe(true);
            const kept = (await gw.store.pendingInbound(1000)).find((m) => m.id.endsWith(id));
            if (kept) {
              // Why it waits, briefly: the plugin's answer was unusable (named), or its request was refused.
              expect((kept.last_error ?? "").length).toBeGreaterThan(0);
              expect((kept.last_error ?? "").length).toBeLessThan(1000);
              if (/format_outgoing/.test(kept.last_error ?? ""))
                expect(kept.last_error).toStartWith("plugin mirrorch: format_outgoing");
            }
          },
        ),
        params(15),
      );
      // A reply the plugin cannot format is kept, with the reason naming the plugin.
      replyText = "not a send request";
      const body = JSON.stringify({ messages: [{ id: "fo-last", account: "a", peer: "plast", text: "hello" }] });
      expect(
        (
          await fetch(`${gw.url}/webhook/mirror`, {
            method: "POST",
            headers: { "content-type": "application/json" },
            body,
          })
        ).status,
      ).toBe(200);
      expect(
        await eventually(
          async () => ((await gw.store.pendingInbound(1000)).find((m) => m.id.endsWith("fo-last"))?.attempts ?? 0) > 0,
          10_000,
        ),
      ).toBe(true);
      const kept = (await gw.store.pendingInbound(1000)).find((m) => m.id.endsWith("fo-last"))!;
      expect(kept.last_error).toStartWith("plugin mirrorch: format_outgoing returned invalid JSON");
      replyText = "fine";
      await alive();
      expect(unhandled).toEqual([]);
    },
    TIMEOUT,
  );
});
