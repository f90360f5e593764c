/**
 * OpenAI Chat Completions, streaming (wire-formats A2) — also any OpenAI-compatible server through
 * `base_url`. Tool calls arrive as fragments keyed by `index` (only the first carries id and name);
 * usage comes in a last chunk with `choices: []` when `stream_options.include_usage` is set.
 */
import { ProviderError } from "../provider-error.ts";
import { sseEvents } from "../sse.ts";
import type { ChatMessage, ChatRequest, Provider, ProviderOptions, StopReason, StreamEvent } from "../types.ts";
import { endedEarly, parseJsonArgs, postAndStream } from "./_http.ts";

const ID = "openai" as const;

type OaiMessage =
  | { role: "system" | "user"; content: string }
  | { role: "assistant"; content: string | null; tool_calls?: { id: string; type: "function"; function: { name: string; arguments: string } }[] }
  | { role: "tool"; tool_call_id: string; content: string };

/** Provider-neutral history → OpenAI messages (one `tool` message per result). */
export function toOpenAIMessages(system: string, messages: ChatMessage[]): OaiMessage[] {
  const out: OaiMessage[] = system ? [{ role: "system", content: system }] : [];
  for (const m of messages) {
    const text = m.parts.flatMap((p) => (p.type === "text" ? [p.text] : [])).join("");
    if (m.role === "user") out.push({ role: "user", content: text });
    else if (m.role === "assistant") {
      const calls = m.parts.flatMap((p) => (p.type === "tool_use" ? [{ id: p.id, type: "function" as const, function: { name: p.name, arguments: JSON.stringify(p.input ?? {}) } }] : []));
      out.push({ role: "assistant", content: text || null, ...(calls.length > 0 && { tool_calls: calls }) });
    } else {
      for (const p of m.parts) if (p.type === "tool_result") out.push({ role: "tool", tool_call_id: p.tool_use_id, content: p.content });
    }
  }
  return out;
}

export function openAIRequestBody(req: ChatRequest): Record<string, unknown> {
  return {
    model: req.model,
    stream: true,
    stream_options: { include_usage: true },
    max_tokens: req.maxTokens,
    messages: toOpenAIMessages(req.system, req.messages),
    ...(req.tools.length > 0 && {
      tools: req.tools.map((t) => ({ type: "function", function: { name: t.name, description: t.description, parameters: t.input_schema } })),
      tool_choice: "auto",
    }),
  };
}

const STOP: Record<string, StopReason> = { stop: "end_turn", tool_calls: "tool_use", function_call: "tool_use", length: "max_tokens" };

interface Chunk {
  choices?: { delta?: { content?: string | null; tool_calls?: { index: number; id?: string; function?: { name?: string; arguments?: string } }[] }; finish_reason?: string | null }[];
  usage?: { prompt_tokens?: number; completion_tokens?: number } | null;
  error?: { message?: string; type?: string; code?: string };
}

async function* read(res: Response): AsyncIterable<StreamEvent> {
  // Calls in arrival order; fragments find theirs by index. Some compatible servers reuse index 0
  // with a new id for the next call: a new id at a known index starts a new call.
  const calls: { id: string; name: string; args: string }[] = [];
  const byIndex = new Map<number, { id: string; name: string; args: string }>();
  let stop: StopReason | undefined;
  let usage: { input_tokens: number; output_tokens: number } | undefined;
  for await (const ev of sseEvents(res.body!)) {
    if (ev.data === "[DONE]") {
      for (const c of calls) {
        const args = parseJsonArgs(ID, c.args, c.name);
        if (!args.ok) return yield { type: "error", error: args.error };
        yield { type: "tool_call", id: c.id, name: c.name, input: args.value };
      }
      if (usage) yield { type: "usage", ...usage };
      return yield { type: "done", stop_reason: stop ?? "other" };
    }
    let chunk: Chunk;
    try {
      chunk = JSON.parse(ev.data) as Chunk;
    } catch {
      return yield { type: "error", error: new ProviderError(ID, `${ID}: malformed stream chunk`) };
    }
    if (chunk.error) {
      const overloaded = /overload|server_error|unavailable/i.test(`${chunk.error.type} ${chunk.error.code}`);
      return yield { type: "error", error: new ProviderError(ID, `${ID}: error mid-stream: ${chunk.error.message ?? "unknown"}`, { retryable: overloaded }) };
    }
    if (chunk.usage) usage = { input_tokens: chunk.usage.prompt_tokens ?? 0, output_tokens: chunk.usage.completion_tokens ?? 0 };
    for (const choice of chunk.choices ?? []) {
      const d = choice.delta;
      if (d?.content) yield { type: "text", text: d.content };
      for (const tc of d?.tool_calls ?? []) {
        const known = byIndex.get(tc.index);
        if (!known || (tc.id && tc.id !== known.id)) {
          const call = { id: tc.id ?? `call_${calls.length}`, name: tc.function?.name ?? "", args: tc.function?.arguments ?? "" };
          calls.push(call);
          byIndex.set(tc.index, call);
        } else {
          known.args += tc.function?.arguments ?? "";
          if (tc.function?.name) known.name = tc.function.name;
        }
      }
      if (choice.finish_reason) stop = STOP[choice.finish_reason] ?? "other";
    }
  }
  yield { type: "error", error: endedEarly(ID) };
}

export function createOpenAIChatProvider(opts: ProviderOptions): Provider {
  const base = (opts.baseUrl || "https://api.openai.com/v1").replace(/\/$/, "");
  return {
    id: ID,
    stream: (req, { signal }) =>
      postAndStream(
        ID,
        `${base}/chat/completions`,
        { headers: opts.apiKey ? { authorization: `Bearer ${opts.apiKey}` } : {}, body: openAIRequestBody(req), apiKey: opts.apiKey, ...(opts.fetch && { fetch: opts.fetch }), ...(signal && { signal }) },
        read,
      ),
  };
}
