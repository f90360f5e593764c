/**
 * The contract of the inbox/outbox: every implementation of the port runs it (tests/store/sqlite.test.ts,
 * memory.test.ts; later the NATS store). A turn's reply saved with its history needs the conversations
 * port of the same engine, so the harness offers both. `make` returns a fresh, empty implementation and a disposer;
 * the clock is injected so ordering by time is deterministic.
 */
import type { NewMessage } from "../../../src/core/index.ts";
import { describe, expect, test } from "bun:test";
import type { ConversationStore, InboxStore } from "../../../src/store/index.ts";
import { type MakeHarness, addr, user } from "./harness.ts";

export function inboxContract(name: string, make: MakeHarness<ConversationStore & InboxStore>): void {
  describe(`Inbox contract: ${name}`, () => {
    test("inbound messages are deduplicated by id and stay pending until completed", async () => {
      await using h = await make();
      const rec = (id: string, at: number) => ({
        id,
        channel: "telegram",
        payload: JSON.stringify({ text: id }),
        received_at: at,
      });
      expect(await h.store.acceptInbound(rec("telegram:1", 10))).toBe(true);
      expect(await h.store.acceptInbound(rec("telegram:1", 11))).toBe(false);
      expect(await h.store.acceptInbound(rec("telegram:2", 20))).toBe(true);
      await h.store.failInbound("telegram:1", { error: "provider down", retry_at: 100, at: 50 });
      const pending = await h.store.pendingInbound(10);
      expect(pending.map((p) => [p.id, p.attempts, p.last_error, p.next_at, p.dead_at])).toEqual([
        ["telegram:1", 1, "provider down", 100, null],
        ["telegram:2", 0, null, 0, null],
      ]);
      expect(pending[0]!.payload).toBe(JSON.stringify({ text: "telegram:1" }));
      expect(pending.map((p) => p.reply)).toEqual([null, null]);
      // The outbox: a finished turn's reply is kept with the pending message until it is sent.
      await h.store.saveInboundReply("telegram:1", "the answer ✓");
      await h.store.failInbound("telegram:1", { error: "HTTP 500", retry_at: 200, at: 150 });
      expect((await h.store.pendingInbound(10)).map((p) => [p.id, p.attempts, p.reply])).toEqual([
        ["telegram:1", 2, "the answer ✓"],
        ["telegram:2", 0, null],
      ]);
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
      expect(await h.store.getInbound("telegram:1")).toMatchObject({
        reply: "the answer ✓",
        attempts: 0,
        dead_at: null,
      });
      // Saved, not sent: the retry loop finds it due with its reply.
      expect((await h.store.dueInbound(Number.MAX_SAFE_INTEGER, 10)).map((p) => [p.id, p.reply])).toEqual([
        ["telegram:1", "the answer ✓"],
      ]);
      expect(await h.store.getInbound("telegram:2")).toBeNull();
      expect(await h.store.getInbound("telegram:unknown")).toBeNull();
    });

    test("inbound backoff: each message is due at its own time; a dead-lettered one waits for a re-queue", async () => {
      await using h = await make();
      const rec = (id: string, at: number) => ({ id, channel: "slack", payload: "{}", received_at: at });
      for (const [id, at] of [
        ["a", 10],
        ["b", 20],
        ["c", 30],
        ["d", 40],
      ] as const)
        await h.store.acceptInbound(rec(id, at));
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
      expect((await h.store.dueInbound(7_000, 10)).map((p) => [p.id, p.attempts, p.dead_at])).toEqual([
        ["d", 0, null],
        ["b", 1, null],
        ["a", 1, null],
      ]);
      expect(await h.store.countInbound()).toEqual({ pending: 4, dead: 0 });
      // Dropping one is completing it; a done message cannot be re-queued.
      expect(await h.store.completeInbound("c")).toBe(true);
      expect(await h.store.getInbound("c")).toBeNull();
      expect(await h.store.getInbound("nope")).toBeNull();
      expect(await h.store.requeueInbound("c", 8_000)).toBe(false);
      expect(await h.store.requeueInbound("nope", 8_000)).toBe(false);
      expect(await h.store.countInbound()).toEqual({ pending: 3, dead: 0 });
    });

    test("a stored message is claimed by one worker at a time: concurrent claims, expiry, release; done or unknown: none", async () => {
      await using h = await make();
      await h.store.acceptInbound({ id: "telegram:c1", channel: "telegram", payload: "{}", received_at: 10 });
      const got = await Promise.all(
        Array.from({ length: 10 }, (_, i) => h.store.claimInbound("telegram:c1", `w${i}`, 60_000)),
      );
      expect(got.filter(Boolean)).toHaveLength(1);
      const holder = `w${got.indexOf(true)}`;
      const other = holder === "w0" ? "w1" : "w0";
      // The holder may claim again (its own retry); a release by another changes nothing.
      expect(await h.store.claimInbound("telegram:c1", holder, 60_000)).toBe(true);
      await h.store.releaseInbound("telegram:c1", other);
      expect(await h.store.claimInbound("telegram:c1", other, 60_000)).toBe(false);
      await h.store.releaseInbound("telegram:c1", holder);
      expect(await h.store.claimInbound("telegram:c1", other, 1_000)).toBe(true);
      // A claim whose holder died expires.
      h.tick(1_001);
      expect(await h.store.claimInbound("telegram:c1", holder, 1_000)).toBe(true);
      await h.store.completeInbound("telegram:c1");
      expect(await h.store.claimInbound("telegram:c1", other, 1_000)).toBe(false);
      expect(await h.store.claimInbound("telegram:none", other, 1_000)).toBe(false);
    });
  });
}
