import { describe, expect, test } from "bun:test";
import { ProviderError } from "../../../src/agent/provider-error.ts";
import { createAnthropicProvider } from "../../../src/agent/providers/anthropic.ts";
import { createOpenAIChatProvider } from "../../../src/agent/providers/openai-chat.ts";
import { retryDelay, withFallbacks, withRetries } from "../../../src/agent/retry.ts";
import type { ChatRequest, Provider, ProviderId, StreamEvent } from "../../../src/agent/types.ts";
import { startFakeUpstream } from "../../helpers/fake-upstream.ts";
import { baseRequest, collect, errorOf, fixture, KEY, textOf } from "./suite.ts";

/** A provider that plays one scripted list of events per call and records the requests. */
function scripted(
  id: ProviderId,
  attempts: (StreamEvent[] | ((req: ChatRequest) => StreamEvent[]))[],
): Provider & { seen: ChatRequest[] } {
  const seen: ChatRequest[] = [];
  return {
    id,
    seen,
    async *stream(req) {
      const script = attempts[seen.length] ?? [];
      seen.push(req);
      for (const e of typeof script === "function" ? script(req) : script) yield e;
    },
  };
}
const busy = (id: ProviderId = "openai", retryAfterMs?: number) =>
  new ProviderError(id, `${id}: overloaded (503)`, {
    status: 503,
    retryable: true,
    ...(retryAfterMs !== undefined && { retryAfterMs }),
  });
const fatal = (id: ProviderId = "openai") =>
  new ProviderError(id, `${id}: authentication failed (401) — check the API key`, { status: 401 });
const fail = (e: ProviderError): StreamEvent => ({ type: "error", error: e });
const ok = (text: string): StreamEvent[] => [
  { type: "text", text },
  { type: "usage", input_tokens: 1, output_tokens: 1 },
  { type: "done", stop_reason: "end_turn" },
];
const noSleep = { sleep: async () => {} };

