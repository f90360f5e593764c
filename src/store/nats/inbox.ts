/**
 * The inbox/outbox on NATS: accepted messages not finished live in the `inbox` bucket (one key per
 * id, escaped), each change a compare-and-set on its revision; a finished message leaves the bucket
 * (its subject purged, so reading the inbox reads only what is pending) and leaves a marker in the
 * `seen` bucket, which keeps a platform's retry of it a duplicate for ever.
 *
 * Accepting creates the key (create-if-absent: two gateways racing on one id, one wins), then checks
 * `seen`: completion writes `seen` before it deletes the key, so a retry that slips in after the
 * delete still finds the marker and backs out.
 *
 * A claim (one worker delivering a message) is kept on the record itself, `claim: {holder, until}`,
 * taken and given back by the same compare-and-set on the key's revision: of gateways claiming one
 * message at once, one write wins and the others read the winner's claim. A done message has no key,
 * so it cannot be claimed.
 */
import type { KV } from "@nats-io/kv";
import { randomUUID } from "node:crypto";
import type { InboxStore, InboundRecord, PendingInbound } from "../inbox.ts";
import { dec, isWrongLastSequence, type NatsContext, token } from "./context.ts";
import { isTombstone } from "./plugin-state.ts";

/** A pending record as stored: `order` is its key's first revision (arrival order of equal times); `claim` its delivery's holder. */
type Stored = PendingInbound & { order?: number; claim?: { holder: string; until: number }; w?: string };

export interface NatsInbox extends InboxStore {
  /** Saves a reply on a pending message (the outbox write of an append); false when unknown or done. */
  saveReply(id: string, reply: string | null, onlyIf?: (r: PendingInbound) => boolean): Promise<PendingInbound | null>;
}

const strip = ({ order: _o, claim: _c, w: _w, ...r }: Stored): PendingInbound => r;

