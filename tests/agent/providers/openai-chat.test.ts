import { expect, test } from "bun:test";
import { createOpenAIChatProvider } from "../../../src/agent/providers/openai-chat.ts";
import { withRetries } from "../../../src/agent/retry.ts";
import type { ChatMessage } from "../../../src/agent/types.ts";
import { sse, startFakeUpstream } from "../../helpers/fake-upstream.ts";
import { baseRequest, callsOf, collect, errorOf, fixture, KEY, textOf, wireSuite } from "./suite.ts";

const json = { "content-type": "application/json" };
const chunk = (delta: unknown, finish: string | null = null) => ({
  id: "chatcmpl-T",
  object: "chat.completion.chunk",
  created: 1,
  model: "m",
  choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }],
  usage: null,
});
const usage = {
  id: "chatcmpl-T",
  object: "chat.completion.chunk",
  created: 1,
  model: "m",
  choices: [],
  usage: { prompt_tokens: 10, completion_tokens: 5, total_tokens: 15 },
};
const stream = (deltas: unknown[], finish = "stop") =>
  sse([
    chunk({ role: "assistant", content: "", refusal: null }),
    ...deltas.map((d) => chunk(d)),
    chunk({}, finish),
    usage,
    "[DONE]",
  ]);
const text = (t: string) => {
  const cps = [...t];
  return stream([{ content: cps.slice(0, cps.length / 2).join("") }, { content: cps.slice(cps.length / 2).join("") }]);
};
const provider = (url: string, apiKey: string | null = KEY) => createOpenAIChatProvider({ baseUrl: url, apiKey });

wireSuite({
  name: "openai",
  make: (o) => createOpenAIChatProvider(o),
  contentType: "text/event-stream",
  text,
  withoutEndMarker: (body) => body.slice(0, body.lastIndexOf("data: [DONE]")),
  unicode: {
    body: fixture("openai/text-unicode.txt"),
    text: "Grüße aus Zürich! Es schneit ❄️ — 🦀 sagt «hallo», 東京も晴れ。",
    usage: { input_tokens: 25, output_tokens: 14 },
  },
  textThenTool: {
    body: fixture("openai/text-tool.txt"),
    text: "Let me look that up.",
    call: { name: "GetPersonAge", input: { personName: "Alice" } },
  },
  twoTools: {
    body: fixture("openai/two-tools.txt"),
    calls: [
      { name: "get_weather", input: { city: "Malmö" } },
      { name: "get_time", input: { tz: "Europe/Stockholm" } },
    ],
  },
  midStreamError: { body: fixture("openai/error-mid-stream.txt"), retryable: true },
  // The real 401 body quotes the key it was sent; ours quotes the test key in full.
  authFailure: { status: 401, headers: json, body: fixture("openai/error-401.json").replace("sk-xxx", KEY) },
  rateLimit: {
    reply: { status: 429, headers: { ...json, "retry-after": "2" }, body: fixture("openai/error-429.json") },
    waitMs: 2000,
  },
  overloaded: { status: 503, headers: json, body: fixture("openai/error-503.json") },
  errorBody: (message) => JSON.stringify({ error: { message, type: "server_error", param: null, code: null } }),
  checkAuth: (req) => {
    expect(req.method).toBe("POST");
    expect(req.path).toBe("/chat/completions");
    expect(req.headers.authorization).toBe(`Bearer ${KEY}`);
    expect(req.headers["x-api-key"]).toBeUndefined();
  },
  checkRequest: (req) => {
    expect(req.body).toMatchObject({
      model: "test-model",
      stream: true,
      stream_options: { include_usage: true },
      max_tokens: 256,
      tool_choice: "auto",
    });
    expect(req.body.messages[0]).toEqual({ role: "system", content: "You are terse." });
    expect(req.body.messages.filter((m: { role: string }) => m.role === "system")).toHaveLength(1);
    expect(req.body.tools).toEqual([
      {
        type: "function",
        function: {
          name: "get_weather",
          description: "Weather for a city",
          parameters: { type: "object", properties: { city: { type: "string" } }, required: ["city"] },
        },
      },
      {
        type: "function",
        function: {
          name: "get_time",
          description: "Time in a zone",
          parameters: { type: "object", properties: { tz: { type: "string" } } },
        },
      },
    ]);
  },
  history: (req) => req.body.messages,
  expectedToolHistory: [
    { role: "system", content: "You are terse." },
    { role: "user", content: "Weather and time in Oslo?" },
    {
      role: "assistant",
      content: "Checking.",
      tool_calls: [
        { id: "toolu_A1", type: "function", function: { name: "get_weather", arguments: '{"city":"Oslo"}' } },
        { id: "toolu_B2", type: "function", function: { name: "get_time", arguments: '{"tz":"Europe/Oslo"}' } },
      ],
    },
    // One tool message per result.
    { role: "tool", tool_call_id: "toolu_A1", content: "-3°C, snow" },
    { role: "tool", tool_call_id: "toolu_B2", content: "clock plugin crashed" },
  ],
  expectedSecondRound: (_call, content) => [
    { role: "system", content: "You are terse." },
    { role: "user", content: "Weather in Oslo?" },
    {
      role: "assistant",
      content: "Let me look that up.",
      tool_calls: [
        {
          id: "call_SYN0001",
          type: "function",
          function: { name: "GetPersonAge", arguments: '{"personName":"Alice"}' },
        },
      ],
    },
    { role: "tool", tool_call_id: "call_SYN0001", content },
  ],
});

