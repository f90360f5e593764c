/**
 * What every wire API shares: the provider object (endpoint and key headers from the registry), the
 * POST, and turning HTTP failures, broken streams and aborts into ProviderErrors (one error per failure kind, retryable when trying again may work). Messages name
 * the provider and never include the API key.
 */
import { PROVIDERS } from "../../config/index.ts";
import { scrub } from "../../lib/log.ts";
import { ProviderError } from "../provider-error.ts";
import type { ChatMessage, ChatRequest, Provider, ProviderId, ProviderOptions, StreamEvent } from "../types.ts";
import { describeError } from "../../lib/errors.ts";

/** Retry-After as milliseconds: delta-seconds or an HTTP date; undefined when absent or unreadable. */
export function parseRetryAfter(value: string | null | undefined): number | undefined {
  const v = value?.trim();
  if (!v) return undefined;
  if (/^\d+(\.\d+)?$/.test(v)) return Math.round(Number(v) * 1000);
  // An HTTP date names its month; Date.parse alone would read "-3" as a year.
  if (!/[a-z]{3}/i.test(v)) return undefined;
  const at = Date.parse(v);
  return Number.isNaN(at) ? undefined : Math.max(0, at - Date.now());
}

/** The human part of an error body in any of the four envelopes (Ollama's is a bare string). */
function upstreamMessage(body: string): string {
  try {
    const j = JSON.parse(body) as { error?: unknown; message?: unknown };
    const e = Array.isArray(j) ? (j[0] as { error?: unknown } | undefined)?.error : j.error;
    const m = typeof e === "string" ? e : typeof e === "object" && e !== null && "message" in e ? e.message : j.message;
    return typeof m === "string" ? m : "";
  } catch {
    return body.slice(0, 200);
  }
}

/** Masks the key, in any spelling, in text an upstream or the network stack echoed back (OpenAI's 401 body quotes it). */
const withoutKey = (text: string, apiKey: string | null): string => (apiKey ? scrub(text, [apiKey]) : text);

export interface HttpFailure {
  status: number;
  headers: Headers;
  body: string;
}

/** How one wire API reads its own error bodies. */
export interface ErrorDialect {
  /** Gemini answers a bad key with 400 API_KEY_INVALID, not 401. */
  isAuthFailure?(f: HttpFailure): boolean;
  /** Gemini puts the delay in the body (RetryInfo) rather than in Retry-After. */
  retryAfterMs?(f: HttpFailure): number | undefined;
}

/** An HTTP error response as a ProviderError. */
export function httpError(
  id: ProviderId,
  f: HttpFailure,
  apiKey: string | null,
  dialect: ErrorDialect = {},
): ProviderError {
  const { status, body } = f;
  if (status === 401 || status === 403 || dialect.isAuthFailure?.(f)) {
    // The body is left out on purpose: some upstreams quote the key they were sent.
    return new ProviderError(id, `${id}: authentication failed (${status}) — check the API key`, { status });
  }
  const detail = withoutKey(upstreamMessage(body), apiKey).slice(0, 300);
  const after = dialect.retryAfterMs?.(f) ?? parseRetryAfter(f.headers.get("retry-after"));
  // OpenAI's insufficient_quota is billing, not a rate: waiting will not help. A quota 429 that says
  // when to come back (Gemini's RetryInfo) is a rate limit.
  const quota = /insufficient_quota/.test(body) && after === undefined;
  // 529 is Anthropic's "overloaded"; the others say so with a 503 or in a 5xx body. A 4xx is the
  // request's own fault whatever its text says (a prompt that mentions "overloaded" is not a reason to retry).
  const overloaded = status === 529 || status === 503 || (status >= 500 && /overloaded/i.test(body));
  const retryable = !quota && (status === 408 || status === 409 || status === 429 || status >= 500);
  const what =
    status === 429
      ? `${quota ? "quota exhausted" : "rate limited"} (429)`
      : overloaded
        ? `overloaded (${status})`
        : `HTTP ${status}`;
  return new ProviderError(id, `${id}: ${what}${detail ? `: ${detail}` : ""}`, {
    status,
    retryable,
    ...(after !== undefined && { retryAfterMs: after }),
  });
}

