/** Starts a real gateway on a free loopback port for one test; `await using` stops it. */
import { loadConfig, type ConfigOverrides } from "../../src/config/index.ts";
import { createLogger, type Logger } from "../../src/lib/log.ts";
import { type App, type AppOptions, startApp } from "../../src/app.ts";
import type { PluginRegistry } from "../../src/sandbox/index.ts";
import type { Store } from "../../src/store/index.ts";
import { keptDir, tempDir } from "./temp.ts";

export interface TestGateway extends AsyncDisposable {
  url: string;
  wsUrl: string;
  port: number;
  home: string;
  /** Every log line the gateway wrote, as raw text. */
  logs: string[];
  store: Store;
  plugins: PluginRegistry;
  app: App;
}

export interface TestGatewayOptions extends ConfigOverrides {
  /** TOML config text written to <home>/config.toml. */
  toml?: string;
  env?: Record<string, string>;
  gateway?: AppOptions["gateway"];
  /** The agents' model calls (a scripted stream, or real providers against a fake upstream). */
  streamFor?: AppOptions["streamFor"];
  /** The first retry delay of a failed channel delivery (AppOptions.retryIntervalMs). */
  retryIntervalMs?: number;
  /** Keep the state directory on dispose (to start another gateway on it). */
  home?: string;
}

export async function startTestGateway(opts: TestGatewayOptions = {}): Promise<TestGateway> {
  const home = opts.home ? keptDir(opts.home) : tempDir("exoclaw-gw-");
  if (opts.toml !== undefined) home.file("config.toml", opts.toml);
  const env = { EXOCLAW_HOME: home.path, ...opts.env };
  const config = loadConfig(env, { port: 0, ...opts });
  const logs: string[] = [];
  const log: Logger = createLogger({
    format: "json",
    level: "debug",
    write: (l) => logs.push(l),
    secrets: [config.gateway.token],
  });
  try {
    const reloadConfig = () => loadConfig(env, { port: 0, ...opts });
    const app = await startApp({
      config,
      log,
      reloadConfig,
      env,
      ...(opts.gateway && { gateway: opts.gateway }),
      ...(opts.streamFor && { streamFor: opts.streamFor }),
      ...(opts.retryIntervalMs !== undefined && { retryIntervalMs: opts.retryIntervalMs }),
    });
    const gw = app.gateway;
    const host = new URL(gw.url).host;
    return {
      url: gw.url,
      wsUrl: `ws://${host}/ws`,
      port: gw.port,
      home: home.path,
      logs,
      store: app.store,
      plugins: app.plugins,
      app,
      async [Symbol.asyncDispose]() {
        await app.stop();
        home[Symbol.dispose]();
      },
    };
  } catch (e) {
    home[Symbol.dispose]();
    throw e;
  }
}
