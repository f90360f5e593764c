/**
 * Runs chat turns for sessions: loads bounded history from the store, runs the loop with the
 * agent's provider and tools, and stores what the turn added in one transaction. Turns of one
 * session run one at a time, in arrival order; different sessions run concurrently.
 */
import type { AgentConfig } from "../config/index.ts";
import { ExoError } from "../lib/errors.ts";
import type { Logger } from "../lib/log.ts";
import type { Metrics } from "../lib/metrics.ts";
import { type BudgetGuard, costOf } from "../metering/index.ts";
import type { SessionAddress, Store, StoredMessage } from "../store/index.ts";
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
  /** Budgets checked before every model call (fail closed); absent = unlimited. */
  budget?: BudgetGuard;
  /** The agent's persona (SOUL.md), put first in its system prompt; "" for none. */
  soul?: (agent: AgentConfig) => string;
  /** What the agent remembers that bears on this message, for the system prompt; "" for nothing. */
  recall?: (agent: AgentConfig, session: SessionAddress, message: string, person?: string | null) => Promise<string>;
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
   * Whose semantic memory the turn reads and writes: the message's sender (a channel sets it).
   * Absent: the person of the session's address; null: nobody (a group message without a sender).
   */
  person?: string | null;
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

/** Sessions whose recent history stays in memory between turns (least recently used evicted). */
const CACHED_SESSIONS = 1000;

export class AgentRunner {
  private readonly queues = new Map<string, Promise<unknown>>();
  /**
   * Recent history of active sessions, so a turn does not re-read and re-parse it from the store.
   * The runner is the only writer of a session's messages while the gateway runs (turns of a session
   * are serialized here); `forget` drops an entry when something else changes the session.
   */
  private readonly recent = new Map<string, ChatMessage[]>();

  constructor(private readonly deps: RunnerDeps) {}

  /** Runs one turn after the session's earlier turns. Throws ExoError("not_found") for an unknown agent. */
  run(req: TurnRequest, opts: { signal: AbortSignal; emit: (e: TurnEvent) => void }): Promise<TurnOutcome> {
    const agent = this.deps.agent(req.agent);
    if (!agent) return Promise.reject(new ExoError("not_found", `no agent ${req.agent}`, { data: { agent: req.agent } }));
    const key = req.address.key;
    const previous = this.queues.get(key) ?? Promise.resolve();
    const next = previous.catch(() => {}).then(() => this.turn(agent, req, opts));
    this.queues.set(key, next);
    void next.finally(() => {
      if (this.queues.get(key) === next) this.queues.delete(key);
    });
    return next;
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
        stream: this.metered(agent, req.history ? null : key, this.deps.streamFor(agent)),
        tools: this.deps.toolsFor(agent, req.history ? null : req.address, req.person),
        signal: opts.signal,
        emit: opts.emit,
      },
    );
    this.deps.metrics?.inc("exoclaw_chat_turns_total", { agent: agent.id, stop_reason: result.stop_reason });
    const meta = { provider: agent.provider, model: agent.model, stop_reason: result.stop_reason };
    const last = result.messages.length - 1;
    if (!req.history) {
      await store.appendMessages(
        req.address,
        result.messages.map((m, i) => (i === last && m.role !== "user" ? { ...m, meta } : m)),
      ).catch((e: unknown) => {
        this.recent.delete(key);
        throw e;
      });
      this.remember(key, [...history, ...result.messages.map((m) => ({ role: m.role, parts: m.parts }))], limit);
    }
    if (result.error && result.stop_reason === "error") {
      this.deps.log.warn("turn failed", { session: req.address.key, agent: agent.id, error: result.error.message });
    }
    return { ...result, session: req.address.key, agent: agent.id };
  }

  /**
   * Wraps a model call: reserves a budget estimate first (throws BudgetError, no call made), records
   * the call's usage with its cost from the provider's own counts, then releases the reservation —
   * only after the usage is stored, so concurrent turns never both slip under a limit.
   */
  private metered(agent: AgentConfig, session: string | null, inner: StreamFn): StreamFn {
    const { store, budget, metrics, log } = this.deps;
    return async function* (req, signal) {
      // Estimate: about 4 characters a token for the prompt, and the whole max_tokens for the answer.
      const promptChars = () => req.system.length + req.messages.reduce((n, m) => n + JSON.stringify(m.parts).length, 0);
      const reservation = budget?.active()
        ? await budget.reserve({ session, provider: agent.provider, model: agent.model, inputTokens: Math.ceil(promptChars() / 4), outputTokens: req.maxTokens })
        : null;
      const writes: Promise<void>[] = [];
      try {
        for await (const ev of inner(req, signal)) {
          if (ev.type === "usage") {
            metrics?.inc("exoclaw_model_tokens_total", { agent: agent.id, direction: "input" }, ev.input_tokens);
            metrics?.inc("exoclaw_model_tokens_total", { agent: agent.id, direction: "output" }, ev.output_tokens);
            writes.push(
              store
                .recordUsage({ at: Date.now(), session, agent: agent.id, provider: agent.provider, model: agent.model, input_tokens: ev.input_tokens, output_tokens: ev.output_tokens, cost_usd: costOf(agent.provider, agent.model, ev.input_tokens, ev.output_tokens) })
                .catch((err: unknown) => log.warn("usage not recorded", { error: err instanceof Error ? err.message : String(err) })),
            );
          }
          yield ev;
        }
      } finally {
        await Promise.all(writes);
        reservation?.release();
      }
    };
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
