/**
 * The gateway's capability modules (./capability.ts): each a small adapter that gives one capability
 * its RPC methods, routes, `status` and `/ready` facts and its reload rule. What each reload applies:
 * - routing: bindings and agents, at once (`check` refuses a config whose bindings do not resolve);
 * - store: nothing to apply; `store.kind` needs a restart;
 * - bus: `[bus] nats_url` switches the bus (in-process ↔ NATS) at once;
 * - plugins: a new or changed `[[plugins]]` entry needs a restart or `exoclaw plugin load NAME`;
 * - mcp: `[[mcp]]` servers reconnect;
 * - channels: channels, their secrets and policies at once (src/channels/module.ts);
 * - approvals: `[approvals]`, the tools' `approval` settings and the channels' `owner` at the next
 *   request (src/approvals/module.ts);
 * - chat: `openai_compat`, `mcp`, `mcp_tools`, turn limits at the next request;
 * - listener: `bind`, `port`, TLS, origins, proxies, `public_url`, payload size, log level need a restart.
 */
import type { InboundAddress } from "../core/index.ts";
import { type AgentRunner, createToolBox } from "../agent/index.ts";
import type { ApprovalsModule } from "../approvals/index.ts";
import type { ReloadableBus } from "../bus/index.ts";
import type { ChannelsModule } from "../channels/index.ts";
import { resolveAgentKey } from "../config/api-keys.ts";
import { type AgentConfig, type Config, type LiveConfig, takesNoKey } from "../config/index.ts";
import { ConfigError, describeError } from "../lib/errors.ts";
import type { Logger } from "../lib/log.ts";
import type { McpClients } from "../mcp/index.ts";
import { periodStarts } from "../metering/index.ts";
import type { Metrics } from "../lib/metrics.ts";
import { createRouter, type Route, type Router } from "../router/index.ts";
import type { PluginHost, PluginRegistry } from "../sandbox/index.ts";
import type { Store } from "../store/index.ts";
import { approvalMethods } from "./approval-methods.ts";
import { type Capability, frozenKeys, type RestartNote } from "./capability.ts";
import type { SessionCancel } from "./cancel.ts";
import { chatMethods } from "./chat-methods.ts";
import { configMethods } from "./config-methods.ts";
import { inboxMethods } from "./inbox-methods.ts";
import { mcpMethods } from "./mcp-methods.ts";
import { mountMcpServer } from "./mcp-server.ts";
import { memoryMethods } from "./memory-methods.ts";
import { mountOpenAICompat } from "./openai-compat.ts";
import { pairingMethods } from "./pairing-methods.ts";
import { pluginMethods } from "./plugin-methods.ts";
import { sessionMethods } from "./session-methods.ts";
import { usageMethods } from "./usage-methods.ts";

/** The default agent: the one marked `default = true`, else the first. */
export function defaultAgentId(config: Config): string {
  return (config.agents.find((a) => a.default) ?? config.agents[0])?.id ?? "main";
}

/** Bindings and agents: the router follows the live config; `config.reload` and `agent.list` live here. */
export class RoutingModule implements Capability {
  readonly name = "routing";
  private router: Router;
  private next: Router | undefined;

  constructor(
    private readonly live: LiveConfig,
    private readonly reloadAll: () => { file: string | null; bindings: number; agents: string[] },
    private readonly keyState: (agent: AgentConfig) => string,
  ) {
    this.router = createRouter(live.current.bindings, defaultAgentId(live.current));
  }

  route(addr: InboundAddress): Route {
    return this.router.resolve(addr);
  }

  get bindings(): number {
    return this.router.size;
  }

  methods() {
    return configMethods({
      reload: () => this.reloadAll(),
      agents: () => this.live.current.agents,
      defaultAgent: () => defaultAgentId(this.live.current),
    });
  }

  check(next: Config): void {
    this.next = createRouter(next.bindings, defaultAgentId(next));
  }

  reload(next: Config): [] {
    this.router = this.next ?? createRouter(next.bindings, defaultAgentId(next));
    this.next = undefined;
    return [];
  }

  status() {
    const c = this.live.current;
    return {
      router: { bindings: this.router.size },
      agents: c.agents.map((a) => ({
        id: a.id,
        provider: a.provider,
        model: a.model,
        default: a.id === defaultAgentId(c),
        key: this.keyState(a),
      })),
    };
  }
}

