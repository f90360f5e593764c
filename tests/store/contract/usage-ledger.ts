/**
 * The contract of the usage ledger: every implementation of the port runs it (tests/store/sqlite.test.ts,
 * memory.test.ts; later the NATS store). `make` returns a fresh, empty implementation and a disposer;
 * the clock is injected so ordering by time is deterministic.
 */
import { describe, expect, test } from "bun:test";
import type { UsageLedger } from "../../../src/store/index.ts";
import { type MakeHarness } from "./harness.ts";

export function usageLedgerContract(name: string, make: MakeHarness<UsageLedger>): void {
  describe(`Usage ledger contract: ${name}`, () => {
    test("usage records sum by session, agent and time window; unpriced calls are counted apart", async () => {
      await using h = await make();
      const base = { agent: "main", provider: "anthropic", model: "m", input_tokens: 10, output_tokens: 5 };
      await h.store.recordUsage({ ...base, at: 1000, session: "s1", cost_usd: 0.5 });
      await h.store.recordUsage({ ...base, at: 2000, session: "s1", cost_usd: null });
      await h.store.recordUsage({ ...base, at: 3000, session: "s2", agent: "other", cost_usd: 0.25 });
      expect(await h.store.sumUsage({})).toEqual({ calls: 3, input_tokens: 30, output_tokens: 15, cost_usd: 0.75, unpriced_calls: 1 });
      expect(await h.store.sumUsage({ session: "s1" })).toMatchObject({ calls: 2, cost_usd: 0.5, unpriced_calls: 1 });
      expect(await h.store.sumUsage({ agent: "other" })).toMatchObject({ calls: 1, input_tokens: 10 });
      expect(await h.store.sumUsage({ since: 2000, until: 3000 })).toMatchObject({ calls: 1, unpriced_calls: 1 });
      expect(await h.store.sumUsage({ session: "none" })).toEqual({ calls: 0, input_tokens: 0, output_tokens: 0, cost_usd: 0, unpriced_calls: 0 });
    });

    test("usage rows count from the moment they are recorded or updated, by call id; person filters", async () => {
      await using h = await make();
      const row = { at: 1000, session: "s1", agent: "main", provider: "openai", model: "gpt-4o", input_tokens: 10, output_tokens: 100, cost_usd: 0.5 };
      // Not awaited: budgets read the sum right after enqueuing a pending row, before it commits.
      const pending = h.store.recordUsage({ ...row, call: "c1", status: "pending", person: "telegram:1" });
      expect(await h.store.sumUsage({})).toMatchObject({ calls: 1, input_tokens: 10, output_tokens: 100 });
      await pending;
      const settled = h.store.updateUsage("c1", { provider: "anthropic", model: "claude-sonnet-4-5", input_tokens: 7, output_tokens: 3, cost_usd: 0.01, status: "final" });
      expect(await h.store.sumUsage({})).toMatchObject({ calls: 1, input_tokens: 7, output_tokens: 3, cost_usd: 0.01 });
      await settled;
      await h.store.updateUsage("no-such-call", { provider: "x", model: "y", input_tokens: 1, output_tokens: 1, cost_usd: null, status: "final" });
      await h.store.recordUsage({ ...row, person: "telegram:2" });
      expect(await h.store.sumUsage({ person: "telegram:1" })).toMatchObject({ calls: 1, input_tokens: 7 });
      expect(await h.store.sumUsage({ person: "telegram:2" })).toMatchObject({ calls: 1, input_tokens: 10 });
      expect(await h.store.sumUsage({})).toMatchObject({ calls: 2, input_tokens: 17, unpriced_calls: 0 });
    });
  });
}
