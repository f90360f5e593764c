/**
 * The Store: everything exoclaw persists — sessions and their messages, usage records, plugin
 * key/value state and accepted-but-unfinished inbound messages. Implementations (memory, sqlite,
 * and later NATS KV) pass one contract suite (tests/store/contract.ts).
 *
 * Every method may reject with StoreError; a failed write changes nothing (all-or-nothing).
 */

import type { ApprovalStore } from "./approvals.ts";

/** Where a session lives; the parts of its key. */
export interface SessionAddress {
  key: string;
  agent: string;
  channel: string;
  account: string;
  peer: string | null;
  thread: string | null;
}

export interface SessionInfo extends SessionAddress {
  created_at: number;
  updated_at: number;
  message_count: number;
}

/** Provider-neutral message content, so a session can switch provider. */
export type MessagePart =
  | { type: "text"; text: string }
  /** `signature`: an opaque token some providers require echoed back (Gemini's thoughtSignature). */
  | { type: "tool_use"; id: string; name: string; input: unknown; signature?: string }
  | { type: "tool_result"; tool_use_id: string; content: string; is_error?: boolean };

export type Role = "user" | "assistant" | "tool";

export interface NewMessage {
  role: Role;
  parts: MessagePart[];
  /** Free-form facts (provider, model, stop_reason …), stored as given. */
  meta?: Record<string, unknown>;
}

export interface StoredMessage extends NewMessage {
  session: string;
  /** 1-based, gapless, in append order within the session. */
  seq: number;
  created_at: number;
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

export interface UsageRecord {
  at: number;
  /**
   * The model call's own id, so its row can be updated once the call ends (write-ahead: a row is
   * recorded with the estimate before the call, then settled to the real counts). Absent = a final
   * record that is never updated.
   */
  call?: string;
  /** "pending": written before the call, holds the estimate; "final": the provider's counts;
   * "estimated": the call ended without the provider's counts (cancelled, dropped), counted locally. */
  status?: UsageStatus;
  session: string | null;
  /** The person on a channel the call was made for (per-person budgets), null/absent for none. */
  person?: string | null;
  agent: string;
  provider: string;
  model: string;
  input_tokens: number;
  output_tokens: number;
  /** null when the model has no known price. */
  cost_usd: number | null;
}

export type UsageStatus = "pending" | "final" | "estimated";

/** What settling a pending call changes: the model that answered, its counts, their status. */
export interface UsageUpdate {
  provider: string;
  model: string;
  input_tokens: number;
  output_tokens: number;
  cost_usd: number | null;
  status: UsageStatus;
}

export interface UsageQuery {
  session?: string;
  person?: string;
  agent?: string;
  /** Inclusive lower bound (ms since epoch). */
  since?: number;
  /** Exclusive upper bound. */
  until?: number;
}

export interface UsageTotals {
  calls: number;
  input_tokens: number;
  output_tokens: number;
  cost_usd: number;
  /** Calls whose cost was unknown (not counted in cost_usd). */
  unpriced_calls: number;
}

export interface InboundRecord {
  /** Dedupe key: `<channel>:<platform message id>`. */
  id: string;
  channel: string;
  payload: string;
  received_at: number;
}

/**
 * An accepted message not completed yet: pending (its delivery is retried from `next_at` on) or
 * dead-lettered (`dead_at` set: a permanent failure, or the last attempt failed; only the operator
 * retries or drops it).
 */
export interface PendingInbound extends InboundRecord {
  /** Failed delivery attempts so far (reset when the operator re-queues it). */
  attempts: number;
  last_error: string | null;
  /** The reply the turn produced, once saved: a retry sends it instead of running the turn again. */
  reply: string | null;
  /** When its next delivery attempt is due (ms since epoch); 0 = at once. */
  next_at: number;
  /** When it was dead-lettered, or null while it is still retried. */
  dead_at: number | null;
}

/** A finished turn's reply to an accepted inbound message, saved with the turn's history. */
export interface InboundReply {
  /** The inbound record's id (`<channel>:<platform message id>`). */
  inbound: string;
  text: string;
}

/** The outcome of a failed delivery attempt: retry at `retry_at`, or (null) dead-letter it. */
export interface InboundFailure {
  error: string;
  /** When the next attempt is due; null = no more attempts (dead-lettered at `at`). */
  retry_at: number | null;
  /** When this attempt failed. */
  at: number;
}

/** A fact the agent learned about a person (semantic memory); never shared across people. */
export interface Fact {
  id: number;
  agent: string;
  person: string;
  text: string;
  created_at: number;
}

export interface FactQuery {
  agent: string;
  /** Only this person's facts; absent = every person's (operator tools only). */
  person?: string;
  /** Free text; facts sharing its words rank first (BM25 in SQLite). */
  query: string;
  limit: number;
}

/**
 * A person's standing on a channel (SPEC §13): asked for access with a pairing code, or approved by
 * the operator. Absent = a stranger. `person` is `<channel>:<account>:<peer>`, as memory names people.
 */
export interface Pairing {
  person: string;
  channel: string;
  status: "pending" | "approved";
  /** The pairing code while pending (unique among pending ones); null once approved. */
  code: string | null;
  created_at: number;
  /** When a pending code stops being accepted; null once approved. */
  expires_at: number | null;
  /** When the code was last sent to the person (pending only). */
  notified_at: number | null;
  approved_at: number | null;
}

export interface PairingQuery {
  channel?: string;
  status?: Pairing["status"];
}

export interface Store {
  readonly kind: "memory" | "sqlite" | "nats";
  /** Tool calls that waited for the operator, and remembered decisions (./approvals.ts). */
  readonly approvals: ApprovalStore;
  /** Human-readable location (file path, "memory"). */
  readonly location: string;

