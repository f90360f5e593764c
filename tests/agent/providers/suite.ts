/**
 * The conformance suite every wire API runs against a fake upstream that speaks its format
 * byte for byte, written in awkward chunks: text, tool calls, the tool-result round trip, and
 * each failure (401, 429 + Retry-After, overloaded/5xx, error mid-stream, dropped connection,
 * cancellation observed by the upstream).
 */
import { describe, expect, test } from "bun:test";
import { runTurn } from "../../../src/agent/loop.ts";
import { withRetries } from "../../../src/agent/retry.ts";
import type { ChatRequest, Provider, StreamEvent, ToolSpec } from "../../../src/agent/types.ts";
import { type RecordedRequest, type Reply, startFakeUpstream } from "../../helpers/fake-upstream.ts";

export const KEY = "sk-test-9f8e7d6c5b4a";

export interface WireCase {
  name: string;
  make(baseUrl: string, apiKey: string): Provider;
  /** Content type of a streaming response. */
  contentType: string;
  /** A complete response streaming `text` (in 2+ pieces) with usage 10 in / 5 out. */
  text(text: string): string;
  /** Fixture: text then one tool call; the expected events (besides usage/done). */
  textThenTool: { body: string; text: string; call: { name: string; input: unknown } };
  /** Two tool calls in one response. */
  twoTools: { body: string; calls: { name: string; input: unknown }[] };
  /** A 200 stream that breaks with the provider's own mid-stream error. */
  midStreamError: string;
  /** Error response bodies. */
  errorBody(status: number): string;
  /** Extra headers on a 429 (Retry-After, or none for Gemini, which puts RetryInfo in the body). */
  rateLimitHeaders: Record<string, string>;
  /** The delay the provider should report for the 429 above. */
  rateLimitDelayMs: number;
  /** Asserts where the key went. */
  checkAuth(req: RecordedRequest): void;
  /** Asserts the request that carried the tool result back: its exact native shape, and the system prompt placement. */
  checkToolResultRequest(req: RecordedRequest): void;
  /**
   * In a real two-round loop (first response = textThenTool), the part of the second request that
   * carries the result of `call` back, in the provider's native shape.
   */
  nativeToolResult(req: RecordedRequest, call: { id: string; name: string }, content: string): unknown;
  expectedToolResult(call: { id: string; name: string }, content: string): unknown;
  /** True when the format has a terminal marker whose absence means the stream broke. */
}

export const collect = async (it: AsyncIterable<StreamEvent>) => {
  const out: StreamEvent[] = [];
  for await (const e of it) out.push(e);
  return out;
};

const tools: ToolSpec[] = [{ name: "get_weather", description: "Weather for a city", input_schema: { type: "object", properties: { city: { type: "string" } }, required: ["city"] } }];
export const baseRequest = (over: Partial<ChatRequest> = {}): ChatRequest => ({
  model: "test-model",
  system: "You are terse.",
  maxTokens: 256,
  tools,
  messages: [{ role: "user", parts: [{ type: "text", text: "Weather in Oslo?" }] }],
  ...over,
});

/** The two-round history: the model called get_weather (id call_1), the tool answered. */
export const toolRoundHistory: ChatRequest["messages"] = [
  { role: "user", parts: [{ type: "text", text: "Weather in Oslo?" }] },
  { role: "assistant", parts: [{ type: "text", text: "Checking." }, { type: "tool_use", id: "call_1", name: "get_weather", input: { city: "Oslo" } }] },
  { role: "tool", parts: [{ type: "tool_result", tool_use_id: "call_1", content: "-3°C, snow", is_error: false }] },
];

const reply = (c: WireCase, body: string, more: Partial<Reply> = {}): Reply => ({ body, headers: { "content-type": c.contentType }, ...more });

