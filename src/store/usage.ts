import type { UsageExceeded, UsageLimit, UsageQuery, UsageRecord, UsageTotals, UsageUpdate } from "./types.ts";

/** The first limit `r` would cross given the sums `sum` reads, or null (every engine checks the same way). */
export function firstExceeded(
  r: UsageRecord,
  limits: readonly UsageLimit[],
  sum: (q: UsageQuery) => UsageTotals,
): UsageExceeded | null {
  for (const l of limits) {
    const used = sum(l.query);
    const now = l.measure === "tokens" ? used.input_tokens + used.output_tokens : used.cost_usd;
    const adds = l.measure === "tokens" ? r.input_tokens + r.output_tokens : (r.cost_usd ?? 0);
    if (now + adds > l.limit) return { scope: l.scope, used: now, limit: l.limit };
  }
  return null;
}

/** Sums usage records matching a query (memory store; sqlite does this in SQL). */
export function sumRecords(records: readonly UsageRecord[], q: UsageQuery): UsageTotals {
  const totals: UsageTotals = { calls: 0, input_tokens: 0, output_tokens: 0, cost_usd: 0, unpriced_calls: 0 };
  for (const r of records) {
    if (q.session !== undefined && r.session !== q.session) continue;
    if (q.agent !== undefined && r.agent !== q.agent) continue;
    if (q.person !== undefined && r.person !== q.person) continue;
    if (q.since !== undefined && r.at < q.since) continue;
    if (q.until !== undefined && r.at >= q.until) continue;
    totals.calls++;
    totals.input_tokens += r.input_tokens;
    totals.output_tokens += r.output_tokens;
    if (r.cost_usd === null) totals.unpriced_calls++;
    else totals.cost_usd += r.cost_usd;
  }
  return totals;
}

/** What a usage row adds to a sum: the fields queries filter on and the counts. */
export interface RowCounts {
  at: number;
  session: string | null;
  person: string | null;
  input_tokens: number;
  output_tokens: number;
  cost_usd: number | null;
}

/** How many sums are kept at most; past it they are all dropped (and read again when asked). */
const MAX_SUMS = 4096;
/** How many recorded, unsettled calls are tracked at most (calls in flight); past it: dropped. */
const MAX_LIVE = 65_536;

const zero = (): UsageTotals => ({ calls: 0, input_tokens: 0, output_tokens: 0, cost_usd: 0, unpriced_calls: 0 });

function add(t: UsageTotals, r: RowCounts, sign: 1 | -1): void {
  t.calls += sign;
  t.input_tokens += sign * r.input_tokens;
  t.output_tokens += sign * r.output_tokens;
  if (r.cost_usd === null) t.unpriced_calls += sign;
  else t.cost_usd += sign * r.cost_usd;
}

/**
 * Running totals of the sums a budget check asks for — `{session}`, `{since}`, `{person, since}` —
 * so a reservation neither reads the whole day's rows nor forces the queued writes to commit first.
 * A sum is read from the database once (`load`), then kept current by every recordUsage and
 * updateUsage at the moment it is called (the Store contract's visibility rule). Anything it cannot
 * follow exactly — an update of a call it did not see recorded, a write that failed, another
 * connection's commit — drops every kept sum (`invalidate`), so the next ask reads the database.
 */
export class UsageSums {
  private readonly bySession = new Map<string, UsageTotals>();
  private readonly bySince = new Map<number, UsageTotals>();
  private readonly byPerson = new Map<string, Map<number, UsageTotals>>();
  private size = 0;
  /** Counts of the calls recorded through this store and not settled yet (to apply a settle's delta). */
  private readonly live = new Map<string, RowCounts>();

  /** The kept sum for `q`, undefined when not kept; null when `q` is not a shape that is kept. */
  get(q: UsageQuery): UsageTotals | undefined | null {
    if (q.agent !== undefined || q.until !== undefined) return null;
    if (q.session !== undefined)
      return q.person === undefined && q.since === undefined ? this.bySession.get(q.session) : null;
    if (q.since === undefined) return null;
    if (q.person !== undefined) return this.byPerson.get(q.person)?.get(q.since);
    return this.bySince.get(q.since);
  }

  /** Keeps `totals` (just read from the database, with no queued write bearing on `q`) as the sum for `q`. */
  load(q: UsageQuery, totals: UsageTotals): void {
    if (this.get(q) !== undefined) return; // null: not kept; a value: already kept
    if (this.size >= MAX_SUMS) this.invalidate();
    const t = { ...totals };
    if (q.session !== undefined) this.bySession.set(q.session, t);
    else if (q.person !== undefined) {
      let m = this.byPerson.get(q.person);
      if (!m) this.byPerson.set(q.person, (m = new Map()));
      m.set(q.since!, t);
    } else this.bySince.set(q.since!, t);
    this.size++;
  }

  /** A row was recorded (before it is committed). */
  recorded(r: UsageRecord): void {
    const row: RowCounts = {
      at: r.at,
      session: r.session,
      person: r.person ?? null,
      input_tokens: r.input_tokens,
      output_tokens: r.output_tokens,
      cost_usd: r.cost_usd,
    };
    if (r.call !== undefined) {
      if (this.live.size >= MAX_LIVE) this.invalidate();
      this.live.set(r.call, row);
    }
    if (this.size > 0) this.apply(row, 1);
  }

  /**
   * The row of `call` was updated (before it is committed). Returns the row's session and person
   * when known (recorded through this store and not settled yet), undefined otherwise.
   */
  updated(call: string, u: UsageUpdate): RowCounts | undefined {
    const old = this.live.get(call);
    if (old === undefined) {
      // Recorded by another process or an earlier run, or settled already: its old counts are unknown.
      if (this.size > 0) this.invalidate();
      return undefined;
    }
    const row: RowCounts = {
      ...old,
      input_tokens: u.input_tokens,
      output_tokens: u.output_tokens,
      cost_usd: u.cost_usd,
    };
    if (this.size > 0) {
      this.apply(old, -1);
      this.apply(row, 1);
    }
    if (u.status === "pending") this.live.set(call, row);
    else this.live.delete(call);
    return old;
  }

  /** Drops every kept sum and tracked call: the next ask reads the database. */
  invalidate(): void {
    this.bySession.clear();
    this.bySince.clear();
    this.byPerson.clear();
    this.live.clear();
    this.size = 0;
  }

  private apply(r: RowCounts, sign: 1 | -1): void {
    if (r.session !== null) {
      const t = this.bySession.get(r.session);
      if (t) add(t, r, sign);
    }
    for (const [since, t] of this.bySince) if (r.at >= since) add(t, r, sign);
    if (r.person !== null) {
      const m = this.byPerson.get(r.person);
      if (m) for (const [since, t] of m) if (r.at >= since) add(t, r, sign);
    }
  }
}
