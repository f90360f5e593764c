/**
 * The composition root: builds every module from a Config and starts the gateway. The one file
 * that knows all modules; everything else receives what it needs as arguments.
 */
import { join } from "node:path";
import type { Config } from "./config/index.ts";
import { ConfigError } from "./lib/errors.ts";
import type { Logger } from "./lib/log.ts";
import { type Gateway, type GatewayOptions, startGateway } from "./gateway/server.ts";
import { sessionMethods } from "./gateway/session-methods.ts";
import { createMemoryStore, openSqliteStore, type Store } from "./store/index.ts";

export interface App {
  readonly gateway: Gateway;
  readonly store: Store;
  /** Stops the gateway, then closes the store. */
  stop(): Promise<void>;
}

export interface AppOptions {
  config: Config;
  log: Logger;
  /** Test seams passed through to the gateway (auth timeout, limiter). */
  gateway?: Omit<GatewayOptions, "config" | "log" | "methods" | "statusExtra">;
}

/** Opens the configured store. Throws StoreError (corrupt, read-only, newer schema) or ConfigError. */
export function openStore(config: Config): Store {
  switch (config.store.kind) {
    case "sqlite":
      return openSqliteStore(join(config.home, "exoclaw.db"));
    case "memory":
      return createMemoryStore();
    case "nats":
      throw new ConfigError(`store.kind = "nats" needs the NATS bus, which this version does not have yet: use "sqlite"`);
    default: {
      const never: never = config.store.kind;
      throw new ConfigError(`store.kind: unknown kind ${String(never)}`);
    }
  }
}

export async function startApp(opts: AppOptions): Promise<App> {
  const { config, log } = opts;
  const store = openStore(config);
  let gateway: Gateway;
  try {
    gateway = await startGateway({
      ...opts.gateway,
      config,
      log,
      methods: sessionMethods(store),
      statusExtra: async () => ({ store: { kind: store.kind, location: store.location, sessions: await store.countSessions() } }),
    });
  } catch (e) {
    await store.close();
    throw e;
  }
  return {
    gateway,
    store,
    async stop() {
      await gateway.stop();
      await store.close();
    },
  };
}
