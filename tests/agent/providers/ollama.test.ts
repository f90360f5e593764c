import { expect, test } from "bun:test";
import { createOllamaProvider } from "../../../src/agent/providers/ollama.ts";
import type { ChatMessage } from "../../../src/agent/types.ts";
import { ndjson, startFakeUpstream } from "../../helpers/fake-upstream.ts";
import { baseRequest, callsOf, collect, errorOf, fixture, textOf, wireSuite } from "./suite.ts";

const json = { "content-type": "application/json" };
const ctype = { "content-type": "application/x-ndjson" };
const msg = (content: string, extra: Record<string, unknown> = {}) => ({
  model: "m",
  created_at: "2025-05-27T22:54:57.5Z",
  message: { role: "assistant", content, ...extra },
  done: false,
});
const final = (done_reason = "stop") => ({
  model: "m",
  created_at: "2025-05-27T22:54:58Z",
  message: { role: "assistant", content: "" },
  done_reason,
  done: true,
  total_duration: 1,
  prompt_eval_count: 10,
  eval_count: 5,
});
const text = (t: string) => {
  const cps = [...t];
  return ndjson([msg(cps.slice(0, cps.length / 2).join("")), msg(cps.slice(cps.length / 2).join("")), final()]);
};
const calls = (...tc: unknown[]) => ndjson([msg("", { tool_calls: tc }), final()]);
const provider = (url: string) => createOllamaProvider({ baseUrl: url, apiKey: null });

wireSuite({
  name: "ollama",
  make: (o) => createOllamaProvider(o),
  contentType: "application/x-ndjson",
  text,
  withoutEndMarker: (body) => body.slice(0, body.trimEnd().lastIndexOf("\n") + 1),
  unicode: {
    body: fixture("ollama/text-unicode.ndjson"),
    text: "Grüße aus Zürich! Es schneit ❄️ — 🦀 sagt «hallo», 東京も晴れ。",
    usage: { input_tokens: 25, output_tokens: 14 },
  },
  textThenTool: {
    body: fixture("ollama/text-tool.ndjson"),
    text: "Let me check the weather.",
    call: { name: "get_current_weather", input: { format: "celsius", location: "Toronto" } },
  },
  twoTools: {
    body: fixture("ollama/two-tools.ndjson"),
    calls: [
      { name: "get_weather", input: { city: "Malmö" } },
      { name: "get_time", input: { tz: "Europe/Stockholm" } },
    ],
  },
  midStreamError: { body: fixture("ollama/error-mid-stream.ndjson"), retryable: false },
  // Ollama has no auth; a reverse proxy in front of it may.
  authFailure: { status: 401, headers: json, body: JSON.stringify({ error: "unauthorized" }) },
  rateLimit: {
    reply: {
      status: 429,
      headers: { ...json, "retry-after": "1" },
      body: JSON.stringify({ error: "too many requests" }),
    },
    waitMs: 1000,
  },
  overloaded: { status: 503, headers: json, body: fixture("ollama/error-503.json") },
  errorBody: (message) => JSON.stringify({ error: message }),
  checkAuth: (req) => {
    expect(req.method).toBe("POST");
    expect(req.path).toBe("/api/chat");
    expect(req.headers.authorization).toBeUndefined();
    expect(req.headers["x-api-key"]).toBeUndefined();
  },
  checkRequest: (req) => {
    expect(req.body).toMatchObject({ model: "test-model", stream: true, options: { num_predict: 256 } });
    expect(req.body.messages[0]).toEqual({ role: "system", content: "You are terse." });
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
        { type: "function", function: { index: 0, name: "get_weather", arguments: { city: "Oslo" } } },
        { type: "function", function: { index: 1, name: "get_time", arguments: { tz: "Europe/Oslo" } } },
      ],
    },
    // Matched by tool_name and order, not by id.
    { role: "tool", tool_name: "get_weather", content: "-3°C, snow" },
    { role: "tool", tool_name: "get_time", content: "clock plugin crashed" },
  ],
  expectedSecondRound: (call, content) => {
    expect(call.id).toBe("call_0");
    return [
      { role: "system", content: "You are terse." },
      { role: "user", content: "Weather in Oslo?" },
      {
        role: "assistant",
        content: "Let me check the weather.",
        tool_calls: [
          {
            type: "function",
            function: { index: 0, name: "get_current_weather", arguments: { format: "celsius", location: "Toronto" } },
          },
        ],
      },
      { role: "tool", tool_name: "get_current_weather", content },
    ];
  },
});

test("ollama: the documented text chunks and final chunk (prompt_eval_count / eval_count)", async () => {
  await using up = startFakeUpstream([{ headers: ctype, body: fixture("ollama/text.ndjson") }]);
  const events = await collect(provider(up.url).stream(baseRequest(), {}));
  expect(textOf(events)).toBe("The sky is blue.");
  expect(events.slice(-2)).toEqual([
    { type: "usage", input_tokens: 122, output_tokens: 33 },
    { type: "done", stop_reason: "end_turn" },
  ]);
});

test("ollama: arguments sent as a JSON string are parsed, and invalid ones are an error event", async () => {
  await using up = startFakeUpstream([
    { headers: ctype, body: calls({ function: { name: "get_weather", arguments: '{"city":"Oslo"}' } }) },
    { headers: ctype, body: calls({ function: { name: "get_weather", arguments: '{"city":' } }) },
  ]);
  expect(callsOf(await collect(provider(up.url).stream(baseRequest(), {})))[0]).toMatchObject({
    name: "get_weather",
    input: { city: "Oslo" },
  });
  const bad = await collect(provider(up.url).stream(baseRequest(), {}));
  expect(callsOf(bad)).toEqual([]);
  expect(errorOf(bad.at(-1)).message).toBe("ollama: tool call get_weather has invalid JSON arguments");
});

test("ollama: made-up ids count on from the history; an id the server sends is kept; length is max_tokens", async () => {
  const prior: ChatMessage[] = [
    { role: "user", parts: [{ type: "text", text: "a" }] },
    { role: "assistant", parts: [{ type: "tool_use", id: "call_0", name: "get_time", input: {} }] },
    { role: "tool", parts: [{ type: "tool_result", tool_use_id: "call_0", content: "noon" }] },
  ];
  await using up = startFakeUpstream([
    { headers: ctype, body: fixture("ollama/two-tools.ndjson") },
    { headers: ctype, body: calls({ id: "srv-1", function: { name: "get_time", arguments: {} } }) },
    { headers: ctype, body: ndjson([msg("cut"), final("length")]) },
  ]);
  expect(
    callsOf(await collect(provider(up.url).stream(baseRequest({ messages: prior }), {}))).map((c) => c.id),
  ).toEqual(["call_1", "call_2"]);
  expect(callsOf(await collect(provider(up.url).stream(baseRequest(), {})))[0]!.id).toBe("srv-1");
  expect((await collect(provider(up.url).stream(baseRequest(), {}))).at(-1)).toEqual({
    type: "done",
    stop_reason: "max_tokens",
  });
});
