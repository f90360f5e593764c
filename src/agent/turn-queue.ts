/**
 * The process's turn slots (SPEC §2 `[gateway] max_concurrent_turns`): at most `maxRunning` turns run
 * at once; the rest wait in a bounded queue that is fair across sessions — a slot that frees goes to
 * the next session in round-robin order, never to the next turn of whoever queued the most — and in
 * order within a session (one turn of a session at a time, in arrival order).
 */
import { ExoError } from "../lib/errors.ts";

export interface TurnLimits {
  /** Turns running at once (≥ 1). Read at every scheduling step, so a config reload applies at once. */
  maxRunning: number;
  /** Turns waiting for a slot beyond which a `refuse` caller is told the gateway is busy. */
  maxQueued: number;
}

/**
 * The gateway has no room for another turn: `-32005` with `data.retry_after_ms`, HTTP 429 with
 * `Retry-After`. Nothing ran and nothing was stored; the caller may try again after the hint.
 */
export class BusyError extends ExoError {
  readonly retryAfterMs: number;
  constructor(retryAfterMs: number, queued: number) {
    super(
      "rate_limited",
      `the gateway is busy (${queued} turns waiting); try again in ${Math.ceil(retryAfterMs / 1000)} s`,
      { data: { retry_after_ms: retryAfterMs } },
    );
    this.retryAfterMs = retryAfterMs;
  }
}

/**
 * What a caller does when the queue is full: `refuse` — throw BusyError (interactive callers: the
 * WebSocket, the OpenAI endpoint); `wait` — queue anyway, for callers that bound their own waiting
 * (the channel pipeline keeps a bounded number in memory and leaves the rest in the store).
 */
export type WhenBusy = "refuse" | "wait";

interface Waiter {
  session: SessionLine;
  since: number;
  grant: (release: () => void) => void;
  cancel: () => void;
}

interface SessionLine {
  key: string;
  /** A turn of this session holds a slot. */
  active: boolean;
  waiting: Waiter[];
  /** In the round-robin ring now. */
  ringed: boolean;
}

/** A slot was handed out: how long the turn waited for it. */
export type OnGrant = (waitedMs: number) => void;

/** Turn slots and the fair queue in front of them. Owns no timers; a cancelled waiter leaves at once. */
export class TurnQueue {
  private readonly lines = new Map<string, SessionLine>();
  /** Sessions with a waiting turn and none running, in the order they get the next free slots. */
  private ring: SessionLine[] = [];
  private ringHead = 0;
  private runningCount = 0;
  private queuedCount = 0;
  /** Recent turn durations (ms, moving average), for the busy hint. */
  private meanTurnMs = 1000;

  constructor(
    private readonly limits: () => TurnLimits,
    private readonly onGrant: OnGrant = () => {},
    private readonly now: () => number = performance.now.bind(performance),
  ) {}

  get running(): number {
    return this.runningCount;
  }

  get queued(): number {
    return this.queuedCount;
  }

  /**
   * Waits for a slot for the next turn of `session` (after that session's earlier turns). Resolves
   * with `release`, to be called exactly once when the turn ends; resolves null when `signal` fired
   * before a slot came (the turn left the queue without running). Throws BusyError when `busy` is
   * `refuse` and `maxQueued` turns are already waiting.
   */
  acquire(session: string, signal: AbortSignal, busy: WhenBusy): Promise<(() => void) | null> {
    if (signal.aborted) return Promise.resolve(null);
    // A reload may have raised the limit since the last step.
    this.pump();
    let line = this.lines.get(session);
    if (!line) this.lines.set(session, (line = { key: session, active: false, waiting: [], ringed: false }));
    // After pump() either every slot is taken or no session waits: a free slot is this turn's.
    if (!line.active && this.runningCount < this.limits().maxRunning) {
      this.onGrant(0);
      return Promise.resolve(this.take(line, this.now()));
    }
    if (busy === "refuse") {
      const refusal = this.refusal(session);
      if (refusal) {
        this.drop(line);
        throw refusal;
      }
    }
    return new Promise((resolve) => {
      const onAbort = () => waiter.cancel();
      const waiter: Waiter = {
        session: line,
        since: this.now(),
        grant: (release) => {
          signal.removeEventListener("abort", onAbort);
          resolve(release);
        },
        cancel: () => {
          const i = line.waiting.indexOf(waiter);
          if (i === -1) return;
          line.waiting.splice(i, 1);
          this.queuedCount--;
          signal.removeEventListener("abort", onAbort);
          this.drop(line);
          resolve(null);
        },
      };
      signal.addEventListener("abort", onAbort, { once: true });
      line.waiting.push(waiter);
      this.queuedCount++;
      if (!line.active) this.enring(line);
      this.pump();
    });
  }

  /**
   * The BusyError a `refuse` caller would get for a turn of `session` now, or null when it would run
   * or queue. Lets a caller answer "busy" before it starts a response (the OpenAI endpoint's stream).
   */
  refusal(session: string): BusyError | null {
    const { maxRunning, maxQueued } = this.limits();
    const line = this.lines.get(session);
    const waits = line?.active === true || this.runningCount >= maxRunning;
    return waits && this.queuedCount >= maxQueued
      ? new BusyError(this.retryAfterMs(maxRunning), this.queuedCount)
      : null;
  }

  /** How long a refused caller should wait: about the time for a queue place to open. */
  private retryAfterMs(maxRunning: number): number {
    return Math.min(30_000, Math.max(250, Math.ceil(this.meanTurnMs / Math.max(1, maxRunning))));
  }

  private take(line: SessionLine, started: number): () => void {
    line.active = true;
    this.runningCount++;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.meanTurnMs = this.meanTurnMs * 0.9 + (this.now() - started) * 0.1;
      line.active = false;
      this.runningCount--;
      if (line.waiting.length > 0) this.enring(line);
      else this.drop(line);
      this.pump();
    };
  }

  /** Forgets a session with nothing running or waiting (the map holds only sessions with work). */
  private drop(line: SessionLine): void {
    if (!line.active && line.waiting.length === 0 && !line.ringed && this.lines.get(line.key) === line)
      this.lines.delete(line.key);
  }

  private enring(line: SessionLine): void {
    if (line.ringed) return;
    line.ringed = true;
    this.ring.push(line);
  }

  /** Hands free slots to the sessions at the front of the ring, one turn each. */
  private pump(): void {
    const { maxRunning } = this.limits();
    while (this.runningCount < Math.max(1, maxRunning) && this.ringHead < this.ring.length) {
      const line = this.ring[this.ringHead++]!;
      line.ringed = false;
      const waiter = line.waiting.shift();
      if (!waiter) {
        // Every waiting turn of this session was cancelled.
        this.drop(line);
        continue;
      }
      this.queuedCount--;
      const t = this.now();
      this.onGrant(t - waiter.since);
      waiter.grant(this.take(line, t));
    }
    // Drop the consumed front, so the ring array does not grow with history.
    if (this.ringHead === this.ring.length) {
      this.ring.length = 0;
      this.ringHead = 0;
    } else if (this.ringHead > 1024 && this.ringHead * 2 > this.ring.length) {
      this.ring = this.ring.slice(this.ringHead);
      this.ringHead = 0;
    }
  }
}
