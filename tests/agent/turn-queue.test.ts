/**
 * The turn slots of the runner (issue 10) with a real SQLite store and a model that answers only
 * when the test lets it: at most `maxRunning` turns at once, round-robin across sessions, in order
 * within one, a bounded queue that refuses with a retry hint, and cancellation that takes a waiting
 * turn out without running it.
 */
import { expect, test } from "bun:test";
import { join } from "node:path";
import { AgentRunner, type RunOptions, type TurnOutcome } from "../../src/agent/runner.ts";
import { BusyError, type TurnLimits } from "../../src/agent/turn-queue.ts";
import { LiveConfig, loadConfig } from "../../src/config/index.ts";
import { silentLogger } from "../../src/lib/log.ts";
import { createMetrics } from "../../src/lib/metrics.ts";
import { openSqliteStore } from "../../src/store/index.ts";
import { gatedModel, releaseNext, waitFor } from "../helpers/gated-model.ts";
import { tempDir } from "../helpers/temp.ts";

function rig(limits: TurnLimits) {
  const home = tempDir();
  const config = loadConfig({ EXOCLAW_HOME: home.path });
  const store = openSqliteStore(join(home.path, "exoclaw.db"));
  const model = gatedModel();
  const metrics = createMetrics();
  const live = new LiveConfig({
    ...config,
    gateway: { ...config.gateway, max_concurrent_turns: limits.maxRunning, max_queued_turns: limits.maxQueued },
  });
  const runner = new AgentRunner({
    store,
    live,
    memory: { soul: () => "", historyLimit: () => 50, recall: async () => "" },
    streamFor: () => model.stream,
    toolsFor: () => ({ specs: () => [], run: async () => ({ content: "no tools", is_error: true }) }),
    log: silentLogger,
    metrics,
  });
  const turn = (peer: string, text: string, opts: Partial<RunOptions> = {}): Promise<TurnOutcome> =>
    runner.run(
      {
        agent: "main",
        address: { key: `main:ws:local:${peer}`, agent: "main", channel: "ws", account: "local", peer, thread: null },
        content: text,
      },
      { signal: new AbortController().signal, emit: () => {}, ...opts },
    );
  return {
    store,
    model,
    metrics,
    live,
    runner,
    turn,
    async [Symbol.asyncDispose]() {
      model.open();
      await runner.idle();
      await store.close();
      home[Symbol.dispose]();
    },
  };
}

test("round-robin: 10 sessions with one turn each are not queued behind a session with 100", async () => {
  await using r = rig({ maxRunning: 2, maxQueued: 1000 });
  const done: Promise<TurnOutcome>[] = [];
  for (let i = 0; i < 100; i++) done.push(r.turn("chatty", `chatty ${i}`));
  for (let s = 0; s < 10; s++) done.push(r.turn(`quiet${s}`, `quiet ${s}`));
  const order: string[] = [];
  while (order.length < 110) order.push(await releaseNext(r.model));
  await Promise.all(done);
  // Two slots: the chatty session holds at most one of them, the quiet ones share the other (FIFO
  // over turns would put all 100 chatty ones first).
  const lastQuiet = Math.max(...Array.from({ length: 10 }, (_, s) => order.indexOf(`quiet ${s}`)));
  expect(order.slice(0, lastQuiet).filter((t) => t.startsWith("chatty")).length).toBeLessThanOrEqual(3);
  expect(order.filter((t) => t.startsWith("chatty"))).toEqual(Array.from({ length: 100 }, (_, i) => `chatty ${i}`));
  expect(r.model.peak).toBe(2);
  expect((await r.store.history("main:ws:local:chatty", { limit: 400 })).length).toBe(200);
});

test("a session with a turn running waits its turn while other sessions take the free slots", async () => {
  await using r = rig({ maxRunning: 3, maxQueued: 10 });
  const a = [r.turn("a", "a1"), r.turn("a", "a2")];
  const b = r.turn("b", "b1");
  await waitFor(() => r.model.waiting.length === 2, "a1 and b1 running");
  expect(r.model.waiting.map((c) => c.text).sort()).toEqual(["a1", "b1"]);
  expect(r.runner.load).toEqual({ running: 2, queued: 1 });
  r.model.open();
  expect((await Promise.all([...a, b])).map((o) => o.text)).toEqual(["reply:a1", "reply:a2", "reply:b1"]);
});

