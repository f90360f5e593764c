import { defineCommand } from "citty";
import { loadConfig } from "../config/index.ts";
import { clientArgs, parsePort, stringFlag } from "./_args.ts";
import { connectGateway, gatewayUrl } from "./_client.ts";

export interface StatusResult {
  version: string;
  pid: number;
  uptime_s: number;
  url: string;
  bind: string;
  port: number;
  auth: { token_required: boolean; tls: boolean };
  connections: number;
  config_file: string | null;
  memory: { rss_bytes: number };
  store?: {
    kind: string;
    location: string;
    sessions: number;
    engine?: { connected: boolean; streams: { name: string; messages: number; bytes: number; replicas: number }[] };
  };
  router?: { bindings: number };
  bus?: { mode: string; url?: string };
  usage_today?: { calls: number; input_tokens: number; output_tokens: number };
  /** Channel messages not answered yet: still being retried, and dead-lettered (`exoclaw inbox`). */
  inbound?: { pending: number; dead: number };
  /** Per channel: pairing codes pending, and strangers refused because `max_pending_pairings` was reached. */
  pairing?: Record<string, { pending: number; refused_full: number }>;
  /** Per "open" channel: people answered this hour, and senders refused because `max_open_people_per_hour` was reached. */
  open_people?: Record<string, { people_this_hour: number; refused_full: number }>;
  plugins?: { name: string; state: string; error?: string }[];
  /** Who may talk on each channel. */
  channels?: Record<string, { dm_policy: string; groups?: string[]; rate_per_minute?: number }>;
  /** Settings that let strangers in (a channel with dm_policy = "open" …). */
  exposures?: string[];
  agents?: {
    id: string;
    provider: string;
    model: string;
    default: boolean;
    key: "present" | "missing" | "not_required";
  }[];
  /** Several gateways on NATS (src/cluster/work.ts): who is seen, the NATS server, the work queue, dead letters. */
  cluster?: {
    this_gateway: string;
    error?: string;
    gateways?: { id: string; seen_ms_ago: number }[];
    nats?: { connected_to: string | null; server_name: string | null; cluster: string | null };
    work?: {
      stream: string;
      messages: number;
      replicas: number;
      partitions: number;
      waiting: number;
      in_flight: number;
      redelivered: number;
    };
    dead_letters?: number;
  };
  /** `--workers N`: every worker (the one answering fresh, the others as of their last report) and the total. */
  workers?: {
    expected: number;
    running: number;
    this_worker: number;
    list: {
      index: number;
      pid: number;
      uptime_s: number;
      connections: number;
      rss_bytes: number;
      children: number;
      children_rss_bytes: number;
      turns_running: number;
    }[];
    total: { connections: number; rss_bytes: number; children: number; turns_running: number };
  };
}

const mib = (b: number) => `${(b / 1048576).toFixed(1)} MiB`;

/** The cluster's lines: gateways seen (heartbeats), the NATS server, the work queue, dead letters. */
function clusterLines(c: NonNullable<StatusResult["cluster"]>): string[] {
  if (c.error !== undefined || !c.gateways || !c.work)
    return [`  cluster      this gateway ${c.this_gateway}; NATS UNREACHABLE: ${c.error ?? "no answer"}`];
  return [
    `  cluster      ${c.gateways.length} gateway(s) seen: ${c.gateways.map((g) => `${g.id}${g.id === c.this_gateway ? " (this one)" : ""}`).join(", ")}`,
    `               NATS ${c.nats?.server_name ?? "?"} at ${c.nats?.connected_to ?? "?"}${c.nats?.cluster ? ` (cluster ${c.nats.cluster})` : ""}`,
    `               work queue ${c.work.stream} R${c.work.replicas}: ${c.work.waiting} waiting, ${c.work.in_flight} in flight, ${c.work.redelivered} redelivered, over ${c.work.partitions} partitions`,
    `               ${c.dead_letters ?? 0} dead letter(s)${(c.dead_letters ?? 0) > 0 ? " — see `exoclaw inbox list`" : ""}`,
  ];
}

