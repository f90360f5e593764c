import { expect, test } from "bun:test";
import { createGeminiProvider } from "../../../src/agent/providers/gemini.ts";
import type { ChatMessage } from "../../../src/agent/types.ts";
import { sse, startFakeUpstream } from "../../helpers/fake-upstream.ts";
import { baseRequest, callsOf, collect, errorOf, fixture, KEY, textOf, wireSuite } from "./suite.ts";

const json = { "content-type": "application/json" };
const usage = { promptTokenCount: 10, candidatesTokenCount: 5, totalTokenCount: 15 };
const chunk = (parts: unknown[], finishReason?: string) => ({
  candidates: [{ content: { parts, role: "model" }, ...(finishReason && { finishReason }), index: 0 }],
  usageMetadata: usage,
  modelVersion: "gemini-2.5-flash",
  responseId: "R1",
});
const text = (t: string) => {
  const cps = [...t];
  // CRLF separators, as production Gemini is said to send (wire-formats §0).
  return sse(
    [
      chunk([{ text: cps.slice(0, cps.length / 2).join("") }]),
      chunk([{ text: cps.slice(cps.length / 2).join("") }]),
      chunk([{ text: "" }], "STOP"),
    ],
    { crlf: true },
  );
};
const provider = (url: string) => createGeminiProvider({ baseUrl: url, apiKey: KEY });

wireSuite({
  name: "gemini",
  make: (o) => createGeminiProvider(o),
  contentType: "text/event-stream",
  text,
  // No end marker in this format: the chunk with finishReason is the end.
  withoutEndMarker: (body) => body.slice(0, body.lastIndexOf("data: ")),
  unicode: {
    body: fixture("gemini/text-unicode.txt"),
    text: "Grüße aus Zürich! Es schneit ❄️ — 🦀 sagt «hallo», 東京も晴れ。",
    usage: { input_tokens: 25, output_tokens: 14 },
  },
  textThenTool: {
    body: fixture("gemini/text-tool.txt"),
    text: "Let me check the weather.",
    call: { name: "weather", input: { location: "San Francisco" } },
  },
  twoTools: {
    body: fixture("gemini/two-tools.txt"),
    calls: [
      { name: "get_weather", input: { city: "Malmö" } },
      { name: "get_time", input: { tz: "Europe/Stockholm" } },
    ],
  },
  midStreamError: { body: fixture("gemini/error-mid-stream.txt"), retryable: true },
  // Gemini answers a bad key with 400 INVALID_ARGUMENT / API_KEY_INVALID, not 401.
  authFailure: { status: 400, headers: json, body: fixture("gemini/error-400-key.json") },
  rateLimit: { reply: { status: 429, headers: json, body: fixture("gemini/error-429.json") }, waitMs: 34_400 },
  overloaded: { status: 503, headers: json, body: fixture("gemini/error-503.json") },
  errorBody: (message) => JSON.stringify({ error: { code: 500, message, status: "INTERNAL" } }),
  checkAuth: (req) => {
    expect(req.method).toBe("POST");
    expect(req.path).toBe("/models/test-model:streamGenerateContent");
    expect(req.search).toBe("?alt=sse"); // the key is in the header, never in the URL
    expect(req.headers["x-goog-api-key"]).toBe(KEY);
    expect(req.headers.authorization).toBeUndefined();
  },
  checkRequest: (req) => {
    expect(req.body.systemInstruction).toEqual({ parts: [{ text: "You are terse." }] });
    expect(req.body.contents.every((c: { role: string }) => c.role === "user" || c.role === "model")).toBe(true);
    expect(req.body.generationConfig).toEqual({ maxOutputTokens: 256 });
    expect(req.body.toolConfig).toEqual({ functionCallingConfig: { mode: "AUTO" } });
    expect(req.body.tools).toEqual([
      {
        functionDeclarations: [
          {
            name: "get_weather",
            description: "Weather for a city",
            parameters: { type: "object", properties: { city: { type: "string" } }, required: ["city"] },
          },
          {
            name: "get_time",
            description: "Time in a zone",
            parameters: { type: "object", properties: { tz: { type: "string" } } },
          },
        ],
      },
    ]);
  },
  history: (req) => req.body.contents,
  expectedToolHistory: [
    { role: "user", parts: [{ text: "Weather and time in Oslo?" }] },
    {
      role: "model",
      parts: [
        { text: "Checking." },
        { functionCall: { name: "get_weather", args: { city: "Oslo" }, id: "toolu_A1" } },
        { functionCall: { name: "get_time", args: { tz: "Europe/Oslo" }, id: "toolu_B2" } },
      ],
    },
    // One user turn of functionResponse parts, the names looked up from the calls; failure as "error".
    {
      role: "user",
      parts: [
        { functionResponse: { name: "get_weather", response: { result: "-3°C, snow" }, id: "toolu_A1" } },
        { functionResponse: { name: "get_time", response: { error: "clock plugin crashed" }, id: "toolu_B2" } },
      ],
    },
  ],
  expectedSecondRound: (call, content) => {
    // The call came without an id: ours is made up, and Gemini never sees it.
    expect(call.id).toBe("call_0");
    return [
      { role: "user", parts: [{ text: "Weather in Oslo?" }] },
      {
        role: "model",
        parts: [
          { text: "Let me check the weather." },
          { functionCall: { name: "weather", args: { location: "San Francisco" } }, thoughtSignature: "c3luLXNpZw==" },
        ],
      },
      { role: "user", parts: [{ functionResponse: { name: "weather", response: { result: content } } }] },
    ];
  },
});

