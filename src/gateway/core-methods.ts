/** The gateway's own methods: `ping` and `status` (SPEC §5). Other modules add theirs in app.ts. */
import { VERSION } from "../lib/version.ts";
import { defineMethod, type Method } from "../protocol/methods.ts";

/** Live facts about the running gateway, read at call time. */
export interface GatewayFacts {
  readonly startedAt: number;
  readonly bind: string;
  readonly port: () => number;
  readonly url: () => string;
  readonly tokenRequired: boolean;
  readonly tls: boolean;
  readonly connections: () => number;
  readonly configFile: string | null;
  /** Facts other modules add to `status` (store, plugins, bus …). */
  readonly extra?: () => Promise<Record<string, unknown>>;
}

export function coreMethods(facts: GatewayFacts): Map<string, Method<never>> {
  return new Map([
    ["ping", defineMethod({ handle: () => "pong" })],
    [
      "status",
      defineMethod({
        handle: async () => ({
          name: "exoclaw",
          version: VERSION,
          pid: process.pid,
          uptime_s: Math.round((Date.now() - facts.startedAt) / 1000),
          url: facts.url(),
          bind: facts.bind,
          port: facts.port(),
          auth: { token_required: facts.tokenRequired, tls: facts.tls },
          connections: facts.connections(),
          config_file: facts.configFile,
          memory: { rss_bytes: process.memoryUsage.rss() },
          ...(facts.extra ? await facts.extra() : {}),
        }),
      }),
    ],
  ]);
}
