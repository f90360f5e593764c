/**
 * The contract of facts (semantic memory): every implementation of the port runs it (tests/store/sqlite.test.ts,
 * memory.test.ts; later the NATS store). `make` returns a fresh, empty implementation and a disposer;
 * the clock is injected so ordering by time is deterministic.
 */
import { describe, expect, test } from "bun:test";
import type { FactStore } from "../../../src/store/index.ts";
import { type MakeHarness } from "./harness.ts";

export function factsContract(name: string, make: MakeHarness<FactStore>): void {
  describe(`Facts contract: ${name}`, () => {
    test("facts are kept per agent and person, found by their words, most relevant first", async () => {
      await using h = await make();
      await h.store.addFact("main", "telegram:1", "Ada likes green tea");
      await h.store.addFact("main", "telegram:1", "Ada's cat is called Tea Leaf");
      await h.store.addFact("main", "telegram:1", "Ada works on engines");
      await h.store.addFact("main", "telegram:2", "Grace likes green tea too");
      await h.store.addFact("helper", "telegram:1", "tea facts from another agent");
      const again = await h.store.addFact("main", "telegram:1", "Ada likes green tea");
      expect(again.id).toBe(
        (await h.store.searchFacts({ agent: "main", person: "telegram:1", query: "likes green", limit: 5 }))[0]!.id,
      );
      const tea = await h.store.searchFacts({
        agent: "main",
        person: "telegram:1",
        query: "What tea does she like? green?",
        limit: 5,
      });
      expect(tea.map((f) => f.text)[0]).toBe("Ada likes green tea");
      expect(tea.map((f) => f.text)).toContain("Ada's cat is called Tea Leaf");
      expect(tea.every((f) => f.person === "telegram:1" && f.agent === "main" && f.score > 0)).toBe(true);
      expect(
        await h.store.searchFacts({ agent: "main", person: "telegram:1", query: "unrelated words", limit: 5 }),
      ).toEqual([]);
      expect(
        await h.store.searchFacts({
          agent: "main",
          person: "telegram:1",
          query: '"; DROP TABLE facts; -- OR *',
          limit: 5,
        }),
      ).toEqual([]);
      expect(
        (await h.store.searchFacts({ agent: "main", query: "green tea", limit: 5 })).map((f) => f.person).sort(),
      ).toEqual(["telegram:1", "telegram:1", "telegram:2"]);
      expect(await h.store.searchFacts({ agent: "main", person: "telegram:1", query: "tea", limit: 1 })).toHaveLength(
        1,
      );
    });
  });
}