  /**
   * Appends messages in order, creating the session when new; returns them with their seq. With
   * `reply`, the turn's reply is saved on its pending inbound message in the same transaction (the
   * outbox, SPEC §13): the history holds the turn exactly when the message holds its reply, so a crash
   * cannot leave a turn in the history that a retry would run again. An unknown or done inbound
   * message is left alone (the messages are still appended).
   */
  appendMessages(session: SessionAddress, messages: NewMessage[], reply?: InboundReply): Promise<StoredMessage[]>;
  getSession(key: string): Promise<SessionInfo | null>;
  listSessions(query: SessionQuery): Promise<SessionPage>;
  /** A page of history, oldest first within the page. */
  history(key: string, query: HistoryQuery): Promise<StoredMessage[]>;
  /** Forgets a session and its messages; returns how many messages were removed, or null if unknown. */
  resetSession(key: string): Promise<number | null>;
  countSessions(): Promise<number>;

  /**
   * Records a usage row. The row counts in every sumUsage called after this call, even before the
   * returned promise settles (budgets rely on it); if the write fails, the promise rejects and the
   * row counts nowhere.
   */
  recordUsage(record: UsageRecord): Promise<void>;
  /** Changes the row recorded with `call` (same visibility rule as recordUsage); unknown id: no-op. */
  updateUsage(call: string, update: UsageUpdate): Promise<void>;
  sumUsage(query: UsageQuery): Promise<UsageTotals>;

  kvGet(plugin: string, key: string): Promise<string | null>;
  /** null deletes. */
  kvSet(plugin: string, key: string, value: string | null): Promise<void>;
  /** How much state a plugin keeps: entries, and bytes of keys plus values (UTF-8). */
  kvStats(plugin: string): Promise<{ entries: number; bytes: number }>;

  /** Stores an accepted inbound message; false when its id was seen before (a platform retry). */
  acceptInbound(record: InboundRecord): Promise<boolean>;
  /** Accepted messages not yet completed (pending and dead-lettered), oldest first. */
  pendingInbound(limit: number): Promise<PendingInbound[]>;
  /** One message not completed (pending or dead-lettered), or null. */
  getInbound(id: string): Promise<PendingInbound | null>;
  /**
   * Pending (not dead-lettered) messages tried before (a failed attempt or a stored reply) whose next
   * attempt is due at `now`, earliest due first. Messages never tried are the intake's (first delivery).
   */
  dueInbound(now: number, limit: number): Promise<PendingInbound[]>;
  /** The earliest `next_at` after `after` among the messages dueInbound would return; null when none. */
  nextInboundAt(after: number): Promise<number | null>;
  /** How many messages are pending (still retried) and dead-lettered. */
  countInbound(): Promise<{ pending: number; dead: number }>;
  /** Saves the finished turn's reply of a pending message (before it is sent). */
  saveInboundReply(id: string, reply: string): Promise<void>;
  /** Marks a message done and drops its payload and reply; false when it was unknown or done already. */
  completeInbound(id: string): Promise<boolean>;
  /** Counts a failed attempt of a message not done: schedules the next one, or dead-letters it. */
  failInbound(id: string, failure: InboundFailure): Promise<void>;
  /**
   * Makes a message not done (pending or dead-lettered) pending again, due at `at`, with its attempts
   * reset; its stored reply is kept. false when it is unknown or done.
   */
  requeueInbound(id: string, at: number): Promise<boolean>;

  /** A person's pairing record, or null for a stranger. */
  getPairing(person: string): Promise<Pairing | null>;
  /** The pending record holding `code` (exact match), or null. */
  pairingByCode(code: string): Promise<Pairing | null>;
  /** Creates or replaces the record of `pairing.person`. */
  savePairing(pairing: Pairing): Promise<void>;
  /** Records, oldest first. */
  listPairings(query: PairingQuery): Promise<Pairing[]>;
  /** Forgets a person's record; false when there was none. */
  deletePairing(person: string): Promise<boolean>;

  /** Stores a fact; the same text for the same agent and person is stored once. */
  addFact(agent: string, person: string, text: string): Promise<Fact>;
  /** Facts relevant to the query, most relevant first; none when no word matches. */
  searchFacts(query: FactQuery): Promise<(Fact & { score: number })[]>;

  close(): Promise<void>;
}
