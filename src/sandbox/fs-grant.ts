/**
 * `exo_fs_read` / `exo_fs_write`: files only under the operator's `allowed_paths` (host path →
 * guest path), resolved on the host with symlinks followed, so `..`, absolute escapes and links
 * out of the granted directory all fail. Never throws: the guest gets `{content}` or `{error}`.
 */
import { mkdirSync, readFileSync, realpathSync, statSync, writeFileSync } from "node:fs";
import { dirname, posix, resolve, sep } from "node:path";

export const MAX_FILE_BYTES = 1024 * 1024;

/** Maps a guest path to a host path inside a grant, or null when it is outside every grant. */
export function resolveGuestPath(allowed: Readonly<Record<string, string>>, guestPath: string): string | null {
  if (!guestPath.startsWith("/") || guestPath.includes("\0")) return null;
  const guest = posix.normalize(guestPath);
  for (const [hostRoot, guestRoot] of Object.entries(allowed)) {
    const g = posix.normalize(guestRoot.endsWith("/") ? guestRoot : guestRoot + "/");
    if (guest !== g.slice(0, -1) && !guest.startsWith(g)) continue;
    const root = realpathOrNull(resolve(hostRoot));
    if (root === null) return null;
    const candidate = resolve(root, "." + guest.slice(g.length - 1));
    // Follow links of the deepest existing ancestor: a symlink inside the grant may point out of it.
    let probe = candidate;
    while (realpathOrNull(probe) === null && probe !== dirname(probe)) probe = dirname(probe);
    const real = realpathOrNull(probe);
    if (real === null || (real !== root && !real.startsWith(root + sep))) return null;
    return candidate;
  }
  return null;
}

function realpathOrNull(p: string): string | null {
  try {
    return realpathSync(p);
  } catch {
    return null;
  }
}

const answer = (o: { content?: string; error?: string }) => JSON.stringify(o);

export function fsRead(allowed: Readonly<Record<string, string>>, guestPath: string | null): string {
  const path = guestPath === null ? null : resolveGuestPath(allowed, guestPath);
  if (path === null) return answer({ error: `path ${guestPath} is not in this plugin's allowed_paths` });
  try {
    if (statSync(path).size > MAX_FILE_BYTES) return answer({ error: `file larger than ${MAX_FILE_BYTES} bytes` });
    return answer({ content: readFileSync(path, "utf8") });
  } catch (e) {
    return answer({ error: `cannot read ${guestPath} (${(e as NodeJS.ErrnoException).code ?? "error"})` });
  }
}

export function fsWrite(allowed: Readonly<Record<string, string>>, guestPath: string | null, content: string | null): string {
  const path = guestPath === null ? null : resolveGuestPath(allowed, guestPath);
  if (path === null) return answer({ error: `path ${guestPath} is not in this plugin's allowed_paths` });
  if (Buffer.byteLength(content ?? "") > MAX_FILE_BYTES) return answer({ error: `content larger than ${MAX_FILE_BYTES} bytes` });
  try {
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(path, content ?? "");
    return answer({});
  } catch (e) {
    return answer({ error: `cannot write ${guestPath} (${(e as NodeJS.ErrnoException).code ?? "error"})` });
  }
}
