/**
 * The provider seam (STYLE: pi-mono, vercel/ai): a provider is one function from a request to a
 * stream of normalized events. It never throws once the stream is returned: a failure is the
 * stream's last event (`error`), and an aborted signal yields an error whose reason is "aborted".
 */
import type { ProviderId } from "../config/index.ts";
import type { ExoError } from "../lib/errors.ts";
import type { MessagePart, Role } from "../core/index.ts";
import type { ProviderError } from "./provider-error.ts";

/** A provider's id: a key of the provider registry (src/config/providers.ts). */
export type { ProviderId };

export interface ToolSpec {
  name: string;
  description: string;
  /** JSON Schema of the tool's input object. */
  input_schema: Record<string, unknown>;
}

/** Provider-neutral history entry (the store keeps the same shape). */
export interface ChatMessage {
  role: Role;
  parts: MessagePart[];
}

export interface ChatRequest {
  model: string;
  /** System prompt; each provider puts it where its API wants it. Empty = none. */
  system: string;
  messages: ChatMessage[];
  tools: ToolSpec[];
  maxTokens: number;
}

export type StopReason = "end_turn" | "tool_use" | "max_tokens" | "other";

export type StreamEvent =
  | { type: "text"; text: string }
  /** A complete tool call (arguments fully received and parsed). */
  | { type: "tool_call"; id: string; name: string; input: unknown; signature?: string }
  /** Totals for this call, from the provider's own counts. */
  | { type: "usage"; input_tokens: number; output_tokens: number }
  | { type: "done"; stop_reason: StopReason }
  /**
   * Emitted by each step of an agent's chain (provider-factory.ts) before its request, pulled before the
   * request is sent: the metering wrapper reserves at this provider/model first and stops the call
   * when it is over budget. The metering wrapper consumes it; the loop never needs it.
   */
  | { type: "model"; provider: ProviderId; model: string }
  | { type: "error"; error: ProviderError }
  /**
   * The call was not made and the stream ends here: a budget refused it (BudgetError, code
   * `budget_exceeded`) or its usage row could not be written. Emitted by the metering decorator
   * (src/metering/metered.ts), never by a provider.
   */
  | { type: "refused"; error: ExoError };

export interface Provider {
  readonly id: ProviderId;
  stream(req: ChatRequest, opts: { signal?: AbortSignal }): AsyncIterable<StreamEvent>;
}

/** How to reach one provider: base URL (tests point it at a loopback fake), key, fetch. */
export interface ProviderOptions {
  baseUrl?: string;
  /** null for providers that need none (Ollama). */
  apiKey: string | null;
  fetch?: typeof fetch;
}
