import { expect, test } from "bun:test";
import { createAnthropicProvider } from "../../../src/agent/providers/anthropic.ts";
import type { ChatMessage } from "../../../src/agent/types.ts";
import { sse, startFakeUpstream } from "../../helpers/fake-upstream.ts";
import { baseRequest, callsOf, collect, errorOf, fixture, KEY, wireSuite } from "./suite.ts";

const json = { "content-type": "application/json" };
const start = {
  type: "message_start",
  message: {
    id: "msg_T",
    type: "message",
    role: "assistant",
    model: "m",
    content: [],
    stop_reason: null,
    stop_sequence: null,
    usage: { input_tokens: 10, output_tokens: 1 },
  },
};
const halves = (t: string) => {
  const cps = [...t];
  return [cps.slice(0, cps.length / 2).join(""), cps.slice(cps.length / 2).join("")];
};
const stream = (blocks: unknown[], stop = "end_turn") =>
  sse(
    [
      start,
      ...blocks,
      { type: "message_delta", delta: { stop_reason: stop, stop_sequence: null }, usage: { output_tokens: 5 } },
      { type: "message_stop" },
    ],
    { named: true },
  );
const text = (t: string) =>
  stream([
    { type: "content_block_start", index: 0, content_block: { type: "text", text: "" } },
    ...halves(t).map((h) => ({ type: "content_block_delta", index: 0, delta: { type: "text_delta", text: h } })),
    { type: "content_block_stop", index: 0 },
  ]);

wireSuite({
  name: "anthropic",
  make: (o) => createAnthropicProvider(o),
  contentType: "text/event-stream; charset=utf-8",
  text,
  withoutEndMarker: (body) => body.slice(0, body.lastIndexOf("event: message_stop")),
  unicode: {
    body: fixture("anthropic/text-unicode.txt"),
    text: "Grüße aus Zürich! Es schneit ❄️ — 🦀 sagt «hallo», 東京も晴れ。",
    usage: { input_tokens: 25, output_tokens: 14 },
  },
  textThenTool: {
    body: fixture("anthropic/text-tool.txt"),
    text: "Okay, let's check the weather for San Francisco, CA:",
    call: { name: "get_weather", input: { location: "San Francisco, CA", unit: "fahrenheit" } },
  },
  twoTools: {
    body: fixture("anthropic/two-tools.txt"),
    calls: [
      { name: "get_weather", input: { city: "Malmö" } },
      { name: "get_time", input: { tz: "Europe/Stockholm" } },
    ],
  },
  midStreamError: { body: fixture("anthropic/error-mid-stream.txt"), retryable: true },
  authFailure: { status: 401, headers: json, body: fixture("anthropic/error-401.json") },
  rateLimit: {
    reply: { status: 429, headers: { ...json, "retry-after": "3" }, body: fixture("anthropic/error-429.json") },
    waitMs: 3000,
  },
  overloaded: { status: 529, headers: json, body: fixture("anthropic/error-529.json") },
  errorBody: (message) => JSON.stringify({ type: "error", error: { type: "api_error", message }, request_id: "req_T" }),
  checkAuth: (req) => {
    expect(req.method).toBe("POST");
    expect(req.path).toBe("/v1/messages");
    expect(req.headers["x-api-key"]).toBe(KEY);
    expect(req.headers["anthropic-version"]).toBe("2023-06-01");
    expect(req.headers.authorization).toBeUndefined();
  },
  checkRequest: (req) => {
    expect(req.body).toMatchObject({ model: "test-model", max_tokens: 256, stream: true, system: "You are terse." });
    expect(req.body.messages.some((m: { role: string }) => m.role === "system")).toBe(false);
    expect(req.body.tools).toEqual([
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
    ]);
  },
  history: (req) => req.body.messages,
  expectedToolHistory: [
    { role: "user", content: "Weather and time in Oslo?" },
    {
      role: "assistant",
      content: [
        { type: "text", text: "Checking." },
        { type: "tool_use", id: "toolu_A1", name: "get_weather", input: { city: "Oslo" } },
        { type: "tool_use", id: "toolu_B2", name: "get_time", input: { tz: "Europe/Oslo" } },
      ],
    },
    // Both results in ONE user message: roles must alternate.
    {
      role: "user",
      content: [
        { type: "tool_result", tool_use_id: "toolu_A1", content: "-3°C, snow" },
        { type: "tool_result", tool_use_id: "toolu_B2", content: "clock plugin crashed", is_error: true },
      ],
    },
  ],
  expectedSecondRound: (_call, content) => [
    { role: "user", content: "Weather in Oslo?" },
    {
      role: "assistant",
      content: [
        { type: "text", text: "Okay, let's check the weather for San Francisco, CA:" },
        {
          type: "tool_use",
          id: "toolu_01T1x1fJ34qAmk2tNTrN7Up6",
          name: "get_weather",
          input: { location: "San Francisco, CA", unit: "fahrenheit" },
        },
      ],
    },
    { role: "user", content: [{ type: "tool_result", tool_use_id: "toolu_01T1x1fJ34qAmk2tNTrN7Up6", content }] },
  ],
});

