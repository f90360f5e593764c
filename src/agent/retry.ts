/**
 * Retries with backoff (SPEC §9): a retryable failure (429, 5xx, overloaded, a dropped stream) is
 * tried again — but only while nothing has been yielded in that attempt, so a caller never sees
 * text twice. Retry-After / RetryInfo is honoured (capped); otherwise exponential backoff with
 * jitter. An aborted signal stops the waiting at once.
 */
import type { ProviderError } from "./provider-error.ts";
import type { Provider, StreamEvent } from "./types.ts";

export interface RetryOptions {
  maxAttempts?: number;
  baseDelayMs?: number;
  maxDelayMs?: number;
  /** Injected in tests; resolves early when the signal aborts. */
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
}

function abortableSleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal?.removeEventListener("abort", done);
      resolve();
    }
    signal?.addEventListener("abort", done, { once: true });
  });
}

export function retryDelay(error: ProviderError, attempt: number, opts: Required<Omit<RetryOptions, "sleep">>): number {
  if (error.retryAfterMs !== undefined) return Math.min(error.retryAfterMs, opts.maxDelayMs);
  const exp = Math.min(opts.maxDelayMs, opts.baseDelayMs * 2 ** (attempt - 1));
  return Math.round(exp / 2 + Math.random() * (exp / 2));
}

export function withRetries(provider: Provider, options: RetryOptions = {}): Provider {
  const opts = { maxAttempts: options.maxAttempts ?? 3, baseDelayMs: options.baseDelayMs ?? 500, maxDelayMs: options.maxDelayMs ?? 8000 };
  const sleep = options.sleep ?? abortableSleep;
  return {
    id: provider.id,
    async *stream(req, { signal }): AsyncIterable<StreamEvent> {
      for (let attempt = 1; ; attempt++) {
        let produced = false;
        let failure: ProviderError | undefined;
        for await (const ev of provider.stream(req, { ...(signal && { signal }) })) {
          if (ev.type === "error") failure = ev.error;
          else {
            if (ev.type === "text" || ev.type === "tool_call") produced = true;
            yield ev;
          }
        }
        if (!failure) return;
        const again = failure.retryable && !produced && failure.reason !== "aborted" && !signal?.aborted && attempt < opts.maxAttempts;
        if (!again) return yield { type: "error", error: failure };
        await sleep(retryDelay(failure, attempt, opts), signal);
        if (signal?.aborted) return yield { type: "error", error: failure };
      }
    },
  };
}
