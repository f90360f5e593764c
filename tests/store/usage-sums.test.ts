/**
 * The sqlite store's kept budget sums and its settle by rowid (perf work on the write-ahead usage
 * rows): every answer must equal what a fresh SQL sum over the file gives, whatever happened since
 * the sum was first read — queued writes, settles, another connection's commits, failed writes, a
 * call recorded by an earlier run.
 */
import { Database } from "bun:sqlite";
import { afterAll, describe, expect, test } from "bun:test";
import { join } from "node:path";
import { openSqliteStore, type UsageQuery, type UsageRecord } from "../../src/store/index.ts";
import { sumRecords } from "../../src/store/usage.ts";
import { tempDir } from "../helpers/temp.ts";

const dirs: ReturnType<typeof tempDir>[] = [];
afterAll(() => dirs.forEach((d) => d[Symbol.dispose]()));
const dbPath = () => {
  const d = tempDir("exoclaw-usage-sums-");
  dirs.push(d);
  return join(d.path, "exoclaw.db");
};

const DAY = 1_700_000_000_000;
const row = (over: Partial<UsageRecord> = {}): UsageRecord => ({
  at: DAY + 10,
  session: "s1",
  person: null,
  agent: "main",
  provider: "openai",
  model: "gpt-4o",
  input_tokens: 10,
  output_tokens: 100,
  cost_usd: 0.5,
  ...over,
});
const final = (input_tokens: number, output_tokens: number, cost_usd: number | null) => ({
  provider: "openai",
  model: "gpt-4o",
  input_tokens,
  output_tokens,
  cost_usd,
  status: "final" as const,
});

/** The sum straight from the file, through a connection of its own (no cache, no queue). */
function sqlSum(path: string, where: string, ...args: (string | number)[]) {
  const db = new Database(path, { readonly: true });
  try {
    return db
      .query(
        `SELECT count(*) AS calls, coalesce(sum(input_tokens), 0) AS input_tokens, coalesce(sum(output_tokens), 0) AS output_tokens FROM usage WHERE ${where}`,
      )
      .get(...args) as { calls: number; input_tokens: number; output_tokens: number };
  } finally {
    db.close();
  }
}

