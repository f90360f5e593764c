/**
 * The NATS store (`[store] kind = "nats"`, SPEC §12): every port on JetStream, so several gateways on
 * one NATS (or a 3-node cluster with `replicas = 3`) share sessions, history, usage, facts, the
 * inbox, pairings, approvals and plugin state. Each port is its own file under ./nats/; the layout (buckets,
 * streams, subjects) is in docs/nats.md. Only nats-server 2.9 features are used.
 *
 * Opening connects (or fails with a StoreError naming the servers) and creates what is missing.
 * While NATS is unreachable every call fails at once with a StoreError (so `/ready` is 503) and the
 * client reconnects for ever; calls work again as soon as it is back.
 */
import { jetstream, type JetStreamManager, jetstreamManager } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/transport-node";
import { describeError } from "../lib/errors.ts";
import { StoreError } from "./errors.ts";
import { natsApprovals } from "./nats/approvals.ts";
import { natsContext } from "./nats/context.ts";
import { natsConversations } from "./nats/conversations.ts";
import { natsFacts } from "./nats/facts.ts";
import { natsInbox } from "./nats/inbox.ts";
import { type NatsLeases, natsLeases } from "./nats/leases.ts";
import { natsPairings } from "./nats/pairings.ts";
import { natsPluginState } from "./nats/plugin-state.ts";
import { natsUsageLedger } from "./nats/usage.ts";
import type { Store, StoreDetails } from "./types.ts";

export interface NatsStoreOptions {
  /** NATS servers (`nats://host:port`), any of a cluster's. */
  servers: string[];
  /** Streams and buckets are named `<namespace>_<part>`, subjects `<namespace>.<part>.…` (default "exoclaw"). */
  namespace?: string;
  /** JetStream replicas of every stream and bucket: 1, or 3 on a 3-node cluster. */
  replicas?: number;
  now?: () => number;
  /** How long opening waits for a first connection (default 5 s). */
  connectTimeoutMs?: number;
  /** Between reconnect attempts (default 1 s). */
  reconnectWaitMs?: number;
  /** How long one JetStream request waits (default 5 s). */
  requestTimeoutMs?: number;
  /**
   * This gateway's stable name among the gateways on the store (host and state directory), kept on
   * its pending approvals: at start-up only its own, a stopped gateway's and overdue ones are expired.
   */
  owner?: string;
  /** Approval owners' heartbeats (tests shorten them). */
  approvalHeartbeatMs?: number;
}

/** A store's streams and buckets, briefly, for `status`. */
export type NatsStoreInfo = StoreDetails;

export type NatsStore = Store & { describe(): Promise<NatsStoreInfo> };

/** A server list fit for logs and `status`: credentials in a URL (`nats://user:pass@host`) are masked. */
export function shownServers(servers: readonly string[]): string {
  return servers.map((s) => s.replace(/^((?:[a-z]+:\/\/)?)[^/@]+@/i, "$1***@")).join(",");
}

