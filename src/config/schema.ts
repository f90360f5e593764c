/**
 * The config file's schema (SPEC §2). Every section is optional; defaults make zero-config work.
 * Strict objects: an unknown key is an error, so a typo never silently does nothing.
 */
import * as v from "valibot";
import { PROVIDER_IDS, PROVIDERS } from "./providers.ts";

const NAME = /^[a-z0-9_-]+$/;
const name = (what: string) => v.pipe(v.string(), v.regex(NAME, `${what} must match [a-z0-9_-]+`));
const int = (min: number, max = Number.MAX_SAFE_INTEGER) =>
  v.pipe(v.number(), v.integer(), v.minValue(min), v.maxValue(max));
const strings = v.array(v.string());
/** When a tool call waits for the operator's yes (docs/configuration.md, Approvals). */
const Approval = v.picklist(["never", "always", "untrusted"]);
/** Per-tool overrides of a plugin's or MCP server's `approval`: tool name (the plugin's or server's own) → setting. */
const ToolApproval = v.optional(v.record(v.pipe(v.string(), v.minLength(1)), Approval));

const Origin = v.pipe(
  v.string(),
  v.check((s) => {
    try {
      const u = new URL(s);
      return (u.protocol === "http:" || u.protocol === "https:") && u.origin === s.replace(/\/$/, "");
    } catch {
      return false;
    }
  }, "expected an origin such as https://example.com (scheme, host and optional port, no path)"),
);

/** A provider id: one of the registry's (./providers.ts). */
export const Provider = v.picklist(PROVIDER_IDS);

const Gateway = v.strictObject({
  bind: v.optional(v.pipe(v.string(), v.minLength(1)), "127.0.0.1"),
  port: v.optional(int(0, 65535), 7200),
  allowed_origins: v.optional(v.array(Origin), []),
  max_payload_bytes: v.optional(int(1024, 1 << 30), 1048576),
  openai_compat: v.optional(v.boolean(), false),
  /** POST /mcp: exoclaw as an MCP server (streamable HTTP); needs a gateway token. */
  mcp: v.optional(v.boolean(), false),
  /** Plugin tools /mcp offers besides the agents: "*", a plugin name, or "plugin:tool"; none by default. */
  mcp_tools: v.optional(strings, []),
  tls_cert: v.optional(v.string(), ""),
  tls_key: v.optional(v.string(), ""),
  /** Reverse proxies (exact addresses) whose X-Forwarded-For names the client, for rate limits. */
  trusted_proxies: v.optional(v.array(v.pipe(v.string(), v.minLength(1))), []),
  /**
   * The address the internet reaches this gateway at through a reverse proxy (https://bot.example.com):
   * its host name is answered besides loopback, its origin may open /ws, and `channel setup` builds
   * webhook URLs from it. "" = none.
   */
  public_url: v.optional(v.union([v.literal(""), Origin]), ""),
  /**
   * Turns (a message and the model calls and tools that answer it) running at once in this process;
   * beyond it turns wait in a fair queue (round-robin across sessions). Reloadable.
   */
  max_concurrent_turns: v.optional(int(1, 10_000), 32),
  /**
   * Turns that may wait for a slot before WebSocket and OpenAI-compatible callers are told the
   * gateway is busy (-32005 / HTTP 429). Channel messages are never refused: beyond their share they
   * wait in the store. Reloadable.
   */
  max_queued_turns: v.optional(int(0, 1_000_000), 128),
  /**
   * Gateway worker processes serving the one port (issue 13): a number, or "auto" (one per core).
   * 1 (the default) is a single process without a supervisor. `--workers` overrides it. Restart to change.
   */
  workers: v.optional(v.union([int(1, 256), v.literal("auto")]), 1),
  /** debug | info | warn | error; `EXOCLAW_LOG` overrides it. */
  log_level: v.optional(v.picklist(["debug", "info", "warn", "error"]), "info"),
  /** WebSockets open but not yet authenticated, in all; beyond it a new one is closed with 1013. */
  max_unauthenticated_sockets: v.optional(int(1, 1_000_000), 1024),
  /** The same, from one client address (after trusted_proxies); beyond it 1013. */
  max_unauthenticated_per_address: v.optional(int(1, 1_000_000), 64),
  /** A request body (a webhook's) must arrive within this long, or the request is cut with 408. */
  body_timeout_ms: v.optional(int(100, 3_600_000), 10_000),
});

const Fallback = v.strictObject({ provider: Provider, model: v.pipe(v.string(), v.minLength(1)) });

