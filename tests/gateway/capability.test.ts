/**
 * The module list (src/gateway/capability.ts): a reload is all or nothing — any module's `check`
 * refusing keeps the old config everywhere — and shutdown drains, cancels what outlives the drain,
 * then stops the modules in reverse order.
 */
import { expect, test } from "bun:test";
import { LiveConfig, loadConfig } from "../../src/config/index.ts";
import { Capabilities, type Capability } from "../../src/gateway/capability.ts";
import { ConfigError } from "../../src/lib/errors.ts";
import { silentLogger } from "../../src/lib/log.ts";
import { tempDir } from "../helpers/temp.ts";

test("a refused check applies nothing; an accepted config reaches every module's reload after it is live", () => {
  using home = tempDir();
  const live = new LiveConfig(loadConfig({ EXOCLAW_HOME: home.path }));
  const seen: string[] = [];
  const a: Capability = {
    name: "a",
    reload: (next) => void seen.push(`a:${next.memory.episodic_turns}:${live.current === next}`),
  };
  const b: Capability = {
    name: "b",
    check: (next) => {
      if (next.memory.episodic_turns === 0) throw new ConfigError("b refuses");
    },
    reload: () => [{ key: "b.key", reason: "b reads it at start" }],
  };
  const modules = new Capabilities([a, b], silentLogger);
  home.file("config.toml", "[memory]\nepisodic_turns = 0\n");
  const before = live.current;
  expect(() => modules.reload(loadConfig({ EXOCLAW_HOME: home.path }), (c) => live.replace(c))).toThrow("b refuses");
  expect(live.current).toBe(before);
  expect(seen).toEqual([]);
  home.file("config.toml", "[memory]\nepisodic_turns = 3\n");
  expect(modules.reload(loadConfig({ EXOCLAW_HOME: home.path }), (c) => live.replace(c))).toEqual([
    { key: "b.key", reason: "b reads it at start" },
  ]);
  expect(seen).toEqual(["a:3:true"]);
});

test("shutdown: quiesce, then the drain, then cancel what is left, then stop in reverse order", async () => {
  const steps: string[] = [];
  let finish = () => {};
  const work = new Promise<void>((r) => (finish = r));
  const modules = new Capabilities(
    [
      { name: "store", stop: async () => void steps.push("stop store") },
      {
        name: "chat",
        quiesce: () => void steps.push("quiesce chat"),
        idle: () => work,
        cancel: () => {
          steps.push("cancel chat");
          finish();
        },
        stop: async () => void steps.push("stop chat"),
      },
    ],
    silentLogger,
  );
  const drained = await modules.shutdown(async () => void steps.push("gateway stopped"), 20, 1000);
  expect(drained).toBe(false);
  expect(steps).toEqual(["quiesce chat", "gateway stopped", "cancel chat", "stop chat", "stop store"]);
});

test("two modules of one name are refused", () => {
  expect(() => new Capabilities([{ name: "x" }, { name: "x" }], silentLogger)).toThrow("capability x listed twice");
});
