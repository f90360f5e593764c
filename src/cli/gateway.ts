/**
 * `exoclaw gateway`: serves the gateway. With `--workers N` (or `[gateway] workers`) above 1 this
 * process becomes the supervisor (src/gateway/supervisor.ts) and starts N copies of itself as
 * workers on the one port; a worker (EXOCLAW_WORKER set) runs the app with reusePort and session
 * leases. `--workers 1` is the single process it always was.
 */
import { defineCommand } from "citty";
import { chmodSync, mkdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { loadConfig } from "../config/index.ts";
import { describeError } from "../lib/errors.ts";
import { createLogger } from "../lib/log.ts";
import { startApp } from "../app.ts";
import { ConfigError } from "../lib/errors.ts";
import { runSupervisor, WORKER_ENV, WORKER_PORT_ENV, WorkerLink, workerCount } from "../gateway/supervisor.ts";
import { configArg, parsePort, stringFlag } from "./_args.ts";

export default defineCommand({
  meta: { name: "gateway", description: "Serve the gateway (HTTP + WebSocket JSON-RPC on one port)" },
  args: {
    ...configArg,
    port: { type: "string", description: "Port (default 7200; 0 picks a free one)" },
    bind: { type: "string", description: "Address to bind (default 127.0.0.1)" },
    token: { type: "string", description: "Require this token (default: $EXOCLAW_TOKEN)" },
    workers: {
      type: "string",
      description: 'Worker processes on the one port: a number or "auto" (one per core); default [gateway] workers (1)',
    },
  },
  async run({ args }) {
    const workerIndex = process.env[WORKER_ENV];
    const overrides = {
      file: stringFlag("config", args.config),
      // A worker started after the first one listens shares the first one's port (chosen by the OS for --port 0).
      port:
        workerIndex !== undefined && process.env[WORKER_PORT_ENV]
          ? parsePort(process.env[WORKER_PORT_ENV])
          : parsePort(stringFlag("port", args.port)),
      bind: stringFlag("bind", args.bind),
      token: stringFlag("token", args.token),
    };
    const config = loadConfig(process.env, overrides);
    const workersFlag = stringFlag("workers", args.workers);
    const workers =
      workerIndex !== undefined
        ? 1
        : workerCount(workersFlag === undefined ? config.gateway.workers : parseWorkers(workersFlag));
    // Everything the gateway creates (database, WAL, plugin state, credentials) is the owner's alone.
    process.umask(0o077);
    mkdirSync(config.home, { recursive: true, mode: 0o700 });
    const log = createLogger({
      level: config.gateway.log_level,
      secrets: [config.gateway.token],
      write: (line) => process.stdout.write(line + "\n"),
      format: process.stdout.isTTY ? "pretty" : "json",
    });
    tightenStateDir(config.home, (msg, fields) => log.warn(msg, fields));
    if (workers > 1) {
      const { [WORKER_PORT_ENV]: _, ...env } = process.env;
      return await runSupervisor({
        count: workers,
        command: [...selfCommand(), ...process.argv.slice(2)],
        env,
        log: log.child({ module: "supervisor" }),
      });
    }
    const link = workerIndex !== undefined ? new WorkerLink(Number(workerIndex)) : undefined;
    // Signals are taken from the start: "gateway listening" is logged before startApp returns, and a
    // SIGHUP in between must not kill the process (its default) — it is applied once the app runs.
    let app: Awaited<ReturnType<typeof startApp>> | undefined;
    let reloadWanted = false;
    let stopWanted: string | null = null;
    let stopNow: ((signal: string) => void) | undefined;
    const reload = () => {
      try {
        app!.reload();
      } catch (e) {
        log.error("config reload failed; keeping the previous bindings", { error: describeError(e) });
      }
    };
    process.on("SIGHUP", () => (app ? reload() : (reloadWanted = true)));
    const onStop = (signal: string) => (stopNow ? stopNow(signal) : (stopWanted ??= signal));
    process.once("SIGINT", () => onStop("SIGINT"));
    process.once("SIGTERM", () => onStop("SIGTERM"));
    app = await startApp({
      config,
      log: link ? log.child({ worker: link.index }) : log,
      env: process.env,
      reloadConfig: () => loadConfig(process.env, overrides),
      ...(link && {
        gateway: { reusePort: true },
        worker: { link, shared: { holder: `worker-${link.index}-${process.pid}`, leaseMs: 30_000 } },
      }),
    });
    const running = app;
    await new Promise<void>((resolve) => {
      let stopping = false;
      stopNow = (signal: string) => {
        // Ctrl-C reaches a worker both from the terminal (SIGINT) and from its supervisor (SIGTERM): one drain.
        if (stopping) return;
        stopping = true;
        log.info("shutting down", { signal });
        void running.stop().then(resolve);
      };
      if (stopWanted !== null) stopNow(stopWanted);
      else if (reloadWanted) reload();
    });
    return 0;
  },
});

/** `--workers`: a whole number from 1 to 256, or "auto". */
function parseWorkers(value: string): number | "auto" {
  if (value === "auto") return "auto";
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > 256)
    throw new ConfigError(`--workers: expected a number from 1 to 256 or "auto", got ${JSON.stringify(value)}`);
  return n;
}

/** This program, as a command a worker is started with (the compiled binary, or bun and main.ts). */
function selfCommand(): string[] {
  if (Bun.main.startsWith("/$bunfs/") || import.meta.path.startsWith("/$bunfs/")) return [process.execPath];
  return [process.execPath, new URL("../main.ts", import.meta.url).pathname];
}

/**
 * The state directory holds the database, credentials and plugins: only its owner may read it. A
 * directory made by hand or by an older version may be looser (umask 022 gives 755, and the
 * database 644): tighten it to 700 and the database files to 600 instead of serving from it as is.
 */
export function tightenStateDir(home: string, warn: (msg: string, fields: Record<string, unknown>) => void): void {
  const targets: [path: string, mode: number][] = [
    [home, 0o700],
    ...["exoclaw.db", "exoclaw.db-wal", "exoclaw.db-shm"].map((f): [string, number] => [join(home, f), 0o600]),
  ];
  for (const [path, mode] of targets) {
    let current: number;
    try {
      current = statSync(path).mode & 0o777;
    } catch {
      continue; // not there (yet): created with the right mode
    }
    if ((current & 0o077) === 0) continue;
    chmodSync(path, mode);
    warn("state file was readable by others; permissions tightened", {
      path,
      was: current.toString(8),
      now: mode.toString(8),
    });
  }
}
