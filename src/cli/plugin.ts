/**
 * `exoclaw plugin list | inspect FILE | load FILE | call NAME TOOL JSON | remove NAME`.
 * inspect grants nothing; load validates, copies the module to <state>/plugins/, pins its sha256
 * in a `[[plugins]]` entry with exactly the grants given on the command line, and tells a running
 * gateway. Grants are the operator's: what the plugin `wants` is shown, never granted.
 */
import { defineCommand } from "citty";
import { chmodSync, copyFileSync, existsSync, mkdirSync, readFileSync, rmSync } from "node:fs";
import { basename, join, resolve } from "node:path";
import { createPluginHost, openStore } from "../app.ts";
import {
  type Config,
  giveToStateOwner,
  loadConfig,
  removePluginEntry,
  resolveConfigPath,
  upsertPluginEntry,
} from "../config/index.ts";
import { describeError, ExoError, UnavailableError, UsageError } from "../lib/errors.ts";
import { silentLogger } from "../lib/log.ts";
import {
  BUILTIN_PREFIX,
  builtinPluginBytes,
  escapeControl,
  loadConfiguredPlugin,
  MAX_TIMEOUT_MS,
  type PluginDescription,
  PluginHost,
  pluginHostCommand,
  readPinnedModule,
  sha256Hex,
} from "../sandbox/index.ts";
import { clientArgs, parsePort, stringFlag } from "./_args.ts";
import { connectGateway, gatewayUrl, type GatewayClient } from "./_client.ts";

/**
 * Everything printed here may carry a plugin's text (its description, tool output, errors): no
 * escape sequence of a plugin's reaches the operator's terminal (titles, clipboard, forged lines).
 */
