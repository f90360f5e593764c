/**
 * What every wire API shares: the request, and turning HTTP failures, broken streams and aborts
 * into ProviderErrors (STYLE: one error per failure kind, retryable when trying again may work).
 * Messages name the provider and never include the API key.
 */
import { ProviderError } from "../provider-error.ts";
import type { ProviderId, StreamEvent } from "../types.ts";

/** Seconds or an HTTP date, as in Retry-After. */
export function parseRetryAfter(value: string | null): number | undefined {
  if (!value) return undefined;
  const seconds = Number(value);
  if (Number.isFinite(seconds)) return Math.max(0, seconds * 1000);
  const at = Date.parse(value);
  return Number.isNaN(at) ? undefined : Math.max(0, at - Date.now());
}

function upstreamMessage(body: string): string {
  try {
    const j = JSON.parse(body) as { error?: { message?: unknown } | unknown[]; message?: unknown };
    const e = Array.isArray(j) ? (j[0] as { error?: { message?: unknown } })?.error : j.error;
    const m = typeof e === "object" && e !== null && "message" in e ? e.message : typeof j.error === "string" ? j.error : j.message;
    return typeof m === "string" ? m : "";
  } catch {
    return body.slice(0, 200);
  }
}

/** An HTTP error response as a ProviderError. */
export function httpError(id: ProviderId, status: number, headers: Headers, body: string, apiKey: string | null, retryAfterMs?: number): ProviderError {
  const scrubbed = (s: string) => (apiKey && apiKey.length >= 4 ? s.split(apiKey).join("***") : s);
  if (status === 401 || status === 403) {
    return new ProviderError(id, `${id}: authentication failed (${status}) — check the API key`, { status });
  }
  const detail = scrubbed(upstreamMessage(body)).slice(0, 300);
  const after = retryAfterMs ?? parseRetryAfter(headers.get("retry-after"));
  // OpenAI's insufficient_quota is billing, not a rate: waiting will not help. A quota 429 that says
  // when to come back (Gemini's RetryInfo) is a rate limit.
  const quota = /insufficient_quota/.test(body) && after === undefined;
  const retryable = !quota && (status === 408 || status === 409 || status === 429 || status >= 500);
  const what = status === 429 ? (quota ? "quota exhausted" : "rate limited") : status === 529 || /overloaded/i.test(body) ? "overloaded" : `HTTP ${status}`;
  return new ProviderError(id, `${id}: ${what} (${status})${detail ? `: ${detail}` : ""}`, { status, retryable, ...(after !== undefined && { retryAfterMs: after }) });
}

export function abortedError(id: ProviderId): ProviderError {
  return new ProviderError(id, `${id}: request aborted`, { reason: "aborted" });
}

/** A failure while reading the body: an abort, or a dropped connection (retryable). */
export function streamError(id: ProviderId, e: unknown, signal?: AbortSignal): ProviderError {
  if (signal?.aborted || (e as Error)?.name === "AbortError") return abortedError(id);
  if (e instanceof ProviderError) return e;
  return new ProviderError(id, `${id}: connection lost mid-stream (${(e as Error)?.message ?? String(e)})`, { retryable: true, cause: e });
}

export const endedEarly = (id: ProviderId) => new ProviderError(id, `${id}: stream ended early (no end-of-stream marker)`, { retryable: true });

/**
 * POSTs a JSON body and, on a 2xx, hands the response to `read`; every failure becomes the stream's
 * last event. Never throws.
 */
export async function* postAndStream(
  id: ProviderId,
  url: string,
  init: { headers: Record<string, string>; body: unknown; apiKey: string | null; fetch?: typeof fetch; signal?: AbortSignal },
  read: (res: Response) => AsyncIterable<StreamEvent>,
  retryAfterOf?: (body: string) => number | undefined,
): AsyncIterable<StreamEvent> {
  let res: Response;
  try {
    res = await (init.fetch ?? fetch)(url, {
      method: "POST",
      headers: { "content-type": "application/json", ...init.headers },
      body: JSON.stringify(init.body),
      ...(init.signal && { signal: init.signal }),
    });
  } catch (e) {
    if (init.signal?.aborted) return yield { type: "error", error: abortedError(id) };
    return yield { type: "error", error: new ProviderError(id, `${id}: cannot reach ${new URL(url).host} (${(e as Error).message})`, { retryable: true, cause: e }) };
  }
  if (!res.ok) {
    let body = "";
    try {
      body = await res.text();
    } catch {
      // the status is enough
    }
    return yield { type: "error", error: httpError(id, res.status, res.headers, body, init.apiKey, retryAfterOf?.(body)) };
  }
  try {
    yield* read(res);
  } catch (e) {
    yield { type: "error", error: streamError(id, e, init.signal) };
  }
}

export function parseJsonArgs(id: ProviderId, raw: string, name: string): { ok: true; value: unknown } | { ok: false; error: ProviderError } {
  if (raw.trim() === "") return { ok: true, value: {} };
  try {
    return { ok: true, value: JSON.parse(raw) };
  } catch {
    return { ok: false, error: new ProviderError(id, `${id}: tool call ${name} has invalid JSON arguments`) };
  }
}
