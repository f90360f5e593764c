/**
 * The plugin host: loads operator-approved plugins and runs each plugin's calls in a lane of child
 * processes of its own (the exoclaw binary in plugin-host mode), so one plugin can never take
 * another's capacity. Grants come only from the operator's config; a plugin's own `wants` are
 * shown, never granted. A trap, timeout or bad output fails that call with a SandboxError
 * (-32004); the faulty instance or process is replaced and everyone else carries on.
 *
 * Every call carries a CallContext: `scope` is whose state it is (a person id, or "" for shared).
 * A plugin's state is namespaced by scope on the host (the guest never sees or picks the scope)
 * unless the plugin wants shared state and the operator grants it; channel plugins share one state.
 */
import { createHash } from "node:crypto";
import * as v from "valibot";
import type { Logger } from "../lib/log.ts";
import { scrub } from "../lib/log.ts";
import type { HostFunctionName, PluginSpec } from "./child-protocol.ts";
import { parseDescription, type PluginDescription } from "./describe.ts";
import { SandboxError } from "./errors.ts";
import { fsRead, fsWrite } from "./fs-grant.ts";
import { proxyHttp } from "./http-proxy.ts";
import { Lane } from "./lane.ts";
import type { CallContext, CallOutcome } from "./process.ts";
import { capMemory, readInterface } from "./wasm-memory.ts";

/** The operator's grants for one plugin (a `[[plugins]]` entry, path already resolved). */
export interface PluginGrant {
  name: string;
  allowed_hosts: readonly string[];
  /** Host path → guest path. */
  allowed_paths: Readonly<Record<string, string>>;
  secrets: readonly string[];
  /** Secret name → the allowlist entries it may be sent to (none: any allowed host). */
  secret_hosts?: Readonly<Record<string, readonly string[]>>;
  memory_mb: number;
  timeout_ms: number;
  config: Readonly<Record<string, string>>;
  /** One state for every caller; effective only when the plugin also declares `wants.shared_state`. */
  shared_state?: boolean;
  /** Quota of the plugin's state (all scopes together): keys, and bytes of keys plus values. */
  state_max_entries?: number;
  state_max_bytes?: number;
  /** Calls of this plugin in flight at once (= its child processes at most); default the host's. */
  concurrency?: number;
}

export interface PluginKv {
  get(plugin: string, key: string): Promise<string | null>;
  set(plugin: string, key: string, value: string | null): Promise<void>;
  /** Entries and bytes (keys + values, UTF-8) a plugin keeps, over all scopes. */
  stats(plugin: string): Promise<{ entries: number; bytes: number }>;
}

export interface PluginHostOptions {
  /** argv that starts a plugin-host child (`exoclaw __plugin-host`). */
  command: readonly string[];
  kv: PluginKv;
  /** Resolves a credential name to its value, or null. */
  secret: (name: string) => string | null;
  log: Logger;
  /** Default per-plugin concurrency: child processes one plugin may have busy at once (default 2). */
  maxProcesses?: number;
  /** An idle process of a lane beyond its first is stopped after this long (default 30 s). */
  idleMs?: number;
  maxInputBytes?: number;
  maxOutputBytes?: number;
  maxHttpResponseBytes?: number;
  fetch?: typeof fetch;
  /** The gateway's own listeners, never reachable by a plugin's request even when granted. */
  selfAddresses?: () => readonly { address: string; port: number }[];
}

export interface LoadedPlugin {
  readonly name: string;
  readonly sha256: string;
  readonly description: PluginDescription;
  readonly grant: PluginGrant;
}

interface Entry extends LoadedPlugin {
  spec: PluginSpec;
  secretValues: Record<string, string>;
  lane: Lane;
  /** The over-quota warning was logged (once per load). */
  quotaWarned: boolean;
}

export function sha256Hex(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex");
}

const ToolOutput = v.object({ content: v.string(), is_error: v.optional(v.boolean(), false) });
export type ToolResult = v.InferOutput<typeof ToolOutput>;

