/**
 * `exoclaw gateway --workers N` (issue 13): a small supervisor that runs N gateway worker processes
 * on one port (Bun.serve `reusePort`: the kernel spreads connections over them), and the worker's end
 * of its link to the supervisor.
 *
 * The supervisor holds no sockets and runs no turns. It starts worker 0 and, once that one listens
 * (its port, when `--port 0` let the OS choose), the others on the same port; it restarts a worker
 * that dies (backoff from 250 ms doubling to 30 s, back to 250 ms once a worker stayed up 30 s;
 * logged), forwards SIGHUP (reload) to every worker, and on SIGTERM/SIGINT drains: every worker gets
 * SIGTERM (stops accepting, lets running turns finish), and one still running after the stop
 * timeout — or at a second signal — is killed. It exits 0 after a drain, 1 when a worker had to be killed.
 *
 * Workers report over IPC every second (pid, uptime, connections, memory, plugin-host children);
 * the supervisor sends the table back to all, so whichever worker answers `status` or `/ready`
 * shows every worker and the total. What workers share lives in the store (SessionLeases, the
 * usage ledger's reservations, session versions), never in the supervisor.
 */
import type { Subprocess } from "bun";
import { readdirSync, readFileSync } from "node:fs";
import { availableParallelism } from "node:os";
import type { Logger } from "../lib/log.ts";
import type { Capability } from "./capability.ts";

/** How long a draining worker may take before the supervisor kills it (the systemd stop timeout is above it). */
export const WORKER_STOP_MS = 15_000;

/** The environment variables a worker is started with: its index, and the port the others share. */
export const WORKER_ENV = "EXOCLAW_WORKER";
export const WORKER_PORT_ENV = "EXOCLAW_WORKER_PORT";

/** `[gateway] workers` / `--workers`: a count, or "auto" (one per core). */
export function workerCount(setting: number | "auto"): number {
  return setting === "auto" ? Math.max(1, availableParallelism()) : setting;
}

/** What a worker says about itself. */
export interface WorkerReport {
  index: number;
  pid: number;
  started_at: number;
  /** Open WebSocket connections. */
  connections: number;
  rss_bytes: number;
  /** Its child processes (plugin hosts, stdio MCP servers) and their resident memory. */
  children: number;
  children_rss_bytes: number;
  turns_running: number;
}

type ToSupervisor = { t: "listening"; port: number } | { t: "report"; report: WorkerReport };
type ToWorker = { t: "workers"; expected: number; workers: WorkerReport[] };

export interface SupervisorOptions {
  count: number;
  /** How to start a worker: this program, `gateway`, and the operator's flags. */
  command: string[];
  env: Record<string, string | undefined>;
  log: Logger;
  stopTimeoutMs?: number;
  /** First restart delay (doubles per quick death, up to 30 s). */
  backoffMs?: number;
  /** Where signals come from (default: this process's); tests drive the supervisor without signalling themselves. */
  onSignal?: (signal: "SIGHUP" | "SIGTERM" | "SIGINT", handler: () => void) => void;
}

interface Slot {
  index: number;
  proc: Subprocess | null;
  startedAt: number;
  /** Quick deaths in a row (the backoff exponent). */
  failures: number;
  listening: boolean;
  report: WorkerReport | null;
  restart: Timer | null;
}

/**
 * Runs the workers until SIGTERM/SIGINT, then drains them. Resolves with the exit code: 0 after a
 * drain, 1 when a worker had to be killed; the first worker's code when it could not start at all
 * (a config or port error is the workers', and already logged by it).
 */
