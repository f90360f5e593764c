/** A real PluginHost over real child processes, for one test. */
import { join } from "node:path";
import { createLogger } from "../../src/lib/log.ts";
import { type PluginGrant, PluginHost, type PluginHostOptions } from "../../src/sandbox/host.ts";
import { pluginHostCommand } from "../../src/sandbox/child-command.ts";
import { createMemoryStore } from "../../src/store/index.ts";

const ROOT = join(import.meta.dir, "../..");

export const pluginPath = (name: string) => join(ROOT, "dist/plugins", `${name}.wasm`);
export const fixturePath = (name: string) => join(ROOT, "dist/fixtures", `${name}.wasm`);
export const readWasm = async (path: string) => new Uint8Array(await Bun.file(path).arrayBuffer());

export function grant(name: string, over: Partial<PluginGrant> = {}): PluginGrant {
  return {
    name,
    allowed_hosts: [],
    allowed_paths: {},
    secrets: [],
    memory_mb: 16,
    timeout_ms: 3000,
    config: {},
    ...over,
  };
}

export interface TestHost extends AsyncDisposable {
  host: PluginHost;
  logs: string[];
}

export function startTestHost(over: Partial<PluginHostOptions> = {}): TestHost {
  const store = createMemoryStore();
  const logs: string[] = [];
  const host = new PluginHost({
    command: pluginHostCommand(),
    kv: { get: (p, k) => store.kvGet(p, k), set: (p, k, v) => store.kvSet(p, k, v), stats: (p) => store.kvStats(p) },
    secret: () => null,
    log: createLogger({ format: "json", level: "debug", write: (l) => logs.push(l) }),
    ...over,
  });
  return { host, logs, [Symbol.asyncDispose]: () => host.stop() };
}
