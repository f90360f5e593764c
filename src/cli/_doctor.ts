/**
 * `exoclaw doctor`'s checks: each looks at one part of the operator's setup and says `ok`, `warn` or
 * `fail`, what is wrong and the fix (a command to run or a config line to change). They only read:
 * nothing is written, no permission is changed, and no secret value is ever part of a message.
 */
import { existsSync, readdirSync, readFileSync, statSync, statfsSync } from "node:fs";
import { homedir } from "node:os";
import { dirname, join, resolve, sep } from "node:path";
import { isLoopback } from "../auth/loopback.ts";
import { BUILTIN_CHANNEL_OPTIONAL_ROLES, BUILTIN_CHANNEL_ROLES } from "../channels/config.ts";
import { type Config, type Env, loadConfig, resolveConfigPath, resolveHome, takesNoKey } from "../config/index.ts";
import {
  agentCredentialName,
  API_KEY_ENV,
  resolveAgentKey,
  resolveApiKey,
  type ResolvedKey,
} from "../config/api-keys.ts";
import type { AgentConfig } from "../config/schema.ts";
import { isExoError } from "../lib/errors.ts";
import { VERSION } from "../lib/version.ts";
import { BUILTIN_PREFIX, readPinnedModule } from "../sandbox/configured.ts";
import { exoclawHealth, modelsRequest, probe, type ProbeResult } from "./_doctor-probe.ts";
import { gatewayUrl } from "./_client.ts";
import { SYSTEM_ENV, SYSTEM_HOME, SYSTEM_UNIT, userUnitPath } from "./service.ts";

export type CheckStatus = "ok" | "warn" | "fail";

/** One line of the report. `fix` is a command to run or a config line to change. */
export interface Check {
  id: string;
  status: CheckStatus;
  message: string;
  fix?: string;
}

export interface DoctorOptions {
  env: Env;
  /** `--config`. */
  file?: string;
  /** Also ask each provider whether it takes its key, and the public URL whether it answers. */
  online?: boolean;
  /** The systemd units to look for (tests point them into a temp dir). */
  units?: { system: string; user: string };
  /** How long each network request may take. */
  timeoutMs?: number;
}

const MIB = 1024 * 1024;

/** The disk verdict for the state dir's filesystem: SQLite needs room to grow. */
export function diskStatus(freeBytes: number): CheckStatus {
  if (freeBytes < 100 * MIB) return "fail";
  if (freeBytes < 1024 * MIB) return "warn";
  return "ok";
}

const bytes = (n: number) => (n >= 1024 * MIB ? `${(n / (1024 * MIB)).toFixed(1)} GiB` : `${Math.floor(n / MIB)} MiB`);
const mode = (m: number) => (m & 0o777).toString(8).padStart(3, "0");

/** Runs every check, in the order they are printed. Never throws for a problem it can describe. */
export async function runDoctor(opts: DoctorOptions): Promise<Check[]> {
  const checks: Check[] = [];
  const add = (id: string, status: CheckStatus, message: string, fix?: string) =>
    void checks.push({ id, status, message, ...(fix !== undefined && { fix }) });
  const timeoutMs = opts.timeoutMs ?? 3000;
  let config: Config | null = null;
  try {
    config = loadConfig(opts.env, { file: opts.file });
    if (config.file) add("config", "ok", `${config.file} is valid`);
    else
      add(
        "config",
        "warn",
        `no config file at ${resolveConfigPath(opts.env).path}: zero-config defaults`,
        "exoclaw onboard",
      );
  } catch (e) {
    if (!isExoError(e)) throw e;
    add("config", "fail", e.message, "edit the file at that key, then `exoclaw config check`");
  }
  const home = config?.home ?? resolveHome(opts.env);
  if (config) await checkKeys(config, opts.env, opts.online ? timeoutMs : 0, add);
  checkState(home, config, add);
  if (config) {
    checkChannels(config, add);
    checkPlugins(config, add);
    await checkPublicUrl(config, opts.online ? timeoutMs : 0, add);
    checkExposure(config, add);
  }
  checkUnits(opts.units ?? { system: SYSTEM_UNIT, user: userUnitPath(opts.env) }, home, add);
  checkDisk(home, add);
  if (config) await checkGateway(config, Math.min(timeoutMs, 1500), add);
  return checks;
}

