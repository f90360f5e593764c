import { defineCommand } from "citty";
import { chmodSync, mkdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { loadConfig } from "../config/index.ts";
import { describeError } from "../lib/errors.ts";
import { createLogger } from "../lib/log.ts";
import { startApp } from "../app.ts";
import { configArg, parsePort, stringFlag } from "./_args.ts";

export default defineCommand({
  meta: { name: "gateway", description: "Serve the gateway (HTTP + WebSocket JSON-RPC on one port)" },
  args: {
    ...configArg,
    port: { type: "string", description: "Port (default 7200; 0 picks a free one)" },
    bind: { type: "string", description: "Address to bind (default 127.0.0.1)" },
    token: { type: "string", description: "Require this token (default: $EXOCLAW_TOKEN)" },
  },
  async run({ args }) {
    const overrides = {
      file: stringFlag("config", args.config),
      port: parsePort(stringFlag("port", args.port)),
      bind: stringFlag("bind", args.bind),
      token: stringFlag("token", args.token),
    };
    const config = loadConfig(process.env, overrides);
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
    app = await startApp({ config, log, env: process.env, reloadConfig: () => loadConfig(process.env, overrides) });
    const running = app;
    await new Promise<void>((resolve) => {
      stopNow = (signal: string) => {
        log.info("shutting down", { signal });
        void running.stop().then(resolve);
      };
      if (stopWanted !== null) stopNow(stopWanted);
      else if (reloadWanted) reload();
    });
    return 0;
  },
});

/**
 * The state directory holds the database, credentials and plugins: only its owner may read it. A
 * directory made by hand or by an older version may be looser (umask 022 gives 755, and the
 * database 644): tighten it to 700 and the database files to 600 instead of serving from it as is.
 */
export function tightenStateDir(home: string, warn: (msg: string, fields: Record<string, unknown>) => void): void {
  const targets: [path: string, mode: number][] = [[home, 0o700], ...["exoclaw.db", "exoclaw.db-wal", "exoclaw.db-shm"].map((f): [string, number] => [join(home, f), 0o600])];
  for (const [path, mode] of targets) {
    let current: number;
    try {
      current = statSync(path).mode & 0o777;
    } catch {
      continue; // not there (yet): created with the right mode
    }
    if ((current & 0o077) === 0) continue;
    chmodSync(path, mode);
    warn("state file was readable by others; permissions tightened", { path, was: current.toString(8), now: mode.toString(8) });
  }
}