test("anthropic: the recorded tool stream with pings between deltas; usage is replaced, not added", async () => {
  await using up = startFakeUpstream([{ body: fixture("anthropic/tool-pings.txt") }]);
  const events = await collect(createAnthropicProvider({ baseUrl: up.url, apiKey: KEY }).stream(baseRequest(), {}));
  expect(events).toEqual([
    { type: "tool_call", id: "toolu_019Zvehfe1XQWweT1pm7okyt", name: "weather", input: { location: "San Francisco" } },
    { type: "usage", input_tokens: 843, output_tokens: 28 },
    { type: "done", stop_reason: "tool_use" },
  ]);
});

test("anthropic: unknown events and delta types are ignored; stop reasons map", async () => {
  const odd = [
    { type: "content_block_start", index: 0, content_block: { type: "thinking", thinking: "" } },
    { type: "content_block_delta", index: 0, delta: { type: "thinking_delta", thinking: "hmm" } },
    { type: "content_block_stop", index: 0 },
    { type: "brand_new_event", index: 9 },
    { type: "content_block_start", index: 1, content_block: { type: "text", text: "" } },
    { type: "content_block_delta", index: 1, delta: { type: "text_delta", text: "ok" } },
    { type: "content_block_stop", index: 1 },
  ];
  await using up = startFakeUpstream([{ body: stream(odd, "max_tokens") }, { body: stream(odd, "refusal") }]);
  const p = createAnthropicProvider({ baseUrl: up.url, apiKey: KEY });
  const first = await collect(p.stream(baseRequest(), {}));
  expect(first).toEqual([
    { type: "text", text: "ok" },
    { type: "usage", input_tokens: 10, output_tokens: 5 },
    { type: "done", stop_reason: "max_tokens" },
  ]);
  expect((await collect(p.stream(baseRequest(), {}))).at(-1)).toEqual({ type: "done", stop_reason: "other" });
});

test("anthropic: tool input that is not valid JSON is an error event, not a call", async () => {
  const bad = stream(
    [
      {
        type: "content_block_start",
        index: 0,
        content_block: { type: "tool_use", id: "toolu_X", name: "get_weather", input: {} },
      },
      { type: "content_block_delta", index: 0, delta: { type: "input_json_delta", partial_json: '{"city": "Os' } },
      { type: "content_block_stop", index: 0 },
    ],
    "tool_use",
  );
  await using up = startFakeUpstream([{ body: bad }]);
  const events = await collect(createAnthropicProvider({ baseUrl: up.url, apiKey: KEY }).stream(baseRequest(), {}));
  expect(callsOf(events)).toEqual([]);
  expect(errorOf(events.at(-1)).message).toBe("anthropic: tool call get_weather has invalid JSON arguments");
});

test("anthropic: no system prompt means no `system` field; no empty text blocks; tool results before user text", async () => {
  await using up = startFakeUpstream([{ body: text("ok") }]);
  const messages: ChatMessage[] = [
    { role: "user", parts: [{ type: "text", text: "hi" }] },
    {
      role: "assistant",
      parts: [
        { type: "text", text: "" },
        { type: "tool_use", id: "toolu_Z", name: "get_time", input: {} },
      ],
    },
    { role: "tool", parts: [{ type: "tool_result", tool_use_id: "toolu_Z", content: "noon" }] },
    // The user spoke again before the model answered: same user turn, after the result.
    { role: "user", parts: [{ type: "text", text: "and tomorrow?" }] },
  ];
  await collect(
    createAnthropicProvider({ baseUrl: up.url, apiKey: KEY }).stream(baseRequest({ system: "", messages }), {}),
  );
  expect("system" in up.requests[0]!.body).toBe(false);
  expect(up.requests[0]!.body.messages.slice(1)).toEqual([
    { role: "assistant", content: [{ type: "tool_use", id: "toolu_Z", name: "get_time", input: {} }] },
    {
      role: "user",
      content: [
        { type: "tool_result", tool_use_id: "toolu_Z", content: "noon" },
        { type: "text", text: "and tomorrow?" },
      ],
    },
  ]);
});

test("anthropic: text typed before the results in the same turn still goes after them", async () => {
  await using up = startFakeUpstream([{ body: text("ok") }]);
  const messages: ChatMessage[] = [
    { role: "assistant", parts: [{ type: "tool_use", id: "toolu_Z", name: "get_time", input: {} }] },
    {
      role: "tool",
      parts: [
        { type: "text", text: "note" },
        { type: "tool_result", tool_use_id: "toolu_Z", content: "noon" },
      ],
    },
  ];
  await collect(createAnthropicProvider({ baseUrl: up.url, apiKey: KEY }).stream(baseRequest({ messages }), {}));
  expect(up.requests[0]!.body.messages[1].content.map((b: { type: string }) => b.type)).toEqual([
    "tool_result",
    "text",
  ]);
});
