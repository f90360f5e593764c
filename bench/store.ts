/**
 * Store benchmark: exoclaw's SQLite store against raw bun:sqlite running the same statements (the
 * store's own schema, pragmas, upsert + insert per append in one transaction, the same history
 * query and JSON parse) in the same run, interleaved block by block:
 * message appends/s one message per call (as a chat turn writes them) and 100 per call, and
 * loading the last 50 / all messages of a 10,000-message session.
 *
 *   bun bench/store.ts [--appends 20000] [--reps 5] [--smoke]
 *
 * What the difference is: the store's async API, its group commit (appends of one tick share a
 * transaction; each promise settles after its commit) and its error mapping.
 */
import type { SessionAddress } from "../src/core/index.ts";
import { Database } from "bun:sqlite";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { openSqliteStore, type Store } from "../src/store/index.ts";
import {
  benchArgs,
  int,
  interleave,
  ms,
  num,
  onCleanup,
  pairRatios,
  printHeader,
  ratio,
  runBench,
  spread,
  step,
  summarize,
  table,
} from "./_lib.ts";

const args = benchArgs("store", { appends: { type: "string" } }, 600);
const { smoke, reps } = args;
const APPENDS = num(args.values.appends, 20_000, smoke, 200);
const BIG = smoke ? 500 : 10_000;

const session = (peer: string): SessionAddress => ({
  key: `main:telegram:bot1:${peer}`,
  agent: "main",
  channel: "telegram",
  account: "bot1",
  peer,
  thread: null,
});
// About 260 bytes of JSON per message, like a short chat turn.
const message = (i: number) => ({
  role: "user" as const,
  parts: [{ type: "text" as const, text: `message ${i}: ` + "lorem ipsum dolor sit amet ".repeat(8) }],
});
type Message = ReturnType<typeof message>;

interface Side {
  append(addr: SessionAddress, msgs: Message[]): Promise<unknown> | unknown;
  history(key: string, limit: number): Promise<unknown[]> | unknown[];
}

/** Raw bun:sqlite with the store's schema for sessions/messages and its statements, no layer. */
function rawSide(path: string, schemaFrom: Database): Side {
  const db = new Database(path, { create: true, strict: true });
  onCleanup(() => db.close());
  for (const p of ["busy_timeout = 5000", "journal_mode = WAL", "synchronous = NORMAL", "foreign_keys = ON"])
    db.exec(`PRAGMA ${p}`);
  const schema = schemaFrom
    .query<{ sql: string }, []>(
      "SELECT sql FROM sqlite_master WHERE tbl_name IN ('sessions', 'messages') AND sql IS NOT NULL ORDER BY type DESC",
    )
    .all();
  for (const { sql } of schema) db.exec(sql);
  const upsert = db.query<{ message_count: number }, (string | number | null)[]>(
    `INSERT INTO sessions (key, agent, channel, account, peer, thread, created_at, updated_at, message_count)
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
     ON CONFLICT(key) DO UPDATE SET message_count = message_count + excluded.message_count, updated_at = excluded.updated_at
     RETURNING message_count`,
  );
  const insert = db.query<unknown, (string | number)[]>(
    "INSERT INTO messages (session, seq, role, content, created_at) VALUES (?, ?, ?, ?, ?)",
  );
  const history = db.query<{ content: string; seq: number }, (string | number)[]>(
    "SELECT * FROM (SELECT * FROM messages WHERE session = ? AND seq < ? ORDER BY seq DESC LIMIT ?) ORDER BY seq ASC",
  );
  const append = db.transaction((addr: SessionAddress, msgs: Message[]) => {
    const t = Date.now();
    const count = upsert.get(
      addr.key,
      addr.agent,
      addr.channel,
      addr.account,
      addr.peer,
      addr.thread,
      t,
      t,
      msgs.length,
    )!.message_count;
    const first = count - msgs.length + 1;
    msgs.forEach((m, i) =>
      insert.run(addr.key, first + i, m.role, JSON.stringify({ parts: m.parts, meta: undefined }), t),
    );
  });
  return {
    append,
    history: (key, limit) =>
      history
        .all(key, Number.MAX_SAFE_INTEGER, limit)
        .map((r) => ({ seq: r.seq, ...(JSON.parse(r.content) as object) })),
  };
}

