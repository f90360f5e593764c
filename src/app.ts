/**
 * The composition root: opens the store, the bus and the plugin host, then lists the capability
 * modules (src/gateway/capability.ts) and starts the gateway with what they bring. It holds no
 * policy: routes, timers, reload rules and status belong to the modules; every module reads the one
 * live config (src/config/live.ts), and a reload is every module's `check`, then its `reload`.
 */
import { randomUUID } from "node:crypto";
import { hostname } from "node:os";
import { join } from "node:path";
import { type AgentConfig, type Config, LiveConfig, readCredential } from "./config/index.ts";
import { ConfigError } from "./lib/errors.ts";
import type { Logger } from "./lib/log.ts";
import { createMetrics } from "./lib/metrics.ts";
import { MemoryModule } from "./memory/index.ts";
import { Capabilities } from "./gateway/capability.ts";
import {
  agentKeyState,
  approvalsModule,
  busModule,
  channelsModule,
  chatModule,
  listenerModule,
  mcpModule,
  pluginsModule,
  RoutingModule,
  storeModule,
  warnMissingKeys,
} from "./gateway/modules.ts";
import { type Gateway, type GatewayOptions, startGateway } from "./gateway/server.ts";
import { PluginHost, pluginHostCommand, PluginRegistry } from "./sandbox/index.ts";
import { ChannelsModule, checkChannelSecrets } from "./channels/index.ts";
import { type Bus, createNatsBus, createReloadableBus } from "./bus/index.ts";
import { SessionCancel } from "./gateway/cancel.ts";
import type { InboundAddress } from "./core/index.ts";
import type { Route } from "./router/index.ts";
import { createMemoryStore, openNatsStore, openSqliteStore, type PluginStateStore, type Store } from "./store/index.ts";
import { McpClients } from "./mcp/index.ts";
import type { StreamFn } from "./agent/loop.ts";
import { AgentRunner, type SharedTurns } from "./agent/runner.ts";
import type { WorkerLink } from "./gateway/supervisor.ts";
import { createToolBox } from "./agent/toolbox.ts";
import { ApprovalsModule } from "./approvals/index.ts";
import { providerStream } from "./agent/provider-factory.ts";
import { clusterModule, openClusterWork } from "./cluster/module.ts";

export { agentKeyState, defaultAgentId } from "./gateway/modules.ts";

export interface App {
  readonly gateway: Gateway;
  readonly bus: Bus;
  readonly store: Store;
  readonly plugins: PluginRegistry;
  /** The modules the app is made of, in start order. */
  readonly modules: Capabilities;
  /** Which agent and session an inbound message belongs to, under the current bindings. */
  route(addr: InboundAddress): Route;
  /**
   * Reads the config again and hands it to every module (SIGHUP, `config.reload`). Throws ConfigError
   * and keeps the old config everywhere when the new one is invalid or a channel's secret is missing
   * or blank. `restart_required` lists the changed keys that only a restart applies (also logged).
   */
  reload(): ReloadResult;
  /** Stops the gateway, then the plugin processes, then closes the store. */
  stop(): Promise<void>;
}

export interface ReloadResult {
  file: string | null;
  bindings: number;
  agents: string[];
  restart_required?: { key: string; reason: string }[];
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
  /**
   * This process is one of several gateway workers on the store (`--workers N`,
   * src/gateway/supervisor.ts): turns take session leases, and the worker reports to its supervisor.
   */
  worker?: { link: WorkerLink; shared: SharedTurns };
}

/** How long shutdown waits for requests and turns in flight. */
const DRAIN_MS = 10_000;

