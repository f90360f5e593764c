/**
 * The scaffolding of CLI commands that work through the running gateway when one answers, else
 * straight in the store (`inbox`, `pairing`, `sessions`): connect, fall back only when nobody is
 * listening (a gateway that refuses us is an error), refuse a memory store that only a running
 * gateway holds, answer "nothing yet" before any gateway has made the database, close at the end.
 * Plus the printing every such command shares.
 */
import { existsSync } from "node:fs";
import { join } from "node:path";
import { openStore } from "../app.ts";
import { type Config, loadConfig } from "../config/index.ts";
import { UnavailableError } from "../lib/errors.ts";
import type { Store } from "../store/index.ts";
import { parsePort, stringFlag } from "./_args.ts";
import { connectGateway, type GatewayClient, gatewayUrl } from "./_client.ts";

export interface BackendSpec<B> {
  /**
   * What the command reads ("messages", "pairings"), for the error when `store.kind = "memory"` and
   * no gateway answers; without it a memory store is opened (and is empty).
   */
  memoryRefusal?: string;
  /** Through the running gateway at `url`. */
  gateway(client: GatewayClient, url: string): B;
  /** No gateway has run with this state directory yet (no database). */
  empty(home: string): B;
  /** Straight in the store (closed by the caller). */
  store(store: Store): B;
}

/** A backend and how to let go of it (the socket, or the store). */
export interface Opened<B> {
  backend: B;
  close(): Promise<void>;
}

/** The gateway's side when one answers at the configured (or flagged) URL, else the store's. */
export async function openBackend<B>(
  config: Config,
  args: Record<string, unknown>,
  spec: BackendSpec<B>,
): Promise<Opened<B>> {
  const url = gatewayUrl(config, { url: stringFlag("url", args.url), port: parsePort(stringFlag("port", args.port)) });
  try {
    const client = await connectGateway(url, config.gateway.token, 2000);
    return { backend: spec.gateway(client, url), close: async () => client.close() };
  } catch (e) {
    // Only "nobody is listening" means go to the store; a gateway that refuses us is an error.
    if (!(e instanceof UnavailableError)) throw e;
  }
  if (config.store.kind === "memory" && spec.memoryRefusal !== undefined) {
    throw new UnavailableError(
      `no gateway is answering at ${url}, and with store.kind = "memory" ${spec.memoryRefusal} live only in a running gateway: start \`exoclaw gateway\` first`,
    );
  }
  if (config.store.kind === "sqlite" && !existsSync(join(config.home, "exoclaw.db"))) {
    return { backend: spec.empty(config.home), close: async () => {} };
  }
  const store = await openStore(config);
  return { backend: spec.store(store), close: () => store.close() };
}

/** Loads the config (`--config`, `--token`), opens the backend, runs `fn`, and always closes it. */
export async function withBackend<B, T>(
  args: Record<string, unknown>,
  spec: BackendSpec<B>,
  fn: (b: B) => Promise<T>,
): Promise<T> {
  const token = stringFlag("token", args.token);
  const config = loadConfig(process.env, {
    file: stringFlag("config", args.config),
    ...(token !== undefined && { token }),
  });
  const opened = await openBackend(config, args, spec);
  try {
    return await fn(opened.backend);
  } finally {
    await opened.close();
  }
}

/** One line on stdout. */
export const print = (text: string): void => void process.stdout.write(text + "\n");

/** A time to the second, in UTC: 2026-01-02T03:04:05Z. */
export const iso = (ms: number): string => new Date(ms).toISOString().replace(/\.\d+Z$/, "Z");

/** Headed groups of lines; a group with no lines is left out. */
export function printSections(sections: readonly (readonly [heading: string, lines: readonly string[]])[]): void {
  for (const [heading, lines] of sections) {
    if (lines.length === 0) continue;
    print(heading);
    for (const line of lines) print(line);
  }
}
