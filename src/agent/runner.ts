/**
 * Runs chat turns for sessions: loads bounded history from the store, runs the loop with the
 * agent's provider and tools, and stores what the turn added in one transaction. Turns of one
 * session run one at a time, in arrival order; different sessions run concurrently, at most
 * `[gateway] max_concurrent_turns` at once, the rest waiting in a bounded queue that is fair across sessions
 * (./turn-queue.ts). With several gateway workers on one store (issue 13), a turn also holds the
 * session's lease in the store (SessionLeases) while it runs, so turns of one session stay one at a
 * time across workers, and its history is stored fenced by that lease; the history cache is checked
 * against the session's version, so another worker's writes are read.
 */
import type { SessionAddress, StoredMessage } from "../core/index.ts";
import type { AgentConfig, LiveConfig } from "../config/index.ts";
import { ExoError } from "../lib/errors.ts";
import type { Logger } from "../lib/log.ts";
import { DEFAULT_BUCKETS, type Metrics } from "../lib/metrics.ts";
import { BudgetGuard, meteredStream } from "../metering/index.ts";
import type { Store } from "../store/index.ts";
import { isIdleTimeout } from "./idle-timeout.ts";
import { type BusyError, type TurnLimits, TurnQueue, type WhenBusy } from "./turn-queue.ts";
import { runTurn, type StreamFn, type ToolBox, type TurnEvent, type TurnResult } from "./loop.ts";
import type { ChatMessage } from "./types.ts";

/**
 * What a turn remembers, decided by the memory capability (src/memory/module.ts implements it) under
 * the live config; the runner only asks.
 */
export interface TurnMemory {
  /** The agent's persona (SOUL.md), put first in its system prompt; "" for none. */
  soul(agent: AgentConfig): string;
  /** How many stored messages a turn may load as context. */
  historyLimit(): number;
  /** What the agent remembers that bears on this message, for the system prompt; "" for nothing. */
  recall(agent: AgentConfig, session: SessionAddress, message: string, person?: string | null): Promise<string>;
}

export interface RunnerDeps {
  store: Store;
  /**
   * The one live config: the agents (a reload applies to the next turn), the budgets checked before
   * every model call (fail closed; usage is written ahead regardless) and `[gateway]`
   * max_concurrent_turns / max_queued_turns (read at every scheduling step).
   */
  live: LiveConfig;
  memory: TurnMemory;
  streamFor: (agent: AgentConfig) => StreamFn;
  /**
   * The tools of a turn; `session` is null for a stateless turn. `person` is TurnRequest.person
   * (undefined: the session's own person; null: nobody, no personal memory).
   */
  toolsFor: (agent: AgentConfig, session: SessionAddress | null, person?: string | null) => ToolBox;
  log: Logger;
  metrics?: Metrics;
  /**
   * Other processes (gateway workers) run turns on the same store: each turn takes the session's
   * lease first (waiting with backoff while another worker holds it). Absent: this process is the
   * only one, and the in-process queue alone orders a session's turns.
   */
  shared?: SharedTurns;
}

/** How this worker takes session leases. */
export interface SharedTurns {
  /** This worker's name in the lease table (diagnostics). */
  holder: string;
  /** How long a lease lasts without renewal (it is renewed every third of it while the turn runs). */
  leaseMs: number;
  /** Longest wait between two tries of a lease another worker holds (backoff from 5 ms). */
  maxPollMs?: number;
}

/** A session's cached history and the session version it was read or written at. */
interface CachedHistory {
  messages: ChatMessage[];
  version: number;
  /** The window's size in JSON characters (what the byte bound counts). */
  chars: number;
}

/** How a turn is run: its cancellation, where its events go, and what happens when the gateway is full. */
export interface RunOptions {
  /** Aborting it cancels the turn, or takes it out of the queue if it has not started (nothing runs, nothing is stored). */
  signal: AbortSignal;
  emit: (e: TurnEvent) => void;
  /** Default `refuse`: BusyError when the queue is full (./turn-queue.ts). */
  busy?: WhenBusy;
}

