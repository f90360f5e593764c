import { describe, expect, test } from "bun:test";
import { runTurn, type StreamFn, type ToolBox, type TurnEvent } from "../../src/agent/loop.ts";
import { ProviderError } from "../../src/agent/provider-error.ts";
import type { ChatRequest, StreamEvent } from "../../src/agent/types.ts";

/** A scripted stream: one list of events per round; records each request it was given. */
function scripted(rounds: StreamEvent[][]): { stream: StreamFn; requests: ChatRequest[] } {
  const requests: ChatRequest[] = [];
  return {
    requests,
    stream: async function* (req, signal) {
      requests.push(structuredClone(req));
      for (const ev of rounds[requests.length - 1] ?? [{ type: "done", stop_reason: "end_turn" }]) {
        if (signal.aborted) {
          yield { type: "error", error: new ProviderError("anthropic", "anthropic: aborted", { reason: "aborted" }) };
          return;
        }
        yield ev;
        await Bun.sleep(0);
      }
    },
  };
}

const tools = (impl: Record<string, (input: unknown) => string> = {}): ToolBox & { calls: string[] } => {
  const calls: string[] = [];
  return {
    calls,
    specs: () => Object.keys(impl).map((name) => ({ name, description: name, input_schema: { type: "object" } })),
    run: async (name, input) => {
      calls.push(name);
      const f = impl[name];
      return f ? { content: f(input), is_error: false } : { content: `unknown tool: ${name}`, is_error: true };
    },
  };
};

const input = (over = {}) => ({
  model: "m",
  system: "be brief",
  maxTokens: 100,
  maxToolRounds: 3,
  history: [{ role: "user" as const, parts: [{ type: "text" as const, text: "earlier" }] }],
  user: { role: "user" as const, parts: [{ type: "text" as const, text: "weather in Oslo?" }] },
  ...over,
});

async function turn(rounds: StreamEvent[][], box = tools(), over = {}, signal = new AbortController().signal) {
  const s = scripted(rounds);
  const events: TurnEvent[] = [];
  const result = await runTurn(input(over), { stream: s.stream, tools: box, signal, emit: (e) => events.push(e) });
  return { result, events, requests: s.requests, box };
}