test("openai: the recorded tool-call stream (A2.2), verbatim", async () => {
  await using up = startFakeUpstream([{ body: fixture("openai/tool-call.txt") }]);
  expect(await collect(provider(up.url).stream(baseRequest(), {}))).toEqual([
    { type: "tool_call", id: "call_F9ZaqPWo69u0urxAhVt8meDW", name: "GetPersonAge", input: { personName: "Alice" } },
    { type: "usage", input_tokens: 61, output_tokens: 16 },
    { type: "done", stop_reason: "tool_use" },
  ]);
});

test("openai: recorded text chunks with service_tier and obfuscation fields", async () => {
  await using up = startFakeUpstream([{ body: fixture("openai/text.txt") }]);
  const events = await collect(provider(up.url).stream(baseRequest(), {}));
  expect(textOf(events)).toBe("**Holiday Plans** for the weekend.");
  expect(events.slice(-2)).toEqual([
    { type: "usage", input_tokens: 14, output_tokens: 9 },
    { type: "done", stop_reason: "end_turn" },
  ]);
});

test("openai: a compatible server that reuses index 0 with a new id gives two calls", async () => {
  const body = stream(
    [
      {
        tool_calls: [
          { index: 0, id: "call_1", type: "function", function: { name: "get_weather", arguments: '{"city":' } },
        ],
      },
      { tool_calls: [{ index: 0, function: { arguments: '"Oslo"}' } }] },
      { tool_calls: [{ index: 0, id: "call_2", type: "function", function: { name: "get_time", arguments: "{}" } }] },
    ],
    "tool_calls",
  );
  await using up = startFakeUpstream([{ body }]);
  const calls = callsOf(await collect(provider(up.url).stream(baseRequest(), {})));
  expect(calls.map(({ id, name, input }) => ({ id, name, input }))).toEqual([
    { id: "call_1", name: "get_weather", input: { city: "Oslo" } },
    { id: "call_2", name: "get_time", input: {} },
  ]);
});

test("openai: arguments that are not valid JSON are an error event; finish_reason length is max_tokens", async () => {
  const bad = stream(
    [
      {
        tool_calls: [
          { index: 0, id: "call_1", type: "function", function: { name: "get_weather", arguments: '{"city":"Os' } },
        ],
      },
    ],
    "tool_calls",
  );
  await using up = startFakeUpstream([{ body: bad }, { body: stream([{ content: "trunc" }], "length") }]);
  const events = await collect(provider(up.url).stream(baseRequest(), {}));
  expect(callsOf(events)).toEqual([]);
  expect(errorOf(events.at(-1)).message).toBe("openai: tool call get_weather has invalid JSON arguments");
  expect((await collect(provider(up.url).stream(baseRequest(), {}))).at(-1)).toEqual({
    type: "done",
    stop_reason: "max_tokens",
  });
});

test("openai: without a key no Authorization header; without a system prompt no system message; a tool-only turn has content null", async () => {
  await using up = startFakeUpstream([{ body: text("hi") }]);
  const messages: ChatMessage[] = [
    { role: "user", parts: [{ type: "text", text: "How old is Alice?" }] },
    {
      role: "assistant",
      parts: [
        { type: "tool_use", id: "call_F9ZaqPWo69u0urxAhVt8meDW", name: "GetPersonAge", input: { personName: "Alice" } },
      ],
    },
    { role: "tool", parts: [{ type: "tool_result", tool_use_id: "call_F9ZaqPWo69u0urxAhVt8meDW", content: "42" }] },
  ];
  await collect(provider(up.url, null).stream(baseRequest({ system: "", messages }), {}));
  expect(up.requests[0]!.headers.authorization).toBeUndefined();
  // A2.5's recorded multi-turn shape.
  expect(up.requests[0]!.body.messages).toEqual([
    { role: "user", content: "How old is Alice?" },
    {
      role: "assistant",
      content: null,
      tool_calls: [
        {
          id: "call_F9ZaqPWo69u0urxAhVt8meDW",
          type: "function",
          function: { name: "GetPersonAge", arguments: '{"personName":"Alice"}' },
        },
      ],
    },
    { role: "tool", tool_call_id: "call_F9ZaqPWo69u0urxAhVt8meDW", content: "42" },
  ]);
});

test("openai: insufficient_quota (429) is billing, not a rate: not retried", async () => {
  await using up = startFakeUpstream([{ status: 429, headers: json, body: fixture("openai/error-429-quota.json") }]);
  const events = await collect(withRetries(provider(up.url), { sleep: async () => {} }).stream(baseRequest(), {}));
  expect(up.requests).toHaveLength(1);
  expect(errorOf(events.at(-1))).toMatchObject({ retryable: false, status: 429 });
  expect(errorOf(events.at(-1)).message).toStartWith("openai: quota exhausted (429)");
});
