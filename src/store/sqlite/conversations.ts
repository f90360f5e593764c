/**
 * Conversations on SQLite: sessions and their messages. Appends go through the group commit
 * (./commit.ts); a turn's reply is saved on its inbound row in the same transaction (the outbox).
 */
import type { StoredMessage } from "../../core/index.ts";
import type { ConversationStore, SessionInfo } from "../conversations.ts";
import { decodeCursor, encodeCursor } from "../cursor.ts";
import type { AppendRows, GroupCommit } from "./commit.ts";
import { StoreError } from "../errors.ts";
import type { Bind, SqliteContext } from "./context.ts";

interface MessageRow {
  session: string;
  seq: number;
  role: string;
  content: string;
  created_at: number;
}

/** The rows of one append, written inside the caller's transaction. */
export function appendRows(ctx: SqliteContext): AppendRows {
  // Creates the session or counts the new messages in, in one statement.
  const upsertSession = ctx.q<{ message_count: number }>(
    `INSERT INTO sessions (key, agent, channel, account, peer, thread, created_at, updated_at, message_count, version)
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
     ON CONFLICT(key) DO UPDATE SET message_count = message_count + excluded.message_count, updated_at = excluded.updated_at, version = version + 1
     RETURNING message_count`,
  );
  // A fenced append (a turn under the session's lease) checks its token in the same transaction.
  const leaseToken = ctx.q<{ token: number }>("SELECT token FROM session_leases WHERE session = ?");
  const insertMessage = ctx.q("INSERT INTO messages (session, seq, role, content, created_at) VALUES (?, ?, ?, ?, ?)");
  // The inbox's own statement (./inbox.ts): in the same transaction as the messages, so the history
  // and the outbox never disagree.
  const saveReply = ctx.q("UPDATE inbound SET reply = ? WHERE id = ? AND done = 0");
  return (addr, msgs, t, reply, fence) => {
    if (fence && leaseToken.get(addr.key)?.token !== fence.token) {
      throw new StoreError(
        `the turn's lease on session ${addr.key} was taken over by another worker (it ran past its lease); its messages were not stored`,
      );
    }
    if (reply) saveReply.run(reply.text, reply.inbound);
    // A new session's version starts from the clock (in µs), above any version an earlier session of
    // the same key had (a reset deletes the row), and grows by one per append.
    const count = upsertSession.get(
      addr.key,
      addr.agent,
      addr.channel,
      addr.account,
      addr.peer,
      addr.thread,
      t,
      t,
      msgs.length,
      t * 1000,
    )!.message_count;
    const first = count - msgs.length + 1;
    return msgs.map((m, i) => {
      const seq = first + i;
      insertMessage.run(addr.key, seq, m.role, JSON.stringify({ parts: m.parts, meta: m.meta }), t);
      return { ...m, session: addr.key, seq, created_at: t };
    });
  };
}

export function sqliteConversations(ctx: SqliteContext, commit: GroupCommit): ConversationStore {
  const getSession = ctx.q<SessionInfo>(
    "SELECT key, agent, channel, account, peer, thread, created_at, updated_at, message_count FROM sessions WHERE key = ?",
  );
  const version = ctx.q<{ version: number }>("SELECT version FROM sessions WHERE key = ?");
  const history = ctx.q<MessageRow>(
    "SELECT * FROM (SELECT * FROM messages WHERE session = ? AND seq < ? ORDER BY seq DESC LIMIT ?) ORDER BY seq ASC",
  );
  const deleteMessages = ctx.q("DELETE FROM messages WHERE session = ?");
  const deleteSession = ctx.q<{ message_count: number }>("DELETE FROM sessions WHERE key = ? RETURNING message_count");
  const countSessions = ctx.q<{ n: number }>("SELECT count(*) AS n FROM sessions");
  const reset = ctx.db.transaction((key: string): number | null => {
    deleteMessages.run(key);
    const row = deleteSession.get(key);
    return row ? row.message_count : null;
  });
  const toMessage = (r: MessageRow): StoredMessage => {
    const c = JSON.parse(r.content) as { parts: StoredMessage["parts"]; meta?: Record<string, unknown> };
    const m: StoredMessage = {
      session: r.session,
      seq: r.seq,
      role: r.role as StoredMessage["role"],
      parts: c.parts,
      created_at: r.created_at,
    };
    if (c.meta !== undefined) m.meta = c.meta;
    return m;
  };
  return {
    appendMessages: (addr, msgs, reply, fence) => commit.append(addr, msgs, reply, fence),
    sessionVersion: (key) => ctx.run("read a session version", () => version.get(key)?.version ?? 0),
    getSession: (key) => ctx.run("read a session", () => getSession.get(key) ?? null),
    listSessions: (query) =>
      ctx.run("list sessions", () => {
        const where: string[] = [];
        const args: Bind[] = [];
        if (query.agent !== undefined) where.push("agent = ?"), args.push(query.agent);
        if (query.channel !== undefined) where.push("channel = ?"), args.push(query.channel);
        if (query.cursor !== undefined) {
          const c = decodeCursor(query.cursor);
          where.push("(updated_at < ? OR (updated_at = ? AND key > ?))");
          args.push(c.updated_at, c.updated_at, c.key);
        }
        const sql = `SELECT key, agent, channel, account, peer, thread, created_at, updated_at, message_count FROM sessions ${where.length ? "WHERE " + where.join(" AND ") : ""} ORDER BY updated_at DESC, key ASC LIMIT ?`;
        const rows = ctx.q<SessionInfo>(sql).all(...args, query.limit + 1);
        const page = rows.slice(0, query.limit);
        const last = page.at(-1);
        return { sessions: page, next_cursor: rows.length > query.limit && last ? encodeCursor(last) : null };
      }),
    history: (key, query) =>
      ctx.run("read history", () =>
        history.all(key, query.before ?? Number.MAX_SAFE_INTEGER, query.limit).map(toMessage),
      ),
    resetSession: (key) => ctx.run("reset the session", () => reset(key)),
    countSessions: () => ctx.run("count sessions", () => countSessions.get()!.n),
  };
}