export interface TurnRequest {
  agent: string;
  address: SessionAddress;
  content: string;
  /**
   * Stateless turn (the OpenAI-compatible endpoint without a session header): this history is used
   * instead of the stored one, and nothing is stored.
   */
  history?: ChatMessage[];
  /** Prepended to the agent's system prompt (a client's own system message). */
  system?: string;
  /**
   * Who the turn is for: the message's sender (a channel sets it). Their semantic memory, plugin state
   * and `person_daily_tokens` follow it. Absent: the person of the session's address (memory only);
   * null: nobody (a group message without a sender: no personal memory).
   */
  person?: string | null;
  /**
   * The accepted channel message this turn answers (its inbound id). A turn that ends with an answer
   * to send (any stop reason but `error` and `cancelled`) saves its reply on that message in the same
   * transaction as its history (Store.appendMessages), so a retry after a crash sends the stored reply
   * and never runs the turn again.
   */
  inboundId?: string;
}

export interface TurnOutcome extends TurnResult {
  session: string;
  agent: string;
  /**
   * With stop_reason `cancelled`, what cut it: `request` (the caller's signal, or `cancelSession` —
   * a `chat.cancel {session}` from any gateway) or `shutdown` (the drain ran out; nothing was stored).
   */
  cancelled_by?: "request" | "shutdown";
}

/** Where a history window may start: the first user message with text (tool results cut off from their call cannot), or -1. */
const conversationStart = (messages: readonly ChatMessage[]): number =>
  messages.findIndex((m) => m.role === "user" && m.parts.some((p) => p.type === "text"));

/** Drops leading messages that cannot start a conversation (tool results cut off from their call). */
export function trimToUserStart(messages: StoredMessage[]): ChatMessage[] {
  const start = conversationStart(messages);
  return (start === -1 ? [] : messages.slice(start)).map((m) => ({ role: m.role, parts: m.parts }));
}

/** Sessions whose recent history stays in memory between turns (least recently used evicted). */
const CACHED_SESSIONS = 1000;
/**
 * And at most this much of it, in JSON characters: a window can hold tool results of up to 1 MiB
 * each, so 1,000 sessions alone would not bound the bytes (1,000 MCP results of 1 MiB kept 1 GB).
 */
export const CACHED_CHARS = 32 * 1024 * 1024;

/** A session lease this turn holds (SharedTurns): its fencing token, and how to give it back. */
interface Lease {
  token: number;
  release(): void;
}

export class AgentRunner {
  /** Turns queued or running, so idle() can wait for them. */
  private readonly inFlight = new Set<Promise<unknown>>();
  private readonly slots: TurnQueue;
  private readonly shutdown = new AbortController();
  private statelessSeq = 0;
  /** The stored turns queued or running, by session key (cancelSession); stateless turns are not here. */
  private readonly bySession = new Map<string, Set<AbortController>>();
  /**
   * Recent history of active sessions, so a turn does not re-read and re-parse it from the store.
   * The runner is the only writer of a session's messages while the gateway runs (turns of a session
   * are serialized here); `forget` drops an entry when something else changes the session.
   */
  private readonly recent = new Map<string, CachedHistory>();
  /** The sum of the cached windows' `chars`. */
  private cachedChars = 0;
  /** Checks the live budgets before every model call and writes the usage ledger ahead. */
  private readonly budget: BudgetGuard;

  constructor(private readonly deps: RunnerDeps) {
    const { metrics, live } = deps;
    metrics?.help("exoclaw_chat_turns_total", "Chat turns by agent and stop reason.", "counter");
    metrics?.help(
      "exoclaw_model_tokens_total",
      "Model tokens by agent and direction, from the providers' counts.",
      "counter",
    );
    this.budget = new BudgetGuard(deps.store, () => live.current.budgets);
    const limits = (): TurnLimits => ({
      maxRunning: live.current.gateway.max_concurrent_turns,
      maxQueued: live.current.gateway.max_queued_turns,
    });
    this.slots = new TurnQueue(limits, (ms) => metrics?.observe("exoclaw_turn_wait_seconds", ms / 1000));
    metrics?.gauge(
      "exoclaw_turns_running",
      "Chat turns running now (at most [gateway] max_concurrent_turns).",
      () => this.slots.running,
    );
    metrics?.gauge(
      "exoclaw_turns_queued",
      "Chat turns waiting for a turn slot (in memory; channel messages beyond it wait in the store).",
      () => this.slots.queued,
    );
    metrics?.histogram(
      "exoclaw_turn_wait_seconds",
      "Time a turn waited for a turn slot before it started.",
      DEFAULT_BUCKETS,
    );
    // Bounded (CACHED_SESSIONS × historyLimit); a soak reads them to end its warm-up once it is full.
    metrics?.gauge(
      "exoclaw_history_cache_sessions",
      "Sessions whose recent history is kept in memory (at most 1,000).",
      () => this.recent.size,
    );
    metrics?.gauge(
      "exoclaw_history_cache_messages",
      "Messages in the in-memory history cache (at most 1,000 × [memory] episodic_turns × 4).",
      () => {
        let n = 0;
        for (const c of this.recent.values()) n += c.messages.length;
        return n;
      },
    );
    metrics?.help(
      "exoclaw_idle_timeouts_total",
      "Chat turns ended because the model sent nothing for idle_timeout_ms.",
      "counter",
    );
    metrics?.help(
      "exoclaw_turns_busy_total",
      "Turns refused because the queue was full (-32005 / HTTP 429).",
      "counter",
    );
  }

