/**
 * API key resolution for a provider (SPEC §1), highest first: the environment variable, the
 * credential file `<state>/credentials/<provider>.key`, then `api_key` in the config file
 * (accepted, with a warning: keys in config files get shared and committed).
 */
import { readCredential } from "./credentials.ts";
import type { Env } from "./load.ts";

export const API_KEY_ENV: Record<string, string | undefined> = {
  anthropic: "ANTHROPIC_API_KEY",
  openai: "OPENAI_API_KEY",
  gemini: "GEMINI_API_KEY",
};

export interface ResolvedKey {
  key: string | null;
  source: "env" | "credentials" | "config" | "none";
}

export function resolveApiKey(env: Env, home: string, provider: string, configKey?: string): ResolvedKey {
  const name = API_KEY_ENV[provider];
  const fromEnv = name ? env[name] : undefined;
  if (fromEnv) return { key: fromEnv, source: "env" };
  const fromFile = readCredential(home, provider);
  if (fromFile) return { key: fromFile, source: "credentials" };
  if (configKey) return { key: configKey, source: "config" };
  return { key: null, source: "none" };
}
