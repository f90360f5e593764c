import { expect } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { createOpenAIChatProvider } from "../../../src/agent/providers/openai-chat.ts";
import { sse } from "../../helpers/fake-upstream.ts";
import { KEY, wireSuite } from "./suite.ts";

const fixture = (name: string) => readFileSync(join(import.meta.dir, "../../fixtures/providers", name), "utf8");
const chunk = (delta: unknown, finish: string | null = null) => ({ id: "chatcmpl-T", object: "chat.completion.chunk", created: 1, model: "m", choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }], usage: null });
const usage = { id: "chatcmpl-T", object: "chat.completion.chunk", created: 1, model: "m", choices: [], usage: { prompt_tokens: 10, completion_tokens: 5, total_tokens: 15 } };
const text = (t: string) => {
  const half = Math.ceil([...t].length / 2);
  return sse([chunk({ role: "assistant", content: "", refusal: null }), chunk({ content: [...t].slice(0, half).join("") }), chunk({ content: [...t].slice(half).join("") }), chunk({}, "stop"), usage, "[DONE]"]);
};

wireSuite({
  name: "openai",
  make: (url, key) => createOpenAIChatProvider({ baseUrl: url, apiKey: key }),
  contentType: "text/event-stream",
  text,
  textThenTool: { body: fixture("openai-text-tool.sse"), text: "Let me look that up.", call: { name: "GetPersonAge", input: { personName: "Alice" } } },
  twoTools: {
    // Parallel calls interleaving by index, and a server that reuses index 0 with a new id.
    body: sse([
      chunk({ role: "assistant", content: null, tool_calls: [{ index: 0, id: "call_a", type: "function", function: { name: "get_weather", arguments: "" } }] }),
      chunk({ tool_calls: [{ index: 1, id: "call_b", type: "function", function: { name: "get_time", arguments: '{"tz":' } }] }),
      chunk({ tool_calls: [{ index: 0, function: { arguments: '{"city":"Oslo"}' } }] }),
      chunk({ tool_calls: [{ index: 1, function: { arguments: '"UTC"}' } }] }),
      chunk({}, "tool_calls"),
      usage,
      "[DONE]",
    ]),
    calls: [
      { name: "get_weather", input: { city: "Oslo" } },
      { name: "get_time", input: { tz: "UTC" } },
    ],
  },
  midStreamError: sse([chunk({ role: "assistant", content: "" }), chunk({ content: "Hel" }), { error: { message: "The server had an error while processing your request.", type: "server_error", param: null, code: null } }]),
  errorBody: (status) =>
    JSON.stringify(
      status === 401
        ? { error: { message: `Incorrect API key provided: ${KEY}. You can find your API key at https://platform.openai.com/account/api-keys.`, type: "invalid_request_error", param: null, code: "invalid_api_key" } }
        : status === 429
          ? { error: { message: "Rate limit reached. Please try again in 2s.", type: "tokens", param: null, code: "rate_limit_exceeded" } }
          : { error: { message: "The server is overloaded.", type: "service_unavailable_error", param: null, code: "server_is_overloaded" } },
    ),
  rateLimitHeaders: { "retry-after": "2", "content-type": "application/json" },
  rateLimitDelayMs: 2000,
  checkAuth: (req) => {
    expect(req.headers.authorization).toBe(`Bearer ${KEY}`);
    expect(req.path).toBe("/chat/completions");
    expect(req.body).toMatchObject({ model: "test-model", stream: true, stream_options: { include_usage: true }, tool_choice: "auto" });
    expect(req.body.messages[0]).toEqual({ role: "system", content: "You are terse." });
    expect(req.body.tools[0]).toEqual({ type: "function", function: { name: "get_weather", description: "Weather for a city", parameters: { type: "object", properties: { city: { type: "string" } }, required: ["city"] } } });
  },
  nativeToolResult: (req) => req.body.messages.slice(-2),
  expectedToolResult: (call, content) => [expect.objectContaining({ role: "assistant", tool_calls: [{ id: call.id, type: "function", function: { name: call.name, arguments: JSON.stringify({ personName: "Alice" }) } }] }), { role: "tool", tool_call_id: call.id, content }],
  checkToolResultRequest: (req) => {
    expect(req.body.messages).toEqual([
      { role: "system", content: "You are terse." },
      { role: "user", content: "Weather in Oslo?" },
      { role: "assistant", content: "Checking.", tool_calls: [{ id: "call_1", type: "function", function: { name: "get_weather", arguments: '{"city":"Oslo"}' } }] },
      { role: "tool", tool_call_id: "call_1", content: "-3°C, snow" },
    ]);
  },
});
