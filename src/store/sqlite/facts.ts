/** Facts on SQLite: the `facts` table and its FTS5 index, ranked by BM25. */
import type { Fact, FactStore } from "../facts.ts";
import { searchWords } from "../words.ts";
import type { Bind, SqliteContext } from "./context.ts";

export function sqliteFacts(ctx: SqliteContext): FactStore {
  const add = ctx.q(
    "INSERT INTO facts (agent, person, text, created_at) VALUES (?, ?, ?, ?) ON CONFLICT(agent, person, text) DO NOTHING",
  );
  const get = ctx.q<Fact>(
    "SELECT id, agent, person, text, created_at FROM facts WHERE agent = ? AND person = ? AND text = ?",
  );
  // Most people have no facts: this index probe spares them the full-text query.
  const any = ctx.q<{ x: number }>("SELECT 1 AS x FROM facts WHERE agent = ? AND person = ? LIMIT 1");
  return {
    addFact: (agent, person, text) =>
      ctx.run("store a fact", () => {
        add.run(agent, person, text, ctx.now());
        return get.get(agent, person, text)!;
      }),
    searchFacts: (fq) =>
      ctx.run("search facts", () => {
        const words = searchWords(fq.query);
        if (words.length === 0) return [];
        if (fq.person !== undefined && !any.get(fq.agent, fq.person)) return [];
        // Each word quoted: user text never becomes FTS5 syntax.
        const match = words.map((w) => `"${w}"`).join(" OR ");
        const sql = `SELECT f.id, f.agent, f.person, f.text, f.created_at, -bm25(facts_fts) AS score
          FROM facts_fts JOIN facts f ON f.id = facts_fts.rowid
          WHERE facts_fts MATCH ? AND f.agent = ? ${fq.person !== undefined ? "AND f.person = ?" : ""}
          ORDER BY bm25(facts_fts) LIMIT ?`;
        const args: Bind[] = [match, fq.agent, ...(fq.person !== undefined ? [fq.person] : []), fq.limit];
        return ctx.q<Fact & { score: number }>(sql).all(...args);
      }),
  };
}