export function wireSuite(c: WireCase): void {
  describe(`${c.name} wire format`, () => {
    test("text only, split at awkward byte boundaries (inside JSON and inside UTF-8 characters)", async () => {
      await using up = startFakeUpstream([reply(c, c.text("Grüße aus Oslo ❄️ — 🦀"))]);
      const events = await collect(c.make(up.url, KEY).stream(baseRequest(), {}));
      expect(events.filter((e) => e.type === "text").map((e) => (e as { text: string }).text).join("")).toBe("Grüße aus Oslo ❄️ — 🦀");
      expect(events.filter((e) => e.type === "text").length).toBeGreaterThan(1);
      expect(events.at(-2)).toEqual({ type: "usage", input_tokens: 10, output_tokens: 5 });
      expect(events.at(-1)).toEqual({ type: "done", stop_reason: "end_turn" });
      c.checkAuth(up.requests[0]!);
    });

    test("text then a tool call", async () => {
      await using up = startFakeUpstream([reply(c, c.textThenTool.body)]);
      const events = await collect(c.make(up.url, KEY).stream(baseRequest(), {}));
      expect(events.filter((e) => e.type === "text").map((e) => (e as { text: string }).text).join("")).toBe(c.textThenTool.text);
      const calls = events.filter((e) => e.type === "tool_call");
      expect(calls).toHaveLength(1);
      expect(calls[0]).toMatchObject({ name: c.textThenTool.call.name, input: c.textThenTool.call.input });
      expect((calls[0] as { id: string }).id).toBeString();
      expect(events.at(-1)).toEqual({ type: "done", stop_reason: "tool_use" });
    });

    test("two tool calls in one response", async () => {
      await using up = startFakeUpstream([reply(c, c.twoTools.body)]);
      const events = await collect(c.make(up.url, KEY).stream(baseRequest(), {}));
      const calls = events.filter((e) => e.type === "tool_call") as { id: string; name: string; input: unknown }[];
      expect(calls.map(({ name, input }) => ({ name, input }))).toEqual(c.twoTools.calls);
      expect(new Set(calls.map((x) => x.id)).size).toBe(2);
    });

    test("the tool result goes back in the provider's own shape, system prompt where the API wants it", async () => {
      await using up = startFakeUpstream([reply(c, c.text("It is snowing."))]);
      const events = await collect(c.make(up.url, KEY).stream(baseRequest({ messages: toolRoundHistory }), {}));
      expect(events.at(-1)).toEqual({ type: "done", stop_reason: "end_turn" });
      c.checkToolResultRequest(up.requests[0]!);
    });

    test("a two-round tool loop through runTurn: the second request carries the result in native shape", async () => {
      await using up = startFakeUpstream([reply(c, c.textThenTool.body), reply(c, c.text("Done."))]);
      const provider = c.make(up.url, KEY);
      const ran: string[] = [];
      const result = await runTurn(
        { model: "test-model", system: "You are terse.", maxTokens: 256, maxToolRounds: 3, history: [], user: { role: "user", parts: [{ type: "text", text: "Go" }] } },
        {
          stream: (req, signal) => provider.stream(req, { signal }),
          tools: { specs: () => baseRequest().tools, run: async (name) => (ran.push(name), { content: "72°F, sunny ☀", is_error: false }) },
          signal: new AbortController().signal,
          emit: () => {},
        },
      );
      expect(result.stop_reason).toBe("end_turn");
      expect(ran).toEqual([c.textThenTool.call.name]);
      expect(up.requests).toHaveLength(2);
      const call = result.messages[1]!.parts.find((p) => p.type === "tool_use") as { id: string; name: string };
      expect(c.nativeToolResult(up.requests[1]!, call, "72°F, sunny ☀")).toEqual(c.expectedToolResult(call, "72°F, sunny ☀"));
    });

    test("401/invalid key: a clear error naming the provider, never the key", async () => {
      await using up = startFakeUpstream([{ status: c.name === "gemini" ? 400 : 401, body: [new TextEncoder().encode(c.errorBody(401))] }]);
      const events = await collect(c.make(up.url, KEY).stream(baseRequest(), {}));
      expect(events).toHaveLength(1);
      const e = (events[0] as { error: { message: string; retryable: boolean } }).error;
      expect(e.message).toStartWith(`${c.name}: authentication failed`);
      expect(e.message).not.toContain(KEY);
      expect(e.retryable).toBe(false);
    });

    test("429 honours the upstream's delay and the retry succeeds", async () => {
      await using up = startFakeUpstream([
        { status: 429, headers: c.rateLimitHeaders, body: [new TextEncoder().encode(c.errorBody(429))] },
        reply(c, c.text("after the wait")),
      ]);
      const slept: number[] = [];
      const p = withRetries(c.make(up.url, KEY), { sleep: async (ms) => void slept.push(ms), maxDelayMs: 60_000 });
      const events = await collect(p.stream(baseRequest(), {}));
      expect(slept).toEqual([c.rateLimitDelayMs]);
      expect(up.requests).toHaveLength(2);
      expect(events.filter((e) => e.type === "text").map((e) => (e as { text: string }).text).join("")).toBe("after the wait");
    });

    test("overloaded / 5xx is retryable, and retries give up after maxAttempts", async () => {
      const status = c.name === "anthropic" ? 529 : 503;
      await using up = startFakeUpstream([{ status, body: [new TextEncoder().encode(c.errorBody(status))] }]);
      const p = withRetries(c.make(up.url, KEY), { sleep: async () => {}, maxAttempts: 3 });
      const events = await collect(p.stream(baseRequest(), {}));
      expect(up.requests).toHaveLength(3);
      const e = (events.at(-1) as { error: { message: string; retryable: boolean; status?: number } }).error;
      expect(e.retryable).toBe(true);
      expect(e.status).toBe(status);
      expect(e.message).toStartWith(`${c.name}: `);
    });

    test("an error inside a 200 stream ends the stream with an error event", async () => {
      await using up = startFakeUpstream([reply(c, c.midStreamError)]);
      const events = await collect(c.make(up.url, KEY).stream(baseRequest(), {}));
      expect(events.some((e) => e.type === "text")).toBe(true);
      const last = events.at(-1)!;
      expect(last.type).toBe("error");
      expect((last as { error: { message: string } }).error.message).toMatch(new RegExp(`^${c.name}: .*mid-stream`));
    });

    test("a connection dropped mid-stream is a retryable error, and no retry happens after text was sent", async () => {
      await using up = startFakeUpstream([reply(c, c.text("this will be cut off somewhere in the middle"), { dropAfter: 6 })]);
      const p = withRetries(c.make(up.url, KEY), { sleep: async () => {} });
      const events = await collect(p.stream(baseRequest(), {}));
      const last = events.at(-1) as { type: string; error: { retryable: boolean; reason: string } };
      expect(last.type).toBe("error");
      expect(last.error.retryable).toBe(true);
      expect(last.error.reason).toBe("error");
      expect(up.requests).toHaveLength(events.some((e) => e.type === "text") ? 1 : 3);
    });

    test("cancellation mid-stream aborts the HTTP request (the upstream sees it) and ends as aborted", async () => {
      await using up = startFakeUpstream([reply(c, c.text("slow ".repeat(60)), { delayMs: 10 })]);
      const ac = new AbortController();
      const events: StreamEvent[] = [];
      for await (const e of c.make(up.url, KEY).stream(baseRequest(), { signal: ac.signal })) {
        events.push(e);
        if (e.type === "text") ac.abort();
      }
      const last = events.at(-1) as { type: string; error: { reason: string } };
      expect(last.type).toBe("error");
      expect(last.error.reason).toBe("aborted");
      for (let i = 0; i < 50 && up.aborted === 0; i++) await Bun.sleep(10);
      expect(up.aborted).toBe(1);
    });
  });
}
