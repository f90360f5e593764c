/**
 * Plugins from the config: `[[plugins]]` entries with the operator's grants. An installed plugin
 * is pinned by sha256 — a file that changed since the operator approved it is refused until they
 * approve it again. A built-in (`path = "builtin:<name>"`) ships inside the binary and needs no pin.
 */
import { readFileSync } from "node:fs";
import { isAbsolute, join } from "node:path";
import type { ConfigFile } from "../config/index.ts";
import { SandboxError } from "./errors.ts";
import { type LoadedPlugin, type PluginHost, sha256Hex } from "./host.ts";

export type PluginEntry = ConfigFile["plugins"][number];

export const BUILTIN_PREFIX = "builtin:";

/** A built-in's name: a plain word, never a path (`builtin:../..` must not read an arbitrary file unpinned). */
export const BUILTIN_NAME = /^[a-z0-9-]+$/;

/** Where built-in plugins live: embedded files in a compiled binary, dist/plugins/ in a source tree. */
export function builtinPluginBytes(name: string): Uint8Array | null {
  if (!BUILTIN_NAME.test(name)) return null;
  // A compiled binary keeps `--asset` files at their own paths; `Bun.embeddedFiles` lists them under
  // content-hashed names (`http-get-<hash>.wasm`), which a prefix match confuses with `http`.
  try {
    return new Uint8Array(readFileSync(`/$bunfs/root/plugins/${name}.wasm`));
  } catch {
    // not a compiled binary, or no such built-in: the source tree's build output below
  }
  try {
    return new Uint8Array(readFileSync(new URL(`../../dist/plugins/${name}.wasm`, import.meta.url).pathname));
  } catch {
    return null;
  }
}

export function resolvePluginPath(home: string, path: string): string {
  return isAbsolute(path) ? path : join(home, path);
}

/** Reads an entry's module and checks its pin. Throws SandboxError. */
export function readPinnedModule(entry: PluginEntry, home: string): { bytes: Uint8Array; sha256: string } {
  if (entry.path.startsWith(BUILTIN_PREFIX)) {
    const builtin = entry.path.slice(BUILTIN_PREFIX.length);
    if (!BUILTIN_NAME.test(builtin))
      throw new SandboxError(
        `plugin ${entry.name}: ${JSON.stringify(entry.path)} is not a built-in plugin name (expected builtin:<name>, name of [a-z0-9-])`,
      );
    const bytes = builtinPluginBytes(builtin);
    if (!bytes) throw new SandboxError(`plugin ${entry.name}: no built-in plugin ${entry.path}`);
    return { bytes, sha256: sha256Hex(bytes) };
  }
  const path = resolvePluginPath(home, entry.path);
  let bytes: Uint8Array;
  try {
    bytes = new Uint8Array(readFileSync(path));
  } catch (e) {
    throw new SandboxError(
      `plugin ${entry.name}: cannot read ${path} (${(e as NodeJS.ErrnoException).code ?? "error"})`,
    );
  }
  const sha256 = sha256Hex(bytes);
  if (!entry.sha256) {
    throw new SandboxError(
      `plugin ${entry.name}: no sha256 pin in the config; approve it with \`exoclaw plugin load ${path} --name ${entry.name}\``,
    );
  }
  if (entry.sha256 !== sha256) {
    throw new SandboxError(
      `plugin ${entry.name}: ${path} changed since it was approved (sha256 ${sha256.slice(0, 12)}…, pinned ${entry.sha256.slice(0, 12)}…); ` +
        `inspect it and approve it again with \`exoclaw plugin load ${path} --name ${entry.name}\``,
    );
  }
  return { bytes, sha256 };
}

/** Loads one configured plugin into the host under its grants. Throws SandboxError. */
export async function loadConfiguredPlugin(host: PluginHost, entry: PluginEntry, home: string): Promise<LoadedPlugin> {
  const { bytes } = readPinnedModule(entry, home);
  return host.load(
    {
      name: entry.name,
      allowed_hosts: entry.allowed_hosts,
      allowed_paths: entry.allowed_paths,
      secrets: entry.secrets,
      secret_hosts: entry.secret_hosts ?? {},
      memory_mb: entry.memory_mb,
      timeout_ms: entry.timeout_ms,
      config: entry.config,
      ...(entry.shared_state !== undefined && { shared_state: entry.shared_state }),
      ...(entry.state_max_entries !== undefined && { state_max_entries: entry.state_max_entries }),
      ...(entry.state_max_bytes !== undefined && { state_max_bytes: entry.state_max_bytes }),
    },
    bytes,
  );
}