test("gemini: recorded chunks (CRLF and LF); thinking tokens count as output; thoughtSignature echoed exactly", async () => {
  await using up = startFakeUpstream([{ body: fixture("gemini/tool-call.txt") }, { body: fixture("gemini/text.txt") }]);
  const p = provider(up.url);
  const first = await collect(p.stream(baseRequest(), {}));
  const call = callsOf(first)[0]!;
  expect(call).toMatchObject({ name: "weather", input: { location: "San Francisco" }, signature: "EqUCCqICAb4+…" });
  expect(first.slice(-2)).toEqual([
    { type: "usage", input_tokens: 29, output_tokens: 15 + 45 },
    { type: "done", stop_reason: "tool_use" },
  ]);
  const { type: _, ...toolUse } = call;
  const history: ChatMessage[] = [
    { role: "user", parts: [{ type: "text", text: "Weather?" }] },
    { role: "assistant", parts: [{ type: "tool_use", ...toolUse }] },
    { role: "tool", parts: [{ type: "tool_result", tool_use_id: call.id, content: "58F sunny" }] },
  ];
  const second = await collect(p.stream(baseRequest({ messages: history }), {}));
  expect(textOf(second)).toBe('There are **3** "r"s in strawberry.\n\nst**r**awbe**rr**y');
  expect(second.slice(-2)).toEqual([
    { type: "usage", input_tokens: 9, output_tokens: 23 + 185 },
    { type: "done", stop_reason: "end_turn" },
  ]);
  expect(up.requests[1]!.body.contents.slice(1)).toEqual([
    {
      role: "model",
      parts: [
        { functionCall: { name: "weather", args: { location: "San Francisco" } }, thoughtSignature: "EqUCCqICAb4+…" },
      ],
    },
    { role: "user", parts: [{ functionResponse: { name: "weather", response: { result: "58F sunny" } } }] },
  ]);
});

test("gemini: made-up ids count on from the history, so they stay unique in a session; real ids are kept", async () => {
  const prior: ChatMessage[] = [
    { role: "user", parts: [{ type: "text", text: "a" }] },
    { role: "assistant", parts: [{ type: "tool_use", id: "call_0", name: "get_time", input: {} }] },
    { role: "tool", parts: [{ type: "tool_result", tool_use_id: "call_0", content: "noon" }] },
  ];
  const withId = sse([chunk([{ functionCall: { name: "get_time", args: {}, id: "fc-7" } }], "STOP")]);
  await using up = startFakeUpstream([{ body: fixture("gemini/two-tools.txt") }, { body: withId }]);
  const events = await collect(provider(up.url).stream(baseRequest({ messages: prior }), {}));
  expect(callsOf(events).map((c) => c.id)).toEqual(["call_1", "call_2"]);
  expect(callsOf(events)[0]!.signature).toBe("c3luLXNpZy0x");
  expect(callsOf(events)[1]!.signature).toBeUndefined();
  expect(up.requests[0]!.body.contents[2]).toEqual({
    role: "user",
    parts: [{ functionResponse: { name: "get_time", response: { result: "noon" } } }],
  });
  expect(callsOf(await collect(provider(up.url).stream(baseRequest(), {})))[0]!.id).toBe("fc-7");
});

test("gemini: 403 is an auth failure; a blocked prompt, thought parts and finish reasons", async () => {
  const blocked = sse([{ promptFeedback: { blockReason: "SAFETY" }, usageMetadata: usage }]);
  await using up = startFakeUpstream([
    {
      status: 403,
      headers: json,
      body: JSON.stringify({
        error: { code: 403, message: "Method doesn't allow unregistered callers.", status: "PERMISSION_DENIED" },
      }),
    },
    { body: blocked },
    { body: sse([chunk([{ text: "the user wants…", thought: true }, { text: "lo" }], "MAX_TOKENS")]) },
    { body: sse([chunk([{ text: "" }], "SAFETY")]) },
  ]);
  const p = provider(up.url);
  expect(errorOf((await collect(p.stream(baseRequest(), {})))[0]).message).toBe(
    "gemini: authentication failed (403) — check the API key",
  );
  expect(errorOf((await collect(p.stream(baseRequest(), {}))).at(-1)).message).toBe(
    "gemini: the prompt was blocked (SAFETY)",
  );
  const truncated = await collect(p.stream(baseRequest(), {}));
  expect(textOf(truncated)).toBe("lo"); // thought summaries are not the answer
  expect(truncated.at(-1)).toEqual({ type: "done", stop_reason: "max_tokens" });
  expect((await collect(p.stream(baseRequest(), {}))).at(-1)).toEqual({ type: "done", stop_reason: "other" });
});
