/**
 * List prices in USD per million tokens (input, output), by model name prefix, as published by
 * each provider (2025). A model not in this table is *unpriced*: its cost is unknown (null), and a
 * USD budget refuses it rather than treating it as free. Ollama runs locally: priced at zero.
 */
export interface Price {
  input: number;
  output: number;
}

const TABLE: [prefix: string, price: Price][] = [
  ["claude-opus-4", { input: 15, output: 75 }],
  ["claude-sonnet-4", { input: 3, output: 15 }],
  ["claude-3-7-sonnet", { input: 3, output: 15 }],
  ["claude-3-5-sonnet", { input: 3, output: 15 }],
  ["claude-haiku-4", { input: 1, output: 5 }],
  ["claude-3-5-haiku", { input: 0.8, output: 4 }],
  ["gpt-4o-mini", { input: 0.15, output: 0.6 }],
  ["gpt-4o", { input: 2.5, output: 10 }],
  ["gpt-4.1-nano", { input: 0.1, output: 0.4 }],
  ["gpt-4.1-mini", { input: 0.4, output: 1.6 }],
  ["gpt-4.1", { input: 2, output: 8 }],
  ["o4-mini", { input: 1.1, output: 4.4 }],
  ["gemini-2.5-flash-lite", { input: 0.1, output: 0.4 }],
  ["gemini-2.5-flash", { input: 0.3, output: 2.5 }],
  ["gemini-2.5-pro", { input: 1.25, output: 10 }],
  ["gemini-2.0-flash", { input: 0.1, output: 0.4 }],
];

/** The price of a model, or null when unknown. Longest matching prefix wins. */
export function priceOf(provider: string, model: string): Price | null {
  if (provider === "ollama") return { input: 0, output: 0 };
  const m = model.toLowerCase();
  let best: [string, Price] | null = null;
  for (const entry of TABLE) if (m.startsWith(entry[0]) && (!best || entry[0].length > best[0].length)) best = entry;
  return best ? best[1] : null;
}

/** USD for a call, or null when the model is unpriced. */
export function costOf(provider: string, model: string, inputTokens: number, outputTokens: number): number | null {
  const p = priceOf(provider, model);
  return p ? (inputTokens * p.input + outputTokens * p.output) / 1_000_000 : null;
}
