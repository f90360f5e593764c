/**
 * Fault injection (issue 15): the clock jumps across midnight UTC (and the month's end) under daily
 * and monthly budgets, forwards and back, with BudgetGuard's injected clock and a real SQLite store.
 * What holds: a day's spend counts against that day only; a jump forward opens the new day's budget;
 * a jump back (NTP correcting a clock that ran ahead) finds the earlier day's spend again — never a
 * double allowance from going back and forth.
 */
import { expect, test } from "bun:test";
import fc from "fast-check";
import { join } from "node:path";
import { BudgetError, BudgetGuard } from "../../src/metering/index.ts";
import { openSqliteStore } from "../../src/store/index.ts";
import { tempDir } from "../helpers/temp.ts";
import { params, TIMEOUT } from "./_fuzz.ts";

const est = { session: "s1", provider: "anthropic", model: "claude-sonnet-4-5", inputTokens: 100, outputTokens: 100 };
const DAY = 86_400_000;
const MIDNIGHT = Date.UTC(2026, 0, 31, 0, 0, 0); // also a month's end: 31 Jan → 1 Feb

test("a jump across midnight UTC: the new day has its own budget; a jump back finds the old day's spend", async () => {
  using dir = tempDir();
  const store = openSqliteStore(join(dir.path, "exoclaw.db"));
  let now = MIDNIGHT + DAY - 1000; // 23:59:59 on 31 Jan
  const g = new BudgetGuard(
    store,
    () => ({ daily_tokens: 500 }),
    () => now,
  );
  await g.reserve(est);
  await g.reserve(est);
  await expect(g.reserve(est)).rejects.toBeInstanceOf(BudgetError); // 400 spent, 200 more would cross 500
  now += 2000; // 00:00:01 on 1 Feb
  await g.reserve(est);
  now -= 2000; // back to 31 Jan: its 400 still count (and 1 Feb's row, dated later, too)
  await expect(g.reserve(est)).rejects.toBeInstanceOf(BudgetError);
  await store.close();
});

test(
  "any walk of the clock: every call passed is within the daily and monthly limit of the day it was dated",
  async () => {
    using dir = tempDir();
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.integer({ min: -2 * DAY, max: 2 * DAY }), { minLength: 1, maxLength: 40 }),
        async (jumps) => {
          const store = openSqliteStore(join(dir.path, `b-${Math.random().toString(36).slice(2)}.db`));
          let now = MIDNIGHT - 3600_000;
          const limits = { daily_tokens: 700, monthly_tokens: 2500 };
          const g = new BudgetGuard(
            store,
            () => limits,
            () => now,
          );
          const passed: number[] = [];
          for (const j of jumps) {
            now += j;
            try {
              await g.reserve(est);
              passed.push(now);
            } catch (e) {
              if (!(e instanceof BudgetError)) throw e;
            }
          }
          // Counting only calls dated at or before each one (what the guard could see then):
          for (const [i, at] of passed.entries()) {
            const day = Math.floor(at / DAY) * DAY;
            const d = new Date(at);
            const month = Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), 1);
            const earlier = passed.slice(0, i + 1);
            const sameDay = earlier.filter((t) => t >= day).length * 200;
            const sameMonth = earlier.filter((t) => t >= month).length * 200;
            expect(sameDay).toBeLessThanOrEqual(limits.daily_tokens);
            expect(sameMonth).toBeLessThanOrEqual(limits.monthly_tokens);
          }
          await store.close();
        },
      ),
      params(60),
    );
  },
  TIMEOUT,
);
