/**
 * Anthropic Messages, streaming (wire-formats A1). The system prompt goes in the top-level
 * `system` field (never a system role); tool results go back as `tool_result` blocks in a user
 * message; usage counts are cumulative (replace, don't add); `ping` and unknown events are ignored.
 */
import type { ChatMessage, ChatRequest, Provider, ProviderOptions, StopReason, StreamEvent } from "../types.ts";
import { sseEvents } from "../sse.ts";
import { endedEarly, midStreamError, parseJsonArgs, parsePayload, httpProvider } from "./_http.ts";

const ID = "anthropic" as const;

type Block =
  | { type: "text"; text: string }
  | { type: "tool_use"; id: string; name: string; input: unknown }
  | { type: "tool_result"; tool_use_id: string; content: string; is_error?: true };
type AnthropicMessage = { role: "user" | "assistant"; content: string | Block[] };

function toBlock(p: ChatMessage["parts"][number]): Block | null {
  switch (p.type) {
    case "text":
      // The API rejects empty text blocks; an assistant turn that only called tools may carry one.
      return p.text ? { type: "text", text: p.text } : null;
    case "tool_use":
      return { type: "tool_use", id: p.id, name: p.name, input: p.input ?? {} };
    case "tool_result":
      return {
        type: "tool_result",
        tool_use_id: p.tool_use_id,
        content: p.content,
        ...(p.is_error && { is_error: true as const }),
      };
    default: {
      const never: never = p;
      return never;
    }
  }
}

/**
 * Provider-neutral history → Anthropic messages. Roles must alternate, so role "tool" becomes a
 * user turn and consecutive same-role turns merge (several results → one user message); within a
 * user turn the `tool_result` blocks come first, as the API requires.
 */
export function toAnthropicMessages(messages: ChatMessage[]): AnthropicMessage[] {
  const out: { role: "user" | "assistant"; content: Block[] }[] = [];
  for (const m of messages) {
    const role = m.role === "assistant" ? "assistant" : "user";
    const blocks = m.parts.map(toBlock).filter((b): b is Block => b !== null);
    if (blocks.length === 0) continue;
    const prev = out.at(-1);
    if (prev && prev.role === role) prev.content.push(...blocks);
    else out.push({ role, content: blocks });
  }
  for (const m of out) m.content.sort((a, b) => Number(b.type === "tool_result") - Number(a.type === "tool_result"));
  // A lone text block goes as a plain string, the common form.
  return out.map((m) =>
    m.content.length === 1 && m.content[0]!.type === "text" ? { role: m.role, content: m.content[0]!.text } : m,
  );
}

/** The native request body (A1.1). */
export function anthropicRequestBody(req: ChatRequest): Record<string, unknown> {
  return {
    model: req.model,
    max_tokens: req.maxTokens,
    stream: true,
    ...(req.system && { system: req.system }),
    ...(req.tools.length > 0 && {
      tools: req.tools.map((t) => ({ name: t.name, description: t.description, input_schema: t.input_schema })),
    }),
    messages: toAnthropicMessages(req.messages),
  };
}

const STOP: Record<string, StopReason> = {
  end_turn: "end_turn",
  stop_sequence: "end_turn",
  tool_use: "tool_use",
  max_tokens: "max_tokens",
};

interface Usage {
  input_tokens?: number;
  output_tokens?: number;
}
interface Event {
  type: string;
  index?: number;
  message?: { usage?: Usage };
  content_block?: { type: string; id?: string; name?: string };
  delta?: { type?: string; text?: string; partial_json?: string; stop_reason?: string | null };
  usage?: Usage;
  error?: { type?: string; message?: string };
}

/** Error types after which the same request may well succeed. */
const RETRYABLE_KINDS = new Set(["overloaded_error", "api_error", "rate_limit_error", "timeout_error"]);

async function* read(res: Response): AsyncGenerator<StreamEvent> {
  // Tool input arrives as fragments of a JSON string per block index; parse at content_block_stop.
  const blocks = new Map<number, { id: string; name: string; json: string }>();
  const usage = { input_tokens: 0, output_tokens: 0 };
  const take = (u?: Usage) => {
    if (u?.input_tokens !== undefined) usage.input_tokens = u.input_tokens;
    if (u?.output_tokens !== undefined) usage.output_tokens = u.output_tokens;
  };
  let stop: StopReason = "other";
  for await (const sse of sseEvents(res)) {
    const parsed = parsePayload<Event>(ID, sse.data);
    if (!parsed.ok) return yield { type: "error", error: parsed.error };
    const e = parsed.value;
    switch (e.type) {
      case "message_start":
        take(e.message?.usage);
        break;
      case "content_block_start":
        if (e.content_block?.type === "tool_use")
          blocks.set(e.index ?? 0, { id: e.content_block.id ?? "", name: e.content_block.name ?? "", json: "" });
        break;
      case "content_block_delta":
        if (e.delta?.type === "text_delta" && e.delta.text) yield { type: "text", text: e.delta.text };
        else if (e.delta?.type === "input_json_delta") {
          const b = blocks.get(e.index ?? 0);
          if (b) b.json += e.delta.partial_json ?? "";
        }
        break;
      case "content_block_stop": {
        const b = blocks.get(e.index ?? 0);
        if (!b) break;
        blocks.delete(e.index ?? 0);
        const args = parseJsonArgs(ID, b.json, b.name);
        if (!args.ok) return yield { type: "error", error: args.error };
        yield { type: "tool_call", id: b.id, name: b.name, input: args.value };
        break;
      }
      case "message_delta":
        if (e.delta?.stop_reason) stop = STOP[e.delta.stop_reason] ?? "other";
        take(e.usage);
        break;
      case "message_stop":
        yield { type: "usage", ...usage };
        return yield { type: "done", stop_reason: stop };
      case "error": {
        const kind = e.error?.type ?? "error";
        return yield {
          type: "error",
          error: midStreamError(
            ID,
            `${kind === "overloaded_error" ? "overloaded" : kind}: ${e.error?.message ?? ""}`,
            RETRYABLE_KINDS.has(kind),
          ),
        };
      }
      default:
        break; // ping, and event types added later (the versioning policy allows new ones)
    }
  }
  yield { type: "error", error: endedEarly(ID, "message_stop event") };
}

/** Anthropic Messages API provider (`x-api-key` + `anthropic-version` headers, POST /v1/messages). */
export const createAnthropicProvider = (opts: ProviderOptions): Provider =>
  httpProvider({ id: ID, url: (base) => `${base}/v1/messages`, body: anthropicRequestBody, read: () => read }, opts);
