/**
 * A turn's abort signal is the turn's own (issue 15). It used to be AbortSignal.any([the caller's
 * signal, the runner's lifelong shutdown signal]); such a signal is kept alive, with every abort
 * listener on it, as long as it has listeners and a source that may still abort — the DOM rule — so
 * a tool that listened for cancellation and never stopped (the MCP SDK's client does, per request)
 * kept each turn's signal, closures and errors forever. Found by tests/fuzz/mcp.test.ts's heap
 * check; here with a real runner, a real SQLite store and a tool that listens the same way.
 */
import { heapStats } from "bun:jsc";
import { expect, test } from "bun:test";
import { join } from "node:path";
import type { StreamFn } from "../../src/agent/loop.ts";
import { AgentRunner } from "../../src/agent/runner.ts";
import { LiveConfig, loadConfig } from "../../src/config/index.ts";
import { silentLogger } from "../../src/lib/log.ts";
import { openSqliteStore } from "../../src/store/index.ts";
import { tempDir } from "../helpers/temp.ts";

const stream: StreamFn = async function* (req) {
  if (req.messages.at(-1)!.role === "tool") {
    yield { type: "text", text: "done" };
    return yield { type: "done", stop_reason: "end_turn" };
  }
  yield { type: "tool_call", id: "t1", name: "listen", input: {} };
  yield { type: "done", stop_reason: "tool_use" };
};
const signals = () => {
  Bun.gc(true);
  return heapStats().objectTypeCounts.AbortSignal ?? 0;
};

test("300 turns whose tool listens for abort and never stops: no turn's signal stays alive", async () => {
  using home = tempDir();
  const store = openSqliteStore(join(home.path, "exoclaw.db"));
  try {
    const runner = new AgentRunner({
      store,
      live: new LiveConfig(loadConfig({ EXOCLAW_HOME: home.path })),
      memory: { soul: () => "", historyLimit: () => 4, recall: async () => "" },
      streamFor: () => stream,
      toolsFor: () => ({
        specs: () => [{ name: "listen", description: "listens", input_schema: { type: "object" } }],
        run: async (_name: string, _input: unknown, signal?: AbortSignal) => {
          const held = new Array(100).fill(0);
          signal?.addEventListener("abort", () => void held.length); // never removed, as the SDK's
          return { content: "ok", is_error: false };
        },
      }),
      log: silentLogger,
    });
    const turn = (i: number) =>
      runner.run(
        {
          agent: "main",
          address: {
            key: `main:ws:local:p${i % 4}`,
            agent: "main",
            channel: "ws",
            account: "local",
            peer: `p${i % 4}`,
            thread: null,
          },
          content: `turn ${i}`,
        },
        { signal: new AbortController().signal, emit: () => {} },
      );
    for (let i = 0; i < 20; i++) expect((await turn(i)).text).toBe("done");
    const before = signals();
    for (let i = 0; i < 300; i++) await turn(i);
    expect(signals() - before).toBeLessThan(30);
  } finally {
    await store.close();
  }
}, 60_000);
