/**
 * The message model: provider-neutral message content, the same for every provider, the store and
 * the channels, so a session can switch provider and a store need not know any provider's shape.
 */

export type MessagePart =
  | { type: "text"; text: string }
  /** `signature`: an opaque token some providers require echoed back (Gemini's thoughtSignature). */
  | { type: "tool_use"; id: string; name: string; input: unknown; signature?: string }
  | { type: "tool_result"; tool_use_id: string; content: string; is_error?: boolean };

export type Role = "user" | "assistant" | "tool";

/** A message as a turn produces it, before it is stored. */
export interface NewMessage {
  role: Role;
  parts: MessagePart[];
  /** Free-form facts (provider, model, stop_reason …), stored as given. */
  meta?: Record<string, unknown>;
}

/** A message as the store returns it: its session and its place there. */
export interface StoredMessage extends NewMessage {
  session: string;
  /** 1-based, gapless, in append order within the session. */
  seq: number;
  created_at: number;
}