function storeSide(store: Store): Side {
  return {
    append: (addr, msgs) => store.appendMessages(addr, msgs),
    history: (key, limit) => store.history(key, { limit }),
  };
}

await runBench("store", async () => {
  printHeader(
    "store",
    args,
    `${APPENDS} single appends and ${APPENDS * 5} batched per block, history of a ${BIG}-message session`,
  );
  const dir = mkdtempSync(join(tmpdir(), "exoclaw-bench-store-"));
  onCleanup(() => rmSync(dir, { recursive: true, force: true }));
  const store = openSqliteStore(join(dir, "exoclaw.db"));
  onCleanup(() => store.close());
  const schemaDb = new Database(join(dir, "exoclaw.db"), { readonly: true });
  const sides = { exoclaw: storeSide(store), raw: rawSide(join(dir, "raw.db"), schemaDb) };
  schemaDb.close();

  for (const s of Object.values(sides))
    await s.append(
      session("big"),
      Array.from({ length: BIG }, (_, i) => message(i)),
    );

  const appendsPerSec = (batch: number, n: number) =>
    Object.fromEntries(
      Object.entries(sides).map(([name, s]) => [
        name,
        async (rep: number) => {
          const addr = session(`append-${batch}-${rep}`);
          const t0 = performance.now();
          for (let i = 0; i < n; i += batch)
            await s.append(
              addr,
              Array.from({ length: batch }, (_, j) => message(i + j)),
            );
          return n / ((performance.now() - t0) / 1000);
        },
      ]),
    ) as Record<keyof typeof sides, (rep: number) => Promise<number>>;
  const historyMs = (limit: number, runs: number) =>
    Object.fromEntries(
      Object.entries(sides).map(([name, s]) => [
        name,
        async () => {
          const t0 = performance.now();
          for (let i = 0; i < runs; i++) {
            const got = await s.history(session("big").key, limit);
            if (got.length !== Math.min(limit, BIG))
              throw new Error(`${name}: history gave ${got.length} messages, expected ${Math.min(limit, BIG)}`);
          }
          return (performance.now() - t0) / runs;
        },
      ]),
    ) as Record<keyof typeof sides, () => Promise<number>>;

  const single = await step("single appends", 300_000, () => interleave(reps, appendsPerSec(1, APPENDS)));
  const batched = await step("batched appends", 300_000, () => interleave(reps, appendsPerSec(100, APPENDS * 5)));
  const last50 = await step("history: last 50", 120_000, () => interleave(reps, historyMs(50, smoke ? 5 : 200)));
  const all = await step("history: all", 300_000, () => interleave(reps, historyMs(BIG, smoke ? 2 : 10)));

  const row = (name: string, r: Record<"exoclaw" | "raw", number[]>, f: (n: number) => string) => [
    name,
    spread(summarize(r.exoclaw), f),
    spread(summarize(r.raw), f),
    spread(summarize(pairRatios(r.exoclaw, r.raw)), ratio),
  ];
  table(
    [
      "measure, median (min–max) of " + reps,
      "exoclaw sqlite store",
      "raw bun:sqlite, same statements",
      "per-pair ratio exoclaw / raw",
    ],
    [
      row("appends/s, 1 message per call, each awaited", single, int),
      row("appends/s, 100 messages per call", batched, int),
      row(`history: last 50 of ${int(BIG)}`, last50, (n) => `${n.toFixed(3)} ms`),
      row(`history: all ${int(BIG)}`, all, ms),
    ],
  );
});
