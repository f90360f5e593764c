/**
 * The plugin host: loads operator-approved plugins and runs their calls in a pool of child
 * processes (the exoclaw binary in plugin-host mode). Grants come only from the operator's config;
 * a plugin's own `wants` are shown, never granted. A trap, timeout or bad output fails that call
 * with a SandboxError (-32004); the faulty instance or process is replaced and everyone else carries on.
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
import { type CallOutcome, PluginProcess } from "./process.ts";
import { capMemory } from "./wasm-memory.ts";

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
}

export interface PluginKv {
  get(plugin: string, key: string): Promise<string | null>;
  set(plugin: string, key: string, value: string | null): Promise<void>;
}

export interface PluginHostOptions {
  /** argv that starts a plugin-host child (`exoclaw __plugin-host`). */
  command: readonly string[];
  kv: PluginKv;
  /** Resolves a credential name to its value, or null. */
  secret: (name: string) => string | null;
  log: Logger;
  maxProcesses?: number;
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
}

export function sha256Hex(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex");
}

const ToolOutput = v.object({ content: v.string(), is_error: v.optional(v.boolean(), false) });
export type ToolResult = v.InferOutput<typeof ToolOutput>;

const MiB = 1024 * 1024;
/** Largest value a plugin may keep under one key of its state. */
export const MAX_KV_VALUE_BYTES = MiB;
/** Import modules a plugin may use: Extism's runtime, exoclaw's host functions, AssemblyScript's shims. */
const ALLOWED_IMPORTS = new Set(["extism:host/env", "extism:host/user", "env"]);

