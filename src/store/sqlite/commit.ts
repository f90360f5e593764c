/**
 * Group commit on SQLite: appends (conversations) and usage writes (the ledger) that arrive in the
 * same tick share one transaction (a commit per turn was most of a turn's CPU). Call order is kept,
 * so seq order is arrival order. Each caller's promise settles only when its rows are committed. If
 * the shared transaction fails, the usage batch and then each append are retried alone, so one bad
 * write (say, a full disk for a big message) fails only itself.
 */
import { isExoError } from "../../lib/errors.ts";
import type { NewMessage, SessionAddress, StoredMessage } from "../../core/index.ts";
import type { InboundReply } from "../inbox.ts";
import type { LeaseFence } from "../session-leases.ts";
import { explain, type SqliteContext } from "./context.ts";
import type { UsageOp, UsageWriter } from "./usage.ts";

/** Writes one append's rows inside an open transaction (./conversations.ts). */
export type AppendRows = (
  addr: SessionAddress,
  msgs: NewMessage[],
  t: number,
  reply?: InboundReply,
  fence?: LeaseFence,
) => StoredMessage[];

export interface GroupCommit {
  append(
    addr: SessionAddress,
    msgs: NewMessage[],
    reply: InboundReply | undefined,
    fence?: LeaseFence,
  ): Promise<StoredMessage[]>;
  usage(op: UsageOp): Promise<void>;
  /** Commits everything queued now (before a read that must see it, and at close). */
  flush(): void;
  /** Whether any usage write not committed yet satisfies `test`. */
  anyQueuedUsage(test: (op: UsageOp) => boolean): boolean;
}

export function groupCommit(ctx: SqliteContext, appendRows: AppendRows, usage: UsageWriter): GroupCommit {
  type PendingAppend = {
    addr: SessionAddress;
    msgs: NewMessage[];
    reply: InboundReply | undefined;
    fence: LeaseFence | undefined;
    resolve: (m: StoredMessage[]) => void;
    reject: (e: unknown) => void;
  };
  type PendingUsage = { op: UsageOp; resolve: () => void; reject: (e: unknown) => void };
  let appendQueue: PendingAppend[] = [];
  let usageQueue: PendingUsage[] = [];
  let flushScheduled = false;
  const append = ctx.db.transaction(appendRows);
  const usageBatch = ctx.db.transaction((batch: PendingUsage[]) => usage.write(batch.map((p) => p.op)));
  // Rows of the whole batch in one transaction (no savepoint per append).
  const writeAll = ctx.db.transaction((appends: PendingAppend[], batch: PendingUsage[], t: number) => {
    const ids = usage.write(batch.map((p) => p.op));
    return { ids, results: appends.map((p) => appendRows(p.addr, p.msgs, t, p.reply, p.fence)) };
  });
  const flush = () => {
    flushScheduled = false;
    if (appendQueue.length === 0 && usageQueue.length === 0) return;
    const appends = appendQueue;
    const batch = usageQueue;
    appendQueue = [];
    usageQueue = [];
    const t = ctx.now();
    try {
      const { ids, results } = writeAll(appends, batch, t);
      usage.committed(ids);
      for (const p of batch) p.resolve();
      appends.forEach((p, i) => p.resolve(results[i]!));
      return;
    } catch {
      // fall through: isolate the failure
    }
    try {
      if (batch.length > 0) usage.committed(usageBatch(batch));
      for (const p of batch) p.resolve();
    } catch (e) {
      usage.failed();
      const err = explain(ctx.path, e, "record usage");
      for (const p of batch) p.reject(err);
    }
    for (const p of appends) {
      try {
        p.resolve(append(p.addr, p.msgs, t, p.reply, p.fence));
      } catch (e) {
        p.reject(isExoError(e) ? e : explain(ctx.path, e, "append messages"));
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
  return {
    append: (addr, msgs, reply, fence) =>
      new Promise<StoredMessage[]>((resolve, reject) => {
        appendQueue.push({ addr, msgs, reply, fence, resolve, reject });
        schedule(appendQueue.length);
      }),
    usage: (op) =>
      new Promise<void>((resolve, reject) => {
        usageQueue.push({ op, resolve, reject });
        schedule(usageQueue.length);
      }),
    flush,
    anyQueuedUsage: (test) => usageQueue.some((p) => test(p.op)),
  };
}