const Agent = v.strictObject({
  id: name("agent id"),
  default: v.optional(v.boolean(), false),
  provider: v.optional(Provider, "anthropic"),
  model: v.optional(v.pipe(v.string(), v.minLength(1)), PROVIDERS.anthropic.defaultModel),
  base_url: v.optional(v.string(), ""),
  api_key: v.optional(v.string()),
  /** An environment variable holding this agent's key (the only env key sent to a custom base_url). */
  api_key_env: v.optional(
    v.pipe(v.string(), v.regex(/^([A-Za-z_][A-Za-z0-9_]*)?$/, "api_key_env must be an environment variable name")),
  ),
  max_tokens: v.optional(int(1), 4096),
  system_prompt: v.optional(v.string(), ""),
  soul: v.optional(v.string(), "SOUL.md"),
  tools: v.optional(strings, ["*"]),
  fallbacks: v.optional(v.array(Fallback), []),
  max_tool_rounds: v.optional(int(0, 1000), 10),
  /** No byte from the model for this long fails the call (retried, then the fallbacks). */
  idle_timeout_ms: v.optional(int(1), 120_000),
});

const Binding = v.pipe(
  v.strictObject({
    agent: name("agent"),
    channel: v.optional(v.string()),
    account: v.optional(v.string()),
    team: v.optional(v.string()),
    guild: v.optional(v.string()),
    peer: v.optional(v.string()),
  }),
  v.check(
    (b) => [b.channel, b.account, b.team, b.guild, b.peer].some((s) => s !== undefined),
    "a binding needs at least one of channel, account, team, guild, peer",
  ),
);

const Plugin = v.strictObject({
  name: name("plugin name"),
  path: v.pipe(v.string(), v.minLength(1)),
  sha256: v.optional(v.pipe(v.string(), v.regex(/^[0-9a-f]{64}$/, "expected 64 lowercase hex digits"))),
  allowed_hosts: v.optional(strings, []),
  allowed_paths: v.optional(v.record(v.string(), v.string()), {}),
  secrets: v.optional(v.array(name("secret name")), []),
  /** Secret name → allowlist entries it may be sent to; a secret without an entry goes to any allowed host. */
  secret_hosts: v.optional(v.record(name("secret name"), strings)),
  memory_mb: v.optional(int(1, 4096), 32),
  // A call longer than a minute is a plugin bug or an attack; the host also caps it at 60 s.
  timeout_ms: v.optional(int(1, 60_000), 5000),
  config: v.optional(v.record(v.string(), v.string()), {}),
  /** One state for every person; effective only when the plugin also declares `wants.shared_state`. */
  shared_state: v.optional(v.boolean()),
  /** Quota of the plugin's state (every person's together); the host's defaults: 10,000 entries, 64 MiB. */
  state_max_entries: v.optional(int(1, 10_000_000)),
  state_max_bytes: v.optional(int(1, 4 * 1024 * 1024 * 1024)),
  /** "never" (default): its tools run when called; "always": each call waits for the operator; "untrusted": risky tools wait once the turn is tainted. */
  approval: v.optional(Approval),
  tool_approval: ToolApproval,
});

/**
 * An MCP server reached over streamable HTTP through the host's egress checks (SPEC §2). `command`
 * and `args` (a stdio server) are accepted by the schema only so that load can refuse them with why.
 */
const Mcp = v.strictObject({
  name: name("mcp server name"),
  /** Required; optional in the schema only so that a stdio entry (`command`, no url) gets the stdio message. */
  url: v.optional(v.string()),
  /** Sent with every request to `url`'s host only; `{{secret:NAME}}` filled in by the host. */
  headers: v.optional(v.record(v.string(), v.string()), {}),
  secrets: v.optional(v.array(name("secret name")), []),
  /** Which of the server's tools are offered at all: "*" or tool names. */
  tools: v.optional(strings, ["*"]),
  timeout_ms: v.optional(int(1, 600_000), 30_000),
  /** never | always | untrusted (default): risky tools (open-world or destructive, or unannotated) wait for the operator once the turn is tainted. */
  approval: v.optional(Approval, "untrusted"),
  tool_approval: ToolApproval,
  command: v.optional(v.unknown()),
  args: v.optional(v.unknown()),
  env: v.optional(v.unknown()),
});

