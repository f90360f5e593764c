import { expect, test } from "bun:test";
import { resolveAgentKey } from "../../src/config/api-keys.ts";
import { resolveApiKey, writeCredential } from "../../src/config/index.ts";
import { tempDir } from "../helpers/temp.ts";

test("API keys: env var, then credential file, then config (SPEC §1); Ollama needs none", () => {
  using home = tempDir();
  expect(resolveApiKey({}, home.path, "anthropic")).toEqual({ key: null, source: "none" });
  expect(resolveApiKey({}, home.path, "anthropic", "sk-config")).toEqual({ key: "sk-config", source: "config" });
  writeCredential(home.path, "anthropic", "sk-file\n");
  expect(resolveApiKey({}, home.path, "anthropic", "sk-config")).toEqual({ key: "sk-file", source: "credentials" });
  expect(resolveApiKey({ ANTHROPIC_API_KEY: "sk-env" }, home.path, "anthropic", "sk-config")).toEqual({
    key: "sk-env",
    source: "env",
  });
  expect(resolveApiKey({ OPENAI_API_KEY: "sk-o" }, home.path, "openai")).toEqual({ key: "sk-o", source: "env" });
  expect(resolveApiKey({ GEMINI_API_KEY: "g" }, home.path, "gemini").key).toBe("g");
  expect(resolveApiKey({ ANTHROPIC_API_KEY: "sk-env" }, home.path, "ollama")).toEqual({ key: null, source: "none" });
});

test("a custom base_url gets only the agent's own key, never the provider's env var or credential (finding 13)", () => {
  using home = tempDir();
  const env = { OPENAI_API_KEY: "sk-provider-env", MY_PROXY_KEY: "sk-named" };
  writeCredential(home.path, "openai", "sk-provider-file");
  const custom = { id: "openai", provider: "openai" as const, base_url: "http://127.0.0.1:9/v1" };
  // An agent named like the provider does not pick up the provider's credential file.
  expect(resolveAgentKey(env, home.path, custom)).toEqual({ key: null, source: "none" });
  expect(resolveAgentKey(env, home.path, { ...custom, api_key: "sk-own" })).toEqual({
    key: "sk-own",
    source: "config",
  });
  writeCredential(home.path, "agent-openai", "sk-agent-file");
  expect(resolveAgentKey(env, home.path, { ...custom, api_key: "sk-own" })).toEqual({
    key: "sk-agent-file",
    source: "credentials",
  });
  expect(resolveAgentKey(env, home.path, { ...custom, api_key_env: "MY_PROXY_KEY" })).toEqual({
    key: "sk-named",
    source: "env",
  });
  // The default endpoint keeps SPEC §1's order; a named variable comes first.
  const plain = { ...custom, base_url: "" };
  expect(resolveAgentKey(env, home.path, { ...plain, api_key: "sk-own" })).toEqual({
    key: "sk-provider-env",
    source: "env",
  });
  expect(resolveAgentKey({}, home.path, plain)).toEqual({ key: "sk-provider-file", source: "credentials" });
  expect(resolveAgentKey(env, home.path, { ...plain, api_key_env: "MY_PROXY_KEY" })).toEqual({
    key: "sk-named",
    source: "env",
  });
});