type Add = (id: string, status: CheckStatus, message: string, fix?: string) => void;

interface KeyStep {
  label: string;
  provider: AgentConfig["provider"];
  baseUrl: string;
  resolved: ResolvedKey;
  /** Where the key comes from, in words. */
  source: string;
  /** The credential `exoclaw secret set` should write. */
  credential: string;
  envVar: string | undefined;
  agents: string[];
}

/** Every endpoint a turn may call (each agent's own step, then its fallbacks), with its key. */
function keySteps(config: Config, env: Env): KeyStep[] {
  const steps = new Map<string, KeyStep>();
  const describe = (r: ResolvedKey, envVar: string | undefined, credential: string) =>
    r.source === "env"
      ? `$${envVar}`
      : r.source === "credentials"
        ? `credentials/${credential}.key`
        : r.source === "config"
          ? "api_key in the config file"
          : "";
  const put = (step: Omit<KeyStep, "agents" | "source">, agent: string) => {
    const id = `${step.label}\0${step.resolved.key ?? ""}`;
    const known = steps.get(id);
    if (known) {
      if (!known.agents.includes(agent)) known.agents.push(agent);
    } else steps.set(id, { ...step, source: describe(step.resolved, step.envVar, step.credential), agents: [agent] });
  };
  for (const agent of config.agents) {
    const custom = agent.base_url !== "";
    const named = agent.api_key_env && env[agent.api_key_env] ? agent.api_key_env : undefined;
    put(
      {
        label: custom
          ? `agent ${agent.id} (${agent.provider} at ${agent.base_url})`
          : agent.api_key_env
            ? `${agent.provider} (agent ${agent.id})`
            : agent.provider,
        provider: agent.provider,
        baseUrl: agent.base_url,
        resolved: resolveAgentKey(env, config.home, agent),
        credential: custom ? agentCredentialName(agent.id) : agent.provider,
        envVar: named ?? (custom ? agent.api_key_env : API_KEY_ENV[agent.provider]),
      },
      `agent ${agent.id}`,
    );
    for (const f of agent.fallbacks) {
      const configKey = f.provider === agent.provider && !custom ? agent.api_key : undefined;
      put(
        {
          label: f.provider,
          provider: f.provider,
          baseUrl: "",
          resolved: resolveApiKey(env, config.home, f.provider, configKey),
          credential: f.provider,
          envVar: API_KEY_ENV[f.provider],
        },
        `agent ${agent.id} (fallback)`,
      );
    }
  }
  return [...steps.values()];
}

async function checkKeys(config: Config, env: Env, onlineTimeoutMs: number, add: Add): Promise<void> {
  const results = await Promise.all(
    keySteps(config, env).map(async (step) => {
      const used = `used by ${step.agents.join(", ")}`;
      const needsNone = takesNoKey(step.provider);
      const fix = `exoclaw secret set ${step.credential}${step.envVar ? ` (or set ${step.envVar})` : ""}`;
      const lines: Parameters<Add>[] = [];
      if (needsNone) lines.push(["keys", "ok", `${step.label}: needs no key (${used})`]);
      else if (step.resolved.key) lines.push(["keys", "ok", `${step.label}: key from ${step.source} (${used})`]);
      else if (step.baseUrl !== "")
        lines.push([
          "keys",
          "warn",
          `${step.label}: no key, requests go without one (fine for a server that needs none; ${used})`,
          fix,
        ]);
      else lines.push(["keys", "fail", `${step.label}: no API key (${used})`, `${fix}, or exoclaw onboard`]);
      if (onlineTimeoutMs > 0 && (needsNone || step.resolved.key || step.baseUrl !== "")) {
        const req = modelsRequest(step.provider, step.baseUrl, step.resolved.key);
        lines.push(
          keyProbeLine(
            step.label,
            await probe(req.url, {
              headers: req.headers,
              timeoutMs: onlineTimeoutMs,
              secret: step.resolved.key,
              refused: req.refused,
            }),
            fix,
          ),
        );
      }
      return lines;
    }),
  );
  for (const line of results.flat()) add(...line);
}