export async function runSupervisor(opts: SupervisorOptions): Promise<number> {
  const { log, count } = opts;
  const stopTimeoutMs = opts.stopTimeoutMs ?? WORKER_STOP_MS;
  const backoff = opts.backoffMs ?? 250;
  const slots: Slot[] = Array.from({ length: count }, (_, index) => ({
    index,
    proc: null,
    startedAt: 0,
    failures: 0,
    listening: false,
    report: null,
    restart: null,
  }));
  let port: number | null = null;
  let stopping = false;
  let announced = false;
  let forced = false;
  let finish!: (code: number) => void;
  const done = new Promise<number>((r) => (finish = r));

  const table = (): ToWorker => ({
    t: "workers",
    expected: count,
    workers: slots.flatMap((s) => (s.proc && s.report ? [s.report] : [])),
  });
  const broadcast = () => {
    const msg = table();
    for (const s of slots) if (s.proc && s.listening) trySend(s.proc, msg);
  };

  const spawn = (slot: Slot) => {
    slot.restart = null;
    slot.listening = false;
    slot.report = null;
    slot.startedAt = Date.now();
    const env = {
      ...opts.env,
      [WORKER_ENV]: String(slot.index),
      ...(port !== null && { [WORKER_PORT_ENV]: String(port) }),
    };
    const proc = Bun.spawn(opts.command, {
      env,
      stdin: "ignore",
      stdout: "inherit",
      stderr: "inherit",
      ipc(message: ToSupervisor) {
        if (message.t === "listening") {
          slot.listening = true;
          if (port === null) {
            port = message.port;
            for (const s of slots) if (s !== slot && !s.proc && !stopping) spawn(s);
          }
          if (!announced && slots.every((s) => s.listening)) {
            announced = true;
            log.info("workers ready", { workers: count, port, pids: slots.map((s) => s.proc?.pid) });
          } else if (announced) {
            log.info("worker restarted", { worker: slot.index, pid: proc.pid });
          }
        } else if (message.t === "report") {
          const first = slot.report === null;
          slot.report = message.report;
          // A worker that just came up is in every worker's table at once, not a second later.
          if (first) broadcast();
        }
      },
      onExit(_p, code, signal) {
        if (slot.proc !== proc) return;
        slot.proc = null;
        slot.listening = false;
        slot.report = null;
        broadcast();
        if (stopping) {
          if (slots.every((s) => !s.proc)) finish(forced ? 1 : 0);
          return;
        }
        if (port === null) {
          // The first worker never listened: its error (config, port in use) is logged; nothing to supervise.
          log.error("the first worker could not start; not starting the others", { exit_code: code, signal });
          stopping = true;
          for (const s of slots) if (s.proc) s.proc.kill("SIGTERM");
          if (slots.every((s) => !s.proc)) finish(code ?? 1);
          return;
        }
        const lived = Date.now() - slot.startedAt;
        if (lived >= 30_000) slot.failures = 0;
        const delay = Math.min(30_000, backoff * 2 ** slot.failures);
        slot.failures++;
        log.error("worker exited; restarting it", {
          worker: slot.index,
          pid: proc.pid,
          exit_code: code,
          signal,
          uptime_ms: lived,
          restart_in_ms: delay,
        });
        slot.restart = setTimeout(() => stopping || spawn(slot), delay);
      },
    });
    slot.proc = proc;
  };

  const tick = setInterval(broadcast, 1000);
  const on = opts.onSignal ?? ((signal, handler) => void process.on(signal, handler));
  on("SIGHUP", () => {
    log.info("reload: SIGHUP forwarded to the workers", { workers: slots.filter((s) => s.proc).length });
    for (const s of slots) s.proc?.kill("SIGHUP");
  });
  const stop = (signal: string) => {
    if (stopping) {
      // A second signal while draining stops at once, as it does a single gateway.
      const left = slots.filter((s) => s.proc);
      if (left.length > 0)
        log.warn("second signal while draining: workers killed", { signal, workers: left.map((s) => s.proc!.pid) });
      forced ||= left.length > 0;
      for (const s of left) s.proc!.kill("SIGKILL");
      return;
    }
    stopping = true;
    log.info("shutting down", { signal, workers: slots.filter((s) => s.proc).length, stop_timeout_ms: stopTimeoutMs });
    for (const s of slots) {
      if (s.restart) clearTimeout(s.restart);
      s.proc?.kill("SIGTERM");
    }
    if (slots.every((s) => !s.proc)) finish(0);
    const force = setTimeout(() => {
      const left = slots.filter((s) => s.proc);
      if (left.length === 0) return;
      forced = true;
      log.warn("workers still running after the stop timeout; killed", { workers: left.map((s) => s.proc!.pid) });
      for (const s of left) s.proc!.kill("SIGKILL");
    }, stopTimeoutMs);
    force.unref();
  };
  on("SIGTERM", () => stop("SIGTERM"));
  on("SIGINT", () => stop("SIGINT"));

  log.info("starting workers", { workers: count });
  spawn(slots[0]!);
  const code = await done;
  clearInterval(tick);
  if (port !== null) log.info("workers stopped", { workers: count, exit_code: code });
  return code;
}

