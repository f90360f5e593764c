/** The inbox/outbox on SQLite: the `inbound` table (dedupe, saved replies, backoff, dead letters). */
import type { InboxStore, InboundRecord, PendingInbound } from "../inbox.ts";
import type { SqliteContext } from "./context.ts";

const COLUMNS = "id, channel, payload, received_at, attempts, last_error, reply, next_at, dead_at";
/** Pending, tried before (a failed attempt or a stored reply): the retry loop's, not the intake's. */
const RETRIED = "done = 0 AND dead_at IS NULL AND (attempts > 0 OR reply IS NOT NULL)";

/**
 * A completed message keeps its id (its payload emptied) so a platform's late re-delivery is still
 * recognised; after this long it is forgotten. Without it every message ever received stayed a row
 * (found by tests/faults/peers.test.ts: a flood of messages grew the table without bound). Platforms
 * re-deliver within hours (Meta: up to 36 h), so a week is ample.
 */
export const DEDUPE_WINDOW_MS = 7 * 24 * 3600_000;
/** New messages between two prunes of old completed rows (an indexed range delete). */
const PRUNE_EVERY = 256;

export function sqliteInbox(ctx: SqliteContext): InboxStore {
  const insert = ctx.q(
    "INSERT INTO inbound (id, channel, payload, received_at) VALUES (?, ?, ?, ?) ON CONFLICT(id) DO NOTHING",
  );
  const prune = ctx.q("DELETE FROM inbound WHERE done = 1 AND received_at < ?");
  let sincePrune = 0;
  const accept = {
    run(id: string, channel: string, payload: string, receivedAt: number) {
      const r = insert.run(id, channel, payload, receivedAt);
      if (r.changes === 1 && ++sincePrune >= PRUNE_EVERY) {
        sincePrune = 0;
        try {
          prune.run(receivedAt - DEDUPE_WINDOW_MS);
        } catch {
          // Housekeeping only: the message is stored; a prune that cannot run (a full disk) waits for the next one.
        }
      }
      return r;
    },
  };
  const pending = ctx.q<PendingInbound>(
    `SELECT ${COLUMNS} FROM inbound WHERE done = 0 ORDER BY received_at, rowid LIMIT ?`,
  );
  const get = ctx.q<PendingInbound>(`SELECT ${COLUMNS} FROM inbound WHERE id = ? AND done = 0`);
  const due = ctx.q<PendingInbound>(
    `SELECT ${COLUMNS} FROM inbound WHERE ${RETRIED} AND next_at <= ? ORDER BY next_at, received_at, rowid LIMIT ?`,
  );
  const nextAt = ctx.q<{ at: number | null }>(
    `SELECT min(next_at) AS at FROM inbound WHERE ${RETRIED} AND next_at > ?`,
  );
  const count = ctx.q<{ pending: number; dead: number }>(
    "SELECT count(*) - count(dead_at) AS pending, count(dead_at) AS dead FROM inbound WHERE done = 0",
  );
  const saveReply = ctx.q("UPDATE inbound SET reply = ? WHERE id = ? AND done = 0");
  const complete = ctx.q("UPDATE inbound SET done = 1, payload = '', reply = NULL WHERE id = ? AND done = 0");
  const fail = ctx.q(
    `UPDATE inbound SET attempts = attempts + 1, last_error = ?1,
       next_at = coalesce(?2, next_at), dead_at = CASE WHEN ?2 IS NULL THEN ?3 ELSE NULL END
     WHERE id = ?4 AND done = 0`,
  );
  const requeue = ctx.q("UPDATE inbound SET attempts = 0, next_at = ?, dead_at = NULL WHERE id = ? AND done = 0");
  // One UPDATE … WHERE under the write lock: of several workers at most one changes the row.
  const claim = ctx.q(
    "UPDATE inbound SET claimed_by = ?1, claimed_until = ?2 WHERE id = ?3 AND done = 0 AND (claimed_until <= ?4 OR claimed_by = ?1)",
  );
  const release = ctx.q("UPDATE inbound SET claimed_until = 0 WHERE id = ? AND claimed_by = ?");
  return {
    acceptInbound: (r: InboundRecord) =>
      ctx.run("store an inbound message", () => accept.run(r.id, r.channel, r.payload, r.received_at).changes === 1),
    pendingInbound: (limit) => ctx.run("read pending messages", () => pending.all(limit)),
    getInbound: (id) => ctx.run("read a pending message", () => get.get(id) ?? null),
    dueInbound: (now, limit) => ctx.run("read due messages", () => due.all(now, limit)),
    nextInboundAt: (after) => ctx.run("read the next delivery time", () => nextAt.get(after)?.at ?? null),
    countInbound: () => ctx.run("count pending messages", () => count.get() ?? { pending: 0, dead: 0 }),
    saveInboundReply: (id, reply) =>
      ctx.run("save an inbound reply", () => {
        saveReply.run(reply, id);
      }),
    completeInbound: (id) => ctx.run("complete an inbound message", () => complete.run(id).changes === 1),
    failInbound: (id, f) =>
      ctx.run("record an inbound failure", () => {
        fail.run(f.error, f.retry_at, f.at, id);
      }),
    requeueInbound: (id, at) => ctx.run("re-queue an inbound message", () => requeue.run(at, id).changes === 1),
    claimInbound: (id, holder, ttlMs) =>
      ctx.run("claim an inbound message", () => {
        const t = ctx.now();
        return claim.run(holder, t + ttlMs, id, t).changes === 1;
      }),
    releaseInbound: (id, holder) =>
      ctx.run("release an inbound message", () => {
        release.run(id, holder);
      }),
  };
}
