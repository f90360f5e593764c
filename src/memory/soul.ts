/**
 * The soul (SPEC §11): `<state>/agents/<agent>/SOUL.md` (or the agent's `soul` path), the agent's
 * persona, put first in its system prompt. Re-read when the file changes (mtime and size, looked at
 * no more than once a second), so editing it needs no restart. A missing file is no soul.
 */
import { readFileSync, statSync } from "node:fs";
import { isAbsolute, join } from "node:path";

/** Largest soul read; a bigger file is cut there (it is prompt text, paid for on every call). */
export const MAX_SOUL_BYTES = 64 * 1024;

export function soulPath(home: string, agentId: string, soul: string): string {
  return isAbsolute(soul) ? soul : join(home, "agents", agentId, soul);
}

/** How long a read soul is trusted before the file is looked at again. */
export const SOUL_CHECK_MS = 1000;

export function createSoulReader(now: () => number = Date.now): (path: string) => string {
  const cache = new Map<string, { mtime: number; size: number; text: string; checked: number }>();
  return (path) => {
    const recent = cache.get(path);
    // A stat per turn (and a thrown ENOENT for agents without a soul) is measurable under load.
    if (recent && now() - recent.checked < SOUL_CHECK_MS) return recent.text;
    let st;
    try {
      st = statSync(path);
    } catch {
      cache.set(path, { mtime: 0, size: -1, text: "", checked: now() });
      return "";
    }
    const hit = cache.get(path);
    if (hit && hit.mtime === st.mtimeMs && hit.size === st.size) {
      hit.checked = now();
      return hit.text;
    }
    let text = "";
    try {
      text = readFileSync(path, "utf8").slice(0, MAX_SOUL_BYTES).trim();
    } catch {
      text = "";
    }
    cache.set(path, { mtime: st.mtimeMs, size: st.size, text, checked: now() });
    return text;
  };
}
