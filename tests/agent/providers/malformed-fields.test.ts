/**
 * Upstream JSON whose fields have the wrong type (found by tests/fuzz/providers.test.ts, issue 15):
 * the readers cast payloads to their wire types, so an object as a tool-call id, a function call
 * without a name, an object as text or a string token count used to reach the loop, the store and
 * the budget arithmetic. Each is now the stream's last event: a ProviderError naming a malformed payload.
 */
import { expect, test } from "bun:test";
import { createAnthropicProvider } from "../../../src/agent/providers/anthropic.ts";
import { createGeminiProvider } from "../../../src/agent/providers/gemini.ts";
import { createOllamaProvider } from "../../../src/agent/providers/ollama.ts";
import { createOpenAIChatProvider } from "../../../src/agent/providers/openai-chat.ts";
import type { Provider, ProviderOptions } from "../../../src/agent/types.ts";
import { startFakeUpstream } from "../../helpers/fake-upstream.ts";
import { baseRequest, collect, errorOf, fixture, KEY } from "./suite.ts";

const cases: [string, (o: ProviderOptions) => Provider, string][] = [
  [
    "anthropic: a tool_use block whose id is an object",
    createAnthropicProvider,
    fixture("anthropic/text-tool.txt").replace('"id":"toolu_01T1x1fJ34qAmk2tNTrN7Up6"', '"id":{}'),
  ],
  [
    "gemini: a functionCall without a name",
    createGeminiProvider,
    fixture("gemini/text-tool.txt").replace('"name":"weather"', '"nome":"weather"'),
  ],
  [
    "ollama: message content that is an object",
    createOllamaProvider,
    fixture("ollama/text.ndjson").replace('"content":"The"', '"content":{}'),
  ],
  [
    "openai: token counts sent as strings",
    createOpenAIChatProvider,
    fixture("openai/text.txt").replace('"prompt_tokens":14', '"prompt_tokens":"14"'),
  ],
];

for (const [name, make, body] of cases) {
  test(`${name} ends the stream with a malformed-payload error`, async () => {
    await using up = startFakeUpstream([
      { body, headers: { "content-type": name.startsWith("ollama") ? "application/x-ndjson" : "text/event-stream" } },
    ]);
    const events = await collect(make({ baseUrl: up.url, apiKey: KEY }).stream(baseRequest(), {}));
    expect(events.filter((e) => e.type === "done")).toEqual([]);
    expect(errorOf(events.at(-1)).message).toContain("malformed stream payload");
  });
}
