/**
 * The composition root: builds every module from a Config and starts the gateway. The one file
 * that knows all modules; everything else receives what it needs as arguments.
 */
import { join } from "node:path";
import { type Config, readCredential } from "./config/index.ts";
import { resolveAgentKey } from "./config/api-keys.ts";
import { ConfigError } from "./lib/errors.ts";
import type { Logger } from "./lib/log.ts";
import { createMetrics } from "./lib/metrics.ts";
import { BudgetGuard, periodStarts } from "./metering/index.ts";
import { createSoulReader, memoryTools, personOf, recall, soulPath } from "./memory/index.ts";
import { usageMethods } from "./gateway/usage-methods.ts";
import { memoryMethods } from "./gateway/memory-methods.ts";
import { pluginMethods } from "./gateway/plugin-methods.ts";
import { type Gateway, type GatewayOptions, startGateway } from "./gateway/server.ts";
import { sessionMethods } from "./gateway/session-methods.ts";
import { loadConfiguredPlugin, PluginHost, pluginHostCommand, PluginRegistry } from "./sandbox/index.ts";
import { ChannelPipeline, channelSpecs, checkChannelSecrets, DEFAULT_POLICY, DEFAULT_RETRY_POLICY, type DeliveryOutcome, Inbox, Pairings, RetryLoop } from "./channels/index.ts";
import { pairingMethods } from "./gateway/pairing-methods.ts";
import { inboxMethods } from "./gateway/inbox-methods.ts";
import { type Bus, createLocalBus, createNatsBus } from "./bus/index.ts";
import { createRouter, type InboundAddress, type Route, type Router } from "./router/index.ts";
import { createMemoryStore, openSqliteStore, type PendingInbound, type Store } from "./store/index.ts";
import { configMethods } from "./gateway/config-methods.ts";
import { chatMethods } from "./gateway/chat-methods.ts";
import { mountOpenAICompat } from "./gateway/openai-compat.ts";
import { mcpMethods } from "./gateway/mcp-methods.ts";
import { mountMcpServer } from "./gateway/mcp-server.ts";
import { McpClients } from "./mcp/index.ts";
import type { StreamFn } from "./agent/loop.ts";
import { AgentRunner } from "./agent/runner.ts";
import { createToolBox } from "./agent/toolbox.ts";
import { ApprovalBroker, configuredSecrets, gateTurn, OwnerApprovals } from "./approvals/index.ts";
import { approvalMethods } from "./gateway/approval-methods.ts";
import { providerStream } from "./agent/provider-factory.ts";
import type { AgentConfig } from "./config/index.ts";

export interface App {
  readonly gateway: Gateway;
  readonly bus: Bus;
  readonly store: Store;
  readonly plugins: PluginRegistry;
  /** Which agent and session an inbound message belongs to, under the current bindings. */
  route(addr: InboundAddress): Route;
  /**
   * Reads the config again and swaps in the new bindings and agents (SIGHUP, `config.reload`).
   * Throws ConfigError and keeps the old ones when the new config is invalid or a channel's secret
   * is missing or blank.
   */
  reload(): { file: string | null; bindings: number; agents: string[] };
  /** Stops the gateway, then the plugin processes, then closes the store. */
  stop(): Promise<void>;
}

export interface AppOptions {
  config: Config;
  log: Logger;
  /** Reads the config again from its sources (file, env, flags); defaults to the startup config. */
  reloadConfig?: () => Config;
  /** Test seams passed through to the gateway (auth timeout, limiter). */
  gateway?: Omit<GatewayOptions, "config" | "log" | "methods" | "statusExtra">;
  /** How an agent's model is called; by default its configured provider (and fallbacks) over HTTP. */
  streamFor?: (agent: AgentConfig) => StreamFn;
  /**
   * The first retry delay of a failed channel delivery (default 5 s); later ones keep their ratio to
   * it (30 s, 2 min, 10 min, 1 h), 8 attempts in all. Tests shrink it.
   */
  retryIntervalMs?: number;
  /** Environment for API key resolution; defaults to none (keys from credential files only). */
  env?: Readonly<Record<string, string | undefined>>;
  /** Test seam: wraps the opened store (fault injection, such as a crash at a chosen write). */
  wrapStore?: (store: Store) => Store;
}

/** How long shutdown waits for requests and turns in flight. */
const DRAIN_MS = 10_000;

