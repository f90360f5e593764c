/**
 * Capability modules: what app.ts is a list of. Each module brings its own RPC methods, HTTP routes,
 * `status` and `/ready` facts, and an explicit lifecycle — `start()` once the gateway listens,
 * `check(next)` and `reload(next, prev)` on SIGHUP / `config.reload`, `stop()` at shutdown — and reads
 * the one live config (src/config/live.ts) when it acts. What a reload applies is each module's own,
 * visible fact: `reload` returns the changed keys it cannot apply without a restart, which the
 * gateway logs and reports in `config.reload`'s `restart_required`.
 *
 * Modules in the capability layers (src/channels/module.ts, src/memory/module.ts) have this shape
 * without importing it (layers point one way); the gateway's adapters (./modules.ts) add their RPC
 * methods.
 */
import type { Hono } from "hono";
import type { Config } from "../config/index.ts";
import { ConfigError, describeError } from "../lib/errors.ts";
import type { Logger } from "../lib/log.ts";
import type { Method } from "../protocol/methods.ts";
import type { RouteAuth } from "./server.ts";

/** A changed config key a module keeps until the next restart, and why. */
export interface RestartNote {
  key: string;
  reason: string;
}

export interface Capability {
  readonly name: string;
  methods?(): Iterable<readonly [string, Method<never>]>;
  routes?(app: Hono, auth: RouteAuth): void;
  /** Facts merged into `status` (each module its own keys). */
  status?(): Record<string, unknown> | Promise<Record<string, unknown>>;
  /** Its part of `/ready`: `ok: false` makes the gateway not ready; the rest is reported as given. */
  readiness?(): Promise<{ ok: boolean; facts: Record<string, unknown> }>;
  /** After the gateway listens. */
  start?(): void | Promise<void>;
  /** Refuses a new config before anything changes (throws ConfigError); pure. */
  check?(next: Config): void;
  /** Applies a new config (already the live one); returns what it keeps until a restart. */
  reload?(next: Config, prev: Config): RestartNote[] | void;
  /** Shutdown, first step: take no new work (timers cleared, intake closed). */
  quiesce?(): void;
  /** Shutdown, the drain: resolves when the work it accepted has finished. */
  idle?(): Promise<unknown>;
  /** Shutdown, after a drain that ran out of time: cancel what is left (it ends quickly, recorded). */
  cancel?(): void;
  /** Shutdown, last step: release what it holds, in reverse order of the list. */
  stop?(): Promise<void>;
}

/** The list of modules, run as one: methods and routes merged, reloads checked before applied. */
export class Capabilities {
  constructor(
    readonly modules: readonly Capability[],
    private readonly log: Logger,
  ) {
    const names = new Set<string>();
    for (const m of modules) {
      if (names.has(m.name)) throw new ConfigError(`capability ${m.name} listed twice`);
      names.add(m.name);
    }
  }

  methods(): Map<string, Method<never>> {
    const out = new Map<string, Method<never>>();
    for (const m of this.modules) for (const [name, method] of m.methods?.() ?? []) out.set(name, method);
    return out;
  }

  routes(app: Hono, auth: RouteAuth): void {
    for (const m of this.modules) m.routes?.(app, auth);
  }

  async status(): Promise<Record<string, unknown>> {
    const parts = await Promise.all(this.modules.map((m) => m.status?.() ?? {}));
    return Object.assign({}, ...parts);
  }

  async readiness(): Promise<{ ready: boolean; [k: string]: unknown }> {
    const parts = await Promise.all(this.modules.map((m) => m.readiness?.()));
    let ready = true;
    const facts: Record<string, unknown> = {};
    for (const p of parts) {
      if (!p) continue;
      ready &&= p.ok;
      Object.assign(facts, p.facts);
    }
    return { ready, ...facts };
  }

  async start(): Promise<void> {
    for (const m of this.modules) await m.start?.();
  }

  /**
   * Every module checks `next` first (a ConfigError from any keeps the old config everywhere), then
   * `swap` makes it the live one and each module applies it. Returns the keys kept until a restart.
   */
  reload(next: Config, swap: (next: Config) => Config): RestartNote[] {
    for (const m of this.modules) m.check?.(next);
    const prev = swap(next);
    const notes: RestartNote[] = [];
    for (const m of this.modules) {
      for (const n of m.reload?.(next, prev) ?? []) {
        notes.push(n);
        this.log.warn(`config change needs a restart: ${n.key} (${n.reason}); the running value is kept`, {
          module: m.name,
          key: n.key,
        });
      }
    }
    return notes;
  }

  /**
   * Shuts down: every module quiesces, `beforeDrain` runs (the gateway stops listening and finishes
   * its requests), then the modules drain for up to `drainMs`; what is left is cancelled and given
   * `graceMs` to end. Returns whether the drain finished in time. Then every module stops.
   */
  async shutdown(beforeDrain: () => Promise<void>, drainMs: number, graceMs: number): Promise<boolean> {
    for (const m of this.modules) m.quiesce?.();
    await beforeDrain();
    const idle = () => Promise.all(this.modules.map((m) => m.idle?.()));
    let timer: ReturnType<typeof setTimeout> | undefined;
    const drained = await Promise.race([
      idle().then(() => true),
      new Promise<false>((r) => (timer = setTimeout(() => r(false), drainMs))),
    ]);
    clearTimeout(timer);
    if (!drained) {
      for (const m of this.modules) m.cancel?.();
      await Promise.race([idle(), new Promise<void>((r) => (timer = setTimeout(r, graceMs)))]);
      clearTimeout(timer);
    }
    await this.stop();
    return drained;
  }

  /** Stops every module in reverse order; one failing does not stop the others. */
  async stop(): Promise<void> {
    for (const m of [...this.modules].reverse()) {
      try {
        await m.stop?.();
      } catch (e) {
        this.log.error("module did not stop cleanly", { module: m.name, error: describeError(e) });
      }
    }
  }
}

/** Restart notes for the keys of `keys` whose value in `next` differs from the `running` one (by JSON). */
export function frozenKeys(
  running: Record<string, unknown>,
  next: Record<string, unknown>,
  keys: readonly string[],
  prefix: string,
  reason: string,
): RestartNote[] {
  return keys
    .filter((k) => JSON.stringify(running[k]) !== JSON.stringify(next[k]))
    .map((k) => ({ key: `${prefix}${k}`, reason }));
}