function keyProbeLine(label: string, r: ProbeResult, fix: string): Parameters<Add> {
  switch (r.kind) {
    case "ok":
      return ["keys", "ok", `${label}: ${r.url} answered ${r.status}, key accepted`];
    case "refused":
      return ["keys", "fail", `${label}: key refused (${r.status} from ${r.url})`, fix];
    case "status":
      return ["keys", "warn", `${label}: ${r.url} answered ${r.status}; the key could not be checked`];
    case "unreachable":
      return [
        "keys",
        "warn",
        `${label}: could not reach ${r.url} (${r.reason})`,
        "check the network, or base_url of the agent",
      ];
    default: {
      const never: never = r;
      return never;
    }
  }
}

function fileMode(path: string): number | null {
  try {
    return statSync(path).mode & 0o777;
  } catch {
    return null;
  }
}

function checkState(home: string, config: Config | null, add: Add): void {
  const dirMode = fileMode(home);
  if (dirMode === null) {
    add("state", "warn", `state dir ${home} does not exist yet (the gateway creates it, mode 700)`, "exoclaw onboard");
    return;
  }
  let problems = 0;
  const flag = (status: CheckStatus, message: string, fix: string) => {
    problems++;
    add("state", status, message, fix);
  };
  if (dirMode & 0o007)
    flag("fail", `${home} is mode ${mode(dirMode)}: other users can get into the state dir`, `chmod 700 ${home}`);
  else if (dirMode & 0o070)
    flag("warn", `${home} is mode ${mode(dirMode)}: its group can get into the state dir`, `chmod 700 ${home}`);
  const credDir = join(home, "credentials");
  const credMode = fileMode(credDir);
  let keyFiles: string[] = [];
  if (credMode !== null) {
    if (credMode & 0o077)
      flag("fail", `${credDir} is mode ${mode(credMode)}: others can list the credentials`, `chmod 700 ${credDir}`);
    try {
      keyFiles = readdirSync(credDir).filter((f) => f.endsWith(".key"));
    } catch {
      flag("fail", `${credDir} cannot be read`, `chown -R $(id -un) ${credDir}`);
    }
    for (const f of keyFiles) {
      const path = join(credDir, f);
      const m = fileMode(path);
      if (m !== null && m & 0o077)
        flag("fail", `${path} is mode ${mode(m)}: others can read this secret`, `chmod 600 ${path}`);
    }
  }
  for (const f of ["exoclaw.db", "exoclaw.db-wal", "exoclaw.db-shm"]) {
    const path = join(home, f);
    const m = fileMode(path);
    if (m === null) continue;
    if (m & 0o004)
      flag("fail", `${path} is mode ${mode(m)}: every user can read the conversations`, `chmod 600 ${path}`);
    else if (m & 0o040)
      flag("warn", `${path} is mode ${mode(m)}: its group can read the conversations`, `chmod 600 ${path}`);
  }
  for (const agent of config?.agents ?? []) {
    if (!agent.api_key) continue;
    const cred = agent.base_url ? agentCredentialName(agent.id) : agent.provider;
    flag(
      "warn",
      `${config!.file} holds api_key for agent ${agent.id}: keys in config files get shared and committed`,
      `exoclaw secret set ${cred}, then delete the api_key line`,
    );
  }
  if (problems === 0)
    add(
      "state",
      "ok",
      `${home} is private (700)${credMode === null ? "" : `, ${keyFiles.length} credential(s), all 600`}`,
    );
}