/** The store: readiness (reachable), its status and usage today, the usage and memory methods. */
export function storeModule(store: Store, live: LiveConfig): Capability {
  // What runs: the store opened at start.
  const running = live.current.store;
  return {
    name: "store",
    methods: () => [
      ...usageMethods(store, () => live.current.budgets),
      ...memoryMethods(store, () => defaultAgentId(live.current)),
    ],
    readiness: async () => {
      const sessions = await store.countSessions().then(
        () => ({ ok: true }),
        (e: unknown) => ({ ok: false, error: describeError(e) }),
      );
      return { ok: sessions.ok, facts: { store: { kind: store.kind, ...sessions } } };
    },
    status: async () => ({
      usage_today: await store.sumUsage({ since: periodStarts(Date.now()).day }),
      store: {
        kind: store.kind,
        location: store.location,
        sessions: await store.countSessions(),
        ...(store.describe && { engine: await store.describe() }),
      },
    }),
    reload: (next) =>
      frozenKeys(
        running,
        next.store,
        Object.keys({ ...running, ...next.store }),
        "store.",
        "the store is opened once, at start",
      ),
    stop: () => store.close(),
  };
}

/** The bus: `[bus] nats_url` is applied on reload (in-process ↔ NATS, or another server). */
export function busModule(bus: ReloadableBus, log: Logger): Capability {
  return {
    name: "bus",
    readiness: async () => ({ ok: true, facts: { bus: { mode: bus.mode } } }),
    status: () => ({ bus: { mode: bus.mode, ...(bus.url && { url: bus.url }) } }),
    reload: (next) => {
      void bus
        .reload(next.bus.nats_url)
        .catch((e: unknown) => log.error("bus switch failed", { error: describeError(e) }));
    },
    stop: () => bus.close(),
  };
}

/** Plugins: `plugin.*`, their states in `status` and `/ready`, the loaded/failed gauges. */
export function pluginsModule(plugins: PluginRegistry, host: PluginHost, metrics: Metrics): Capability {
  metrics.gauge(
    "exoclaw_plugins_loaded",
    "Plugins loaded and serving.",
    () => plugins.list().filter((p) => p.state === "loaded").length,
  );
  metrics.gauge(
    "exoclaw_plugins_failed",
    "Configured plugins that were refused.",
    () => plugins.list().filter((p) => p.state === "error").length,
  );
  return {
    name: "plugins",
    methods: () => pluginMethods(plugins),
    readiness: async () => {
      const list = plugins.list();
      return {
        ok: true,
        facts: {
          plugins: {
            loaded: list.filter((p) => p.state === "loaded").length,
            failed: list.filter((p) => p.state === "error").map((p) => p.name),
          },
        },
      };
    },
    status: () => ({
      plugins: plugins.list().map((p) => ({ name: p.name, state: p.state, ...(p.error && { error: p.error }) })),
    }),
    // Compared with what runs (a `plugin load` since start counts), not with the previous file.
    reload: (next): RestartNote[] => {
      const { changed, removed } = plugins.differences(next.plugins);
      return [
        ...changed.map((name) => ({
          key: `plugins.${name}`,
          reason: `[[plugins]] entries are loaded at start; run \`exoclaw plugin load ${name}\` to apply it now`,
        })),
        ...removed.map((name) => ({
          key: `plugins.${name}`,
          reason: `removed from the config but still loaded; run \`exoclaw plugin unload ${name}\``,
        })),
      ];
    },
    stop: () => host.stop(),
  };
}

/** MCP servers as tools: reconnected with the new `[[mcp]]` entries on reload. */
export function mcpModule(mcp: McpClients): Capability {
  return {
    name: "mcp",
    methods: () => mcpMethods(() => mcp),
    status: () => ({
      mcp: mcp
        .list()
        .map((m) => ({ name: m.name, state: m.state, tools: m.offered, ...(m.error && { error: m.error }) })),
    }),
    start: () => mcp.start(),
    reload: (next) => {
      mcp.reload(next.mcp);
    },
    stop: () => mcp.stop(),
  };
}

/** Channels: the module's own lifecycle plus the `pairing.*` and `inbox.*` methods. */
export function channelsModule(channels: ChannelsModule): Capability {
  return {
    name: channels.name,
    methods: () => [...pairingMethods(channels.pairings), ...inboxMethods(channels.inbox)],
    routes: (app, auth) => channels.routes(app, auth),
    status: () => channels.status(),
    start: () => channels.start(),
    check: (next) => channels.check(next),
    reload: (next) => channels.reload(next),
    quiesce: () => channels.quiesce(),
    idle: () => channels.idle(),
  };
}

/** Approvals: the module's own lifecycle plus `approval.*` (the broker's pending requests, the stored decisions and rules). */
export function approvalsModule(approvals: ApprovalsModule, store: Store): Capability {
  return {
    name: approvals.name,
    methods: () => approvalMethods(approvals.broker, store),
    status: () => approvals.status(),
    reload: () => approvals.reload(),
    stop: () => approvals.stop(),
  };
}

