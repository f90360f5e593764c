/** Starts a real gateway on a free loopback port for one test; `await using` stops it. */
import { loadConfig, type ConfigOverrides } from "../../src/config/index.ts";
import { createLogger, type Logger } from "../../src/lib/log.ts";
import { type GatewayOptions, startGateway } from "../../src/gateway/server.ts";
import { tempDir } from "./temp.ts";

export interface TestGateway extends AsyncDisposable {
  url: string;
  wsUrl: string;
  port: number;
  home: string;
  /** Every log line the gateway wrote, as raw text. */
  logs: string[];
}

export interface TestGatewayOptions extends ConfigOverrides {
  /** TOML config text written to <home>/config.toml. */
  toml?: string;
  env?: Record<string, string>;
  gateway?: Omit<GatewayOptions, "config" | "log">;
}

export async function startTestGateway(opts: TestGatewayOptions = {}): Promise<TestGateway> {
  const home = tempDir("exoclaw-gw-");
  if (opts.toml !== undefined) home.file("config.toml", opts.toml);
  const env = { EXOCLAW_HOME: home.path, ...opts.env };
  const config = loadConfig(env, { port: 0, ...opts });
  const logs: string[] = [];
  const log: Logger = createLogger({ format: "json", level: "debug", write: (l) => logs.push(l), secrets: [config.gateway.token] });
  try {
    const gw = await startGateway({ config, log, ...opts.gateway });
    const host = new URL(gw.url).host;
    return {
      url: gw.url,
      wsUrl: `ws://${host}/ws`,
      port: gw.port,
      home: home.path,
      logs,
      async [Symbol.asyncDispose]() {
        await gw.stop();
        home[Symbol.dispose]();
      },
    };
  } catch (e) {
    home[Symbol.dispose]();
    throw e;
  }
}