/** Opens the configured store. Throws StoreError (corrupt, read-only, newer schema) or ConfigError. */
export function openStore(config: Config): Store {
  switch (config.store.kind) {
    case "sqlite":
      return openSqliteStore(join(config.home, "exoclaw.db"));
    case "memory":
      return createMemoryStore();
    case "nats":
      throw new ConfigError(`store.kind = "nats" (sessions in JetStream KV, for several gateways) is not built yet: use "sqlite" (the default); [bus] nats_url works on its own`);
    default: {
      const never: never = config.store.kind;
      throw new ConfigError(`store.kind: unknown kind ${String(never)}`);
    }
  }
}

/**
 * A plugin host whose state lives in `store` and whose secrets come from `<state>/credentials`.
 * `selfAddresses` are the gateway's listeners, which no plugin request may reach.
 */
export function createPluginHost(config: Config, store: Store, log: Logger, selfAddresses?: () => readonly { address: string; port: number }[]): PluginHost {
  return new PluginHost({
    command: pluginHostCommand(),
    kv: { get: (p, k) => store.kvGet(p, k), set: (p, k, v) => store.kvSet(p, k, v), stats: (p) => store.kvStats(p) },
    secret: (name) => readCredential(config.home, name),
    log: log.child({ module: "sandbox" }),
    selfAddresses: selfAddresses ?? (() => [{ address: config.gateway.bind, port: config.gateway.port }]),
  });
}

/** The default agent: the one marked `default = true`, else the first. */
export function defaultAgentId(config: Config): string {
  return (config.agents.find((a) => a.default) ?? config.agents[0])?.id ?? "main";
}

/**
 * Builds and starts everything. Throws ConfigError before anything starts when a configured channel's
 * secret is missing or blank; StoreError when the store cannot be opened.
 */
