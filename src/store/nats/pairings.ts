/**
 * Pairings on NATS: one KV bucket, one key per person (escaped). A code is found by reading the
 * bucket (pairings are few, and a code is looked up only when the operator approves one).
 */
import type { Pairing, PairingStore } from "../pairings.ts";
import { dec, type NatsContext, token } from "./context.ts";
import { isTombstone } from "./plugin-state.ts";

export async function natsPairings(ctx: NatsContext): Promise<PairingStore> {
  const kv = await ctx.bucket("pairings");
  const stream = `KV_${ctx.name("pairings")}`;
  const all = async (): Promise<Pairing[]> =>
    (await ctx.scan(stream, `$KV.${ctx.name("pairings")}.>`, { lastPerSubject: true }))
      .filter((m) => !isTombstone(m))
      .map((m) => dec<Pairing>(m.data));
  return {
    getPairing: (person) =>
      ctx.read("read a pairing", async () => {
        const e = await kv.get(token(person));
        return e && e.operation === "PUT" ? e.json<Pairing>() : null;
      }),
    pairingByCode: (code) => ctx.read("read a pairing", async () => (await all()).find((p) => p.code === code) ?? null),
    savePairing: (p) =>
      ctx.write("save a pairing", async () => {
        const { person, channel, status, code, created_at, expires_at, notified_at, approved_at } = p;
        await kv.put(
          token(person),
          JSON.stringify({ person, channel, status, code, created_at, expires_at, notified_at, approved_at }),
        );
      }),
    listPairings: (q) =>
      ctx.read("list pairings", async () =>
        (await all())
          .filter(
            (p) =>
              (q.channel === undefined || p.channel === q.channel) && (q.status === undefined || p.status === q.status),
          )
          .sort((a, b) => a.created_at - b.created_at || (a.person < b.person ? -1 : a.person > b.person ? 1 : 0)),
      ),
    deletePairing: (person) =>
      ctx.write("delete a pairing", async () => {
        const e = await kv.get(token(person));
        if (!e || e.operation !== "PUT") return false;
        await kv.delete(token(person));
        return true;
      }),
  };
}
