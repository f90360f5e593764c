/**
 * Runs chat turns for sessions: loads bounded history from the store, runs the loop with the
 * agent's provider and tools, and stores what the turn added in one transaction. Turns of one
 * session run one at a time, in arrival order; different sessions run concurrently, at most
 * `limits().maxRunning` at once, the rest waiting in a bounded queue that is fair across sessions
 * (./turn-queue.ts).
 */
import type { AgentConfig } from "../config/index.ts";
import { ExoError } from "../lib/errors.ts";
import type { Logger } from "../lib/log.ts";
import { DEFAULT_BUCKETS, type Metrics } from "../lib/metrics.ts";
import { BudgetGuard, type Reservation } from "../metering/index.ts";
import type { SessionAddress, Store, StoredMessage } from "../store/index.ts";
import { type BusyError, type TurnLimits, TurnQueue, type WhenBusy } from "./turn-queue.ts";
import { runTurn, type StreamFn, type ToolBox, type TurnEvent, type TurnResult } from "./loop.ts";
import type { ChatMessage } from "./types.ts";

export interface RunnerDeps {
  store: Store;
  /** The agent's current config (reloads apply to the next turn). */
  agent: (id: string) => AgentConfig | undefined;
  streamFor: (agent: AgentConfig) => StreamFn;
  /**
   * The tools of a turn; `session` is null for a stateless turn. `person` is TurnRequest.person
   * (undefined: the session's own person; null: nobody, no personal memory).
   */
  toolsFor: (agent: AgentConfig, session: SessionAddress | null, person?: string | null) => ToolBox;
  /** How many stored messages a turn may load as context. */
  historyLimit: () => number;
  log: Logger;
  metrics?: Metrics;
  /** Budgets checked before every model call (fail closed); absent = unlimited (usage is still written ahead). */
  budget?: BudgetGuard;
  /** The agent's persona (SOUL.md), put first in its system prompt; "" for none. */
  soul?: (agent: AgentConfig) => string;
  /** What the agent remembers that bears on this message, for the system prompt; "" for nothing. */
  recall?: (agent: AgentConfig, session: SessionAddress, message: string, person?: string | null) => Promise<string>;
  /** Turn slots and queue size, read live (config reloads apply to the next scheduling step); default: unbounded. */
  limits?: () => TurnLimits;
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
}

/** Drops leading messages that cannot start a conversation (tool results cut off from their call). */
export function trimToUserStart(messages: StoredMessage[]): ChatMessage[] {
  const start = messages.findIndex((m) => m.role === "user" && m.parts.some((p) => p.type === "text"));
  return (start === -1 ? [] : messages.slice(start)).map((m) => ({ role: m.role, parts: m.parts }));
}

/**
 * Serialized size in UTF-8 bytes of a message's parts, for the prompt estimate. A turn's history is the same
 * parts arrays turn after turn (the runner's cache and the loop pass them through), so each is
 * serialized once instead of once per model call: that was ~10% of a turn's CPU with long histories.
 * Stored parts are never mutated, so a cached size stays the size JSON.stringify would give.
 */
const partsLength = new WeakMap<object, number>();
function partsBytes(parts: object): number {
  let n = partsLength.get(parts);
  if (n === undefined) {
    n = Buffer.byteLength(JSON.stringify(parts));
    partsLength.set(parts, n);
  }
  return n;
}

/** Sessions whose recent history stays in memory between turns (least recently used evicted). */
const CACHED_SESSIONS = 1000;

const UNBOUNDED: TurnLimits = { maxRunning: Number.MAX_SAFE_INTEGER, maxQueued: Number.MAX_SAFE_INTEGER };

export class AgentRunner {
  /** Turns queued or running, so idle() can wait for them. */
  private readonly inFlight = new Set<Promise<unknown>>();
  private readonly slots: TurnQueue;
  private readonly shutdown = new AbortController();
  private statelessSeq = 0;
  /**
   * Recent history of active sessions, so a turn does not re-read and re-parse it from the store.
   * The runner is the only writer of a session's messages while the gateway runs (turns of a session
   * are serialized here); `forget` drops an entry when something else changes the session.
   */
  private readonly recent = new Map<string, ChatMessage[]>();
  /** Writes the usage ledger when no budgets guard was given (write-ahead applies regardless). */
  private ledger: BudgetGuard | undefined;