const print = (text: string) => process.stdout.write(escapeControl(text, "\n\t") + "\n");
/** JSON output: JSON.stringify leaves DEL and C1 raw inside strings; write them as \u escapes. */
const printJson = (value: unknown, indent = 2) =>
  process.stdout.write(
    JSON.stringify(value, null, indent).replace(
      /[\x7f-\x9f]/g,
      (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`,
    ) + "\n",
  );

/** Every value of a repeatable flag (`--allow-host a --allow-host=b`); citty keeps only the last. */
export function repeated(rawArgs: readonly string[], flag: string): string[] {
  const out: string[] = [];
  for (let i = 0; i < rawArgs.length; i++) {
    const a = rawArgs[i]!;
    if (a === flag) {
      const next = rawArgs[i + 1];
      if (next === undefined || next.startsWith("--")) throw new UsageError(`${flag} needs a value`);
      out.push(next);
      i++;
    } else if (a.startsWith(flag + "=")) out.push(a.slice(flag.length + 1));
  }
  return out;
}

function positiveInt(name: string, value: unknown, fallback: number): number {
  const s = stringFlag(name, value);
  if (s === undefined) return fallback;
  if (!/^\d+$/.test(s) || Number(s) < 1) throw new UsageError(`--${name}: expected a positive integer, got "${s}"`);
  return Number(s);
}

/** `./weather-v2.wasm` → `weather-v2`: a name derived from the file, never from what the module says. */
export function nameFromFile(file: string): string {
  return (
    basename(file)
      .replace(/\.wasm$/i, "")
      .toLowerCase()
      .replace(/[^a-z0-9_-]+/g, "-")
      .replace(/^-+|-+$/g, "") || "plugin"
  );
}

function timeoutMs(value: unknown): number {
  const ms = positiveInt("timeout-ms", value, 5000);
  if (ms > MAX_TIMEOUT_MS) throw new UsageError(`--timeout-ms: at most ${MAX_TIMEOUT_MS} (a minute), got ${ms}`);
  return ms;
}

function configFor(args: Record<string, unknown>): Config {
  const token = stringFlag("token", args.token);
  return loadConfig(process.env, { file: stringFlag("config", args.config), ...(token !== undefined && { token }) });
}

/** Tells a running gateway, if one answers; returns what happened, for the user. */
async function tellGateway(
  config: Config,
  args: Record<string, unknown>,
  fn: (c: GatewayClient) => Promise<unknown>,
): Promise<string> {
  const url = gatewayUrl(config, { url: stringFlag("url", args.url), port: parsePort(stringFlag("port", args.port)) });
  let client: GatewayClient;
  try {
    client = await connectGateway(url, config.gateway.token, 2000);
  } catch (e) {
    if (e instanceof UnavailableError) return "no gateway running; it takes effect at the next start";
    throw e;
  }
  try {
    await fn(client);
    return `the running gateway at ${url} applied it`;
  } finally {
    client.close();
  }
}

/** Runs `describe` on a module in a throwaway sandbox with no grants. */
async function describeModule(bytes: Uint8Array, name: string): Promise<PluginDescription> {
  const host = new PluginHost({
    command: pluginHostCommand(),
    kv: { get: async () => null, set: async () => {}, stats: async () => ({ entries: 0, bytes: 0 }) },
    secret: () => null,
    log: silentLogger,
    maxProcesses: 1,
  });
  try {
    const loaded = await host.load(
      { name, allowed_hosts: [], allowed_paths: {}, secrets: [], memory_mb: 64, timeout_ms: 5000, config: {} },
      bytes,
    );
    return loaded.description;
  } finally {
    await host.stop();
  }
}

function readModule(file: string): Uint8Array {
  try {
    return new Uint8Array(readFileSync(file));
  } catch (e) {
    throw new ExoError("not_found", `cannot read ${file} (${(e as NodeJS.ErrnoException).code ?? "error"})`);
  }
}

export function formatDescription(d: PluginDescription, sha256: string, size: number): string {
  const wants = (xs: string[]) => (xs.length ? xs.join(", ") : "none");
  return [
    `${d.name} ${d.version} — ${d.kind} plugin (ABI ${d.abi})`,
    ...(d.description ? [`  ${d.description}`] : []),
    ...(d.kind === "tool" ? [`  tools:   ${d.tools.map((t) => t.name).join(", ")}`] : []),
    ...(d.channel
      ? [`  channel: ${d.channel.id} (verify: ${d.channel.verify}, send result: ${d.channel.send_result})`]
      : []),
    `  wants hosts:   ${wants(d.wants.hosts)}`,
    `  wants paths:   ${wants(d.wants.paths)}`,
    `  wants secrets: ${wants(d.wants.secrets)}`,
    `  sha256:  ${sha256}`,
    `  size:    ${size} bytes`,
    "  (inspect grants nothing; `exoclaw plugin load` grants only what you pass)",
  ].join("\n");
}

const inspect = defineCommand({
  meta: { name: "inspect", description: "Show what a plugin declares and wants, granting nothing" },
  args: {
    file: { type: "positional", description: "The .wasm file", required: true },
    json: { type: "boolean", description: "Print JSON" },
  },
  async run({ args }) {
    const file = resolve(String(args.file));
    const bytes = readModule(file);
    const sha256 = sha256Hex(bytes);
    const d = await describeModule(bytes, "inspect");
    if (args.json) printJson({ ...d, sha256, size: bytes.byteLength });
    else print(formatDescription(d, sha256, bytes.byteLength));
  },
});

const load = defineCommand({
  meta: { name: "load", description: "Validate, pin and grant a plugin (writes its [[plugins]] entry)" },
  args: {
    ...clientArgs,
    file: { type: "positional", description: "The .wasm file", required: true },
    name: {
      type: "string",
      description: "Name to load it under (default: the file's name without .wasm; never the name the module declares)",
    },
    replace: { type: "boolean", description: "Replace an existing entry of that name that pins a different module" },
    "allow-host": { type: "string", description: "Grant a host (repeatable), e.g. api.example.com or *.example.com" },
    "allow-path": { type: "string", description: "Grant a directory as HOST_DIR:GUEST_DIR (repeatable)" },
    secret: { type: "string", description: "Grant a credential name (repeatable)" },
    "secret-host": {
      type: "string",
      description: "Bind a granted secret to a host it may go to, as NAME=HOST (repeatable)",
    },
    "shared-state": {
      type: "boolean",
      description: "One state for every person (only if the plugin also asks for it)",
    },
    "memory-mb": { type: "string", description: "Memory cap (default 32)" },
    "timeout-ms": { type: "string", description: "Per-call timeout (default 5000)" },
  },
  async run({ args, rawArgs }) {
    const config = configFor(args);
    // `builtin:echo` enables a plugin shipped inside the binary: nothing to copy, nothing to pin.
    const builtin = String(args.file).startsWith(BUILTIN_PREFIX)
      ? String(args.file).slice(BUILTIN_PREFIX.length)
      : null;
    const file = builtin === null ? resolve(String(args.file)) : String(args.file);
    const bytes = builtin === null ? readModule(file) : builtinPluginBytes(builtin);
    if (bytes === null)
      throw new ExoError(
        "not_found",
        `no built-in plugin ${file} (built-ins: echo, http-get, notes, and the channel plugins)`,
      );
    const d = await describeModule(bytes, "candidate");
    // The name is the operator's: a module declaring "notes" must not take over the notes entry and its state.
    const name = stringFlag("name", args.name) ?? builtin ?? nameFromFile(file);
    if (!/^[a-z0-9_-]+$/.test(name)) throw new UsageError(`--name: "${name}" must match [a-z0-9_-]+`);
    const sha256 = sha256Hex(bytes);
    const existing = config.plugins.find((p) => p.name === name);
    const same = existing !== undefined && (builtin !== null ? existing.path === file : existing.sha256 === sha256);
    if (existing && !same && !args.replace) {
      throw new UsageError(
        `a plugin named ${name} is already configured (${existing.path}${existing.sha256 ? `, sha256 ${existing.sha256.slice(0, 12)}…` : ""}) and this module differs (sha256 ${sha256.slice(0, 12)}…); ` +
          `choose another --name, or pass --replace to replace it (it keeps ${name}'s state)`,
      );
    }
    const allowedPaths: Record<string, string> = {};
    for (const spec of repeated(rawArgs, "--allow-path")) {
      const [host, guest] = spec.split(":");
      if (!host || !guest || !guest.startsWith("/"))
        throw new UsageError(`--allow-path: expected HOST_DIR:/GUEST_DIR, got "${spec}"`);
      allowedPaths[resolve(host)] = guest;
    }
    const secrets = repeated(rawArgs, "--secret");
    for (const s of secrets)
      if (!/^[a-z0-9_-]+$/.test(s)) throw new UsageError(`--secret: "${s}" must match [a-z0-9_-]+`);
    const secretHosts: Record<string, string[]> = {};
    for (const spec of repeated(rawArgs, "--secret-host")) {
      const [secret, host] = spec.split("=");
      if (!secret || !host || !secrets.includes(secret))
        throw new UsageError(`--secret-host: expected NAME=HOST for a NAME granted with --secret, got "${spec}"`);
      (secretHosts[secret] ??= []).push(host);
    }
    if (builtin === null) {
      const dir = join(config.home, "plugins");
      mkdirSync(dir, { recursive: true, mode: 0o700 });
      const dest = join(dir, `${name}.wasm`);
      if (resolve(dest) !== file) copyFileSync(file, dest);
      chmodSync(dest, 0o600); // as private as the rest of the state directory
      giveToStateOwner(config.home, [dir, dest]);
    }
    const entry = {
      name,
      path: builtin === null ? `plugins/${name}.wasm` : file,
      // A built-in ships with the binary and changes with it: it is not pinned.
      ...(builtin === null && { sha256 }),
      allowed_hosts: repeated(rawArgs, "--allow-host"),
      allowed_paths: allowedPaths,
      secrets,
      ...(Object.keys(secretHosts).length > 0 && { secret_hosts: secretHosts }),
      ...(args["shared-state"] && { shared_state: true }),
      memory_mb: positiveInt("memory-mb", args["memory-mb"], 32),
      timeout_ms: timeoutMs(args["timeout-ms"]),
      config: {},
    };
    const configFile = config.file ?? resolveConfigPath(process.env, stringFlag("config", args.config)).path;
    const how = upsertPluginEntry(configFile, entry);
    const notGranted = d.wants.hosts.filter((h) => !entry.allowed_hosts.includes(h));
    print(
      `${how === "added" ? "loaded" : "re-approved"} ${name} (${d.kind}, ${builtin === null ? `sha256 ${sha256.slice(0, 12)}…` : "built in"}) into ${configFile}`,
    );
    print(`  granted hosts: ${entry.allowed_hosts.join(", ") || "none"}; secrets: ${secrets.join(", ") || "none"}`);
    if (notGranted.length) print(`  wanted but not granted: ${notGranted.join(", ")} (add --allow-host to grant)`);
    print(
      `  ${await tellGateway(loadConfig(process.env, { file: configFile }), args, (c) => c.call("plugin.load", { name }))}`,
    );
  },
});

