/**
 * The memory module (src/memory/module.ts) decides what a turn remembers under the live config: a
 * reload that turns `[memory] semantic` off takes the tools and the recall away at the next turn,
 * `episodic_turns` sets how much history is read, and facts stay per person (a sender-less group post
 * gets none, its plugin state the group's labelled scope). Real sqlite store, real config loading.
 */
import { describe, expect, test } from "bun:test";
import { join } from "node:path";
import { LiveConfig, loadConfig } from "../../src/config/index.ts";
import { MemoryModule } from "../../src/memory/index.ts";
import { openSqliteStore } from "../../src/store/index.ts";
import { tempDir } from "../helpers/temp.ts";

const session = {
  key: "main:telegram:bot1:42",
  agent: "main",
  channel: "telegram",
  account: "bot1",
  peer: "42",
  thread: null,
};

describe("memory module", () => {
  test("a reload of [memory] applies at the next turn: tools, recall and the history read follow it", async () => {
    using home = tempDir();
    const env = { EXOCLAW_HOME: home.path };
    home.file("config.toml", "[memory]\nsemantic = true\nepisodic_turns = 5\n");
    const live = new LiveConfig(loadConfig(env));
    const store = openSqliteStore(join(home.path, "exoclaw.db"));
    try {
      const memory = new MemoryModule(store, live);
      const agent = live.current.agents[0]!;
      const tools = memory.tools(agent, session);
      expect(tools.map((t) => t.spec.name)).toEqual(["memory_save", "memory_search"]);
      expect(await tools[0]!.run({ fact: "likes green tea" })).toEqual({ content: "remembered", is_error: false });
      expect(await memory.recall(agent, session, "which tea?")).toBe(
        "What you remember about this person:\n- likes green tea",
      );
      expect(memory.historyLimit()).toBe(20);

      home.file("config.toml", "[memory]\nsemantic = false\nepisodic_turns = 1\n");
      live.replace(loadConfig(env));
      expect(memory.tools(agent, session)).toEqual([]);
      expect(await memory.recall(agent, session, "which tea?")).toBe("");
      // At least 8 messages, whatever the setting: a tool round needs room.
      expect(memory.historyLimit()).toBe(8);
    } finally {
      await store.close();
    }
  });

  test("facts belong to the speaker: another sender in the same chat, and a sender-less group post, see none", async () => {
    using home = tempDir();
    const live = new LiveConfig(loadConfig({ EXOCLAW_HOME: home.path }));
    const store = openSqliteStore(join(home.path, "exoclaw.db"));
    try {
      const memory = new MemoryModule(store, live);
      const agent = live.current.agents[0]!;
      await memory.tools(agent, session, "telegram:bot1:ada")[0]!.run({ fact: "Ada likes green tea" });
      expect(await memory.recall(agent, session, "tea", "telegram:bot1:ada")).toContain("Ada likes green tea");
      expect(await memory.recall(agent, session, "tea", "telegram:bot1:grace")).toBe("");
      expect(await memory.recall(agent, session, "tea")).toBe(""); // the chat's own person (peer 42)
      // A group post without a sender: no memory tools, no recall, plugin state in the group's scope.
      expect(memory.tools(agent, session, null)).toEqual([]);
      expect(await memory.recall(agent, session, "tea", null)).toBe("");
      expect(memory.stateScope(session, null)).toBe("group:telegram:bot1:42");
      expect(memory.stateScope(session, "telegram:bot1:ada")).toBe("telegram:bot1:ada");
      expect(memory.stateScope(null)).toBe("");
    } finally {
      await store.close();
    }
  });
});
