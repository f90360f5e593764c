/**
 * OpenAI Chat Completions, streaming (wire-formats A2) — also any OpenAI-compatible server through
 * `base_url`. The system prompt is a `system` message; tool calls arrive as fragments keyed by
 * `index` (only the first carries id and name) and results go back one `role: "tool"` message per
 * call; usage comes in a last chunk with `choices: []` (`stream_options.include_usage`); the stream
 * ends with `data: [DONE]`.
 */
import type { ChatMessage, ChatRequest, Provider, ProviderOptions, StopReason, StreamEvent } from "../types.ts";
import { sseEvents } from "../sse.ts";
import { endedEarly, midStreamError, parseJsonArgs, parsePayload, httpProvider } from "./_http.ts";

const ID = "openai" as const;

type ToolCall = { id: string; type: "function"; function: { name: string; arguments: string } };
type OpenAIMessage =
  | { role: "system" | "user"; content: string }
  | { role: "assistant"; content: string | null; tool_calls?: ToolCall[] }
  | { role: "tool"; tool_call_id: string; content: string };

/** Provider-neutral history → OpenAI messages (system first; one `tool` message per result). */
export function toOpenAIMessages(system: string, messages: ChatMessage[]): OpenAIMessage[] {
  const out: OpenAIMessage[] = system ? [{ role: "system", content: system }] : [];
  // Plain loops: this runs over the whole history window on every request.
  for (const m of messages) {
    let text = "";
    let calls: ToolCall[] | undefined;
    for (const p of m.parts) {
      if (p.type === "text") text += p.text;
      // `arguments` is a JSON string on this API, not an object.
      else if (p.type === "tool_use")
        (calls ??= []).push({
          id: p.id,
          type: "function",
          function: { name: p.name, arguments: JSON.stringify(p.input ?? {}) },
        });
    }
    if (m.role === "user") out.push({ role: "user", content: text });
    else if (m.role === "assistant") {
      out.push(
        calls
          ? { role: "assistant", content: text || null, tool_calls: calls }
          : { role: "assistant", content: text || null },
      );
    } else {
      for (const p of m.parts)
        if (p.type === "tool_result") out.push({ role: "tool", tool_call_id: p.tool_use_id, content: p.content });
    }
  }
  return out;
}

/** The native request body (A2.1). */
export function openAIRequestBody(req: ChatRequest): Record<string, unknown> {
  return {
    model: req.model,
    stream: true,
    stream_options: { include_usage: true },
    max_tokens: req.maxTokens,
    messages: toOpenAIMessages(req.system, req.messages),
    ...(req.tools.length > 0 && {
      tools: req.tools.map((t) => ({
        type: "function",
        function: { name: t.name, description: t.description, parameters: t.input_schema },
      })),
      tool_choice: "auto",
    }),
  };
}

const STOP: Record<string, StopReason> = {
  stop: "end_turn",
  tool_calls: "tool_use",
  function_call: "tool_use",
  length: "max_tokens",
};

interface Chunk {
  choices?: {
    delta?: {
      content?: string | null;
      tool_calls?: { index?: number; id?: string; function?: { name?: string; arguments?: string } }[];
    };
    finish_reason?: string | null;
  }[];
  usage?: { prompt_tokens?: number; completion_tokens?: number } | null;
  error?: { message?: string; type?: string; code?: string | null };
}

type PendingCall = { id: string; name: string; args: string };

async function* read(res: Response): AsyncGenerator<StreamEvent> {
  // Calls in arrival order; fragments find theirs by index. Some compatible servers reuse index 0
  // with a new id for the next call: a new id at a known index starts a new call.
  const calls: PendingCall[] = [];
  const byIndex = new Map<number, PendingCall>();
  let stop: StopReason | undefined;
  let usage: { input_tokens: number; output_tokens: number } | undefined;
  for await (const sse of sseEvents(res)) {
    if (sse.data === "[DONE]") {
      // Arguments are only complete once the choice has finished; emit each call once, whole.
      for (const c of calls) {
        const args = parseJsonArgs(ID, c.args, c.name);
        if (!args.ok) return yield { type: "error", error: args.error };
        yield { type: "tool_call", id: c.id, name: c.name, input: args.value };
      }
      if (usage) yield { type: "usage", ...usage };
      return yield { type: "done", stop_reason: stop ?? "other" };
    }
    const parsed = parsePayload<Chunk>(ID, sse.data);
    if (!parsed.ok) return yield { type: "error", error: parsed.error };
    const chunk = parsed.value;
    if (chunk.error) {
      const kind = `${chunk.error.type ?? ""} ${chunk.error.code ?? ""}`;
      return yield {
        type: "error",
        error: midStreamError(
          ID,
          chunk.error.message ?? "unknown",
          /overload|server_error|unavailable|slow_down|rate_limit/i.test(kind),
        ),
      };
    }
    if (chunk.usage)
      usage = { input_tokens: chunk.usage.prompt_tokens ?? 0, output_tokens: chunk.usage.completion_tokens ?? 0 };
    for (const choice of chunk.choices ?? []) {
      const d = choice.delta;
      if (d?.content) yield { type: "text", text: d.content };
      for (const tc of d?.tool_calls ?? []) {
        const index = tc.index ?? 0;
        const known = byIndex.get(index);
        if (!known || (tc.id && tc.id !== known.id)) {
          const call = {
            id: tc.id ?? `call_${calls.length}`,
            name: tc.function?.name ?? "",
            args: tc.function?.arguments ?? "",
          };
          calls.push(call);
          byIndex.set(index, call);
        } else {
          known.args += tc.function?.arguments ?? "";
          if (tc.function?.name) known.name = tc.function.name;
        }
      }
      if (choice.finish_reason) stop = STOP[choice.finish_reason] ?? "other";
    }
  }
  yield { type: "error", error: endedEarly(ID, "data: [DONE]") };
}

/** OpenAI Chat Completions provider (`Authorization: Bearer`, POST <base>/chat/completions). Compatible local servers take no key: no header is sent without one. */
export const createOpenAIChatProvider = (opts: ProviderOptions): Provider =>
  httpProvider({ id: ID, url: (base) => `${base}/chat/completions`, body: openAIRequestBody, read: () => read }, opts);
