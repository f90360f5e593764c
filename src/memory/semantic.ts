/**
 * Semantic memory (SPEC §11): facts about a person, learned in conversation through the
 * `memory_save` tool, recalled by relevance (SQLite FTS5, BM25) into the system prompt of later
 * turns and through the `memory_search` tool. Facts belong to one agent and one person — the
 * channel, account and peer a message comes from — and are never shared across people.
 */
import { personKey, type SessionAddress } from "../core/index.ts";
import type { FactStore } from "../store/index.ts";

export const MAX_FACT_CHARS = 500;

/** Who a session's messages come from: the same person across threads and agents. */
export function personOf(addr: Pick<SessionAddress, "channel" | "account" | "peer">): string {
  return personKey(addr.channel, addr.account, addr.peer);
}

/** A tool the host itself runs (the memory tools), offered next to the plugin tools. */
export interface HostTool {
  spec: { name: string; description: string; input_schema: Record<string, unknown> };
  run(input: unknown): Promise<{ content: string; is_error: boolean }>;
}

/** The memory tools for one agent talking to one person. */
export function memoryTools(store: FactStore, agent: string, person: string): HostTool[] {
  const str = (input: unknown, key: string) => {
    const v = (input as Record<string, unknown> | null)?.[key];
    return typeof v === "string" ? v.trim() : "";
  };
  return [
    {
      spec: {
        name: "memory_save",
        description:
          "Remember a lasting fact about the person you are talking to (preferences, names, plans). One short sentence.",
        input_schema: { type: "object", properties: { fact: { type: "string" } }, required: ["fact"] },
      },
      async run(input) {
        const fact = str(input, "fact");
        if (!fact) return { content: "fact is required", is_error: true };
        if (fact.length > MAX_FACT_CHARS)
          return { content: `a fact is at most ${MAX_FACT_CHARS} characters`, is_error: true };
        await store.addFact(agent, person, fact);
        return { content: "remembered", is_error: false };
      },
    },
    {
      spec: {
        name: "memory_search",
        description: "Search what you remember about the person you are talking to.",
        input_schema: { type: "object", properties: { query: { type: "string" } }, required: ["query"] },
      },
      async run(input) {
        const found = await store.searchFacts({ agent, person, query: str(input, "query"), limit: 10 });
        return {
          content: found.length ? found.map((f) => `- ${f.text}`).join("\n") : "nothing remembered about that",
          is_error: false,
        };
      },
    },
  ];
}

/** The facts relevant to a new message, as a block for the system prompt ("" when none). */
export async function recall(
  store: FactStore,
  agent: string,
  person: string,
  message: string,
  limit = 5,
): Promise<string> {
  const facts = await store.searchFacts({ agent, person, query: message, limit });
  return facts.length ? `What you remember about this person:\n${facts.map((f) => `- ${f.text}`).join("\n")}` : "";
}