export async function startApp(opts: AppOptions): Promise<App> {
  const { config, log } = opts;
  const reloadConfig = opts.reloadConfig ?? (() => config);
  let current = { config, router: createRouter(config.bindings, defaultAgentId(config)) as Router };
  const reload = () => {
    const next = reloadConfig();
    checkChannelSecrets(next, (name) => readCredential(next.home, name));
    const router = createRouter(next.bindings, defaultAgentId(next));
    current = { config: next, router };
    // Channels follow the file too; a newly named built-in channel plugin is loaded in the background.
    channels = channelSpecs(next, (name) => readCredential(next.home, name));
    for (const entry of channels.builtins) {
      if (host.get(entry.name)) continue;
      void loadConfiguredPlugin(host, entry, next.home).catch((e: unknown) =>
        log.error("channel plugin refused", { plugin: entry.name, error: e instanceof Error ? e.message : String(e) }),
      );
    }
    mcp.reload(next.mcp);
    log.info("config reloaded", { file: next.file ?? "defaults", bindings: router.size, agents: next.agents.length });
    return { file: next.file, bindings: router.size, agents: next.agents.map((a) => a.id) };
  };
  checkChannelSecrets(config, (name) => readCredential(config.home, name));
  if (!opts.streamFor) warnMissingKeys(config, opts.env ?? {}, log);
  const store = opts.wrapStore ? opts.wrapStore(openStore(config)) : openStore(config);
  const bus = config.bus.nats_url ? createNatsBus({ url: config.bus.nats_url, log: log.child({ module: "bus" }) }) : createLocalBus();
  // The gateway's own listener (its real port once bound): never a plugin's destination.
  let listening = [{ address: config.gateway.bind, port: config.gateway.port }];
  const host = createPluginHost(config, store, log, () => listening);
  // MCP servers: reached only through the egress checks, never the gateway's own listener.
  const mcp = new McpClients(config.mcp, { secret: (name) => readCredential(current.config.home, name), log: log.child({ module: "mcp" }), selfAddresses: () => listening });
  const plugins = new PluginRegistry(host, reloadConfig, log);
  // Approvals (issue 16): risky tool calls wait for the operator; see src/approvals/.
  const approvals = new ApprovalBroker({ store: store.approvals, timeoutMs: () => current.config.approvals.timeout_ms, secrets: () => [...configuredSecrets(current.config, (n) => readCredential(current.config.home, n)), ...(config.gateway.token ? [config.gateway.token] : [])], log: log.child({ module: "approvals" }) });
  await approvals.start();
  const metrics = createMetrics();
  metrics.gauge("exoclaw_approvals_pending", "Tool calls waiting for the operator's approval.", () => approvals.pending().length);
  metrics.help("exoclaw_chat_turns_total", "Chat turns by agent and stop reason.", "counter");
  metrics.help("exoclaw_model_tokens_total", "Model tokens by agent and direction, from the providers' counts.", "counter");
  metrics.gauge("exoclaw_plugins_loaded", "Plugins loaded and serving.", () => plugins.list().filter((p) => p.state === "loaded").length);
  metrics.help("exoclaw_channel_refused_total", "Channel messages that reached no model, by channel and reason (stranger, not_allowed, group_not_listed, not_mentioned, rate_limited).", "counter");
  metrics.gauge("exoclaw_plugins_failed", "Configured plugins that were refused.", () => plugins.list().filter((p) => p.state === "error").length);
  const readSoul = createSoulReader();
  const runner = new AgentRunner({
    metrics,
    soul: (agent) => readSoul(soulPath(current.config.home, agent.id, agent.soul)),
    budget: new BudgetGuard(store, () => current.config.budgets),
    store,
    agent: (id) => current.config.agents.find((a) => a.id === id),
    streamFor: opts.streamFor ?? ((agent) => providerStream(agent, { home: current.config.home, env: opts.env ?? {}, log })),
    // A channel turn names its sender (null: a group message without one, no personal memory). Plugin
    // state follows the same person; a sender-less group post gets the group's own, labelled scope.
    toolsFor: (agent, session, person) => {
      const who = person === undefined && session ? personOf(session) : person;
      const scope = who ?? (session ? `group:${personOf(session)}` : "");
      const tools = createToolBox(host, agent.tools, current.config.memory.semantic && session && who ? memoryTools(store, agent.id, who) : [], scope, [mcp]);
      return gateTurn(tools, { broker: approvals, config: () => current.config }, agent.id, session, person);
    },
    recall: async (agent, session, message, person) => {
      const who = person === undefined ? personOf(session) : person;
      return current.config.memory.semantic && who ? recall(store, agent.id, who, message) : "";
    },
    // A turn is a user message and its answer (plus tool rounds): about 4 messages per turn.
    historyLimit: () => Math.max(8, current.config.memory.episodic_turns * 4),
    log,
    // Bounded work (issue 10): read at every scheduling step, so a reload applies at once.
    limits: () => ({ maxRunning: current.config.gateway.max_concurrent_turns, maxQueued: current.config.gateway.max_queued_turns }),
  });
  let channels = channelSpecs(config, (name) => readCredential(config.home, name));
  // A channel's owner gets approval requests with buttons, and only the owner's press decides (src/approvals/owners.ts).
  const owners = new OwnerApprovals({ broker: approvals, channels: () => current.config.channels, log: log.child({ module: "approvals" }), send: async (name, to, text, buttons) => {
    const spec = channels.specs.get(name);
    return spec && pipeline ? pipeline.notify(spec, to, text, buttons) : { ok: false, error: `channel ${name} is not running` };
  } });
  approvals.onRequest((p) => owners.announce(p));
  const pairings = new Pairings(store);
  let pipeline: ChannelPipeline | undefined;
  const retryPolicy = { ...DEFAULT_RETRY_POLICY, ...(opts.retryIntervalMs !== undefined && { firstDelayMs: opts.retryIntervalMs }) };
  // The /metrics gauges read counts kept here, refreshed after deliveries (a gauge is read synchronously).
  const outboxCounts = cachedCounts(store);
  /** Tries a stored message once more through its channel (the retry loop, `inbox retry`). */
  const deliverStored = async (rec: PendingInbound): Promise<DeliveryOutcome> => {
    const spec = channels.specs.get(rec.channel);
    if (spec && pipeline) return pipeline.deliver(spec, rec);
    // Its channel left the config: kept for the operator (`inbox retry` once it is back, or `drop`).
    const error = `channel ${rec.channel} is not configured`;
    await store.failInbound(rec.id, { error, retry_at: null, at: Date.now() });
    outboxCounts.refresh();
    return { state: "dead", error };
  };
  // Messages accepted before a crash, or whose delivery failed, are tried again when due (./channels/outbox.ts).
  const retryLoop = new RetryLoop({ store, log: log.child({ module: "channels" }), isBusy: (id) => pipeline?.isDelivering(id) ?? false, deliver: deliverStored });
  const inbox = new Inbox(store, { deliverNow: deliverStored, onChange: () => outboxCounts.refresh() });
  metrics.help("exoclaw_channel_deliveries_total", "Channel delivery attempts by channel and result (sent, failed = retried later, dead_lettered).", "counter");
  metrics.gauge("exoclaw_channel_outbox_pending", "Channel messages waiting for a retry.", () => outboxCounts.pending);
  metrics.gauge("exoclaw_channel_outbox_dead", "Channel messages dead-lettered (exoclaw inbox list).", () => outboxCounts.dead);
  let gateway: Gateway;
  try {
    await plugins.loadAll();
    for (const entry of channels.builtins) {
      await loadConfiguredPlugin(host, entry, config.home).catch((e: unknown) =>
        log.error("channel plugin refused", { plugin: entry.name, error: e instanceof Error ? e.message : String(e) }),
      );
    }
    gateway = await startGateway({
      ...opts.gateway,
      config,
      log,
      methods: new Map([
        ...sessionMethods(store, (key) => runner.forget(key)),
        ...usageMethods(store, () => current.config.budgets),
        ...memoryMethods(store, () => defaultAgentId(current.config)),
        ...pluginMethods(plugins),
        ...pairingMethods(pairings),
        ...inboxMethods(inbox),
        ...mcpMethods(() => mcp),
        ...approvalMethods(approvals, store.approvals),
        ...chatMethods({ runner, route: (addr) => current.router.resolve(addr) }),
        ...configMethods({ reload, agents: () => current.config.agents, defaultAgent: () => defaultAgentId(current.config) }),
      ]),
      routes: (app, auth) => {
        if (config.gateway.openai_compat) {
          mountOpenAICompat(app, { runner, agents: () => current.config.agents, checkBearer: auth.checkBearer, remoteOf: auth.remoteOf });
        }
        if (config.gateway.mcp) {
          mountMcpServer(app, {
            runner,
            agents: () => current.config.agents,
            tools: () => createToolBox(host, current.config.gateway.mcp_tools, [], "mcp:local"),
            checkBearer: auth.checkBearer,
            remoteOf: auth.remoteOf,
            log: log.child({ module: "mcp-server" }),
          });
        }
        pipeline = new ChannelPipeline({
          host,
          store,
          runner,
          route: (addr) => current.router.resolve(addr),
          log: log.child({ module: "channels" }),
          bus,
          gatewayAuth: (req) => auth.checkRequest(req) === "ok",
          remoteOf: auth.remoteOf,
          hostSecrets: () => (config.gateway.token ? [config.gateway.token] : []),
          policy: (name) => current.config.channels[name],
          pairings,
          metrics,
          // Bounded work (issue 10): channel messages held in memory (two per turn slot); the rest wait in the store.
          channelSpec: (name) => channels.specs.get(name),
          maxHeld: () => 2 * current.config.gateway.max_concurrent_turns,
          retry: retryPolicy,
          onAction: (name, m) => owners.press(name, m),
          onDelivery: (outcome) => {
            if (outcome.state === "pending") retryLoop.schedule(outcome.next_at);
            if (outcome.state !== "busy") outboxCounts.refresh();
          },
        });
        const p = pipeline;
        app.get("/webhook/:channel", (c) => {
          const spec = channels.specs.get(c.req.param("channel"));
          if (!spec) return c.json({ error: { code: "not_found", message: `no channel ${c.req.param("channel")}` } }, 404);
          const r = p.handshake(spec, c.req.raw);
          return new Response(r.body, { status: r.status, headers: r.headers });
        });
        app.post("/webhook/:channel", async (c) => {
          const spec = channels.specs.get(c.req.param("channel"));
          if (!spec) return c.json({ error: { code: "not_found", message: `no channel ${c.req.param("channel")}` } }, 404);
          const r = await p.handle(spec, c.req.raw);
          return new Response(r.body, { status: r.status, headers: r.headers });
        });
      },
      metrics,
      readiness: async () => {
        const sessions = await store.countSessions().then(
          () => ({ ok: true }),
          (e: unknown) => ({ ok: false, error: e instanceof Error ? e.message : String(e) }),
        );
        const list = plugins.list();
        return {
          ready: sessions.ok,
          store: { kind: store.kind, ...sessions },
          bus: { mode: bus.mode },
          plugins: { loaded: list.filter((p) => p.state === "loaded").length, failed: list.filter((p) => p.state === "error").map((p) => p.name) },
        };
      },
      statusExtra: async () => ({
        router: { bindings: current.router.size },
        bus: { mode: bus.mode, ...(config.bus.nats_url && { url: config.bus.nats_url }) },
        usage_today: await store.sumUsage({ since: periodStarts(Date.now()).day }),
        inbound: await store.countInbound(),
        store: { kind: store.kind, location: store.location, sessions: await store.countSessions() },
        plugins: plugins.list().map((p) => ({ name: p.name, state: p.state, ...(p.error && { error: p.error }) })),
        mcp: mcp.list().map((m) => ({ name: m.name, state: m.state, tools: m.offered, ...(m.error && { error: m.error }) })),
        ...channelAccessStatus(current.config, host),
        agents: current.config.agents.map((a) => ({
          id: a.id,
          provider: a.provider,
          model: a.model,
          default: a.id === defaultAgentId(current.config),
          key: agentKeyState(current.config, opts.env ?? {}, a),
        })),
      }),
    });
    listening = [{ address: config.gateway.bind, port: gateway.port }];
    mcp.start();
  } catch (e) {
    await host.stop();
    await bus.close();
    await store.close();
    throw e;
  }
  // Messages accepted before a crash, or whose delivery failed, are tried again when due
  // (./channels/outbox.ts); messages never tried yet (waiting under load, or accepted before a
  // restart) are the pipeline's intake's, drained in order per session within the turn bound.
  retryLoop.start();
  outboxCounts.refresh();
  pipeline?.drain();
  // A safety net: the intake drains itself when a delivery ends; this also catches a store that was
  // unreadable at that moment.
  const drainTimer = setInterval(() => pipeline?.drain(), 60_000);
  drainTimer.unref();
  return {
    gateway,
    bus,
    store,
    plugins,
    route: (addr) => current.router.resolve(addr),
    reload,
    async stop() {
      pipeline?.close();
      clearInterval(drainTimer);
      // Drain: no new requests; what was accepted finishes (a message still pending stays in the store
      // and is retried at the next start) before the plugins, the bus and the store go away.
      await gateway.stop(DRAIN_MS);
      let timer: ReturnType<typeof setTimeout> | undefined;
      const drained = await Promise.race([
        Promise.all([retryLoop.stop(), pipeline?.idle(), runner.idle()]).then(() => true),
        new Promise<false>((r) => (timer = setTimeout(() => r(false), DRAIN_MS))),
      ]);
      clearTimeout(timer);
      if (!drained) {
        // Cancelled turns end quickly and are stored as cancelled; give them a moment to do so.
        runner.cancelAll();
        await Promise.race([runner.idle(), new Promise<void>((r) => (timer = setTimeout(r, 2_000)))]);
        clearTimeout(timer);
      }
      if (!drained) log.warn("shutdown: turns still running after the drain time; their messages stay pending and are retried at the next start", { drain_ms: DRAIN_MS });
      await mcp.stop();
      await host.stop();
      await bus.close();
      await store.close();
    },
  };
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
        .then((c) => Object.assign(counts, c), () => {})
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
function channelAccessStatus(config: Config, host: PluginHost): { channels: Record<string, unknown>; exposures: string[] } {
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
    out[name] = { dm_policy: p.dm_policy, allow_from: p.allow_from.length, groups: p.groups, require_mention: p.require_mention, rate_per_minute: p.rate_per_minute };
    if (p.dm_policy === "open") exposures.push(`channel ${name}: dm_policy = "open" — anyone who finds it is answered and spends your budget; use "pairing" or "allowlist"`);
    if (p.groups.includes("*") && !p.require_mention) exposures.push(`channel ${name}: every group is answered, mentioned or not (groups = ["*"], require_mention = false)`);
  }
  return { channels: out, exposures };
}

/**
 * Whether an agent can authenticate to its model: `present` (a key resolves), `missing` (none does:
 * every message fails with the provider's 401), `not_required` (Ollama, or a custom `base_url`, where a
 * local server may need none). Read at call time, so a key added by `exoclaw onboard` shows at once.
 */
export function agentKeyState(config: Config, env: Readonly<Record<string, string | undefined>>, agent: AgentConfig): "present" | "missing" | "not_required" {
  if (resolveAgentKey(env, config.home, agent).key !== null) return "present";
  return agent.provider === "ollama" || agent.base_url !== "" ? "not_required" : "missing";
}

/**
 * A gateway whose agents have no key starts fine and then fails every message with the provider's
 * 401: say so at start, with the command that fixes it. (`status` reports the same as `agents[].key`.)
 */
function warnMissingKeys(config: Config, env: Readonly<Record<string, string | undefined>>, log: Logger): void {
  for (const agent of config.agents) {
    if (agentKeyState(config, env, agent) !== "missing") continue;
    log.warn(`agent ${agent.id} has no API key for ${agent.provider}: every message to it will fail until you run \`exoclaw onboard\` or \`exoclaw secret set ${agent.provider}\``, {
      agent: agent.id,
      provider: agent.provider,
    });
  }
}
