/**
 * Ollama `/api/chat`, NDJSON (wire-formats A5). No key. The system prompt is a `system` message;
 * tool calls arrive whole with `arguments` as an object (usually without an id); results go back as
 * `role: "tool"` messages matched by `tool_name` and order. The stream ends with a `"done": true`
 * line; an error after the stream began is a line `{"error": "…"}`.
 */
import type { ChatMessage, ChatRequest, Provider, ProviderOptions, StopReason, StreamEvent } from "../types.ts";
import { ndjsonLines } from "../sse.ts";
import { endedEarly, midStreamError, parseJsonArgs, parsePayload, httpProvider, toolCallsIn } from "./_http.ts";

const ID = "ollama" as const;

type OllamaMessage =
  | { role: "system" | "user"; content: string }
  | {
      role: "assistant";
      content: string;
      tool_calls?: { type: "function"; function: { index: number; name: string; arguments: unknown } }[];
    }
  | { role: "tool"; tool_name: string; content: string };

/** Provider-neutral history → Ollama messages (system first; a result names its call's function). */
export function toOllamaMessages(system: string, messages: ChatMessage[]): OllamaMessage[] {
  const names = new Map<string, string>();
  const out: OllamaMessage[] = system ? [{ role: "system", content: system }] : [];
  for (const m of messages) {
    const text = m.parts.flatMap((p) => (p.type === "text" ? [p.text] : [])).join("");
    if (m.role === "user") out.push({ role: "user", content: text });
    else if (m.role === "assistant") {
      const calls = m.parts.flatMap((p) => (p.type === "tool_use" ? [p] : []));
      for (const c of calls) names.set(c.id, c.name);
      out.push({
        role: "assistant",
        content: text,
        ...(calls.length > 0 && {
          tool_calls: calls.map((c, index) => ({
            type: "function" as const,
            function: { index, name: c.name, arguments: c.input ?? {} },
          })),
        }),
      });
    } else {
      for (const p of m.parts)
        if (p.type === "tool_result")
          out.push({ role: "tool", tool_name: names.get(p.tool_use_id) ?? "unknown", content: p.content });
    }
  }
  return out;
}

/** The native request body (A5.1). */
export function ollamaRequestBody(req: ChatRequest): Record<string, unknown> {
  return {
    model: req.model,
    stream: true,
    messages: toOllamaMessages(req.system, req.messages),
    options: { num_predict: req.maxTokens },
    ...(req.tools.length > 0 && {
      tools: req.tools.map((t) => ({
        type: "function",
        function: { name: t.name, description: t.description, parameters: t.input_schema },
      })),
    }),
  };
}

interface Line {
  message?: { content?: string; tool_calls?: { id?: string; function?: { name?: string; arguments?: unknown } }[] };
  done?: boolean;
  done_reason?: string;
  prompt_eval_count?: number;
  eval_count?: number;
  error?: unknown;
}

const STOP: Record<string, StopReason> = { stop: "end_turn", length: "max_tokens" };

/** `priorCalls`: tool calls already in the history, so made-up ids stay unique in the session. */
function reader(priorCalls: number) {
  return async function* read(res: Response): AsyncGenerator<StreamEvent> {
    let calls = 0;
    for await (const raw of ndjsonLines(res)) {
      const parsed = parsePayload<Line>(ID, raw);
      if (!parsed.ok) return yield { type: "error", error: parsed.error };
      const line = parsed.value;
      if (line.error !== undefined) {
        const message = typeof line.error === "string" ? line.error : JSON.stringify(line.error);
        return yield {
          type: "error",
          error: midStreamError(ID, message, /overload|busy|timeout|try again/i.test(message)),
        };
      }
      if (line.message?.content) yield { type: "text", text: line.message.content };
      for (const tc of line.message?.tool_calls ?? []) {
        const name = tc.function?.name ?? "";
        // Documented as an object; some compatible servers send a JSON string.
        const raw = tc.function?.arguments;
        const args = typeof raw === "string" ? parseJsonArgs(ID, raw, name) : { ok: true as const, value: raw ?? {} };
        if (!args.ok) return yield { type: "error", error: args.error };
        yield { type: "tool_call", id: tc.id || `call_${priorCalls + calls}`, name, input: args.value };
        calls++;
      }
      if (line.done) {
        yield { type: "usage", input_tokens: line.prompt_eval_count ?? 0, output_tokens: line.eval_count ?? 0 };
        return yield {
          type: "done",
          stop_reason: calls > 0 ? "tool_use" : line.done_reason ? (STOP[line.done_reason] ?? "other") : "end_turn",
        };
      }
    }
    yield { type: "error", error: endedEarly(ID, '"done": true line') };
  };
}

/** Ollama provider (no auth, POST <base>/api/chat, NDJSON). A key configured anyway is never sent, and is kept out of error messages. */
export const createOllamaProvider = (opts: ProviderOptions): Provider =>
  httpProvider(
    {
      id: ID,
      url: (base) => `${base}/api/chat`,
      body: ollamaRequestBody,
      read: (req) => reader(toolCallsIn(req.messages)),
    },
    opts,
  );
