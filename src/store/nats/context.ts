/**
 * What every port of the NATS store shares: the connection, its JetStream client and manager, the
 * names of the buckets and streams (under one namespace), the escaping of ids into subject tokens
 * and KV keys, `run` (a failure → StoreError; no attempt at all while NATS is unreachable, so
 * `/ready` answers at once), and the two ways of reading a stream: `scan` (a snapshot through an
 * ephemeral ordered consumer) and `follow` (a tail that keeps an in-process view current).
 */
import type { NatsConnection } from "@nats-io/transport-node";
import {
  DeliverPolicy,
  JetStreamApiError,
  type JetStreamClient,
  type JetStreamManager,
  type JsMsg,
} from "@nats-io/jetstream";
import type { KV } from "@nats-io/kv";
import { describeError, isExoError } from "../../lib/errors.ts";
import { StoreError } from "../errors.ts";

export interface NatsContext {
  readonly nc: NatsConnection;
  readonly js: JetStreamClient;
  readonly jsm: JetStreamManager;
  /** The servers, for error messages and `status`. */
  readonly servers: string;
  readonly now: () => number;
  /** Bucket/stream name of a part of the store (`<namespace>_<part>`). */
  name(part: string): string;
  /** Subject prefix of a stream of the store (`<namespace>.<part>`). */
  subject(part: string): string;
  /** Whether the client is connected right now. */
  connected(): boolean;
  /** Runs one store operation: StoreError when NATS is unreachable or the operation fails. */
  run<T>(doing: string, fn: () => Promise<T>): Promise<T>;
  /**
   * As `run`, for a step of a delivery already under way (completing, failing, replying, leases):
   * a connection that just dropped is waited for, up to 5 s (the client reconnects to another node
   * of a cluster within a second or two), rather than failing the delivery at once. `fn` handles
   * unanswered tries itself (`again`).
   */
  settle<T>(doing: string, fn: () => Promise<T>): Promise<T>;
  /**
   * Runs one read: as `run`, but a read that NATS did not answer (a timeout, no responders, the
   * connection down) is tried again for up to `readRetryMs` — a stream's leader lost with its node
   * is re-elected in 5–10 s on 2.9, and a request sent as the connection dropped is lost with it —
   * so a read rides out a node's loss instead of failing the turn. Only reads: a write that timed
   * out may have landed.
   */
  read<T>(doing: string, fn: () => Promise<T>): Promise<T>;
  /**
   * Runs one write that is safe to repeat (a put of a whole value, a delete, a purge, a publish under
   * a fixed Nats-Msg-Id): as `run`, but tried again while NATS does not answer it, as `read` does.
   */
  write<T>(doing: string, fn: () => Promise<T>): Promise<T>;
  /**
   * One step of an operation already under way: `fn` again while NATS does not answer it (a timeout,
   * no responders, a leader being elected, the connection dropped and coming back) for up to the
   * retry time; any other failure, or the time spent, throws. `fn` must be safe to repeat, or
   * `landed` must tell whether a try whose answer was lost took effect (then its value is returned).
   */
  again<T>(fn: () => Promise<T>, landed?: () => Promise<{ value: T } | null>): Promise<T>;
  /** A KV bucket of the store, created when absent (replicas, no direct get: reads go to the leader). */
  bucket(part: string): Promise<KV>;
  /** Gives an existing stream the configured replicas (a changed `[store] replicas` applies at start). */
  scaleTo(stream: string): Promise<void>;
  /** Creates a stream of the store when absent, or scales it to the configured replicas (reads through its leader). */
  ensureStream(cfg: { name: string; subjects: string[]; max_msgs_per_subject?: number }): Promise<void>;
  /** Every message of `stream` on `filter` (the last of each subject with `lastPerSubject`), in stream order. */
  scan(
    stream: string,
    filter: string,
    opts?: { lastPerSubject?: boolean; headersOnly?: boolean; fromSeq?: number },
  ): Promise<JsMsg[]>;
  /**
   * The messages of one subject from `fromSeq` up to `toSeq`, read one by one from the stream's leader
   * (STREAM.MSG.GET next_by_subj): no consumer is created, so a read needs only the stream's own RAFT
   * group, not the meta leader (whose loss on a 3-node cluster stalls consumer creation 10–20 s on 2.9).
   */
  subjectMessages(
    stream: string,
    subject: string,
    fromSeq: number,
    toSeq: number,
  ): Promise<{ seq: number; data: Uint8Array }[]>;
  /** Calls `onMsg` for every message of `stream` from `fromSeq` on, now and as they arrive, until close. */
  follow(stream: string, fromSeq: number, onMsg: (m: JsMsg) => void): Promise<void>;
  /** Stops the tails (before the connection closes). */
  stopFollowing(): void;
  readonly replicas: number;
}