export async function natsInbox(ctx: NatsContext): Promise<NatsInbox> {
  const [kv, seen]: [KV, KV] = await Promise.all([ctx.bucket("inbox"), ctx.bucket("seen")]);
  const stream = `KV_${ctx.name("inbox")}`;
  const subjectOf = (id: string) => `$KV.${ctx.name("inbox")}.${token(id)}`;

  /**
   * Reads, changes and writes back one pending record, retrying a lost compare-and-set. null: unknown.
   * "keep": no write. A step NATS did not answer (a leader being elected) is tried again; every write
   * of one call carries one nonce (`w`), so a write that landed while its answer was lost is
   * recognised on the record (a delete by the key being gone) and never applied twice.
   */
  const mutate = async (
    id: string,
    change: (r: Stored) => Stored | "delete" | "keep",
  ): Promise<{ before: Stored } | null> => {
    const w = randomUUID();
    let last: { before: Stored; deleting: boolean } | null = null;
    for (let i = 0; ; i++) {
      const e = await ctx.again(() => kv.get(token(id)));
      if (!e || e.operation !== "PUT") return last?.deleting ? { before: last.before } : null;
      const stored = e.json<Stored>();
      if (last && stored.w === w) return { before: last.before };
      const before = { ...stored, order: stored.order ?? e.revision };
      const next = change({ ...before });
      if (next === "keep") return { before };
      last = { before, deleting: next === "delete" };
      try {
        await ctx.again(async () => {
          if (next === "delete") await kv.delete(token(id), { previousSeq: e.revision });
          else await kv.update(token(id), JSON.stringify({ ...next, w }), e.revision);
        });
        return { before };
      } catch (err) {
        // A lost race — or our own unanswered try that landed late: the next read tells.
        if (!isWrongLastSequence(err) || i >= 20) throw err;
      }
    }
  };
  const all = async (): Promise<Stored[]> =>
    (await ctx.scan(stream, `$KV.${ctx.name("inbox")}.>`, { lastPerSubject: true }))
      .filter((m) => !isTombstone(m))
      .map((m) => {
        const r = dec<Stored>(m.data);
        return { ...r, order: r.order ?? m.seq };
      });
  const byArrival = (a: Stored, b: Stored) => a.received_at - b.received_at || a.order! - b.order!;
  const retried = (r: Stored) => r.dead_at === null && (r.attempts > 0 || r.reply !== null);

  const inbox: NatsInbox = {
    acceptInbound: (r: InboundRecord) =>
      ctx.run("store an inbound message", async () => {
        const rec: PendingInbound = {
          id: r.id,
          channel: r.channel,
          payload: r.payload,
          received_at: r.received_at,
          attempts: 0,
          last_error: null,
          reply: null,
          next_at: 0,
          dead_at: null,
        };
        // A nonce: a create that landed while its answer was lost is recognised as this one.
        const w = randomUUID();
        const mine = async () => {
          const e = await kv.get(token(r.id));
          return e && e.operation === "PUT" && e.json<Stored>().w === w ? { value: e.revision } : null;
        };
        let rev: number;
        try {
          rev = await ctx.again(() => kv.create(token(r.id), JSON.stringify({ ...rec, w })), mine);
        } catch (e) {
          if (!isWrongLastSequence(e)) throw e;
          const landed = await ctx.again(mine);
          if (!landed) return false;
          rev = landed.value;
        }
        const done = await ctx.again(() => seen.get(token(r.id)));
        if (done && done.operation === "PUT") {
          await kv.delete(token(r.id), { previousSeq: rev }).catch(() => {});
          await ctx.jsm.streams.purge(stream, { filter: subjectOf(r.id) }).catch(() => {});
          return false;
        }
        return true;
      }),
    pendingInbound: (limit) =>
      ctx.read("read pending messages", async () => (await all()).sort(byArrival).slice(0, limit).map(strip)),
    getInbound: (id) =>
      ctx.read("read a pending message", async () => {
        const e = await kv.get(token(id));
        return e && e.operation === "PUT" ? strip(e.json<Stored>()) : null;
      }),
    dueInbound: (now, limit) =>
      ctx.read("read due messages", async () =>
        (await all())
          .filter((r) => retried(r) && r.next_at <= now)
          .sort((a, b) => a.next_at - b.next_at || byArrival(a, b))
          .slice(0, limit)
          .map(strip),
      ),
    nextInboundAt: (after) =>
      ctx.read("read the next delivery time", async () => {
        let next: number | null = null;
        for (const r of await all())
          if (retried(r) && r.next_at > after && (next === null || r.next_at < next)) next = r.next_at;
        return next;
      }),
    countInbound: () =>
      ctx.read("count pending messages", async () => {
        let pending = 0;
        let dead = 0;
        for (const r of await all()) r.dead_at === null ? pending++ : dead++;
        return { pending, dead };
      }),
    saveInboundReply: async (id, reply) => {
      await inbox.saveReply(id, reply);
    },
    saveReply: (id, reply, onlyIf) =>
      ctx.settle("save an inbound reply", async () => {
        let kept = true;
        const r = await mutate(id, (x) => {
          kept = onlyIf ? onlyIf(x) : true;
          return kept ? { ...x, reply } : x;
        });
        return r && kept ? strip(r.before) : null;
      }),
    completeInbound: (id) =>
      ctx.settle("complete an inbound message", async () => {
        const e = await ctx.again(() => kv.get(token(id)));
        if (!e || e.operation !== "PUT") return false;
        // The marker first: a retry accepted between the two writes still sees it and backs out.
        await ctx.again(() => seen.put(token(id), ""));
        const r = await mutate(id, () => "delete");
        if (r === null) return false;
        await ctx.again(() => ctx.jsm.streams.purge(stream, { filter: subjectOf(id) })).catch(() => {});
        return true;
      }),
    failInbound: (id, f) =>
      ctx.settle("record an inbound failure", async () => {
        await mutate(id, (r) => ({
          ...r,
          attempts: r.attempts + 1,
          last_error: f.error,
          ...(f.retry_at === null ? { dead_at: f.at } : { next_at: f.retry_at, dead_at: null }),
        }));
      }),
    claimInbound: (id, holder, ttlMs) =>
      ctx.settle("claim an inbound message", async () => {
        let got = false;
        await mutate(id, (r) => {
          const t = ctx.now();
          got = !(r.claim && r.claim.until > t && r.claim.holder !== holder);
          return got ? { ...r, claim: { holder, until: t + ttlMs } } : "keep";
        });
        return got;
      }),
    releaseInbound: (id, holder) =>
      ctx.settle("release an inbound message", async () => {
        await mutate(id, ({ claim: c, ...r }) => (c?.holder === holder ? r : "keep"));
      }),
    requeueInbound: (id, at) =>
      ctx.settle(
        "re-queue an inbound message",
        async () => (await mutate(id, (r) => ({ ...r, attempts: 0, next_at: at, dead_at: null }))) !== null,
      ),
  };
  return inbox;
}