/** A credential's state, without reading more of it than needed to know it is not blank. */
function credentialState(home: string, name: string): "present" | "missing" | "blank" {
  try {
    return readFileSync(join(home, "credentials", `${name}.key`), "utf8").trim() === "" ? "blank" : "present";
  } catch {
    return "missing";
  }
}

function checkChannels(config: Config, add: Add): void {
  const names = Object.keys(config.channels);
  if (names.length === 0) return add("channels", "ok", "no channels configured");
  for (const [name, ch] of Object.entries(config.channels)) {
    const plugin = ch.plugin ?? name;
    const entry = config.plugins.find((p) => p.name === plugin);
    const builtin = entry
      ? entry.path.startsWith(BUILTIN_PREFIX)
        ? entry.path.slice(BUILTIN_PREFIX.length)
        : null
      : plugin;
    if (!entry && !(plugin in BUILTIN_CHANNEL_ROLES)) {
      add(
        "channels",
        "fail",
        `${name}: plugin "${plugin}" is neither built-in (${Object.keys(BUILTIN_CHANNEL_ROLES).join(", ")}) nor a [[plugins]] entry`,
        `exoclaw plugin load FILE --name ${plugin}, or plugin = "<built-in>" under [channels.${name}]`,
      );
      continue;
    }
    let bad = 0;
    for (const role of (builtin && BUILTIN_CHANNEL_ROLES[builtin]) || []) {
      if (ch.secrets[role] !== undefined) continue;
      bad++;
      add(
        "channels",
        "fail",
        `${name}: no credential for the secret role ${role} (plugin ${plugin} needs it)`,
        `${role} = "${name}_${role}" in secrets under [channels.${name}], then exoclaw secret set ${name}_${role}`,
      );
    }
    for (const [role, cred] of Object.entries(ch.secrets)) {
      const state = credentialState(config.home, cred);
      if (state === "present") continue;
      bad++;
      add("channels", "fail", `${name}: secret ${role} → credential ${cred} is ${state}`, `exoclaw secret set ${cred}`);
    }
    if (bad > 0) continue;
    const roles = Object.keys(ch.secrets);
    const webhook = config.gateway.public_url ? `; webhook ${config.gateway.public_url}/webhook/${name}` : "";
    add(
      "channels",
      "ok",
      `${name}: plugin ${plugin}${roles.length ? `, secrets ${roles.join(", ")} present` : ""}${webhook}`,
    );
    // Discord sends to an owner only with its optional bot token (DMs); without it a request is only logged.
    if (
      ch.owner &&
      builtin &&
      (BUILTIN_CHANNEL_OPTIONAL_ROLES[builtin] ?? []).includes("bot_token") &&
      ch.secrets.bot_token === undefined
    ) {
      add(
        "channels",
        "warn",
        `${name}: owner is set but there is no bot_token: approval requests cannot be sent to the owner there (only logged; answer them with exoclaw approvals or the web page)`,
        `bot_token = "${name}_bot_token" in secrets under [channels.${name}], then exoclaw secret set ${name}_bot_token`,
      );
    }
  }
}

function checkPlugins(config: Config, add: Add): void {
  if (config.plugins.length === 0) return add("plugins", "ok", "no [[plugins]] entries");
  for (const p of config.plugins) {
    let problems = 0;
    if (!p.path.startsWith(BUILTIN_PREFIX)) {
      try {
        readPinnedModule(p, config.home);
      } catch (e) {
        if (!isExoError(e)) throw e;
        problems++;
        add("plugins", "fail", e.message, `exoclaw plugin load ${p.path} --name ${p.name}`);
      }
    }
    for (const cred of p.secrets) {
      const state = credentialState(config.home, cred);
      if (state === "present") continue;
      problems++;
      add(
        "plugins",
        "warn",
        `${p.name}: secret ${cred} is ${state} (calls that use it will fail)`,
        `exoclaw secret set ${cred}`,
      );
    }
    if (problems === 0)
      add("plugins", "ok", `${p.name}: ${p.path.startsWith(BUILTIN_PREFIX) ? p.path : "pinned file matches"}`);
  }
}

