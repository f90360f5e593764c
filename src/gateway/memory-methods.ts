/** `memory.search` (SPEC §5, §11): what an agent remembers, by relevance (operator view: any person). */
import * as v from "valibot";
import { defineMethod, type Method } from "../protocol/methods.ts";
import type { FactStore } from "../store/index.ts";

export const MemorySearchParams = v.strictObject({
  query: v.pipe(v.string(), v.minLength(1)),
  agent: v.optional(v.pipe(v.string(), v.minLength(1))),
  person: v.optional(v.pipe(v.string(), v.minLength(1))),
  limit: v.optional(v.pipe(v.number(), v.integer(), v.minValue(1), v.maxValue(100)), 10),
});

export function memoryMethods(store: FactStore, defaultAgent: () => string): Map<string, Method<never>> {
  return new Map([
    [
      "memory.search",
      defineMethod({
        params: MemorySearchParams,
        handle: async (p) => ({
          facts: await store.searchFacts({
            agent: p.agent ?? defaultAgent(),
            query: p.query,
            limit: p.limit,
            ...(p.person !== undefined && { person: p.person }),
          }),
        }),
      }),
    ],
  ]);
}
