/**
 * The operator's view of channel messages not answered yet (SPEC §13): `exoclaw inbox list | retry
 * ID | drop ID` and the `inbox.*` methods. Pending ones are still retried by the gateway; dead-lettered
 * ones (a permanent refusal, or the last attempt failed) wait here. Everything lives in the store, so
 * the CLI can work on it without a gateway; with one, a retry is delivered at once.
 */
import { ExoError } from "../lib/errors.ts";
import type { InboxStore, PendingInbound } from "../store/index.ts";
import type { DeliveryOutcome } from "./pipeline.ts";

/** A message as the operator sees it. */
export interface InboxEntry {
  id: string;
  channel: string;
  account: string;
  peer: string;
  /** The sender's words, cut to 80 characters. */
  text: string;
  state: "pending" | "dead";
  attempts: number;
  last_error: string | null;
  /** When the next attempt is due (pending only). */
  next_at?: number;
  /** When it was dead-lettered. */
  dead_at?: number;
  received_at: number;
  /** The turn has answered: a retry only sends this reply again. */
  reply_stored: boolean;
}

/** What `inbox.retry` did: the delivery's outcome, or `queued` (no gateway ran it: the next start will). */
export type RetryResult = { id: string } & (DeliveryOutcome | { state: "queued" });

/** The most messages listed at once. */
const LIST_LIMIT = 1000;

function entry(r: PendingInbound): InboxEntry {
  let m: { account?: unknown; peer?: unknown; text?: unknown } = {};
  try {
    m = JSON.parse(r.payload) as typeof m;
  } catch {
    // An unreadable payload is still listed, so it can be dropped.
  }
  const text = typeof m.text === "string" ? m.text : "";
  return {
    id: r.id,
    channel: r.channel,
    account: typeof m.account === "string" ? m.account : "",
    peer: typeof m.peer === "string" ? m.peer : "",
    text: text.length > 80 ? `${text.slice(0, 79)}…` : text,
    state: r.dead_at === null ? "pending" : "dead",
    attempts: r.attempts,
    last_error: r.last_error,
    ...(r.dead_at === null ? { next_at: r.next_at } : { dead_at: r.dead_at }),
    received_at: r.received_at,
    reply_stored: r.reply !== null,
  };
}

export interface InboxOptions {
  /**
   * Tries a re-queued message at once (the gateway's pipeline); without it (the CLI with no gateway
   * running) a re-queued message waits for the next start.
   */
  deliverNow?: (rec: PendingInbound) => Promise<DeliveryOutcome>;
  /** Told after a retry or a drop changed what is waiting (the gateway's counts). */
  onChange?: () => void;
  now?: () => number;
}

export class Inbox {
  constructor(
    private readonly store: InboxStore,
    private readonly opts: InboxOptions = {},
  ) {}

  /** Messages not answered yet, oldest first; optionally of one channel or in one state. */
  async list(filter: { channel?: string; state?: InboxEntry["state"] } = {}): Promise<InboxEntry[]> {
    return (await this.store.pendingInbound(LIST_LIMIT))
      .map(entry)
      .filter(
        (e) =>
          (filter.channel === undefined || e.channel === filter.channel) &&
          (filter.state === undefined || e.state === filter.state),
      );
  }

  /** Re-queues a pending or dead-lettered message with fresh attempts and delivers it now. Throws not_found. */
  async retry(id: string): Promise<RetryResult> {
    if (!(await this.store.requeueInbound(id, (this.opts.now ?? Date.now)()))) throw notFound(id);
    const rec = await this.store.getInbound(id);
    this.opts.onChange?.();
    if (!this.opts.deliverNow || !rec) return { id, state: "queued" };
    return { id, ...(await this.opts.deliverNow(rec)) };
  }

  /** Gives a message up: it is marked done and never sent. Throws not_found. */
  async drop(id: string): Promise<InboxEntry> {
    const rec = await this.store.getInbound(id);
    if (!rec || !(await this.store.completeInbound(id))) throw notFound(id);
    this.opts.onChange?.();
    return entry(rec);
  }
}

const notFound = (id: string) =>
  new ExoError("not_found", `no message ${id} waiting in the inbox (see \`exoclaw inbox list\`)`);