describe("the turn loop", () => {
  test("text only: one round, end_turn, usage summed, history passed through", async () => {
    const { result, events, requests } = await turn([
      [
        { type: "text", text: "Cold " },
        { type: "text", text: "and clear." },
        { type: "usage", input_tokens: 10, output_tokens: 4 },
        { type: "done", stop_reason: "end_turn" },
      ],
    ]);
    expect(result).toMatchObject({
      text: "Cold and clear.",
      stop_reason: "end_turn",
      usage: { input_tokens: 10, output_tokens: 4 },
    });
    expect(events.map((e) => e.event)).toEqual(["text", "text", "usage", "done"]);
    expect(requests[0]!.messages.map((m) => (m.parts[0] as { text: string }).text)).toEqual([
      "earlier",
      "weather in Oslo?",
    ]);
    expect(requests[0]!.system).toBe("be brief");
    expect(result.messages).toEqual([
      { role: "user", parts: [{ type: "text", text: "weather in Oslo?" }] },
      { role: "assistant", parts: [{ type: "text", text: "Cold and clear." }] },
    ]);
  });

  test("a two-round tool loop feeds results back in provider-neutral form", async () => {
    const box = tools({ weather: (i) => `sunny in ${(i as { city: string }).city}`, time: () => "noon" });
    const { result, events, requests } = await turn(
      [
        [
          { type: "text", text: "Checking." },
          { type: "tool_call", id: "t1", name: "weather", input: { city: "Oslo" } },
          { type: "tool_call", id: "t2", name: "time", input: {} },
          { type: "usage", input_tokens: 5, output_tokens: 5 },
          { type: "done", stop_reason: "tool_use" },
        ],
        [
          { type: "text", text: "Sunny at noon." },
          { type: "usage", input_tokens: 20, output_tokens: 3 },
          { type: "done", stop_reason: "end_turn" },
        ],
      ],
      box,
    );
    expect(result).toMatchObject({
      text: "Checking.Sunny at noon.",
      stop_reason: "end_turn",
      usage: { input_tokens: 25, output_tokens: 8 },
    });
    expect(box.calls).toEqual(["weather", "time"]);
    expect(requests).toHaveLength(2);
    expect(requests[0]!.tools.map((t) => t.name)).toEqual(["weather", "time"]);
    expect(requests[1]!.messages.slice(2)).toEqual([
      {
        role: "assistant",
        parts: [
          { type: "text", text: "Checking." },
          { type: "tool_use", id: "t1", name: "weather", input: { city: "Oslo" } },
          { type: "tool_use", id: "t2", name: "time", input: {} },
        ],
      },
      {
        role: "tool",
        parts: [
          { type: "tool_result", tool_use_id: "t1", content: "sunny in Oslo", is_error: false },
          { type: "tool_result", tool_use_id: "t2", content: "noon", is_error: false },
        ],
      },
    ]);
    expect(events.map((e) => e.event)).toEqual([
      "text",
      "tool_use",
      "tool_use",
      "usage",
      "tool_result",
      "tool_result",
      "text",
      "usage",
      "done",
    ]);
    expect(result.messages).toHaveLength(4);
  });

  test("an unknown tool is an error result the model sees, not a crash", async () => {
    const { result, requests } = await turn([
      [
        { type: "tool_call", id: "x", name: "rm_rf", input: {} },
        { type: "done", stop_reason: "tool_use" },
      ],
      [
        { type: "text", text: "I cannot." },
        { type: "done", stop_reason: "end_turn" },
      ],
    ]);
    expect(result.stop_reason).toBe("end_turn");
    expect(requests[1]!.messages.at(-1)).toEqual({
      role: "tool",
      parts: [{ type: "tool_result", tool_use_id: "x", content: "unknown tool: rm_rf", is_error: true }],
    });
  });

  test("max_tool_rounds stops the loop and leaves well-formed history", async () => {
    const call: StreamEvent[] = [
      { type: "tool_call", id: "c", name: "t", input: {} },
      { type: "done", stop_reason: "tool_use" },
    ];
    const { result, requests, box } = await turn([call, call, call], tools({ t: () => "ok" }), { maxToolRounds: 1 });
    expect(result.stop_reason).toBe("max_tool_rounds");
    expect(requests).toHaveLength(2);
    expect(box.calls).toEqual(["t"]);
    expect(result.messages.at(-1)).toEqual({
      role: "tool",
      parts: [{ type: "tool_result", tool_use_id: "c", content: "not run: max_tool_rounds reached", is_error: true }],
    });
  });

  test("a provider error ends the turn with stop_reason error and an error event; partial text is kept", async () => {
    const err = new ProviderError("openai", "openai: overloaded (529)", { status: 529, retryable: true });
    const { result, events } = await turn([
      [
        { type: "text", text: "Part" },
        { type: "error", error: err },
      ],
    ]);
    expect(result.stop_reason).toBe("error");
    expect(result.error).toBe(err);
    expect(events.at(-2)).toEqual({
      event: "error",
      data: { code: -32003, message: "openai: overloaded (529)", provider: "openai" },
    });
    expect(result.messages.at(-1)).toEqual({ role: "assistant", parts: [{ type: "text", text: "Part" }] });
  });

  test("an aborted signal ends the turn as cancelled", async () => {
    const ac = new AbortController();
    const s = scripted([
      [
        { type: "text", text: "a" },
        { type: "text", text: "b" },
        { type: "text", text: "c" },
        { type: "done", stop_reason: "end_turn" },
      ],
    ]);
    const events: TurnEvent[] = [];
    const result = await runTurn(input(), {
      stream: s.stream,
      tools: tools(),
      signal: ac.signal,
      emit: (e) => (events.push(e), e.event === "text" && ac.abort()),
    });
    expect(result.stop_reason).toBe("cancelled");
    expect(events.filter((e) => e.event === "text")).toHaveLength(1);
    expect(events.at(-1)).toEqual({ event: "done", data: { stop_reason: "cancelled" } });
  });
});
