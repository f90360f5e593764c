/** What every wire API shares (providers/_http.ts), through a real provider where it matters. */
import { describe, expect, test } from "bun:test";
import { parseRetryAfter } from "../../../src/agent/providers/_http.ts";
import { createAnthropicProvider } from "../../../src/agent/providers/anthropic.ts";
import { createOpenAIChatProvider } from "../../../src/agent/providers/openai-chat.ts";
import { sse, startFakeUpstream } from "../../helpers/fake-upstream.ts";
import { baseRequest, collect, errorOf, KEY } from "./suite.ts";

const anthropic = (url: string) => createAnthropicProvider({ baseUrl: url, apiKey: KEY });

describe("parseRetryAfter", () => {
  test("delta-seconds, fractions, HTTP dates (past ones are 0), and nothing for garbage", () => {
    expect(parseRetryAfter("2")).toBe(2000);
    expect(parseRetryAfter(" 1.5 ")).toBe(1500);
    expect(parseRetryAfter(new Date(Date.now() + 10_000).toUTCString())).toBeWithin(8000, 10_001);
    expect(parseRetryAfter("Wed, 21 Oct 2015 07:28:00 GMT")).toBe(0);
    expect(parseRetryAfter("soon")).toBeUndefined();
    expect(parseRetryAfter("-3")).toBeUndefined();
    expect(parseRetryAfter(null)).toBeUndefined();
  });
});

describe("postAndStream failures", () => {
  test("an upstream nobody listens on: retryable 'cannot reach', as an event", async () => {
    const events = await collect(anthropic("http://127.0.0.1:1").stream(baseRequest(), {}));
    expect(events).toHaveLength(1);
    expect(errorOf(events[0])).toMatchObject({ retryable: true, reason: "error", provider: "anthropic" });
    expect(errorOf(events[0]).message).toStartWith("anthropic: cannot reach 127.0.0.1:1");
  });

  test("a signal aborted before the call: no request at all, one aborted error", async () => {
    await using up = startFakeUpstream([{ body: "" }]);
    const ac = new AbortController();
    ac.abort();
    expect(await collect(anthropic(up.url).stream(baseRequest(), { signal: ac.signal }))).toEqual([
      { type: "error", error: expect.objectContaining({ reason: "aborted", message: "anthropic: request aborted" }) },
    ]);
    expect(up.requests).toHaveLength(0);
  });

  test("a request that cannot be encoded fails as an event, not a throw, and is not retryable", async () => {
    await using up = startFakeUpstream([{ body: "" }]);
    const messages = [
      { role: "assistant" as const, parts: [{ type: "tool_use" as const, id: "t1", name: "n", input: { big: 1n } }] },
    ];
    const e = errorOf((await collect(anthropic(up.url).stream(baseRequest({ messages }), {})))[0]);
    expect(e.message).toStartWith("anthropic: the request cannot be encoded as JSON");
    expect(e.retryable).toBe(false);
    expect(up.requests).toHaveLength(0);
  });

  test("a non-JSON error page (a proxy's 413) keeps its status; 400 is final, 408/409 may be retried", async () => {
    await using up = startFakeUpstream([
      {
        status: 413,
        headers: { "content-type": "text/html" },
        body: "<html><body>413 Request Entity Too Large</body></html>",
      },
      {
        status: 400,
        headers: { "content-type": "application/json" },
        body: '{"type":"error","error":{"type":"invalid_request_error","message":"messages: at least one message is required"}}',
      },
      { status: 408, body: "" },
      { status: 409, body: "" },
      {
        status: 400,
        headers: { "content-type": "application/json" },
        body: '{"type":"error","error":{"type":"invalid_request_error","message":"prompt is too long: overloaded context"}}',
      },
    ]);
    const p = anthropic(up.url);
    const statuses: [string, boolean][] = [];
    for (let i = 0; i < 5; i++) {
      const e = errorOf((await collect(p.stream(baseRequest(), {})))[0]);
      statuses.push([e.message, e.retryable]);
    }
    expect(statuses).toEqual([
      ["anthropic: HTTP 413: <html><body>413 Request Entity Too Large</body></html>", false],
      ["anthropic: HTTP 400: messages: at least one message is required", false],
      ["anthropic: HTTP 408", true],
      ["anthropic: HTTP 409", true],
      // A 400 whose text says "overloaded" is still the request's fault: not retried.
      ["anthropic: HTTP 400: prompt is too long: overloaded context", false],
    ]);
  });

  test("a malformed payload inside a 200 stream is an error event that names the provider", async () => {
    await using up = startFakeUpstream([
      { body: sse(['{"id":"x","choices":[{"delta":{"content":"ok"}}]}', "{not json"]) },
    ]);
    const events = await collect(createOpenAIChatProvider({ baseUrl: up.url, apiKey: KEY }).stream(baseRequest(), {}));
    expect(events[0]).toEqual({ type: "text", text: "ok" });
    expect(errorOf(events.at(-1)).message).toBe("openai: malformed stream payload: {not json");
  });
  test("an error body that echoes the key, in any spelling, never puts it in the message", async () => {
    const echoes = [
      KEY,
      KEY.toUpperCase(),
      encodeURIComponent(`${KEY}/`),
      Buffer.from(KEY).toString("base64"),
      KEY.slice(2),
    ];
    await using up = startFakeUpstream(
      echoes.map((e) => ({
        status: 400,
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ error: { message: `bad request for key ${e}` } }),
      })),
    );
    for (const _ of echoes) {
      const message = errorOf(
        (await collect(createOpenAIChatProvider({ baseUrl: up.url, apiKey: KEY }).stream(baseRequest(), {})))[0],
      ).message;
      expect(message).toStartWith("openai: HTTP 400: bad request for key ");
      expect(message).toContain("***");
      expect(message.toLowerCase()).not.toContain(KEY.slice(4, 14).toLowerCase());
      expect(message).not.toContain(Buffer.from(KEY).toString("base64").slice(4, 20));
    }
  });
});
