/**
 * The metered stream decorator never throws: a call over budget, or one whose usage row cannot be
 * written, ends the stream with a `refused` event and no request; the turn loop turns that into the
 * same -32002 / internal error a user always saw.
 */
import { describe, expect, test } from "bun:test";
import { runTurn, type StreamFn, type TurnEvent } from "../../src/agent/loop.ts";
import { ProviderError } from "../../src/agent/provider-error.ts";
import type { ChatRequest, StreamEvent } from "../../src/agent/types.ts";
import { BudgetError, BudgetGuard, meteredStream } from "../../src/metering/index.ts";
import { createMemoryStore, type Store } from "../../src/store/index.ts";

const request: ChatRequest = {
  model: "gpt-4o",
  system: "",
  messages: [{ role: "user", parts: [{ type: "text", text: "hello" }] }],
  tools: [],
  maxTokens: 100,
};
const agent = { id: "main", provider: "openai", model: "gpt-4o" };

/** An inner stream that records whether it was pulled and whether it was closed. */
function inner(events: StreamEvent[]): { stream: StreamFn; started: () => boolean; closed: () => boolean } {
  let started = false;
  let closed = false;
  return {
    started: () => started,
    closed: () => closed,
    stream: async function* () {
      started = true;
      try {
        for (const e of events) yield e;
      } finally {
        closed = true;
      }
    },
  };
}

const collect = async (it: AsyncIterable<StreamEvent>) => {
  const out: StreamEvent[] = [];
  for await (const e of it) out.push(e);
  return out;
};
const scope = (store: Store, budgets = {}) => ({
  guard: new BudgetGuard(store, () => budgets),
  session: "s1",
  person: null,
  agent,
});
const ok: StreamEvent[] = [
  { type: "text", text: "hi" },
  { type: "usage", input_tokens: 3, output_tokens: 1 },
  { type: "done", stop_reason: "end_turn" },
];

describe("meteredStream", () => {
  test("over budget: one `refused` event with the BudgetError, no request, nothing thrown, nothing left held", async () => {
    const store = createMemoryStore();
    const up = inner(ok);
    const events = await collect(
      meteredStream(up.stream, scope(store, { daily_tokens: 10 }))(request, new AbortController().signal),
    );
    expect(events).toHaveLength(1);
    const ev = events[0]!;
    expect(ev.type).toBe("refused");
    if (ev.type !== "refused") throw new Error("unreachable");
    expect(ev.error).toBeInstanceOf(BudgetError);
    expect(ev.error.data).toMatchObject({ scope: "daily_tokens", limit: 10 });
    expect(up.started()).toBe(false);
    expect((await store.sumUsage({})).input_tokens).toBe(0);
  });

  test("a usage row that cannot be written: `refused` with an internal error, no request", async () => {
    const store: Store = {
      ...createMemoryStore(),
      recordUsage: () => Promise.reject(new Error("disk I/O error: database or disk is full")),
    };
    const up = inner(ok);
    const events = await collect(meteredStream(up.stream, scope(store))(request, new AbortController().signal));
    expect(events.map((e) => e.type)).toEqual(["refused"]);
    const first = events[0]!;
    expect(first.type === "refused" && first.error.code).toBe("internal");
    expect(up.started()).toBe(false);
  });

  test("a fallback refused at its own price: the failed step is settled unbilled, the chain is closed, the stream ends in `refused`", async () => {
    const store = createMemoryStore();
    // Ollama ($0) fails with an HTTP error, then the chain moves to GPT-4o, which the USD budget refuses.
    const up = inner([
      { type: "model", provider: "ollama", model: "llama3" },
      { type: "error", error: new ProviderError("ollama", "ollama: HTTP 500", { status: 500 }) },
      { type: "model", provider: "openai", model: "gpt-4o" },
      ...ok,
    ]);
    const s = { ...scope(store, { daily_usd: 0.0001 }), agent: { id: "main", provider: "ollama", model: "llama3" } };
    const events = await collect(meteredStream(up.stream, s)(request, new AbortController().signal));
    expect(events.map((e) => e.type)).toEqual(["model", "error", "refused"]);
    const last = events.at(-1)!;
    expect(last.type === "refused" && last.error.code).toBe("budget_exceeded");
    expect(up.closed()).toBe(true);
    expect(await store.sumUsage({})).toMatchObject({ input_tokens: 0, output_tokens: 0 });
  });

  test("in a turn: a refusal is the -32002 error event with its scope, stop_reason budget, and no answer", async () => {
    const store = createMemoryStore();
    const emitted: TurnEvent[] = [];
    const result = await runTurn(
      {
        model: "gpt-4o",
        system: "",
        maxTokens: 100,
        maxToolRounds: 1,
        history: [],
        user: { role: "user", parts: [{ type: "text", text: "hello" }] },
      },
      {
        stream: meteredStream(inner(ok).stream, scope(store, { session_tokens: 5 })),
        tools: { specs: () => [], run: async () => ({ content: "", is_error: true }) },
        signal: new AbortController().signal,
        emit: (e) => emitted.push(e),
      },
    );
    expect(result.stop_reason).toBe("budget");
    expect(result.messages.map((m) => m.role)).toEqual(["user"]);
    expect(emitted).toEqual([
      {
        event: "error",
        data: {
          code: -32002,
          message: expect.stringMatching(/^budget exceeded: session_tokens/),
          data: { scope: "session_tokens", used: 0, limit: 5 },
        },
      },
      { event: "done", data: { stop_reason: "budget" } },
    ]);
  });

  test("in a turn: a ledger that cannot be written is an internal error (-32603), stop_reason error", async () => {
    const store: Store = { ...createMemoryStore(), recordUsage: () => Promise.reject(new Error("disk full")) };
    const emitted: TurnEvent[] = [];
    const result = await runTurn(
      {
        model: "gpt-4o",
        system: "",
        maxTokens: 100,
        maxToolRounds: 1,
        history: [],
        user: { role: "user", parts: [{ type: "text", text: "hello" }] },
      },
      {
        stream: meteredStream(inner(ok).stream, scope(store)),
        tools: { specs: () => [], run: async () => ({ content: "", is_error: true }) },
        signal: new AbortController().signal,
        emit: (e) => emitted.push(e),
      },
    );
    expect(result.stop_reason).toBe("error");
    expect(emitted).toEqual([
      { event: "error", data: { code: -32603, message: "internal error" } },
      { event: "done", data: { stop_reason: "error" } },
    ]);
  });
});
