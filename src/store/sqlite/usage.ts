/**
 * The usage ledger on SQLite: rows written through the group commit (./commit.ts), settled by call
 * id, and summed from budget-shaped sums kept in memory (../usage.ts) when it can.
 */
import type { UsageLedger, UsageLimit, UsageQuery, UsageRecord, UsageTotals, UsageUpdate } from "../usage-ledger.ts";
import { firstExceeded, type RowCounts, UsageSums } from "../usage.ts";
import type { GroupCommit } from "./commit.ts";
import type { Bind, SqliteContext } from "./context.ts";

/** A usage write is an insert or an update of a call's row; both ride the same queue, in order.
 * `row`: the updated row's session and person, when the store knows them (see UsageSums.updated). */
export type UsageOp = { record: UsageRecord } | { call: string; update: UsageUpdate; row: RowCounts | undefined };

/** The rowids a batch inserted and the calls it settled: known once its transaction committed. */
export type CallIds = { added: [call: string, id: number][]; settled: string[] };

/** Writes usage ops inside the group commit's transaction, and keeps what the ledger's reads need. */
export interface UsageWriter {
  write(ops: readonly UsageOp[]): CallIds;
  /** After the commit: the batch's rowids become known, its settled calls are forgotten. */
  committed(ids: CallIds): void;
  /** A usage batch failed: the kept sums counted rows that are not in the database. */
  failed(): void;
  readonly sums: UsageSums;
}

