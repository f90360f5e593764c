/**
 * Credentials: `<state>/credentials/<name>.key`, mode 600 in a mode-700 directory. Names are
 * `[a-z0-9_-]+`, so a name can never walk out of the directory.
 */
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { ConfigError } from "../lib/errors.ts";

const NAME = /^[a-z0-9_-]+$/;

function credentialPath(home: string, name: string): string {
  if (!NAME.test(name)) throw new ConfigError(`credential name "${name}" must match [a-z0-9_-]+`);
  return join(home, "credentials", `${name}.key`);
}

/** The credential's value without a trailing newline, or null when there is none. */
export function readCredential(home: string, name: string): string | null {
  try {
    const value = readFileSync(credentialPath(home, name), "utf8").replace(/\r?\n$/, "");
    return value === "" ? null : value;
  } catch (e) {
    if (e instanceof ConfigError) throw e;
    return null;
  }
}

/** Writes a credential with mode 600; returns its path. */
export function writeCredential(home: string, name: string, value: string): string {
  const path = credentialPath(home, name);
  mkdirSync(join(home, "credentials"), { recursive: true, mode: 0o700 });
  writeFileSync(path, value.replace(/\r?\n$/, "") + "\n", { mode: 0o600 });
  chmodSync(path, 0o600);
  return path;
}
