/**
 * Budgets (SPEC §10): before each model call the runner reserves an estimate against every budget
 * that applies — session, daily, monthly; tokens and USD — and fails closed: over budget is a
 * BudgetError (-32002, data {scope, used, limit}) and no call is made. Reservations count until the
 * call's real usage is recorded, so concurrent turns cannot overspend together.
 */
import type { ConfigFile } from "../config/index.ts";
import { ExoError } from "../lib/errors.ts";
import type { Store, UsageQuery } from "../store/index.ts";
import { priceOf } from "./prices.ts";

export class BudgetError extends ExoError {
  constructor(scope: string, used: number, limit: number, message?: string) {
    super("budget_exceeded", message ?? `budget exceeded: ${scope} (used ${round(used)} of ${limit})`, { data: { scope, used: round(used), limit } });
  }
}

const round = (n: number) => Math.round(n * 1e6) / 1e6;

export interface CallEstimate {
  session: string | null;
  provider: string;
  model: string;
  inputTokens: number;
  outputTokens: number;
}

export interface Reservation {
  release(): void;
}

type Budgets = ConfigFile["budgets"];

/** Start of the current UTC day and month, in ms. */
export function periodStarts(now: number): { day: number; month: number } {
  const d = new Date(now);
  return { day: Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate()), month: Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), 1) };
}

export class BudgetGuard {
  private readonly held = new Set<{ e: CallEstimate; usd: number }>();

  constructor(
    private readonly store: Store,
    private readonly budgets: () => Budgets,
    private readonly now: () => number = Date.now,
  ) {}

  /** True when any budget is set (otherwise there is nothing to reserve against). */
  active(): boolean {
    return Object.values(this.budgets()).some((v) => v !== undefined);
  }

  /** Reserves an estimate for one call; throws BudgetError when any budget would be exceeded. */
  async reserve(e: CallEstimate): Promise<Reservation> {
    const b = this.budgets();
    const price = priceOf(e.provider, e.model);
    const usdBudget = b.session_usd !== undefined || b.daily_usd !== undefined || b.monthly_usd !== undefined;
    if (usdBudget && price === null) {
      throw new BudgetError("usd", 0, b.daily_usd ?? b.monthly_usd ?? b.session_usd ?? 0, `budget: ${e.provider} model ${e.model} has no known price, and a USD budget is set; it is refused rather than treated as free`);
    }
    const usd = price ? (e.inputTokens * price.input + e.outputTokens * price.output) / 1_000_000 : 0;
    const tokens = e.inputTokens + e.outputTokens;
    const { day, month } = periodStarts(this.now());
    const checks: [scope: string, tokenLimit: number | undefined, usdLimit: number | undefined, q: UsageQuery | null, held: (h: CallEstimate) => boolean][] = [
      ["session", b.session_tokens, b.session_usd, e.session ? { session: e.session } : null, (h) => h.session === e.session],
      ["daily", b.daily_tokens, b.daily_usd, { since: day }, () => true],
      ["monthly", b.monthly_tokens, b.monthly_usd, { since: month }, () => true],
    ];
    for (const [scope, tokenLimit, usdLimit, q, sameScope] of checks) {
      if ((tokenLimit === undefined && usdLimit === undefined) || q === null) continue;
      const used = await this.store.sumUsage(q);
      const pending = [...this.held].filter((h) => sameScope(h.e));
      const pendingTokens = pending.reduce((a, h) => a + h.e.inputTokens + h.e.outputTokens, 0);
      const pendingUsd = pending.reduce((a, h) => a + h.usd, 0);
      if (tokenLimit !== undefined && used.input_tokens + used.output_tokens + pendingTokens + tokens > tokenLimit) {
        throw new BudgetError(`${scope}_tokens`, used.input_tokens + used.output_tokens + pendingTokens, tokenLimit);
      }
      if (usdLimit !== undefined && used.cost_usd + pendingUsd + usd > usdLimit) {
        throw new BudgetError(`${scope}_usd`, used.cost_usd + pendingUsd, usdLimit);
      }
    }
    const entry = { e, usd };
    this.held.add(entry);
    return { release: () => void this.held.delete(entry) };
  }
}