const list = defineCommand({
  meta: { name: "list", description: "List plugins: from the running gateway, else from the config" },
  args: { ...clientArgs, json: { type: "boolean", description: "Print JSON" } },
  async run({ args }) {
    const config = configFor(args);
    const url = gatewayUrl(config, {
      url: stringFlag("url", args.url),
      port: parsePort(stringFlag("port", args.port)),
    });
    let plugins: { name: string; state: string; kind?: string; tools?: string[]; error?: string }[];
    try {
      const client = await connectGateway(url, config.gateway.token, 2000);
      try {
        plugins = ((await client.call("plugin.list")) as { plugins: typeof plugins }).plugins;
      } finally {
        client.close();
      }
    } catch (e) {
      if (!(e instanceof UnavailableError)) throw e;
      plugins = config.plugins.map((p) => {
        try {
          readPinnedModule(p, config.home);
          return { name: p.name, state: "approved" };
        } catch (err) {
          return { name: p.name, state: "error", error: describeError(err) };
        }
      });
    }
    if (args.json) return printJson({ plugins });
    if (plugins.length === 0) return print("no plugins");
    for (const p of plugins)
      print(
        `${p.name}  ${p.state}${p.kind ? `  ${p.kind}` : ""}${p.tools ? `  tools: ${p.tools.join(", ")}` : ""}${p.error ? `\n  ${p.error}` : ""}`,
      );
  },
});

