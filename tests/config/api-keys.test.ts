import { expect, test } from "bun:test";
import { resolveApiKey, writeCredential } from "../../src/config/index.ts";
import { tempDir } from "../helpers/temp.ts";

test("API keys: env var, then credential file, then config (SPEC §1); Ollama needs none", () => {
  using home = tempDir();
  expect(resolveApiKey({}, home.path, "anthropic")).toEqual({ key: null, source: "none" });
  expect(resolveApiKey({}, home.path, "anthropic", "sk-config")).toEqual({ key: "sk-config", source: "config" });
  writeCredential(home.path, "anthropic", "sk-file\n");
  expect(resolveApiKey({}, home.path, "anthropic", "sk-config")).toEqual({ key: "sk-file", source: "credentials" });
  expect(resolveApiKey({ ANTHROPIC_API_KEY: "sk-env" }, home.path, "anthropic", "sk-config")).toEqual({ key: "sk-env", source: "env" });
  expect(resolveApiKey({ OPENAI_API_KEY: "sk-o" }, home.path, "openai")).toEqual({ key: "sk-o", source: "env" });
  expect(resolveApiKey({ GEMINI_API_KEY: "g" }, home.path, "gemini").key).toBe("g");
  expect(resolveApiKey({ ANTHROPIC_API_KEY: "sk-env" }, home.path, "ollama")).toEqual({ key: null, source: "none" });
});
