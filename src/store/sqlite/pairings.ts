/** Pairings on SQLite: the `pairings` table, one row per person. */
import type { Pairing, PairingStore } from "../pairings.ts";
import type { Bind, SqliteContext } from "./context.ts";

export function sqlitePairings(ctx: SqliteContext): PairingStore {
  const get = ctx.q<Pairing>("SELECT * FROM pairings WHERE person = ?");
  const byCode = ctx.q<Pairing>("SELECT * FROM pairings WHERE code = ?");
  const save = ctx.q(
    `INSERT INTO pairings (person, channel, status, code, created_at, expires_at, notified_at, approved_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
     ON CONFLICT(person) DO UPDATE SET channel = excluded.channel, status = excluded.status, code = excluded.code, created_at = excluded.created_at,
       expires_at = excluded.expires_at, notified_at = excluded.notified_at, approved_at = excluded.approved_at`,
  );
  const del = ctx.q("DELETE FROM pairings WHERE person = ?");
  return {
    getPairing: (person) => ctx.run("read a pairing", () => get.get(person) ?? null),
    pairingByCode: (code) => ctx.run("read a pairing", () => byCode.get(code) ?? null),
    savePairing: (p) =>
      ctx.run("save a pairing", () => {
        save.run(p.person, p.channel, p.status, p.code, p.created_at, p.expires_at, p.notified_at, p.approved_at);
      }),
    listPairings: (pq) =>
      ctx.run("list pairings", () => {
        const where: string[] = [];
        const args: Bind[] = [];
        if (pq.channel !== undefined) where.push("channel = ?"), args.push(pq.channel);
        if (pq.status !== undefined) where.push("status = ?"), args.push(pq.status);
        return ctx
          .q<Pairing>(
            `SELECT * FROM pairings ${where.length ? "WHERE " + where.join(" AND ") : ""} ORDER BY created_at, rowid`,
          )
          .all(...args);
      }),
    deletePairing: (person) => ctx.run("delete a pairing", () => del.run(person).changes === 1),
  };
}