const call = defineCommand({
  meta: { name: "call", description: "Call a configured plugin's tool with a JSON input, in a sandbox of its own" },
  args: {
    ...clientArgs,
    name: { type: "positional", description: "Plugin name", required: true },
    tool: { type: "positional", description: "Tool name", required: true },
    input: { type: "positional", description: 'JSON input, e.g. \'{"text":"hi"}\'', required: false },
    json: { type: "boolean", description: "Print the whole result as JSON" },
  },
  async run({ args }) {
    const config = configFor(args);
    let input: unknown = {};
    if (args.input !== undefined) {
      try {
        input = JSON.parse(String(args.input));
      } catch {
        throw new UsageError(`input is not valid JSON: ${String(args.input)}`);
      }
    }
    const entry = config.plugins.find((p) => p.name === args.name);
    if (!entry)
      throw new ExoError(
        "not_found",
        `no [[plugins]] entry named ${String(args.name)} in ${config.file ?? "the config"}`,
      );
    const store = await openStore(config);
    const host = createPluginHost(config, store, silentLogger);
    try {
      await loadConfiguredPlugin(host, entry, config.home);
      const r = await host.callTool(entry.name, String(args.tool), input);
      if (args.json) printJson(r, 0);
      else print(r.content);
      return r.is_error ? 1 : 0;
    } finally {
      await host.stop();
      await store.close();
    }
  },
});

const remove = defineCommand({
  meta: { name: "remove", description: "Remove a plugin's [[plugins]] entry (and its copy in <state>/plugins)" },
  args: { ...clientArgs, name: { type: "positional", description: "Plugin name", required: true } },
  async run({ args }) {
    const config = configFor(args);
    const name = String(args.name);
    const configFile = config.file ?? resolveConfigPath(process.env, stringFlag("config", args.config)).path;
    if (!removePluginEntry(configFile, name))
      throw new ExoError("not_found", `no [[plugins]] entry named ${name} in ${configFile}`);
    const copy = join(config.home, "plugins", `${name}.wasm`);
    if (existsSync(copy)) rmSync(copy);
    print(`removed ${name} from ${configFile}`);
    print(`  ${await tellGateway(config, args, (c) => c.call("plugin.unload", { name }).catch(() => null))}`);
  },
});

export default defineCommand({
  meta: { name: "plugin", description: "Inspect, approve, call and remove WASM plugins" },
  subCommands: { list, inspect, load, call, remove },
});
