/**
 * Provider decorators for SPEC §9: retries with backoff on 429/5xx/overloaded/dropped streams, then
 * fallbacks in order. Both only try again while nothing has reached the caller in that attempt, so
 * a caller never sees text or a tool call twice; both stop at once when the signal aborts.
 */
import { ProviderError } from "./provider-error.ts";
import type { Provider, StreamEvent } from "./types.ts";

export interface RetryOptions {
  /** Attempts in all, the first included. Default 3. */
  maxAttempts?: number;
  /** First backoff; doubles per attempt. Default 500 ms. */
  baseDelayMs?: number;
  /** Cap on any wait, the upstream's Retry-After included. Default 8000 ms. */
  maxDelayMs?: number;
  /** Injected in tests. Must resolve early when the signal aborts. */
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
}

type Delays = { baseDelayMs: number; maxDelayMs: number };

function abortableSleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener("abort", done, { once: true });
  });
}

/**
 * How long to wait before attempt `attempt + 1`: the upstream's own delay when it gave one (capped),
 * else exponential backoff with "equal jitter" (half fixed, half random) so many clients that
 * failed together do not come back together.
 */
export function retryDelay(
  error: ProviderError,
  attempt: number,
  opts: Delays,
  random: () => number = Math.random,
): number {
  if (error.retryAfterMs !== undefined) return Math.min(error.retryAfterMs, opts.maxDelayMs);
  const exp = Math.min(opts.maxDelayMs, opts.baseDelayMs * 2 ** (attempt - 1));
  return Math.round(exp / 2 + random() * (exp / 2));
}

const aborted = (p: Provider) => new ProviderError(p.id, `${p.id}: request aborted`, { reason: "aborted" });
const isOutput = (e: StreamEvent) => e.type === "text" || e.type === "tool_call";

/**
 * One attempt of `provider`: passes every event through except a final error, which it returns
 * together with whether any output (text, tool call) was yielded first.
 */
async function* attempt(provider: Provider, req: Parameters<Provider["stream"]>[0], signal: AbortSignal | undefined) {
  let produced = false;
  for await (const ev of provider.stream(req, signal ? { signal } : {})) {
    if (ev.type === "error") return { failure: ev.error, produced };
    if (isOutput(ev)) produced = true;
    yield ev;
  }
  return { failure: undefined, produced };
}

/**
 * `provider`, retried on a retryable error while nothing was yielded in that attempt. Never
 * throws; the last failure is the stream's last event, and an abort (also during a wait) ends the
 * stream with an error whose reason is "aborted".
 */
export function withRetries(provider: Provider, options: RetryOptions = {}): Provider {
  const maxAttempts = Math.max(1, options.maxAttempts ?? 3);
  const delays = { baseDelayMs: options.baseDelayMs ?? 500, maxDelayMs: options.maxDelayMs ?? 8000 };
  const sleep = options.sleep ?? abortableSleep;
  return {
    id: provider.id,
    async *stream(req, { signal }): AsyncGenerator<StreamEvent> {
      for (let n = 1; ; n++) {
        const { failure, produced } = yield* attempt(provider, req, signal);
        if (!failure) return;
        if (failure.reason === "aborted" || signal?.aborted)
          return yield { type: "error", error: failure.reason === "aborted" ? failure : aborted(provider) };
        if (!failure.retryable || produced || n >= maxAttempts) return yield { type: "error", error: failure };
        await sleep(retryDelay(failure, n, delays), signal);
        if (signal?.aborted) return yield { type: "error", error: aborted(provider) };
      }
    },
  };
}

/** A fallback step: another provider, and the model to ask it for. */
export interface Fallback {
  provider: Provider;
  model: string;
}

/**
 * `primary`, then each fallback in order (with `req.model` replaced by the fallback's model) when
 * the one before ended in an error — any error but an abort — before yielding output. Output
 * already sent is never repeated by another provider. When every step fails, the last failure is
 * the stream's last event. Every event but a step's final error passes through (so each step's
 * `model` announcement reaches the metering decorator). This is the chain every agent runs
 * (provider-factory.ts).
 */
export function withFallbacks(primary: Provider, fallbacks: Fallback[]): Provider {
  return {
    id: primary.id,
    async *stream(req, { signal }): AsyncGenerator<StreamEvent> {
      const steps: Fallback[] = [{ provider: primary, model: req.model }, ...fallbacks];
      let last: ProviderError | undefined;
      for (const step of steps) {
        if (signal?.aborted) return yield { type: "error", error: aborted(step.provider) };
        const { failure, produced } = yield* attempt(step.provider, { ...req, model: step.model }, signal);
        if (!failure) return;
        last = failure;
        if (produced || failure.reason === "aborted") break;
      }
      yield { type: "error", error: signal?.aborted && last?.reason !== "aborted" ? aborted(primary) : last! };
    },
  };
}