test("beyond maxQueued a refusing caller gets BusyError with retry_after_ms; a waiting caller (the channels) is queued anyway", async () => {
  await using r = rig({ maxRunning: 1, maxQueued: 2 });
  const running = r.turn("p0", "first");
  const queued = [r.turn("p1", "second"), r.turn("p2", "third")];
  await waitFor(() => r.model.waiting.length === 1, "the first turn to run");
  const refused = await r.turn("p3", "fourth").then(
    () => null,
    (e: unknown) => e,
  );
  expect(refused).toBeInstanceOf(BusyError);
  expect((refused as BusyError).code).toBe("rate_limited");
  expect((refused as BusyError).data).toEqual({ retry_after_ms: expect.any(Number) });
  expect((refused as BusyError).retryAfterMs).toBeGreaterThan(0);
  expect(r.runner.refusal("main:ws:local:p4")).toBeInstanceOf(BusyError);
  const channel = r.turn("p5", "from a channel", { busy: "wait" });
  expect(r.runner.load).toEqual({ running: 1, queued: 3 });
  r.model.open();
  expect((await Promise.all([running, ...queued, channel])).map((o) => o.stop_reason)).toEqual([
    "end_turn",
    "end_turn",
    "end_turn",
    "end_turn",
  ]);
  expect(r.model.seen).not.toContain("fourth");
  const text = r.metrics.render();
  expect(text).toContain("exoclaw_turns_busy_total 2\n");
  expect(text).toContain("exoclaw_turn_wait_seconds_count 4\n");
  expect(text).toContain("exoclaw_turns_queued 0\n");
});

test("a waiting turn that is cancelled leaves the queue without running and stores nothing; cancelAll empties the queue", async () => {
  await using r = rig({ maxRunning: 1, maxQueued: 10 });
  const first = r.turn("p0", "first");
  await waitFor(() => r.model.waiting.length === 1, "the first turn to run");
  const cancel = new AbortController();
  const cancelled = r.turn("p1", "never run", { signal: cancel.signal });
  const after = r.turn("p2", "after");
  expect(r.runner.load.queued).toBe(2);
  cancel.abort();
  expect((await cancelled).stop_reason).toBe("cancelled");
  expect(r.runner.load.queued).toBe(1);
  expect(await r.store.getSession("main:ws:local:p1")).toBeNull();
  await releaseNext(r.model);
  await releaseNext(r.model);
  expect((await first).text).toBe("reply:first");
  expect((await after).text).toBe("reply:after");
  expect(r.model.seen).toEqual(["first", "after"]);

  // Shutdown: queued turns end as cancelled without a model call; idle() waits for all of them.
  const busy = r.turn("p3", "running at shutdown");
  const waiting = [r.turn("p4", "queued 1"), r.turn("p4", "queued 2"), r.turn("p5", "queued 3")];
  await waitFor(() => r.model.waiting.length === 1, "one turn running");
  r.runner.cancelAll();
  await r.runner.idle();
  expect((await Promise.all(waiting)).map((o) => o.stop_reason)).toEqual(["cancelled", "cancelled", "cancelled"]);
  expect((await busy).stop_reason).toBe("cancelled");
  // Cut off by shutdown: nothing stored (a channel message runs again at the next start; its user
  // message must not be stored twice).
  expect(await r.store.history("main:ws:local:p3", { limit: 10 })).toEqual([]);
  expect(r.model.seen).not.toContain("queued 1");
  expect(r.runner.load).toEqual({ running: 0, queued: 0 });
});

test("the limit is read live: raising it starts waiting turns at the next step", async () => {
  await using r = rig({ maxRunning: 1, maxQueued: 10 });
  const turns = ["a", "b", "c", "d"].map((p) => r.turn(p, p));
  await waitFor(() => r.model.waiting.length === 1, "one turn running");
  // A reload swaps in a config with the higher limit.
  const before = r.live.current;
  r.live.replace({ ...before, gateway: { ...before.gateway, max_concurrent_turns: 3 } });
  // The next scheduling step (a new turn arriving, or one ending) applies it.
  const e = r.turn("e", "e");
  await waitFor(() => r.model.waiting.length === 3, "three turns running");
  expect(r.runner.load).toEqual({ running: 3, queued: 2 });
  r.model.open();
  await Promise.all([...turns, e]);
  expect(r.model.peak).toBe(3);
});

test("turns that bring their own history (stateless OpenAI requests) do not queue behind each other", async () => {
  await using r = rig({ maxRunning: 4, maxQueued: 10 });
  const address = {
    key: "main:openai:local:stateless",
    agent: "main",
    channel: "openai",
    account: "local",
    peer: "stateless",
    thread: null,
  };
  const turns = ["one", "two", "three"].map((content) =>
    r.runner.run(
      { agent: "main", address, content, history: [] },
      { signal: new AbortController().signal, emit: () => {} },
    ),
  );
  await waitFor(() => r.model.waiting.length === 3, "three stateless calls at the model at once");
  r.model.open();
  expect((await Promise.all(turns)).map((t) => t.text).sort()).toEqual(["reply:one", "reply:three", "reply:two"]);
  expect(await r.store.history(address.key, { limit: 10 })).toEqual([]);
});