/** Opens the configured store. Throws StoreError (corrupt, read-only, newer schema, NATS unreachable) or ConfigError. */
export async function openStore(config: Config): Promise<Store> {
  switch (config.store.kind) {
    case "sqlite":
      return openSqliteStore(join(config.home, "exoclaw.db"));
    case "memory":
      return createMemoryStore();
    case "nats":
      return openNatsStore({
        servers: (config.store.nats_url || config.bus.nats_url).split(","),
        replicas: config.store.replicas,
        namespace: config.store.namespace,
        owner: `${hostname()}:${config.home}`,
      });
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
export function createPluginHost(
  config: Config,
  store: PluginStateStore,
  log: Logger,
  selfAddresses?: () => readonly { address: string; port: number }[],
): PluginHost {
  return new PluginHost({
    command: pluginHostCommand(),
    kv: { get: (p, k) => store.kvGet(p, k), set: (p, k, v) => store.kvSet(p, k, v), stats: (p) => store.kvStats(p) },
    secret: (name) => readCredential(config.home, name),
    log: log.child({ module: "sandbox" }),
    selfAddresses: selfAddresses ?? (() => [{ address: config.gateway.bind, port: config.gateway.port }]),
  });
}

/**
 * Builds and starts everything. Throws ConfigError before anything starts when a configured channel's
 * secret is missing or blank; StoreError when the store cannot be opened.
 */
export async function startApp(opts: AppOptions): Promise<App> {
  const { config, log } = opts;
  const env = opts.env ?? {};
  const reloadConfig = opts.reloadConfig ?? (() => config);
  const live = new LiveConfig(config);
  checkChannelSecrets(config, (name) => readCredential(config.home, name));
  if (!opts.streamFor) warnMissingKeys(config, env, log);
  // Several gateways on NATS: the inbound work queue (src/cluster/), opened with the store, at the
  // same time (each creates its streams and buckets on a first start: seconds on a fresh cluster).
  const [storeOpen, workOpen] = await Promise.allSettled([openStore(config), openClusterWork(config, log)]);
  if (storeOpen.status === "rejected" || workOpen.status === "rejected") {
    if (storeOpen.status === "fulfilled") await storeOpen.value.close();
    if (workOpen.status === "fulfilled") await workOpen.value?.stop();
    throw storeOpen.status === "rejected" ? storeOpen.reason : (workOpen as PromiseRejectedResult).reason;
  }
  const opened = storeOpen.value;
  const store = opts.wrapStore ? opts.wrapStore(opened) : opened;
  const work = workOpen.value;
  const bus = createReloadableBus(config.bus.nats_url, log.child({ module: "bus" }));
  // The gateway's own listener (its real port once bound): never a plugin's destination.
  let listening = [{ address: config.gateway.bind, port: config.gateway.port }];
  const host = createPluginHost(config, store, log, () => listening);
  // MCP servers: reached only through the egress checks, never the gateway's own listener.
  const mcp = new McpClients(config.mcp, {
    secret: (name) => readCredential(live.current.home, name),
    log: log.child({ module: "mcp" }),
    selfAddresses: () => listening,
  });
  const plugins = new PluginRegistry(host, reloadConfig, log);
  const metrics = createMetrics();
  // Risky tool calls wait for the operator (src/approvals/); an owner is asked through their channel.
  const approvals = new ApprovalsModule({
    live,
    store,
    metrics,
    log,
    send: (name, to, text, buttons) => channels.notify(name, to, text, buttons),
  });
  const memory = new MemoryModule(store, live);
  const runner = new AgentRunner({
    store,
    live,
    memory,
    streamFor: opts.streamFor ?? ((agent) => providerStream(agent, { home: live.current.home, env, log })),
    // A turn's tools: the agent's plugins, memory's own tools and the MCP servers, gated by approvals.
    toolsFor: (agent, session, person) =>
      approvals.gate(
        createToolBox(host, agent.tools, memory.tools(agent, session, person), memory.stateScope(session, person), [
          mcp,
        ]),
        agent,
        session,
        person,
      ),
    metrics,
    log,
    ...(opts.worker && { shared: opts.worker.shared }),
  });
  // chat.cancel {session} reaches every gateway: on the store's NATS when the store is shared (the
  // cluster is the gateways on that store), else on the bus (NATS with `[bus] nats_url`, or in-process).
  const control: Bus = work
    ? createNatsBus({ url: config.store.nats_url || config.bus.nats_url, log: log.child({ module: "cancel" }) })
    : bus;
  const cancel = new SessionCancel({
    bus: control,
    namespace: config.store.namespace,
    id: work?.id ?? `${hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`,
    cancelLocal: (session) => runner.cancelSession(session),
    ...(work && { peers: () => work.peers(), ownsBus: true }),
    log: log.child({ module: "cancel" }),
  });
  const routing = new RoutingModule(
    live,
    () => reload(),
    (agent) => agentKeyState(live.current, env, agent),
  );
  const route = (addr: InboundAddress) => routing.route(addr);
  const channels = new ChannelsModule({
    live,
    store,
    host,
    plugins,
    runner,
    route,
    bus,
    metrics,
    log: log.child({ module: "channels" }),
    ...(opts.retryIntervalMs !== undefined && { retryIntervalMs: opts.retryIntervalMs }),
    onAction: (name, m) => approvals.press(name, m),
    ...(work && { work }),
  });
  // Start order; shutdown runs it backwards (the store closes last).
  const modules = new Capabilities(
    [
      storeModule(store, live),
      busModule(bus, log),
      pluginsModule(plugins, host, metrics),
      mcpModule(mcp),
      approvalsModule(approvals, store),
      routing,
      chatModule({ live, runner, store, host, route, log, cancel }),
      channelsModule(channels),
      ...(work
        ? [
            clusterModule(
              work,
              (item) => channels.work(item),
              (d) => channels.workDead(d.id, d.deliveries),
            ),
          ]
        : []),
      listenerModule(live),
      ...(opts.worker ? [opts.worker.link.capability()] : []),
    ],
    log,
  );
  const reload = (): ReloadResult => {
    const next = reloadConfig();
    const restart = modules.reload(next, (c) => live.replace(c));
    log.info("config reloaded", {
      file: next.file ?? "defaults",
      bindings: routing.bindings,
      agents: next.agents.length,
    });
    return {
      file: next.file,
      bindings: routing.bindings,
      agents: next.agents.map((a) => a.id),
      ...(restart.length > 0 && { restart_required: restart }),
    };
  };
  let gateway: Gateway;
  try {
    await approvals.load();
    await plugins.loadAll();
    await channels.load();
    gateway = await startGateway({
      ...opts.gateway,
      config,
      log,
      methods: modules.methods(),
      routes: (app, auth) => modules.routes(app, auth),
      metrics,
      readiness: () => modules.readiness(),
      statusExtra: () => modules.status(),
    });
    listening = [{ address: config.gateway.bind, port: gateway.port }];
    await modules.start();
    const gw = gateway;
    opts.worker?.link.listening(gw.port, {
      connections: () => gw.connections(),
      turnsRunning: () => runner.load.running,
    });
  } catch (e) {
    await host.stop();
    await cancel.stop();
    await bus.close();
    await work?.stop();
    await store.close();
    throw e;
  }
  return {
    gateway,
    bus,
    store,
    plugins,
    modules,
    route,
    reload,
    async stop() {
      // Drain: no new requests; what was accepted finishes (a message still pending stays in the store
      // and is retried at the next start) before the plugins, the bus and the store go away.
      const drained = await modules.shutdown(() => gateway.stop(DRAIN_MS), DRAIN_MS, 2_000);
      if (!drained)
        log.warn(
          "shutdown: turns still running after the drain time; their messages stay pending and are retried at the next start",
          { drain_ms: DRAIN_MS },
        );
    },
  };
}