  /** Turns running now and waiting for a slot (for status and the channel pipeline's bound). */
  get load(): { running: number; queued: number } {
    return { running: this.slots.running, queued: this.slots.queued };
  }

  /**
   * For a caller that must answer "busy" before it starts (an HTTP response): the BusyError run()
   * would give a `refuse` caller for a turn of `session` now — counted as a refusal — or null.
   */
  refusal(session: string): BusyError | null {
    const e = this.slots.refusal(session);
    if (e) this.deps.metrics?.inc("exoclaw_turns_busy_total");
    return e;
  }

  /**
   * Runs one turn after the session's earlier turns, once a turn slot is free. Throws ExoError
   * ("not_found") for an unknown agent and BusyError (nothing queued) when the queue is full and
   * `busy` is `refuse`. A turn cancelled while it waits resolves `cancelled` without running.
   */
  run(req: TurnRequest, opts: RunOptions): Promise<TurnOutcome> {
    const agent = this.deps.live.current.agents.find((a) => a.id === req.agent);
    if (!agent)
      return Promise.reject(new ExoError("not_found", `no agent ${req.agent}`, { data: { agent: req.agent } }));
    // Not AbortSignal.any([opts.signal, shutdown]): a signal that depends on the runner's lifelong
    // shutdown signal is kept alive, with every abort listener on it, for as long as it has one
    // (the DOM rule) — the MCP client's per-request listener kept each turn's signal, closures and
    // errors forever (found by the MCP fuzz's heap check). This one is the turn's own, and the
    // links to its sources are removed when the turn ends.
    const own = new AbortController();
    const abort = () => own.abort(opts.signal.aborted ? opts.signal.reason : this.shutdown.signal.reason);
    const unlink = () => {
      opts.signal.removeEventListener("abort", abort);
      this.shutdown.signal.removeEventListener("abort", abort);
    };
    if (opts.signal.aborted || this.shutdown.signal.aborted) abort();
    else {
      opts.signal.addEventListener("abort", abort, { once: true });
      this.shutdown.signal.addEventListener("abort", abort, { once: true });
    }
    const signal = own.signal;
    // A stored turn can also be cancelled by its session (chat.cancel {session}, from any gateway).
    const tracked = !req.history;
    const key = req.address.key;
    const untrack = () => {
      const set = tracked && this.bySession.get(key);
      if (!set) return;
      set.delete(own);
      if (set.size === 0) this.bySession.delete(key);
    };
    let waiting: Promise<(() => void) | null>;
    try {
      // A turn that brings its own history (stateless OpenAI requests) stores nothing and needs no
      // order: it queues on its own, not behind every other stateless request of the process.
      waiting = this.slots.acquire(
        req.history ? `${req.address.key}#${++this.statelessSeq}` : req.address.key,
        signal,
        opts.busy ?? "refuse",
      );
    } catch (e) {
      unlink();
      this.deps.metrics?.inc("exoclaw_turns_busy_total");
      return Promise.reject(e);
    }
    if (tracked) {
      const set = this.bySession.get(key) ?? new Set<AbortController>();
      set.add(own);
      this.bySession.set(key, set);
    }
    const turn = waiting
      .then(async (release) => {
        if (!release) return this.unstarted(agent, req, opts);
        let lease: Lease | null = null;
        try {
          if (this.deps.shared && !req.history) {
            lease = await this.lease(req.address.key, this.deps.shared, signal);
            if (!lease) return this.unstarted(agent, req, opts);
          }
          return await this.turn(agent, req, { signal, emit: opts.emit }, lease);
        } finally {
          lease?.release();
          release();
        }
      })
      .then((out) =>
        out.stop_reason === "cancelled"
          ? { ...out, cancelled_by: this.shutdown.signal.aborted ? ("shutdown" as const) : ("request" as const) }
          : out,
      )
      .finally(untrack);
    this.inFlight.add(turn);
    void turn
      .finally(() => {
        unlink();
        this.inFlight.delete(turn);
      })
      .catch(() => {});
    return turn;
  }

