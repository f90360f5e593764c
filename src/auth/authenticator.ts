/**
 * The one gateway-token check. Every surface that asks "does this caller hold the token?" — the
 * WebSocket upgrade's Bearer, `connect {token}`, the HTTP routes (/ready, /metrics, /v1, /mcp) and
 * webhooks of channels whose scheme is `none` — asks it here, so all of them compare in constant
 * time and share one failure limiter: a guess spent on one surface counts on every other.
 */
import { AuthError, ExoError } from "../lib/errors.ts";
import { createFailureLimiter, type FailureLimiter, type FailureLimiterOptions } from "./rate-limit.ts";
import { createTokenCheck } from "./token.ts";

/** `missing`: no token presented (not counted as a guess); `limited`: too many failures from this address. */
export type AuthVerdict = "ok" | "missing" | "wrong" | "limited";

export interface Authenticator {
  /** False on a gateway without a token: everything is `ok`. */
  readonly required: boolean;
  /**
   * Judges a presented token (`null`: none) from `remote`. A wrong one counts as a failure of that
   * address; a right one marks the address trusted (exempt from the global limit). An address over
   * its limit is `limited` whatever it presents.
   */
  check(token: string | null, remote: string): AuthVerdict;
  /** Milliseconds until `remote` may try again (0: now). */
  retryAfter(remote: string): number;
}

export function createAuthenticator(
  token: string,
  limiter: FailureLimiter | FailureLimiterOptions = {},
): Authenticator {
  const matches = createTokenCheck(token);
  const limits = "retryAfter" in limiter ? limiter : createFailureLimiter(limiter);
  const required = token !== "";
  return {
    required,
    check(given, remote) {
      if (!required) return "ok";
      if (limits.retryAfter(remote) > 0) return "limited";
      if (given === null) return "missing";
      if (matches(given)) {
        limits.recordSuccess(remote);
        return "ok";
      }
      limits.recordFailure(remote);
      return "wrong";
    },
    retryAfter: (remote) => limits.retryAfter(remote),
  };
}

/**
 * What a refused caller is told, on every surface: `limited` → rate_limited (with the wait in
 * `data.retry_after_s` when known), `missing` / `wrong` → unauthorized.
 */
export function refusalOf(verdict: Exclude<AuthVerdict, "ok">, retryAfterMs = 0): ExoError {
  if (verdict === "limited") {
    return new ExoError(
      "rate_limited",
      "too many failed attempts",
      retryAfterMs > 0 ? { data: { retry_after_s: Math.ceil(retryAfterMs / 1000) } } : undefined,
    );
  }
  return new AuthError(verdict === "missing" ? "Authorization: Bearer <token> required" : "invalid token");
}