const MiB = 1024 * 1024;
/** Largest value a plugin may keep under one key of its state. */
export const MAX_KV_VALUE_BYTES = MiB;
/** The longest a plugin call may run, whatever the grant says (config refuses more). */
export const MAX_TIMEOUT_MS = 60_000;
export const DEFAULT_STATE_MAX_ENTRIES = 10_000;
export const DEFAULT_STATE_MAX_BYTES = 64 * MiB;
/** Import modules a plugin may use: Extism's runtime, exoclaw's host functions, AssemblyScript's shims. */
const ALLOWED_IMPORTS = new Set(["extism:host/env", "extism:host/user", "env"]);

/**
 * Makes text from a plugin safe for a terminal or a log line: C0 controls (newlines and tabs
 * included), DEL and C1 become visible escapes (`\n`, `\x1b`, `\x9b`), so a plugin cannot forge
 * log lines, retitle a terminal or write to its clipboard. `keep` lists controls to leave as they
 * are (a tool's multi-line output printed to a terminal keeps "\n").
 */
export function escapeControl(text: string, keep = ""): string {
  return text.replace(/[\x00-\x1f\x7f-\x9f]/g, (c) => {
    if (keep.includes(c)) return c;
    if (c === "\n") return "\\n";
    if (c === "\r") return "\\r";
    if (c === "\t") return "\\t";
    return `\\x${c.charCodeAt(0).toString(16).padStart(2, "0")}`;
  });
}

const utf8 = (s: string) => Buffer.byteLength(s);

export class PluginHost {
  private readonly plugins = new Map<string, Entry>();
  /** Lanes of replaced or unloaded plugins still finishing a call. */
  private readonly retired = new Set<Lane>();
  /** State writes per plugin name, one at a time, so the quota check and the write cannot race. */
  private readonly kvChains = new Map<string, Promise<unknown>>();
  /**
   * What each plugin's state holds, read from the store once per load and then kept by delta:
   * summing every value on each write would read up to the whole quota per kv_set.
   */
  private readonly stateUsage = new Map<string, { entries: number; bytes: number }>();
  private stopped = false;
  private readonly maxProcesses: number;
  private readonly maxInputBytes: number;
  private readonly maxOutputBytes: number;

  constructor(private readonly opts: PluginHostOptions) {
    this.maxProcesses = opts.maxProcesses ?? 2;
    this.maxInputBytes = opts.maxInputBytes ?? MiB;
    this.maxOutputBytes = opts.maxOutputBytes ?? MiB;
  }

  /**
   * Validates a module, caps its memory, asks it to describe itself, and registers it under the
   * grant. Throws SandboxError: not wasm, missing exports, bad describe, wrong ABI, too much memory.
   */
  async load(grant: PluginGrant, bytes: Uint8Array): Promise<LoadedPlugin> {
    const sha256 = sha256Hex(bytes);
    // The module's structure is read here; its code is compiled (and checked) only in the plugin-host
    // child, which compiles it anyway: compiling or validating it in the gateway too cost ~2 MiB RSS.
    let iface: ReturnType<typeof readInterface>;
    try {
      iface = readInterface(bytes);
    } catch {
      throw new SandboxError(`plugin ${grant.name}: not a wasm module`);
    }
    const capped = capMemory(bytes, grant.memory_mb * 16).bytes;
    const { imports, exports } = iface;
    const foreign = imports.find((i) => !ALLOWED_IMPORTS.has(i.module));
    if (foreign) {
      throw new SandboxError(
        `plugin ${grant.name}: imports ${foreign.module}.${foreign.name}, which exoclaw does not provide (no WASI: files go through exo_fs_read, network through exo_http)`,
      );
    }
    if (!exports.includes("describe"))
      throw new SandboxError(`plugin ${grant.name}: missing the describe export (ABI ${1})`);
    grant = { ...grant, timeout_ms: Math.min(grant.timeout_ms, MAX_TIMEOUT_MS) };
    const spec: PluginSpec = {
      name: grant.name,
      wasm: capped,
      config: { ...grant.config },
      maxPages: grant.memory_mb * 16,
      maxOutputBytes: this.maxOutputBytes,
    };
    const secretValues: Record<string, string> = {};
    for (const name of grant.secrets) {
      const value = this.opts.secret(name);
      if (value !== null) secretValues[name] = value;
    }
    const entry: Entry = {
      name: grant.name,
      sha256,
      grant,
      spec,
      secretValues,
      description: undefined as never,
      lane: undefined as never,
      quotaWarned: false,
    };
    entry.lane = this.newLane(entry);
    try {
      const text = await this.run(entry, "describe", "", { scope: "", input: "" });
      (entry as { description: PluginDescription }).description = parseDescription(text, exports);
    } catch (e) {
      void entry.lane.kill();
      // A describe error may quote the module's own text: escaped, like everything a plugin says.
      throw e instanceof SandboxError
        ? new SandboxError(escapeControl(`plugin ${grant.name}: ${e.message.replace(`plugin ${grant.name} `, "")}`))
        : e;
    }
    if (this.stopped) {
      void entry.lane.kill();
      throw new SandboxError("the plugin host is stopped");
    }
    const previous = this.plugins.get(grant.name);
    this.plugins.set(grant.name, entry);
    // Re-read from the store at the next write (another process, e.g. `plugin call`, may have written).
    this.stateUsage.delete(grant.name);
    if (previous) this.retire(previous.lane);
    this.opts.log.info("plugin loaded", {
      plugin: grant.name,
      sha256,
      kind: entry.description.kind,
      hosts: grant.allowed_hosts,
      secrets: grant.secrets,
    });
    return this.view(entry);
  }

