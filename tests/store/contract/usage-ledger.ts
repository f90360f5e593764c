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
      expect(await h.store.sumUsage({})).toEqual({
        calls: 3,
        input_tokens: 30,
        output_tokens: 15,
        cost_usd: 0.75,
        unpriced_calls: 1,
      });
      expect(await h.store.sumUsage({ session: "s1" })).toMatchObject({ calls: 2, cost_usd: 0.5, unpriced_calls: 1 });
      expect(await h.store.sumUsage({ agent: "other" })).toMatchObject({ calls: 1, input_tokens: 10 });
      expect(await h.store.sumUsage({ since: 2000, until: 3000 })).toMatchObject({ calls: 1, unpriced_calls: 1 });
      expect(await h.store.sumUsage({ session: "none" })).toEqual({
        calls: 0,
        input_tokens: 0,
        output_tokens: 0,
        cost_usd: 0,
        unpriced_calls: 0,
      });
    });

    test("usage rows count from the moment they are recorded or updated, by call id; person filters", async () => {
      await using h = await make();
      const row = {
        at: 1000,
        session: "s1",
        agent: "main",
        provider: "openai",
        model: "gpt-4o",
        input_tokens: 10,
        output_tokens: 100,
        cost_usd: 0.5,
      };
      // Not awaited: budgets read the sum right after enqueuing a pending row, before it commits.
      const pending = h.store.recordUsage({ ...row, call: "c1", status: "pending", person: "telegram:1" });
      expect(await h.store.sumUsage({})).toMatchObject({ calls: 1, input_tokens: 10, output_tokens: 100 });
      await pending;
      const settled = h.store.updateUsage("c1", {
        provider: "anthropic",
        model: "claude-sonnet-4-5",
        input_tokens: 7,
        output_tokens: 3,
        cost_usd: 0.01,
        status: "final",
      });
      expect(await h.store.sumUsage({})).toMatchObject({ calls: 1, input_tokens: 7, output_tokens: 3, cost_usd: 0.01 });
      await settled;
      await h.store.updateUsage("no-such-call", {
        provider: "x",
        model: "y",
        input_tokens: 1,
        output_tokens: 1,
        cost_usd: null,
        status: "final",
      });
      await h.store.recordUsage({ ...row, person: "telegram:2" });
      expect(await h.store.sumUsage({ person: "telegram:1" })).toMatchObject({ calls: 1, input_tokens: 7 });
      expect(await h.store.sumUsage({ person: "telegram:2" })).toMatchObject({ calls: 1, input_tokens: 10 });
      expect(await h.store.sumUsage({})).toMatchObject({ calls: 2, input_tokens: 17, unpriced_calls: 0 });
    });

    test("reservations check every limit and record atomically: of 20 concurrent ones under a 5,000-token limit, exactly 5 are recorded", async () => {
      await using h = await make();
      const row = (i: number) => ({
        at: 1000 + i,
        call: `r${i}`,
        status: "pending" as const,
        session: `s${i % 3}`,
        agent: "main",
        provider: "p",
        model: "m",
        input_tokens: 200,
        output_tokens: 800,
        cost_usd: 0.01,
      });
      const limits = [
        { scope: "session_tokens", query: { session: "s0" }, measure: "tokens" as const, limit: 1_000_000 },
        { scope: "daily_tokens", query: { since: 0 }, measure: "tokens" as const, limit: 5_000 },
      ];
      const results = await Promise.all(Array.from({ length: 20 }, (_, i) => h.store.reserveUsage(row(i), limits)));
      expect(results.filter((r) => r === null)).toHaveLength(5);
      // Every refusal names the crossed scope and what was used when it was checked.
      for (const r of results) if (r !== null) expect(r).toEqual({ scope: "daily_tokens", used: 5_000, limit: 5_000 });
      expect(await h.store.sumUsage({})).toMatchObject({ calls: 5, input_tokens: 1_000, output_tokens: 4_000 });
      // A settle frees room at once for the next reservation; USD limits compare cost.
      const ok = results.flatMap((r, i) => (r === null ? [i] : []));
      for (const i of ok.slice(0, 2))
        await h.store.updateUsage(`r${i}`, {
          provider: "p",
          model: "m",
          input_tokens: 10,
          output_tokens: 0,
          cost_usd: 0,
          status: "final",
        });
      expect(await h.store.reserveUsage(row(100), limits)).toBeNull();
      expect(
        await h.store.reserveUsage(row(101), [
          { scope: "daily_usd", query: { since: 0 }, measure: "usd", limit: 0.045 },
        ]),
      ).toMatchObject({ scope: "daily_usd", limit: 0.045 });
      expect(
        await h.store.reserveUsage(row(102), [
          { scope: "session_tokens", query: { session: "none" }, measure: "tokens", limit: 999 },
        ]),
      ).toEqual({ scope: "session_tokens", used: 0, limit: 999 });
      expect((await h.store.sumUsage({})).calls).toBe(6);
    });
  });
}
