/**
 * The contract of conversations (sessions and messages): every implementation of the port runs it (tests/store/sqlite.test.ts,
 * memory.test.ts; later the NATS store). `make` returns a fresh, empty implementation and a disposer;
 * the clock is injected so ordering by time is deterministic.
 */
import type { NewMessage } from "../../../src/core/index.ts";
import { describe, expect, test } from "bun:test";
import type { ConversationStore } from "../../../src/store/index.ts";
import { type MakeHarness, addr, user } from "./harness.ts";

export function conversationsContract(name: string, make: MakeHarness<ConversationStore>): void {
  describe(`Conversations contract: ${name}`, () => {
    test("appends messages with gapless seq and reads them back in order, all part kinds intact", async () => {
      await using h = await make();
      const s = addr("42");
      const first = await h.store.appendMessages(s, [user("hi ✓ 🦀")]);
      expect(first.map((m) => m.seq)).toEqual([1]);
      const turn: NewMessage[] = [
        {
          role: "assistant",
          parts: [
            { type: "text", text: "let me look" },
            { type: "tool_use", id: "t1", name: "weather", input: { city: "Paris", n: [1, 2] } },
          ],
          meta: { provider: "anthropic" },
        },
        { role: "tool", parts: [{ type: "tool_result", tool_use_id: "t1", content: "sunny", is_error: false }] },
        { role: "assistant", parts: [{ type: "text", text: "It is sunny." }] },
      ];
      const stored = await h.store.appendMessages(s, turn);
      expect(stored.map((m) => m.seq)).toEqual([2, 3, 4]);
      const hist = await h.store.history(s.key, { limit: 10 });
      expect(hist.map((m) => m.seq)).toEqual([1, 2, 3, 4]);
      expect(hist[0]!.parts).toEqual([{ type: "text", text: "hi ✓ 🦀" }]);
      expect(hist.slice(1).map(({ role, parts, meta }) => (meta ? { role, parts, meta } : { role, parts }))).toEqual(
        turn,
      );
      expect(hist.every((m) => m.session === s.key && typeof m.created_at === "number")).toBe(true);
    });

    test("the caller's objects are not aliased by the store", async () => {
      await using h = await make();
      const m = user("original");
      await h.store.appendMessages(addr("1"), [m]);
      (m.parts[0] as { text: string }).text = "mutated";
      expect((await h.store.history(addr("1").key, { limit: 1 }))[0]!.parts).toEqual([
        { type: "text", text: "original" },
      ]);
    });

    test("sessions record their address, counts and times", async () => {
      await using h = await make();
      const s = addr(null, { thread: "th9" });
      expect(await h.store.getSession(s.key)).toBeNull();
      await h.store.appendMessages(s, [user("a")]);
      h.tick();
      await h.store.appendMessages(s, [user("b"), user("c")]);
      const info = await h.store.getSession(s.key);
      expect(info).toMatchObject({
        key: s.key,
        agent: "main",
        channel: "telegram",
        account: "bot1",
        peer: null,
        thread: "th9",
        message_count: 3,
      });
      expect(info!.updated_at).toBeGreaterThan(info!.created_at);
      expect(await h.store.countSessions()).toBe(1);
    });

    test("history pages backwards from the newest with `before`", async () => {
      await using h = await make();
      const s = addr("p");
      await h.store.appendMessages(
        s,
        Array.from({ length: 25 }, (_, i) => user(`m${i + 1}`)),
      );
      const last = await h.store.history(s.key, { limit: 10 });
      expect(last.map((m) => m.seq)).toEqual([16, 17, 18, 19, 20, 21, 22, 23, 24, 25]);
      const prev = await h.store.history(s.key, { limit: 10, before: 16 });
      expect(prev.map((m) => m.seq)).toEqual([6, 7, 8, 9, 10, 11, 12, 13, 14, 15]);
      const first = await h.store.history(s.key, { limit: 10, before: 6 });
      expect(first.map((m) => m.seq)).toEqual([1, 2, 3, 4, 5]);
      expect(await h.store.history(s.key, { limit: 10, before: 1 })).toEqual([]);
      expect(await h.store.history("nope:x:y:main", { limit: 10 })).toEqual([]);
    });

    test("list pages through sessions newest first, filtered by agent and channel, with a stable cursor", async () => {
      await using h = await make();
      for (let i = 0; i < 7; i++) {
        await h.store.appendMessages(
          addr(`u${i}`, { channel: i % 2 ? "discord" : "telegram", agent: i < 5 ? "main" : "helper" }),
          [user("x")],
        );
        h.tick();
      }
      const p1 = await h.store.listSessions({ limit: 3 });
      expect(p1.sessions.map((s) => s.peer)).toEqual(["u6", "u5", "u4"]);
      expect(p1.next_cursor).toBeString();
      const p2 = await h.store.listSessions({ limit: 3, cursor: p1.next_cursor! });
      expect(p2.sessions.map((s) => s.peer)).toEqual(["u3", "u2", "u1"]);
      const p3 = await h.store.listSessions({ limit: 3, cursor: p2.next_cursor! });
      expect(p3.sessions.map((s) => s.peer)).toEqual(["u0"]);
      expect(p3.next_cursor).toBeNull();
      expect((await h.store.listSessions({ limit: 50, agent: "helper" })).sessions.map((s) => s.peer)).toEqual([
        "u6",
        "u5",
      ]);
      expect(
        (await h.store.listSessions({ limit: 50, channel: "discord", agent: "main" })).sessions.map((s) => s.peer),
      ).toEqual(["u3", "u1"]);
      await expect(h.store.listSessions({ limit: 3, cursor: "garbage" })).rejects.toThrow(/cursor/);
    });

    test("sessions with equal update times still page without loss or repeats", async () => {
      await using h = await make();
      for (let i = 0; i < 10; i++) await h.store.appendMessages(addr(`same${i}`), [user("x")]);
      const seen: string[] = [];
      let cursor: string | undefined;
      do {
        const page = await h.store.listSessions({ limit: 4, ...(cursor ? { cursor } : {}) });
        seen.push(...page.sessions.map((s) => s.key));
        cursor = page.next_cursor ?? undefined;
      } while (cursor);
      expect(seen).toHaveLength(10);
      expect(new Set(seen).size).toBe(10);
    });

    test("reset forgets a session and its messages; other sessions stay", async () => {
      await using h = await make();
      await h.store.appendMessages(addr("a"), [user("1"), user("2")]);
      await h.store.appendMessages(addr("b"), [user("3")]);
      expect(await h.store.resetSession(addr("a").key)).toBe(2);
      expect(await h.store.getSession(addr("a").key)).toBeNull();
      expect(await h.store.history(addr("a").key, { limit: 10 })).toEqual([]);
      expect(await h.store.resetSession(addr("a").key)).toBeNull();
      expect((await h.store.history(addr("b").key, { limit: 10 })).length).toBe(1);
      const again = await h.store.appendMessages(addr("a"), [user("new")]);
      expect(again[0]!.seq).toBe(1);
    });

    test("1,000 concurrent appends to one session are all present, in call order", async () => {
      await using h = await make();
      const s = addr("busy");
      await Promise.all(Array.from({ length: 1000 }, (_, i) => h.store.appendMessages(s, [user(`n${i}`)])));
      const hist = await h.store.history(s.key, { limit: 2000 });
      expect(hist).toHaveLength(1000);
      expect(hist.map((m) => (m.parts[0] as { text: string }).text)).toEqual(
        Array.from({ length: 1000 }, (_, i) => `n${i}`),
      );
      expect(hist.map((m) => m.seq)).toEqual(Array.from({ length: 1000 }, (_, i) => i + 1));
      expect((await h.store.getSession(s.key))!.message_count).toBe(1000);
    });
  });
}