  unload(name: string): boolean {
    const entry = this.plugins.get(name);
    if (!entry) return false;
    this.plugins.delete(name);
    this.retire(entry.lane);
    return true;
  }

  /** Child processes a plugin's lane has alive now (0 when it is idle-reaped or not loaded). */
  processCount(name: string): number {
    return this.plugins.get(name)?.lane.size ?? 0;
  }

  list(): LoadedPlugin[] {
    return [...this.plugins.values()].map((e) => this.view(e));
  }

  get(name: string): LoadedPlugin | undefined {
    const e = this.plugins.get(name);
    return e && this.view(e);
  }

  /**
   * Calls a tool; `input` is the tool's JSON input; `scope` is whose call it is (the person, whose
   * state the plugin sees; default "", no one in particular). Throws SandboxError.
   */
  async callTool(plugin: string, tool: string, input: unknown, opts: { scope?: string } = {}): Promise<ToolResult> {
    const entry = this.plugins.get(plugin);
    if (!entry) throw new SandboxError(`no plugin named ${plugin}`);
    if (entry.description.kind !== "tool") throw new SandboxError(`plugin ${plugin} is not a tool plugin`);
    if (!entry.description.tools.some((t) => t.name === tool))
      throw new SandboxError(`plugin ${plugin} has no tool ${tool}`);
    const payload = JSON.stringify({ tool, input });
    const text = await this.run(entry, "call", payload, { scope: opts.scope ?? "", input: payload });
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      throw new SandboxError(`plugin ${plugin} returned invalid JSON`);
    }
    const r = v.safeParse(ToolOutput, parsed);
    if (!r.success)
      throw new SandboxError(
        `plugin ${plugin} returned invalid output: expected {content: string, is_error?: boolean}`,
      );
    return r.output;
  }

  /** Calls any export with raw text (channels: scope ""); the result is the raw text output. Throws SandboxError. */
  async callRaw(plugin: string, fn: string, input: string): Promise<string> {
    const entry = this.plugins.get(plugin);
    if (!entry) throw new SandboxError(`no plugin named ${plugin}`);
    return this.run(entry, fn, input, { scope: "", input });
  }

  /**
   * Sends one outbound request on a plugin's behalf (a channel's format_outgoing output) through the
   * same allowlist and secret filling as `exo_http`. `secrets` adds values by placeholder name (a
   * channel's roles). `untrustedInput` is the text the request was made from (the model's reply): a
   * placeholder named in it is never filled. Returns `{status, headers, body}` or `{status: 0, error}`.
   */
  async send(
    plugin: string,
    request: unknown,
    secrets: Readonly<Record<string, string>> = {},
    untrustedInput?: string,
  ): Promise<{ status: number; body?: string; error?: string }> {
    const entry = this.plugins.get(plugin);
    if (!entry) return { status: 0, error: `no plugin named ${plugin}` };
    const grant = {
      allowedHosts: entry.grant.allowed_hosts,
      secrets: { ...entry.secretValues, ...secrets },
      secretHosts: entry.grant.secret_hosts ?? {},
    };
    const answer = await proxyHttp(
      JSON.stringify(request),
      { ...grant, ...(untrustedInput !== undefined && { untrustedInput }) },
      {
        maxResponseBytes: this.opts.maxHttpResponseBytes ?? MiB,
        timeoutMs: entry.grant.timeout_ms,
        ...(this.opts.fetch && { fetch: this.opts.fetch }),
        ...(this.opts.selfAddresses && { selfAddresses: this.opts.selfAddresses }),
      },
    );
    return JSON.parse(answer) as { status: number; body?: string; error?: string };
  }

  private view(e: Entry): LoadedPlugin {
    return { name: e.name, sha256: e.sha256, description: e.description, grant: e.grant };
  }

  private async run(entry: Entry, fn: string, input: string, call: CallContext): Promise<string> {
    if (this.stopped) throw new SandboxError("the plugin host is stopped");
    const size = Buffer.byteLength(input);
    if (size > this.maxInputBytes)
      throw new SandboxError(`input of ${size} bytes exceeds the limit of ${this.maxInputBytes}`);
    const outcome: CallOutcome = await entry.lane.run(
      fn,
      input,
      { timeoutMs: entry.grant.timeout_ms, maxRssBytes: 256 * MiB + 2 * entry.grant.memory_mb * MiB },
      call,
    );
    if (outcome.ok) return outcome.output;
    const secrets = Object.values(entry.secretValues);
    // The message is the guest's text: escaped, it can reach a log or a terminal (`plugin call`) safely.
    const error = escapeControl(scrub(outcome.error.message, secrets));
    this.opts.log.warn("plugin call failed", { plugin: entry.name, fn, error, fatal: outcome.fatal });
    throw new SandboxError(error);
  }

  private newLane(entry: Entry): Lane {
    return new Lane(entry.spec, {
      command: this.opts.command,
      concurrency: Math.max(1, entry.grant.concurrency ?? this.maxProcesses),
      idleMs: this.opts.idleMs ?? 30_000,
      onSpawnError: (e) => this.opts.log.error("plugin host process failed to start", { plugin: entry.name, error: e }),
      handlers: {
        // The lane serves this entry only: its host calls get its grants, whatever name the child says.
        hostCall: (_plugin, fn, args, call) => this.hostCall(entry.name, fn, args, call, entry),
        log: (_plugin, level, message) => {
          const text = escapeControl(scrub(message, Object.values(entry.secretValues))).slice(0, 4096);
          const at = level >= 3 ? "error" : level === 2 ? "warn" : level === 0 ? "debug" : "info";
          this.opts.log[at]("plugin log", { plugin: entry.name, message: text });
        },
      },
    });
  }

  /** A replaced or unloaded plugin's lane: in-flight calls finish, then its processes stop. */
  private retire(lane: Lane): void {
    this.retired.add(lane);
    void lane.close().finally(() => this.retired.delete(lane));
  }

  /** Whether the plugin's state is one for everyone, rather than one per scope. */
  private sharedState(entry: Entry): boolean {
    if (entry.description?.kind === "channel") return true;
    return entry.description?.wants.shared_state === true && entry.grant.shared_state === true;
  }

  /**
   * The store key for a guest key: per-scope state is prefixed with the scope (URI-encoded, so it
   * ends at the first "/"), and every key of such a plugin is prefixed, so no guest key can name
   * another scope's entry.
   */
  private stateKey(entry: Entry, call: CallContext, key: string): string {
    return this.sharedState(entry) ? key : `~s/${encodeURIComponent(call.scope)}/${key}`;
  }

  /** Writes one state entry within the plugin's quota; false (and one warning per load) when over. */
  private async kvSetWithinQuota(entry: Entry, key: string, value: string | null): Promise<boolean> {
    const plugin = entry.name;
    const usage = this.stateUsage.get(plugin) ?? (await this.opts.kv.stats(plugin));
    this.stateUsage.set(plugin, usage);
    const old = await this.opts.kv.get(plugin, key);
    const oldSize = old === null ? 0 : utf8(key) + utf8(old);
    if (value === null) {
      await this.opts.kv.set(plugin, key, null);
      if (old !== null) this.stateUsage.set(plugin, { entries: usage.entries - 1, bytes: usage.bytes - oldSize });
      return true;
    }
    const maxEntries = entry.grant.state_max_entries ?? DEFAULT_STATE_MAX_ENTRIES;
    const maxBytes = entry.grant.state_max_bytes ?? DEFAULT_STATE_MAX_BYTES;
    const entries = usage.entries + (old === null ? 1 : 0);
    const bytes = usage.bytes - oldSize + utf8(key) + utf8(value);
    if (entries > maxEntries || bytes > maxBytes) {
      if (!entry.quotaWarned) {
        entry.quotaWarned = true;
        this.opts.log.warn("plugin state over quota: write refused", {
          plugin,
          entries,
          bytes,
          max_entries: maxEntries,
          max_bytes: maxBytes,
        });
      }
      return false;
    }
    await this.opts.kv.set(plugin, key, value);
    this.stateUsage.set(plugin, { entries, bytes });
    return true;
  }

  /** Host functions; never throw (a failure is a null the guest sees). */
  private async hostCall(
    plugin: string,
    fn: HostFunctionName,
    args: (string | null)[],
    call: CallContext,
    entry: Entry | undefined = this.plugins.get(plugin),
  ): Promise<string | null> {
    if (!entry) return null;
    try {
      switch (fn) {
        case "kv_get":
          return args[0] == null ? null : await this.opts.kv.get(plugin, this.stateKey(entry, call, args[0]));
        case "kv_set": {
          if (args[0] == null || args[0].length > 1024) return null;
          if (args[1] != null && Buffer.byteLength(args[1]) > MAX_KV_VALUE_BYTES) {
            this.opts.log.warn("plugin state value refused: too large", {
              plugin,
              key: escapeControl(args[0].slice(0, 100)),
              limit: MAX_KV_VALUE_BYTES,
            });
            return null;
          }
          const key = this.stateKey(entry, call, args[0]);
          const value = args[1] ?? null;
          const write = (this.kvChains.get(plugin) ?? Promise.resolve()).then(() =>
            this.kvSetWithinQuota(entry, key, value),
          );
          const settled = write.catch(() => {});
          this.kvChains.set(plugin, settled);
          // Forget a finished chain, so the map does not keep one promise per plugin name ever seen.
          void settled.then(() => this.kvChains.get(plugin) === settled && this.kvChains.delete(plugin));
          await write;
          return null;
        }
        case "http":
          return await proxyHttp(
            args[0] ?? null,
            {
              allowedHosts: entry.grant.allowed_hosts,
              secrets: entry.secretValues,
              secretHosts: entry.grant.secret_hosts ?? {},
              untrustedInput: call.input,
            },
            {
              maxResponseBytes: this.opts.maxHttpResponseBytes ?? MiB,
              timeoutMs: entry.grant.timeout_ms,
              ...(this.opts.fetch && { fetch: this.opts.fetch }),
              ...(this.opts.selfAddresses && { selfAddresses: this.opts.selfAddresses }),
            },
          );
        case "fs_read":
          return fsRead(entry.grant.allowed_paths, args[0] ?? null);
        case "fs_write":
          return fsWrite(entry.grant.allowed_paths, args[0] ?? null, args[1] ?? null);
        default: {
          const never: never = fn;
          return never;
        }
      }
    } catch (e) {
      this.opts.log.warn("host function failed", {
        plugin,
        fn,
        error: escapeControl(scrub(String(e), Object.values(entry.secretValues))),
      });
      return null;
    }
  }

  /** Kills every child; pending calls fail. */
  async stop(): Promise<void> {
    this.stopped = true;
    const lanes = [...[...this.plugins.values()].map((e) => e.lane), ...this.retired];
    await Promise.all(lanes.map((l) => l.kill()));
  }
}
