import { expect } from "bun:test";
import { join } from "node:path";
import { createAnthropicProvider } from "../../../src/agent/providers/anthropic.ts";
import { sse } from "../../helpers/fake-upstream.ts";
import { KEY, wireSuite } from "./suite.ts";

const FIX = join(import.meta.dir, "../../fixtures/providers");
const fixture = (name: string) => require("node:fs").readFileSync(join(FIX, name), "utf8") as string;
const pings = fixture("anthropic-tool-pings.jsonl").trim().split("\n").map((l) => JSON.parse(l));

const start = { type: "message_start", message: { id: "msg_1", type: "message", role: "assistant", model: "m", content: [], stop_reason: null, usage: { input_tokens: 10, output_tokens: 1 } } };
const text = (t: string) => {
  const half = Math.ceil([...t].length / 2);
  const parts = [[...t].slice(0, half).join(""), [...t].slice(half).join("")];
  return sse(
    [
      start,
      { type: "content_block_start", index: 0, content_block: { type: "text", text: "" } },
      { type: "ping" },
      ...parts.map((p) => ({ type: "content_block_delta", index: 0, delta: { type: "text_delta", text: p } })),
      { type: "content_block_stop", index: 0 },
      { type: "message_delta", delta: { stop_reason: "end_turn", stop_sequence: null }, usage: { output_tokens: 5 } },
      { type: "message_stop" },
    ],
    { named: true },
  );
};

wireSuite({
  name: "anthropic",
  make: (url, key) => createAnthropicProvider({ baseUrl: url, apiKey: key }),
  contentType: "text/event-stream; charset=utf-8",
  text,
  textThenTool: { body: fixture("anthropic-text-tool.sse"), text: "Okay, let's check the weather for San Francisco, CA:", call: { name: "get_weather", input: { location: "San Francisco, CA", unit: "fahrenheit" } } },
  twoTools: {
    // The recorded tool-only stream with pings between deltas, plus a second tool block.
    body: sse(
      [
        ...pings.slice(0, -2),
        { type: "content_block_start", index: 1, content_block: { type: "tool_use", id: "toolu_2", name: "time", input: {} } },
        { type: "content_block_delta", index: 1, delta: { type: "input_json_delta", partial_json: '{"tz":"Europe/Oslo"}' } },
        { type: "content_block_stop", index: 1 },
        ...pings.slice(-2),
      ],
      { named: true },
    ),
    calls: [
      { name: "weather", input: { location: "San Francisco" } },
      { name: "time", input: { tz: "Europe/Oslo" } },
    ],
  },
  midStreamError: sse(
    [start, { type: "content_block_start", index: 0, content_block: { type: "text", text: "" } }, { type: "content_block_delta", index: 0, delta: { type: "text_delta", text: "Hel" } }, { type: "error", error: { type: "overloaded_error", message: "Overloaded" } }],
    { named: true },
  ),
  errorBody: (status) =>
    JSON.stringify({
      type: "error",
      error: status === 401 ? { type: "authentication_error", message: `invalid x-api-key ${KEY}` } : status === 429 ? { type: "rate_limit_error", message: "Rate limited" } : { type: "overloaded_error", message: "Overloaded" },
      request_id: "req_011Cd65WVh8Zrvno3NunpJ73",
    }),
  rateLimitHeaders: { "retry-after": "3", "content-type": "application/json" },
  rateLimitDelayMs: 3000,
  checkAuth: (req) => {
    expect(req.headers["x-api-key"]).toBe(KEY);
    expect(req.headers["anthropic-version"]).toBe("2023-06-01");
    expect(req.path).toBe("/v1/messages");
    expect(req.body).toMatchObject({ model: "test-model", max_tokens: 256, stream: true, system: "You are terse." });
    expect(req.body.tools[0]).toEqual({ name: "get_weather", description: "Weather for a city", input_schema: { type: "object", properties: { city: { type: "string" } }, required: ["city"] } });
  },
  nativeToolResult: (req) => req.body.messages.at(-1),
  expectedToolResult: (call, content) => ({ role: "user", content: [{ type: "tool_result", tool_use_id: call.id, content }] }),
  checkToolResultRequest: (req) => {
    expect(req.body.system).toBe("You are terse.");
    expect(req.body.messages.some((m: { role: string }) => m.role === "system")).toBe(false);
    expect(req.body.messages).toEqual([
      { role: "user", content: "Weather in Oslo?" },
      { role: "assistant", content: [{ type: "text", text: "Checking." }, { type: "tool_use", id: "call_1", name: "get_weather", input: { city: "Oslo" } }] },
      { role: "user", content: [{ type: "tool_result", tool_use_id: "call_1", content: "-3°C, snow" }] },
    ]);
  },
});