  constructor(private readonly deps: RunnerDeps) {
    const { metrics } = deps;
    this.slots = new TurnQueue(deps.limits ?? (() => UNBOUNDED), (ms) => metrics?.observe("exoclaw_turn_wait_seconds", ms / 1000));
    metrics?.gauge("exoclaw_turns_running", "Chat turns running now (at most [gateway] max_concurrent_turns).", () => this.slots.running);
    metrics?.gauge("exoclaw_turns_queued", "Chat turns waiting for a turn slot (in memory; channel messages beyond it wait in the store).", () => this.slots.queued);
    metrics?.histogram("exoclaw_turn_wait_seconds", "Time a turn waited for a turn slot before it started.", DEFAULT_BUCKETS);
    metrics?.help("exoclaw_turns_busy_total", "Turns refused because the queue was full (-32005 / HTTP 429).", "counter");
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
    const agent = this.deps.agent(req.agent);
    if (!agent) return Promise.reject(new ExoError("not_found", `no agent ${req.agent}`, { data: { agent: req.agent } }));
    const signal = AbortSignal.any([opts.signal, this.shutdown.signal]);
    let waiting: Promise<(() => void) | null>;
    try {
      // A turn that brings its own history (stateless OpenAI requests) stores nothing and needs no
      // order: it queues on its own, not behind every other stateless request of the process.
      waiting = this.slots.acquire(req.history ? `${req.address.key}#${++this.statelessSeq}` : req.address.key, signal, opts.busy ?? "refuse");
    } catch (e) {
      this.deps.metrics?.inc("exoclaw_turns_busy_total");
      return Promise.reject(e);
    }
    const turn = waiting.then(async (release) => {
      if (!release) return this.unstarted(agent, req, opts);
      try {
        return await this.turn(agent, req, { signal, emit: opts.emit });
      } finally {
        release();
      }
    });
    this.inFlight.add(turn);
    void turn.finally(() => this.inFlight.delete(turn)).catch(() => {});
    return turn;
  }

  /** The outcome of a turn cancelled before it got a slot: no model call, nothing stored. */
  private unstarted(agent: AgentConfig, req: TurnRequest, opts: RunOptions): TurnOutcome {
    opts.emit({ event: "done", data: { stop_reason: "cancelled" } });
    return { text: "", usage: { input_tokens: 0, output_tokens: 0 }, stop_reason: "cancelled", messages: [], session: req.address.key, agent: agent.id };
  }

