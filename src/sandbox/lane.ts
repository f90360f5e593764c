/**
 * One plugin's lane: the child processes that run only that plugin's module. At most `concurrency`
 * calls are in flight at once (one per process); processes are spawned when a call needs one and
 * idle extras are reaped. A slow, spinning or memory-hungry plugin fills or kills only its own lane,
 * so it can never take another plugin's capacity or get its neighbours' calls killed.
 */
import type { PluginSpec } from "./child-protocol.ts";
import { SandboxError } from "./errors.ts";
import { type CallContext, type CallLimits, type CallOutcome, PluginProcess, type ProcessHandlers } from "./process.ts";

export interface LaneOptions {
  /** argv that starts a plugin-host child. */
  command: readonly string[];
  handlers: ProcessHandlers;
  /** Calls in flight at once (= processes at most). */
  concurrency: number;
  /** An idle process beyond the first is stopped after this long unused. */
  idleMs: number;
  onSpawnError(e: unknown): void;
}

interface Waiter {
  scope: string;
  resolve(p: PluginProcess): void;
  reject(e: Error): void;
}

export class Lane {
  private readonly processes = new Set<PluginProcess>();
  private readonly idle: PluginProcess[] = [];
  /** Scope of each process's previous call: a same-scope call prefers that process (its instance is warm). */
  private readonly lastScope = new WeakMap<PluginProcess, string>();
  private readonly waiters: Waiter[] = [];
  private starting = 0;
  private closed = false;
  private reaper: ReturnType<typeof setTimeout> | null = null;

  constructor(
    private readonly spec: PluginSpec,
    private readonly opts: LaneOptions,
  ) {}

  /** Processes alive in this lane (for tests and status). */
  get size(): number {
    return this.processes.size;
  }

  /** Runs one call in one of this lane's processes, waiting for a free one. */
  async run(fn: string, input: string, limits: CallLimits, ctx: CallContext): Promise<CallOutcome> {
    const proc = await this.acquire(ctx.scope);
    try {
      if (!proc.isLoaded(this.spec)) proc.load(this.spec);
      this.lastScope.set(proc, ctx.scope);
      return await proc.call(this.spec.name, fn, input, limits, ctx);
    } finally {
      this.release(proc);
    }
  }

  private async acquire(scope: string): Promise<PluginProcess> {
    if (this.closed) throw new SandboxError(`plugin ${this.spec.name} was unloaded`);
    // A process that died while idle (crashed, OOM-killed) is forgotten, not handed out.
    for (let i = this.idle.length - 1; i >= 0; i--) {
      const p = this.idle[i]!;
      if (p.alive) continue;
      this.idle.splice(i, 1);
      this.processes.delete(p);
    }
    const warm = this.idle.findLastIndex((p) => this.lastScope.get(p) === scope);
    const idle = warm >= 0 ? this.idle.splice(warm, 1)[0] : this.idle.pop();
    if (idle) return idle;
    if (this.processes.size + this.starting < this.opts.concurrency) return this.spawn();
    return new Promise((resolve, reject) => this.waiters.push({ scope, resolve, reject }));
  }

  private release(p: PluginProcess): void {
    if (!p.alive) {
      this.processes.delete(p);
      // Replace a killed process at once when someone waits, so they do not wait for a slot forever.
      if (!this.closed && this.waiters.length > 0) {
        void this.spawn()
          .then((fresh) => this.release(fresh))
          .catch((e: unknown) => {
            this.opts.onSpawnError(e);
            const error = e instanceof Error ? e : new SandboxError(String(e));
            // With no process left nobody would ever serve the waiters: fail them all, else the oldest.
            const failed =
              this.processes.size + this.starting === 0 ? this.waiters.splice(0) : this.waiters.splice(0, 1);
            for (const w of failed) w.reject(error);
          });
      }
      return;
    }
    if (this.closed) {
      void p.stop();
      this.processes.delete(p);
      return;
    }
    const sameScope = this.waiters.findIndex((w) => w.scope === this.lastScope.get(p));
    const waiter = sameScope >= 0 ? this.waiters.splice(sameScope, 1)[0] : this.waiters.shift();
    if (waiter) return waiter.resolve(p);
    this.idle.push(p);
    if (this.idle.length > 1) this.scheduleReap();
  }

  private scheduleReap(): void {
    if (this.reaper) return;
    this.reaper = setTimeout(() => {
      this.reaper = null;
      // Keep one warm process; the extras were for a burst that is over.
      while (this.idle.length > 1) {
        const p = this.idle.shift()!;
        this.processes.delete(p);
        void p.stop();
      }
    }, this.opts.idleMs);
    this.reaper.unref?.();
  }

  private async spawn(): Promise<PluginProcess> {
    this.starting++;
    const p = new PluginProcess(this.opts.command, this.opts.handlers);
    try {
      await p.start();
    } finally {
      this.starting--;
    }
    // close() may have run while this process was starting: it must not outlive the lane.
    if (this.closed) {
      await p.stop();
      throw new SandboxError(`plugin ${this.spec.name} was unloaded`);
    }
    this.processes.add(p);
    return p;
  }

  /** Stops the idle processes now and the busy ones when their call ends; waiting calls fail. */
  async close(): Promise<void> {
    this.closed = true;
    if (this.reaper) clearTimeout(this.reaper);
    for (const w of this.waiters.splice(0)) w.reject(new SandboxError(`plugin ${this.spec.name} was unloaded`));
    const idle = this.idle.splice(0);
    for (const p of idle) this.processes.delete(p);
    await Promise.all(idle.map((p) => p.stop()));
  }

  /** Kills every process at once, busy or not (the host is stopping). */
  async kill(): Promise<void> {
    await this.close();
    await Promise.all([...this.processes].map((p) => p.stop()));
    this.processes.clear();
  }
}