describe("sqlite usage sums kept for budgets", () => {
  test("random records and settles across sessions and people: every budget-shaped sum equals the reference, queued or committed", async () => {
    const store = openSqliteStore(dbPath());
    const records: UsageRecord[] = [];
    const queries: UsageQuery[] = [
      { since: DAY },
      { since: DAY + 500 },
      { session: "s0" },
      { session: "s3" },
      { person: "p1", since: DAY },
      { person: "p2", since: DAY + 500 },
    ];
    let seed = 7;
    // High bits of an LCG (its low bits cycle with short periods).
    const rand = (n: number) => ((seed = (seed * 1103515245 + 12345) % 2 ** 31), Math.floor((seed / 2 ** 31) * n));
    const open: string[] = [];
    const writes: Promise<void>[] = [];
    let compared = 0;
    for (let i = 0; i < 600; i++) {
      const op = rand(4);
      if (op <= 1 || open.length === 0) {
        const r = row({
          at: DAY + rand(1000),
          session: rand(5) === 0 ? null : `s${rand(4)}`,
          person: rand(3) === 0 ? null : `p${rand(3)}`,
          input_tokens: rand(50),
          output_tokens: rand(500),
          cost_usd: rand(4) === 0 ? null : rand(100) / 8,
          call: `c${i}`,
          status: "pending",
        });
        records.push(r);
        open.push(r.call!);
        writes.push(store.recordUsage(r));
      } else if (op === 2) {
        const call = open.splice(rand(open.length), 1)[0]!;
        const u = final(rand(50), rand(500), rand(4) === 0 ? null : rand(100) / 8);
        Object.assign(records.find((r) => r.call === call)!, {
          input_tokens: u.input_tokens,
          output_tokens: u.output_tokens,
          cost_usd: u.cost_usd,
        });
        writes.push(store.updateUsage(call, u));
      } else {
        const q = queries[rand(queries.length)]!;
        const got = await store.sumUsage(q);
        const want = sumRecords(records, q);
        expect({ ...got, cost_usd: Math.round(got.cost_usd * 1e6) }).toEqual({
          ...want,
          cost_usd: Math.round(want.cost_usd * 1e6),
        });
        compared++;
      }
      if (rand(10) === 0) await Promise.all(writes.splice(0)); // sometimes let the queue commit
    }
    await Promise.all(writes);
    expect(compared).toBeGreaterThan(100);
    for (const q of queries) expect((await store.sumUsage(q)).input_tokens).toBe(sumRecords(records, q).input_tokens);
    await store.close();
  });

  test("a session's or person's first sum counts its queued records and settles, though other writes stay queued", async () => {
    const path = dbPath();
    const s = openSqliteStore(path);
    await s.recordUsage(row({ session: "s2", person: "p2", call: "old", status: "pending" }));
    // Queued, not awaited: a settle of s2's committed row, a new s2 row, and rows of other sessions.
    const writes = [
      s.updateUsage("old", final(1, 2, 0)),
      s.recordUsage(row({ session: "s2", person: "p2", input_tokens: 30 })),
      s.recordUsage(row({ session: "s1", person: "p1", input_tokens: 500 })),
    ];
    expect(await s.sumUsage({ session: "s2" })).toMatchObject({ calls: 2, input_tokens: 31, output_tokens: 102 });
    expect(await s.sumUsage({ person: "p2", since: DAY })).toMatchObject({
      calls: 2,
      input_tokens: 31,
      output_tokens: 102,
    });
    expect(await s.sumUsage({ session: "s3" })).toMatchObject({ calls: 0, input_tokens: 0 });
    // Only a settle of s4 queued (its row committed): the first s4 sum must see the settled counts.
    await s.recordUsage(row({ session: "s4", person: "p4", call: "s4call", status: "pending" }));
    writes.push(
      s.updateUsage("s4call", final(4, 4, 0)),
      s.recordUsage(row({ session: "s1", person: "p1", input_tokens: 0 })),
    );
    expect(await s.sumUsage({ session: "s4" })).toMatchObject({ calls: 1, input_tokens: 4, output_tokens: 4 });
    writes.push(s.updateUsage("s4call", final(5, 5, 0)));
    expect(await s.sumUsage({ person: "p4", since: DAY })).toMatchObject({
      calls: 1,
      input_tokens: 5,
      output_tokens: 5,
    });
    expect(await s.sumUsage({ session: "s1" })).toMatchObject({ calls: 2, input_tokens: 500 });
    await Promise.all(writes);
    expect(sqlSum(path, "session = ?", "s2")).toEqual({ calls: 2, input_tokens: 31, output_tokens: 102 });
    await s.close();
  });

  test("another connection's commit counts in the next sum, though this store had the sum kept", async () => {
    const path = dbPath();
    const a = openSqliteStore(path);
    await a.recordUsage(row());
    expect((await a.sumUsage({ since: DAY })).calls).toBe(1); // now kept
    expect((await a.sumUsage({ session: "s1" })).calls).toBe(1);
    const b = openSqliteStore(path);
    await b.recordUsage(row({ input_tokens: 1000 }));
    await b.close();
    expect(await a.sumUsage({ since: DAY })).toMatchObject({ calls: 2, input_tokens: 1010 });
    expect(await a.sumUsage({ session: "s1" })).toMatchObject({ calls: 2, input_tokens: 1010 });
    await a.close();
  });

  test("a usage write that fails (database full) is not counted by a kept sum", async () => {
    const path = dbPath();
    const s = openSqliteStore(path, { maxPageCount: 40 });
    await s.recordUsage(row());
    expect((await s.sumUsage({ since: DAY })).calls).toBe(1);
    const err = await s.recordUsage(row({ agent: "x".repeat(300_000), input_tokens: 5000 })).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Error);
    expect(await s.sumUsage({ since: DAY })).toMatchObject({ calls: 1, input_tokens: 10 });
    expect(sqlSum(path, "at >= ?", DAY)).toEqual({ calls: 1, input_tokens: 10, output_tokens: 100 });
    await s.close();
  });

  test("a pending row from an earlier run is settled by its call id, and the kept sums follow", async () => {
    const path = dbPath();
    const first = openSqliteStore(path);
    await first.recordUsage(row({ call: "crashed", status: "pending" }));
    await first.close();
    const s = openSqliteStore(path);
    expect((await s.sumUsage({ since: DAY })).output_tokens).toBe(100);
    await s.updateUsage("crashed", final(7, 3, 0.01));
    expect(await s.sumUsage({ since: DAY })).toMatchObject({
      calls: 1,
      input_tokens: 7,
      output_tokens: 3,
      cost_usd: 0.01,
    });
    expect(sqlSum(path, "call = ?", "crashed")).toEqual({ calls: 1, input_tokens: 7, output_tokens: 3 });
    await s.close();
  });

  test("the call column has no index to maintain (settles go by rowid)", () => {
    const path = dbPath();
    openSqliteStore(path).close();
    const db = new Database(path, { readonly: true });
    const indexes = (
      db.query("SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'usage'").all() as {
        name: string;
        sql: string | null;
      }[]
    ).filter((i) => i.sql !== null);
    db.close();
    expect(indexes.map((i) => i.name).sort()).toEqual(["usage_by_person", "usage_by_session", "usage_by_time"]);
  });
});
