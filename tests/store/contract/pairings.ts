/**
 * The contract of pairings: every implementation of the port runs it (tests/store/sqlite.test.ts,
 * memory.test.ts; later the NATS store). `make` returns a fresh, empty implementation and a disposer;
 * the clock is injected so ordering by time is deterministic.
 */
import { describe, expect, test } from "bun:test";
import type { Pairing, PairingStore } from "../../../src/store/index.ts";
import { type MakeHarness } from "./harness.ts";

export function pairingsContract(name: string, make: MakeHarness<PairingStore>): void {
  describe(`Pairings contract: ${name}`, () => {
    test("pairings: a pending code is found by its code, approved and revoked per person, and listed by channel and status", async () => {
      await using h = await make();
      const pending = (person: string, code: string, at: number): Pairing => ({
        person,
        channel: person.split(":")[0]!,
        status: "pending",
        code,
        created_at: at,
        expires_at: at + 3_600_000,
        notified_at: at,
        approved_at: null,
      });
      expect(await h.store.getPairing("telegram:bot:1")).toBeNull();
      await h.store.savePairing(pending("telegram:bot:1", "ABCD2345", 10));
      await h.store.savePairing(pending("slack:A1:U9", "WXYZ6789", 20));
      expect(await h.store.getPairing("telegram:bot:1")).toEqual(pending("telegram:bot:1", "ABCD2345", 10));
      expect((await h.store.pairingByCode("WXYZ6789"))?.person).toBe("slack:A1:U9");
      expect(await h.store.pairingByCode("abcd2345")).toBeNull();
      // Approval replaces the record: the code is gone, the person stays.
      await h.store.savePairing({
        ...pending("telegram:bot:1", "ABCD2345", 10),
        status: "approved",
        code: null,
        expires_at: null,
        notified_at: null,
        approved_at: 30,
      });
      expect(await h.store.pairingByCode("ABCD2345")).toBeNull();
      expect((await h.store.getPairing("telegram:bot:1"))?.status).toBe("approved");
      // A code freed by an approval may be handed out again.
      await h.store.savePairing(pending("telegram:bot:2", "ABCD2345", 40));
      expect((await h.store.listPairings({})).map((p) => p.person)).toEqual([
        "telegram:bot:1",
        "slack:A1:U9",
        "telegram:bot:2",
      ]);
      expect((await h.store.listPairings({ channel: "telegram", status: "pending" })).map((p) => p.person)).toEqual([
        "telegram:bot:2",
      ]);
      expect(await h.store.deletePairing("telegram:bot:1")).toBe(true);
      expect(await h.store.deletePairing("telegram:bot:1")).toBe(false);
      expect(await h.store.getPairing("telegram:bot:1")).toBeNull();
    });
  });
}
