/**
 * `exo_fs_read` / `exo_fs_write`: files only under the operator's `allowed_paths` (host path →
 * guest path), resolved on the host with symlinks followed, so `..`, absolute escapes and links
 * out of the granted directory all fail. A write goes through no symlink at all (every existing
 * component is checked with lstat and the file is opened O_NOFOLLOW): a dangling link inside the
 * grant must not create a file outside it. Never throws: the guest gets `{content}` or `{error}`.
 */
import {
  closeSync,
  constants,
  lstatSync,
  mkdirSync,
  openSync,
  readFileSync,
  realpathSync,
  statSync,
  writeSync,
} from "node:fs";
import { dirname, join, posix, relative, resolve, sep } from "node:path";

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

/** Whether any existing component of `path` below `root` is a symlink (`root` itself is resolved). */
function symlinkBelow(root: string, path: string): boolean {
  let at = root;
  for (const part of relative(root, path).split(sep).filter(Boolean)) {
    at = join(at, part);
    try {
      if (lstatSync(at).isSymbolicLink()) return true;
    } catch {
      return false; // the rest does not exist yet
    }
  }
  return false;
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

export function fsWrite(
  allowed: Readonly<Record<string, string>>,
  guestPath: string | null,
  content: string | null,
): string {
  const path = guestPath === null ? null : resolveGuestPath(allowed, guestPath);
  if (path === null) return answer({ error: `path ${guestPath} is not in this plugin's allowed_paths` });
  if (Buffer.byteLength(content ?? "") > MAX_FILE_BYTES)
    return answer({ error: `content larger than ${MAX_FILE_BYTES} bytes` });
  const root = Object.keys(allowed)
    .map((h) => realpathOrNull(resolve(h)))
    .find((r) => r !== null && (path === r || path.startsWith(r + sep)));
  if (!root || symlinkBelow(root, path))
    return answer({ error: `path ${guestPath} goes through a symlink; writes do not follow links` });
  try {
    mkdirSync(dirname(path), { recursive: true });
    const fd = openSync(path, constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC | constants.O_NOFOLLOW, 0o644);
    try {
      writeSync(fd, content ?? "");
    } finally {
      closeSync(fd);
    }
    return answer({});
  } catch (e) {
    return answer({ error: `cannot write ${guestPath} (${(e as NodeJS.ErrnoException).code ?? "error"})` });
  }
}
