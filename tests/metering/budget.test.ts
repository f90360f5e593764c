import { describe, expect, test } from "bun:test";
import { BudgetError, BudgetGuard, costOf, periodStarts, priceOf } from "../../src/metering/index.ts";
import { createMemoryStore } from "../../src/store/index.ts";

describe("prices", () => {
  test("longest prefix wins; unknown models are unpriced; Ollama is free", () => {
    expect(priceOf("openai", "gpt-4o-mini-2024-07-18")).toEqual({ input: 0.15, output: 0.6 });
    expect(priceOf("openai", "gpt-4o")).toEqual({ input: 2.5, output: 10 });
    expect(priceOf("anthropic", "claude-sonnet-4-5")).toEqual({ input: 3, output: 15 });
    expect(priceOf("openai", "my-local-finetune")).toBeNull();
    expect(priceOf("ollama", "llama3")).toEqual({ input: 0, output: 0 });
    expect(costOf("anthropic", "claude-sonnet-4-5", 1_000_000, 100_000)).toBeCloseTo(4.5);
    expect(costOf("openai", "unknown", 10, 10)).toBeNull();
  });
  test("periods are UTC day and month", () => {
    expect(periodStarts(Date.UTC(2026, 10, 28, 23, 59))).toEqual({
      day: Date.UTC(2026, 10, 28),
      month: Date.UTC(2026, 10, 1),
    });
  });
});

describe("BudgetGuard", () => {
  const est = (over = {}) => ({
    session: "s1",
    provider: "anthropic",
    model: "claude-sonnet-4-5",
    inputTokens: 100,
    outputTokens: 100,
    ...over,
  });
  const usage = (tokens: number, cost: number | null, session = "s1", at = Date.now()) => ({
    at,
    session,
    agent: "main",
    provider: "anthropic",
    model: "claude-sonnet-4-5",
    input_tokens: tokens,
    output_tokens: 0,
    cost_usd: cost,
  });

  test("no budgets: everything passes", async () => {
    const store = createMemoryStore();
    const g = new BudgetGuard(store, () => ({}));
    const r = await g.reserve(est({ inputTokens: 10 ** 9 }));
    // Reserved (written ahead) even with no limit to hold it against, and released to nothing.
    expect((await store.sumUsage({})).input_tokens).toBe(10 ** 9);
    await r.release();
    expect((await store.sumUsage({})).input_tokens).toBe(0);
  });

  test("a session token budget counts stored usage and refuses the call that would cross it", async () => {
    const store = createMemoryStore();
    await store.recordUsage(usage(900, 0.01));
    const g = new BudgetGuard(store, () => ({ session_tokens: 1000 }));
    const err = await g.reserve(est()).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BudgetError);
    expect((err as BudgetError).data).toEqual({ scope: "session_tokens", used: 900, limit: 1000 });
    (await g.reserve(est({ session: "s2" }))).release();
  });

  test("reservations in flight count, so concurrent calls cannot overspend together", async () => {
    const g = new BudgetGuard(createMemoryStore(), () => ({ daily_tokens: 500 }));
    const first = await g.reserve(est());
    const second = await g.reserve(est());
    await expect(g.reserve(est())).rejects.toBeInstanceOf(BudgetError);
    await first.release();
    await (await g.reserve(est())).release();
    await second.release();
  });

  test("USD budgets use the price table; an unpriced model is refused, not free", async () => {
    const store = createMemoryStore();
    await store.recordUsage(usage(0, 0.999));
    const g = new BudgetGuard(store, () => ({ daily_usd: 1 }));
    await expect(g.reserve(est({ inputTokens: 100_000 }))).rejects.toThrow(/daily_usd/);
    (await g.reserve(est({ inputTokens: 10, outputTokens: 10 }))).release();
    await expect(g.reserve(est({ provider: "openai", model: "mystery-model" }))).rejects.toThrow(
      /has no known price, and a USD budget is set/,
    );
  });

  test("yesterday's usage does not count against today's budget", async () => {
    const store = createMemoryStore();
    await store.recordUsage(usage(10_000, 1, "s1", Date.now() - 2 * 86_400_000));
    const g = new BudgetGuard(store, () => ({ daily_tokens: 1000 }));
    await (await g.reserve(est())).release();
    // The same usage today is refused: the day, not the amount, let the first call through.
    await store.recordUsage(usage(10_000, 1, "s1"));
    await expect(g.reserve(est())).rejects.toBeInstanceOf(BudgetError);
  });

  test("concurrent reservations under several scopes at once never pass together (finding 4)", async () => {
    const store = createMemoryStore();
    const g = new BudgetGuard(store, () => ({ daily_tokens: 2000, monthly_tokens: 10_000, session_tokens: 100_000 }));
    const results = await Promise.allSettled(
      Array.from({ length: 20 }, () => g.reserve(est({ inputTokens: 10, outputTokens: 500 }))),
    );
    expect(results.filter((r) => r.status === "fulfilled")).toHaveLength(3);
    expect(
      results
        .filter((r) => r.status === "rejected")
        .every((r) => (r as PromiseRejectedResult).reason instanceof BudgetError),
    ).toBe(true);
    expect(await store.sumUsage({})).toMatchObject({ calls: 3, input_tokens: 30, output_tokens: 1500 });
  });

  test("the estimate is written ahead and settled to the real counts; a settled call frees what it did not use", async () => {
    const store = createMemoryStore();
    const g = new BudgetGuard(store, () => ({ daily_tokens: 1000 }));
    const r = await g.reserve(est({ inputTokens: 100, outputTokens: 800 }));
    expect(await store.sumUsage({})).toMatchObject({ calls: 1, input_tokens: 100, output_tokens: 800 });
    await expect(g.reserve(est({ inputTokens: 100, outputTokens: 100 }))).rejects.toBeInstanceOf(BudgetError);
    await r.settle({ input_tokens: 90, output_tokens: 10 }, "final");
    expect(await store.sumUsage({})).toMatchObject({
      calls: 1,
      input_tokens: 90,
      output_tokens: 10,
      cost_usd: (90 * 3 + 10 * 15) / 1e6,
    });
    await (await g.reserve(est({ inputTokens: 100, outputTokens: 100 }))).settle(
      { input_tokens: 1, output_tokens: 1 },
      "estimated",
    );
    expect((await store.sumUsage({})).calls).toBe(2);
  });

  test("without budgets the row is still written ahead, and a failed write refuses the call", async () => {
    const store = createMemoryStore();
    await (await new BudgetGuard(store, () => ({})).reserve(est())).settle(
      { input_tokens: 1, output_tokens: 2 },
      "final",
    );
    expect(await store.sumUsage({})).toMatchObject({ calls: 1, input_tokens: 1, output_tokens: 2 });
    const broken = {
      ...store,
      recordUsage: () => Promise.reject(new Error("disk full")),
      reserveUsage: () => Promise.reject(new Error("disk full")),
    };
    await expect(new BudgetGuard(broken, () => ({})).reserve(est())).rejects.toThrow(/disk full/);
    await expect(new BudgetGuard(broken, () => ({ daily_tokens: 10_000 })).reserve(est())).rejects.toThrow(/disk full/);
  });
});
