/**
 * Budgets and the usage ledger (SPEC §10). Before each model call the runner reserves an estimate:
 * every budget that applies — session, daily, monthly, per person per day; tokens and USD — is
 * checked, and the estimate is written ahead as a "pending" usage row. Over budget is a BudgetError
 * (-32002, data {scope, used, limit}); a row that cannot be written is a StoreError; either way no
 * call is made. After the call the row is settled to the provider's counts (or a local estimate
 * when they never came), so a cancelled, dropped or killed call still counts.
 *
 * Atomicity: reading the sums of all scopes, checking them and writing the pending row happen under
 * one lock, and settling goes through the same lock; the store counts a row from the moment
 * recordUsage/updateUsage is called (Store contract). So no two reservations can both slip under a
 * limit, and an estimate is never counted in neither the ledger nor a hold.
 */
import { randomUUID } from "node:crypto";
import type { ConfigFile } from "../config/index.ts";
import { ExoError } from "../lib/errors.ts";
import type { Store, UsageQuery } from "../store/index.ts";
import { costAt, costOf, priceOf } from "./prices.ts";

export class BudgetError extends ExoError {
  constructor(scope: string, used: number, limit: number, message?: string) {
    super("budget_exceeded", message ?? `budget exceeded: ${scope} (used ${round(used)} of ${limit})`, { data: { scope, used: round(used), limit } });
  }
}

const round = (n: number) => Math.round(n * 1e6) / 1e6;

export interface CallEstimate {
  session: string | null;
  /** The person on a channel (per-person budgets); null/absent for none. */
  person?: string | null;
  /** The agent making the call (recorded on the usage row). */
  agent?: string;
  provider: string;
  model: string;
  inputTokens: number;
  /** The call's max_tokens: an upper bound of what it can produce. */
  outputTokens: number;
}

export interface Reservation {
  /**
   * Settles the call's pending row: `final` with the provider's counts, `estimated` with counts made
   * locally. Never rejects (a settle that cannot be written leaves the estimate, which still counts).
   */
  settle(counts: { input_tokens: number; output_tokens: number }, status: "final" | "estimated"): Promise<void>;
  /** The call was never made: its hold is dropped (settled at zero). */
  release(): Promise<void>;
}

type Budgets = ConfigFile["budgets"];

/** Start of the current UTC day and month, in ms. */
export function periodStarts(now: number): { day: number; month: number } {
  const d = new Date(now);
  return { day: Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate()), month: Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), 1) };
}

/** Call ids: one random prefix per process and a counter (unique like a UUID each, far cheaper). */
const CALL_PREFIX = randomUUID();
let calls = 0;

export class BudgetGuard {
  /** Tail of the lock: reserve (read + check + hold) and settle run one at a time. */
  private tail: Promise<unknown> = Promise.resolve();
  /** Tasks queued on or holding the lock; 0: a synchronous step may run at once, nothing can interleave. */
  private waiting = 0;

  constructor(
    private readonly store: Store,
    private readonly budgets: () => Budgets,
    private readonly now: () => number = Date.now,
  ) {}

  /** True when any budget is set (otherwise there is nothing to check, only the ledger to write). */
  active(): boolean {
    const b = this.budgets();
    for (const k in b) if (b[k as keyof Budgets] !== undefined) return true;
    return false;
  }

  private locked<T>(fn: () => Promise<T>): Promise<T> {
    this.waiting++;
    const run = this.tail.then(fn).finally(() => this.waiting--);
    this.tail = run.catch(() => {});
    return run;
  }

