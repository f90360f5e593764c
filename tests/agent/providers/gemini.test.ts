import { expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { createGeminiProvider } from "../../../src/agent/providers/gemini.ts";
import { sse, startFakeUpstream } from "../../helpers/fake-upstream.ts";
import { baseRequest, collect, KEY, wireSuite } from "./suite.ts";

const fixture = (name: string) => readFileSync(join(import.meta.dir, "../../fixtures/providers", name), "utf8");
const lines = (name: string) => fixture(name).trim().split("\n").map((l) => JSON.parse(l) as unknown);
const usage = { promptTokenCount: 10, candidatesTokenCount: 5, totalTokenCount: 15 };
const chunk = (parts: unknown[], finishReason?: string) => ({ candidates: [{ content: { parts, role: "model" }, ...(finishReason && { finishReason }), index: 0 }], usageMetadata: usage, modelVersion: "gemini-2.5-flash", responseId: "R1" });
const text = (t: string) => {
  const half = Math.ceil([...t].length / 2);
  // CRLF separators, as production Gemini is said to send (wire-formats §0).
  return sse([chunk([{ text: [...t].slice(0, half).join("") }]), chunk([{ text: [...t].slice(half).join("") }]), chunk([{ text: "" }], "STOP")], { crlf: true });
};

wireSuite({
  name: "gemini",
  make: (url, key) => createGeminiProvider({ baseUrl: url, apiKey: key }),
  contentType: "text/event-stream",
  text,
  textThenTool: { body: fixture("gemini-text-tool.sse"), text: "Let me check the weather.", call: { name: "weather", input: { location: "San Francisco" } } },
  twoTools: {
    body: sse([chunk([{ functionCall: { name: "get_weather", args: { city: "Oslo" } } }, { functionCall: { name: "get_time", args: { tz: "UTC" } } }]), chunk([{ text: "" }], "STOP")]),
    calls: [
      { name: "get_weather", input: { city: "Oslo" } },
      { name: "get_time", input: { tz: "UTC" } },
    ],
  },
  midStreamError: sse([chunk([{ text: "Hel" }]), { error: { code: 503, message: "The model is overloaded. Please try again later.", status: "UNAVAILABLE" } }]),
  errorBody: (status) =>
    JSON.stringify(
      status === 401
        ? { error: { code: 400, message: "API key not valid. Please pass a valid API key.", status: "INVALID_ARGUMENT", details: [{ "@type": "type.googleapis.com/google.rpc.ErrorInfo", reason: "API_KEY_INVALID", domain: "googleapis.com" }] } }
        : status === 429
          ? { error: { code: 429, message: "You exceeded your current quota, please check your plan.", status: "RESOURCE_EXHAUSTED", details: [{ "@type": "type.googleapis.com/google.rpc.RetryInfo", retryDelay: "34.4s" }] } }
          : { error: { code: 503, message: "The model is overloaded. Please try again later.", status: "UNAVAILABLE" } },
    ),
  rateLimitHeaders: { "content-type": "application/json" },
  rateLimitDelayMs: 34_400,
  checkAuth: (req) => {
    expect(req.headers["x-goog-api-key"]).toBe(KEY);
    expect(req.path).toBe("/models/test-model:streamGenerateContent");
    expect(req.search).toBe("?alt=sse");
    expect(req.body.systemInstruction).toEqual({ parts: [{ text: "You are terse." }] });
    expect(req.body.generationConfig).toEqual({ maxOutputTokens: 256 });
    expect(req.body.tools).toEqual([{ functionDeclarations: [{ name: "get_weather", description: "Weather for a city", parameters: { type: "object", properties: { city: { type: "string" } }, required: ["city"] } }] }]);
  },
  nativeToolResult: (req) => req.body.contents.slice(-2),
  expectedToolResult: (call, content) => [{ role: "model", parts: [{ text: "Let me check the weather." }, { functionCall: { name: call.name, args: { location: "San Francisco" } }, thoughtSignature: "c3luLXNpZw==" }] }, { role: "user", parts: [{ functionResponse: { name: call.name, response: { result: content } } }] }],
  checkToolResultRequest: (req) => {
    expect(req.body.systemInstruction).toEqual({ parts: [{ text: "You are terse." }] });
    expect(req.body.contents).toEqual([
      { role: "user", parts: [{ text: "Weather in Oslo?" }] },
      { role: "model", parts: [{ text: "Checking." }, { functionCall: { name: "get_weather", args: { city: "Oslo" }, id: "call_1" } }] },
      { role: "user", parts: [{ functionResponse: { name: "get_weather", response: { result: "-3°C, snow" }, id: "call_1" } }] },
    ]);
  },
});

test("gemini: recorded chunks; a call's thoughtSignature is echoed back exactly", async () => {
  await using up = startFakeUpstream([{ body: sse(lines("gemini-tool.jsonl")) }, { body: sse(lines("gemini-text.jsonl")) }]);
  const p = createGeminiProvider({ baseUrl: up.url, apiKey: KEY });
  const first = await collect(p.stream(baseRequest(), {}));
  const call = first.find((e) => e.type === "tool_call") as { id: string; name: string; input: unknown; signature?: string };
  expect(call).toMatchObject({ name: "weather", input: { location: "San Francisco" } });
  expect(call.signature).toStartWith("EqUCCqICAb4+");
  expect(first.at(-1)).toEqual({ type: "done", stop_reason: "tool_use" });
  const history = [
    { role: "user" as const, parts: [{ type: "text" as const, text: "Weather?" }] },
    { role: "assistant" as const, parts: [{ type: "tool_use" as const, id: call.id, name: call.name, input: call.input, signature: call.signature! }] },
    { role: "tool" as const, parts: [{ type: "tool_result" as const, tool_use_id: call.id, content: "58F sunny" }] },
  ];
  const second = await collect(p.stream(baseRequest({ messages: history }), {}));
  expect(second.filter((e) => e.type === "text").map((e) => (e as { text: string }).text).join("")).toBe('There are **3** "r"s in strawberry.\n\nst**r**awbe**rr**y');
  expect(second.at(-2)).toEqual({ type: "usage", input_tokens: 9, output_tokens: 23 });
  const sent = up.requests[1]!.body.contents;
  expect(sent[1]).toEqual({ role: "model", parts: [{ functionCall: { name: "weather", args: { location: "San Francisco" } }, thoughtSignature: call.signature }] });
  expect(sent[2]).toEqual({ role: "user", parts: [{ functionResponse: { name: "weather", response: { result: "58F sunny" } } }] });
});
