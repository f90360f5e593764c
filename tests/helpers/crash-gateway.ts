/**
 * A real gateway in a child process (`bun tests/helpers/crash-gateway.ts`, state in $EXOCLAW_HOME)
 * that dies by SIGKILL — no cleanup, no flush, like a power cut of the process — the moment the first
 * turn's history write has committed: the outbox's crash point. Prints `listening <port>` once up.
 */
import { startApp } from "../../src/app.ts";
import { loadConfig } from "../../src/config/index.ts";
import { createLogger } from "../../src/lib/log.ts";

const env = { EXOCLAW_HOME: process.env.EXOCLAW_HOME ?? "" };
const app = await startApp({
  config: loadConfig(env, { port: 0 }),
  log: createLogger({ format: "json", level: "warn" }),
  env,
  wrapStore: (store) => ({
    ...store,
    appendMessages: async (...args) => {
      const stored = await store.appendMessages(...args);
      process.kill(process.pid, "SIGKILL");
      return stored;
    },
  }),
});
console.log(`listening ${app.gateway.port}`);
