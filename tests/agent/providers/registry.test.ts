/**
 * The provider registry (src/config/providers.ts) is the one place a provider is named: every
 * entry is complete, and each part of the program that needs a provider finds every entry there —
 * the config schema, API keys, prices, onboarding and the wire module (its endpoint and key header).
 */
import { describe, expect, test } from "bun:test";
import { factoryFor, WIRE_MODULES } from "../../../src/agent/providers/registry.ts";
import { DEFAULT_MODELS, onboardConfig } from "../../../src/cli/onboard.ts";
import { loadConfig, PROVIDER_IDS, PROVIDERS, resolveApiKey, takesNoKey } from "../../../src/config/index.ts";
import { costOf, priceOf } from "../../../src/metering/index.ts";
import { tempDir } from "../../helpers/temp.ts";
import { baseRequest, collect } from "./suite.ts";

describe("the provider registry", () => {
  test("lists the four providers, each entry complete", () => {
    expect(PROVIDER_IDS).toEqual(["anthropic", "openai", "gemini", "ollama"]);
    for (const id of PROVIDER_IDS) {
      const p = PROVIDERS[id];
      expect(p.label).not.toBe("");
      expect(p.defaultModel).not.toBe("");
      expect(new URL(p.baseUrl).protocol).toMatch(/^https?:$/);
      expect(p.baseUrl.endsWith("/")).toBe(false);
      expect(p.modelsPath).toMatch(/^\/[a-z0-9/]+$/);
      if (p.keyEnv !== null) expect(p.keyEnv).toMatch(/^[A-Z][A-Z0-9_]*_API_KEY$/);
      expect(p.prices === "free" || p.prices.length > 0).toBe(true);
    }
  });

  test("every provider is accepted by the config as an agent's provider and as a fallback; another name is refused", () => {
    using home = tempDir();
    for (const id of PROVIDER_IDS) {
      home.file(
        "config.toml",
        `[[agents]]\nid = "main"\nprovider = "${id}"\nmodel = "m"\nfallbacks = [{ provider = "${id}", model = "n" }]\n`,
      );
      expect(loadConfig({ EXOCLAW_HOME: home.path }).agents[0]!.provider).toBe(id);
    }
    home.file("config.toml", `[[agents]]\nid = "main"\nprovider = "mistral"\n`);
    expect(() => loadConfig({ EXOCLAW_HOME: home.path })).toThrow(/provider/);
  });

  test("onboarding offers every provider with its default model, and what it writes loads", () => {
    using home = tempDir();
    for (const id of PROVIDER_IDS) {
      expect(DEFAULT_MODELS[id]).toBe(PROVIDERS[id].defaultModel);
      home.file("config.toml", onboardConfig(id, DEFAULT_MODELS[id]));
      const agent = loadConfig({ EXOCLAW_HOME: home.path }).agents[0]!;
      expect([agent.provider, agent.model]).toEqual([id, PROVIDERS[id].defaultModel]);
    }
  });

  test("every default model has a price (Ollama's is zero), and the cost is per million tokens", () => {
    for (const id of PROVIDER_IDS) expect(priceOf(id, PROVIDERS[id].defaultModel)).not.toBeNull();
    expect(costOf("ollama", "llama3.2", 1e6, 1e6)).toBe(0);
    expect(costOf("openai", "gpt-4o", 1e6, 1e6)).toBe(12.5);
    // Longest prefix across every table: gpt-4o-mini is not priced as gpt-4o.
    expect(priceOf("openai", "gpt-4o-mini-2024-07-18")).toEqual({ input: 0.15, output: 0.6 });
    expect(priceOf("openai", "some-unknown-model")).toBeNull();
  });

  test("each provider's key is read from its own environment variable; a keyless one reads none", () => {
    using home = tempDir();
    for (const id of PROVIDER_IDS) {
      const env = PROVIDERS[id].keyEnv;
      if (env === null) {
        expect(takesNoKey(id)).toBe(true);
        expect(resolveApiKey({}, home.path, id)).toEqual({ key: null, source: "none" });
      } else {
        expect(takesNoKey(id)).toBe(false);
        expect(resolveApiKey({ [env]: `key-of-${id}` }, home.path, id)).toEqual({ key: `key-of-${id}`, source: "env" });
      }
    }
  });

  test("each provider's wire module sends to the registry's endpoint with the registry's key headers", async () => {
    expect(Object.keys(WIRE_MODULES).sort()).toEqual([...PROVIDER_IDS].sort());
    for (const id of PROVIDER_IDS) {
      const sent: { url: string; headers: Record<string, string> }[] = [];
      const recording = (async (url: string | URL | Request, init?: RequestInit) => {
        sent.push({ url: String(url), headers: Object.fromEntries(new Headers(init?.headers).entries()) });
        return new Response('{"error":{"message":"stop here"}}', { status: 400 });
      }) as typeof fetch;
      const provider = (await factoryFor(id))({ apiKey: "sk-registry-test-1234", fetch: recording });
      expect(provider.id).toBe(id);
      const events = await collect(provider.stream(baseRequest({ model: PROVIDERS[id].defaultModel }), {}));
      expect(events.map((e) => e.type)).toEqual(["error"]);
      expect(sent).toHaveLength(1);
      expect(sent[0]!.url.startsWith(`${PROVIDERS[id].baseUrl}/`)).toBe(true);
      expect(sent[0]!.headers).toMatchObject(PROVIDERS[id].authHeaders("sk-registry-test-1234"));
      if (takesNoKey(id)) expect(JSON.stringify(sent[0]!.headers)).not.toContain("sk-registry-test-1234");
    }
  });
});
