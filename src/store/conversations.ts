/**
 * The conversations port: sessions and their messages (history). The one write that reaches another
 * port is `appendMessages(…, reply)`, which saves a turn's reply on its inbound message in the same
 * transaction (the outbox, SPEC §13); an implementation keeps both ports in one engine for that.
 *
 * Every method may reject with StoreError; a failed write changes nothing (all-or-nothing).
 */
import type { NewMessage, SessionAddress, StoredMessage } from "../core/index.ts";
import type { InboundReply } from "./inbox.ts";
import type { LeaseFence } from "./session-leases.ts";

export interface SessionInfo extends SessionAddress {
  created_at: number;
  updated_at: number;
  message_count: number;
}

export interface SessionQuery {
  agent?: string;
  channel?: string;
  limit: number;
  /** Opaque cursor from a previous page's `next_cursor`. */
  cursor?: string;
}

export interface SessionPage {
  sessions: SessionInfo[];
  next_cursor: string | null;
}

export interface HistoryQuery {
  limit: number;
  /** Only messages with seq < before (page backwards from the newest). */
  before?: number;
}

export interface ConversationStore {
  /**
   * Appends messages in order, creating the session when new; returns them with their seq. With
   * `reply`, the turn's reply is saved on its pending inbound message in the same transaction (the
   * outbox, SPEC §13): the history holds the turn exactly when the message holds its reply, so a crash
   * cannot leave a turn in the history that a retry would run again. An unknown or done inbound
   * message is left alone (the messages are still appended). With `fence` (a turn run under the
   * session's lease, ./session-leases.ts), the append is refused — StoreError, nothing written — when
   * the fence's token is no longer the session's lease (it expired and another worker took it).
   * Every append bumps the session's version.
   */
  appendMessages(
    session: SessionAddress,
    messages: NewMessage[],
    reply?: InboundReply,
    fence?: LeaseFence,
  ): Promise<StoredMessage[]>;
  /**
   * The session's version: it changes with every append and reset, and never comes back to a value
   * it had (a reset and re-created session starts above); 0 for an unknown session. A history cache
   * compares it to know whether another process wrote the session.
   */
  sessionVersion(key: string): Promise<number>;
  getSession(key: string): Promise<SessionInfo | null>;
  listSessions(query: SessionQuery): Promise<SessionPage>;
  /** A page of history, oldest first within the page. */
  history(key: string, query: HistoryQuery): Promise<StoredMessage[]>;
  /** Forgets a session and its messages; returns how many messages were removed, or null if unknown. */
  resetSession(key: string): Promise<number | null>;
  countSessions(): Promise<number>;
}