/** Human-readable status lines. */
export function formatStatus(s: StatusResult, url: string): string {
  const uptime =
    s.uptime_s < 120
      ? `${s.uptime_s} s`
      : s.uptime_s < 7200
        ? `${Math.round(s.uptime_s / 60)} min`
        : `${(s.uptime_s / 3600).toFixed(1)} h`;
  return [
    `exoclaw ${s.version} — running (pid ${s.pid}, up ${uptime})`,
    `  address      ${url}`,
    `  bind         ${s.bind}:${s.port}`,
    `  auth         ${s.auth.token_required ? "token required" : "no token (loopback only)"}${s.auth.tls ? ", TLS" : ""}`,
    `  connections  ${s.connections}`,
    `  config       ${s.config_file ?? "defaults (no file)"}`,
    `  memory       ${(s.memory.rss_bytes / 1048576).toFixed(1)} MiB RSS`,
    ...(s.workers
      ? [
          `  workers      ${s.workers.running} of ${s.workers.expected} running (this answer from #${s.workers.this_worker}), ${s.workers.total.connections} connection(s), ${s.workers.total.turns_running} turn(s) running, ${mib(s.workers.total.rss_bytes)} RSS in all`,
          ...s.workers.list.map(
            (w) =>
              `               #${w.index} pid ${w.pid}, up ${w.uptime_s} s, ${w.connections} conn, ${mib(w.rss_bytes)}${w.children > 0 ? ` + ${w.children} plugin/child process(es) ${mib(w.children_rss_bytes)}` : ""}`,
          ),
        ]
      : []),
    ...(s.store ? [`  store        ${s.store.kind} (${s.store.location}), ${s.store.sessions} session(s)`] : []),
    ...(s.store?.engine
      ? [
          `               ${s.store.engine.connected ? "" : "UNREACHABLE; "}${s.store.engine.streams.map((x) => `${x.name} ${x.messages} msg(s) R${x.replicas}`).join(", ")}`,
        ]
      : []),
    ...(s.cluster ? clusterLines(s.cluster) : []),
    ...(s.agents ?? []).map(
      (a, i) =>
        `  ${i === 0 ? "agents      " : "            "} ${a.id}${a.default ? " (default)" : ""}: ${a.provider} ${a.model}${a.key === "missing" ? ` — no API key: run \`exoclaw onboard\` or \`exoclaw secret set ${a.provider}\`` : ""}`,
    ),
    ...(s.router ? [`  bindings     ${s.router.bindings}`] : []),
    ...(s.bus
      ? [
          `  bus          ${s.bus.mode}${s.bus.url ? ` (${s.bus.url}${s.bus.mode === "local" ? " unreachable" : ""})` : ""}`,
        ]
      : []),
    ...(s.inbound
      ? [
          `  channels     ${s.inbound.pending} message(s) pending, ${s.inbound.dead} dead-lettered${s.inbound.dead > 0 ? " — see `exoclaw inbox list`" : ""}`,
        ]
      : []),
    ...(s.channels && Object.keys(s.channels).length > 0
      ? [
          `  who talks    ${Object.entries(s.channels)
            .map(
              ([name, c]) =>
                `${name}: ${c.dm_policy}${c.groups && c.groups.length > 0 ? `, ${c.groups.length} group(s)` : ""}`,
            )
            .join("; ")}`,
        ]
      : []),
    ...(s.pairing && Object.keys(s.pairing).length > 0
      ? [
          `  pairing      ${Object.entries(s.pairing)
            .map(
              ([name, p]) =>
                `${name}: ${p.pending} code(s) pending${p.refused_full > 0 ? `, ${p.refused_full} stranger(s) refused at max_pending_pairings` : ""}`,
            )
            .join("; ")}`,
        ]
      : []),
    ...(s.open_people && Object.keys(s.open_people).length > 0
      ? [
          `  open         ${Object.entries(s.open_people)
            .map(
              ([name, o]) =>
                `${name}: ${o.people_this_hour} people this hour${o.refused_full > 0 ? `, ${o.refused_full} sender(s) refused at max_open_people_per_hour` : ""}`,
            )
            .join("; ")}`,
        ]
      : []),
    ...(s.exposures ?? []).map((e) => `  EXPOSED      ${e}`),
    ...(s.usage_today
      ? [
          `  usage today  ${s.usage_today.calls} model call(s), ${s.usage_today.input_tokens} in / ${s.usage_today.output_tokens} out tokens`,
        ]
      : []),
    ...(s.plugins
      ? [
          `  plugins      ${s.plugins.length === 0 ? "none" : s.plugins.map((p) => `${p.name} (${p.state})`).join(", ")}`,
          ...s.plugins.filter((p) => p.error).map((p) => `               ${p.name}: ${p.error}`),
        ]
      : []),
  ].join("\n");
}

export default defineCommand({
  meta: { name: "status", description: "Ask the running gateway how it is doing" },
  args: { ...clientArgs, json: { type: "boolean", description: "Print JSON" } },
  async run({ args }) {
    const token = stringFlag("token", args.token);
    const config = loadConfig(process.env, { file: stringFlag("config", args.config), token });
    const url = gatewayUrl(config, {
      url: stringFlag("url", args.url),
      port: parsePort(stringFlag("port", args.port)),
    });
    const client = await connectGateway(url, config.gateway.token, 3000);
    try {
      const status = (await client.call("status")) as StatusResult;
      process.stdout.write((args.json ? JSON.stringify(status, null, 2) : formatStatus(status, url)) + "\n");
    } finally {
      client.close();
    }
    return 0;
  },
});
