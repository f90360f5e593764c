/**
 * The inbound work queue of several gateways on NATS JetStream (SPEC §12, issue 14; design in
 * reference/nats-jetstream.md A2). With `[store] kind = "nats"` a verified webhook's message is stored
 * (the store's inbox, deduplicated by the platform's id for ever through `seen`) and then published
 * here, `<ns>.work.<partition>.<session token>`, with `Nats-Msg-Id` = its record id (a resend within
 * the window is a duplicate on the stream itself); the webhook is acknowledged only after the PubAck.
 *
 * Work: the stream is a work queue split into PARTITIONS subjects by a hash of the session key, each
 * with one durable pull consumer `part-<p>` with `max_ack_pending: 1`. Every gateway pulls from every
 * partition with `next()` (no prefetch), so the turns of one session run one at a time, in order,
 * cluster-wide, and any gateway can serve any partition. A long turn sends `working()` every third of
 * `ack_wait`; a gateway that dies mid-turn stops sending it, and after `ack_wait` the message is
 * redelivered to another gateway. After `max_deliver` deliveries JetStream leaves the message in the
 * stream and emits a MAX_DELIVERIES advisory: the gateway that sees it copies the message to the
 * dead-letter stream `<ns>_work_dead` and deletes it from the queue.
 *
 * Liveness: each gateway writes a heartbeat `{id, at}` to the KV bucket `<ns>_gateways` every few
 * seconds; `status` shows those seen within three intervals (timestamps, not per-key TTL, which 2.9
 * silently ignores). Only nats-server 2.9 features are used.
 */
import type { NatsConnection } from "@nats-io/transport-node";
import {
  AckPolicy,
  DeliverPolicy,
  jetstream,
  type JetStreamClient,
  jetstreamManager,
  type JetStreamManager,
  type JsMsg,
  RetentionPolicy,
  StorageType,
} from "@nats-io/jetstream";
import { Kvm, type KV } from "@nats-io/kv";
import { createHash, randomUUID } from "node:crypto";
import { hostname } from "node:os";
import { describeError, ExoError } from "../lib/errors.ts";
import type { Logger } from "../lib/log.ts";

export interface WorkOptions {
  servers: string[];
  namespace?: string;
  replicas?: number;
  /** Partitions of the queue (default 16); fixed once the stream exists (changing it reshuffles sessions). */
  partitions?: number;
  /** How long a delivery may go without a `working()` before it is redelivered (default 10 s: also how long a delivery lost with a dead NATS node waits). */
  ackWaitMs?: number;
  /** Deliveries before a message is dead-lettered (default 10: with the backoff, about 2.5 minutes of trying). */
  maxDeliver?: number;
  /** Between heartbeats (default 2 s). */
  heartbeatMs?: number;
  /** This gateway's name in heartbeats (default host:pid:random). */
  id?: string;
  log: Logger;
}

/** What a handler did with one work message: `done` acks it; `later` gives it back after `ms`. */
export type WorkVerdict = { done: true } | { done: false; ms: number };

/** A work message: the record id in the store's inbox, and its session (for the partition). */
export interface WorkItem {
  id: string;
  session: string;
  /** 1 on the first delivery. */
  delivery: number;
}

export interface DeadLetter {
  id: string;
  session: string;
  deliveries: number;
  at: number;
}

/** One subject token (letters, digits, `_`, `-`; every other byte `=XX`), as the nats store escapes ids. */
export function subjectToken(id: string): string {
  if (id === "") return "=";
  let out = "";
  for (const b of Buffer.from(id, "utf8")) {
    const c = String.fromCharCode(b);
    out += /[A-Za-z0-9_-]/.test(c) ? c : "=" + b.toString(16).toUpperCase().padStart(2, "0");
  }
  return out;
}

/** The partition of a session key: the first 4 bytes of its SHA-256, mod `n`. */
export function partitionOf(session: string, n: number): number {
  return createHash("sha256").update(session).digest().readUInt32BE(0) % n;
}

/** The wait before the next delivery of a message given back: 1 s, doubling, at most 30 s. */
const backoff = (delivery: number) => Math.min(1000 * 2 ** Math.max(0, delivery - 1), 30_000);

