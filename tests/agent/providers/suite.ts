/**
 * The conformance suite every wire API runs against a fake upstream that speaks its format byte for
 * byte, cut into awkward chunks: text, tool calls, the tool-result round trip, and each failure
 * (bad key, 429 + delay, overloaded/5xx, error inside a 200 stream, dropped connection, a body that
 * ends without its marker, cancellation observed by the upstream).
 */
import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import type { ProviderError } from "../../../src/agent/provider-error.ts";
import { withRetries } from "../../../src/agent/retry.ts";
import type {
  ChatMessage,
  ChatRequest,
  Provider,
  ProviderId,
  StreamEvent,
  ToolSpec,
} from "../../../src/agent/types.ts";
import {
  cutsInsideCharacter,
  type RecordedRequest,
  type Reply,
  recordingFetch,
  startFakeUpstream,
} from "../../helpers/fake-upstream.ts";

export const KEY = "sk-test-9f8e7d6c5b4a";

/** A fixture of `tests/fixtures/providers/`, as exact text. */
export const fixture = (path: string): string =>
  readFileSync(join(import.meta.dir, "../../fixtures/providers", path), "utf8");

type Call = { name: string; input: unknown };

export interface WireCase {
  name: ProviderId;
  make(opts: { baseUrl: string; apiKey: string; fetch?: typeof fetch }): Provider;
  contentType: string;
  /** A complete stream of `text` (any text, in 2+ pieces), for cases that need their own words. */
  text(text: string): string;
  /** That stream cut cleanly just before the format's end marker. */
  withoutEndMarker(body: string): string;
  /** The non-ASCII text fixture and its usage totals. */
  unicode: { body: string; text: string; usage: { input_tokens: number; output_tokens: number } };
  textThenTool: { body: string; text: string; call: Call };
  twoTools: { body: string; calls: Call[] };
  midStreamError: { body: string; retryable: boolean };
  /** The provider's "bad key" answer (Gemini: 400 API_KEY_INVALID). */
  authFailure: Reply;
  /** A 429 and the delay it asks for (Retry-After header, or Gemini's RetryInfo in the body). */
  rateLimit: { reply: Reply; waitMs: number };
  /** 529 / 503 overloaded. */
  overloaded: Reply;
  /** An error body, in this API's envelope, whose message is `message`. */
  errorBody(message: string): string;
  /** The key in the right header, the right path, nothing else leaking it. */
  checkAuth(req: RecordedRequest): void;
  /** Asserts the first request: tools in native shape, max tokens, system prompt placement. */
  checkRequest(req: RecordedRequest): void;
  /** The history part of a request body (messages / contents, system message included if any). */
  history(req: RecordedRequest): unknown;
  /** `toolHistory` below in native shape, system prompt included where it goes in the list. */
  expectedToolHistory: unknown;
  /** The history of the second round after `textThenTool`, result `content` for `call`. */
  expectedSecondRound(call: { id: string; name: string; input: unknown; signature?: string }, content: string): unknown;
}

export const collect = async (it: AsyncIterable<StreamEvent>): Promise<StreamEvent[]> => {
  const out: StreamEvent[] = [];
  for await (const e of it) out.push(e);
  return out;
};
export const textOf = (events: StreamEvent[]): string =>
  events.flatMap((e) => (e.type === "text" ? [e.text] : [])).join("");
export const callsOf = (events: StreamEvent[]) => events.flatMap((e) => (e.type === "tool_call" ? [e] : []));
export const errorOf = (e: StreamEvent | undefined): ProviderError => {
  if (e?.type !== "error") throw new Error(`expected an error event, got ${JSON.stringify(e)}`);
  return e.error;
};

export const tools: ToolSpec[] = [
  {
    name: "get_weather",
    description: "Weather for a city",
    input_schema: { type: "object", properties: { city: { type: "string" } }, required: ["city"] },
  },
  {
    name: "get_time",
    description: "Time in a zone",
    input_schema: { type: "object", properties: { tz: { type: "string" } } },
  },
];
export const baseRequest = (over: Partial<ChatRequest> = {}): ChatRequest => ({
  model: "test-model",
  system: "You are terse.",
  maxTokens: 256,
  tools,
  messages: [{ role: "user", parts: [{ type: "text", text: "Weather in Oslo?" }] }],
  ...over,
});