  private async turn(agent: AgentConfig, req: TurnRequest, opts: { signal: AbortSignal; emit: (e: TurnEvent) => void }): Promise<TurnOutcome> {
    const { store } = this.deps;
    const limit = this.deps.historyLimit();
    const key = req.address.key;
    let history = req.history ?? this.recent.get(key);
    if (!history) history = trimToUserStart(await store.history(key, { limit }));
    const remembered = !req.history && this.deps.recall ? await this.deps.recall(agent, req.address, req.content, req.person).catch(() => "") : "";
    const system = [this.deps.soul?.(agent) ?? "", agent.system_prompt, req.system ?? "", remembered].filter((s) => s !== "").join("\n\n");
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
        stream: this.metered(agent, req.history ? null : key, req.person ?? null, this.deps.streamFor(agent)),
        tools: this.deps.toolsFor(agent, req.history ? null : req.address, req.person),
        signal: opts.signal,
        emit: opts.emit,
      },
    );
    this.deps.metrics?.inc("exoclaw_chat_turns_total", { agent: agent.id, stop_reason: result.stop_reason });
    // The model that answered — a fallback's, when the chain moved past the agent's own.
    const meta = { provider: result.answeredBy?.provider ?? agent.provider, model: result.answeredBy?.model ?? agent.model, stop_reason: result.stop_reason };
    const last = result.messages.length - 1;
    // A turn that failed before the model said anything stores nothing: the history would otherwise
    // hold a dangling user message, and a retry (a channel's pending message) a second copy of it.
    // A turn cut off by shutdown stores nothing either: a channel message stays pending and runs
    // again at the next start, which would otherwise store its user message twice.
    // A channel message's turn that failed stores nothing, even what the model said first: nobody saw
    // it (the reply is sent only when the turn ends), and the message stays pending, so its retry
    // runs the turn again and stores it — once.
    const answered = result.messages.some((m) => m.role !== "user") && !(req.inboundId !== undefined && result.stop_reason === "error");
    const cutByShutdown = result.stop_reason === "cancelled" && this.shutdown.signal.aborted;
    const reply = req.inboundId !== undefined && !req.history && result.stop_reason !== "error" && result.stop_reason !== "cancelled" ? { inbound: req.inboundId, text: result.text } : undefined;
    if (!req.history && !cutByShutdown && (answered || (result.stop_reason !== "error" && result.stop_reason !== "budget"))) {
      await store.appendMessages(
        req.address,
        result.messages.map((m, i) => (i === last && m.role !== "user" ? { ...m, meta } : m)),
        reply,
      ).catch((e: unknown) => {
        this.recent.delete(key);
        throw e;
      });
      this.remember(key, [...history, ...result.messages.map((m) => ({ role: m.role, parts: m.parts }))], limit);
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
   * Wraps a model call (SPEC §10). Before the request: reserves an estimate against every budget
   * and writes it ahead as a pending usage row (BudgetError or StoreError: thrown, no request made).
   * Each fallback step announces its model first (`model` event): the step before is settled and a
   * new reservation is made at the answering model's price before its request is sent. When the
   * stream ends, however it ends, the step's row is settled to the provider's counts, or — when they
   * never came (cancelled, dropped) — to the prompt estimate plus the output counted locally.
   */
  private metered(agent: AgentConfig, session: string | null, person: string | null, inner: StreamFn): StreamFn {
    const { metrics } = this.deps;
    const guard = this.deps.budget ?? (this.ledger ??= new BudgetGuard(this.deps.store, () => ({})));
    return async function* (req, signal) {
      // Estimate: everything the request carries — the tool schemas too — at 3 UTF-8 bytes a token
      // (about right for CJK text, ~1 token a character; generous for English), plus all of max_tokens.
      let promptBytes = Buffer.byteLength(req.system);
      for (const m of req.messages) promptBytes += partsBytes(m.parts);
      if (req.tools.length > 0) promptBytes += Buffer.byteLength(JSON.stringify(req.tools));
      const inputTokens = Math.ceil(promptBytes / 3);
      const reserve = (provider: string, model: string) => guard.reserve({ session, person, agent: agent.id, provider, model, inputTokens, outputTokens: req.maxTokens });
      // `announced`: the step's model event came (its request is next); `used`: the request may have
      // been billed — it answered something, or was cut off after it was sent.
      type Step = { provider: string; model: string; reservation: Reservation; announced: boolean; used: boolean; usage: { input_tokens: number; output_tokens: number } | null; outChars: number };
      let step: Step | null = { provider: agent.provider, model: agent.model, reservation: await reserve(agent.provider, agent.model), announced: false, used: false, usage: null, outChars: 0 };
      const settle = async (s: Step) => {
        if (s.usage) await s.reservation.settle(s.usage, "final");
        else if (s.used) await s.reservation.settle({ input_tokens: inputTokens, output_tokens: Math.ceil(s.outChars / 4) }, "estimated");
        else await s.reservation.release();
      };
      try {
        for await (const ev of inner(req, signal)) {
          if (ev.type === "model") {
            if (!step.announced && ev.provider === step.provider && ev.model === step.model) {
              step.announced = true;
              yield ev;
              continue;
            }
            const done: Step = step;
            step = null;
            await settle(done);
            step = { provider: ev.provider, model: ev.model, reservation: await reserve(ev.provider, ev.model), announced: true, used: false, usage: null, outChars: 0 };
            yield ev;
            continue;
          }
          // An HTTP error answer (or a request never made) is not billed; a call cut off or dropped
          // after it was sent may have been, so it counts at the estimate.
          if (ev.type !== "error" || ev.error.status === undefined) step.used = true;
          if (ev.type === "text") step.outChars += ev.text.length;
          else if (ev.type === "tool_call") step.outChars += ev.name.length + JSON.stringify(ev.input ?? null).length;
          else if (ev.type === "usage") {
            step.usage = { input_tokens: (step.usage?.input_tokens ?? 0) + ev.input_tokens, output_tokens: (step.usage?.output_tokens ?? 0) + ev.output_tokens };
            metrics?.inc("exoclaw_model_tokens_total", { agent: agent.id, direction: "input" }, ev.input_tokens);
            metrics?.inc("exoclaw_model_tokens_total", { agent: agent.id, direction: "output" }, ev.output_tokens);
          }
          yield ev;
        }
      } finally {
        if (step) await settle(step);
      }
    };
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
    this.recent.delete(key);
  }

  private remember(key: string, messages: ChatMessage[], limit: number): void {
    // Same window as a store read: the last `limit` messages, starting at a user message.
    const window = messages.length > limit ? messages.slice(messages.length - limit) : messages;
    const start = window.findIndex((m) => m.role === "user" && m.parts.some((p) => p.type === "text"));
    this.recent.delete(key);
    this.recent.set(key, start <= 0 ? window : window.slice(start));
    if (this.recent.size > CACHED_SESSIONS) this.recent.delete(this.recent.keys().next().value!);
  }
}
