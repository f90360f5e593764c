import { expect, test } from "bun:test";
import type { StreamFn } from "../../src/agent/loop.ts";
import type { ChatRequest } from "../../src/agent/types.ts";
import { startTestGateway } from "../helpers/gateway.ts";
import { openSocket } from "../helpers/ws.ts";

type Msg = Record<string, any>;

test("facts saved with memory_save are recalled for the same person only, and found by memory.search", async () => {
  const seen: ChatRequest[] = [];
  const stream: StreamFn = async function* (req) {
    seen.push(structuredClone(req));
    const last = req.messages.at(-1)!;
    const text = (last.parts[0] as { text?: string }).text ?? "";
    if (last.role === "user" && text.startsWith("remember:")) {
      yield { type: "tool_call", id: `t${seen.length}`, name: "memory_save", input: { fact: text.slice(9).trim() } };
      yield { type: "done", stop_reason: "tool_use" };
      return;
    }
    yield { type: "text", text: "noted" };
    yield { type: "done", stop_reason: "end_turn" };
  };
  await using gw = await startTestGateway({ streamFor: () => stream });
  await using ws = await openSocket(gw.wsUrl);
  expect(seen.length).toBe(0);
  await ws.call("chat.send", { content: "remember: Ada likes green tea", peer: "ada" });
  expect(seen[0]!.tools.map((t) => t.name)).toEqual(["memory_save", "memory_search"]);
  expect(seen[1]!.messages.at(-1)!.parts[0]).toMatchObject({
    type: "tool_result",
    content: "remembered",
    is_error: false,
  });

  // A later conversation with Ada (another thread) recalls it; Grace's does not.
  await ws.call("chat.send", { content: "Which tea should I make?", peer: "ada", thread: "t2" });
  expect(seen.at(-1)!.system).toContain("What you remember about this person:\n- Ada likes green tea");
  await ws.call("chat.send", { content: "Which tea should I make?", peer: "grace" });
  expect(seen.at(-1)!.system).not.toContain("green tea");

  const found = ((await ws.call("memory.search", { query: "tea" })) as Msg).result.facts;
  expect(found.map((f: Msg) => [f.person, f.text])).toEqual([["ws:local:ada", "Ada likes green tea"]]);
  expect(((await ws.call("memory.search", { query: "tea", person: "ws:local:grace" })) as Msg).result.facts).toEqual(
    [],
  );
});

test("with [memory] semantic = false there are no memory tools and nothing is recalled", async () => {
  const seen: ChatRequest[] = [];
  const stream: StreamFn = async function* (req) {
    seen.push(req);
    yield { type: "done", stop_reason: "end_turn" };
  };
  await using gw = await startTestGateway({ toml: "[memory]\nsemantic = false\n", streamFor: () => stream });
  await gw.store.addFact("main", "ws:local:main", "likes tea");
  await using ws = await openSocket(gw.wsUrl);
  await ws.call("chat.send", { content: "tea?" });
  expect(seen[0]!.tools).toEqual([]);
  expect(seen[0]!.system).toBe("");
});