  /**
   * Checks every applicable budget and writes the estimate ahead as a pending usage row, atomically
   * with respect to other reservations. Throws BudgetError (over budget) or StoreError (the row could
   * not be written); in both cases the caller must not make the call.
   */
  async reserve(e: CallEstimate): Promise<Reservation> {
    const call = `${CALL_PREFIX}-${++calls}`;
    // Without budgets nothing is read, so there is nothing to make atomic: only the row is written.
    // The lock is released once the row is enqueued, not when it is committed (a tick later).
    const { write } = this.active() ? await this.locked(() => this.checkAndHold(call, e)) : { write: this.hold(call, e) };
    await write;
    const settleAt = async (input_tokens: number, output_tokens: number, status: "final" | "estimated") => {
      const update = { provider: e.provider, model: e.model, input_tokens, output_tokens, cost_usd: costOf(e.provider, e.model, input_tokens, output_tokens), status };
      // Enqueued under the lock (so no reservation reads half-updated sums), committed outside it:
      // holding the lock across a commit would serialize every call's end on one tick each.
      // Not waited for past the enqueue: the row already counts in every later sum, and the commit
      // then shares its tick with the turn's own writes instead of delaying the turn's end by one.
      const enqueue = () => void this.store.updateUsage(call, update).catch(() => {}); // a settle that fails leaves the estimate, which still counts
      // With the lock free, nothing can be between two reads: the enqueue (synchronous) runs at once.
      if (this.waiting === 0) enqueue();
      else await this.locked(async () => enqueue());
    };
    return {
      settle: (c, status) => settleAt(c.input_tokens, c.output_tokens, status),
      release: () => settleAt(0, 0, "final"),
    };
  }

  /** Enqueues the pending row; the store counts it from now on (the promise says if it was written). */
  private hold(call: string, e: CallEstimate): Promise<void> {
    return this.store.recordUsage({
      at: this.now(),
      call,
      status: "pending",
      session: e.session,
      person: e.person ?? null,
      agent: e.agent ?? "",
      provider: e.provider,
      model: e.model,
      input_tokens: e.inputTokens,
      output_tokens: e.outputTokens,
      cost_usd: costOf(e.provider, e.model, e.inputTokens, e.outputTokens),
    });
  }

  /** Runs under the lock: reads every scope's sum (pending rows included), checks, holds. */
  private async checkAndHold(call: string, e: CallEstimate): Promise<{ write: Promise<void> }> {
    // (The write is returned in an object: an async function's promise would adopt it and wait.)
    const b = this.budgets();
    const price = priceOf(e.provider, e.model);
    // A person's USD budget applies only to a call made for a person (a channel message).
    const personUsd = e.person ? b.person_daily_usd : undefined;
    const usdBudget = b.session_usd !== undefined || b.daily_usd !== undefined || b.monthly_usd !== undefined || personUsd !== undefined;
    if (usdBudget && price === null) {
      throw new BudgetError("usd", 0, b.daily_usd ?? b.monthly_usd ?? b.session_usd ?? personUsd ?? 0, `budget: ${e.provider} model ${e.model} has no known price, and a USD budget is set; it is refused rather than treated as free`);
    }
    const usd = price ? costAt(price, e.inputTokens, e.outputTokens) : 0;
    const tokens = e.inputTokens + e.outputTokens;
    const { day, month } = periodStarts(this.now());
    const checks: [scope: string, tokenLimit: number | undefined, usdLimit: number | undefined, q: UsageQuery | null][] = [
      ["session", b.session_tokens, b.session_usd, e.session ? { session: e.session } : null],
      ["daily", b.daily_tokens, b.daily_usd, { since: day }],
      ["monthly", b.monthly_tokens, b.monthly_usd, { since: month }],
      ["person_daily", b.person_daily_tokens, b.person_daily_usd, e.person ? { person: e.person, since: day } : null],
    ];
    for (const [scope, tokenLimit, usdLimit, q] of checks) {
      if ((tokenLimit === undefined && usdLimit === undefined) || q === null) continue;
      const used = await this.store.sumUsage(q);
      if (tokenLimit !== undefined && used.input_tokens + used.output_tokens + tokens > tokenLimit) {
        throw new BudgetError(`${scope}_tokens`, used.input_tokens + used.output_tokens, tokenLimit);
      }
      if (usdLimit !== undefined && used.cost_usd + usd > usdLimit) {
        throw new BudgetError(`${scope}_usd`, used.cost_usd, usdLimit);
      }
    }
    // Enqueued before the lock is released, so the next reservation's sums include it.
    const write = this.hold(call, e);
    write.catch(() => {});
    return { write };
  }
}