export interface ChatModuleDeps {
  live: LiveConfig;
  runner: AgentRunner;
  store: Store;
  host: PluginHost;
  route: (addr: InboundAddress) => Route;
  log: Logger;
  /** chat.cancel {session} on every gateway (./cancel.ts); absent: this process's turns only. */
  cancel?: SessionCancel;
}

/**
 * Chat turns: `chat.*` and `session.*`, the OpenAI-compatible endpoint and /mcp. Both endpoints are
 * mounted always and answer only while their switch (`openai_compat`, `mcp`) is on in the live config,
 * so a reload turns them on or off; off, they are the gateway's plain 404.
 */
export function chatModule(deps: ChatModuleDeps): Capability {
  const { live, runner } = deps;
  return {
    name: "chat",
    methods: () => [
      ...sessionMethods(deps.store, (key) => runner.forget(key)),
      ...chatMethods({
        runner,
        route: deps.route,
        ...(deps.cancel && { cancelSession: (session: string) => deps.cancel!.cancel(session) }),
      }),
    ],
    routes: (app, auth) => {
      app.use("/v1/*", async (c, next) => {
        if (!live.current.gateway.openai_compat) return c.notFound();
        await next();
      });
      mountOpenAICompat(app, {
        runner,
        agents: () => live.current.agents,
        checkBearer: auth.checkBearer,
        remoteOf: auth.remoteOf,
        holdOpen: auth.holdOpen,
      });
      app.use("/mcp", async (c, next) => {
        if (!live.current.gateway.mcp) return c.notFound();
        await next();
      });
      mountMcpServer(app, {
        runner,
        agents: () => live.current.agents,
        tools: () => createToolBox(deps.host, live.current.gateway.mcp_tools, [], "mcp:local"),
        checkBearer: auth.checkBearer,
        remoteOf: auth.remoteOf,
        holdOpen: auth.holdOpen,
        log: deps.log.child({ module: "mcp-server" }),
      });
    },
    check: (next) => {
      // The same rule as at start (src/gateway/server.ts): /mcp runs turns at the operator's cost.
      if (next.gateway.mcp && next.gateway.token === "") {
        throw new ConfigError(
          "gateway.mcp = true needs a token (--token or EXOCLAW_TOKEN): /mcp runs agent turns at your cost, and an MCP client must present the token as a Bearer",
        );
      }
    },
    idle: () => runner.idle(),
    cancel: () => runner.cancelAll(),
    stop: async () => await deps.cancel?.stop(),
  };
}

/** Settings of `[gateway]` the listener reads once, at start. */
const LISTENER_KEYS = [
  "bind",
  "port",
  "tls_cert",
  "tls_key",
  "allowed_origins",
  "trusted_proxies",
  "public_url",
  "max_payload_bytes",
  "log_level",
  "max_unauthenticated_sockets",
  "max_unauthenticated_per_address",
  "body_timeout_ms",
  "workers",
] as const;

/** The listener: what a reload cannot change without a restart, said rather than silently kept. */
export function listenerModule(live: LiveConfig): Capability {
  // What runs: the listener's settings at start.
  const running = live.current.gateway;
  return {
    name: "listener",
    reload: (next) => frozenKeys(running, next.gateway, LISTENER_KEYS, "gateway.", "the listener reads it at start"),
  };
}

/**
 * Whether an agent can authenticate to its model: `present` (a key resolves), `missing` (none does:
 * every message fails with the provider's 401), `not_required` (Ollama, or a custom `base_url`, where a
 * local server may need none). Read at call time, so a key added by `exoclaw onboard` shows at once.
 */
export function agentKeyState(
  config: Config,
  env: Readonly<Record<string, string | undefined>>,
  agent: AgentConfig,
): "present" | "missing" | "not_required" {
  if (resolveAgentKey(env, config.home, agent).key !== null) return "present";
  return takesNoKey(agent.provider) || agent.base_url !== "" ? "not_required" : "missing";
}

/**
 * A gateway whose agents have no key starts fine and then fails every message with the provider's
 * 401: say so at start, with the command that fixes it. (`status` reports the same as `agents[].key`.)
 */
export function warnMissingKeys(config: Config, env: Readonly<Record<string, string | undefined>>, log: Logger): void {
  for (const agent of config.agents) {
    if (agentKeyState(config, env, agent) !== "missing") continue;
    log.warn(
      `agent ${agent.id} has no API key for ${agent.provider}: every message to it will fail until you run \`exoclaw onboard\` or \`exoclaw secret set ${agent.provider}\``,
      {
        agent: agent.id,
        provider: agent.provider,
      },
    );
  }
}