export function usageWriter(ctx: SqliteContext): UsageWriter {
  const insert = ctx.q(
    `INSERT INTO usage (at, session, agent, provider, model, input_tokens, output_tokens, cost_usd, call, person, status)
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
  );
  // By rowid (the primary key) when this store inserted the row; `call = ?` still guards it.
  const updateById = ctx.q(
    "UPDATE usage SET provider = ?, model = ?, input_tokens = ?, output_tokens = ?, cost_usd = ?, status = ? WHERE id = ? AND call = ?",
  );
  // A call this process did not insert (or already settled): a scan, since `call` has no index.
  const updateByCall = ctx.q(
    "UPDATE usage SET provider = ?, model = ?, input_tokens = ?, output_tokens = ?, cost_usd = ?, status = ? WHERE call = ?",
  );
  // The rowid of each committed row that has a call id and is not settled yet, so its settle updates
  // by primary key: no index on `call` to maintain on every insert (a page more per commit). Entries
  // are added only once their transaction committed (a rolled-back rowid is reused by the next insert)
  // and dropped when the call is settled, so the map holds about the calls in flight.
  const callRows = new Map<string, number>();
  // Budget-shaped sums kept current in memory (see UsageSums); dropped when another connection commits.
  const sums = new UsageSums();
  return {
    sums,
    write(ops) {
      const ids: CallIds = { added: [], settled: [] };
      // A call recorded and settled in the same batch (a fast answer: its reservation and its settle
      // share the tick) is inserted once, already settled: the same row as an insert then an update,
      // one statement fewer per model call.
      let folded: Map<number, UsageRecord> | undefined;
      let skip: Set<number> | undefined;
      const inserted = new Map<string, number>();
      ops.forEach((op, i) => {
        if ("record" in op) {
          if (op.record.call !== undefined) inserted.set(op.record.call, i);
          return;
        }
        const at = inserted.get(op.call);
        if (at === undefined) return;
        folded ??= new Map();
        skip ??= new Set();
        folded.set(at, { ...(folded.get(at) ?? (ops[at] as { record: UsageRecord }).record), ...op.update });
        skip.add(i);
        if (op.update.status !== "pending") ids.settled.push(op.call);
      });
      for (let k = 0; k < ops.length; k++) {
        const op = ops[k]!;
        if (skip?.has(k)) continue;
        if ("record" in op) {
          const r = folded?.get(k) ?? op.record;
          const res = insert.run(
            r.at,
            r.session,
            r.agent,
            r.provider,
            r.model,
            r.input_tokens,
            r.output_tokens,
            r.cost_usd,
            r.call ?? null,
            r.person ?? null,
            r.status ?? "final",
          );
          if (r.call !== undefined) ids.added.push([r.call, Number(res.lastInsertRowid)]);
        } else {
          const u = op.update;
          // Inserted in a committed batch (one inserted in this batch was folded into its insert above).
          const id = callRows.get(op.call);
          if (id !== undefined)
            updateById.run(u.provider, u.model, u.input_tokens, u.output_tokens, u.cost_usd, u.status, id, op.call);
          else updateByCall.run(u.provider, u.model, u.input_tokens, u.output_tokens, u.cost_usd, u.status, op.call);
          if (u.status !== "pending") ids.settled.push(op.call);
        }
      }
      return ids;
    },
    committed(ids) {
      for (const [call, id] of ids.added) callRows.set(call, id);
      for (const call of ids.settled) callRows.delete(call);
    },
    failed() {
      sums.invalidate();
    },
  };
}

/** Whether a queued usage write may change the sum of `q`'s session or person (unknown row: yes). */
function touches(op: UsageOp, q: UsageQuery): boolean {
  const r = "record" in op ? { session: op.record.session, person: op.record.person ?? null } : op.row;
  if (r === undefined) return true;
  return q.session !== undefined ? r.session === q.session : r.person === q.person;
}

export function sqliteUsageLedger(ctx: SqliteContext, commit: GroupCommit, writer: UsageWriter): UsageLedger {
  const { sums } = writer;
  // Changes when another connection commits (never for this one's own commits).
  const dataVersionSt = ctx.q<{ data_version: number }>("PRAGMA data_version");
  let dataVersion = dataVersionSt.get()!.data_version;
  /** Drops the kept sums when another connection (another worker) committed since they were read. */
  const checkVersion = () => {
    const v = dataVersionSt.get()!.data_version;
    if (v === dataVersion) return;
    sums.invalidate();
    dataVersion = v;
  };
  const readSum = (query: UsageQuery): UsageTotals => {
    const where: string[] = [];
    const args: Bind[] = [];
    if (query.session !== undefined) where.push("session = ?"), args.push(query.session);
    if (query.agent !== undefined) where.push("agent = ?"), args.push(query.agent);
    if (query.person !== undefined) where.push("person = ?"), args.push(query.person);
    if (query.since !== undefined) where.push("at >= ?"), args.push(query.since);
    if (query.until !== undefined) where.push("at < ?"), args.push(query.until);
    const sql = `SELECT count(*) AS calls, coalesce(sum(input_tokens), 0) AS input_tokens, coalesce(sum(output_tokens), 0) AS output_tokens,
      coalesce(sum(cost_usd), 0) AS cost_usd, count(*) - count(cost_usd) AS unpriced_calls
      FROM usage ${where.length ? "WHERE " + where.join(" AND ") : ""}`;
    return ctx.q<UsageTotals>(sql).get(...args)!;
  };
  // Check and insert under the database's write lock (BEGIN IMMEDIATE, waiting up to busy_timeout):
  // no other connection — another worker — can commit between the sums and the row.
  const reserve = ctx.db.transaction((record: UsageRecord, limits: readonly UsageLimit[]) => {
    checkVersion();
    const over = firstExceeded(record, limits, (q) => {
      const kept = sums.get(q);
      if (kept) return { ...kept };
      const totals = readSum(q);
      if (kept !== null) sums.load(q, totals);
      return totals;
    });
    return over ? { over, ids: null } : { over: null, ids: writer.write([{ record }]) };
  });
  return {
    recordUsage(record) {
      sums.recorded(record);
      return commit.usage({ record });
    },
    updateUsage: (call, update) => commit.usage({ call, update, row: sums.updated(call, update) }),
    reserveUsage: (record, limits) =>
      ctx.run("reserve usage", () => {
        // Queued writes of this process count: committed first, outside the reservation's transaction.
        commit.flush();
        const { over, ids } = reserve.immediate(record, limits);
        if (ids === null) return over;
        writer.committed(ids);
        sums.recorded(record);
        return null;
      }),
    sumUsage: (query) =>
      ctx.run("sum usage", (): UsageTotals => {
        // A kept sum already counts every queued write: no flush, no scan of the period's rows.
        const kept = sums.get(query);
        if (kept !== null) {
          checkVersion();
          const again = sums.get(query);
          if (again !== undefined && again !== null) return { ...again };
        }
        // A sum of one session or person that no queued write touches reads the same committed or
        // not: it is read without forcing the queue's commit (a new session's first reservation).
        if (
          !(
            kept === undefined &&
            (query.session !== undefined || query.person !== undefined) &&
            !commit.anyQueuedUsage((op) => touches(op, query))
          )
        )
          commit.flush();
        const totals = readSum(query);
        if (kept !== null) sums.load(query, totals); // counts every queued write that bears on it
        return totals;
      }),
  };
}