/** A failure where NATS did not answer (a timeout, no responders, a leader being elected, the connection dropped). */
const UNANSWERED =
  /timeout|timed out|no responders|503|jetstream is not enabled|disconnect|reconnect|leader|not available/i;

const enc = (v: unknown) => new TextEncoder().encode(JSON.stringify(v));
const dec = <T>(d: Uint8Array): T => JSON.parse(new TextDecoder().decode(d)) as T;

export class ClusterWork {
  readonly id: string;
  private readonly ns: string;
  private readonly n: number;
  private readonly ackWaitMs: number;
  private readonly maxDeliver: number;
  private stopping = false;
  private readonly loops: Promise<void>[] = [];
  private heartbeat: ReturnType<typeof setInterval> | undefined;
  /** Work messages being handled now, by record id (their `working()` timers). */
  private readonly inFlight = new Map<string, JsMsg>();

  private constructor(
    private readonly nc: NatsConnection,
    private readonly js: JetStreamClient,
    private readonly jsm: JetStreamManager,
    private readonly gateways: KV,
    private readonly replied: KV,
    private readonly opts: WorkOptions,
  ) {
    this.ns = opts.namespace ?? "exoclaw";
    this.n = opts.partitions ?? 16;
    this.ackWaitMs = opts.ackWaitMs ?? 10_000;
    this.maxDeliver = opts.maxDeliver ?? 10;
    this.id = opts.id ?? `${hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`;
  }

  /** Connects and creates the queue, its consumers, the dead-letter stream and the heartbeat bucket. Throws unavailable. */
  static async open(opts: WorkOptions): Promise<ClusterWork> {
    const { connect } = await import("@nats-io/transport-node");
    let nc: NatsConnection;
    try {
      nc = await connect({
        servers: opts.servers,
        timeout: 5000,
        maxReconnectAttempts: -1,
        reconnectTimeWait: 1000,
        name: "exoclaw-work",
      });
    } catch (e) {
      throw new ExoError("unavailable", `cannot reach NATS for the inbound work queue: ${describeError(e)}`, {
        cause: e,
      });
    }
    try {
      const js = jetstream(nc, { timeout: 5000 });
      // On a cluster just started the first API request can go unanswered (sent before the meta
      // leader is elected): asked again with a short timeout, growing, for up to 15 s.
      const end = Date.now() + 15_000;
      for (let wait = 250; ; wait = Math.min(wait * 2, 2000)) {
        try {
          await jetstreamManager(nc, { timeout: wait });
          break;
        } catch (e) {
          if (Date.now() + wait > end || !/timeout|timed out/i.test(describeError(e))) throw e;
        }
      }
      const jsm = await jetstreamManager(nc, { timeout: 5000, checkAPI: false });
      const ns = opts.namespace ?? "exoclaw";
      const replicas = opts.replicas ?? 1;
      const kvm = new Kvm(js);
      const gateways = await kvm.create(`${ns}_gateways`, { history: 1, replicas, allow_direct: false });
      const replied = await kvm.create(`${ns}_replied`, { history: 1, replicas, allow_direct: false });
      const w = new ClusterWork(nc, js, jsm, gateways, replied, opts);
      await w.ensure(replicas);
      return w;
    } catch (e) {
      await nc.close();
      throw e;
    }
  }

  private get stream(): string {
    return `${this.ns}_work`;
  }

  private get deadStream(): string {
    return `${this.ns}_work_dead`;
  }

