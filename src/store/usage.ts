import type { UsageQuery, UsageRecord, UsageTotals } from "./types.ts";

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
