/**
 * The session leases port: which gateway worker may run a turn of a session now (issue 13). Turns of
 * one session run one at a time and in order across every worker sharing the store: a worker takes
 * the session's lease before the turn and gives it back after its history is stored. A lease expires
 * (a worker killed mid-turn does not hold the session forever) and carries a fencing token that only
 * grows, so a holder whose lease expired and was taken over cannot store its stale turn
 * (appendMessages with `fence` is refused).
 *
 * Every method may reject with StoreError; a failed write changes nothing (all-or-nothing).
 */

export interface SessionLeases {
  /**
   * Takes the lease of `session` for `holder` until `ttlMs` from now, when nobody holds it or the
   * holder's lease expired. Resolves its fencing token (greater than every token this session's lease
   * had before), or null when another holder has it now (the caller waits and tries again).
   */
  acquireLease(session: string, holder: string, ttlMs: number): Promise<number | null>;
  /** Extends the lease of `token` to `ttlMs` from now; false when it was taken over (the token is stale). */
  renewLease(session: string, token: number, ttlMs: number): Promise<boolean>;
  /** Gives the lease back (the next acquire gets it at once); a stale token changes nothing. */
  releaseLease(session: string, token: number): Promise<void>;
}

/** A write made under a session's lease: refused (StoreError, nothing written) when `token` is no longer the session's. */
export interface LeaseFence {
  token: number;
}