/**
 * An id as one subject token and KV key token: letters, digits, `_` and `-` stay; every other byte
 * of its UTF-8 is `=XX`, so `.`, `*`, `>`, spaces and `=` itself can never split, widen or merge a
 * subject; the empty id is a lone `=`. Injective: two ids never share a token.
 */
export function token(id: string): string {
  if (id === "") return "=";
  let out = "";
  for (const b of Buffer.from(id, "utf8")) {
    const c = String.fromCharCode(b);
    out += /[A-Za-z0-9_-]/.test(c) ? c : "=" + b.toString(16).toUpperCase().padStart(2, "0");
  }
  return out;
}

/** The id a token stands for (inverse of `token`). */
export function untoken(t: string): string {
  if (t === "=") return "";
  const bytes: number[] = [];
  for (let i = 0; i < t.length; i++) {
    if (t[i] === "=") {
      bytes.push(parseInt(t.slice(i + 1, i + 3), 16));
      i += 2;
    } else bytes.push(t.charCodeAt(i));
  }
  return Buffer.from(bytes).toString("utf8");
}

/** JetStream's "wrong last sequence": a compare-and-set lost to another write. */
export function isWrongLastSequence(e: unknown): boolean {
  return e instanceof JetStreamApiError && (e.code === 10071 || /wrong last sequence/i.test(e.message));
}

export const enc = (v: unknown): Uint8Array => new TextEncoder().encode(JSON.stringify(v));
export const dec = <T>(data: Uint8Array): T => JSON.parse(new TextDecoder().decode(data)) as T;

export interface ContextOptions {
  nc: NatsConnection;
  js: JetStreamClient;
  jsm: JetStreamManager;
  servers: string;
  namespace: string;
  replicas: number;
  now: () => number;
  kvm: { create(name: string, opts: Record<string, unknown>): Promise<KV> };
  /** How long a read unanswered by NATS is tried again (default 20 s). */
  readRetryMs?: number;
}

/** A failure where NATS did not answer (worth another try), not one it answered with. */
export function unanswered(e: unknown): boolean {
  if (e instanceof JetStreamApiError) return e.code === 503 || /leader|not available|unavailable/i.test(e.message);
  const m = describeError(e);
  // "jetstream is not enabled" is how the client reads a 503 (no responders): nobody got the request.
  return /timeout|timed out|no responders|503|jetstream is not enabled|unreachable|disconnect|connection closed|reconnect/i.test(
    m,
  );
}

