/**
 * The channels capability module (see src/gateway/capability.ts for the lifecycle): owns the
 * webhook routes (`GET|POST /webhook/:channel`), the delivery retry loop and the intake's safety-net
 * timer, the inbox and pairing services, the outbox gauges, and the built-in channel plugins — loaded
 * through the plugin registry, so a refused one shows in `plugin.list`, `/ready` and `status`. It
 * hands verified button presses to `onAction` (an approval's Allow/Deny) and sends what it is asked
 * to a channel's peer (`notify`: an approval request to the channel's owner).
 *
 * Reload: the channel list, their secrets and policies follow the new config at once (a newly
 * named built-in plugin is loaded in the background); a channel whose secret is missing or blank
 * refuses the whole reload (`check`).
 */
import type { InboundAddress } from "../core/index.ts";
import type { Hono } from "hono";
import type { AgentRunner } from "../agent/index.ts";
import type { Bus } from "../bus/index.ts";
import { type Config, type LiveConfig, readCredential } from "../config/index.ts";
import { ExoError } from "../lib/errors.ts";
import type { Logger } from "../lib/log.ts";
import type { Metrics } from "../lib/metrics.ts";
import type { Route } from "../router/index.ts";
import type { PluginHost, PluginRegistry } from "../sandbox/index.ts";
import type { PendingInbound, Store } from "../store/index.ts";
import { DEFAULT_POLICY } from "./access.ts";
import { channelSpecs, checkChannelSecrets } from "./config.ts";
import { Inbox } from "./inbox.ts";
import { DEFAULT_RETRY_POLICY, RetryLoop } from "./outbox.ts";
import { Pairings } from "./pairing.ts";
import {
  addressOf,
  ChannelPipeline,
  type ChannelSpec,
  type DeliveryOutcome,
  type InboundMessage,
  type PipelineDeps,
} from "./pipeline.ts";
import type { SendVerdict } from "./send-result.ts";

export interface ChannelsModuleDeps {
  live: LiveConfig;
  store: Store;
  host: PluginHost;
  plugins: PluginRegistry;
  runner: AgentRunner;
  route: (addr: InboundAddress) => Route;
  bus: Bus;
  metrics: Metrics;
  log: Logger;
  /** The first retry delay of a failed delivery (default 5 s); tests shrink it. */
  retryIntervalMs?: number;
  /** A verified button press (never stored, never a turn): the approvals' owner buttons. Absent: ignored. */
  onAction?: (channel: string, m: InboundMessage) => Promise<void>;
  /** Several gateways on NATS (src/cluster/work.ts): the JetStream work queue; absent on one gateway. */
  work?: NonNullable<PipelineDeps["workQueue"]>;
}

/** The routes' view of the gateway's authentication (src/gateway/server.ts RouteAuth). */
interface WebhookAuth {
  checkRequest(req: Request): "ok" | "missing" | "wrong" | "limited";
  remoteOf(req: Request): string;
  holdOpen(req: Request): void;
}

export class ChannelsModule {
  readonly name = "channels";
  readonly pairings: Pairings;
  readonly inbox: Inbox;
  private specs: Map<string, ChannelSpec>;
  private builtins: ReturnType<typeof channelSpecs>["builtins"];
  private pipeline: ChannelPipeline | undefined;
  private readonly retryLoop: RetryLoop;
  private readonly counts: ReturnType<typeof cachedCounts>;
  private drainTimer: ReturnType<typeof setInterval> | undefined;

  constructor(private readonly deps: ChannelsModuleDeps) {
    const config = deps.live.current;
    ({ specs: this.specs, builtins: this.builtins } = channelSpecs(config, (name) =>
      readCredential(config.home, name),
    ));
    this.pairings = new Pairings(deps.store);
    // The /metrics gauges read counts kept here, refreshed after deliveries (a gauge is read synchronously).
    this.counts = cachedCounts(deps.store);
    // Messages accepted before a crash, or whose delivery failed, are tried again when due (./outbox.ts).
    // On the work queue a message never tried is the queue's: the retry loop publishes it again
    // (stored while NATS did not take it; a duplicate within JetStream's window is dropped by it, and
    // a later copy waits behind the first in its session's partition, which then finds it done).
    this.retryLoop = new RetryLoop({
      store: deps.store,
      log: deps.log,
      isBusy: (id) => this.pipeline?.isDelivering(id) ?? false,
      // One with a reply saved (its turn ran; recording the failure may have failed too) is delivered
      // here: the queue already took its copy, so a publish again would be a duplicate it drops.
      deliver: (rec) =>
        deps.work && rec.attempts === 0 && rec.reply === null ? this.requeue(rec) : this.deliverStored(rec),
    });
    this.inbox = new Inbox(deps.store, {
      deliverNow: (rec) => this.deliverStored(rec),
      onChange: () => this.counts.refresh(),
    });
    const m = deps.metrics;
    m.help(
      "exoclaw_channel_refused_total",
      "Channel messages that reached no model, by channel and reason (stranger, pairing_full, open_full, not_allowed, group_not_listed, not_mentioned, rate_limited).",
      "counter",
    );
    m.help(
      "exoclaw_channel_deliveries_total",
      "Channel delivery attempts by channel and result (sent, failed = retried later, dead_lettered).",
      "counter",
    );
    m.gauge("exoclaw_channel_outbox_pending", "Channel messages waiting for a retry.", () => this.counts.pending);
    m.gauge(
      "exoclaw_channel_outbox_dead",
      "Channel messages dead-lettered (exoclaw inbox list).",
      () => this.counts.dead,
    );
  }

