import { defineCommand } from "citty";
import { mkdirSync } from "node:fs";
import { loadConfig } from "../config/index.ts";
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
    mkdirSync(config.home, { recursive: true, mode: 0o700 });
    const log = createLogger({
      secrets: [config.gateway.token],
      write: (line) => process.stdout.write(line + "\n"),
      format: process.stdout.isTTY ? "pretty" : "json",
    });
    const app = await startApp({ config, log, env: process.env, reloadConfig: () => loadConfig(process.env, overrides) });
    await new Promise<void>((resolve) => {
      const stop = (signal: string) => {
        log.info("shutting down", { signal });
        void app.stop().then(resolve);
      };
      process.on("SIGHUP", () => {
        try {
          app.reload();
        } catch (e) {
          log.error("config reload failed; keeping the previous bindings", { error: e instanceof Error ? e.message : String(e) });
        }
      });
      process.once("SIGINT", () => stop("SIGINT"));
      process.once("SIGTERM", () => stop("SIGTERM"));
    });
    return 0;
  },
});