export function natsContext(o: ContextOptions): NatsContext {
  let connected = true;
  let closed = false;
  void (async () => {
    for await (const st of o.nc.status()) {
      if (st.type === "disconnect") connected = false;
      else if (st.type === "reconnect") connected = true;
    }
  })();
  const stops: (() => void)[] = [];
  const explain = (doing: string, e: unknown): StoreError => {
    if (isExoError(e)) return e as StoreError;
    return new StoreError(`cannot ${doing} on the nats store (${o.servers}): ${describeError(e)}`, { cause: e });
  };
  const ctx: NatsContext = {
    nc: o.nc,
    js: o.js,
    jsm: o.jsm,
    servers: o.servers,
    now: o.now,
    replicas: o.replicas,
    name: (part) => `${o.namespace}_${part}`,
    subject: (part) => `${o.namespace}.${part}`,
    connected: () => connected && !o.nc.isClosed(),
    async run(doing, fn) {
      if (!ctx.connected())
        throw new StoreError(
          `cannot ${doing}: the nats store is unreachable (${o.servers}); it reconnects when NATS answers`,
        );
      try {
        return await fn();
      } catch (e) {
        throw explain(doing, e);
      }
    },
    async settle(doing, fn) {
      const end = Date.now() + Math.min(5000, o.readRetryMs ?? 20_000);
      while (!ctx.connected() && !closed && !o.nc.isClosed() && Date.now() < end) await Bun.sleep(100);
      return ctx.run(doing, fn);
    },
    async read(doing, fn) {
      const end = Date.now() + (o.readRetryMs ?? 20_000);
      for (let wait = 100; ; wait = Math.min(wait * 2, 1000)) {
        try {
          return await ctx.run(doing, fn);
        } catch (e) {
          const cause = (e as { cause?: unknown }).cause ?? e;
          // Unreachable fails at once (so `/ready` is 503 at once); only a connected client waits for a leader.
          if (closed || o.nc.isClosed() || !ctx.connected() || Date.now() + wait > end || !unanswered(cause)) throw e;
          await Bun.sleep(wait);
        }
      }
    },
    write: (doing, fn) => ctx.run(doing, () => ctx.again(fn)),
    async again(fn, landed) {
      const end = Date.now() + (o.readRetryMs ?? 20_000);
      for (let wait = 100; ; wait = Math.min(wait * 2, 1000)) {
        try {
          return await fn();
        } catch (e) {
          // Started while connected: a dropped connection is waited for too (the client reconnects to
          // another node within a second or two); a closed client or the time spent is not.
          if (closed || o.nc.isClosed() || Date.now() + wait > end || !unanswered(e)) throw e;
          await Bun.sleep(wait);
          const got = landed ? await ctx.again(landed).catch(() => null) : null;
          if (got) return got.value;
        }
      }
    },
    async bucket(part) {
      const kv = await o.kvm.create(ctx.name(part), { history: 1, replicas: o.replicas, allow_direct: false });
      await ctx.scaleTo(`KV_${ctx.name(part)}`);
      return kv;
    },
    async scaleTo(stream) {
      const si = await o.jsm.streams.info(stream);
      if (si.config.num_replicas !== o.replicas)
        await o.jsm.streams.update(stream, { ...si.config, num_replicas: o.replicas });
    },
    async ensureStream(cfg) {
      try {
        await ctx.scaleTo(cfg.name);
      } catch (e) {
        if (!/stream not found/i.test(describeError(e))) throw e;
        await o.jsm.streams.add({ ...cfg, num_replicas: o.replicas, allow_direct: false, allow_rollup_hdrs: false });
      }
    },
    async scan(stream, filter, opts = {}) {
      const c = await o.js.consumers.get(stream, {
        filter_subjects: filter,
        ...(opts.fromSeq !== undefined
          ? { deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: opts.fromSeq }
          : { deliver_policy: opts.lastPerSubject ? DeliverPolicy.LastPerSubject : DeliverPolicy.All }),
        ...(opts.headersOnly && { headers_only: true }),
      });
      const out: JsMsg[] = [];
      try {
        let pending = (await c.info(true)).num_pending;
        while (pending > 0) {
          const before = out.length;
          const batch = await c.fetch({ max_messages: Math.min(pending, 1000), expires: 2000 });
          for await (const m of batch) {
            out.push(m);
            pending = m.info.pending;
            if (pending === 0) break;
          }
          // Nothing came: what was pending may have been removed meanwhile (a purge) — or the server is slow.
          if (out.length === before && (pending = (await c.info()).num_pending) > 0)
            throw new Error(`reading ${stream} timed out`);
        }
      } finally {
        void c.delete().catch(() => {});
      }
      return out;
    },
    async subjectMessages(stream, subject, fromSeq, toSeq) {
      const out: { seq: number; data: Uint8Array }[] = [];
      for (let seq = fromSeq; seq <= toSeq; ) {
        const sm = await o.jsm.streams.getMessage(stream, { seq, next_by_subj: subject } as never);
        if (!sm || sm.seq > toSeq) break;
        out.push({ seq: sm.seq, data: sm.data });
        seq = sm.seq + 1;
      }
      return out;
    },
    async follow(stream, fromSeq, onMsg) {
      const c = await o.js.consumers.get(stream, {
        deliver_policy: DeliverPolicy.StartSequence,
        opt_start_seq: fromSeq,
      });
      if (closed) return;
      const msgs = await c.consume({ callback: onMsg });
      stops.push(() => void msgs.stop());
    },
    stopFollowing() {
      closed = true;
      for (const s of stops.splice(0)) s();
    },
  };
  return ctx;
}
