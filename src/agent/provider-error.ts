import { ExoError } from "../lib/errors.ts";
import type { ProviderId } from "./types.ts";

/**
 * One failure of a provider call (STYLE: vercel/ai's APICallError). `message` names the provider
 * and never contains the API key. -32003 over RPC.
 */
export class ProviderError extends ExoError {
  readonly provider: ProviderId;
  /** HTTP status, when the upstream answered. */
  readonly status: number | undefined;
  /** 408/409/429/5xx/overloaded/connection drops: trying again may work. */
  readonly retryable: boolean;
  /** From Retry-After or Gemini's RetryInfo, when the upstream said. */
  readonly retryAfterMs: number | undefined;
  /** "aborted" when the caller's signal fired; "error" otherwise. */
  readonly reason: "error" | "aborted";

  constructor(
    provider: ProviderId,
    message: string,
    opts: {
      status?: number;
      retryable?: boolean;
      retryAfterMs?: number;
      reason?: "error" | "aborted";
      cause?: unknown;
    } = {},
  ) {
    super("provider_error", message, {
      cause: opts.cause,
      data: { provider, ...(opts.status !== undefined && { status: opts.status }) },
    });
    this.provider = provider;
    this.status = opts.status;
    this.retryable = opts.retryable ?? false;
    this.retryAfterMs = opts.retryAfterMs;
    this.reason = opts.reason ?? "error";
  }
}
