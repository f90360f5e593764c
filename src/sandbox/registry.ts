/**
 * The gateway's view of its plugins: what the config asks for, what loaded, and why the rest did
 * not. A plugin that fails to load (changed on disk, hostile, missing) is reported, never fatal:
 * the gateway and the other plugins keep serving.
 */
import type { Config } from "../config/index.ts";
import { describeError, ExoError } from "../lib/errors.ts";
import type { Logger } from "../lib/log.ts";
import { loadConfiguredPlugin, type PluginEntry } from "./configured.ts";
import type { PluginHost } from "./host.ts";

export interface PluginStatus {
  name: string;
  state: "loaded" | "error";
  kind?: "tool" | "channel";
  version?: string;
  sha256?: string;
  tools?: string[];
  allowed_hosts?: readonly string[];
  error?: string;
}

export class PluginRegistry {
  private readonly failed = new Map<string, string>();
  /** Entries the config implies without a `[[plugins]]` entry (see `require`). */
  private implied: readonly PluginEntry[] = [];
  /** The `[[plugins]]` entry each plugin was last loaded (or refused) from: what is running. */
  private readonly tried = new Map<string, PluginEntry>();

  constructor(
    readonly host: PluginHost,
    private config: () => Config,
    private readonly log: Logger,
  ) {}

  /** Loads every configured plugin; failures are recorded and logged. */
  async loadAll(): Promise<void> {
    const c = this.config();
    await Promise.all(c.plugins.map((p) => this.loadFromConfig(p.name).catch(() => {})));
  }

  /**
   * Plugins the gateway needs that no `[[plugins]]` entry names (the built-in channel plugins):
   * remembered, so `loadFromConfig` finds them too, and those not loaded yet are loaded now. A refusal
   * is recorded and logged like any plugin's, never thrown.
   */
  async require(entries: readonly PluginEntry[], home: string): Promise<void> {
    this.implied = entries;
    await Promise.all(
      entries
        .filter((e) => !this.host.get(e.name))
        .map((e) => this.load(e, home, "channel plugin refused").catch(() => {})),
    );
  }

  /** (Re)loads the entry `name` from the current config (or an implied one). Throws ExoError. */
  async loadFromConfig(name: string): Promise<PluginStatus> {
    const c = this.config();
    const entry = c.plugins.find((p) => p.name === name) ?? this.implied.find((p) => p.name === name);
    if (!entry) throw new ExoError("not_found", `no [[plugins]] entry named ${name} in ${c.file ?? "the config"}`);
    await this.load(entry, c.home, "plugin refused");
    return this.list().find((p) => p.name === name)!;
  }

  /**
   * The names of `entries` that differ from what runs: new, or changed since they were last loaded
   * (grants, pin, path); and the names of configured plugins still running that `entries` no longer has.
   */
  differences(entries: readonly PluginEntry[]): { changed: string[]; removed: string[] } {
    const changed = entries
      .filter((e) => JSON.stringify(this.tried.get(e.name)) !== JSON.stringify(e))
      .map((e) => e.name);
    const implied = new Set(this.implied.map((e) => e.name));
    const removed = [...this.tried.keys()].filter(
      (n) => !implied.has(n) && !entries.some((e) => e.name === n) && (this.host.get(n) || this.failed.has(n)),
    );
    return { changed, removed };
  }

  private async load(entry: PluginEntry, home: string, refused: string): Promise<void> {
    this.tried.set(entry.name, entry);
    try {
      await loadConfiguredPlugin(this.host, entry, home);
      this.failed.delete(entry.name);
    } catch (e) {
      const message = describeError(e);
      this.failed.set(entry.name, message);
      this.log.error(refused, { plugin: entry.name, error: message });
      throw e;
    }
  }

  unload(name: string): boolean {
    this.tried.delete(name);
    const had = this.failed.delete(name);
    return this.host.unload(name) || had;
  }

  list(): PluginStatus[] {
    const loaded: PluginStatus[] = this.host.list().map((p) => {
      const error = this.failed.get(p.name);
      return {
        name: p.name,
        state: "loaded",
        kind: p.description.kind,
        version: p.description.version,
        sha256: p.sha256,
        tools: p.description.tools.map((t) => t.name),
        allowed_hosts: p.grant.allowed_hosts,
        // A reload that failed leaves the previously approved module running.
        ...(error !== undefined && { error }),
      };
    });
    const names = new Set(loaded.map((p) => p.name));
    const failed: PluginStatus[] = [...this.failed]
      .filter(([name]) => !names.has(name))
      .map(([name, error]) => ({ name, state: "error", error }));
    return [...loaded, ...failed].sort((a, b) => a.name.localeCompare(b.name));
  }
}