function trySend(proc: Subprocess, msg: unknown): void {
  try {
    proc.send(msg);
  } catch {
    // The worker is exiting: its onExit follows.
  }
}

/** Child processes of this process (all its threads) and their resident memory, from /proc (Linux). */
function childProcesses(): { count: number; rss: number } {
  let count = 0;
  let rss = 0;
  try {
    for (const task of readdirSync(`/proc/${process.pid}/task`)) {
      const kids = readFileSync(`/proc/${process.pid}/task/${task}/children`, "utf8").trim();
      for (const pid of kids === "" ? [] : kids.split(/\s+/)) {
        count++;
        try {
          rss += Number(readFileSync(`/proc/${pid}/statm`, "utf8").split(" ")[1]) * 4096;
        } catch {
          // exited meanwhile
        }
      }
    }
  } catch {
    // not Linux, or /proc hidden: counted as none
  }
  return { count, rss };
}

/** What the worker's own gateway knows about itself, for its reports. */
export interface WorkerSelf {
  connections(): number;
  turnsRunning(): number;
}

/**
 * The worker's end: reports to the supervisor, keeps the table it sends back, and gives `status`
 * and `/ready` the workers. A worker whose supervisor is gone (the IPC channel closed) drains and
 * exits as on SIGTERM, so no worker outlives its supervisor.
 */
export class WorkerLink {
  private table: WorkerReport[] = [];
  private expected = 1;
  private self: WorkerSelf | null = null;
  private readonly startedAt = Date.now();
  private timer: Timer | null = null;

  constructor(readonly index: number) {
    process.on("message", (m: ToWorker) => {
      if (m && m.t === "workers") {
        this.table = m.workers;
        this.expected = m.expected;
      }
    });
    process.on("disconnect", this.orphaned);
  }

  private readonly orphaned = () => process.kill(process.pid, "SIGTERM");

  /** The gateway listens on `port`: tell the supervisor, and report every second from now on. */
  listening(port: number, self: WorkerSelf): void {
    this.self = self;
    process.send?.({ t: "listening", port } satisfies ToSupervisor);
    this.report();
    this.timer = setInterval(() => this.report(), 1000);
    this.timer.unref();
  }

  /** Shutdown: no more reports; the IPC channel is closed so the drained worker can exit. */
  stop(): void {
    if (this.timer) clearInterval(this.timer);
    process.removeListener("disconnect", this.orphaned);
    process.disconnect?.();
  }

  private own(): WorkerReport {
    const kids = childProcesses();
    return {
      index: this.index,
      pid: process.pid,
      started_at: this.startedAt,
      connections: this.self?.connections() ?? 0,
      rss_bytes: process.memoryUsage.rss(),
      children: kids.count,
      children_rss_bytes: kids.rss,
      turns_running: this.self?.turnsRunning() ?? 0,
    };
  }

  private report(): void {
    try {
      process.send?.({ t: "report", report: this.own() } satisfies ToSupervisor);
    } catch {
      // the supervisor is gone: "disconnect" stops this worker
    }
  }

  /** Every worker (this one's figures fresh, the others' as of their last report, at most a second old) and the total. */
  workers() {
    const own = this.own();
    const now = Date.now();
    const list = [...this.table.filter((w) => w.index !== this.index), own].sort((a, b) => a.index - b.index);
    const sum = (f: (w: WorkerReport) => number) => list.reduce((n, w) => n + f(w), 0);
    return {
      expected: this.expected,
      running: list.length,
      this_worker: this.index,
      list: list.map((w) => ({
        index: w.index,
        pid: w.pid,
        uptime_s: Math.round((now - w.started_at) / 1000),
        connections: w.connections,
        rss_bytes: w.rss_bytes,
        children: w.children,
        children_rss_bytes: w.children_rss_bytes,
        turns_running: w.turns_running,
      })),
      total: {
        connections: sum((w) => w.connections),
        rss_bytes: sum((w) => w.rss_bytes + w.children_rss_bytes),
        children: sum((w) => w.children),
        turns_running: sum((w) => w.turns_running),
      },
    };
  }

  /** The `workers` module: its part of `status` and `/ready` (ready while this worker is; the count is reported). */
  capability(): Capability {
    return {
      name: "workers",
      status: () => ({ workers: this.workers() }),
      readiness: async () => ({ ok: true, facts: { workers: this.workers() } }),
      stop: async () => this.stop(),
    };
  }
}
