/**
 * Two runners on one SQLite file, as two gateway workers are (issue 13), in one test process so the
 * model can be held and released: a session's turns run one at a time across them (the lease), each
 * turn sees what the other runner stored (the session version invalidates the history cache), and a
 * runner whose lease was taken over cannot store its stale turn (the fencing token).
 */
import { expect, test } from "bun:test";
import { join } from "node:path";
import { AgentRunner, type SharedTurns, type TurnOutcome } from "../../src/agent/runner.ts";
import type { StreamFn } from "../../src/agent/loop.ts";
import { LiveConfig, loadConfig } from "../../src/config/index.ts";
import { silentLogger } from "../../src/lib/log.ts";
import { openSqliteStore, type Store } from "../../src/store/index.ts";
import { gatedModel, releaseNext, waitFor } from "../helpers/gated-model.ts";
import { tempDir } from "../helpers/temp.ts";

const address = (peer: string) => ({
  key: `main:ws:local:${peer}`,
  agent: "main",
  channel: "ws",
  account: "local",
  peer,
  thread: null,
});

function rig(opts: { leaseMs?: number } = {}) {
  const home = tempDir();
  const config = loadConfig({ EXOCLAW_HOME: home.path });
  const path = join(home.path, "exoclaw.db");
  // Each "worker" has its own connection and its own clock (the test moves one forward to expire a lease).
  const clocks = [0, 0];
  const stores: Store[] = [0, 1].map((i) => openSqliteStore(path, { now: () => Date.now() + clocks[i]! }));
  const model = gatedModel();
  /** How many messages each model call was given, in call order. */
  const sizes: number[] = [];
  const stream: StreamFn = (req, signal) => {
    sizes.push(req.messages.length);
    return model.stream(req, signal);
  };
  const runners = stores.map(
    (store, i) =>
      new AgentRunner({
        store,
        live: new LiveConfig(config),
        memory: { soul: () => "", historyLimit: () => 50, recall: async () => "" },
        streamFor: () => stream,
        toolsFor: () => ({ specs: () => [], run: async () => ({ content: "no tools", is_error: true }) }),
        log: silentLogger,
        shared: { holder: `w${i}`, leaseMs: opts.leaseMs ?? 30_000, maxPollMs: 20 } satisfies SharedTurns,
      }),
  );
  const turn = (w: number, peer: string, text: string): Promise<TurnOutcome> =>
    runners[w]!.run(
      { agent: "main", address: address(peer), content: text },
      { signal: new AbortController().signal, emit: () => {} },
    );
  return {
    stores,
    clocks,
    model,
    sizes,
    turn,
    async [Symbol.asyncDispose]() {
      model.open();
      for (const r of runners) await r.idle();
      for (const s of stores) await s.close();
      home[Symbol.dispose]();
    },
  };
}

test("a session's turns on two workers run one at a time, and each sees the turns the other stored", async () => {
  await using r = rig();
  const first = r.turn(0, "s", "one");
  await waitFor(() => r.model.waiting.length === 1, "the first turn's model call");
  const second = r.turn(1, "s", "two");
  // The second worker waits for the session's lease: its model call does not start while the first runs.
  const other = r.turn(1, "elsewhere", "unrelated");
  await waitFor(() => r.model.waiting.length === 2, "the other session's call (not blocked by the lease)");
  expect(r.model.waiting.map((c) => c.text)).toEqual(["one", "unrelated"]);
  expect(await releaseNext(r.model)).toBe("one");
  expect((await first).stop_reason).toBe("end_turn");
  await releaseNext(r.model); // "unrelated"
  expect(await releaseNext(r.model)).toBe("two");
  await second;
  await other;
  // Worker 0 cached the session after its turn; worker 1 wrote since: its cache must be read again.
  const third = r.turn(0, "s", "three");
  expect(await releaseNext(r.model)).toBe("three");
  await third;
  // Calls: "one" (1 message), "unrelated" (1), "two" (one's turn + its own: 3), "three" (5).
  expect(r.sizes).toEqual([1, 1, 3, 5]);
  const history = await r.stores[0]!.history(address("s").key, { limit: 10 });
  expect(history.map((m) => `${m.role}:${(m.parts[0] as { text: string }).text}`)).toEqual([
    "user:one",
    "assistant:reply:one",
    "user:two",
    "assistant:reply:two",
    "user:three",
    "assistant:reply:three",
  ]);
  expect(r.model.peak).toBe(2); // the two sessions, never two turns of one
});

test("a worker whose lease expired and was taken over cannot store its stale turn", async () => {
  await using r = rig({ leaseMs: 30_000 });
  const stale = r.turn(0, "s", "slow");
  await waitFor(() => r.model.waiting.length === 1, "the slow turn's model call");
  // Worker 1's clock is past the lease: for it, worker 0's lease expired; it takes the session.
  r.clocks[1] = 60_000;
  const token = await r.stores[1]!.acquireLease(address("s").key, "w1", 30_000);
  expect(token).not.toBeNull();
  await releaseNext(r.model);
  await expect(stale).rejects.toThrow(/lease on session .* was taken over by another worker/);
  expect(await r.stores[0]!.history(address("s").key, { limit: 10 })).toEqual([]);
});