/**
 * A finished tool round: two calls in one assistant turn, their results in two consecutive tool
 * messages (Anthropic must merge them into one user message), the second a failure.
 */
export const toolHistory: ChatMessage[] = [
  { role: "user", parts: [{ type: "text", text: "Weather and time in Oslo?" }] },
  {
    role: "assistant",
    parts: [
      { type: "text", text: "Checking." },
      { type: "tool_use", id: "toolu_A1", name: "get_weather", input: { city: "Oslo" } },
      { type: "tool_use", id: "toolu_B2", name: "get_time", input: { tz: "Europe/Oslo" } },
    ],
  },
  { role: "tool", parts: [{ type: "tool_result", tool_use_id: "toolu_A1", content: "-3°C, snow" }] },
  {
    role: "tool",
    parts: [{ type: "tool_result", tool_use_id: "toolu_B2", content: "clock plugin crashed", is_error: true }],
  },
];

const bytes = (s: string) => new TextEncoder().encode(s).length;

export function wireSuite(c: WireCase): void {
  const reply = (body: Reply["body"], more: Partial<Reply> = {}): Reply => ({
    body,
    headers: { "content-type": c.contentType },
    ...more,
  });
  const provider = (url: string, more: { fetch?: typeof fetch } = {}) => c.make({ baseUrl: url, apiKey: KEY, ...more });

  describe(`${c.name} wire format`, () => {
    test("text only: non-ASCII text cut inside characters and JSON arrives whole, with the provider's usage", async () => {
      await using up = startFakeUpstream([reply(c.unicode.body)]);
      const rec = recordingFetch();
      const events = await collect(provider(up.url, { fetch: rec.fetch }).stream(baseRequest(), {}));
      // The client really read a chunk that ended inside a multi-byte character.
      expect(cutsInsideCharacter(rec.reads[0]!)).toBe(true);
      expect(textOf(events)).toBe(c.unicode.text);
      expect(events.filter((e) => e.type === "text").length).toBeGreaterThan(1);
      expect(events.filter((e) => e.type === "usage")).toEqual([{ type: "usage", ...c.unicode.usage }]);
      expect(events.at(-1)).toEqual({ type: "done", stop_reason: "end_turn" });
      c.checkAuth(up.requests[0]!);
      c.checkRequest(up.requests[0]!);
    });

    test("text then a tool call", async () => {
      await using up = startFakeUpstream([reply(c.textThenTool.body)]);
      const events = await collect(provider(up.url).stream(baseRequest(), {}));
      expect(textOf(events)).toBe(c.textThenTool.text);
      const calls = callsOf(events);
      expect(calls.map(({ name, input }) => ({ name, input }))).toEqual([c.textThenTool.call]);
      expect(calls[0]!.id).toBeTruthy();
      expect(events.indexOf(calls[0]!)).toBeGreaterThan(events.findIndex((e) => e.type === "text"));
      expect(events.at(-1)).toEqual({ type: "done", stop_reason: "tool_use" });
    });

    test("two tool calls in one response, each emitted once and whole", async () => {
      await using up = startFakeUpstream([reply(c.twoTools.body)]);
      const events = await collect(provider(up.url).stream(baseRequest(), {}));
      const calls = callsOf(events);
      expect(calls.map(({ name, input }) => ({ name, input }))).toEqual(c.twoTools.calls);
      expect(new Set(calls.map((x) => x.id)).size).toBe(2);
      expect(events.at(-1)).toEqual({ type: "done", stop_reason: "tool_use" });
    });

    test("history with tool calls and results goes out in the provider's own shape", async () => {
      await using up = startFakeUpstream([reply(c.text("Snowing, and the clock is broken."))]);
      const events = await collect(provider(up.url).stream(baseRequest({ messages: toolHistory }), {}));
      expect(events.at(-1)).toEqual({ type: "done", stop_reason: "end_turn" });
      expect(c.history(up.requests[0]!)).toEqual(c.expectedToolHistory);
    });

    test("two rounds: the second request carries the tool result natively, the system prompt and the key", async () => {
      await using up = startFakeUpstream([reply(c.textThenTool.body), reply(c.unicode.body)]);
      const p = provider(up.url);
      const first = await collect(p.stream(baseRequest(), {}));
      const call = callsOf(first)[0]!;
      const { type: _, ...toolUse } = call;
      const content = "72°F, sunny ☀";
      const messages: ChatMessage[] = [
        ...baseRequest().messages,
        {
          role: "assistant",
          parts: [
            { type: "text", text: textOf(first) },
            { type: "tool_use", ...toolUse },
          ],
        },
        { role: "tool", parts: [{ type: "tool_result", tool_use_id: call.id, content }] },
      ];
      const second = await collect(p.stream(baseRequest({ messages }), {}));
      expect(second.at(-1)).toEqual({ type: "done", stop_reason: "end_turn" });
      expect(up.requests).toHaveLength(2);
      c.checkAuth(up.requests[1]!);
      c.checkRequest(up.requests[1]!);
      expect(c.history(up.requests[1]!)).toEqual(c.expectedSecondRound(toolUse, content));
    });

    test("a bad key: one error naming the provider, never the key, not retryable", async () => {
      await using up = startFakeUpstream([c.authFailure]);
      const events = await collect(withRetries(provider(up.url), { sleep: async () => {} }).stream(baseRequest(), {}));
      expect(events).toHaveLength(1);
      const e = errorOf(events[0]);
      expect(e.message).toStartWith(`${c.name}: authentication failed (${c.authFailure.status})`);
      expect(e.message).toContain("check the API key");
      expect(e.message).not.toContain(KEY);
      expect(e.retryable).toBe(false);
      expect(up.requests).toHaveLength(1);
    });

    test("an error body that echoes the key is scrubbed", async () => {
      await using up = startFakeUpstream([
        {
          status: 500,
          headers: { "content-type": "application/json" },
          body: c.errorBody(`internal error for key ${KEY}`),
        },
      ]);
      const e = errorOf((await collect(provider(up.url).stream(baseRequest(), {}))).at(-1));
      expect(e.message).toStartWith(`${c.name}: HTTP 500: internal error for key`);
      expect(e.message).not.toContain(KEY);
      expect(e.retryable).toBe(true);
    });

    test("429: withRetries waits as long as the upstream asked, then the retry succeeds", async () => {
      await using up = startFakeUpstream([c.rateLimit.reply, reply(c.unicode.body)]);
      const slept: number[] = [];
      const p = withRetries(provider(up.url), { sleep: async (ms) => void slept.push(ms), maxDelayMs: 60_000 });
      const events = await collect(p.stream(baseRequest(), {}));
      expect(slept).toEqual([c.rateLimit.waitMs]);
      expect(up.requests).toHaveLength(2);
      expect(textOf(events)).toBe(c.unicode.text);
      expect(events.some((e) => e.type === "error")).toBe(false);
    });

    test("overloaded is retryable; withRetries gives up after maxAttempts", async () => {
      await using up = startFakeUpstream([c.overloaded]);
      const p = withRetries(provider(up.url), { sleep: async () => {}, maxAttempts: 3 });
      const events = await collect(p.stream(baseRequest(), {}));
      expect(up.requests).toHaveLength(3);
      expect(events).toHaveLength(1);
      const e = errorOf(events[0]);
      expect(e).toMatchObject({ retryable: true, status: c.overloaded.status, reason: "error" });
      expect(e.message).toStartWith(`${c.name}: overloaded (${c.overloaded.status})`);
    });

    test("an error inside a 200 stream ends the stream with an error event", async () => {
      await using up = startFakeUpstream([reply(c.midStreamError.body)]);
      const events = await collect(provider(up.url).stream(baseRequest(), {}));
      expect(textOf(events)).toBe("Hel");
      const e = errorOf(events.at(-1));
      expect(e.message).toStartWith(`${c.name}: error mid-stream: `);
      expect(e.retryable).toBe(c.midStreamError.retryable);
      expect(events.some((x) => x.type === "done")).toBe(false);
    });

    test("a connection dropped before any output is retried", async () => {
      const body = c.unicode.body;
      await using up = startFakeUpstream([reply(body, { dropAfterBytes: 12 }), reply(body)]);
      const events = await collect(withRetries(provider(up.url), { sleep: async () => {} }).stream(baseRequest(), {}));
      expect(up.requests).toHaveLength(2);
      expect(textOf(events)).toBe(c.unicode.text);
      expect(events.at(-1)).toEqual({ type: "done", stop_reason: "end_turn" });
    });

    test("a connection dropped after output: retryable 'stream ended early', but not retried", async () => {
      const body = c.unicode.body;
      await using up = startFakeUpstream([reply(body, { dropAfterBytes: bytes(body) - 3 }), reply(body)]);
      const events = await collect(withRetries(provider(up.url), { sleep: async () => {} }).stream(baseRequest(), {}));
      expect(textOf(events).length).toBeGreaterThan(0);
      const e = errorOf(events.at(-1));
      expect(e).toMatchObject({ retryable: true, reason: "error" });
      expect(e.message).toStartWith(`${c.name}: stream ended early`);
      expect(up.requests).toHaveLength(1);
    });

    test("a body that ends cleanly without the end marker is 'stream ended early'", async () => {
      await using up = startFakeUpstream([reply(c.withoutEndMarker(c.text("cut short")))]);
      const events = await collect(provider(up.url).stream(baseRequest(), {}));
      const e = errorOf(events.at(-1));
      expect(e).toMatchObject({ retryable: true, reason: "error" });
      expect(e.message).toStartWith(`${c.name}: stream ended early`);
      expect(events.some((x) => x.type === "done" || x.type === "usage")).toBe(false);
    });

    test("cancellation mid-stream aborts the HTTP request (the upstream sees it) and ends as aborted", async () => {
      // All text in ONE chunk, then a stall: events already decoded must not leak out after the abort.
      const body = c.unicode.body;
      await using up = startFakeUpstream([
        reply([new TextEncoder().encode(body)], { hangAfterBytes: bytes(body) - 3 }),
      ]);
      const ac = new AbortController();
      const events: StreamEvent[] = [];
      for await (const e of provider(up.url).stream(baseRequest(), { signal: ac.signal })) {
        events.push(e);
        if (e.type === "text" && !ac.signal.aborted) ac.abort();
      }
      expect(events.filter((e) => e.type === "text")).toHaveLength(1);
      const e = errorOf(events.at(-1));
      expect(e.reason).toBe("aborted");
      expect(e.retryable).toBe(false);
      expect(await up.waitForAbort()).toBe(true);
      expect(up.requests[0]!.aborted).toBe(true);
    });

    test("cancellation while the upstream has stalled ends the stream at once (the signal reaches fetch)", async () => {
      const body = c.unicode.body;
      // Everything but the end marker, then silence with the connection open.
      await using up = startFakeUpstream([reply(body, { hangAfterBytes: bytes(body) - 3 })]);
      const ac = new AbortController();
      const events: StreamEvent[] = [];
      let abortedAt = 0;
      let scheduled = false;
      for await (const e of provider(up.url).stream(baseRequest(), { signal: ac.signal })) {
        events.push(e);
        if (e.type === "text" && !scheduled) {
          scheduled = true;
          setTimeout(() => ((abortedAt = performance.now()), ac.abort()), 150);
        }
      }
      expect(performance.now() - abortedAt).toBeLessThan(500);
      expect(textOf(events).length).toBeGreaterThan(0);
      expect(errorOf(events.at(-1)).reason).toBe("aborted");
      expect(await up.waitForAbort()).toBe(true);
    });
  });
}
