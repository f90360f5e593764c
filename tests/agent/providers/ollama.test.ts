import { expect } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { createOllamaProvider } from "../../../src/agent/providers/ollama.ts";
import { wireSuite } from "./suite.ts";

const fixture = (name: string) => readFileSync(join(import.meta.dir, "../../fixtures/providers", name), "utf8");
const line = (o: unknown) => JSON.stringify(o) + "\n";
const msg = (content: string, extra: Record<string, unknown> = {}) => ({ model: "m", created_at: "2025-05-27T22:54:57.5Z", message: { role: "assistant", content, ...extra }, done: false });
const final = { model: "m", created_at: "2025-05-27T22:54:58Z", message: { role: "assistant", content: "" }, done_reason: "stop", done: true, total_duration: 1, prompt_eval_count: 10, eval_count: 5 };
const text = (t: string) => {
  const half = Math.ceil([...t].length / 2);
  return line(msg([...t].slice(0, half).join(""))) + line(msg([...t].slice(half).join(""))) + line(final);
};

wireSuite({
  name: "ollama",
  make: (url) => createOllamaProvider({ baseUrl: url, apiKey: null }),
  contentType: "application/x-ndjson",
  text,
  textThenTool: { body: fixture("ollama-text-tool.ndjson"), text: "Let me check the weather.", call: { name: "get_current_weather", input: { format: "celsius", location: "Toronto" } } },
  twoTools: {
    body: line(msg("", { tool_calls: [{ function: { name: "get_weather", arguments: { city: "Oslo" } } }, { type: "function", function: { index: 1, name: "get_time", arguments: { tz: "UTC" } } }] })) + line(final),
    calls: [
      { name: "get_weather", input: { city: "Oslo" } },
      { name: "get_time", input: { tz: "UTC" } },
    ],
  },
  midStreamError: line(msg("Hel")) + line({ error: "model runner has unexpectedly stopped, mid-stream" }),
  errorBody: (status) => JSON.stringify({ error: status === 401 ? "unauthorized" : status === 429 ? "too many requests" : "server busy, please try again" }),
  rateLimitHeaders: { "retry-after": "1", "content-type": "application/json" },
  rateLimitDelayMs: 1000,
  checkAuth: (req) => {
    expect(req.headers.authorization).toBeUndefined();
    expect(req.path).toBe("/api/chat");
    expect(req.body).toMatchObject({ model: "test-model", stream: true, options: { num_predict: 256 } });
    expect(req.body.messages[0]).toEqual({ role: "system", content: "You are terse." });
    expect(req.body.tools[0]).toEqual({ type: "function", function: { name: "get_weather", description: "Weather for a city", parameters: { type: "object", properties: { city: { type: "string" } }, required: ["city"] } } });
  },
  nativeToolResult: (req) => req.body.messages.slice(-2),
  expectedToolResult: (call, content) => [{ role: "assistant", content: "Let me check the weather.", tool_calls: [{ type: "function", function: { index: 0, name: call.name, arguments: { format: "celsius", location: "Toronto" } } }] }, { role: "tool", tool_name: call.name, content }],
  checkToolResultRequest: (req) => {
    expect(req.body.messages).toEqual([
      { role: "system", content: "You are terse." },
      { role: "user", content: "Weather in Oslo?" },
      { role: "assistant", content: "Checking.", tool_calls: [{ type: "function", function: { index: 0, name: "get_weather", arguments: { city: "Oslo" } } }] },
      { role: "tool", tool_name: "get_weather", content: "-3°C, snow" },
    ]);
  },
});
