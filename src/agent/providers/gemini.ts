/**
 * Gemini `streamGenerateContent?alt=sse` (wire-formats A4). Roles are `user` and `model`; the
 * system prompt is `systemInstruction`; a function call arrives whole (args an object), maybe
 * without an id, and a tool turn still ends with finishReason STOP. Results go back as
 * `functionResponse` parts naming the function, and a call's thoughtSignature is echoed exactly.
 * A bad key is HTTP 400 API_KEY_INVALID (not 401); a 429 carries RetryInfo.retryDelay in its body.
 */
import type { ChatMessage, ChatRequest, Provider, ProviderOptions, StopReason, StreamEvent } from "../types.ts";
import { sseEvents } from "../sse.ts";
import { type HttpFailure, midStreamError, parsePayload, httpProvider, toolCallsIn } from "./_http.ts";
import { ProviderError } from "../provider-error.ts";

const ID = "gemini" as const;

/**
 * Ids this module makes up for calls Gemini sent without one. They are never sent back to Gemini
 * (it never saw them); a result finds its function name through them instead.
 */
const SYNTHETIC_ID = /^call_\d+$/;

type Part =
  | { text: string }
  | { functionCall: { name: string; args: unknown; id?: string }; thoughtSignature?: string }
  | { functionResponse: { name: string; response: Record<string, unknown>; id?: string } };
type Content = { role: "user" | "model"; parts: Part[] };

/** Provider-neutral history → Gemini contents; a result's function name comes from its call's id. */
export function toGeminiContents(messages: ChatMessage[]): Content[] {
  const names = new Map<string, string>();
  const out: Content[] = [];
  const echoId = (id: string) => (SYNTHETIC_ID.test(id) ? {} : { id });
  for (const m of messages) {
    const role = m.role === "assistant" ? "model" : "user";
    const parts = m.parts.map((p): Part => {
      switch (p.type) {
        case "text":
          return { text: p.text };
        case "tool_use":
          names.set(p.id, p.name);
          return {
            functionCall: { name: p.name, args: p.input ?? {}, ...echoId(p.id) },
            ...(p.signature !== undefined && { thoughtSignature: p.signature }),
          };
        case "tool_result":
          // `response` must be an object; the "error" key is how Gemini is told a call failed.
          return {
            functionResponse: {
              name: names.get(p.tool_use_id) ?? "unknown",
              response: p.is_error ? { error: p.content } : { result: p.content },
              ...echoId(p.tool_use_id),
            },
          };
        default: {
          const never: never = p;
          return never;
        }
      }
    });
    const prev = out.at(-1);
    if (prev && prev.role === role) prev.parts.push(...parts);
    else out.push({ role, parts });
  }
  return out;
}

/** The native request body (A4.1). */
export function geminiRequestBody(req: ChatRequest): Record<string, unknown> {
  return {
    ...(req.system && { systemInstruction: { parts: [{ text: req.system }] } }),
    contents: toGeminiContents(req.messages),
    ...(req.tools.length > 0 && {
      tools: [
        {
          functionDeclarations: req.tools.map((t) => ({
            name: t.name,
            description: t.description,
            parameters: t.input_schema,
          })),
        },
      ],
      toolConfig: { functionCallingConfig: { mode: "AUTO" } },
    }),
    generationConfig: { maxOutputTokens: req.maxTokens },
  };
}

/** RetryInfo.retryDelay ("34.4s") of a Google RPC error body, in ms. */
export function geminiRetryDelay(body: string): number | undefined {
  try {
    const details =
      (JSON.parse(body) as { error?: { details?: { "@type"?: string; retryDelay?: string }[] } }).error?.details ?? [];
    const delay = details.find((d) => d["@type"]?.endsWith("google.rpc.RetryInfo"))?.retryDelay;
    const m = delay ? /^(\d+(?:\.\d+)?)s$/.exec(delay) : null;
    return m ? Math.round(Number(m[1]) * 1000) : undefined;
  } catch {
    return undefined;
  }
}