describe("withRetries", () => {
  test("retries a retryable failure with exponential backoff and jitter, then succeeds", async () => {
    const p = scripted("openai", [[fail(busy())], [fail(busy())], ok("third time")]);
    const slept: number[] = [];
    const events = await collect(
      withRetries(p, { sleep: async (ms) => void slept.push(ms), baseDelayMs: 100 }).stream(baseRequest(), {}),
    );
    expect(p.seen).toHaveLength(3);
    expect(events).toEqual(ok("third time"));
    expect(slept[0]).toBeWithin(50, 101);
    expect(slept[1]).toBeWithin(100, 201);
  });

  test("retryDelay: half fixed, half random, capped; the upstream's delay wins but is capped too", () => {
    const opts = { baseDelayMs: 500, maxDelayMs: 8000 };
    expect([0, 1].map((r) => retryDelay(busy(), 1, opts, () => r))).toEqual([250, 500]);
    expect([0, 1].map((r) => retryDelay(busy(), 3, opts, () => r))).toEqual([1000, 2000]);
    expect(retryDelay(busy(), 10, opts, () => 1)).toBe(8000);
    expect(retryDelay(busy("openai", 3000), 1, opts)).toBe(3000);
    expect(retryDelay(busy("openai", 120_000), 1, opts)).toBe(8000);
  });

  test("gives up after maxAttempts with the last failure", async () => {
    const p = scripted("openai", [[fail(busy())], [fail(busy())], [fail(busy())], ok("never")]);
    const events = await collect(withRetries(p, { ...noSleep, maxAttempts: 3 }).stream(baseRequest(), {}));
    expect(p.seen).toHaveLength(3);
    expect(events).toEqual([fail(busy())]);
  });

  test("never retries once text or a tool call was yielded, nor a failure that is not retryable", async () => {
    const afterText = scripted("openai", [[{ type: "text", text: "partial" }, fail(busy())], ok("again")]);
    expect((await collect(withRetries(afterText, noSleep).stream(baseRequest(), {}))).map((e) => e.type)).toEqual([
      "text",
      "error",
    ]);
    expect(afterText.seen).toHaveLength(1);
    const afterCall = scripted("openai", [
      [{ type: "tool_call", id: "c1", name: "get_time", input: {} }, fail(busy())],
      ok("again"),
    ]);
    expect((await collect(withRetries(afterCall, noSleep).stream(baseRequest(), {}))).map((e) => e.type)).toEqual([
      "tool_call",
      "error",
    ]);
    expect(afterCall.seen).toHaveLength(1);
    const auth = scripted("openai", [[fail(fatal())], ok("again")]);
    expect(await collect(withRetries(auth, noSleep).stream(baseRequest(), {}))).toEqual([fail(fatal())]);
    expect(auth.seen).toHaveLength(1);
  });

  test("an abort during the wait ends it at once, as 'aborted', with no further attempt", async () => {
    const p = scripted("openai", [[fail(busy("openai", 60_000))], ok("too late")]);
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 20);
    const started = performance.now();
    const events = await collect(withRetries(p, { maxDelayMs: 60_000 }).stream(baseRequest(), { signal: ac.signal }));
    expect(performance.now() - started).toBeLessThan(2000);
    expect(p.seen).toHaveLength(1);
    expect(events).toHaveLength(1);
    expect(errorOf(events[0])).toMatchObject({ reason: "aborted", provider: "openai" });
  });

  test("Retry-After as an HTTP date is honoured", async () => {
    const at = new Date(Date.now() + 5000).toUTCString();
    await using up = startFakeUpstream([
      {
        status: 429,
        headers: { "content-type": "application/json", "retry-after": at },
        body: fixture("openai/error-429.json"),
      },
      { body: fixture("openai/text.txt") },
    ]);
    const slept: number[] = [];
    const p = withRetries(createOpenAIChatProvider({ baseUrl: up.url, apiKey: KEY }), {
      sleep: async (ms) => void slept.push(ms),
    });
    const events = await collect(p.stream(baseRequest(), {}));
    // HTTP dates have whole seconds: somewhere in (3s, 5s].
    expect(slept).toHaveLength(1);
    expect(slept[0]).toBeWithin(3000, 5001);
    expect(textOf(events)).toBe("**Holiday Plans** for the weekend.");
  });
});

