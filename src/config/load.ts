/**
 * Loads the effective configuration: file (TOML) + environment + command-line overrides.
 * This module is the only reader of process.env and of config files (callers pass `env`).
 */
import { existsSync, readFileSync } from "node:fs";
import { homedir } from "node:os";
import { join, resolve } from "node:path";
import { parse as parseToml, TomlError } from "smol-toml";
import * as v from "valibot";
import { ConfigError } from "../lib/errors.ts";
import { describeIssue, issuePath } from "../lib/issues.ts";
import { type AgentConfig, ConfigSchema, type ConfigFile } from "./schema.ts";

export type Env = Readonly<Record<string, string | undefined>>;

/** What the command line may override. */
export interface ConfigOverrides {
  port?: number;
  bind?: string;
  token?: string;
  /** Explicit config file (`--config`); wins over EXOCLAW_CONFIG. */
  file?: string;
}

/** The frozen, validated configuration every module is built from. */
export interface Config extends ConfigFile {
  /** The file the config came from, or null for zero-config defaults. */
  readonly file: string | null;
  /** The state directory. */
  readonly home: string;
  readonly gateway: ConfigFile["gateway"] & { readonly token: string };
}

/** The state directory: $EXOCLAW_HOME, else ~/.exoclaw. */
export function resolveHome(env: Env): string {
  const home = env.EXOCLAW_HOME;
  return home ? resolve(home) : join(homedir(), ".exoclaw");
}

/** The config file path: --config, else $EXOCLAW_CONFIG, else <state>/config.toml. */
export function resolveConfigPath(env: Env, explicit?: string): { path: string; explicit: boolean } {
  if (explicit) return { path: resolve(explicit), explicit: true };
  if (env.EXOCLAW_CONFIG) return { path: resolve(env.EXOCLAW_CONFIG), explicit: true };
  return { path: join(resolveHome(env), "config.toml"), explicit: false };
}

const DEFAULT_AGENT: AgentConfig = v.parse(ConfigSchema, { agents: [{ id: "main" }] }).agents[0]!;

/**
 * Reads, validates and freezes the config. Throws ConfigError naming the file and key path
 * for unreadable files, bad TOML, unknown keys, wrong types and inconsistent values.
 * A missing file is fine unless it was named explicitly (flag or EXOCLAW_CONFIG).
 */
export function loadConfig(env: Env, overrides: ConfigOverrides = {}): Config {
  const { path, explicit } = resolveConfigPath(env, overrides.file);
  let raw: unknown = {};
  let file: string | null = null;
  if (existsSync(path)) {
    raw = parseFile(path);
    file = path;
  } else if (explicit) {
    throw new ConfigError(`${path}: config file not found`);
  }
  const label = file ?? "defaults";
  const result = v.safeParse(ConfigSchema, raw);
  if (!result.success) throw new ConfigError(`${label}: ${formatIssues(result.issues)}`);
  const parsed = result.output;
  checkConsistency(parsed, label);

  const token = overrides.token ?? env.EXOCLAW_TOKEN ?? "";
  const gateway = { ...parsed.gateway, token };
  const level = env.EXOCLAW_LOG?.trim().toLowerCase();
  if (level) {
    if (level !== "debug" && level !== "info" && level !== "warn" && level !== "error")
      throw new ConfigError(`EXOCLAW_LOG: expected debug, info, warn or error, got "${env.EXOCLAW_LOG}"`);
    gateway.log_level = level;
  }
  if (overrides.port !== undefined) gateway.port = overrides.port;
  if (overrides.bind !== undefined) gateway.bind = overrides.bind;
  const agents = parsed.agents.length > 0 ? parsed.agents : [DEFAULT_AGENT];
  return deepFreeze({ ...parsed, agents, gateway, file, home: resolveHome(env) });
}

function parseFile(path: string): unknown {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? "error";
    throw new ConfigError(`${path}: cannot read config file (${code})`, { cause: e });
  }
  try {
    return parseToml(text);
  } catch (e) {
    if (e instanceof TomlError) {
      const first = e.message.split("\n")[0] ?? "invalid TOML";
      throw new ConfigError(`${path}:${e.line}:${e.column}: invalid TOML: ${first}`, { cause: e });
    }
    throw new ConfigError(`${path}: invalid TOML`, { cause: e });
  }
}

function formatIssues(issues: readonly v.BaseIssue<unknown>[]): string {
  return issues
    .slice(0, 5)
    .map((i) => `${issuePath(i)}: ${describeIssue(i)}`)
    .join("; ");
}

function checkConsistency(c: ConfigFile, label: string): void {
  const fail = (key: string, msg: string): never => {
    throw new ConfigError(`${label}: ${key}: ${msg}`);
  };
  const ids = new Set<string>();
  c.agents.forEach((a, i) => {
    if (ids.has(a.id)) fail(`agents[${i}].id`, `duplicate agent id "${a.id}"`);
    ids.add(a.id);
  });
  if (c.agents.filter((a) => a.default).length > 1) fail("agents", "more than one agent has default = true");
  const known = ids.size > 0 ? ids : new Set([DEFAULT_AGENT.id]);
  c.bindings.forEach((b, i) => {
    if (!known.has(b.agent)) fail(`bindings[${i}].agent`, `no agent with id "${b.agent}"`);
  });
  const plugins = new Set<string>();
  c.plugins.forEach((p, i) => {
    if (plugins.has(p.name)) fail(`plugins[${i}].name`, `duplicate plugin name "${p.name}"`);
    plugins.add(p.name);
  });
  checkMcp(c, plugins, fail);
  if (c.store.kind === "nats" && c.store.nats_url === "" && c.bus.nats_url === "") {
    fail(
      "store.nats_url",
      'store.kind = "nats" needs the NATS servers: set [store] nats_url (or [bus] nats_url, which it defaults to)',
    );
  }
  if ((c.gateway.tls_cert === "") !== (c.gateway.tls_key === "")) {
    fail(c.gateway.tls_cert ? "gateway.tls_key" : "gateway.tls_cert", "tls_cert and tls_key must be set together");
  }
}