const dialect = {
  isAuthFailure: (f: HttpFailure) => f.status === 400 && /API_KEY_INVALID|API key not valid/.test(f.body),
  retryAfterMs: (f: HttpFailure) => geminiRetryDelay(f.body),
};

interface Chunk {
  candidates?: {
    content?: {
      parts?: {
        text?: string;
        thought?: boolean;
        functionCall?: { name: string; args?: unknown; id?: string };
        thoughtSignature?: string;
      }[];
    };
    finishReason?: string;
  }[];
  usageMetadata?: { promptTokenCount?: number; candidatesTokenCount?: number; thoughtsTokenCount?: number };
  promptFeedback?: { blockReason?: string };
  error?: { code?: number; message?: string; status?: string };
}

const STOP: Record<string, StopReason> = { STOP: "end_turn", MAX_TOKENS: "max_tokens" };

/** `priorCalls`: tool calls already in the history, so made-up ids stay unique in the session. */
function reader(priorCalls: number) {
  return async function* read(res: Response): AsyncGenerator<StreamEvent> {
    let usage: { input_tokens: number; output_tokens: number } | undefined;
    let finish: string | undefined;
    let calls = 0;
    for await (const sse of sseEvents(res)) {
      const parsed = parsePayload<Chunk>(ID, sse.data);
      if (!parsed.ok) return yield { type: "error", error: parsed.error };
      const c = parsed.value;
      if (c.error) {
        const retryable =
          [429, 500, 503, 504].includes(c.error.code ?? 0) ||
          /UNAVAILABLE|RESOURCE_EXHAUSTED|INTERNAL/.test(c.error.status ?? "");
        return yield {
          type: "error",
          error: midStreamError(ID, c.error.message ?? c.error.status ?? "unknown", retryable),
        };
      }
      if (c.promptFeedback?.blockReason && !c.candidates) {
        return yield {
          type: "error",
          error: new ProviderError(ID, `${ID}: the prompt was blocked (${c.promptFeedback.blockReason})`),
        };
      }
      // Cumulative on every chunk: keep the last. Thinking tokens are billed as output.
      const u = c.usageMetadata;
      if (u)
        usage = {
          input_tokens: u.promptTokenCount ?? 0,
          output_tokens: (u.candidatesTokenCount ?? 0) + (u.thoughtsTokenCount ?? 0),
        };
      const cand = c.candidates?.[0];
      for (const p of cand?.content?.parts ?? []) {
        if (p.text && !p.thought) yield { type: "text", text: p.text };
        if (p.functionCall) {
          yield {
            type: "tool_call",
            id: p.functionCall.id ?? `call_${priorCalls + calls}`,
            name: p.functionCall.name,
            input: p.functionCall.args ?? {},
            ...(p.thoughtSignature !== undefined && { signature: p.thoughtSignature }),
          };
          calls++;
        }
      }
      if (cand?.finishReason) finish = cand.finishReason;
    }
    // No end marker in this format: the last chunk carries finishReason, so without one it broke.
    if (!finish)
      return yield {
        type: "error",
        error: new ProviderError(ID, `${ID}: stream ended early (no finishReason)`, { retryable: true }),
      };
    if (usage) yield { type: "usage", ...usage };
    // There is no tool-call finish reason: a tool turn ends with STOP.
    yield { type: "done", stop_reason: calls > 0 ? "tool_use" : (STOP[finish] ?? "other") };
  };
}

/** Gemini API provider (`x-goog-api-key` header, POST <base>/models/<model>:streamGenerateContent?alt=sse). */
export const createGeminiProvider = (opts: ProviderOptions): Provider =>
  httpProvider(
    {
      id: ID,
      url: (base, req) =>
        `${base}/models/${encodeURIComponent(req.model.replace(/^models\//, ""))}:streamGenerateContent?alt=sse`,
      body: geminiRequestBody,
      read: (req) => reader(toolCallsIn(req.messages)),
      dialect,
    },
    opts,
  );
