/**
 * The runner's in-memory history cache is bounded in bytes, not only in sessions (issue 15). Found
 * by the MCP fuzz's heap check: a window may hold tool results of up to 1 MiB each, and the cache
 * kept the last 1,000 sessions whatever their size — 1,000 sessions with one large tool result kept
 * about 1 GB alive. Real runner, real SQLite store, a scripted model whose every answer is 1 MiB.
 */
import { expect, test } from "bun:test";
import { join } from "node:path";
import type { StreamFn } from "../../src/agent/loop.ts";
import { AgentRunner, CACHED_CHARS } from "../../src/agent/runner.ts";
import { LiveConfig, loadConfig } from "../../src/config/index.ts";
import { silentLogger } from "../../src/lib/log.ts";
import { openSqliteStore } from "../../src/store/index.ts";
import { tempDir } from "../helpers/temp.ts";

const BIG = 1024 * 1024;
const seen: number[] = [];
const stream: StreamFn = async function* (req) {
  seen.push(req.messages.length);
  const last = req.messages.at(-1)!.parts[0] as { text: string };
  yield { type: "text", text: `${last.text}:${"x".repeat(BIG)}` };
  yield { type: "done", stop_reason: "end_turn" };
};

test("sessions with 1 MiB answers: the cache stays under its byte bound, and an evicted session's history is read from the store", async () => {
  using home = tempDir();
  const config = loadConfig({ EXOCLAW_HOME: home.path });
  const store = openSqliteStore(join(home.path, "exoclaw.db"));
  try {
    const runner = new AgentRunner({
      store,
      live: new LiveConfig(config),
      memory: { soul: () => "", historyLimit: () => 50, recall: async () => "" },
      streamFor: () => stream,
      toolsFor: () => ({ specs: () => [], run: async () => ({ content: "", is_error: true }) }),
      log: silentLogger,
    });
    const turn = (peer: string, content: string) =>
      runner.run(
        {
          agent: "main",
          address: { key: `main:ws:local:${peer}`, agent: "main", channel: "ws", account: "local", peer, thread: null },
          content,
        },
        { signal: new AbortController().signal, emit: () => {} },
      );
    const sessions = Math.ceil((CACHED_CHARS * 2) / BIG); // twice what the bound lets stay
    for (let i = 0; i < sessions; i++) expect((await turn(`p${i}`, `hi ${i}`)).stop_reason).toBe("end_turn");
    const stats = runner.cacheStats();
    expect(stats.chars).toBeLessThanOrEqual(CACHED_CHARS);
    expect(stats.sessions).toBeLessThan(sessions);
    expect(stats.sessions).toBeGreaterThan(0);
    // The first session was evicted: its next turn still sees its history (read from SQLite).
    seen.length = 0;
    await turn("p0", "again");
    expect(seen).toEqual([3]);
    // A window over the whole bound is not cached at all.
    await turn("huge", "y".repeat(CACHED_CHARS + 1));
    expect(runner.cacheStats().chars).toBeLessThanOrEqual(CACHED_CHARS);
  } finally {
    await store.close();
  }
}, 60_000);
