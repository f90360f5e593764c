/**
 * Conversations on NATS: one stream of messages, one subject per session (`<ns>.msgs.<key>`, the key
 * escaped so a peer id like `a.*` or `>` stays in its own subject). An append is ONE stream message
 * (the turn's messages and the session's new metadata), published only if the subject's last
 * sequence is still the one this gateway read (JetStream's expected-last-subject-sequence): all or
 * nothing, gapless seq, and two gateways appending to one session cannot interleave or lose a turn —
 * the loser reads the new tail and tries again. The session's metadata is its last append's header,
 * so listing sessions reads headers only.
 *
 * History is read back through the stream (no direct get: the leader answers, so a gateway reads its
 * own and others' writes) and kept per session in a bounded cache, checked against the subject's
 * last sequence on every read.
 *
 * A fenced append (a turn under the session's lease, ./leases.ts) reads the tail first, then checks
 * the lease's token, then publishes expecting that tail, on every attempt: a takeover of the lease
 * bumps the subject (`fenceSession`, an empty append), so an old holder that checked before the
 * takeover loses the compare-and-set, checks again and is refused. The session's version is its
 * subject's last stream sequence (only grows, even across a reset).
 *
 * A turn's reply is saved on its inbound message first, then the messages appended; if the append
 * fails the reply is put back (all-or-nothing as far as the caller sees). A crash between the two
 * leaves a reply that is sent without its turn in the history, never a turn that runs twice.
 */
import { headers, nuid } from "@nats-io/transport-node";
import type { NewMessage, SessionAddress, StoredMessage } from "../../core/index.ts";
import type { ConversationStore, SessionInfo } from "../conversations.ts";
import { StoreError } from "../errors.ts";
import type { LeaseFence } from "../session-leases.ts";
import { decodeCursor, encodeCursor, isAfterCursor } from "../cursor.ts";
import type { InboundReply } from "../inbox.ts";
import { dec, enc, isWrongLastSequence, type NatsContext, token, unanswered } from "./context.ts";
import type { NatsInbox } from "./inbox.ts";

/** One append as stored: the session after it, the first seq, the messages. */
interface Append {
  /** This append's own id: after a lost acknowledgement, the tail tells whether it landed. */
  id: string;
  s: SessionInfo;
  first: number;
  t: number;
  m: { role: StoredMessage["role"]; parts: StoredMessage["parts"]; meta?: Record<string, unknown> }[];
}

/** What this gateway knows of a session's tail: the stream sequence of its last append, and its history. */
interface Cached {
  seq: number;
  info: SessionInfo;
  messages: StoredMessage[];
}

/** The history cache's bounds: sessions, and messages over all of them (least recently used go first). */
const CACHE_SESSIONS = 256;
const CACHE_MESSAGES = 50_000;
const HEADER = "Exo-Session";

const toStored = (a: Append, key: string): StoredMessage[] =>
  a.m.map((m, i) => {
    const s: StoredMessage = { session: key, seq: a.first + i, role: m.role, parts: m.parts, created_at: a.t };
    if (m.meta !== undefined) s.meta = m.meta;
    return s;
  });

export type NatsConversations = ConversationStore & {
  /** Bumps the session's subject (an empty append) so every append that read an older tail loses; unknown session: nothing. */
  fenceSession(key: string): Promise<void>;
};