async function checkPublicUrl(config: Config, onlineTimeoutMs: number, add: Add): Promise<void> {
  const url = config.gateway.public_url;
  const platformChannels = Object.entries(config.channels).filter(([name, ch]) => (ch.plugin ?? name) !== "http");
  if (url === "") {
    if (platformChannels.length > 0 && isLoopback(config.gateway.bind)) {
      add(
        "public_url",
        "warn",
        `not set and the gateway listens on loopback only: platforms cannot reach the webhooks of ${platformChannels.map(([n]) => n).join(", ")}`,
        'public_url = "https://bot.example.com" under [gateway], behind a reverse proxy (see docs/deployment.md)',
      );
    } else add("public_url", "ok", "not set");
    return;
  }
  if (!url.startsWith("https://"))
    add(
      "public_url",
      "warn",
      `${url} is not https: platforms want HTTPS webhooks, and the token would travel in clear`,
      'a TLS reverse proxy in front (docs/deployment.md), then public_url = "https://…"',
    );
  if (onlineTimeoutMs === 0) {
    if (url.startsWith("https://")) add("public_url", "ok", `${url} (--online checks that it answers)`);
    return;
  }
  const health = `${url.replace(/\/$/, "")}/health`;
  const r = await probe(health, { timeoutMs: onlineTimeoutMs });
  const version = r.kind === "ok" ? exoclawHealth(r.body) : null;
  if (version !== null) return add("public_url", "ok", `${health} answers (exoclaw ${version || "?"})`);
  const why =
    r.kind === "unreachable"
      ? r.reason
      : r.kind === "ok"
        ? "an answer that is not exoclaw's /health"
        : `HTTP ${r.status}`;
  add(
    "public_url",
    "fail",
    `${health}: ${why}`,
    `check DNS and the reverse proxy (it forwards to ${config.gateway.bind}:${config.gateway.port}), and that the gateway runs`,
  );
}

