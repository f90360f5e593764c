/**
 * Ollama `/api/chat`, NDJSON (wire-formats A5). No key. Tool calls arrive whole with `arguments`
 * as an object; results go back as `role: "tool"` messages matched by `tool_name` and order.
 * An error after the stream began is a line `{"error": "…"}`.
 */
import { ProviderError } from "../provider-error.ts";
import { ndjsonLines } from "../sse.ts";
import type { ChatMessage, ChatRequest, Provider, ProviderOptions, StopReason, StreamEvent } from "../types.ts";
import { postAndStream } from "./_http.ts";

const ID = "ollama" as const;

type OMessage =
  | { role: "system" | "user"; content: string }
  | { role: "assistant"; content: string; tool_calls?: { type: "function"; function: { index: number; name: string; arguments: unknown } }[] }
  | { role: "tool"; tool_name: string; content: string };

export function toOllamaMessages(system: string, messages: ChatMessage[]): OMessage[] {
  const names = new Map<string, string>();
  const out: OMessage[] = system ? [{ role: "system", content: system }] : [];
  for (const m of messages) {
    const text = m.parts.flatMap((p) => (p.type === "text" ? [p.text] : [])).join("");
    if (m.role === "user") out.push({ role: "user", content: text });
    else if (m.role === "assistant") {
      const calls = m.parts.flatMap((p) => (p.type === "tool_use" ? [p] : []));
      calls.forEach((c) => names.set(c.id, c.name));
      out.push({
        role: "assistant",
        content: text,
        ...(calls.length > 0 && { tool_calls: calls.map((c, index) => ({ type: "function" as const, function: { index, name: c.name, arguments: c.input ?? {} } })) }),
      });
    } else {
      for (const p of m.parts) if (p.type === "tool_result") out.push({ role: "tool", tool_name: names.get(p.tool_use_id) ?? "unknown", content: p.content });
    }
  }
  return out;
}

export function ollamaRequestBody(req: ChatRequest): Record<string, unknown> {
  return {
    model: req.model,
    stream: true,
    messages: toOllamaMessages(req.system, req.messages),
    options: { num_predict: req.maxTokens },
    ...(req.tools.length > 0 && { tools: req.tools.map((t) => ({ type: "function", function: { name: t.name, description: t.description, parameters: t.input_schema } })) }),
  };
}

interface Line {
  message?: { content?: string; tool_calls?: { id?: string; function?: { name?: string; arguments?: unknown } }[] };
  done?: boolean;
  done_reason?: string;
  prompt_eval_count?: number;
  eval_count?: number;
  error?: string;
}

async function* read(res: Response): AsyncIterable<StreamEvent> {
  let calls = 0;
  for await (const raw of ndjsonLines(res.body!)) {
    let line: Line;
    try {
      line = JSON.parse(raw) as Line;
    } catch {
      return yield { type: "error", error: new ProviderError(ID, `${ID}: malformed stream line`) };
    }
    if (line.error !== undefined) return yield { type: "error", error: new ProviderError(ID, `${ID}: error mid-stream: ${line.error}`, { retryable: /overload|busy|timeout/i.test(line.error) }) };
    if (line.message?.content) yield { type: "text", text: line.message.content };
    for (const tc of line.message?.tool_calls ?? []) {
      const args = typeof tc.function?.arguments === "string" ? safeJson(tc.function.arguments) : (tc.function?.arguments ?? {});
      yield { type: "tool_call", id: tc.id ?? `ollama_${crypto.randomUUID().slice(0, 12)}`, name: tc.function?.name ?? "", input: args };
      calls++;
    }
    if (line.done) {
      yield { type: "usage", input_tokens: line.prompt_eval_count ?? 0, output_tokens: line.eval_count ?? 0 };
      const stop: StopReason = calls > 0 ? "tool_use" : line.done_reason === "length" ? "max_tokens" : line.done_reason === "stop" || !line.done_reason ? "end_turn" : "other";
      return yield { type: "done", stop_reason: stop };
    }
  }
  yield { type: "error", error: new ProviderError(ID, `${ID}: stream ended early (no "done": true line)`, { retryable: true }) };
}

function safeJson(s: string): unknown {
  try {
    return JSON.parse(s);
  } catch {
    return {};
  }
}

export function createOllamaProvider(opts: ProviderOptions): Provider {
  const base = (opts.baseUrl || "http://localhost:11434").replace(/\/$/, "");
  return {
    id: ID,
    stream: (req, { signal }) =>
      postAndStream(ID, `${base}/api/chat`, { headers: {}, body: ollamaRequestBody(req), apiKey: null, ...(opts.fetch && { fetch: opts.fetch }), ...(signal && { signal }) }, read),
  };
}