/** Headers the MCP transport or the host set themselves: a config may not override them. */
const RESERVED_MCP_HEADER =
  /^(host|connection|keep-alive|transfer-encoding|content-length|content-type|accept|te|trailer|upgrade|proxy-.*|mcp-session-id|mcp-protocol-version|last-event-id)$/i;
const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9a-z-]+$/i;

export const STDIO_REFUSED =
  "stdio MCP servers are refused: exoclaw cannot control what a process it starts reaches on the network or reads on disk. " +
  "Run the server behind an HTTP bridge you control and set url to it (e.g. http://127.0.0.1:8931/mcp), or package the tool as a WASM plugin";

function checkMcp(c: ConfigFile, plugins: ReadonlySet<string>, fail: (key: string, msg: string) => never): void {
  const names = new Set<string>();
  c.mcp.forEach((m, i) => {
    const at = `mcp[${i}]`;
    if (names.has(m.name)) fail(`${at}.name`, `duplicate mcp server name "${m.name}"`);
    if (plugins.has(m.name))
      fail(`${at}.name`, `"${m.name}" is also a [[plugins]] name; tool names would collide: rename one`);
    names.add(m.name);
    if (m.name.length > 32)
      fail(`${at}.name`, "at most 32 characters (tools are offered as <name>__<tool>, 64 characters at most)");
    for (const key of ["command", "args", "env"] as const)
      if (m[key] !== undefined) fail(`${at}.${key}`, STDIO_REFUSED);
    if (m.url === undefined)
      return fail(
        `${at}.url`,
        "missing required key (the server's streamable HTTP endpoint, e.g. https://mcp.example.com/mcp)",
      );
    let url: URL;
    try {
      url = new URL(m.url);
    } catch {
      return fail(
        `${at}.url`,
        `not a URL: ${JSON.stringify(m.url!.slice(0, 80))} (expected https://host/path of a streamable HTTP MCP server)`,
      );
    }
    if (url.protocol !== "http:" && url.protocol !== "https:")
      fail(`${at}.url`, `scheme ${url.protocol} is not streamable HTTP; ${STDIO_REFUSED}`);
    if (url.username || url.password)
      fail(`${at}.url`, "credentials in the URL are not allowed; put them in headers with {{secret:NAME}}");
    if (/\{\{/.test(m.url)) fail(`${at}.url`, "secrets go in headers, not in the URL");
    const host = url.hostname.toLowerCase().replace(/\.$/, "");
    if (host === "localhost" || host.endsWith(".localhost")) {
      fail(
        `${at}.url`,
        `${url.hostname} is a name for a loopback address, which is reachable only through an IP literal grant: use http://127.0.0.1${url.port ? `:${url.port}` : ""}${url.pathname}`,
      );
    }
    for (const [k, value] of Object.entries(m.headers)) {
      if (!HEADER_NAME.test(k)) fail(`${at}.headers`, `invalid header name ${JSON.stringify(k.slice(0, 40))}`);
      if (RESERVED_MCP_HEADER.test(k))
        fail(`${at}.headers.${k}`, "this header is set by the MCP transport or the host and cannot be configured");
      if (/[\r\n\0]/.test(value)) fail(`${at}.headers.${k}`, "CR, LF and NUL are not allowed in a header value");
      for (const p of value.matchAll(/\{\{([^}]*)\}\}/g)) {
        const ref = /^secret:([a-z0-9_-]+)$/.exec(p[1]!);
        if (!ref) fail(`${at}.headers.${k}`, `unknown placeholder {{${p[1]}}} (expected {{secret:NAME}})`);
        if (!m.secrets.includes(ref![1]!))
          fail(`${at}.headers.${k}`, `secret ${ref![1]} is not listed in secrets = [...] of this server`);
      }
    }
    m.tools.forEach((t, j) => {
      if (t.trim() === "") fail(`${at}.tools[${j}]`, "empty tool name");
    });
  });
}

function deepFreeze<T>(o: T): T {
  if (o && typeof o === "object" && !Object.isFrozen(o)) {
    Object.freeze(o);
    for (const value of Object.values(o)) deepFreeze(value);
  }
  return o;
}

/**
 * A copy of the config safe to print: any api_key masked, and no gateway token (it is never a file
 * key: it comes from `--token` or EXOCLAW_TOKEN, and callers say which).
 */
export function maskConfig(c: Config): Record<string, unknown> {
  const mask = (s: string | undefined) => (s ? "***" : s);
  const { token: _token, ...gateway } = c.gateway;
  return {
    ...c,
    gateway,
    agents: c.agents.map((a) => (a.api_key === undefined ? a : { ...a, api_key: mask(a.api_key) })),
    // A header written with a literal credential instead of {{secret:NAME}} is not printed.
    mcp: c.mcp.map((m) => ({
      ...m,
      headers: Object.fromEntries(
        Object.entries(m.headers).map(([k, v]) => [k, v.includes("{{secret:") ? v : mask(v)]),
      ),
    })),
  };
}
