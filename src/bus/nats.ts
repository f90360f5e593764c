/**
 * The bus over NATS core pub/sub (SPEC §12), falling back to in-process delivery while NATS is
 * unreachable: the gateway keeps serving, and the bus reconnects when NATS returns (the client
 * restores its subscriptions). While disconnected a publish reaches this process's subscribers
 * only — NATS drops messages published during an outage anyway (reference/stack-findings §4).
 */
import type { NatsConnection, Subscription as NatsSubscription } from "@nats-io/transport-node";
import { describeError } from "../lib/errors.ts";
import type { Logger } from "../lib/log.ts";
import { createLocalBus, createSubscription } from "./local.ts";
import type { Bus } from "./types.ts";

export interface NatsBusOptions {
  /** One server or several, comma-separated (a cluster's). */
  url: string;
  log: Logger;
  /** Between reconnect attempts (the client retries for ever). */
  reconnectWaitMs?: number;
}

export function createNatsBus(opts: NatsBusOptions): Bus {
  const local = createLocalBus();
  let nc: NatsConnection | null = null;
  let connected = false;
  let closed = false;
  type Entry = {
    subject: string;
    push: (m: { subject: string; data: Uint8Array }) => void;
    close: () => void;
    sub?: NatsSubscription;
  };
  const natsSubs = new Set<Entry>();

  const attach = (entry: Entry) => {
    if (!nc || entry.sub) return;
    entry.sub = nc.subscribe(entry.subject, {
      callback: (err, msg) => {
        if (!err) entry.push({ subject: msg.subject, data: msg.data });
      },
    });
  };

  // Connect in the background: the gateway must not wait for (or fail on) NATS. Until the first
  // connection, retry on an unref'd timer, so a gateway shutting down is never held up by it.
  let retry: ReturnType<typeof setTimeout> | undefined;
  let warned = false;
  const tryConnect = async () => {
    const { connect } = await import("@nats-io/transport-node");
    try {
      nc = await connect({
        servers: opts.url.split(","),
        maxReconnectAttempts: -1,
        reconnectTimeWait: opts.reconnectWaitMs ?? 1000,
        name: "exoclaw",
      });
    } catch (e) {
      if (!warned)
        opts.log.warn("nats unavailable; using the in-process bus until it answers", {
          url: opts.url,
          error: describeError(e),
        });
      warned = true;
      if (!closed) {
        retry = setTimeout(() => void tryConnect(), opts.reconnectWaitMs ?? 1000);
        retry.unref();
      }
      return;
    }
    if (closed) return void nc.close();
    connected = true;
    opts.log.info("bus connected to nats", { url: opts.url });
    for (const entry of natsSubs) attach(entry);
    for await (const st of nc.status()) {
      if (st.type === "disconnect") {
        connected = false;
        opts.log.warn("nats disconnected; publishing in-process until it returns", { url: opts.url });
      } else if (st.type === "reconnect") {
        connected = true;
        opts.log.info("nats reconnected", { url: opts.url });
      }
    }
  };
  void tryConnect();

  return {
    get mode() {
      return connected ? "nats" : "local";
    },
    async publish(subject, data) {
      if (connected && nc) nc.publish(subject, data);
      else local.deliver({ subject, data });
    },
    subscribe(subject) {
      const sub = createSubscription(() => {
        localSub.close();
        entry.sub?.unsubscribe();
        natsSubs.delete(entry);
      });
      // Local deliveries (while NATS is down) and NATS deliveries both land in this subscription.
      const localSub = local.subscribe(subject);
      void (async () => {
        for await (const m of localSub) sub.push(m);
      })();
      const entry: Entry = { subject, push: (m) => sub.push(m), close: () => sub.close() };
      natsSubs.add(entry);
      attach(entry);
      return sub;
    },
    async close() {
      closed = true;
      clearTimeout(retry);
      // Every subscription ends, as the in-process bus's do.
      for (const entry of [...natsSubs]) entry.close();
      await local.close();
      if (nc) await nc.drain().catch(() => nc?.close());
    },
  };
}
