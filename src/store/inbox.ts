/**
 * The inbox/outbox port: channel messages accepted but not finished — deduplicated on arrival, their
 * reply saved before it is sent, failed sends backed off and dead-lettered (SPEC §13).
 *
 * Every method may reject with StoreError; a failed write changes nothing (all-or-nothing).
 */

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

export interface InboxStore {
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
  /**
   * Takes a message not done for one delivery by `holder` (a gateway worker) until `ttlMs` from now,
   * when nobody holds it or the holder's claim expired — atomically across every process on the store,
   * so a pending message read by several workers is delivered by one. false: another holds it, or it
   * is unknown or done.
   */
  claimInbound(id: string, holder: string, ttlMs: number): Promise<boolean>;
  /** Gives `holder`'s claim back once its delivery ended (a claim of another holder is left alone). */
  releaseInbound(id: string, holder: string): Promise<void>;
}
