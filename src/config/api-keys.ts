/**
 * API key resolution for a provider (SPEC §1), highest first: the environment variable, the
 * credential file `<state>/credentials/<provider>.key`, then `api_key` in the config file
 * (accepted, with a warning: keys in config files get shared and committed).
 *
 * A key goes only to the endpoint it belongs to: an agent with its own `base_url` (a proxy, an
 * OpenAI-compatible server) never gets the provider's key from the environment or the provider's
 * credential — only its own, highest first: the environment variable its `api_key_env` names, the
 * credential `agent-<id>` (`<state>/credentials/agent-<id>.key`; the prefix keeps an agent named
 * "openai" from reading the provider's key), then `api_key` in its config.
 */
import { readCredential } from "./credentials.ts";
import type { AgentConfig } from "./schema.ts";
import type { Env } from "./load.ts";
import { isProviderId, PROVIDERS } from "./providers.ts";

/** The environment variable of each provider that takes a key (the registry's `keyEnv`). */
export const API_KEY_ENV: Record<string, string | undefined> = Object.fromEntries(
  Object.entries(PROVIDERS).flatMap(([id, p]) => (p.keyEnv ? [[id, p.keyEnv]] : [])),
);

export interface ResolvedKey {
  key: string | null;
  source: "env" | "credentials" | "config" | "none";
}

export function resolveApiKey(env: Env, home: string, provider: string, configKey?: string): ResolvedKey {
  const name = isProviderId(provider) ? PROVIDERS[provider].keyEnv : null;
  const fromEnv = name ? env[name] : undefined;
  if (fromEnv) return { key: fromEnv, source: "env" };
  const fromFile = readCredential(home, provider);
  if (fromFile) return { key: fromFile, source: "credentials" };
  if (configKey) return { key: configKey, source: "config" };
  return { key: null, source: "none" };
}

/** The credential name holding the key of an agent with its own base_url. */
export const agentCredentialName = (agentId: string): string => `agent-${agentId}`;

/**
 * The key for an agent's own provider call (its primary step). Default endpoint: the variable
 * `api_key_env` names, then resolveApiKey. Custom `base_url`: only the agent's own key (`api_key_env`,
 * its `agent-<id>` credential, its `api_key`), else none — never a provider-wide key, which belongs
 * to the provider's own endpoint.
 */
export function resolveAgentKey(
  env: Env,
  home: string,
  agent: Pick<AgentConfig, "id" | "provider" | "base_url" | "api_key" | "api_key_env">,
): ResolvedKey {
  const named = agent.api_key_env ? env[agent.api_key_env] : undefined;
  if (named) return { key: named, source: "env" };
  if (agent.base_url === "") return resolveApiKey(env, home, agent.provider, agent.api_key);
  const fromFile = readCredential(home, agentCredentialName(agent.id));
  if (fromFile) return { key: fromFile, source: "credentials" };
  if (agent.api_key) return { key: agent.api_key, source: "config" };
  return { key: null, source: "none" };
}