  private async ensure(replicas: number): Promise<void> {
    const add = async (cfg: Parameters<JetStreamManager["streams"]["add"]>[0]) => {
      try {
        await this.jsm.streams.info(cfg.name!);
      } catch (e) {
        if (!/stream not found/i.test(describeError(e))) throw e;
        await this.jsm.streams.add(cfg);
      }
    };
    await add({
      name: this.stream,
      subjects: [`${this.ns}.work.>`],
      retention: RetentionPolicy.Workqueue,
      storage: StorageType.File,
      num_replicas: replicas,
      duplicate_window: 10 * 60 * 1e9,
    });
    await add({
      name: this.deadStream,
      subjects: [`${this.ns}.workdead.>`],
      storage: StorageType.File,
      num_replicas: replicas,
    });
    // All at once: each consumer is its own RAFT group, elected in about half a second on a cluster,
    // so creating sixteen one after the other made a first start wait eight seconds.
    const part = async (p: number) => {
      const name = `part-${p}`;
      try {
        await this.jsm.consumers.info(this.stream, name);
      } catch {
        await this.jsm.consumers
          .add(this.stream, {
            durable_name: name,
            ack_policy: AckPolicy.Explicit,
            ack_wait: this.ackWaitMs * 1e6,
            max_deliver: this.maxDeliver,
            max_ack_pending: 1,
            deliver_policy: DeliverPolicy.All,
            filter_subject: `${this.ns}.work.${p}.>`,
          })
          .catch((e: unknown) => {
            // Another gateway created it at the same moment.
            if (!/already in use|exists/i.test(describeError(e))) throw e;
          });
      }
    };
    await Promise.all(Array.from({ length: this.n }, (_, p) => part(p)));
  }

  /** Puts a stored message on the queue; resolves after JetStream holds it. Throws unavailable. */
  async publish(id: string, session: string): Promise<void> {
    if (this.nc.isClosed()) throw new ExoError("unavailable", "the inbound work queue is closed");
    const subject = `${this.ns}.work.${partitionOf(session, this.n)}.${subjectToken(session)}`;
    try {
      await this.js.publish(subject, enc({ id, session }), {
        msgID: id,
        expect: { streamName: this.stream },
        timeout: 5000,
      });
    } catch (e) {
      throw new ExoError(
        "unavailable",
        `NATS did not take the message (${describeError(e)}); the platform will send it again`,
        { cause: e },
      );
    }
  }

  /**
   * The reply-once claim: create-if-absent on `<ns>_replied.<record id>`; false when another gateway
   * holds it (it sent, or sends, this reply). A create NATS did not answer (the bucket's leader lost
   * with its node, re-elected in 5–10 s on 2.9) is tried again for up to 20 s; the claim carries a
   * nonce of this call, so a first try that landed unacknowledged is recognised as ours, and nothing
   * else is. Throws unavailable when NATS does not answer in that time.
   */
  async claimReply(id: string): Promise<boolean> {
    const nonce = randomUUID();
    const end = Date.now() + 20_000;
    for (let wait = 100; ; wait = Math.min(wait * 2, 1000)) {
      try {
        try {
          await this.replied.create(subjectToken(id), enc({ by: this.id, at: Date.now(), nonce }));
          return true;
        } catch (e) {
          if (!/wrong last sequence|10071|key exists/i.test(describeError(e))) throw e;
          const held = await this.replied.get(subjectToken(id));
          return held?.operation === "PUT" && dec<{ nonce?: string }>(held.value).nonce === nonce;
        }
      } catch (e) {
        if (this.nc.isClosed() || Date.now() + wait > end || !UNANSWERED.test(describeError(e))) {
          throw new ExoError("unavailable", `cannot claim the reply of ${id}: ${describeError(e)}`, { cause: e });
        }
        await Bun.sleep(wait);
      }
    }
  }

  /** Gives the claim back after a failed send, so a retry may send. */
  async releaseReply(id: string): Promise<void> {
    await this.retrying(() => this.replied.delete(subjectToken(id)));
  }

  /**
   * Marks a claimed reply as sent (after the platform took it): a delivery that finds the claim held
   * and sent knows the message is answered — its completion in the store failed after the send —
   * and completes it instead of waiting for a claim that never comes back.
   */
  async markReplySent(id: string): Promise<void> {
    await this.retrying(async () => {
      const held = await this.replied.get(subjectToken(id));
      if (held?.operation !== "PUT") return;
      await this.replied.put(subjectToken(id), enc({ ...dec<object>(held.value), sent: true }));
    });
  }

  /** Whether the reply of `id` was claimed and marked sent (by any gateway). */
  async replySent(id: string): Promise<boolean> {
    const held = await this.retrying(() => this.replied.get(subjectToken(id)));
    return held?.operation === "PUT" && dec<{ sent?: boolean }>(held.value).sent === true;
  }