export class PluginHost {
  private readonly plugins = new Map<string, Entry>();
  private readonly processes = new Set<PluginProcess>();
  private readonly idle: PluginProcess[] = [];
  private readonly waiters: { resolve: (p: PluginProcess) => void; reject: (e: Error) => void }[] = [];
  private starting = 0;
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
    if (!WebAssembly.validate(bytes)) throw new SandboxError(`plugin ${grant.name}: not a wasm module`);
    const capped = capMemory(bytes, grant.memory_mb * 16).bytes;
    const mod = new WebAssembly.Module(capped);
    const foreign = WebAssembly.Module.imports(mod).find((i) => !ALLOWED_IMPORTS.has(i.module));
    if (foreign) {
      throw new SandboxError(
        `plugin ${grant.name}: imports ${foreign.module}.${foreign.name}, which exoclaw does not provide (no WASI: files go through exo_fs_read, network through exo_http)`,
      );
    }
    const exports = WebAssembly.Module.exports(mod).map((e) => e.name);
    if (!exports.includes("describe")) throw new SandboxError(`plugin ${grant.name}: missing the describe export (ABI ${1})`);
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
    const entry: Entry = { name: grant.name, sha256, grant, spec, secretValues, description: undefined as never };
    const previous = this.plugins.get(grant.name);
    this.plugins.set(grant.name, entry);
    try {
      const text = await this.run(entry, "describe", "");
      (entry as { description: PluginDescription }).description = parseDescription(text, exports);
    } catch (e) {
      if (previous) this.plugins.set(grant.name, previous);
      else this.plugins.delete(grant.name);
      throw e instanceof SandboxError ? new SandboxError(`plugin ${grant.name}: ${e.message.replace(`plugin ${grant.name} `, "")}`) : e;
    }
    this.opts.log.info("plugin loaded", { plugin: grant.name, sha256, kind: entry.description.kind, hosts: grant.allowed_hosts, secrets: grant.secrets });
    return this.view(entry);
  }

  unload(name: string): boolean {
    if (!this.plugins.delete(name)) return false;
    for (const p of this.processes) p.unload(name);
    return true;
  }

  list(): LoadedPlugin[] {
    return [...this.plugins.values()].map((e) => this.view(e));
  }

  get(name: string): LoadedPlugin | undefined {
    const e = this.plugins.get(name);
    return e && this.view(e);
  }

  /** Calls a tool; `input` is the tool's JSON input. Throws SandboxError. */
  async callTool(plugin: string, tool: string, input: unknown): Promise<ToolResult> {
    const entry = this.plugins.get(plugin);
    if (!entry) throw new SandboxError(`no plugin named ${plugin}`);
    if (entry.description.kind !== "tool") throw new SandboxError(`plugin ${plugin} is not a tool plugin`);
    if (!entry.description.tools.some((t) => t.name === tool)) throw new SandboxError(`plugin ${plugin} has no tool ${tool}`);
    const text = await this.run(entry, "call", JSON.stringify({ tool, input }));
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      throw new SandboxError(`plugin ${plugin} returned invalid JSON`);
    }
    const r = v.safeParse(ToolOutput, parsed);
    if (!r.success) throw new SandboxError(`plugin ${plugin} returned invalid output: expected {content: string, is_error?: boolean}`);
    return r.output;
  }

  /** Calls any export with raw text; the result is the raw text output. Throws SandboxError. */
  async callRaw(plugin: string, fn: string, input: string): Promise<string> {
    const entry = this.plugins.get(plugin);
    if (!entry) throw new SandboxError(`no plugin named ${plugin}`);
    return this.run(entry, fn, input);
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
    const grant = { allowedHosts: entry.grant.allowed_hosts, secrets: { ...entry.secretValues, ...secrets }, secretHosts: entry.grant.secret_hosts ?? {} };
    const answer = await proxyHttp(JSON.stringify(request), { ...grant, ...(untrustedInput !== undefined && { untrustedInput }) }, {
      maxResponseBytes: this.opts.maxHttpResponseBytes ?? MiB,
      timeoutMs: entry.grant.timeout_ms,
      ...(this.opts.fetch && { fetch: this.opts.fetch }),
      ...(this.opts.selfAddresses && { selfAddresses: this.opts.selfAddresses }),
    });
    return JSON.parse(answer) as { status: number; body?: string; error?: string };
  }

  private view(e: Entry): LoadedPlugin {
    return { name: e.name, sha256: e.sha256, description: e.description, grant: e.grant };
  }

  private async run(entry: Entry, fn: string, input: string): Promise<string> {
    if (this.stopped) throw new SandboxError("the plugin host is stopped");
    const size = Buffer.byteLength(input);
    if (size > this.maxInputBytes) throw new SandboxError(`input of ${size} bytes exceeds the limit of ${this.maxInputBytes}`);
    const proc = await this.acquire();
    let outcome: CallOutcome;
    try {
      if (!proc.isLoaded(entry.spec)) proc.load(entry.spec);
      outcome = await proc.call(entry.name, fn, input, {
        timeoutMs: entry.grant.timeout_ms,
        maxRssBytes: 256 * MiB + 2 * entry.grant.memory_mb * MiB,
      });
    } finally {
      this.release(proc);
    }
    if (outcome.ok) return outcome.output;
    const secrets = Object.values(entry.secretValues);
    this.opts.log.warn("plugin call failed", { plugin: entry.name, fn, error: scrub(outcome.error.message, secrets), fatal: outcome.fatal });
    throw new SandboxError(scrub(outcome.error.message, secrets));
  }

  private async acquire(): Promise<PluginProcess> {
    const idle = this.idle.pop();
    if (idle) return idle;
    if (this.processes.size + this.starting < this.maxProcesses) return this.spawn();
    return new Promise((resolve, reject) => this.waiters.push({ resolve, reject }));
  }

  private release(p: PluginProcess): void {
    if (!p.alive) {
      this.processes.delete(p);
      // Replace a killed process at once, so the next caller does not pay for the spawn.
      if (!this.stopped && (this.waiters.length > 0 || this.processes.size + this.starting === 0)) {
        void this.spawn()
          .then((fresh) => this.release(fresh))
          .catch((e: unknown) => {
            this.opts.log.error("plugin host process failed to start", { error: e });
            // Whoever waits for a process would wait forever: fail the oldest waiter instead.
            this.waiters.shift()?.reject(e instanceof Error ? e : new SandboxError(String(e)));
          });
      }
      return;
    }
    const waiter = this.waiters.shift();
    if (waiter) waiter.resolve(p);
    else this.idle.push(p);
  }

  private async spawn(): Promise<PluginProcess> {
    this.starting++;
    const p = new PluginProcess(this.opts.command, {
      hostCall: (plugin, fn, args) => this.hostCall(plugin, fn, args),
      log: (plugin, level, message) => {
        const secrets = Object.values(this.plugins.get(plugin)?.secretValues ?? {});
        const text = scrub(message, secrets).slice(0, 4096);
        const at = level >= 3 ? "error" : level === 2 ? "warn" : level === 0 ? "debug" : "info";
        this.opts.log[at]("plugin log", { plugin, message: text });
      },
    });
    try {
      await p.start();
    } finally {
      this.starting--;
    }
    // stop() may have run while this process was starting: it must not outlive the host.
    if (this.stopped) {
      await p.stop();
      throw new SandboxError("the plugin host is stopped");
    }
    this.processes.add(p);
    return p;
  }

  /** Host functions; never throw (a failure is a null the guest sees). */
  private async hostCall(plugin: string, fn: HostFunctionName, args: (string | null)[]): Promise<string | null> {
    const entry = this.plugins.get(plugin);
    if (!entry) return null;
    try {
      switch (fn) {
        case "kv_get":
          return args[0] == null ? null : await this.opts.kv.get(plugin, args[0]);
        case "kv_set":
          if (args[0] == null || args[0].length > 1024) return null;
          if (args[1] != null && Buffer.byteLength(args[1]) > MAX_KV_VALUE_BYTES) {
            this.opts.log.warn("plugin state value refused: too large", { plugin, key: args[0].slice(0, 100), limit: MAX_KV_VALUE_BYTES });
            return null;
          }
          await this.opts.kv.set(plugin, args[0], args[1] ?? null);
          return null;
        case "http":
          return await proxyHttp(args[0] ?? null, { allowedHosts: entry.grant.allowed_hosts, secrets: entry.secretValues, secretHosts: entry.grant.secret_hosts ?? {} }, {
            maxResponseBytes: this.opts.maxHttpResponseBytes ?? MiB,
            timeoutMs: entry.grant.timeout_ms,
            ...(this.opts.fetch && { fetch: this.opts.fetch }),
            ...(this.opts.selfAddresses && { selfAddresses: this.opts.selfAddresses }),
          });
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
      this.opts.log.warn("host function failed", { plugin, fn, error: scrub(String(e), Object.values(entry.secretValues)) });
      return null;
    }
  }

  /** Kills every child; pending calls fail. */
  async stop(): Promise<void> {
    this.stopped = true;
    for (const w of this.waiters.splice(0)) w.reject(new SandboxError("the plugin host is stopped"));
    await Promise.all([...this.processes].map((p) => p.stop()));
    this.processes.clear();
    this.idle.length = 0;
  }
}
