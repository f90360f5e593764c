/**
 * A real gateway in a child process (`bun tests/helpers/cluster-gateway.ts`, state in $EXOCLAW_HOME,
 * config from its config.toml) for the cluster tests: it can be SIGKILLed mid-turn like a machine
 * that dies. Prints `listening <port>` once up.
 */
import { startApp } from "../../src/app.ts";
import { loadConfig } from "../../src/config/index.ts";
import { createLogger } from "../../src/lib/log.ts";

const env = { EXOCLAW_HOME: process.env.EXOCLAW_HOME ?? "" };
const app = await startApp({
  config: loadConfig(env, { port: 0 }),
  log: createLogger({ format: "json", level: "warn" }),
  env,
});
console.log(`listening ${app.gateway.port}`);