  /** `fn` again while NATS does not answer it (a leader being elected), for up to 20 s; `fn` must be safe to repeat. */
  private async retrying<T>(fn: () => Promise<T>): Promise<T> {
    const end = Date.now() + 20_000;
    for (let wait = 100; ; wait = Math.min(wait * 2, 1000)) {
      try {
        return await fn();
      } catch (e) {
        if (this.nc.isClosed() || Date.now() + wait > end || !UNANSWERED.test(describeError(e))) throw e;
        await Bun.sleep(wait);
      }
    }
  }

  /**
   * Starts pulling every partition; `handle` runs one work message at a time per partition; `dead` is
   * told of a message dead-lettered after its last delivery (the inbox shows it to the operator).
   */
  start(handle: (item: WorkItem) => Promise<WorkVerdict>, dead?: (d: DeadLetter) => Promise<void>): void {
    for (let p = 0; p < this.n; p++) this.loops.push(this.pull(p, handle));
    void this.deadLetters(dead);
    const beat = () =>
      void this.gateways.put(subjectToken(this.id), enc({ id: this.id, at: Date.now() })).catch(() => {});
    beat();
    this.heartbeat = setInterval(beat, this.opts.heartbeatMs ?? 2000);
  }

  private async pull(p: number, handle: (item: WorkItem) => Promise<WorkVerdict>): Promise<void> {
    while (!this.stopping) {
      let m: JsMsg | null = null;
      try {
        const c = await this.js.consumers.get(this.stream, `part-${p}`);
        while (!this.stopping) {
          m = await c.next({ expires: 2000 });
          if (!m) continue;
          await this.one(m, handle);
          m = null;
        }
      } catch (e) {
        if (this.stopping) return;
        this.opts.log.debug("work queue: pulling failed; trying again", { partition: p, error: describeError(e) });
        await Bun.sleep(500);
      }
    }
  }

  private async one(m: JsMsg, handle: (item: WorkItem) => Promise<WorkVerdict>): Promise<void> {
    let item: WorkItem;
    try {
      const body = dec<{ id: string; session: string }>(m.data);
      item = { id: body.id, session: body.session, delivery: m.info.deliveryCount };
    } catch {
      m.term();
      return;
    }
    this.inFlight.set(item.id, m);
    const timer = setInterval(() => m.working(), Math.max(100, Math.floor(this.ackWaitMs / 3)));
    try {
      const verdict = await handle(item);
      if (verdict.done) await m.ackAck({ timeout: 5000 }).catch(() => m.ack());
      else m.nak(Math.max(verdict.ms, backoff(item.delivery)));
    } catch (e) {
      // The store did not answer (NATS trouble, an election): every delivery counts, so wait longer each time.
      this.opts.log.warn("work message failed; redelivered later", {
        id: item.id,
        delivery: item.delivery,
        error: describeError(e),
      });
      m.nak(backoff(item.delivery));
    } finally {
      clearInterval(timer);
      this.inFlight.delete(item.id);
    }
  }

  /** MAX_DELIVERIES advisories → the dead-letter stream, and the message deleted from the queue. */
  private async deadLetters(dead?: (d: DeadLetter) => Promise<void>): Promise<void> {
    const sub = this.nc.subscribe(`$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.${this.stream}.*`);
    for await (const a of sub) {
      if (this.stopping) break;
      try {
        const adv = dec<{ stream_seq: number; deliveries: number }>(a.data);
        const sm = await this.jsm.streams.getMessage(this.stream, { seq: adv.stream_seq });
        if (!sm) continue;
        const body = dec<{ id: string; session: string }>(sm.data);
        const letter: DeadLetter = { ...body, deliveries: adv.deliveries, at: Date.now() };
        // Every gateway sees the advisory: the stream's Nats-Msg-Id keeps one copy, the delete one removal.
        const ack = await this.js.publish(`${this.ns}.workdead.${subjectToken(body.id)}`, enc(letter), {
          msgID: `dead:${body.id}:${adv.stream_seq}`,
        });
        await this.jsm.streams.deleteMessage(this.stream, adv.stream_seq).catch(() => {});
        if (!ack.duplicate)
          await dead?.(letter).catch((e: unknown) =>
            this.opts.log.warn("could not record a dead letter in the inbox", { id: body.id, error: describeError(e) }),
          );
        this.opts.log.warn("work message dead-lettered after its last delivery", {
          id: body.id,
          deliveries: adv.deliveries,
        });
      } catch (e) {
        this.opts.log.warn("could not dead-letter a work message", { error: describeError(e) });
      }
    }
  }

