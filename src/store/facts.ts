/**
 * The facts port (semantic memory, SPEC §11): facts per agent and person, searched by their words.
 * SQLite ranks with FTS5/BM25; another engine may use its own search index.
 *
 * Every method may reject with StoreError; a failed write changes nothing (all-or-nothing).
 */

/** A fact the agent learned about a person (semantic memory); never shared across people. */
export interface Fact {
  id: number;
  agent: string;
  person: string;
  text: string;
  created_at: number;
}

export interface FactQuery {
  agent: string;
  /** Only this person's facts; absent = every person's (operator tools only). */
  person?: string;
  /** Free text; facts sharing its words rank first (BM25 in SQLite). */
  query: string;
  limit: number;
}

export interface FactStore {
  /** Stores a fact; the same text for the same agent and person is stored once. */
  addFact(agent: string, person: string, text: string): Promise<Fact>;
  /** Facts relevant to the query, most relevant first; none when no word matches. */
  searchFacts(query: FactQuery): Promise<(Fact & { score: number })[]>;
}