  /** Loads the built-in channel plugins the config names, through the registry (before the gateway listens). */
  async load(): Promise<void> {
    await this.deps.plugins.require(this.builtins, this.deps.live.current.home);
  }

  /** The channel spec of `name` under the live config. */
  spec(name: string): ChannelSpec | undefined {
    return this.specs.get(name);
  }

  /**
   * Sends a message that answers nothing to a channel's peer (an approval request to its owner), with
   * buttons where the plugin supports them; not stored, not retried. A channel not configured or not
   * running yet is a refusal, not a throw; a failing plugin throws.
   */
  async notify(
    name: string,
    to: { account: string; peer: string },
    text: string,
    buttons: readonly { text: string; data: string }[],
  ): Promise<SendVerdict> {
    const spec = this.specs.get(name);
    if (!spec || !this.pipeline) return { ok: false, error: `channel ${name} is not running`, permanent: false };
    return this.pipeline.notify(spec, to, text, buttons);
  }

  routes(app: Hono, auth: WebhookAuth): void {
    const { deps } = this;
    const retry = {
      ...DEFAULT_RETRY_POLICY,
      ...(deps.retryIntervalMs !== undefined && { firstDelayMs: deps.retryIntervalMs }),
    };
    const token = deps.live.current.gateway.token;
    const p = new ChannelPipeline({
      host: deps.host,
      store: deps.store,
      runner: deps.runner,
      route: deps.route,
      log: deps.log,
      bus: deps.bus,
      // The http channel (the gateway token's own) answers in its response, after the turn: once
      // authenticated, its request is not cut by the idle timeout (a call may wait for an approval).
      gatewayAuth: (req) => {
        const ok = auth.checkRequest(req) === "ok";
        if (ok) auth.holdOpen(req);
        return ok;
      },
      remoteOf: auth.remoteOf,
      // The token comes from the flag or the environment only: it does not change on reload.
      hostSecrets: () => (token ? [token] : []),
      policy: (name) => deps.live.current.channels[name],
      pairings: this.pairings,
      metrics: deps.metrics,
      // Bounded work (issue 10): channel messages held in memory (two per turn slot); the rest wait in the store.
      channelSpec: (name) => this.specs.get(name),
      maxHeld: () => 2 * deps.live.current.gateway.max_concurrent_turns,
      retry,
      ...(deps.onAction && { onAction: deps.onAction }),
      ...(deps.work && { workQueue: deps.work }),
      onDelivery: (outcome) => {
        if (outcome.state === "pending") this.retryLoop.schedule(outcome.next_at);
        if (outcome.state !== "busy") this.counts.refresh();
      },
    });
    this.pipeline = p;
    app.get("/webhook/:channel", (c) => {
      const spec = this.specs.get(c.req.param("channel"));
      if (!spec) throw new ExoError("not_found", `no channel ${c.req.param("channel")}`);
      const r = p.handshake(spec, c.req.raw);
      return new Response(r.body, { status: r.status, headers: r.headers });
    });
    app.post("/webhook/:channel", async (c) => {
      const spec = this.specs.get(c.req.param("channel"));
      if (!spec) throw new ExoError("not_found", `no channel ${c.req.param("channel")}`);
      const r = await p.handle(spec, c.req.raw);
      return new Response(r.body, { status: r.status, headers: r.headers });
    });
  }

  /**
   * Once the gateway listens: messages accepted before a crash, or whose delivery failed, are tried
   * again when due (the retry loop); messages never tried yet (waiting under load, or accepted before
   * a restart) are the intake's, drained in order per session within the turn bound.
   */
  start(): void {
    this.retryLoop.start();
    this.counts.refresh();
    this.pipeline?.drain();
    // A safety net: the intake drains itself when a delivery ends; this also catches a store that was
    // unreadable at that moment.
    this.drainTimer = setInterval(() => this.pipeline?.drain(), 60_000);
    this.drainTimer.unref();
  }

  check(next: Config): void {
    checkChannelSecrets(next, (name) => readCredential(next.home, name));
  }

  /** Channels follow the file: specs and policies at once, a newly named built-in plugin in the background. */
  reload(next: Config): [] {
    ({ specs: this.specs, builtins: this.builtins } = channelSpecs(next, (name) => readCredential(next.home, name)));
    void this.deps.plugins.require(this.builtins, next.home);
    return [];
  }

