/**
 * The Store contract: every implementation (memory, sqlite, later NATS KV) runs this suite.
 * `make` returns a fresh, empty store plus a disposer; the clock is injected so ordering by time
 * is deterministic.
 */
import { describe, expect, test } from "bun:test";
import type { NewMessage, Pairing, SessionAddress, Store } from "../../src/store/index.ts";

export interface StoreHarness extends AsyncDisposable {
  store: Store;
  /** Advances the injected clock. */
  tick(ms?: number): void;
}

export type MakeStore = () => Promise<StoreHarness>;

export function addr(peer: string | null, over: Partial<SessionAddress> = {}): SessionAddress {
  const a = { agent: "main", channel: "telegram", account: "bot1", peer, thread: null, ...over };
  return { ...a, key: `${a.agent}:${a.channel}:${a.account}:${a.peer ?? "main"}${a.thread ? ":" + a.thread : ""}`, ...over };
}

const user = (text: string): NewMessage => ({ role: "user", parts: [{ type: "text", text }] });

export function storeContract(name: string, make: MakeStore): void {
  describe(`Store contract: ${name}`, () => {
    test("appends messages with gapless seq and reads them back in order, all part kinds intact", async () => {
      await using h = await make();
      const s = addr("42");
      const first = await h.store.appendMessages(s, [user("hi ✓ 🦀")]);
      expect(first.map((m) => m.seq)).toEqual([1]);
      const turn: NewMessage[] = [
        { role: "assistant", parts: [{ type: "text", text: "let me look" }, { type: "tool_use", id: "t1", name: "weather", input: { city: "Paris", n: [1, 2] } }], meta: { provider: "anthropic" } },
        { role: "tool", parts: [{ type: "tool_result", tool_use_id: "t1", content: "sunny", is_error: false }] },
        { role: "assistant", parts: [{ type: "text", text: "It is sunny." }] },
      ];
      const stored = await h.store.appendMessages(s, turn);
      expect(stored.map((m) => m.seq)).toEqual([2, 3, 4]);
      const hist = await h.store.history(s.key, { limit: 10 });
      expect(hist.map((m) => m.seq)).toEqual([1, 2, 3, 4]);
      expect(hist[0]!.parts).toEqual([{ type: "text", text: "hi ✓ 🦀" }]);
      expect(hist.slice(1).map(({ role, parts, meta }) => (meta ? { role, parts, meta } : { role, parts }))).toEqual(turn);
      expect(hist.every((m) => m.session === s.key && typeof m.created_at === "number")).toBe(true);
    });

    test("the caller's objects are not aliased by the store", async () => {
      await using h = await make();
      const m = user("original");
      await h.store.appendMessages(addr("1"), [m]);
      (m.parts[0] as { text: string }).text = "mutated";
      expect((await h.store.history(addr("1").key, { limit: 1 }))[0]!.parts).toEqual([{ type: "text", text: "original" }]);
    });

    test("sessions record their address, counts and times", async () => {
      await using h = await make();
      const s = addr(null, { thread: "th9" });
      expect(await h.store.getSession(s.key)).toBeNull();
      await h.store.appendMessages(s, [user("a")]);
      h.tick();
      await h.store.appendMessages(s, [user("b"), user("c")]);
      const info = await h.store.getSession(s.key);
      expect(info).toMatchObject({ key: s.key, agent: "main", channel: "telegram", account: "bot1", peer: null, thread: "th9", message_count: 3 });
      expect(info!.updated_at).toBeGreaterThan(info!.created_at);
      expect(await h.store.countSessions()).toBe(1);
    });

    test("history pages backwards from the newest with `before`", async () => {
      await using h = await make();
      const s = addr("p");
      await h.store.appendMessages(s, Array.from({ length: 25 }, (_, i) => user(`m${i + 1}`)));
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
        await h.store.appendMessages(addr(`u${i}`, { channel: i % 2 ? "discord" : "telegram", agent: i < 5 ? "main" : "helper" }), [user("x")]);
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
      expect((await h.store.listSessions({ limit: 50, agent: "helper" })).sessions.map((s) => s.peer)).toEqual(["u6", "u5"]);
      expect((await h.store.listSessions({ limit: 50, channel: "discord", agent: "main" })).sessions.map((s) => s.peer)).toEqual(["u3", "u1"]);
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
      expect(hist.map((m) => (m.parts[0] as { text: string }).text)).toEqual(Array.from({ length: 1000 }, (_, i) => `n${i}`));
      expect(hist.map((m) => m.seq)).toEqual(Array.from({ length: 1000 }, (_, i) => i + 1));
      expect((await h.store.getSession(s.key))!.message_count).toBe(1000);
    });

    test("usage records sum by session, agent and time window; unpriced calls are counted apart", async () => {
      await using h = await make();
      const base = { agent: "main", provider: "anthropic", model: "m", input_tokens: 10, output_tokens: 5 };
      await h.store.recordUsage({ ...base, at: 1000, session: "s1", cost_usd: 0.5 });
      await h.store.recordUsage({ ...base, at: 2000, session: "s1", cost_usd: null });
      await h.store.recordUsage({ ...base, at: 3000, session: "s2", agent: "other", cost_usd: 0.25 });
      expect(await h.store.sumUsage({})).toEqual({ calls: 3, input_tokens: 30, output_tokens: 15, cost_usd: 0.75, unpriced_calls: 1 });
      expect(await h.store.sumUsage({ session: "s1" })).toMatchObject({ calls: 2, cost_usd: 0.5, unpriced_calls: 1 });
      expect(await h.store.sumUsage({ agent: "other" })).toMatchObject({ calls: 1, input_tokens: 10 });
      expect(await h.store.sumUsage({ since: 2000, until: 3000 })).toMatchObject({ calls: 1, unpriced_calls: 1 });
      expect(await h.store.sumUsage({ session: "none" })).toEqual({ calls: 0, input_tokens: 0, output_tokens: 0, cost_usd: 0, unpriced_calls: 0 });
    });

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

    test("usage rows count from the moment they are recorded or updated, by call id; person filters", async () => {
      await using h = await make();
      const row = { at: 1000, session: "s1", agent: "main", provider: "openai", model: "gpt-4o", input_tokens: 10, output_tokens: 100, cost_usd: 0.5 };
      // Not awaited: budgets read the sum right after enqueuing a pending row, before it commits.
      const pending = h.store.recordUsage({ ...row, call: "c1", status: "pending", person: "telegram:1" });
      expect(await h.store.sumUsage({})).toMatchObject({ calls: 1, input_tokens: 10, output_tokens: 100 });
      await pending;
      const settled = h.store.updateUsage("c1", { provider: "anthropic", model: "claude-sonnet-4-5", input_tokens: 7, output_tokens: 3, cost_usd: 0.01, status: "final" });
      expect(await h.store.sumUsage({})).toMatchObject({ calls: 1, input_tokens: 7, output_tokens: 3, cost_usd: 0.01 });
      await settled;
      await h.store.updateUsage("no-such-call", { provider: "x", model: "y", input_tokens: 1, output_tokens: 1, cost_usd: null, status: "final" });
      await h.store.recordUsage({ ...row, person: "telegram:2" });
      expect(await h.store.sumUsage({ person: "telegram:1" })).toMatchObject({ calls: 1, input_tokens: 7 });
      expect(await h.store.sumUsage({ person: "telegram:2" })).toMatchObject({ calls: 1, input_tokens: 10 });
      expect(await h.store.sumUsage({})).toMatchObject({ calls: 2, input_tokens: 17, unpriced_calls: 0 });
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

    test("facts are kept per agent and person, found by their words, most relevant first", async () => {
      await using h = await make();
      await h.store.addFact("main", "telegram:1", "Ada likes green tea");
      await h.store.addFact("main", "telegram:1", "Ada's cat is called Tea Leaf");
      await h.store.addFact("main", "telegram:1", "Ada works on engines");
      await h.store.addFact("main", "telegram:2", "Grace likes green tea too");
      await h.store.addFact("helper", "telegram:1", "tea facts from another agent");
      const again = await h.store.addFact("main", "telegram:1", "Ada likes green tea");
      expect(again.id).toBe((await h.store.searchFacts({ agent: "main", person: "telegram:1", query: "likes green", limit: 5 }))[0]!.id);
      const tea = await h.store.searchFacts({ agent: "main", person: "telegram:1", query: "What tea does she like? green?", limit: 5 });
      expect(tea.map((f) => f.text)[0]).toBe("Ada likes green tea");
      expect(tea.map((f) => f.text)).toContain("Ada's cat is called Tea Leaf");
      expect(tea.every((f) => f.person === "telegram:1" && f.agent === "main" && f.score > 0)).toBe(true);
      expect(await h.store.searchFacts({ agent: "main", person: "telegram:1", query: "unrelated words", limit: 5 })).toEqual([]);
      expect(await h.store.searchFacts({ agent: "main", person: "telegram:1", query: "\"; DROP TABLE facts; -- OR *", limit: 5 })).toEqual([]);
      expect((await h.store.searchFacts({ agent: "main", query: "green tea", limit: 5 })).map((f) => f.person).sort()).toEqual(["telegram:1", "telegram:1", "telegram:2"]);
      expect(await h.store.searchFacts({ agent: "main", person: "telegram:1", query: "tea", limit: 1 })).toHaveLength(1);
    });

    test("inbound messages are deduplicated by id and stay pending until completed", async () => {
      await using h = await make();
      const rec = (id: string, at: number) => ({ id, channel: "telegram", payload: JSON.stringify({ text: id }), received_at: at });
      expect(await h.store.acceptInbound(rec("telegram:1", 10))).toBe(true);
      expect(await h.store.acceptInbound(rec("telegram:1", 11))).toBe(false);
      expect(await h.store.acceptInbound(rec("telegram:2", 20))).toBe(true);
      await h.store.failInbound("telegram:1", { error: "provider down", retry_at: 100, at: 50 });
      const pending = await h.store.pendingInbound(10);
      expect(pending.map((p) => [p.id, p.attempts, p.last_error, p.next_at, p.dead_at])).toEqual([["telegram:1", 1, "provider down", 100, null], ["telegram:2", 0, null, 0, null]]);
      expect(pending[0]!.payload).toBe(JSON.stringify({ text: "telegram:1" }));
      expect(pending.map((p) => p.reply)).toEqual([null, null]);
      // The outbox: a finished turn's reply is kept with the pending message until it is sent.
      await h.store.saveInboundReply("telegram:1", "the answer ✓");
      await h.store.failInbound("telegram:1", { error: "HTTP 500", retry_at: 200, at: 150 });
      expect((await h.store.pendingInbound(10)).map((p) => [p.id, p.attempts, p.reply])).toEqual([["telegram:1", 2, "the answer ✓"], ["telegram:2", 0, null]]);
      expect(await h.store.completeInbound("telegram:1")).toBe(true);
      expect(await h.store.completeInbound("telegram:1")).toBe(false);
      expect(await h.store.completeInbound("telegram:unknown")).toBe(false);
      await h.store.saveInboundReply("telegram:1", "too late");
      await h.store.failInbound("telegram:1", { error: "too late", retry_at: null, at: 300 });
      expect((await h.store.pendingInbound(10)).map((p) => p.id)).toEqual(["telegram:2"]);
      // A retry of a completed message is still a duplicate.
      expect(await h.store.acceptInbound(rec("telegram:1", 30))).toBe(false);
      expect((await h.store.pendingInbound(1)).length).toBe(1);
    });

    test("a turn's history and its inbound reply land together; a done or unknown message is left alone", async () => {
      await using h = await make();
      const rec = (id: string) => ({ id, channel: "telegram", payload: "{}", received_at: 10 });
      await h.store.acceptInbound(rec("telegram:1"));
      await h.store.acceptInbound(rec("telegram:2"));
      await h.store.completeInbound("telegram:2");
      const answer: NewMessage = { role: "assistant", parts: [{ type: "text", text: "the answer ✓" }] };
      // Several in one tick (one group commit in sqlite): each reply goes to its own message.
      const [a, b, c] = await Promise.all([
        h.store.appendMessages(addr("42"), [user("question"), answer], { inbound: "telegram:1", text: "the answer ✓" }),
        h.store.appendMessages(addr("43"), [user("late")], { inbound: "telegram:2", text: "too late" }),
        h.store.appendMessages(addr("44"), [user("nobody's")], { inbound: "telegram:unknown", text: "x" }),
      ]);
      expect([a!.map((m) => m.seq), b!.map((m) => m.seq), c!.map((m) => m.seq)]).toEqual([[1, 2], [1], [1]]);
      expect((await h.store.history(addr("42").key, { limit: 10 })).map((m) => m.role)).toEqual(["user", "assistant"]);
      expect(await h.store.getInbound("telegram:1")).toMatchObject({ reply: "the answer ✓", attempts: 0, dead_at: null });
      // Saved, not sent: the retry loop finds it due with its reply.
      expect((await h.store.dueInbound(Number.MAX_SAFE_INTEGER, 10)).map((p) => [p.id, p.reply])).toEqual([["telegram:1", "the answer ✓"]]);
      expect(await h.store.getInbound("telegram:2")).toBeNull();
      expect(await h.store.getInbound("telegram:unknown")).toBeNull();
    });

    test("inbound backoff: each message is due at its own time; a dead-lettered one waits for a re-queue", async () => {
      await using h = await make();
      const rec = (id: string, at: number) => ({ id, channel: "slack", payload: "{}", received_at: at });
      for (const [id, at] of [["a", 10], ["b", 20], ["c", 30], ["d", 40]] as const) await h.store.acceptInbound(rec(id, at));
      // New messages await their first delivery (the intake's): not due for a retry.
      expect((await h.store.dueInbound(0, 10)).map((p) => p.id)).toEqual([]);
      await h.store.saveInboundReply("d", "answered, not sent yet");
      await h.store.failInbound("a", { error: "HTTP 500", retry_at: 5_000, at: 100 });
      await h.store.failInbound("b", { error: "ratelimited", retry_at: 2_000, at: 100 });
      await h.store.failInbound("c", { error: "HTTP 403", retry_at: null, at: 100 });
      expect((await h.store.dueInbound(1_000, 10)).map((p) => p.id)).toEqual(["d"]);
      expect((await h.store.dueInbound(2_000, 10)).map((p) => p.id)).toEqual(["d", "b"]);
      expect((await h.store.dueInbound(9_000, 1)).map((p) => p.id)).toEqual(["d"]);
      expect((await h.store.dueInbound(9_000, 10)).map((p) => p.id)).toEqual(["d", "b", "a"]);
      // The timer's next wake: the earliest due time after now (a due message is handled, not waited for).
      expect(await h.store.nextInboundAt(100)).toBe(2_000);
      expect(await h.store.nextInboundAt(2_000)).toBe(5_000);
      expect(await h.store.nextInboundAt(5_000)).toBeNull();
      expect(await h.store.countInbound()).toEqual({ pending: 3, dead: 1 });
      const dead = (await h.store.getInbound("c"))!;
      expect([dead.attempts, dead.last_error, dead.dead_at]).toEqual([1, "HTTP 403", 100]);
      // The operator re-queues it: pending again, due at once, a fresh series of attempts.
      expect(await h.store.requeueInbound("c", 7_000)).toBe(true);
      // (Re-queued with no stored reply, c is a first delivery again: the intake's.)
      expect((await h.store.dueInbound(7_000, 10)).map((p) => [p.id, p.attempts, p.dead_at])).toEqual([["d", 0, null], ["b", 1, null], ["a", 1, null]]);
      expect(await h.store.countInbound()).toEqual({ pending: 4, dead: 0 });
      // Dropping one is completing it; a done message cannot be re-queued.
      expect(await h.store.completeInbound("c")).toBe(true);
      expect(await h.store.getInbound("c")).toBeNull();
      expect(await h.store.getInbound("nope")).toBeNull();
      expect(await h.store.requeueInbound("c", 8_000)).toBe(false);
      expect(await h.store.requeueInbound("nope", 8_000)).toBe(false);
      expect(await h.store.countInbound()).toEqual({ pending: 3, dead: 0 });
    });

    test("pairings: a pending code is found by its code, approved and revoked per person, and listed by channel and status", async () => {
      await using h = await make();
      const pending = (person: string, code: string, at: number): Pairing => ({
        person, channel: person.split(":")[0]!, status: "pending", code, created_at: at, expires_at: at + 3_600_000, notified_at: at, approved_at: null,
      });
      expect(await h.store.getPairing("telegram:bot:1")).toBeNull();
      await h.store.savePairing(pending("telegram:bot:1", "ABCD2345", 10));
      await h.store.savePairing(pending("slack:A1:U9", "WXYZ6789", 20));
      expect(await h.store.getPairing("telegram:bot:1")).toEqual(pending("telegram:bot:1", "ABCD2345", 10));
      expect((await h.store.pairingByCode("WXYZ6789"))?.person).toBe("slack:A1:U9");
      expect(await h.store.pairingByCode("abcd2345")).toBeNull();
      // Approval replaces the record: the code is gone, the person stays.
      await h.store.savePairing({ ...pending("telegram:bot:1", "ABCD2345", 10), status: "approved", code: null, expires_at: null, notified_at: null, approved_at: 30 });
      expect(await h.store.pairingByCode("ABCD2345")).toBeNull();
      expect((await h.store.getPairing("telegram:bot:1"))?.status).toBe("approved");
      // A code freed by an approval may be handed out again.
      await h.store.savePairing(pending("telegram:bot:2", "ABCD2345", 40));
      expect((await h.store.listPairings({})).map((p) => p.person)).toEqual(["telegram:bot:1", "slack:A1:U9", "telegram:bot:2"]);
      expect((await h.store.listPairings({ channel: "telegram", status: "pending" })).map((p) => p.person)).toEqual(["telegram:bot:2"]);
      expect(await h.store.deletePairing("telegram:bot:1")).toBe(true);
      expect(await h.store.deletePairing("telegram:bot:1")).toBe(false);
      expect(await h.store.getPairing("telegram:bot:1")).toBeNull();
    });
  });
}