const Channel = v.strictObject({
  plugin: v.optional(v.string()),
  secrets: v.optional(v.record(v.string(), name("secret name")), {}),
  /**
   * Who may send direct messages (SPEC §13): "pairing" — a stranger gets a pairing code, nothing
   * reaches a model until the operator approves it; "allowlist" — only `allow_from` and people
   * approved earlier; "open" — anyone (flagged by `status`). The `http` channel is exempt.
   */
  dm_policy: v.optional(v.picklist(["pairing", "allowlist", "open"]), "pairing"),
  /** Peer ids (the platform's user or chat id) always allowed, under every policy. */
  allow_from: v.optional(v.array(v.pipe(v.string(), v.minLength(1))), []),
  /** Group, guild or channel ids answered ("*" = every group); empty = groups are not answered. */
  groups: v.optional(v.array(v.pipe(v.string(), v.minLength(1))), []),
  /** In groups, answer only messages that mention the bot or reply to it. */
  require_mention: v.optional(v.boolean(), true),
  /** Messages a minute one person may send before the rest are refused; 0 = unlimited. */
  rate_per_minute: v.optional(int(0, 100_000), 20),
  /** Pairing codes pending at once on this channel; beyond it new strangers get no reply, only a count in `status`. */
  max_pending_pairings: v.optional(int(1, 100_000), 50),
  /** Under dm_policy "open": distinct people answered per hour; beyond it new senders get no reply, only a count in `status`. */
  max_open_people_per_hour: v.optional(int(1, 10_000_000), 1000),
  /**
   * The operator's own peer id on this platform (e.g. a Telegram user id): their messages do not taint
   * a turn, and approval requests are sent to them with Allow/Deny buttons (where the channel supports
   * it). "" = none.
   */
  owner: v.optional(v.string(), ""),
  /** The bot's own username (Telegram, with or without "@"), so only its mentions count in groups. */
  bot_username: v.optional(v.pipe(v.string(), v.regex(/^@?[A-Za-z0-9_]{1,64}$/, "a username: letters, digits and _"))),
});

const Approvals = v.strictObject({
  /** How long a tool call waits for the operator before it is denied. */
  timeout_ms: v.optional(int(1, 24 * 3600_000), 300_000),
});

const Budgets = v.strictObject({
  session_tokens: v.optional(int(0)),
  daily_tokens: v.optional(int(0)),
  monthly_tokens: v.optional(int(0)),
  session_usd: v.optional(v.pipe(v.number(), v.minValue(0))),
  daily_usd: v.optional(v.pipe(v.number(), v.minValue(0))),
  monthly_usd: v.optional(v.pipe(v.number(), v.minValue(0))),
  /** Per person on channels, per UTC day (SPEC §2). */
  person_daily_tokens: v.optional(int(0)),
  /** Per person on channels, per UTC day, in USD (unpriced models are refused for them). */
  person_daily_usd: v.optional(v.pipe(v.number(), v.minValue(0))),
});

/** NATS servers: one URL, a comma-separated list, or an array of URLs; kept as one comma-separated string. */
const NATS_SERVER = /^(?:(?:nats|tls):\/\/)?(?:[^\s/,@]+@)?[^\s/,@:]+(?::\d{1,5})?$/;
const NatsUrls = v.pipe(
  v.union([v.string(), v.array(v.string())], "expected a NATS URL, a comma-separated list of them, or an array"),
  v.transform((s) =>
    (Array.isArray(s) ? s : s.split(","))
      .map((u) => u.trim())
      .filter((u) => u !== "")
      .join(","),
  ),
  v.check(
    (s) => s === "" || s.split(",").every((u) => NATS_SERVER.test(u)),
    "expected nats://host:port (or a list of them)",
  ),
);

export const ConfigSchema = v.strictObject({
  gateway: v.optional(Gateway, {}),
  agents: v.optional(v.array(Agent), []),
  bindings: v.optional(v.array(Binding), []),
  plugins: v.optional(v.array(Plugin), []),
  channels: v.optional(v.record(name("channel name"), Channel), {}),
  mcp: v.optional(v.array(Mcp), []),
  budgets: v.optional(Budgets, {}),
  approvals: v.optional(Approvals, {}),
  memory: v.optional(
    v.strictObject({ episodic_turns: v.optional(int(0), 20), semantic: v.optional(v.boolean(), true) }),
    {},
  ),
  bus: v.optional(v.strictObject({ nats_url: v.optional(NatsUrls, "") }), {}),
  store: v.optional(
    v.strictObject({
      kind: v.optional(v.picklist(["sqlite", "memory", "nats"]), "sqlite"),
      /** The nats store's servers; empty: `[bus] nats_url`'s. */
      nats_url: v.optional(NatsUrls, ""),
      /** JetStream replicas of the nats store's streams and buckets: 1, or 3 on a 3-node cluster. */
      replicas: v.optional(int(1, 5), 1),
      /** Names of the nats store's streams, buckets and subjects: several deployments can share one NATS. */
      namespace: v.optional(
        v.pipe(v.string(), v.regex(/^[A-Za-z0-9_-]+$/, "namespace must match [A-Za-z0-9_-]+")),
        "exoclaw",
      ),
    }),
    {},
  ),
});

export type ConfigFile = v.InferOutput<typeof ConfigSchema>;
export type AgentConfig = ConfigFile["agents"][number];
export type GatewayConfig = ConfigFile["gateway"];
export type ChannelConfig = ConfigFile["channels"][string];
export type McpConfig = ConfigFile["mcp"][number];
export type ApprovalSetting = v.InferOutput<typeof Approval>;
