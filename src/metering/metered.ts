/**
 * The metered stream decorator (SPEC §10): wraps an agent's stream function so every model call is
 * reserved against the budgets and written ahead in the usage ledger before its request, and settled
 * when it ends, however it ends. Like every stream function it never throws: when a call may not be
 * made — over budget (BudgetError), or its usage row cannot be written (StoreError, disk full) — the
 * stream ends with a `refused` event carrying the error, and no request is sent.
 */
import type { StreamEvent, StreamFn } from "../agent/index.ts";
import { ExoError } from "../lib/errors.ts";
import type { Metrics } from "../lib/metrics.ts";
import type { BudgetGuard, Reservation } from "./budget.ts";

export interface MeterScope {
  guard: BudgetGuard;
  /** The session billed; null for a stateless call. */
  session: string | null;
  /** The person billed (per-person budgets); null for nobody. */
  person: string | null;
  /** The agent calling and its own provider and model (the chain's first step). */
  agent: { id: string; provider: string; model: string };
  metrics?: Metrics | undefined;
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

const refusal = (e: unknown): StreamEvent => ({
  type: "refused",
  error: e instanceof ExoError ? e : new ExoError("internal", "the usage ledger could not be written", { cause: e }),
});

/**
 * `inner`, metered. Before the request: reserves an estimate against every budget and writes it
 * ahead as a pending usage row (refused: a `refused` event ends the stream, no request made). Each
 * fallback step announces its model first (`model` event): the step before is settled and a new
 * reservation is made at the answering model's price before its request is sent. When the stream
 * ends, however it ends, the step's row is settled to the provider's counts, or — when they never
 * came (cancelled, dropped) — to the prompt estimate plus the output counted locally. An HTTP error
 * answer (or a request never made) is not billed.
 */
export function meteredStream(inner: StreamFn, scope: MeterScope): StreamFn {
  const { guard, session, person, agent, metrics } = scope;
  return async function* (req, signal) {
    // Estimate: everything the request carries — the tool schemas too — at 3 UTF-8 bytes a token
    // (about right for CJK text, ~1 token a character; generous for English), plus all of max_tokens.
    let promptBytes = Buffer.byteLength(req.system);
    for (const m of req.messages) promptBytes += partsBytes(m.parts);
    if (req.tools.length > 0) promptBytes += Buffer.byteLength(JSON.stringify(req.tools));
    const inputTokens = Math.ceil(promptBytes / 3);
    const reserve = (provider: string, model: string) =>
      guard.reserve({ session, person, agent: agent.id, provider, model, inputTokens, outputTokens: req.maxTokens });
    // `announced`: the step's model event came (its request is next); `used`: the request may have
    // been billed — it answered something, or was cut off after it was sent.
    type Step = {
      provider: string;
      model: string;
      reservation: Reservation;
      announced: boolean;
      used: boolean;
      usage: { input_tokens: number; output_tokens: number } | null;
      outChars: number;
    };
    const open = async (provider: string, model: string, announced: boolean): Promise<Step | StreamEvent> => {
      try {
        return {
          provider,
          model,
          reservation: await reserve(provider, model),
          announced,
          used: false,
          usage: null,
          outChars: 0,
        };
      } catch (e) {
        return refusal(e);
      }
    };
    const first = await open(agent.provider, agent.model, false);
    if ("type" in first) return yield first;
    let step: Step | null = first;
    const settle = async (s: Step) => {
      if (s.usage) await s.reservation.settle(s.usage, "final");
      else if (s.used)
        await s.reservation.settle(
          { input_tokens: inputTokens, output_tokens: Math.ceil(s.outChars / 4) },
          "estimated",
        );
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
          const next = await open(ev.provider, ev.model, true);
          if ("type" in next) return yield next;
          step = next;
          yield ev;
          continue;
        }
        if (ev.type !== "error" || ev.error.status === undefined) step.used = true;
        if (ev.type === "text") step.outChars += ev.text.length;
        else if (ev.type === "tool_call") step.outChars += ev.name.length + JSON.stringify(ev.input ?? null).length;
        else if (ev.type === "usage") {
          step.usage = {
            input_tokens: (step.usage?.input_tokens ?? 0) + ev.input_tokens,
            output_tokens: (step.usage?.output_tokens ?? 0) + ev.output_tokens,
          };
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
