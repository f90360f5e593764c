/**
 * The default Store: one SQLite file (bun:sqlite) in WAL mode with synchronous=NORMAL, prepared
 * statements, and a transaction wherever several rows change together. Opening checks the file
 * before anything is trusted: a corrupt file, a read-only file or a schema from a newer exoclaw is
 * a StoreError at start, never silent data loss.
 */
import { createSqliteApprovals } from "./sqlite-approvals.ts";
import { Database, type Statement } from "bun:sqlite";
import { mkdirSync } from "node:fs";
import { dirname } from "node:path";
import { isExoError } from "../lib/errors.ts";
import { decodeCursor, encodeCursor } from "./cursor.ts";
import { StoreError } from "./errors.ts";
import { migrate } from "./migrations.ts";
import { type RowCounts, UsageSums } from "./usage.ts";
import { searchWords } from "./words.ts";
import type {
  Fact,
  InboundRecord,
  InboundReply,
  NewMessage,
  Pairing,
  PendingInbound,
  SessionAddress,
  SessionInfo,
  Store,
  StoredMessage,
  UsageRecord,
  UsageQuery,
  UsageTotals,
  UsageUpdate,
} from "./types.ts";

export interface SqliteStoreOptions {
  now?: () => number;
  /** Upper bound on the database size in pages (4 KiB each); writes beyond it fail as "full". */
  maxPageCount?: number;
}

interface MessageRow {
  session: string;
  seq: number;
  role: string;
  content: string;
  created_at: number;
}

type Bind = string | number | null;

/** Turns a SQLite failure into a StoreError a user can act on. */
export function explain(path: string, e: unknown, doing: string): StoreError {
  const code = (e as { code?: string }).code ?? "";
  const msg = e instanceof Error ? e.message : String(e);
  if (code === "SQLITE_NOTADB" || code === "SQLITE_CORRUPT" || /not a database|malformed/i.test(msg)) {
    return new StoreError(`${path} is not a readable exoclaw database (corrupt?): move it aside or restore a backup`, { cause: e });
  }
  if (code.startsWith("SQLITE_READONLY") || /readonly|read-only/i.test(msg)) {
    return new StoreError(`${path} is read-only: exoclaw needs to write its database (check file and directory permissions)`, { cause: e });
  }
  if (code === "SQLITE_FULL" || /full/i.test(msg)) {
    return new StoreError(`cannot ${doing}: the database or disk is full (${path}); nothing was written`, { cause: e });
  }
  if (code.startsWith("SQLITE_CANTOPEN")) {
    return new StoreError(`cannot open ${path}: check that the directory exists and is writable`, { cause: e });
  }
  if (code.startsWith("SQLITE_BUSY")) {
    return new StoreError(`cannot ${doing}: ${path} is locked by another process`, { cause: e });
  }
  return new StoreError(`cannot ${doing} (${path}): ${msg}`, { cause: e });
}

