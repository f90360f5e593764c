/**
 * Each provider id of the registry (src/config/providers.ts: endpoint, key, prices, onboarding) joined
 * to its wire module. The modules load on first use, so the gateway's cold start does not pay for
 * them. Typed over every registry id: an entry there without a line here does not compile.
 */
import type { ProviderId } from "../../config/index.ts";
import type { Provider, ProviderOptions } from "../types.ts";

/** Makes a provider for one endpoint and key. */
export type ProviderFactory = (opts: ProviderOptions) => Provider;

export const WIRE_MODULES: Record<ProviderId, () => Promise<ProviderFactory>> = {
  anthropic: async () => (await import("./anthropic.ts")).createAnthropicProvider,
  openai: async () => (await import("./openai-chat.ts")).createOpenAIChatProvider,
  gemini: async () => (await import("./gemini.ts")).createGeminiProvider,
  ollama: async () => (await import("./ollama.ts")).createOllamaProvider,
};

const loaded = new Map<ProviderId, Promise<ProviderFactory>>();

/** The factory of a provider id, its module loaded once. */
export function factoryFor(id: ProviderId): Promise<ProviderFactory> {
  let f = loaded.get(id);
  if (!f) loaded.set(id, (f = WIRE_MODULES[id]()));
  return f;
}
