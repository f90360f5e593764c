/**
 * Per-address limiter of failed auth attempts (loopback included: a local page or process that
 * guesses tokens is still guessing). A sliding window of failure times per address; the table is
 * bounded, evicting the address seen least recently when full.
 */
export interface FailureLimiterOptions {
  /** Failures allowed within `windowMs` before the address is locked out. */
  maxFailures?: number;
  windowMs?: number;
  maxAddresses?: number;
  now?: () => number;
}

export interface FailureLimiter {
  /** Milliseconds until `addr` may try again, or 0 when it may try now. */
  retryAfter(addr: string): number;
  /** Successes do not clear failures: a legitimate client on a shared address must not reset a guesser. */
  recordFailure(addr: string): void;
}

export function createFailureLimiter(opts: FailureLimiterOptions = {}): FailureLimiter {
  const max = opts.maxFailures ?? 5;
  const windowMs = opts.windowMs ?? 60_000;
  const maxAddresses = opts.maxAddresses ?? 10_000;
  const now = opts.now ?? Date.now;
  const failures = new Map<string, number[]>();

  const recent = (addr: string): number[] => {
    const cutoff = now() - windowMs;
    const list = (failures.get(addr) ?? []).filter((t) => t > cutoff);
    if (list.length === 0) failures.delete(addr);
    else failures.set(addr, list);
    return list;
  };

  return {
    retryAfter(addr) {
      const list = recent(addr);
      if (list.length < max) return 0;
      return Math.max(1, list[list.length - max]! + windowMs - now());
    },
    recordFailure(addr) {
      const list = recent(addr);
      list.push(now());
      failures.delete(addr); // re-insert so Map order tracks recency
      failures.set(addr, list.slice(-max));
      if (failures.size > maxAddresses) {
        const oldest = failures.keys().next().value;
        if (oldest !== undefined) failures.delete(oldest);
      }
    },
  };
}
