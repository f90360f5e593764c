/**
 * Limiter of failed auth attempts (loopback included: a local page or process that guesses tokens
 * is still guessing). Failures count per address — an IPv6 address by its /64, since one host owns
 * a whole /64; an IPv4-mapped address as its IPv4 — and across all addresses together, so a guesser
 * that spreads over many addresses (40 loopback addresses, a /48) still runs into a limit.
 *
 * The global limit must not lock the operator out: an address that authenticated successfully in the
 * last `trustMs` is held only to its own per-address limit. Successes never clear failures (a
 * legitimate client on a shared address must not reset a guesser). Tables are bounded, evicting the
 * address seen least recently when full.
 */
export interface FailureLimiterOptions {
  /** Failures allowed per address within `windowMs` before that address is locked out. */
  maxFailures?: number;
  /** Failures allowed from all addresses together within `windowMs` before untrusted addresses are locked out. */
  maxGlobalFailures?: number;
  windowMs?: number;
  /** How long a successful authentication exempts its address from the global limit. */
  trustMs?: number;
  maxAddresses?: number;
  /** The bucket an address counts in (default `limiterKey`). */
  key?: (addr: string) => string;
  now?: () => number;
}

export interface FailureLimiter {
  /** Milliseconds until `addr` may try again, or 0 when it may try now. */
  retryAfter(addr: string): number;
  recordFailure(addr: string): void;
  /** A successful authentication from `addr`: exempts it from the global limit for a while. */
  recordSuccess(addr: string): void;
}

/** The bucket an address counts in: IPv6 by its /64, IPv4-mapped IPv6 as IPv4, anything else as is. */
export function limiterKey(addr: string): string {
  const a = addr
    .toLowerCase()
    .replace(/^\[|\]$/g, "")
    .replace(/%.*$/, "");
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(a);
  if (mapped) return mapped[1]!;
  if (!a.includes(":")) return a;
  const [head = "", tail = ""] = a.split("::");
  const left = head === "" ? [] : head.split(":");
  const right = tail === "" ? [] : tail.split(":");
  const groups = a.includes("::")
    ? [...left, ...Array(Math.max(0, 8 - left.length - right.length)).fill("0"), ...right]
    : left;
  return `${groups
    .slice(0, 4)
    .map((g) => g.replace(/^0+(?=.)/, ""))
    .join(":")}::/64`;
}

export function createFailureLimiter(opts: FailureLimiterOptions = {}): FailureLimiter {
  const max = opts.maxFailures ?? 5;
  const maxGlobal = opts.maxGlobalFailures ?? 50;
  const windowMs = opts.windowMs ?? 60_000;
  const trustMs = opts.trustMs ?? 60 * 60_000;
  const maxAddresses = opts.maxAddresses ?? 10_000;
  const now = opts.now ?? Date.now;
  const keyOf = opts.key ?? limiterKey;
  const failures = new Map<string, number[]>();
  const trusted = new Map<string, number>();
  let global: number[] = [];

  const bounded = <V>(map: Map<string, V>, key: string, value: V) => {
    map.delete(key); // re-insert so Map order tracks recency
    map.set(key, value);
    if (map.size > maxAddresses) {
      const oldest = map.keys().next().value;
      if (oldest !== undefined) map.delete(oldest);
    }
  };
  const recent = (key: string): number[] => {
    const cutoff = now() - windowMs;
    const list = (failures.get(key) ?? []).filter((t) => t > cutoff);
    if (list.length === 0) failures.delete(key);
    else failures.set(key, list);
    return list;
  };
  const recentGlobal = (): number[] => {
    const cutoff = now() - windowMs;
    if (global.length > 0 && global[0]! <= cutoff) global = global.filter((t) => t > cutoff);
    return global;
  };
  const isTrusted = (key: string) => {
    const at = trusted.get(key);
    return at !== undefined && now() - at < trustMs;
  };

  return {
    retryAfter(addr) {
      const key = keyOf(addr);
      const list = recent(key);
      const own = list.length < max ? 0 : Math.max(1, list[list.length - max]! + windowMs - now());
      if (own > 0 || isTrusted(key)) return own;
      const all = recentGlobal();
      return all.length < maxGlobal ? 0 : Math.max(1, all[all.length - maxGlobal]! + windowMs - now());
    },
    recordFailure(addr) {
      const key = keyOf(addr);
      const list = recent(key);
      list.push(now());
      bounded(failures, key, list.slice(-max));
      const all = recentGlobal();
      all.push(now());
      if (all.length > maxGlobal) global = all.slice(-maxGlobal);
    },
    recordSuccess(addr) {
      bounded(trusted, keyOf(addr), now());
    },
  };
}
