/**
 * The usage ledger port: one row per model call (write-ahead: recorded with the estimate before the
 * call, settled after), summed by session, person, agent and time window for budgets and `usage`.
 *
 * Every method may reject with StoreError; a failed write changes nothing (all-or-nothing).
 */

export interface UsageRecord {
  at: number;
  /**
   * The model call's own id, so its row can be updated once the call ends (write-ahead: a row is
   * recorded with the estimate before the call, then settled to the real counts). Absent = a final
   * record that is never updated.
   */
  call?: string;
  /** "pending": written before the call, holds the estimate; "final": the provider's counts;
   * "estimated": the call ended without the provider's counts (cancelled, dropped), counted locally. */
  status?: UsageStatus;
  session: string | null;
  /** The person on a channel the call was made for (per-person budgets), null/absent for none. */
  person?: string | null;
  agent: string;
  provider: string;
  model: string;
  input_tokens: number;
  output_tokens: number;
  /** null when the model has no known price. */
  cost_usd: number | null;
}

export type UsageStatus = "pending" | "final" | "estimated";

/** What settling a pending call changes: the model that answered, its counts, their status. */
export interface UsageUpdate {
  provider: string;
  model: string;
  input_tokens: number;
  output_tokens: number;
  cost_usd: number | null;
  status: UsageStatus;
}

export interface UsageQuery {
  session?: string;
  person?: string;
  agent?: string;
  /** Inclusive lower bound (ms since epoch). */
  since?: number;
  /** Exclusive upper bound. */
  until?: number;
}

export interface UsageTotals {
  calls: number;
  input_tokens: number;
  output_tokens: number;
  cost_usd: number;
  /** Calls whose cost was unknown (not counted in cost_usd). */
  unpriced_calls: number;
}

/** One budget a reservation must stay under: the sum of `query` (pending rows included) plus the new row. */
export interface UsageLimit {
  /** How the refusal names it, e.g. "daily_tokens", "session_usd". */
  scope: string;
  query: UsageQuery;
  /** What is compared: input + output tokens, or cost in USD. */
  measure: "tokens" | "usd";
  limit: number;
}

/** A reservation was refused: the first limit it would have crossed, and that scope's use so far. */
export interface UsageExceeded {
  scope: string;
  used: number;
  limit: number;
}

export interface UsageLedger {
  /**
   * Checks every limit against its sum (pending rows included) plus `record`, and records `record`
   * only when none is crossed — atomically with respect to every other reserveUsage and recordUsage,
   * in this process and any other sharing the store (SQLite: one `BEGIN IMMEDIATE` transaction), so
   * two concurrent reservations never both slip under a limit. Resolves null when recorded (committed:
   * it counts everywhere), or the first limit crossed (nothing recorded).
   */
  reserveUsage(record: UsageRecord, limits: readonly UsageLimit[]): Promise<UsageExceeded | null>;
  /**
   * Records a usage row. The row counts in every sumUsage called after this call, even before the
   * returned promise settles (budgets rely on it); if the write fails, the promise rejects and the
   * row counts nowhere.
   */
  recordUsage(record: UsageRecord): Promise<void>;
  /** Changes the row recorded with `call` (same visibility rule as recordUsage); unknown id: no-op. */
  updateUsage(call: string, update: UsageUpdate): Promise<void>;
  sumUsage(query: UsageQuery): Promise<UsageTotals>;
}