/** Opens (creating if needed) and migrates the database at `path`. Throws StoreError. */
export function openSqliteStore(path: string, opts: SqliteStoreOptions = {}): Store {
  const now = opts.now ?? Date.now;
  let db: Database;
  try {
    if (path !== ":memory:") mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
    db = new Database(path, { create: true, strict: true });
  } catch (e) {
    throw explain(path, e, "open the database");
  }
  try {
    db.exec("PRAGMA busy_timeout = 5000");
    db.exec("PRAGMA journal_mode = WAL");
    db.exec("PRAGMA synchronous = NORMAL");
    db.exec("PRAGMA foreign_keys = ON");
    if (opts.maxPageCount !== undefined) db.exec(`PRAGMA max_page_count = ${Math.floor(opts.maxPageCount)}`);
    // A write transaction proves the file is writable even when no migration is due.
    migrate(db, path);
  } catch (e) {
    db.close();
    throw isExoError(e) ? e : explain(path, e, "open the database");
  }

  const q = <R = unknown>(sql: string): Statement<R, Bind[]> => db.query<R, Bind[]>(sql);
  const st = {
    // Creates the session or counts the new messages in, in one statement.
    upsertSession: q<{ message_count: number }>(
      `INSERT INTO sessions (key, agent, channel, account, peer, thread, created_at, updated_at, message_count)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT(key) DO UPDATE SET message_count = message_count + excluded.message_count, updated_at = excluded.updated_at
       RETURNING message_count`,
    ),
    insertMessage: q("INSERT INTO messages (session, seq, role, content, created_at) VALUES (?, ?, ?, ?, ?)"),
    getSession: q<SessionInfo>("SELECT * FROM sessions WHERE key = ?"),
    history: q<MessageRow>(
      "SELECT * FROM (SELECT * FROM messages WHERE session = ? AND seq < ? ORDER BY seq DESC LIMIT ?) ORDER BY seq ASC",
    ),
    deleteMessages: q("DELETE FROM messages WHERE session = ?"),
    deleteSession: q<{ message_count: number }>("DELETE FROM sessions WHERE key = ? RETURNING message_count"),
    countSessions: q<{ n: number }>("SELECT count(*) AS n FROM sessions"),
    insertUsage: q(
      `INSERT INTO usage (at, session, agent, provider, model, input_tokens, output_tokens, cost_usd, call, person, status)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    ),
    // By rowid (the primary key) when this store inserted the row; `call = ?` still guards it.
    updateUsageById: q("UPDATE usage SET provider = ?, model = ?, input_tokens = ?, output_tokens = ?, cost_usd = ?, status = ? WHERE id = ? AND call = ?"),
    // A call this process did not insert (or already settled): a scan, since `call` has no index.
    updateUsageByCall: q("UPDATE usage SET provider = ?, model = ?, input_tokens = ?, output_tokens = ?, cost_usd = ?, status = ? WHERE call = ?"),
    // Changes when another connection commits (never for this one's own commits).
    dataVersion: q<{ data_version: number }>("PRAGMA data_version"),
    kvGet: q<{ value: string }>("SELECT value FROM plugin_kv WHERE plugin = ? AND key = ?"),
    kvSet: q("INSERT INTO plugin_kv (plugin, key, value) VALUES (?, ?, ?) ON CONFLICT(plugin, key) DO UPDATE SET value = excluded.value"),
    kvDelete: q("DELETE FROM plugin_kv WHERE plugin = ? AND key = ?"),
    // CAST AS BLOB: length() of text counts characters; the quota is in bytes.
    kvStats: q<{ entries: number; bytes: number }>(
      "SELECT COUNT(*) AS entries, COALESCE(SUM(length(CAST(key AS BLOB)) + length(CAST(value AS BLOB))), 0) AS bytes FROM plugin_kv WHERE plugin = ?",
    ),
    acceptInbound: q(
      "INSERT INTO inbound (id, channel, payload, received_at) VALUES (?, ?, ?, ?) ON CONFLICT(id) DO NOTHING",
    ),
    pendingInbound: q<PendingInbound>(
      "SELECT id, channel, payload, received_at, attempts, last_error, reply, next_at, dead_at FROM inbound WHERE done = 0 ORDER BY received_at, rowid LIMIT ?",
    ),
    getInbound: q<PendingInbound>(
      "SELECT id, channel, payload, received_at, attempts, last_error, reply, next_at, dead_at FROM inbound WHERE id = ? AND done = 0",
    ),
    dueInbound: q<PendingInbound>(
      `SELECT id, channel, payload, received_at, attempts, last_error, reply, next_at, dead_at FROM inbound
       WHERE done = 0 AND dead_at IS NULL AND (attempts > 0 OR reply IS NOT NULL) AND next_at <= ? ORDER BY next_at, received_at, rowid LIMIT ?`,
    ),
    nextInboundAt: q<{ at: number | null }>("SELECT min(next_at) AS at FROM inbound WHERE done = 0 AND dead_at IS NULL AND (attempts > 0 OR reply IS NOT NULL) AND next_at > ?"),
    countInbound: q<{ pending: number; dead: number }>(
      "SELECT count(*) - count(dead_at) AS pending, count(dead_at) AS dead FROM inbound WHERE done = 0",
    ),
    saveInboundReply: q("UPDATE inbound SET reply = ? WHERE id = ? AND done = 0"),
    completeInbound: q("UPDATE inbound SET done = 1, payload = '', reply = NULL WHERE id = ? AND done = 0"),
    failInbound: q(
      `UPDATE inbound SET attempts = attempts + 1, last_error = ?1,
         next_at = coalesce(?2, next_at), dead_at = CASE WHEN ?2 IS NULL THEN ?3 ELSE NULL END
       WHERE id = ?4 AND done = 0`,
    ),
    requeueInbound: q("UPDATE inbound SET attempts = 0, next_at = ?, dead_at = NULL WHERE id = ? AND done = 0"),
    getPairing: q<Pairing>("SELECT * FROM pairings WHERE person = ?"),
    pairingByCode: q<Pairing>("SELECT * FROM pairings WHERE code = ?"),
    savePairing: q(
      `INSERT INTO pairings (person, channel, status, code, created_at, expires_at, notified_at, approved_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT(person) DO UPDATE SET channel = excluded.channel, status = excluded.status, code = excluded.code, created_at = excluded.created_at,
         expires_at = excluded.expires_at, notified_at = excluded.notified_at, approved_at = excluded.approved_at`,
    ),
    deletePairing: q("DELETE FROM pairings WHERE person = ?"),
    addFact: q("INSERT INTO facts (agent, person, text, created_at) VALUES (?, ?, ?, ?) ON CONFLICT(agent, person, text) DO NOTHING"),
    getFact: q<Fact>("SELECT id, agent, person, text, created_at FROM facts WHERE agent = ? AND person = ? AND text = ?"),
    // Most people have no facts: this index probe spares them the full-text query.
    anyFact: q<{ x: number }>("SELECT 1 AS x FROM facts WHERE agent = ? AND person = ? LIMIT 1"),
  };

  const appendRows = (addr: SessionAddress, msgs: NewMessage[], t: number, reply?: InboundReply): StoredMessage[] => {
    // In the same transaction as the messages: the history and the outbox never disagree.
    if (reply) st.saveInboundReply.run(reply.text, reply.inbound);
    const count = st.upsertSession.get(addr.key, addr.agent, addr.channel, addr.account, addr.peer, addr.thread, t, t, msgs.length)!.message_count;
    const first = count - msgs.length + 1;
    return msgs.map((m, i) => {
      const seq = first + i;
      st.insertMessage.run(addr.key, seq, m.role, JSON.stringify({ parts: m.parts, meta: m.meta }), t);
      return { ...m, session: addr.key, seq, created_at: t };
    });
  };
  const append = db.transaction(appendRows);
  const reset = db.transaction((key: string): number | null => {
    st.deleteMessages.run(key);
    const row = st.deleteSession.get(key);
    return row ? row.message_count : null;
  });

  // Group commit: appends and usage records that arrive in the same tick share one transaction (a
  // commit per turn was most of a turn's CPU). Call order is kept, so seq order is arrival order.
  // Each caller's promise settles only when its rows are committed. If the shared transaction fails,
  // the usage batch and then each append are retried alone, so one bad write (say, a full disk for a
  // big message) fails only itself.
  type PendingAppend = { addr: SessionAddress; msgs: NewMessage[]; reply: InboundReply | undefined; resolve: (m: StoredMessage[]) => void; reject: (e: unknown) => void };
  // A usage write is an insert or an update of a call's row; both ride the same queue, in order.
  // `row`: the updated row's session and person, when the store knows them (see UsageSums.updated).
  type UsageOp = { record: UsageRecord } | { call: string; update: UsageUpdate; row: RowCounts | undefined };
  type PendingUsage = { op: UsageOp; resolve: () => void; reject: (e: unknown) => void };
  let appendQueue: PendingAppend[] = [];
  let usageQueue: PendingUsage[] = [];
  let flushScheduled = false;
  // Budget-shaped sums kept current in memory (see UsageSums); dropped when another connection commits.
  const sums = new UsageSums();
  let dataVersion = st.dataVersion.get()!.data_version;
  // The rowid of each committed row that has a call id and is not settled yet, so its settle updates
  // by primary key: no index on `call` to maintain on every insert (a page more per commit). Entries
  // are added only once their transaction committed (a rolled-back rowid is reused by the next insert)
  // and dropped when the call is settled, so the map holds about the calls in flight.
  const callRows = new Map<string, number>();
  type CallIds = { added: [call: string, id: number][]; settled: string[] };
  const insertUsage = (batch: PendingUsage[]): CallIds => {
    const ids: CallIds = { added: [], settled: [] };
    for (const { op } of batch) {
      if ("record" in op) {
        const r = op.record;
        const res = st.insertUsage.run(r.at, r.session, r.agent, r.provider, r.model, r.input_tokens, r.output_tokens, r.cost_usd, r.call ?? null, r.person ?? null, r.status ?? "final");
        if (r.call !== undefined) ids.added.push([r.call, Number(res.lastInsertRowid)]);
      } else {
        const u = op.update;
        // Inserted earlier in this batch (rare: settled within the tick) or in a committed one.
        let id = callRows.get(op.call);
        for (let i = ids.added.length - 1; id === undefined && i >= 0; i--) if (ids.added[i]![0] === op.call) id = ids.added[i]![1];
        if (id !== undefined) st.updateUsageById.run(u.provider, u.model, u.input_tokens, u.output_tokens, u.cost_usd, u.status, id, op.call);
        else st.updateUsageByCall.run(u.provider, u.model, u.input_tokens, u.output_tokens, u.cost_usd, u.status, op.call);
        if (u.status !== "pending") ids.settled.push(op.call);
      }
    }
    return ids;
  };
  /** After the commit: the batch's rowids become known, its settled calls are forgotten. */
  const committed = (ids: CallIds) => {
    for (const [call, id] of ids.added) callRows.set(call, id);
    for (const call of ids.settled) callRows.delete(call);
  };
  const insertUsageBatch = db.transaction(insertUsage);
  // Rows of the whole batch in one transaction (no savepoint per append).
  const writeAll = db.transaction((appends: PendingAppend[], usage: PendingUsage[], t: number) => {
    const ids = insertUsage(usage);
    return { ids, results: appends.map((p) => appendRows(p.addr, p.msgs, t, p.reply)) };
  });
  const flush = () => {
    flushScheduled = false;
    if (appendQueue.length === 0 && usageQueue.length === 0) return;
    const appends = appendQueue;
    const usage = usageQueue;
    appendQueue = [];
    usageQueue = [];
    const t = now();
    try {
      const { ids, results } = writeAll(appends, usage, t);
      committed(ids);
      for (const p of usage) p.resolve();
      appends.forEach((p, i) => p.resolve(results[i]!));
      return;
    } catch {
      // fall through: isolate the failure
    }
    try {
      if (usage.length > 0) committed(insertUsageBatch(usage));
      for (const p of usage) p.resolve();
    } catch (e) {
      sums.invalidate(); // the kept sums counted rows that are not in the database
      const err = explain(path, e, "record usage");
      for (const p of usage) p.reject(err);
    }
    for (const p of appends) {
      try {
        p.resolve(append(p.addr, p.msgs, t, p.reply));
      } catch (e) {
        p.reject(isExoError(e) ? e : explain(path, e, "append messages"));
      }
    }
  };
  const schedule = (size: number) => {
    if (size >= 256) flush();
    else if (!flushScheduled) {
      flushScheduled = true;
      setImmediate(flush);
    }
  };

  /** Whether a queued usage write may change the sum of `q`'s session or person (unknown row: yes). */
  const touches = (op: UsageOp, q: UsageQuery): boolean => {
    const r = "record" in op ? { session: op.record.session, person: op.record.person ?? null } : op.row;
    if (r === undefined) return true;
    return q.session !== undefined ? r.session === q.session : r.person === q.person;
  };

  /** Runs a synchronous database step, mapping failures to StoreError. */
  const run = <T>(doing: string, fn: () => T): Promise<T> => {
    try {
      return Promise.resolve(fn());
    } catch (e) {
      return Promise.reject(isExoError(e) ? e : explain(path, e, doing));
    }
  };

  const toMessage = (r: MessageRow): StoredMessage => {
    const c = JSON.parse(r.content) as { parts: StoredMessage["parts"]; meta?: Record<string, unknown> };
    const m: StoredMessage = { session: r.session, seq: r.seq, role: r.role as StoredMessage["role"], parts: c.parts, created_at: r.created_at };
    if (c.meta !== undefined) m.meta = c.meta;
    return m;
  };

  return {
    approvals: createSqliteApprovals(db, run),
    kind: "sqlite",
    location: path,
    appendMessages: (addr, msgs, reply) =>
      new Promise<StoredMessage[]>((resolve, reject) => {
        appendQueue.push({ addr, msgs, reply, resolve, reject });
        schedule(appendQueue.length);
      }),
    getSession: (key) => run("read a session", () => st.getSession.get(key) ?? null),
    listSessions: (query) =>
      run("list sessions", () => {
        const where: string[] = [];
        const args: Bind[] = [];
        if (query.agent !== undefined) (where.push("agent = ?"), args.push(query.agent));
        if (query.channel !== undefined) (where.push("channel = ?"), args.push(query.channel));
        if (query.cursor !== undefined) {
          const c = decodeCursor(query.cursor);
          where.push("(updated_at < ? OR (updated_at = ? AND key > ?))");
          args.push(c.updated_at, c.updated_at, c.key);
        }
        const sql = `SELECT * FROM sessions ${where.length ? "WHERE " + where.join(" AND ") : ""} ORDER BY updated_at DESC, key ASC LIMIT ?`;
        const rows = q<SessionInfo>(sql).all(...args, query.limit + 1);
        const page = rows.slice(0, query.limit);
        const last = page.at(-1);
        return { sessions: page, next_cursor: rows.length > query.limit && last ? encodeCursor(last) : null };
      }),
    history: (key, query) =>
      run("read history", () => st.history.all(key, query.before ?? Number.MAX_SAFE_INTEGER, query.limit).map(toMessage)),
    resetSession: (key) => run("reset the session", () => reset(key)),
    countSessions: () => run("count sessions", () => st.countSessions.get()!.n),
    recordUsage: (record) =>
      new Promise<void>((resolve, reject) => {
        usageQueue.push({ op: { record }, resolve, reject });
        sums.recorded(record);
        schedule(usageQueue.length);
      }),
    updateUsage: (call, update) =>
      new Promise<void>((resolve, reject) => {
        usageQueue.push({ op: { call, update, row: sums.updated(call, update) }, resolve, reject });
        schedule(usageQueue.length);
      }),
    sumUsage: (query) =>
      run("sum usage", () => {
        // A kept sum already counts every queued write: no flush, no scan of the period's rows.
        const kept = sums.get(query);
        if (kept !== null) {
          const v = st.dataVersion.get()!.data_version;
          if (v !== dataVersion) {
            sums.invalidate();
            dataVersion = v;
          } else if (kept !== undefined) return { ...kept };
        }
        // A sum of one session or person that no queued write touches reads the same committed or
        // not: it is read without forcing the queue's commit (a new session's first reservation).
        if (!(kept === undefined && (query.session !== undefined || query.person !== undefined) && !usageQueue.some((p) => touches(p.op, query)))) flush();
        const where: string[] = [];
        const args: Bind[] = [];
        if (query.session !== undefined) (where.push("session = ?"), args.push(query.session));
        if (query.agent !== undefined) (where.push("agent = ?"), args.push(query.agent));
        if (query.person !== undefined) (where.push("person = ?"), args.push(query.person));
        if (query.since !== undefined) (where.push("at >= ?"), args.push(query.since));
        if (query.until !== undefined) (where.push("at < ?"), args.push(query.until));
        const sql = `SELECT count(*) AS calls, coalesce(sum(input_tokens), 0) AS input_tokens, coalesce(sum(output_tokens), 0) AS output_tokens,
          coalesce(sum(cost_usd), 0) AS cost_usd, count(*) - count(cost_usd) AS unpriced_calls
          FROM usage ${where.length ? "WHERE " + where.join(" AND ") : ""}`;
        const totals = q<UsageTotals>(sql).get(...args)!;
        if (kept !== null) sums.load(query, totals); // counts every queued write that bears on it
        return totals;
      }),
    kvGet: (plugin, key) => run("read plugin state", () => st.kvGet.get(plugin, key)?.value ?? null),
    kvSet: (plugin, key, value) =>
      run("write plugin state", () => {
        if (value === null) st.kvDelete.run(plugin, key);
        else st.kvSet.run(plugin, key, value);
      }),
    kvStats: (plugin) => run("read plugin state size", () => st.kvStats.get(plugin) ?? { entries: 0, bytes: 0 }),
    acceptInbound: (r: InboundRecord) =>
      run("store an inbound message", () => st.acceptInbound.run(r.id, r.channel, r.payload, r.received_at).changes === 1),
    pendingInbound: (limit) => run("read pending messages", () => st.pendingInbound.all(limit)),
    getInbound: (id) => run("read a pending message", () => st.getInbound.get(id) ?? null),
    dueInbound: (now, limit) => run("read due messages", () => st.dueInbound.all(now, limit)),
    nextInboundAt: (after) => run("read the next delivery time", () => st.nextInboundAt.get(after)?.at ?? null),
    countInbound: () => run("count pending messages", () => st.countInbound.get() ?? { pending: 0, dead: 0 }),
    saveInboundReply: (id, reply) =>
      run("save an inbound reply", () => {
        st.saveInboundReply.run(reply, id);
      }),
    completeInbound: (id) => run("complete an inbound message", () => st.completeInbound.run(id).changes === 1),
    failInbound: (id, f) =>
      run("record an inbound failure", () => {
        st.failInbound.run(f.error, f.retry_at, f.at, id);
      }),
    requeueInbound: (id, at) => run("re-queue an inbound message", () => st.requeueInbound.run(at, id).changes === 1),
    getPairing: (person) => run("read a pairing", () => st.getPairing.get(person) ?? null),
    pairingByCode: (code) => run("read a pairing", () => st.pairingByCode.get(code) ?? null),
    savePairing: (p) =>
      run("save a pairing", () => {
        st.savePairing.run(p.person, p.channel, p.status, p.code, p.created_at, p.expires_at, p.notified_at, p.approved_at);
      }),
    listPairings: (pq) =>
      run("list pairings", () => {
        const where: string[] = [];
        const args: Bind[] = [];
        if (pq.channel !== undefined) (where.push("channel = ?"), args.push(pq.channel));
        if (pq.status !== undefined) (where.push("status = ?"), args.push(pq.status));
        return q<Pairing>(`SELECT * FROM pairings ${where.length ? "WHERE " + where.join(" AND ") : ""} ORDER BY created_at, rowid`).all(...args);
      }),
    deletePairing: (person) => run("delete a pairing", () => st.deletePairing.run(person).changes === 1),
    addFact: (agent, person, text) =>
      run("store a fact", () => {
        st.addFact.run(agent, person, text, now());
        return st.getFact.get(agent, person, text)!;
      }),
    searchFacts: (fq) =>
      run("search facts", () => {
        const words = searchWords(fq.query);
        if (words.length === 0) return [];
        if (fq.person !== undefined && !st.anyFact.get(fq.agent, fq.person)) return [];
        // Each word quoted: user text never becomes FTS5 syntax.
        const match = words.map((w) => `"${w}"`).join(" OR ");
        const sql = `SELECT f.id, f.agent, f.person, f.text, f.created_at, -bm25(facts_fts) AS score
          FROM facts_fts JOIN facts f ON f.id = facts_fts.rowid
          WHERE facts_fts MATCH ? AND f.agent = ? ${fq.person !== undefined ? "AND f.person = ?" : ""}
          ORDER BY bm25(facts_fts) LIMIT ?`;
        const args: Bind[] = [match, fq.agent, ...(fq.person !== undefined ? [fq.person] : []), fq.limit];
        return q<Fact & { score: number }>(sql).all(...args);
      }),
    async close() {
      flush();
      db.close();
    },
  };
}