export async function openNatsStore(opts: NatsStoreOptions): Promise<NatsStore> {
  const servers = shownServers(opts.servers);
  const namespace = opts.namespace ?? "exoclaw";
  if (!/^[A-Za-z0-9_-]+$/.test(namespace))
    throw new StoreError(`store namespace ${JSON.stringify(namespace)}: use letters, digits, _ and - only`);
  const replicas = opts.replicas ?? 1;
  const { connect } = await import("@nats-io/transport-node");
  let nc;
  try {
    nc = await connect({
      servers: opts.servers,
      timeout: opts.connectTimeoutMs ?? 5000,
      maxReconnectAttempts: -1,
      reconnectTimeWait: opts.reconnectWaitMs ?? 1000,
      name: "exoclaw-store",
    });
  } catch (e) {
    throw new StoreError(
      `cannot reach the nats store at ${servers}: ${describeError(e)} (is nats-server running with JetStream, -js?)`,
      { cause: e },
    );
  }
  try {
    const timeout = opts.requestTimeoutMs ?? 5000;
    const js = jetstream(nc, { timeout });
    const jsm = await jetstreamReady(nc, timeout, 3 * timeout);
    const ctx = natsContext({
      nc,
      js,
      jsm,
      servers,
      namespace,
      replicas,
      now: opts.now ?? Date.now,
      kvm: new Kvm(js) as never,
    });
    const inbox = await natsInbox(ctx);
    // Conversations check a fenced append against the leases; the leases fence a taken-over session's subject.
    let leases: NatsLeases | null = null;
    const [conversations, usage, pluginState, pairings, facts, approvals] = await Promise.all([
      natsConversations(ctx, inbox, (key) => leases!.tokenOf(key)),
      natsUsageLedger(ctx),
      natsPluginState(ctx),
      natsPairings(ctx),
      natsFacts(ctx),
      natsApprovals(ctx, {
        ...(opts.owner !== undefined && { owner: opts.owner }),
        ...(opts.approvalHeartbeatMs !== undefined && { heartbeatMs: opts.approvalHeartbeatMs }),
      }),
    ]);
    const { fenceSession, ...conversationsPort } = conversations;
    leases = await natsLeases(ctx, fenceSession);
    const { tokenOf: _token, ...leasesPort } = leases;
    const { saveReply: _internal, ...inboxPort } = inbox;
    const { stopHeartbeat, ...approvalsPort } = approvals;
    return {
      kind: "nats",
      location: `${servers}, namespace ${namespace}, ${replicas} replica${replicas === 1 ? "" : "s"}`,
      ...conversationsPort,
      ...leasesPort,
      ...usage,
      ...pluginState,
      ...inboxPort,
      ...pairings,
      ...facts,
      ...approvalsPort,
      describe: async () => {
        const streams: NatsStoreInfo["streams"] = [];
        let error: string | undefined;
        try {
          if (ctx.connected()) {
            for await (const si of jsm.streams.list()) {
              if (!si.config.name.startsWith(`${namespace}_`) && !si.config.name.startsWith(`KV_${namespace}_`))
                continue;
              streams.push({
                name: si.config.name,
                messages: si.state.messages,
                bytes: si.state.bytes,
                subjects: si.state.num_subjects ?? 0,
                replicas: si.config.num_replicas,
              });
            }
          }
        } catch (e) {
          // `status` still answers while the cluster is busy (an election, a stream scaling).
          error = describeError(e);
        }
        return {
          servers,
          connected: ctx.connected(),
          replicas,
          streams: streams.sort((a, b) => (a.name < b.name ? -1 : 1)),
          ...(error !== undefined && { error }),
        };
      },
      async close() {
        stopHeartbeat();
        ctx.stopFollowing();
        // Nothing to drain into a NATS that is gone: close at once rather than wait for it.
        if (ctx.connected()) await nc.drain().catch(() => nc.close());
        else await nc.close();
      },
    };
  } catch (e) {
    await nc.close();
    throw e instanceof StoreError
      ? e
      : new StoreError(
          `cannot open the nats store at ${servers}: ${describeError(e)} (JetStream enabled? enough servers for ${replicas} replicas?)`,
          { cause: e },
        );
  }
}

/**
 * The JetStream manager once JetStream answers. On a cluster just started, the first API request
 * can be sent before the meta leader is elected and is then never answered (measured: lost at
 * 0.5 s, the next one answered at once); waiting the whole request timeout for it made a first open
 * take 5 s per try. So the account check is asked with a short timeout, growing, until one is
 * answered or `waitMs` has passed; a refusal (JetStream not enabled) fails at once.
 */
async function jetstreamReady(nc: NatsConnection, timeoutMs: number, waitMs: number): Promise<JetStreamManager> {
  const end = Date.now() + waitMs;
  for (let wait = 250; ; wait = Math.min(wait * 2, 2000)) {
    const left = end - Date.now();
    try {
      await jetstreamManager(nc, { timeout: Math.max(100, Math.min(wait, left)) });
      return await jetstreamManager(nc, { timeout: timeoutMs, checkAPI: false });
    } catch (e) {
      if (Date.now() >= end || !/timeout|timed out/i.test(describeError(e))) throw e;
    }
  }
}