  /** The outcome of a turn cancelled before it got a slot: no model call, nothing stored. */
  private unstarted(agent: AgentConfig, req: TurnRequest, opts: RunOptions): TurnOutcome {
    opts.emit({ event: "done", data: { stop_reason: "cancelled" } });
    return {
      text: "",
      usage: { input_tokens: 0, output_tokens: 0 },
      stop_reason: "cancelled",
      messages: [],
      session: req.address.key,
      agent: agent.id,
    };
  }

  /**
   * Takes the session's lease, polling with backoff (5 ms doubling up to maxPollMs, jittered) while
   * another worker holds it; null when `signal` fired first. The lease is renewed while held.
   */
  private async lease(key: string, shared: SharedTurns, signal: AbortSignal): Promise<Lease | null> {
    const { store } = this.deps;
    let delay = 5;
    for (;;) {
      const token = await store.acquireLease(key, shared.holder, shared.leaseMs);
      if (token !== null) {
        const renew = setInterval(
          () => {
            void store.renewLease(key, token, shared.leaseMs).then(
              (held) =>
                held ||
                this.deps.log.warn(
                  "turn lease lost: the turn ran past its lease and another worker took the session; its history will not be stored",
                  { session: key },
                ),
              () => {},
            );
          },
          Math.max(50, Math.floor(shared.leaseMs / 3)),
        );
        return {
          token,
          release: () => {
            clearInterval(renew);
            void store.releaseLease(key, token).catch(() => {}); // an unreleased lease expires on its own
          },
        };
      }
      if (signal.aborted) return null;
      const wait = delay * (0.5 + Math.random() / 2);
      delay = Math.min(shared.maxPollMs ?? 250, delay * 2);
      const fired = await new Promise<boolean>((resolve) => {
        const onAbort = () => (clearTimeout(t), resolve(true));
        const t = setTimeout(() => (signal.removeEventListener("abort", onAbort), resolve(false)), wait);
        signal.addEventListener("abort", onAbort, { once: true });
      });
      if (fired) return null;
    }
  }