describe("withFallbacks", () => {
  test("tries each fallback in order, each with its own model, until one answers", async () => {
    const primary = scripted("anthropic", [[fail(busy("anthropic"))]]);
    const second = scripted("openai", [[fail(fatal("openai"))]]);
    const third = scripted("gemini", [ok("from the third")]);
    const unused = scripted("ollama", [ok("never")]);
    const p = withFallbacks(primary, [
      { provider: second, model: "gpt-x" },
      { provider: third, model: "gemini-y" },
      { provider: unused, model: "llama-z" },
    ]);
    expect(await collect(p.stream(baseRequest({ model: "claude-w" }), {}))).toEqual(ok("from the third"));
    expect([...primary.seen, ...second.seen, ...third.seen].map((r) => r.model)).toEqual([
      "claude-w",
      "gpt-x",
      "gemini-y",
    ]);
    expect(unused.seen).toHaveLength(0);
    expect(third.seen[0]).toEqual(baseRequest({ model: "gemini-y" }));
  });

  test("no fallback once output was yielded, after an abort, or when the primary succeeds", async () => {
    const spare = () => scripted("openai", [ok("fallback")]);
    const partial = scripted("anthropic", [[{ type: "text", text: "half" }, fail(busy("anthropic"))]]);
    const s1 = spare();
    expect(await collect(withFallbacks(partial, [{ provider: s1, model: "m" }]).stream(baseRequest(), {}))).toEqual([
      { type: "text", text: "half" },
      fail(busy("anthropic")),
    ]);
    const ac = new AbortController();
    const cancelled = scripted("anthropic", [
      () => (ac.abort(), [fail(new ProviderError("anthropic", "anthropic: request aborted", { reason: "aborted" }))]),
    ]);
    const s2 = spare();
    const events = await collect(
      withFallbacks(cancelled, [{ provider: s2, model: "m" }]).stream(baseRequest(), { signal: ac.signal }),
    );
    expect(errorOf(events.at(-1)).reason).toBe("aborted");
    // An abort the step reports itself (its own signal) is the caller's choice too.
    const selfAborted = scripted("anthropic", [
      [fail(new ProviderError("anthropic", "anthropic: request aborted", { reason: "aborted" }))],
    ]);
    const s4 = spare();
    expect(
      errorOf(
        (await collect(withFallbacks(selfAborted, [{ provider: s4, model: "m" }]).stream(baseRequest(), {}))).at(-1),
      ).reason,
    ).toBe("aborted");
    const fine = scripted("anthropic", [ok("primary")]);
    const s3 = spare();
    expect(await collect(withFallbacks(fine, [{ provider: s3, model: "m" }]).stream(baseRequest(), {}))).toEqual(
      ok("primary"),
    );
    expect([s1, s2, s3, s4].map((s) => s.seen.length)).toEqual([0, 0, 0, 0]);
  });

  test("each step's own events pass through (its `model` announcement too); only a failed step's final error is held back", async () => {
    const announce = (provider: ProviderId, model: string): StreamEvent => ({ type: "model", provider, model });
    const primary = scripted("anthropic", [(req) => [announce("anthropic", req.model), fail(busy("anthropic"))]]);
    const keyless = scripted("gemini", [[fail(new ProviderError("gemini", "gemini: no API key", { status: 401 }))]]);
    const third = scripted("openai", [(req) => [announce("openai", req.model), ...ok("third")]]);
    const events = await collect(
      withFallbacks(primary, [
        { provider: keyless, model: "g" },
        { provider: third, model: "gpt-z" },
      ]).stream(baseRequest({ model: "claude-w" }), {}),
    );
    expect(events).toEqual([announce("anthropic", "claude-w"), announce("openai", "gpt-z"), ...ok("third")]);
  });

  test("when every step fails, the last failure ends the stream", async () => {
    const p = withFallbacks(scripted("anthropic", [[fail(busy("anthropic"))]]), [
      { provider: scripted("openai", [[fail(fatal("openai"))]]), model: "m" },
    ]);
    expect(await collect(p.stream(baseRequest(), {}))).toEqual([fail(fatal("openai"))]);
  });

  test("over real upstreams: retries exhausted on a 529, then the fallback answers with its model and key", async () => {
    await using down = startFakeUpstream([
      { status: 529, headers: { "content-type": "application/json" }, body: fixture("anthropic/error-529.json") },
    ]);
    await using up = startFakeUpstream([{ body: fixture("openai/text-unicode.txt") }]);
    const primary = withRetries(createAnthropicProvider({ baseUrl: down.url, apiKey: "sk-ant-primary" }), noSleep);
    const fallback = withRetries(createOpenAIChatProvider({ baseUrl: up.url, apiKey: KEY }), noSleep);
    const events = await collect(
      withFallbacks(primary, [{ provider: fallback, model: "gpt-fallback" }]).stream(
        baseRequest({ model: "claude-primary" }),
        {},
      ),
    );
    expect(textOf(events)).toBe("Grüße aus Zürich! Es schneit ❄️ — 🦀 sagt «hallo», 東京も晴れ。");
    expect(events.at(-1)).toEqual({ type: "done", stop_reason: "end_turn" });
    expect(down.requests.map((r) => r.body.model)).toEqual(["claude-primary", "claude-primary", "claude-primary"]);
    expect(up.requests.map((r) => [r.body.model, r.headers.authorization])).toEqual([
      ["gpt-fallback", `Bearer ${KEY}`],
    ]);
  });
});