  status(): Promise<Record<string, unknown>> {
    return Promise.all([this.deps.store.countInbound(), this.pairings.status()]).then(([inbound, pairing]) => ({
      inbound,
      pairing,
      open_people: this.pipeline?.openStatus() ?? {},
      ...channelAccessStatus(this.deps.live.current, this.deps.host),
    }));
  }

  quiesce(): void {
    this.pipeline?.close();
    clearInterval(this.drainTimer);
  }

  /** A message still pending at the end stays in the store and is retried at the next start. */
  idle(): Promise<unknown> {
    return Promise.all([this.retryLoop.stop(), this.pipeline?.idle()]);
  }

  /**
   * One message pulled from the work queue (src/cluster/work.ts): delivered unless it is done (not in
   * the inbox), dead-lettered, or the retry loop's (tried before). `done` acks it; a busy one (being
   * delivered here, or its reply claimed by another gateway) is given back to the queue for a while.
   */
  async work(item: { id: string }): Promise<{ done: true } | { done: false; ms: number }> {
    const rec = await this.deps.store.getInbound(item.id);
    if (!rec || rec.dead_at !== null || rec.attempts > 0) return { done: true };
    const outcome = await this.deliverStored(rec);
    return outcome.state === "busy" ? { done: false, ms: 2000 } : { done: true };
  }

  /** A work message dead-lettered after its last delivery: dead in the inbox too, for the operator (`inbox retry` or `drop`). */
  async workDead(id: string, deliveries: number): Promise<void> {
    const rec = await this.deps.store.getInbound(id);
    if (!rec || rec.dead_at !== null) return;
    await this.deps.store.failInbound(id, {
      error: `not delivered after ${deliveries} deliveries from the work queue`,
      retry_at: null,
      at: Date.now(),
    });
    this.counts.refresh();
  }

  /** Puts a stored message never tried back on the work queue (a busy outcome: the queue delivers it). */
  private async requeue(rec: PendingInbound): Promise<DeliveryOutcome> {
    try {
      const m = JSON.parse(rec.payload) as InboundMessage;
      await this.deps.work!.publish(rec.id, this.deps.route(addressOf(rec.channel, m)).session);
    } catch (e) {
      this.deps.log.warn("could not put a stored message back on the work queue; tried again later", {
        message: rec.id,
        error: e instanceof Error ? e.message : String(e),
      });
    }
    return { state: "busy" };
  }

  /** Tries a stored message once more through its channel (the retry loop, `inbox retry`). */
  private async deliverStored(rec: PendingInbound): Promise<DeliveryOutcome> {
    const spec = this.specs.get(rec.channel);
    if (spec && this.pipeline) return this.pipeline.deliver(spec, rec);
    // Its channel left the config: kept for the operator (`inbox retry` once it is back, or `drop`).
    const error = `channel ${rec.channel} is not configured`;
    await this.deps.store.failInbound(rec.id, { error, retry_at: null, at: Date.now() });
    this.counts.refresh();
    return { state: "dead", error };
  }
}

/** Pending and dead-lettered counts for the /metrics gauges; `refresh` coalesces while one read runs. */
function cachedCounts(store: Store): { pending: number; dead: number; refresh(): void } {
  let reading = false;
  let again = false;
  const counts = {
    pending: 0,
    dead: 0,
    refresh() {
      if (reading) return void (again = true);
      reading = true;
      void store
        .countInbound()
        .then(
          (c) => Object.assign(counts, c),
          () => {},
        )
        .finally(() => {
          reading = false;
          if (again) (again = false), counts.refresh();
        });
    },
  };
  return counts;
}

/**
 * Who may talk on each channel, for `status`, and the exposures among them: a channel with
 * `dm_policy = "open"` answers anyone who finds it, at the operator's cost. The `http` channel is the
 * operator's own (gateway token) and is never judged.
 */
function channelAccessStatus(
  config: Config,
  host: PluginHost,
): { channels: Record<string, unknown>; exposures: string[] } {
  const out: Record<string, unknown> = {};
  const exposures: string[] = [];
  for (const [name, ch] of Object.entries(config.channels)) {
    const plugin = ch.plugin ?? name;
    const declared = host.get(plugin)?.description.channel;
    if (declared ? declared.id === "http" && declared.verify === "none" : plugin === "http") {
      out[name] = { dm_policy: "operator (gateway token)" };
      continue;
    }
    const p = { ...DEFAULT_POLICY, ...ch };
    out[name] = {
      dm_policy: p.dm_policy,
      allow_from: p.allow_from.length,
      groups: p.groups,
      require_mention: p.require_mention,
      rate_per_minute: p.rate_per_minute,
    };
    if (p.dm_policy === "open")
      exposures.push(
        `channel ${name}: dm_policy = "open" — anyone who finds it is answered and spends your budget; use "pairing" or "allowlist"`,
      );
    if (p.groups.includes("*") && !p.require_mention)
      exposures.push(
        `channel ${name}: every group is answered, mentioned or not (groups = ["*"], require_mention = false)`,
      );
  }
  return { channels: out, exposures };
}
