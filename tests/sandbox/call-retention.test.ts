/**
 * A long-lived plugin process keeps nothing per call (issue 15's soak): every call to the same child
 * used to hang a reaction on the child's exit promise, so each call's timers, closures and promises
 * stayed reachable until the child died — the gateway's RSS grew with every channel webhook.
 */
import { heapStats } from "bun:jsc";
import { describe, expect, test } from "bun:test";
import { grant, pluginPath, readWasm, startTestHost } from "../helpers/plugins.ts";

/** Live Timeout objects after a full collection: each plugin call makes two (deadline, watchdog). */
const liveTimeouts = (): number => {
  Bun.gc(true);
  return heapStats().objectTypeCounts.Timeout ?? 0;
};

describe("plugin process memory", () => {
  test("2,000 calls to one long-lived child leave no per-call timers reachable", async () => {
    await using t = startTestHost();
    await t.host.load(grant("echo"), await readWasm(pluginPath("echo")));
    // Warm-up: the child is spawned and every lazy path has run once.
    for (let i = 0; i < 50; i++) await t.host.callTool("echo", "echo", { text: `warm ${i}` });
    const before = liveTimeouts();
    for (let i = 0; i < 2_000; i++)
      expect((await t.host.callTool("echo", "echo", { text: `n${i}` })).content).toBe(`n${i}`);
    const after = liveTimeouts();
    // Retained per call, this would be about 4,000 more; a few may be alive for unrelated reasons.
    expect(after - before).toBeLessThan(100);
  });
});
