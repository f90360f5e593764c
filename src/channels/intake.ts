/**
 * How accepted channel messages reach the turn queue without holding unbounded work in memory. A
 * webhook's messages are already stored (and acknowledged) when they get here; the store is their
 * queue. At most `capacity()` deliveries are held in memory, at most one per session (a session's
 * turns run one at a time anyway). A message beyond that stays in the store, and from then on every
 * new one does too (so none overtakes an earlier message of its session) until a drain has taken all
 * of them: a drain scans the pending records oldest first and takes the first waiting message of each
 * session not held now — round-robin across sessions, in order within each.
 *
 * A drain runs when a held delivery ends, when a message is left in the store while there is room,
 * and when the retry loop kicks it (at start: messages accepted before a restart). Records that were
 * tried before (a failed turn or send) are the retry loop's, not the drain's.
 */
import type { PendingInbound } from "../store/index.ts";

/** A message the drain may start: accepted, never tried, no reply yet. The retry loop leaves these alone. */
export function awaitsFirstDelivery(rec: Pick<PendingInbound, "attempts" | "reply">): boolean {
  return rec.attempts === 0 && rec.reply === null;
}

export interface IntakeDeps<Spec, Message> {
  /** Held deliveries at most (all channels together). */
  capacity: () => number;
  /** The session a message's turn belongs to (routing is cheap and pure). */
  sessionOf: (channel: string, m: Message) => string;
  /** The channel of a stored record, or undefined when it is no longer configured (left in the store). */
  channel: (name: string) => Spec | undefined;
  parse: (payload: string) => Message | null;
  /** Starts one delivery; "retry" for messages accepted before this process started. Never rejects. */
  deliver: (channel: Spec, m: Message, attempt: "new" | "retry") => Promise<unknown>;
  /** Whether a delivery of this record id runs now (another path took it). */
  isDelivering: (id: string) => boolean;
  pending: (limit: number) => Promise<PendingInbound[]>;
  /** Wall clock of `received_at`. */
  now?: () => number;
}

/** First page a drain reads; it grows (×4, to MAX_SCAN) while a full page leaves room unused. */
const FIRST_SCAN = 256;
const MAX_SCAN = 16_384;

export class ChannelIntake<Spec extends { name: string }, Message> {
  /** Sessions with a delivery in memory. */
  private readonly held = new Set<string>();
  /** The store may hold messages not taken yet. True at start: those accepted before a restart. */
  private backlog = true;
  /** Messages left in the store so far (a drain that saw none left during its read may end the backlog). */
  private deferrals = 0;
  private draining = false;
  private again = false;
  private closed = false;
  /** Ids of held deliveries that ended while a drain read the store: its page may still show them pending. */
  private endedDuringRead: Set<string> | null = null;
  /** Parsed payloads of the last page, so a long backlog is not parsed again at every drain. */
  private parsed = new Map<string, { m: Message; session: string } | null>();
  private readonly startedAt: number;

  constructor(private readonly deps: IntakeDeps<Spec, Message>) {
    this.startedAt = (deps.now ?? Date.now)();
  }

  /** Deliveries held in memory now. */
  get holding(): number {
    return this.held.size;
  }

  /** A message just accepted (stored) by a webhook: starts its delivery now, or leaves it to a drain. */
  offer(channel: Spec, id: string, m: Message): void {
    if (this.closed) return;
    const session = this.deps.sessionOf(channel.name, m);
    if (this.backlog || this.held.has(session) || this.held.size >= this.deps.capacity()) {
      this.backlog = true;
      this.deferrals++;
      if (this.held.size < this.deps.capacity()) this.drain();
      return;
    }
    this.hold(channel, id, m, session, "new");
  }

  /** Takes waiting messages from the store into free places (coalesced: one drain at a time). */
  drain(): void {
    if (this.closed) return;
    if (this.draining) {
      this.again = true;
      return;
    }
    this.draining = true;
    void this.refill()
      .catch(() => {
        // A store read failed: the messages stay pending; the next ended delivery or retry pass drains again.
      })
      .finally(() => {
        this.draining = false;
        this.endedDuringRead = null;
      });
  }

  /** Shutdown: nothing new starts; what is not held stays in the store for the next start. */
  close(): void {
    this.closed = true;
  }

  private hold(channel: Spec, id: string, m: Message, session: string, attempt: "new" | "retry"): void {
    this.held.add(session);
    void this.deps.deliver(channel, m, attempt).finally(() => {
      this.held.delete(session);
      this.endedDuringRead?.add(id);
      if (this.backlog) this.drain();
    });
  }

  private async refill(): Promise<void> {
    do {
      this.again = false;
      let limit = FIRST_SCAN;
      for (;;) {
        if (this.closed || this.held.size >= this.deps.capacity()) break;
        const mark = this.deferrals;
        this.endedDuringRead = new Set();
        const page = await this.deps.pending(limit);
        const ended = this.endedDuringRead;
        this.endedDuringRead = null;
        const waiting = this.take(page, ended);
        if (waiting === 0 && page.length < limit && this.deferrals === mark) {
          this.backlog = false;
          break;
        }
        // More pages only while a full page left places free (one chatty session or old failures ahead).
        if (page.length < limit || limit >= MAX_SCAN || this.held.size >= this.deps.capacity()) break;
        limit *= 4;
      }
    } while (this.again);
  }

  /** Holds the first waiting message of each session not held; returns how many stay waiting. */
  private take(page: PendingInbound[], ended: Set<string>): number {
    const seen = new Map<string, { m: Message; session: string } | null>();
    let waiting = 0;
    for (const rec of page) {
      if (!awaitsFirstDelivery(rec) || ended.has(rec.id) || this.deps.isDelivering(rec.id)) continue;
      const channel = this.deps.channel(rec.channel);
      if (!channel) continue;
      let entry = this.parsed.get(rec.id);
      if (entry === undefined) {
        const m = this.deps.parse(rec.payload);
        entry = m === null ? null : { m, session: this.deps.sessionOf(rec.channel, m) };
      }
      seen.set(rec.id, entry);
      if (entry === null) continue;
      if (this.held.has(entry.session) || this.held.size >= this.deps.capacity()) {
        waiting++;
        continue;
      }
      this.hold(channel, rec.id, entry.m, entry.session, rec.received_at < this.startedAt ? "retry" : "new");
    }
    this.parsed = seen;
    return waiting;
  }
}
