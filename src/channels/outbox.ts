/**
 * The outbox's retry side (SPEC §13): when a failed channel message is tried again, and the loop
 * that does it. Each message has its own next attempt time in the store; the loop sleeps until the
 * earliest one (no fixed scan), delivers what is due, and is woken sooner when a new failure is due
 * earlier. After the last attempt — or at once for a permanent refusal — a message is dead-lettered
 * and waits for the operator (`exoclaw inbox retry | drop`).
 */
import type { Logger } from "../lib/log.ts";
import type { PendingInbound, Store } from "../store/index.ts";
import { describeError } from "../lib/errors.ts";

/** Attempts before a message is dead-lettered. */
export const MAX_DELIVERY_ATTEMPTS = 8;

/** The first retry delay; later ones grow from it. */
export const FIRST_RETRY_MS = 5_000;

/** Multiples of the first delay after 1, 2, 3… failures: 5 s, 30 s, 2 min, 10 min, then 1 h. */
const STEPS = [1, 6, 24, 120, 720] as const;

export interface RetryPolicy {
  /** The first delay (default 5 s); the others keep their ratio to it (tests shrink it). */
  firstDelayMs: number;
  maxAttempts: number;
  /** In [0, 1): the jitter (±20 %), so messages that failed together do not retry together. */
  random: () => number;
}

export const DEFAULT_RETRY_POLICY: RetryPolicy = {
  firstDelayMs: FIRST_RETRY_MS,
  maxAttempts: MAX_DELIVERY_ATTEMPTS,
  random: Math.random,
};

/**
 * When to try a message again after its `failures`-th failed attempt, or null to dead-letter it: a
 * permanent refusal and the last attempt end it. The platform's hint, when it gave one, is the
 * delay as given (no jitter: it says when its limit lifts); otherwise the next step, jittered.
 */
export function nextAttemptAt(
  failures: number,
  refusal: { permanent: boolean; retry_after_ms?: number },
  now: number,
  policy: RetryPolicy = DEFAULT_RETRY_POLICY,
): number | null {
  if (refusal.permanent || failures >= policy.maxAttempts) return null;
  if (refusal.retry_after_ms !== undefined) return now + refusal.retry_after_ms;
  const step = STEPS[Math.min(Math.max(failures, 1), STEPS.length) - 1]!;
  return now + Math.round(policy.firstDelayMs * step * (0.8 + 0.4 * policy.random()));
}

export interface RetryLoopDeps {
  store: Store;
  /** Tries one due message once; resolves when that attempt ended (it records its own outcome). */
  deliver: (rec: PendingInbound) => Promise<unknown>;
  /** Whether a message is being delivered right now (by its webhook, or an operator's retry). */
  isBusy: (id: string) => boolean;
  log: Logger;
  now?: () => number;
}

/** Messages read per pass; a pass that reads this many is followed by another at once. */
const BATCH = 100;
/** The loop looks at the store at least this often, whatever it expects (clock changes, other writers). */
const MAX_SLEEP_MS = 5 * 60_000;

/**
 * Delivers due messages one at a time. Passes never overlap; `schedule(at)` (a new failure, a
 * re-queue) only moves the wake-up earlier. Owns its timer; `stop()` ends it and waits for the pass.
 */
export class RetryLoop {
  private timer: ReturnType<typeof setTimeout> | undefined;
  private timerAt: number | null = null;
  private pass: Promise<void> = Promise.resolve();
  private passing = false;
  /** A wake-up asked for while a pass ran: the earliest one. */
  private wanted: number | null = null;
  private stopped = false;
  private readonly now: () => number;

  constructor(private readonly deps: RetryLoopDeps) {
    this.now = deps.now ?? Date.now;
  }

  /**
   * The first pass: everything pending is tried now, whatever its next attempt time — a restart is
   * often the operator's fix (a token, a grant), and what was accepted before a crash is due anyway.
   */
  start(): void {
    this.run(Number.MAX_SAFE_INTEGER);
  }

  /** Makes sure the loop wakes by `at` (ms since epoch). */
  schedule(at: number): void {
    if (this.stopped) return;
    if (this.passing) {
      this.wanted = this.wanted === null ? at : Math.min(this.wanted, at);
      return;
    }
    if (this.timerAt !== null && this.timerAt <= at) return;
    clearTimeout(this.timer);
    this.timerAt = at;
    this.timer = setTimeout(
      () => {
        this.timerAt = null;
        this.run(this.now());
      },
      Math.min(Math.max(0, at - this.now()), MAX_SLEEP_MS),
    );
    this.timer.unref?.();
  }

  /** Stops the timer; resolves once a pass in progress has finished its current delivery. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.pass;
  }

  private run(horizon: number): void {
    if (this.stopped) return;
    this.passing = true;
    this.pass = this.pass
      .then(() => this.deliverDue(horizon))
      .catch((e: unknown) => {
        this.deps.log.error("channel retry pass failed", { error: describeError(e) });
        return this.now();
      })
      .then((seen) => this.arm(seen));
  }

  /** Delivers what is due by `horizon`; returns the horizon of the last read (everything due by it was seen). */
  private async deliverDue(horizon: number): Promise<number> {
    const { store, deliver, isBusy } = this.deps;
    for (;;) {
      const due = await store.dueInbound(horizon, BATCH);
      // A busy message is finished by whoever holds it; its outcome schedules what comes next.
      for (const rec of due) {
        if (this.stopped) return horizon;
        if (!isBusy(rec.id)) await deliver(rec);
      }
      if (due.length < BATCH || this.stopped) return horizon;
      horizon = Math.min(horizon, this.now());
    }
  }

  /**
   * Sleeps until the earliest message due after `seen` (what became due during the pass included),
   * or a wake-up asked for meanwhile. A message due by `seen` was delivered (its failure asked for its
   * own wake-up) or is busy (its holder's outcome will): waiting for it again would spin.
   */
  private async arm(seen: number): Promise<void> {
    const now = this.now();
    const next = await this.deps.store.nextInboundAt(Math.min(seen, now)).catch(() => null);
    this.passing = false;
    const wanted = this.wanted;
    this.wanted = null;
    this.schedule(Math.min(next ?? now + MAX_SLEEP_MS, wanted ?? Number.POSITIVE_INFINITY));
  }
}
