/**
 * The contract of session leases (turn order across gateway workers) and the conversation writes
 * they fence: every implementation runs it (sqlite, memory; later the NATS store). The clock is
 * injected, so expiry is deterministic.
 */
import { describe, expect, test } from "bun:test";
import type { ConversationStore, SessionLeases } from "../../../src/store/index.ts";
import { addr, type MakeHarness, user } from "./harness.ts";

export function sessionLeasesContract(name: string, make: MakeHarness<SessionLeases & ConversationStore>): void {
  describe(`Session leases contract: ${name}`, () => {
    test("one holder at a time: a held lease is refused to others until released or expired, and each take gets a larger token", async () => {
      await using h = await make();
      const first = await h.store.acquireLease("s1", "w1", 10_000);
      expect(first).not.toBeNull();
      expect(await h.store.acquireLease("s1", "w2", 10_000)).toBeNull();
      // Another session is independent.
      expect(await h.store.acquireLease("s2", "w2", 10_000)).not.toBeNull();
      await h.store.releaseLease("s1", first!);
      const second = await h.store.acquireLease("s1", "w2", 10_000);
      expect(second).toBeGreaterThan(first!);
      // Expired (a worker killed mid-turn): taken over with a larger token; the old holder's renew fails.
      h.tick(10_001);
      const third = await h.store.acquireLease("s1", "w1", 10_000);
      expect(third).toBeGreaterThan(second!);
      expect(await h.store.renewLease("s1", second!, 10_000)).toBe(false);
      // A stale release changes nothing: the lease stays the new holder's.
      await h.store.releaseLease("s1", second!);
      expect(await h.store.acquireLease("s1", "w2", 10_000)).toBeNull();
      // Renewal keeps it past its first expiry.
      h.tick(9_000);
      expect(await h.store.renewLease("s1", third!, 10_000)).toBe(true);
      h.tick(9_000);
      expect(await h.store.acquireLease("s1", "w2", 10_000)).toBeNull();
    });

    test("of 20 concurrent takes of one free lease exactly one wins", async () => {
      await using h = await make();
      const got = await Promise.all(Array.from({ length: 20 }, (_, i) => h.store.acquireLease("s", `w${i}`, 10_000)));
      expect(got.filter((t) => t !== null)).toHaveLength(1);
    });

    test("a fenced append is refused once the lease was taken over, and nothing of it is stored", async () => {
      await using h = await make();
      const s = addr("fence");
      const old = (await h.store.acquireLease(s.key, "w1", 1_000))!;
      await h.store.appendMessages(s, [user("one")], undefined, { token: old });
      h.tick(1_001);
      const now = (await h.store.acquireLease(s.key, "w2", 1_000))!;
      await expect(h.store.appendMessages(s, [user("stale")], undefined, { token: old })).rejects.toThrow(
        /lease on session .* was taken over/,
      );
      await h.store.appendMessages(s, [user("two")], undefined, { token: now });
      expect((await h.store.history(s.key, { limit: 10 })).map((m) => (m.parts[0] as { text: string }).text)).toEqual([
        "one",
        "two",
      ]);
    });

    test("the session version changes with every append and reset; unknown is 0", async () => {
      await using h = await make();
      const s = addr("v");
      expect(await h.store.sessionVersion(s.key)).toBe(0);
      await h.store.appendMessages(s, [user("a")]);
      const v1 = await h.store.sessionVersion(s.key);
      await h.store.appendMessages(s, [user("b")]);
      const v2 = await h.store.sessionVersion(s.key);
      expect(v2).not.toBe(v1);
      await h.store.resetSession(s.key);
      expect(await h.store.sessionVersion(s.key)).toBe(0);
      h.tick();
      await h.store.appendMessages(s, [user("c")]);
      const v3 = await h.store.sessionVersion(s.key);
      expect([0, v1, v2]).not.toContain(v3);
    });
  });
}
