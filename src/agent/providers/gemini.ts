/**
 * Gemini `streamGenerateContent?alt=sse` (wire-formats A4). Roles are `user` and `model`; the
 * system prompt is `systemInstruction`; a function call arrives whole (args an object), maybe
 * without an id, and a tool turn still ends with finishReason STOP. Results go back as
 * `functionResponse` parts naming the function, and a call's thoughtSignature is echoed exactly.
 * A bad key is HTTP 400 API_KEY_INVALID (not 401); 429 carries RetryInfo.retryDelay.
 */
import { ProviderError } from "../provider-error.ts";
import { sseEvents } from "../sse.ts";
import type { ChatMessage, ChatRequest, Provider, ProviderOptions, StopReason, StreamEvent } from "../types.ts";
import { postAndStream } from "./_http.ts";

const ID = "gemini" as const;

type Part =
  | { text: string }
  | { functionCall: { name: string; args: unknown; id?: string }; thoughtSignature?: string }
  | { functionResponse: { name: string; response: Record<string, unknown>; id?: string } };

/** Provider-neutral history → Gemini contents (function names looked up from the calls' ids). */
export function toGeminiContents(messages: ChatMessage[]): { role: "user" | "model"; parts: Part[] }[] {
  const names = new Map<string, string>();
  const out: { role: "user" | "model"; parts: Part[] }[] = [];
  for (const m of messages) {
    const role = m.role === "assistant" ? "model" : "user";
    const parts: Part[] = m.parts.map((p) => {
      if (p.type === "text") return { text: p.text };
      if (p.type === "tool_use") {
        names.set(p.id, p.name);
        return {
          functionCall: { name: p.name, args: p.input ?? {}, ...(!p.id.startsWith("gemini_") && { id: p.id }) },
          ...(p.signature !== undefined && { thoughtSignature: p.signature }),
        };
      }
      return {
        functionResponse: {
          name: names.get(p.tool_use_id) ?? "unknown",
          response: p.is_error ? { error: p.content } : { result: p.content },
          ...(!p.tool_use_id.startsWith("gemini_") && { id: p.tool_use_id }),
        },
      };
    });
    const prev = out.at(-1);
    if (prev && prev.role === role) prev.parts.push(...parts);
    else out.push({ role, parts });
  }
  return out;
}

export function geminiRequestBody(req: ChatRequest): Record<string, unknown> {
  return {
    ...(req.system && { systemInstruction: { parts: [{ text: req.system }] } }),
    contents: toGeminiContents(req.messages),
    ...(req.tools.length > 0 && {
      tools: [{ functionDeclarations: req.tools.map((t) => ({ name: t.name, description: t.description, parameters: t.input_schema })) }],
      toolConfig: { functionCallingConfig: { mode: "AUTO" } },
    }),
    generationConfig: { maxOutputTokens: req.maxTokens },
  };
}

/** RetryInfo.retryDelay ("34.4s") of a Google RPC error body, in ms. */
export function geminiRetryDelay(body: string): number | undefined {
  try {
    const details = (JSON.parse(body) as { error?: { details?: { "@type"?: string; retryDelay?: string }[] } }).error?.details ?? [];
    const delay = details.find((d) => d["@type"]?.endsWith("google.rpc.RetryInfo"))?.retryDelay;
    const m = delay ? /^([\d.]+)s$/.exec(delay) : null;
    return m ? Math.round(Number(m[1]) * 1000) : undefined;
  } catch {
    return undefined;
  }
}

interface Chunk {
  candidates?: { content?: { parts?: { text?: string; functionCall?: { name: string; args?: unknown; id?: string }; thoughtSignature?: string }[] }; finishReason?: string }[];
  usageMetadata?: { promptTokenCount?: number; candidatesTokenCount?: number };
  promptFeedback?: { blockReason?: string };
  error?: { code?: number; message?: string; status?: string };
}

async function* read(res: Response): AsyncIterable<StreamEvent> {
  let usage: { input_tokens: number; output_tokens: number } | undefined;
  let finish: string | undefined;
  let toolCalls = 0;
  for await (const ev of sseEvents(res.body!)) {
    let c: Chunk;
    try {
      c = JSON.parse(ev.data) as Chunk;
    } catch {
      return yield { type: "error", error: new ProviderError(ID, `${ID}: malformed stream chunk`) };
    }
    if (c.error) {
      return yield { type: "error", error: new ProviderError(ID, `${ID}: error mid-stream: ${c.error.message ?? c.error.status ?? "unknown"}`, { retryable: c.error.code === 503 || c.error.code === 500 || c.error.status === "UNAVAILABLE" }) };
    }
    if (c.promptFeedback?.blockReason && !c.candidates) {
      return yield { type: "error", error: new ProviderError(ID, `${ID}: the prompt was blocked (${c.promptFeedback.blockReason})`) };
    }
    if (c.usageMetadata) usage = { input_tokens: c.usageMetadata.promptTokenCount ?? 0, output_tokens: c.usageMetadata.candidatesTokenCount ?? 0 };
    const cand = c.candidates?.[0];
    for (const p of cand?.content?.parts ?? []) {
      if (p.text) yield { type: "text", text: p.text };
      if (p.functionCall) {
        toolCalls++;
        yield {
          type: "tool_call",
          id: p.functionCall.id ?? `gemini_${crypto.randomUUID().slice(0, 12)}`,
          name: p.functionCall.name,
          input: p.functionCall.args ?? {},
          ...(p.thoughtSignature !== undefined && { signature: p.thoughtSignature }),
        };
      }
    }
    if (cand?.finishReason) finish = cand.finishReason;
  }
  // No end marker: the last chunk carries finishReason, so its absence means the stream broke.
  if (!finish) return yield { type: "error", error: new ProviderError(ID, `${ID}: stream ended early (no finishReason)`, { retryable: true }) };
  if (usage) yield { type: "usage", ...usage };
  const stop: StopReason = toolCalls > 0 ? "tool_use" : finish === "STOP" ? "end_turn" : finish === "MAX_TOKENS" ? "max_tokens" : "other";
  yield { type: "done", stop_reason: stop };
}

export function createGeminiProvider(opts: ProviderOptions): Provider {
  const base = (opts.baseUrl || "https://generativelanguage.googleapis.com/v1beta").replace(/\/$/, "");
  return {
    id: ID,
    async *stream(req, { signal }) {
      const url = `${base}/models/${encodeURIComponent(req.model)}:streamGenerateContent?alt=sse`;
      for await (const ev of postAndStream(
        ID,
        url,
        { headers: opts.apiKey ? { "x-goog-api-key": opts.apiKey } : {}, body: geminiRequestBody(req), apiKey: opts.apiKey, ...(opts.fetch && { fetch: opts.fetch }), ...(signal && { signal }) },
        read,
        geminiRetryDelay,
      )) {
        // Gemini answers a bad key with 400 API_KEY_INVALID, not 401.
        if (ev.type === "error" && ev.error.status === 400 && /API_KEY_INVALID|API key not valid/.test(ev.error.message)) {
          yield { type: "error", error: new ProviderError(ID, `${ID}: authentication failed (400 API_KEY_INVALID) — check the API key`, { status: 400 }) };
        } else yield ev;
      }
    },
  };
}
