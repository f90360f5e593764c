/**
 * One plugin-host child process, seen from the gateway: spawn, load plugins, run one call at a
 * time under a deadline and a memory watchdog. On a deadline or over the memory limit the process
 * is killed (SIGKILL: a wasm loop cannot be interrupted any other way under Bun) and reported
 * dead; the pool replaces it.
 */
import type { Subprocess } from "bun";
import { readFileSync } from "node:fs";
import type { ChildMessage, HostFunctionName, ParentMessage, PluginSpec } from "./child-protocol.ts";
import { SandboxError } from "./errors.ts";

/** Whose call this is: `scope` names whose state (a person id, or "" for shared); `input` is the call's input text. */
export interface CallContext {
  scope: string;
  input: string;
}

export interface ProcessHandlers {
  /** A host function asked for by the call in flight; `call` is that call's context, tracked here, never the child's word. */
  hostCall(plugin: string, fn: HostFunctionName, args: (string | null)[], call: CallContext): Promise<string | null>;
  log(plugin: string, level: number, message: string): void;
}

export interface CallLimits {
  timeoutMs: number;
  /** Resident memory of the whole child above which it is killed. */
  maxRssBytes: number;
}

export type CallOutcome =
  | { ok: true; output: string }
  | { ok: false; error: SandboxError /** the process is gone (timeout, memory, crash) */; fatal: boolean };

function rssOf(pid: number): number {
  try {
    const pages = Number(readFileSync(`/proc/${pid}/statm`, "utf8").split(" ")[1]);
    return pages * 4096;
  } catch {
    return 0;
  }
}

export class PluginProcess {
  private proc: Subprocess | null = null;
  private readonly loaded = new Map<string, PluginSpec>();
  /** The call in flight; resolved with null when the child exits first (never a race on `exited`, see call()). */
  private pending: { id: number; resolve: (m: (ChildMessage & { t: "result" }) | null) => void } | null = null;
  /** The context of the call in flight; host calls outside a call are refused. */
  private current: CallContext | null = null;
  private nextId = 1;
  private exited: Promise<void> = Promise.resolve();
  private deathReason = "";
  lastRss = 0;

  constructor(
    private readonly command: readonly string[],
    private readonly handlers: ProcessHandlers,
  ) {}

  get alive(): boolean {
    return this.proc !== null && this.deathReason === "";
  }

  get pid(): number | undefined {
    return this.proc?.pid;
  }

  /** Spawns the child and waits until it says it is ready. */
  async start(timeoutMs = 10_000): Promise<void> {
    let ready!: () => void;
    const isReady = new Promise<void>((r) => (ready = r));
    const proc = Bun.spawn([...this.command], {
      stdio: ["ignore", "inherit", "inherit"],
      env: { PATH: process.env.PATH ?? "" },
      ipc: (raw) => {
        const m = raw as ChildMessage;
        if (m.t === "ready") ready();
        else if (m.t === "result") {
          if (this.pending?.id === m.id) {
            const p = this.pending;
            this.pending = null;
            p.resolve(m);
          }
        } else if (m.t === "log") this.handlers.log(m.plugin, m.level, m.message);
        else if (m.t === "host_call") {
          const call = this.current;
          void (call === null ? Promise.resolve(null) : this.handlers.hostCall(m.plugin, m.fn, m.args, call))
            .catch(() => null)
            .then((value) => this.send({ t: "host_reply", hid: m.hid, value }));
        }
      },
    });
    this.proc = proc;
    this.exited = proc.exited.then((code) => {
      this.deathReason ||= `plugin host process exited (${proc.signalCode ?? `code ${code}`})`;
      const p = this.pending;
      this.pending = null;
      p?.resolve(null);
    });
    const timer = setTimeout(() => proc.kill("SIGKILL"), timeoutMs);
    await Promise.race([isReady, this.exited]);
    clearTimeout(timer);
    if (!this.alive) throw new SandboxError(`plugin host process did not start: ${this.deathReason}`);
  }

  private send(m: ParentMessage): void {
    if (this.alive) this.proc?.send(m);
  }

  isLoaded(spec: PluginSpec): boolean {
    return this.loaded.get(spec.name) === spec;
  }

  load(spec: PluginSpec): void {
    this.loaded.set(spec.name, spec);
    this.send({ t: "load", spec });
  }

  unload(name: string): void {
    if (this.loaded.delete(name)) this.send({ t: "unload", plugin: name });
  }

  /** Runs one call; the caller guarantees no other call is in flight on this process. */
  async call(
    plugin: string,
    fn: string,
    input: string,
    limits: CallLimits,
    ctx: CallContext = { scope: "", input },
  ): Promise<CallOutcome> {
    if (!this.alive)
      return {
        ok: false,
        fatal: true,
        error: new SandboxError(this.deathReason || "plugin host process is not running"),
      };
    const id = this.nextId++;
    // Settled by the child's answer or by its exit (the handler in start()). Not Promise.race with
    // `exited`: that hangs a reaction on the child's lifelong promise at every call, keeping each
    // call's timers and closures reachable until the child dies (the soak's growing RSS, issue 15).
    const result = new Promise<(ChildMessage & { t: "result" }) | null>((resolve) => (this.pending = { id, resolve }));
    this.current = ctx;
    this.send({ t: "call", id, plugin, fn, input, scope: ctx.scope });

    let killedFor = "";
    const kill = (why: string) => {
      if (killedFor) return;
      killedFor = why;
      this.deathReason = why;
      this.proc?.kill("SIGKILL");
    };
    const deadline = setTimeout(
      () => kill(`plugin ${plugin} timed out after ${limits.timeoutMs} ms and was stopped`),
      limits.timeoutMs,
    );
    const watchdog = setInterval(() => {
      const rss = rssOf(this.proc?.pid ?? 0);
      if (rss > limits.maxRssBytes) kill(`plugin ${plugin} exceeded its memory limit and was stopped`);
    }, 50);
    try {
      const m = await result;
      if (m === null) {
        // Killed from outside (OOM killer, kill -9): say whose call it was, not only that a process died.
        return {
          ok: false,
          fatal: true,
          error: new SandboxError(killedFor || `plugin ${plugin}: ${this.deathReason} during the call`),
        };
      }
      this.lastRss = m.rss;
      if (m.ok) return { ok: true, output: m.output };
      const prefix =
        m.kind === "trap"
          ? `plugin ${plugin} trapped: `
          : m.kind === "output"
            ? `plugin ${plugin}: `
            : `plugin ${plugin} failed: `;
      return { ok: false, fatal: false, error: new SandboxError(prefix + m.error) };
    } finally {
      this.current = null;
      clearTimeout(deadline);
      clearInterval(watchdog);
    }
  }

  async stop(): Promise<void> {
    if (!this.proc) return;
    this.deathReason ||= "stopped";
    this.proc.kill("SIGKILL");
    await this.exited;
  }
}
