/**
 * Store benchmarks: message appends per second to SQLite (one message per call, as a chat turn
 * writes them, and batched), and loading history from a 10,000-message session.
 *
 *   bun bench/store.ts
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createMemoryStore, openSqliteStore, type SessionAddress, type Store } from "../src/store/index.ts";

const dir = mkdtempSync(join(tmpdir(), "exoclaw-bench-store-"));
const session = (peer: string): SessionAddress => ({ key: `main:telegram:bot1:${peer}`, agent: "main", channel: "telegram", account: "bot1", peer, thread: null });
// About 260 bytes of JSON per message, like a short chat turn.
const message = (i: number) => ({ role: "user" as const, parts: [{ type: "text" as const, text: `message ${i}: ` + "lorem ipsum dolor sit amet ".repeat(8) }] });

async function appends(store: Store, n: number, batch: number): Promise<number> {
  const s = session(`append-${batch}`);
  const t0 = performance.now();
  for (let i = 0; i < n; i += batch) await store.appendMessages(s, Array.from({ length: batch }, (_, j) => message(i + j)));
  return n / ((performance.now() - t0) / 1000);
}

async function historyLoad(store: Store, limit: number, runs = 50): Promise<number> {
  const s = session("big");
  const t0 = performance.now();
  for (let i = 0; i < runs; i++) await store.history(s.key, { limit });
  return (performance.now() - t0) / runs;
}

try {
  const sqlite = openSqliteStore(join(dir, "exoclaw.db"));
  const memory = createMemoryStore();
  const rows: string[] = [];
  for (const [name, store] of [["sqlite", sqlite], ["memory", memory]] as const) {
    const single = await appends(store, 20_000, 1);
    const batched = await appends(store, 100_000, 100);
    await store.appendMessages(session("big"), Array.from({ length: 10_000 }, (_, i) => message(i)));
    const last50 = await historyLoad(store, 50);
    const all = await historyLoad(store, 10_000, 10);
    rows.push(`| ${name} | ${Math.round(single).toLocaleString("en")} | ${Math.round(batched).toLocaleString("en")} | ${last50.toFixed(3)} ms | ${all.toFixed(1)} ms |`);
  }
  console.log("| store | appends/s (1 message per call) | appends/s (100 per call) | history: last 50 of 10,000 | history: all 10,000 |");
  console.log("|---|---|---|---|---|");
  for (const r of rows) console.log(r);
  await sqlite.close();
} finally {
  rmSync(dir, { recursive: true, force: true });
}
