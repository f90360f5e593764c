/**
 * What a model call costs, from the list prices in the provider registry (src/config/providers.ts).
 * A model is priced by its name whichever provider serves it (an OpenAI-compatible proxy may serve
 * Claude); a provider whose prices are "free" (Ollama, local) costs zero. A model found in no table
 * is *unpriced*: its cost is unknown (null), and a USD budget refuses it rather than treating it as free.
 */
import { isProviderId, type Price, PROVIDERS } from "../config/index.ts";

export type { Price };

const FREE: Price = { input: 0, output: 0 };

/** Every priced prefix of every provider, longest first, so the first match is the longest. */
const TABLE: readonly (readonly [string, Price])[] = Object.values(PROVIDERS)
  .flatMap((p) => (p.prices === "free" ? [] : p.prices))
  .sort((a, b) => b[0].length - a[0].length);

/** The price of a model, or null when unknown. Longest matching prefix wins. */
export function priceOf(provider: string, model: string): Price | null {
  if (isProviderId(provider) && PROVIDERS[provider].prices === "free") return FREE;
  const m = model.toLowerCase();
  for (const [prefix, price] of TABLE) if (m.startsWith(prefix)) return price;
  return null;
}

/** USD for `inputTokens` in and `outputTokens` out at `price`. */
export const costAt = (price: Price, inputTokens: number, outputTokens: number): number =>
  (inputTokens * price.input + outputTokens * price.output) / 1_000_000;

/** USD for a call, or null when the model is unpriced. */
export function costOf(provider: string, model: string, inputTokens: number, outputTokens: number): number | null {
  const p = priceOf(provider, model);
  return p ? costAt(p, inputTokens, outputTokens) : null;
}
