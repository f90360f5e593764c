/**
 * Budgets and the usage ledger (SPEC §10). Before each model call the runner reserves an estimate:
 * every budget that applies — session, daily, monthly, per person per day; tokens and USD — is
 * checked, and the estimate is written ahead as a "pending" usage row. Over budget is a BudgetError
 * (-32002, data {scope, used, limit}); a row that cannot be written is a StoreError; either way no
 * call is made. After the call the row is settled to the provider's counts (or a local estimate
 * when they never came), so a cancelled, dropped or killed call still counts.
 *
 * Atomicity: reading the sums of all scopes, checking them and writing the pending row are one
 * UsageLedger.reserveUsage — one transaction under the database's write lock on SQLite — so no two
 * reservations, in this process or another worker on the same store, can both slip under a limit;
 * the store counts a settle from the moment updateUsage is called (Store contract), so an estimate
 * is never counted in neither the ledger nor a hold.
 */
import { randomUUID } from "node:crypto";
import type { ConfigFile } from "../config/index.ts";
import { ExoError } from "../lib/errors.ts";
import type { UsageLedger, UsageLimit, UsageQuery, UsageRecord } from "../store/index.ts";
import { costOf, priceOf } from "./prices.ts";

export class BudgetError extends ExoError {
  constructor(scope: string, used: number, limit: number, message?: string) {
    super("budget_exceeded", message ?? `budget exceeded: ${scope} (used ${round(used)} of ${limit})`, {
      data: { scope, used: round(used), limit },
    });
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
  return {
    day: Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate()),
    month: Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), 1),
  };
}

/** Call ids: one random prefix per process and a counter (unique like a UUID each, far cheaper). */
const CALL_PREFIX = randomUUID();
let calls = 0;

export class BudgetGuard {
  constructor(
    private readonly store: UsageLedger,
    private readonly budgets: () => Budgets,
    private readonly now: () => number = Date.now,
  ) {}

  /** True when any budget is set (otherwise there is nothing to check, only the ledger to write). */
  active(): boolean {
    const b = this.budgets();
    for (const k in b) if (b[k as keyof Budgets] !== undefined) return true;
    return false;
  }

  /**
   * Checks every applicable budget and writes the estimate ahead as a pending usage row, atomically
   * with respect to other reservations of every process on the store. Throws BudgetError (over
   * budget) or StoreError (the row could not be written); in both cases the caller must not make the call.
   */
  async reserve(e: CallEstimate): Promise<Reservation> {
    const call = `${CALL_PREFIX}-${++calls}`;
    const record = this.row(call, e);
    if (this.active()) {
      const over = await this.store.reserveUsage(record, this.limits(e));
      if (over) throw new BudgetError(over.scope, over.used, over.limit);
    } else {
      // Without budgets nothing is read, so there is nothing to make atomic: only the row is written.
      await this.store.recordUsage(record);
    }
    const settleAt = async (input_tokens: number, output_tokens: number, status: "final" | "estimated") => {
      const update = {
        provider: e.provider,
        model: e.model,
        input_tokens,
        output_tokens,
        cost_usd: costOf(e.provider, e.model, input_tokens, output_tokens),
        status,
      };
      // Not waited for: the row counts in every later sum from the call on (the ledger's contract),
      // and the commit then shares its tick with the turn's own writes instead of delaying its end.
      void this.store.updateUsage(call, update).catch(() => {}); // a settle that fails leaves the estimate, which still counts
    };
    return {
      settle: (c, status) => settleAt(c.input_tokens, c.output_tokens, status),
      release: () => settleAt(0, 0, "final"),
    };
  }

  /** The pending row of a call: its estimate, counted from the moment it is recorded. */
  private row(call: string, e: CallEstimate): UsageRecord {
    return {
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
    };
  }

  /** Every budget that applies to the call, as the ledger's limits (session, daily, monthly, per person). */
  private limits(e: CallEstimate): UsageLimit[] {
    const b = this.budgets();
    const price = priceOf(e.provider, e.model);
    // A person's USD budget applies only to a call made for a person (a channel message).
    const personUsd = e.person ? b.person_daily_usd : undefined;
    const usdBudget =
      b.session_usd !== undefined ||
      b.daily_usd !== undefined ||
      b.monthly_usd !== undefined ||
      personUsd !== undefined;
    if (usdBudget && price === null) {
      throw new BudgetError(
        "usd",
        0,
        b.daily_usd ?? b.monthly_usd ?? b.session_usd ?? personUsd ?? 0,
        `budget: ${e.provider} model ${e.model} has no known price, and a USD budget is set; it is refused rather than treated as free`,
      );
    }
    const { day, month } = periodStarts(this.now());
    const scopes: [
      scope: string,
      tokenLimit: number | undefined,
      usdLimit: number | undefined,
      q: UsageQuery | null,
    ][] = [
      ["session", b.session_tokens, b.session_usd, e.session ? { session: e.session } : null],
      ["daily", b.daily_tokens, b.daily_usd, { since: day }],
      ["monthly", b.monthly_tokens, b.monthly_usd, { since: month }],
      ["person_daily", b.person_daily_tokens, b.person_daily_usd, e.person ? { person: e.person, since: day } : null],
    ];
    const limits: UsageLimit[] = [];
    for (const [scope, tokenLimit, usdLimit, query] of scopes) {
      if (query === null) continue;
      if (tokenLimit !== undefined)
        limits.push({ scope: `${scope}_tokens`, query, measure: "tokens", limit: tokenLimit });
      if (usdLimit !== undefined) limits.push({ scope: `${scope}_usd`, query, measure: "usd", limit: usdLimit });
    }
    return limits;
  }
}
