/**
 * Session leases on NATS: the `leases` KV bucket, one key per session (escaped), value
 * `{holder, token, expires_at}`. Every change is a compare-and-set on the key's revision
 * (`create` for the first lease, `update(rev)` after), so of gateways racing for one lease one
 * wins; a lost race reads again. The key stays after release (expires_at = 0) and is never deleted,
 * so a session's token only grows (no bucket TTL: a per-key TTL is 2.11+, and a bucket-wide one would
 * forget the token). Expiry compares `expires_at` with the gateway's clock (keep the gateways' clocks
 * in sync, NTP).
 *
 * Taking over an expired (not released) lease also bumps the session's subject in the messages
 * stream (`fenceSession`, an empty append), so an append of the old holder that read the tail before
 * the takeover loses its compare-and-set, re-checks the lease and is refused: the fence holds at
 * the storage, not only at the old holder's last look (see ./conversations.ts).
 */
import type { KV } from "@nats-io/kv";
import { randomUUID } from "node:crypto";
import type { SessionLeases } from "../session-leases.ts";
import { isWrongLastSequence, type NatsContext, token } from "./context.ts";

interface Lease {
  holder: string;
  token: number;
  expires_at: number;
  /** The nonce of the call that wrote it. */
  w?: string;
}

export interface NatsLeases extends SessionLeases {
  /** The session's current token (taken, released or expired), or null when it never had a lease. */
  tokenOf(session: string): Promise<number | null>;
}

/** Compare-and-set attempts before a call gives up (each loss means another gateway's write landed). */
const ATTEMPTS = 50;

export async function natsLeases(ctx: NatsContext, fenceSession: (key: string) => Promise<void>): Promise<NatsLeases> {
  const kv: KV = await ctx.bucket("leases");
  const read = async (session: string): Promise<{ rev: number; l: Lease } | null> => {
    const e = await ctx.again(() => kv.get(token(session)));
    return e && e.operation === "PUT" ? { rev: e.revision, l: e.json<Lease>() } : null;
  };
  /**
   * Changes the session's lease if `change` says so (null: leave it), retrying a lost compare-and-set.
   * A write NATS did not answer is tried again; the writes of one call carry one nonce (`w`), so one
   * that landed while its answer was lost is recognised as this call's, not taken for a lost race.
   */
  const cas = async <T>(
    session: string,
    change: (cur: { rev: number; l: Lease } | null) => { next: Lease; out: T } | { out: T },
  ): Promise<T> => {
    const w = randomUUID();
    let wrote: { out: T } | null = null;
    for (let i = 0; ; i++) {
      const cur = await read(session);
      if (wrote && cur?.l.w === w) return wrote.out;
      const c = change(cur);
      if (!("next" in c)) return c.out;
      wrote = { out: c.out };
      const value = JSON.stringify({ ...c.next, w });
      try {
        await ctx.again(() =>
          cur === null ? kv.create(token(session), value) : kv.update(token(session), value, cur.rev),
        );
        return c.out;
      } catch (e) {
        if (!isWrongLastSequence(e) || i >= ATTEMPTS) throw e;
      }
    }
  };
  return {
    tokenOf: async (session) => (await read(session))?.l.token ?? null,
    acquireLease: (session, holder, ttlMs) =>
      ctx.settle("take a session lease", async () => {
        let takeover = false;
        const got = await cas<number | null>(session, (cur) => {
          const t = ctx.now();
          if (cur && cur.l.expires_at > t) return { out: null };
          takeover = cur !== null && cur.l.expires_at > 0;
          const next: Lease = { holder, token: (cur?.l.token ?? 0) + 1, expires_at: t + ttlMs };
          return { next, out: next.token };
        });
        // The old holder may still be writing: its append must lose against the session's subject.
        if (got !== null && takeover) await fenceSession(session);
        return got;
      }),
    renewLease: (session, tok, ttlMs) =>
      ctx.settle("renew a session lease", () =>
        cas<boolean>(session, (cur) =>
          cur && cur.l.token === tok
            ? { next: { ...cur.l, expires_at: ctx.now() + ttlMs }, out: true }
            : { out: false },
        ),
      ),
    releaseLease: (session, tok) =>
      ctx.settle("release a session lease", () =>
        cas<void>(session, (cur) =>
          cur && cur.l.token === tok && cur.l.expires_at !== 0
            ? { next: { ...cur.l, expires_at: 0 }, out: undefined }
            : { out: undefined },
        ),
      ),
  };
}