/** `leaseOf`: the session's current lease token (./leases.ts), for fenced appends. */
export async function natsConversations(
  ctx: NatsContext,
  inbox: NatsInbox,
  leaseOf: (key: string) => Promise<number | null>,
): Promise<NatsConversations> {
  const stream = ctx.name("msgs");
  const prefix = ctx.subject("msgs");
  await ctx.ensureStream({ name: stream, subjects: [`${prefix}.>`] });
  const subjectOf = (key: string) => `${prefix}.${token(key)}`;
  const cache = new Map<string, Cached>();
  let cachedMessages = 0;
  const forget = (key: string) => {
    const had = cache.get(key);
    if (!had) return;
    cachedMessages -= had.messages.length;
    cache.delete(key);
  };
  const remember = (key: string, c: Cached) => {
    forget(key);
    if (c.messages.length > CACHE_MESSAGES) return;
    while (cache.size > 0 && (cache.size >= CACHE_SESSIONS || cachedMessages + c.messages.length > CACHE_MESSAGES))
      forget(cache.keys().next().value!);
    cache.set(key, c);
    cachedMessages += c.messages.length;
  };
  /** Per-session chain: appends from this process run in call order. */
  const chains = new Map<string, Promise<unknown>>();

  /** The subject's last append (stream seq and session), or null when the session is unknown. */
  const lastOf = async (key: string): Promise<{ seq: number; a: Append } | null> => {
    try {
      const sm = await ctx.jsm.streams.getMessage(stream, { last_by_subj: subjectOf(key) });
      if (!sm) return null;
      return { seq: sm.seq, a: dec<Append>(sm.data) };
    } catch (e) {
      if (/no message found|not found/i.test(String((e as Error).message))) return null;
      throw e;
    }
  };

  /** The whole history of a session, read through the stream, current as of `last`. */
  const load = async (key: string): Promise<Cached | null> => {
    const last = await lastOf(key);
    if (!last) {
      forget(key);
      return null;
    }
    const have = cache.get(key);
    if (have && have.seq === last.seq) {
      remember(key, have); // most recently used now
      return have;
    }
    // Another gateway appended since: read only what is new, unless a reset came in between.
    if (have && have.seq < last.seq) {
      const msgs = await ctx.subjectMessages(stream, subjectOf(key), have.seq + 1, last.seq);
      const next = msgs.map((m) => dec<Append>(m.data));
      if (next.length > 0 && next[0]!.first === have.messages.length + 1 && msgs.at(-1)!.seq === last.seq) {
        const c: Cached = {
          seq: last.seq,
          info: last.a.s,
          messages: [...have.messages, ...next.flatMap((a) => toStored(a, key))],
        };
        remember(key, c);
        return c;
      }
    }
    const msgs = await ctx.subjectMessages(stream, subjectOf(key), 1, last.seq);
    const messages: StoredMessage[] = [];
    let seq = 0;
    for (const m of msgs) {
      const a = dec<Append>(m.data);
      // Only what a reset left standing: an append whose first seq restarts the count.
      if (a.first === 1) messages.length = 0;
      messages.push(...toStored(a, key));
      seq = m.seq;
    }
    const c: Cached = { seq: Math.max(seq, last.seq), info: last.a.s, messages };
    remember(key, c);
    return c;
  };

  const appendOnce = async (addr: SessionAddress, msgs: NewMessage[], fence?: LeaseFence): Promise<StoredMessage[]> => {
    let tail: { seq: number; info: SessionInfo } | null = cache.get(addr.key) ?? null;
    if (!tail) {
      const l = await ctx.read("read a session's last append", () => lastOf(addr.key));
      tail = l ? { seq: l.seq, info: l.a.s } : null;
    }
    const id = nuid.next();
    for (let attempt = 0; ; attempt++) {
      const t = ctx.now();
      const count = tail?.info.message_count ?? 0;
      const info: SessionInfo = {
        key: addr.key,
        agent: addr.agent,
        channel: addr.channel,
        account: addr.account,
        peer: addr.peer,
        thread: addr.thread,
        created_at: tail?.info.created_at ?? t,
        updated_at: t,
        message_count: count + msgs.length,
      };
      const a: Append = {
        id,
        s: info,
        first: count + 1,
        t,
        m: structuredClone(msgs).map((m) =>
          m.meta !== undefined ? { role: m.role, parts: m.parts, meta: m.meta } : { role: m.role, parts: m.parts },
        ),
      };
      const h = headers();
      h.set(HEADER, Buffer.from(JSON.stringify(info)).toString("base64url"));
      // After the tail was read, before the publish that expects it (see the header).
      if (fence && (await ctx.read("read a session lease", () => leaseOf(addr.key))) !== fence.token) {
        throw new StoreError(
          `the turn's lease on session ${addr.key} was taken over by another worker (it ran past its lease); its messages were not stored`,
        );
      }
      try {
        let ack: { seq: number } | undefined;
        // NATS did not answer (the stream's leader lost with its node, re-elected in 5–10 s on 2.9):
        // the same publish again, for up to 20 s — its Nats-Msg-Id makes a landed first try a duplicate.
        const end = Date.now() + 20_000;
        for (let wait = 100; !ack; wait = Math.min(wait * 2, 1000)) {
          try {
            ack = await ctx.js.publish(subjectOf(addr.key), enc(a), {
              headers: h,
              msgID: `${id}:${attempt}`,
              expect: { lastSubjectSequence: tail?.seq ?? 0, streamName: stream },
            });
          } catch (e) {
            // No acknowledgement (a timeout, a leader lost): it may have landed all the same.
            const l = await lastOf(addr.key).catch(() => null);
            if (l && l.a.id === id) {
              ack = { seq: l.seq };
              Object.assign(a, l.a);
              break;
            }
            if (isWrongLastSequence(e) || !unanswered(e) || !ctx.connected() || Date.now() + wait > end) throw e;
            await Bun.sleep(wait);
          }
        }
        const stored = toStored(a, addr.key);
        const had = cache.get(addr.key);
        if (had && tail && had.seq === tail.seq)
          remember(addr.key, { seq: ack.seq, info: a.s, messages: [...had.messages, ...stored] });
        else if (!tail) remember(addr.key, { seq: ack.seq, info: a.s, messages: stored });
        else forget(addr.key);
        return structuredClone(stored);
      } catch (e) {
        // Another gateway appended (or reset) since: read the new tail and try again.
        if (!isWrongLastSequence(e) || attempt >= 50) throw e;
        forget(addr.key);
        const l = await ctx.read("read a session's last append", () => lastOf(addr.key));
        // This append itself, landed on a try whose answer was lost: done, not appended twice.
        if (l && l.a.id === id) return structuredClone(toStored(l.a, addr.key));
        tail = l ? { seq: l.seq, info: l.a.s } : null;
      }
    }
  };

  const append = async (
    addr: SessionAddress,
    msgs: NewMessage[],
    reply?: InboundReply,
    fence?: LeaseFence,
  ): Promise<StoredMessage[]> => {
    const before = reply ? await inbox.saveReply(reply.inbound, reply.text) : null;
    try {
      return await ctx.run("append messages", () => appendOnce(addr, msgs, fence));
    } catch (e) {
      if (reply && before) await inbox.saveReply(reply.inbound, before.reply).catch(() => {});
      throw e;
    }
  };

  return {
    appendMessages(addr, msgs, reply, fence) {
      const prev = chains.get(addr.key) ?? Promise.resolve();
      const p = prev.then(
        () => append(addr, msgs, reply, fence),
        () => append(addr, msgs, reply, fence),
      );
      const settled = p.catch(() => {});
      chains.set(addr.key, settled);
      void settled.then(() => {
        if (chains.get(addr.key) === settled) chains.delete(addr.key);
      });
      return p;
    },
    sessionVersion: (key) => ctx.read("read a session version", async () => (await lastOf(key))?.seq ?? 0),
    fenceSession: (key) =>
      ctx.settle("fence a session", () =>
        ctx.again(async () => {
          const l = await lastOf(key);
          if (!l) return;
          const a: Append = { id: nuid.next(), s: l.a.s, first: l.a.s.message_count + 1, t: ctx.now(), m: [] };
          const h = headers();
          h.set(HEADER, Buffer.from(JSON.stringify(l.a.s)).toString("base64url"));
          try {
            await ctx.js.publish(subjectOf(key), enc(a), {
              headers: h,
              expect: { lastSubjectSequence: l.seq, streamName: stream },
            });
          } catch (e) {
            // Something else landed on the subject after the takeover (or a reset): older tails lose already.
            if (!isWrongLastSequence(e)) throw e;
          }
        }),
      ),
    getSession: (key) =>
      ctx.read("read a session", async () => {
        const l = await lastOf(key);
        return l ? { ...l.a.s } : null;
      }),
    listSessions: (q) =>
      ctx.read("list sessions", async () => {
        const cursor = q.cursor === undefined ? null : decodeCursor(q.cursor);
        const heads = await ctx.scan(stream, `${prefix}.>`, { lastPerSubject: true, headersOnly: true });
        const all = heads
          .map(
            (m) => JSON.parse(Buffer.from(m.headers?.get(HEADER) ?? "", "base64url").toString("utf8")) as SessionInfo,
          )
          .filter(
            (s) =>
              (q.agent === undefined || s.agent === q.agent) && (q.channel === undefined || s.channel === q.channel),
          )
          .filter((s) => cursor === null || isAfterCursor(s, cursor))
          .sort((a, b) => b.updated_at - a.updated_at || (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
        const page = all.slice(0, q.limit);
        const last = page.at(-1);
        return { sessions: page, next_cursor: all.length > q.limit && last ? encodeCursor(last) : null };
      }),
    history: (key, q) =>
      ctx.read("read history", async () => {
        const c = await load(key);
        if (!c) return [];
        const list = c.messages;
        const upto = q.before === undefined ? list.length : Math.max(0, Math.min(list.length, q.before - 1));
        return structuredClone(list.slice(Math.max(0, upto - q.limit), upto));
      }),
    resetSession: (key) =>
      ctx.run("reset the session", async () => {
        const l = await ctx.again(() => lastOf(key));
        forget(key);
        if (!l) return null;
        await ctx.again(() => ctx.jsm.streams.purge(stream, { filter: subjectOf(key) }));
        return l.a.s.message_count;
      }),
    countSessions: () =>
      ctx.read("count sessions", async () => {
        const si = await ctx.jsm.streams.info(stream);
        return (
          si.state.num_subjects ??
          (await ctx.scan(stream, `${prefix}.>`, { lastPerSubject: true, headersOnly: true })).length
        );
      }),
  };
}
