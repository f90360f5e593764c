/**
 * The contract of plugin state: every implementation of the port runs it (tests/store/sqlite.test.ts,
 * memory.test.ts; later the NATS store). `make` returns a fresh, empty implementation and a disposer;
 * the clock is injected so ordering by time is deterministic.
 */
import { describe, expect, test } from "bun:test";
import type { PluginStateStore } from "../../../src/store/index.ts";
import { type MakeHarness } from "./harness.ts";

export function pluginStateContract(name: string, make: MakeHarness<PluginStateStore>): void {
  describe(`Plugin state contract: ${name}`, () => {
    test("kvStats counts a plugin's entries and UTF-8 bytes of keys plus values, and no other plugin's", async () => {
      await using h = await make();
      expect(await h.store.kvStats("weather")).toEqual({ entries: 0, bytes: 0 });
      await h.store.kvSet("weather", "city", "Zürich"); // 4 + 7 bytes
      await h.store.kvSet("weather", "k", "v"); // 2 bytes
      await h.store.kvSet("other", "city", "x".repeat(1000));
      expect(await h.store.kvStats("weather")).toEqual({ entries: 2, bytes: 13 });
      await h.store.kvSet("weather", "k", null);
      expect(await h.store.kvStats("weather")).toEqual({ entries: 1, bytes: 11 });
    });

    test("plugin kv is per plugin; null deletes", async () => {
      await using h = await make();
      await h.store.kvSet("weather", "city", "Paris");
      await h.store.kvSet("other", "city", "Oslo");
      expect(await h.store.kvGet("weather", "city")).toBe("Paris");
      expect(await h.store.kvGet("other", "city")).toBe("Oslo");
      await h.store.kvSet("weather", "city", "Lyon ✓");
      expect(await h.store.kvGet("weather", "city")).toBe("Lyon ✓");
      await h.store.kvSet("weather", "city", null);
      expect(await h.store.kvGet("weather", "city")).toBeNull();
      expect(await h.store.kvGet("weather", "missing")).toBeNull();
    });
  });
}