/** The token the gateway would run with: the environment, else the service's environment file. */
function gatewayToken(config: Config): { token: string; source: string } {
  if (config.gateway.token) return { token: config.gateway.token, source: "EXOCLAW_TOKEN" };
  for (const file of [join(config.home, "gateway.env"), ...(config.home === SYSTEM_HOME ? [SYSTEM_ENV] : [])]) {
    let text: string;
    try {
      text = readFileSync(file, "utf8");
    } catch {
      continue;
    }
    const m = /^\s*(?:export\s+)?EXOCLAW_TOKEN\s*=\s*(.*)$/m.exec(text);
    const token = m?.[1]?.trim().replace(/^(["'])(.*)\1$/, "$2") ?? "";
    if (token) return { token, source: file };
  }
  return { token: "", source: "" };
}

/** Host allowlist entries that match (nearly) every host: `*`, `*.com`. */
function isWideHost(entry: string): boolean {
  const host = entry
    .trim()
    .toLowerCase()
    .replace(/^https?:\/\//, "")
    .replace(/\/$/, "")
    .replace(/:\d+$/, "");
  return host === "*" || (host.startsWith("*.") && !host.slice(2).includes("."));
}

function checkExposure(config: Config, add: Add): void {
  const g = config.gateway;
  const { token, source } = gatewayToken(config);
  const loopback = isLoopback(g.bind);
  const tokenFix = `EXOCLAW_TOKEN=$(openssl rand -hex 32) in the gateway's environment (${join(config.home, "gateway.env")}, mode 600, for a user service)`;
  let problems = 0;
  const flag = (status: CheckStatus, message: string, fix: string) => {
    problems++;
    add("exposure", status, message, fix);
  };
  if (!loopback && !token)
    flag(
      "fail",
      `bind ${g.bind} without a token: the gateway refuses to start`,
      `${tokenFix}, or bind = "127.0.0.1" under [gateway]`,
    );
  if (!loopback && !g.tls_cert && !g.public_url)
    flag(
      "warn",
      `bind ${g.bind} without TLS: the token and the messages cross the network in clear`,
      'tls_cert and tls_key under [gateway], or bind = "127.0.0.1" behind a TLS reverse proxy (docs/deployment.md)',
    );
  if (g.public_url && !token)
    flag(
      "warn",
      `public_url ${g.public_url} without a token: set one, so only you can use /ws, the web page and the http channel from there`,
      tokenFix,
    );
  if (token && token.length < 16)
    flag("warn", `the token (from ${source}) is only ${token.length} characters`, "a longer one: openssl rand -hex 32");
  for (const [name, ch] of Object.entries(config.channels)) {
    if ((ch.plugin ?? name) === "http") continue; // the operator's own (gateway token)
    if (ch.dm_policy === "open")
      flag(
        "warn",
        `channel ${name}: dm_policy = "open" — anyone who finds it is answered and spends your budget`,
        `dm_policy = "pairing" (the default: strangers get a code, \`exoclaw pairing approve CODE\` lets them in) or "allowlist" with allow_from, under [channels.${name}]`,
      );
    if (ch.groups?.includes("*") && ch.require_mention === false)
      flag(
        "warn",
        `channel ${name}: every group is answered, mentioned or not (groups = ["*"], require_mention = false)`,
        `list the groups (groups = ["<id>"]) or require_mention = true under [channels.${name}]`,
      );
  }
  const home = resolve(config.home);
  for (const p of config.plugins) {
    const hosts = p.allowed_hosts.filter(isWideHost);
    if (hosts.length)
      flag(
        "warn",
        `plugin ${p.name}: allowed_hosts ${hosts.map((h) => `"${h}"`).join(", ")} lets it reach (nearly) any host`,
        `allowed_hosts = ["api.example.com"] (the hosts it needs) in its [[plugins]] entry`,
      );
    for (const hostPath of Object.keys(p.allowed_paths)) {
      const root = resolve(hostPath);
      const wide = root === sep || root === homedir() || home === root || home.startsWith(root + sep);
      if (wide)
        flag(
          "warn",
          `plugin ${p.name}: allowed_paths grants ${root}${root === sep ? " (the whole filesystem)" : home.startsWith(root) ? " (it holds the state dir and its credentials)" : " (your home directory)"}`,
          'allowed_paths = { "/srv/plugin-data" = "/data" }: a directory of its own',
        );
    }
    if (p.shared_state)
      flag(
        "warn",
        `plugin ${p.name}: shared_state = true, one state for every person (what one stores, the others can read)`,
        "delete shared_state from its [[plugins]] entry unless the plugin needs it",
      );
  }
  if (problems === 0)
    add(
      "exposure",
      "ok",
      `bind ${g.bind}${loopback ? " (loopback)" : ""}, ${token ? `token from ${source}` : "no token"}${g.tls_cert ? ", TLS" : ""}`,
    );
}

/** The absolute paths of a unit's ExecStart before the `gateway` word (the binary, or bun and main.ts). */
export function execPaths(unit: string): string[] {
  const line = /^ExecStart=(.*)$/m.exec(unit)?.[1] ?? "";
  const words = (line.match(/"(?:[^"\\]|\\.)*"|\S+/g) ?? []).map((w) =>
    w.startsWith('"') ? (JSON.parse(w) as string) : w,
  );
  const end = words.indexOf("gateway");
  return (end === -1 ? words : words.slice(0, end)).filter((w) => w.startsWith("/"));
}

function checkUnits(units: { system: string; user: string }, home: string, add: Add): void {
  let found = 0;
  for (const [kind, path] of [
    ["system", units.system],
    ["user", units.user],
  ] as const) {
    let text: string;
    try {
      text = readFileSync(path, "utf8");
    } catch {
      continue;
    }
    found++;
    const reinstall = kind === "system" ? "sudo ./exoclaw-linux-x64 service install" : "exoclaw service install --user";
    const missing = execPaths(text).filter((p) => !existsSync(p));
    if (missing.length) {
      add(
        "unit",
        "warn",
        `${kind} unit ${path}: ExecStart runs ${missing.join(", ")}, which does not exist`,
        reinstall,
      );
      continue;
    }
    const other =
      kind === "system" && resolve(home) !== SYSTEM_HOME
        ? `; it serves ${SYSTEM_HOME}: check that with sudo EXOCLAW_HOME=${SYSTEM_HOME} exoclaw doctor`
        : "";
    add("unit", "ok", `${kind} unit ${path} (runs ${execPaths(text).join(" ") || "?"})${other}`);
  }
  if (found === 0) add("unit", "ok", "no systemd unit installed (exoclaw service install)");
}

function checkDisk(home: string, add: Add): void {
  let dir = resolve(home);
  while (!existsSync(dir) && dirname(dir) !== dir) dir = dirname(dir);
  let free: number;
  try {
    const s = statfsSync(dir);
    free = Number(s.bavail) * Number(s.bsize);
  } catch (e) {
    return add(
      "disk",
      "warn",
      `cannot tell the free space under ${dir} (${(e as NodeJS.ErrnoException).code ?? "error"})`,
    );
  }
  const status = diskStatus(free);
  const message = `${bytes(free)} free on the filesystem of ${dir}`;
  if (status === "ok") add("disk", "ok", message);
  else
    add(
      "disk",
      status,
      `${message}: the store stops taking messages when the disk is full`,
      "free some space there, or move the state dir (EXOCLAW_HOME) to a larger disk",
    );
}

async function checkGateway(config: Config, timeoutMs: number, add: Add): Promise<void> {
  const base = gatewayUrl(config, {}).replace(/^ws/, "http").replace(/\/ws$/, "");
  const r = await probe(`${base}/health`, { timeoutMs, insecure: true });
  const version = r.kind === "ok" ? exoclawHealth(r.body) : null;
  if (version === null) {
    if (r.kind === "unreachable")
      add("gateway", "warn", `no gateway answering at ${base}`, "exoclaw gateway (or systemctl start exoclaw)");
    else
      add(
        "gateway",
        "warn",
        `something other than exoclaw answers at ${base} (HTTP ${r.status})`,
        `port = <another port> under [gateway]`,
      );
  } else if (version && version !== VERSION)
    add(
      "gateway",
      "warn",
      `gateway running at ${base} runs ${version}; this exoclaw is ${VERSION}`,
      "restart it (systemctl restart exoclaw) to run this version",
    );
  else add("gateway", "ok", `gateway running at ${base} (${version || VERSION})`);
}

/** The report for a terminal (`color`) or a pipe: one line per check, its fix indented below. */
export function formatChecks(checks: readonly Check[], color: boolean): string {
  const paint: Record<CheckStatus, string> = { ok: "\x1b[32m", warn: "\x1b[33m", fail: "\x1b[31m" };
  const lines = checks.flatMap((c) => {
    const status = c.status.padEnd(6);
    return [
      `${color ? `${paint[c.status]}${status}\x1b[0m` : status}${c.id.padEnd(11)}${c.message}`,
      ...(c.fix ? [`      fix: ${c.fix}`] : []),
    ];
  });
  const fails = checks.filter((c) => c.status === "fail").length;
  const warns = checks.filter((c) => c.status === "warn").length;
  lines.push(
    "",
    fails + warns === 0
      ? "all checks passed"
      : [fails && `${fails} failed`, warns && `${warns} warning(s)`].filter(Boolean).join(", "),
  );
  return lines.join("\n");
}