export const abortedError = (id: ProviderId): ProviderError =>
  new ProviderError(id, `${id}: request aborted`, { reason: "aborted" });

/** A failure while reading the body: the caller's abort, or a dropped connection (retryable). */
export function streamError(id: ProviderId, e: unknown, signal?: AbortSignal): ProviderError {
  if (signal?.aborted) return abortedError(id);
  if (e instanceof ProviderError) return e;
  const why = describeError(e);
  return new ProviderError(id, `${id}: stream ended early: connection lost (${why})`, { retryable: true, cause: e });
}

/** The body ended cleanly but without the format's end marker: a proxy or server cut it short. */
export const endedEarly = (id: ProviderId, marker: string): ProviderError =>
  new ProviderError(id, `${id}: stream ended early (no ${marker})`, { retryable: true });

/** An error the upstream reported inside a 200 stream. */
export const midStreamError = (id: ProviderId, message: string, retryable: boolean): ProviderError =>
  new ProviderError(id, `${id}: error mid-stream: ${message}`, { retryable });

export interface PostOptions {
  url: string;
  headers: Record<string, string>;
  /** Built inside the stream, so a request that cannot be serialized fails as an event, not a throw. */
  body: () => unknown;
  apiKey: string | null;
  fetch?: typeof fetch | undefined;
  signal?: AbortSignal | undefined;
  dialect?: ErrorDialect;
}

/**
 * POSTs a JSON body and, on a 2xx, hands the response to `read`. Every failure becomes the stream's
 * last event; never throws. The signal goes to fetch, so an abort closes the HTTP connection.
 */
export async function* postAndStream(
  id: ProviderId,
  opts: PostOptions,
  read: (res: Response) => AsyncIterable<StreamEvent>,
): AsyncGenerator<StreamEvent> {
  if (opts.signal?.aborted) return yield { type: "error", error: abortedError(id) };
  let body: string;
  try {
    body = JSON.stringify(opts.body());
  } catch (e) {
    // A tool input holding a BigInt or a cycle: the same request would fail again.
    return yield {
      type: "error",
      error: new ProviderError(id, `${id}: the request cannot be encoded as JSON (${describeError(e)})`, { cause: e }),
    };
  }
  let res: Response;
  try {
    res = await (opts.fetch ?? fetch)(opts.url, {
      method: "POST",
      headers: { "content-type": "application/json", ...opts.headers },
      body,
      ...(opts.signal && { signal: opts.signal }),
    });
  } catch (e) {
    if (opts.signal?.aborted) return yield { type: "error", error: abortedError(id) };
    const why = withoutKey(describeError(e), opts.apiKey);
    return yield {
      type: "error",
      error: new ProviderError(id, `${id}: cannot reach ${hostOf(opts.url)} (${why})`, { retryable: true, cause: e }),
    };
  }
  if (!res.ok) {
    let text = "";
    try {
      text = await res.text();
    } catch {
      // the status alone is enough to classify the failure
    }
    if (opts.signal?.aborted) return yield { type: "error", error: abortedError(id) };
    return yield {
      type: "error",
      error: httpError(id, { status: res.status, headers: res.headers, body: text }, opts.apiKey, opts.dialect),
    };
  }
  try {
    for await (const ev of read(res)) {
      // Events already decoded from a buffered chunk must not reach a caller who has cancelled.
      if (opts.signal?.aborted) return yield { type: "error", error: abortedError(id) };
      const bad = malformedEvent(ev);
      if (bad) return yield { type: "error", error: new ProviderError(id, `${id}: malformed stream payload: ${bad}`) };
      yield ev;
    }
  } catch (e) {
    yield { type: "error", error: streamError(id, e, opts.signal) };
  }
}