  private async turn(
    agent: AgentConfig,
    req: TurnRequest,
    opts: { signal: AbortSignal; emit: (e: TurnEvent) => void },
    lease: Lease | null = null,
  ): Promise<TurnOutcome> {
    const { store } = this.deps;
    const limit = this.deps.memory.historyLimit();
    const key = req.address.key;
    let history = req.history;
    if (!history) {
      // The cache is good only while the session is at the version it was read or written at: another
      // worker (or anything else) that wrote the session since changed it.
      const cached = this.recent.get(key);
      const version = await store.sessionVersion(key);
      if (cached && cached.version === version) history = cached.messages;
      // 0 is an unknown session (the store's contract): nothing to read (a new session's first turn).
      else if (version === 0) history = [];
      else history = trimToUserStart(await store.history(key, { limit }));
    }
    const remembered = !req.history
      ? await this.deps.memory.recall(agent, req.address, req.content, req.person).catch(() => "")
      : "";
    const system = [this.deps.memory.soul(agent), agent.system_prompt, req.system ?? "", remembered]
      .filter((s) => s !== "")
      .join("\n\n");
    const result = await runTurn(
      {
        model: agent.model,
        system,
        maxTokens: agent.max_tokens,
        maxToolRounds: agent.max_tool_rounds,
        history,
        user: { role: "user", parts: [{ type: "text", text: req.content }] },
      },
      {
        stream: meteredStream(this.deps.streamFor(agent), {
          guard: this.budget,
          session: req.history ? null : key,
          person: req.person ?? null,
          agent,
          metrics: this.deps.metrics,
        }),
        tools: this.deps.toolsFor(agent, req.history ? null : req.address, req.person),
        signal: opts.signal,
        emit: opts.emit,
      },
    );
    this.deps.metrics?.inc("exoclaw_chat_turns_total", { agent: agent.id, stop_reason: result.stop_reason });
    if (result.stop_reason === "error" && isIdleTimeout(result.error))
      this.deps.metrics?.inc("exoclaw_idle_timeouts_total", { agent: agent.id });
    // The model that answered — a fallback's, when the chain moved past the agent's own.
    const meta = {
      provider: result.answeredBy?.provider ?? agent.provider,
      model: result.answeredBy?.model ?? agent.model,
      stop_reason: result.stop_reason,
    };
    const last = result.messages.length - 1;
    // A turn that failed before the model said anything stores nothing: the history would otherwise
    // hold a dangling user message, and a retry (a channel's pending message) a second copy of it.
    // A turn cut off by shutdown stores nothing either: a channel message stays pending and runs
    // again at the next start, which would otherwise store its user message twice.
    // A channel message's turn that failed stores nothing, even what the model said first: nobody saw
    // it (the reply is sent only when the turn ends), and the message stays pending, so its retry
    // runs the turn again and stores it — once.
    const answered =
      result.messages.some((m) => m.role !== "user") &&
      !(req.inboundId !== undefined && result.stop_reason === "error");
    const cutByShutdown = result.stop_reason === "cancelled" && this.shutdown.signal.aborted;
    const reply =
      req.inboundId !== undefined &&
      !req.history &&
      result.stop_reason !== "error" &&
      result.stop_reason !== "cancelled"
        ? { inbound: req.inboundId, text: result.text }
        : undefined;
    if (
      !req.history &&
      !cutByShutdown &&
      (answered || (result.stop_reason !== "error" && result.stop_reason !== "budget"))
    ) {
      await store
        .appendMessages(
          req.address,
          // Added to the last message's own meta (a tool message's `approvals`), never in its place.
          result.messages.map((m, i) => (i === last && m.role !== "user" ? { ...m, meta: { ...m.meta, ...meta } } : m)),
          reply,
          lease ? { token: lease.token } : undefined,
        )
        .catch((e: unknown) => {
          this.forget(key);
          throw e;
        });
      // Under the lease (or alone) nobody else appends to the session, so this is the append's version.
      const version = await store.sessionVersion(key).catch(() => -1);
      this.remember(
        key,
        [...history, ...result.messages.map((m) => ({ role: m.role, parts: m.parts }))],
        limit,
        version,
      );
    } else if (reply) {
      // Nothing for the history (a budget refusal before any answer): the reply alone is saved.
      await store.saveInboundReply(reply.inbound, reply.text);
    }
    if (result.error && result.stop_reason === "error") {
      this.deps.log.warn("turn failed", { session: req.address.key, agent: agent.id, error: result.error.message });
    }
    return { ...result, session: req.address.key, agent: agent.id };
  }

  /**
   * Cancels this process's stored turns of `session`, running or queued (queued ones leave without
   * running); returns how many. Stateless turns (no session header on /v1) have no session to name.
   */
  cancelSession(session: string): number {
    const set = this.bySession.get(session);
    if (!set) return 0;
    let n = 0;
    for (const c of set) {
      if (c.signal.aborted) continue;
      c.abort();
      n++;
    }
    return n;
  }

  /** Cancels every turn running or queued (shutdown after the drain time): queued ones leave without running. */
  cancelAll(): void {
    this.shutdown.abort();
  }

  /** Resolves once every turn queued or running now has finished (whatever its outcome). */
  async idle(): Promise<void> {
    while (this.inFlight.size > 0) await Promise.allSettled([...this.inFlight]);
  }

  /** Drops a session's cached history (after a reset, or a write the runner did not make). */
  forget(key: string): void {
    const old = this.recent.get(key);
    if (old) this.cachedChars -= old.chars;
    this.recent.delete(key);
  }

  /** What the history cache holds now: sessions, messages and JSON characters. */
  cacheStats(): { sessions: number; messages: number; chars: number } {
    let messages = 0;
    for (const c of this.recent.values()) messages += c.messages.length;
    return { sessions: this.recent.size, messages, chars: this.cachedChars };
  }

  private remember(key: string, messages: ChatMessage[], limit: number, version: number): void {
    // Same window as a store read: the last `limit` messages, starting at a user message.
    const window = messages.length > limit ? messages.slice(messages.length - limit) : messages;
    const start = conversationStart(window);
    const kept = start <= 0 ? window : window.slice(start);
    this.forget(key);
    const chars = kept.reduce((n, m) => n + JSON.stringify(m.parts).length, 0);
    // A window bigger than the whole bound is read from the store next time instead.
    if (chars > CACHED_CHARS) return;
    this.recent.set(key, { messages: kept, version, chars });
    this.cachedChars += chars;
    while (this.recent.size > CACHED_SESSIONS || this.cachedChars > CACHED_CHARS)
      this.forget(this.recent.keys().next().value!);
  }
}
