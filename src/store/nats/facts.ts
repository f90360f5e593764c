/**
 * Facts on NATS: one KV bucket, key `<agent>.<person>.<hash of the text>` (create-if-absent: the same
 * fact is stored once, even when two gateways learn it at once), a fact's id being its key's
 * revision. Search runs on an in-process index, read through the bucket at open and followed, with
 * BM25 ranked as SQLite's FTS5 does (k1 1.2, b 0.75, its IDF floor, unicode61's folding and tokens,
 * document frequencies over every fact), so both stores rank alike.
 */
import { createHash } from "node:crypto";
import type { Fact, FactStore } from "../facts.ts";
import { searchWords } from "../words.ts";
import { dec, isWrongLastSequence, type NatsContext, token } from "./context.ts";
import { isTombstone } from "./plugin-state.ts";

const K1 = 1.2;
const B = 0.75;

/** unicode61's view of text: lower case, diacritics removed, runs of letters, digits and private-use. */
export function ftsTokens(text: string): string[] {
  return fold(text).match(/[\p{L}\p{N}\p{Co}]+/gu) ?? [];
}
const fold = (s: string) => s.toLowerCase().normalize("NFD").replace(/\p{M}/gu, "");

interface Doc {
  fact: Fact;
  tf: Map<string, number>;
  len: number;
}

/** The search index: documents by id, document frequency per term, total length. */
export class FactIndex {
  private readonly docs = new Map<number, Doc>();
  private readonly df = new Map<string, number>();
  private totalLen = 0;

  add(fact: Fact): void {
    if (this.docs.has(fact.id)) return;
    const toks = ftsTokens(fact.text);
    const tf = new Map<string, number>();
    for (const t of toks) tf.set(t, (tf.get(t) ?? 0) + 1);
    for (const t of tf.keys()) this.df.set(t, (this.df.get(t) ?? 0) + 1);
    this.totalLen += toks.length;
    this.docs.set(fact.id, { fact, tf, len: toks.length });
  }

  search(agent: string, person: string | undefined, query: string, limit: number): (Fact & { score: number })[] {
    const terms = [...new Set(searchWords(query).map(fold))];
    if (terms.length === 0 || this.docs.size === 0) return [];
    const n = this.docs.size;
    const avg = this.totalLen / n;
    const idf = terms.map((t) => {
      const d = this.df.get(t) ?? 0;
      const v = Math.log((n - d + 0.5) / (d + 0.5));
      return v <= 0 ? 1e-6 : v;
    });
    const out: (Fact & { score: number })[] = [];
    for (const doc of this.docs.values()) {
      if (doc.fact.agent !== agent || (person !== undefined && doc.fact.person !== person)) continue;
      let score = 0;
      let hit = false;
      terms.forEach((t, i) => {
        const f = doc.tf.get(t);
        if (!f) return;
        hit = true;
        score += idf[i]! * ((f * (K1 + 1)) / (f + K1 * (1 - B + (B * doc.len) / avg)));
      });
      if (hit) out.push({ ...doc.fact, score });
    }
    return out.sort((a, b) => b.score - a.score || a.id - b.id).slice(0, limit);
  }
}

export async function natsFacts(ctx: NatsContext): Promise<FactStore> {
  const kv = await ctx.bucket("facts");
  const stream = `KV_${ctx.name("facts")}`;
  const index = new FactIndex();
  const keyOf = (agent: string, person: string, text: string) =>
    `${token(agent)}.${token(person)}.${createHash("sha256").update(text).digest("base64url").slice(0, 32)}`;
  const take = (m: { seq: number; data: Uint8Array; headers?: { get(k: string): string } | undefined }) => {
    if (isTombstone(m) || m.data.length === 0) return;
    const v = dec<Omit<Fact, "id">>(m.data);
    index.add({ id: m.seq, agent: v.agent, person: v.person, text: v.text, created_at: v.created_at });
  };
  const from = (await ctx.jsm.streams.info(stream)).state.last_seq + 1;
  for (const m of await ctx.scan(stream, `$KV.${ctx.name("facts")}.>`)) take(m);
  await ctx.follow(stream, from, take);
  return {
    addFact: (agent, person, text) =>
      ctx.run("store a fact", async () => {
        const key = keyOf(agent, person, text);
        const value = { agent, person, text, created_at: ctx.now() };
        try {
          // Tried again while unanswered: a landed first try makes the next one find the same fact.
          const id = await ctx.again(() => kv.create(key, JSON.stringify(value)));
          const fact = { id, ...value };
          index.add(fact);
          return { ...fact };
        } catch (e) {
          if (!isWrongLastSequence(e)) throw e;
          const got = await ctx.again(() => kv.get(key));
          if (!got || got.operation !== "PUT") throw e;
          const v = got.json<Omit<Fact, "id">>();
          const fact = { id: got.revision, agent: v.agent, person: v.person, text: v.text, created_at: v.created_at };
          index.add(fact);
          return { ...fact };
        }
      }),
    searchFacts: (q) => ctx.read("search facts", async () => index.search(q.agent, q.person, q.query, q.limit)),
  };
}