const isCount = (n: unknown) => typeof n === "number" && Number.isFinite(n) && n >= 0;

/**
 * Why a decoded event breaks the StreamEvent contract, or null. The readers cast upstream JSON to
 * their wire types; a field of another type (found by tests/fuzz/providers.test.ts: an object as a
 * tool-call id, a missing function name, a string token count) must end the stream as an error,
 * not reach the loop, the store or the budget arithmetic.
 */
export function malformedEvent(ev: StreamEvent): string | null {
  switch (ev.type) {
    case "text":
      return typeof ev.text === "string" ? null : "text that is not a string";
    case "tool_call":
      return typeof ev.id === "string" &&
        ev.id !== "" &&
        typeof ev.name === "string" &&
        ev.name !== "" &&
        (ev.signature === undefined || typeof ev.signature === "string")
        ? null
        : "a tool call without a string id and name";
    case "usage":
      return isCount(ev.input_tokens) && isCount(ev.output_tokens) ? null : "token counts that are not numbers";
    default:
      return null;
  }
}

function hostOf(url: string): string {
  try {
    return new URL(url).host;
  } catch {
    return "the upstream";
  }
}

/** Tool-call arguments accumulated as a JSON string; empty means no arguments. */
export function parseJsonArgs(
  id: ProviderId,
  raw: string,
  name: string,
): { ok: true; value: unknown } | { ok: false; error: ProviderError } {
  if (raw.trim() === "") return { ok: true, value: {} };
  try {
    return { ok: true, value: JSON.parse(raw) };
  } catch {
    return { ok: false, error: new ProviderError(id, `${id}: tool call ${name} has invalid JSON arguments`) };
  }
}

/** Parses one stream payload; a malformed one is an error event, not a throw. */
export function parsePayload<T>(
  id: ProviderId,
  raw: string,
): { ok: true; value: T } | { ok: false; error: ProviderError } {
  try {
    return { ok: true, value: JSON.parse(raw) as T };
  } catch {
    return { ok: false, error: new ProviderError(id, `${id}: malformed stream payload: ${raw.slice(0, 80)}`) };
  }
}

/**
 * How many tool calls the history already holds. Wire APIs that send calls without ids (Gemini,
 * Ollama) get made-up ids `call_<n>` counting on from here, so ids stay unique within a session.
 */
export function toolCallsIn(messages: ChatMessage[]): number {
  return messages.reduce((n, m) => n + m.parts.filter((p) => p.type === "tool_use").length, 0);
}

/** What makes one wire API different from the others; the rest is httpProvider's. */
export interface WireApi {
  id: ProviderId;
  /** The request URL, from the base URL (no trailing slash). */
  url(base: string, req: ChatRequest): string;
  /** The native request body. */
  body(req: ChatRequest): unknown;
  /** The reader of a 2xx response to `req`. */
  read(req: ChatRequest): (res: Response) => AsyncIterable<StreamEvent>;
  dialect?: ErrorDialect;
}

/**
 * A provider speaking `wire`: at `opts.baseUrl` or the registry's default endpoint, the key in the
 * registry's headers for that provider (none without a key). Its stream never throws past an event.
 */
export function httpProvider(wire: WireApi, opts: ProviderOptions): Provider {
  const entry = PROVIDERS[wire.id];
  const base = (opts.baseUrl || entry.baseUrl).replace(/\/+$/, "");
  const headers = entry.authHeaders(opts.apiKey);
  return {
    id: wire.id,
    stream: (req, { signal }) =>
      postAndStream(
        wire.id,
        {
          url: wire.url(base, req),
          headers,
          body: () => wire.body(req),
          apiKey: opts.apiKey,
          fetch: opts.fetch,
          signal,
          ...(wire.dialect && { dialect: wire.dialect }),
        },
        wire.read(req),
      ),
  };
}
