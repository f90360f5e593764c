/**
 * The provider registry: everything that names a model provider, in one entry each — its id, how
 * onboarding offers it, its default endpoint, the header its key goes in, the environment variable
 * holding that key, its models endpoint (the key check), its default model and its list prices.
 * It lives in config (the lowest layer that needs it: the schema validates `provider` against it,
 * api-keys reads `keyEnv`); metering reads the prices, onboarding the labels, and the agent's
 * provider factory joins each id to its wire module (src/agent/providers/registry.ts, typed so an
 * entry without a wire module does not compile). Adding a provider: one entry here, one line there.
 */

/** USD per million tokens. */
export interface Price {
  input: number;
  output: number;
}

export interface ProviderEntry {
  /** What `exoclaw onboard` shows in its list. */
  label: string;
  /** The model onboarding proposes (and writes with `--yes` and no `--model`). */
  defaultModel: string;
  /**
   * The endpoint used when an agent sets no `base_url`, written as the provider's docs write it (an
   * API version path included where the provider's paths start after it). A key from the environment
   * or the provider's credential goes only here (api-keys.ts).
   */
  baseUrl: string;
  /** The environment variable holding the provider's key; null for a provider that takes none. */
  keyEnv: string | null;
  /** Request headers carrying `key` (and any header the API always wants); none for a null key. */
  authHeaders(key: string | null): Record<string, string>;
  /** Path after the base URL of the cheapest authenticated read (its model list): onboard's and doctor's key check. */
  modelsPath: string;
  /**
   * When onboarding asks for an endpoint (OpenAI-compatible servers, a remote Ollama): the default it
   * names in the question. Absent: it does not ask.
   */
  endpointHint?: string;
  /** List prices by model-name prefix, as published (2025); "free" for a model run locally. */
  prices: readonly (readonly [prefix: string, price: Price])[] | "free";
}

const bearer = (key: string | null): Record<string, string> => (key ? { authorization: `Bearer ${key}` } : {});

export const ANTHROPIC_VERSION = "2023-06-01";

const ENTRIES = {
  anthropic: {
    label: "anthropic",
    defaultModel: "claude-sonnet-4-5",
    baseUrl: "https://api.anthropic.com",
    keyEnv: "ANTHROPIC_API_KEY",
    authHeaders: (key): Record<string, string> => ({
      ...(key && { "x-api-key": key }),
      "anthropic-version": ANTHROPIC_VERSION,
    }),
    modelsPath: "/v1/models",
    prices: [
      ["claude-opus-4", { input: 15, output: 75 }],
      ["claude-sonnet-4", { input: 3, output: 15 }],
      ["claude-3-7-sonnet", { input: 3, output: 15 }],
      ["claude-3-5-sonnet", { input: 3, output: 15 }],
      ["claude-haiku-4", { input: 1, output: 5 }],
      ["claude-3-5-haiku", { input: 0.8, output: 4 }],
    ],
  },
  openai: {
    label: "openai",
    defaultModel: "gpt-4o",
    baseUrl: "https://api.openai.com/v1",
    keyEnv: "OPENAI_API_KEY",
    authHeaders: bearer,
    modelsPath: "/models",
    endpointHint: "api.openai.com",
    prices: [
      ["gpt-4o-mini", { input: 0.15, output: 0.6 }],
      ["gpt-4o", { input: 2.5, output: 10 }],
      ["gpt-4.1-nano", { input: 0.1, output: 0.4 }],
      ["gpt-4.1-mini", { input: 0.4, output: 1.6 }],
      ["gpt-4.1", { input: 2, output: 8 }],
      ["o4-mini", { input: 1.1, output: 4.4 }],
    ],
  },
  gemini: {
    label: "gemini",
    defaultModel: "gemini-2.5-flash",
    baseUrl: "https://generativelanguage.googleapis.com/v1beta",
    keyEnv: "GEMINI_API_KEY",
    // The header rather than ?key=: the key stays out of every URL a proxy logs or we print.
    authHeaders: (key): Record<string, string> => (key ? { "x-goog-api-key": key } : {}),
    modelsPath: "/models",
    prices: [
      ["gemini-2.5-flash-lite", { input: 0.1, output: 0.4 }],
      ["gemini-2.5-flash", { input: 0.3, output: 2.5 }],
      ["gemini-2.5-pro", { input: 1.25, output: 10 }],
      ["gemini-2.0-flash", { input: 0.1, output: 0.4 }],
    ],
  },
  ollama: {
    label: "ollama",
    defaultModel: "llama3.2",
    baseUrl: "http://localhost:11434",
    keyEnv: null,
    // No key is ever sent, even one configured by mistake.
    authHeaders: () => ({}),
    modelsPath: "/api/tags",
    endpointHint: "http://127.0.0.1:11434",
    prices: "free",
  },
} satisfies Record<string, ProviderEntry>;

export type ProviderId = keyof typeof ENTRIES;

/** The registry, by provider id. */
export const PROVIDERS: Readonly<Record<ProviderId, ProviderEntry>> = ENTRIES;

/** Every provider id, in the order onboarding lists them. */
export const PROVIDER_IDS = Object.keys(PROVIDERS) as [ProviderId, ...ProviderId[]];

export const isProviderId = (s: string): s is ProviderId => Object.hasOwn(PROVIDERS, s);

/** True for a provider that takes no key at all (a local server). */
export const takesNoKey = (id: ProviderId): boolean => PROVIDERS[id].keyEnv === null;