  /** The dead-lettered work messages (most recent 1000). */
  async deadList(): Promise<DeadLetter[]> {
    const si = await this.jsm.streams.info(this.deadStream);
    const out: DeadLetter[] = [];
    const first = Math.max(si.state.first_seq, si.state.last_seq - 999);
    for (let seq = first; si.state.messages > 0 && seq <= si.state.last_seq; seq++) {
      const sm = await this.jsm.streams.getMessage(this.deadStream, { seq }).catch(() => null);
      if (sm) out.push(dec<DeadLetter>(sm.data));
    }
    return out;
  }

  /** The gateways whose heartbeat is fresh (seen within three intervals), this one included. */
  async peers(): Promise<string[]> {
    const now = Date.now();
    const fresh = 3 * (this.opts.heartbeatMs ?? 2000);
    const out: string[] = [];
    for await (const k of await this.gateways.keys()) {
      const e = await this.gateways.get(k);
      if (!e || e.operation !== "PUT") continue;
      const hb = dec<{ id: string; at: number }>(e.value);
      if (now - hb.at <= fresh) out.push(hb.id);
    }
    return out;
  }

  /** The cluster as `status` shows it: gateways seen, NATS servers, the queue and its consumers, dead letters. */
  async status(): Promise<Record<string, unknown>> {
    const now = Date.now();
    const fresh = 3 * (this.opts.heartbeatMs ?? 2000);
    const gateways: { id: string; seen_ms_ago: number }[] = [];
    try {
      for await (const k of await this.gateways.keys()) {
        const e = await this.gateways.get(k);
        if (!e || e.operation !== "PUT") continue;
        const hb = dec<{ id: string; at: number }>(e.value);
        if (now - hb.at <= fresh) gateways.push({ id: hb.id, seen_ms_ago: now - hb.at });
      }
      const si = await this.jsm.streams.info(this.stream);
      const dead = await this.jsm.streams.info(this.deadStream);
      let waiting = 0;
      let inFlight = 0;
      let redelivered = 0;
      for (let p = 0; p < this.n; p++) {
        const ci = await this.jsm.consumers.info(this.stream, `part-${p}`).catch(() => null);
        if (!ci) continue;
        waiting += ci.num_pending;
        inFlight += ci.num_ack_pending;
        redelivered += ci.num_redelivered;
      }
      const server = this.nc.info;
      return {
        cluster: {
          this_gateway: this.id,
          gateways: gateways.sort((a, b) => (a.id < b.id ? -1 : 1)),
          nats: {
            connected_to: server ? `${server.host}:${server.port}` : null,
            server_name: server?.server_name ?? null,
            cluster: server?.cluster ?? null,
            servers: this.nc.getServer(),
          },
          work: {
            stream: this.stream,
            messages: si.state.messages,
            replicas: si.config.num_replicas,
            partitions: this.n,
            waiting,
            in_flight: inFlight,
            redelivered,
          },
          dead_letters: dead.state.messages,
        },
      };
    } catch (e) {
      return { cluster: { this_gateway: this.id, error: describeError(e) } };
    }
  }

  /** Shutdown's first step: no new work message is pulled. */
  pause(): void {
    this.stopping = true;
    clearInterval(this.heartbeat);
  }

  /** Stops pulling; what is in flight finishes (or is redelivered elsewhere after ack_wait). */
  async stop(): Promise<void> {
    this.stopping = true;
    clearInterval(this.heartbeat);
    await this.gateways.delete(subjectToken(this.id)).catch(() => {});
    await Promise.race([Promise.allSettled(this.loops), Bun.sleep(3000)]);
    if (!this.nc.isClosed()) await this.nc.drain().catch(() => this.nc.close());
  }
}
