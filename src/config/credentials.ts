/**
 * Credentials: `<state>/credentials/<name>.key`, mode 600 in a mode-700 directory. Names are
 * `[a-z0-9_-]+`, so a name can never walk out of the directory.
 */
import { chmodSync, chownSync, existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { ConfigError } from "../lib/errors.ts";

const NAME = /^[a-z0-9_-]+$/;

function credentialPath(home: string, name: string): string {
  if (!NAME.test(name)) throw new ConfigError(`credential name "${name}" must match [a-z0-9_-]+`);
  return join(home, "credentials", `${name}.key`);
}

/** The credential's value without a trailing newline, or null when there is none. */
export function readCredential(home: string, name: string): string | null {
  const path = credentialPath(home, name);
  // Asked on every model call: a missing file (the usual case when the key is in the environment)
  // is answered by a stat, not by a thrown ENOENT, which cost ~2% of a turn's CPU.
  if (!existsSync(path)) return null;
  try {
    const value = readFileSync(path, "utf8").replace(/\r?\n$/, "");
    return value === "" ? null : value;
  } catch (e) {
    if (e instanceof ConfigError) throw e;
    return null;
  }
}

/**
 * Why a credential file that exists cannot be read by this process (another owner, mode 600), or
 * null: it reads, or there is none. Told apart from "missing" so the fix named is the right one.
 */
export function unreadableCredential(home: string, name: string): string | null {
  const path = credentialPath(home, name);
  if (!existsSync(path)) return null;
  try {
    readFileSync(path);
    return null;
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? "error";
    let owner = "";
    try {
      owner = ` (owned by uid ${statSync(path).uid}; this process is uid ${process.getuid?.() ?? "?"})`;
    } catch {
      // stat failed too: the code says enough
    }
    return `${path} exists but cannot be read: ${code}${owner}`;
  }
}

/** Writes a credential with mode 600; returns its path. */
export function writeCredential(home: string, name: string, value: string): string {
  const path = credentialPath(home, name);
  mkdirSync(join(home, "credentials"), { recursive: true, mode: 0o700 });
  writeFileSync(path, value.replace(/\r?\n$/, "") + "\n", { mode: 0o600 });
  chmodSync(path, 0o600);
  giveToStateOwner(home, [join(home, "credentials"), path]);
  return path;
}

/**
 * `sudo exoclaw secret set` into a state directory the service owns (systemd's DynamicUser= hands
 * /var/lib/exoclaw to the service's user at its first start, and does not re-own files added later):
 * a root-owned mode-600 file would be unreadable to the gateway. Root gives what it wrote to the
 * directory's owner; anyone else writes as the owner already.
 */
export function giveToStateOwner(home: string, paths: string[]): void {
  if (process.getuid?.() !== 0) return;
  let owner: { uid: number; gid: number };
  try {
    owner = statSync(home);
  } catch {
    return;
  }
  if (owner.uid === 0) return;
  for (const p of paths) {
    try {
      chownSync(p, owner.uid, owner.gid);
    } catch {
      // best effort: the start-up check names an unreadable credential
    }
  }
}
