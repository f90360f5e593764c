/**
 * The soul (SPEC §11): `<state>/agents/<agent>/SOUL.md` (or the agent's `soul` path), the agent's
 * persona, put first in its system prompt. Re-read when the file changes (checked by mtime and size
 * on each turn, a stat call), so editing it needs no restart. A missing file is no soul.
 */
import { readFileSync, statSync } from "node:fs";
import { isAbsolute, join } from "node:path";

/** Largest soul read; a bigger file is cut there (it is prompt text, paid for on every call). */
export const MAX_SOUL_BYTES = 64 * 1024;

export function soulPath(home: string, agentId: string, soul: string): string {
  return isAbsolute(soul) ? soul : join(home, "agents", agentId, soul);
}

export function createSoulReader(): (path: string) => string {
  const cache = new Map<string, { mtime: number; size: number; text: string }>();
  return (path) => {
    let st;
    try {
      st = statSync(path);
    } catch {
      cache.delete(path);
      return "";
    }
    const hit = cache.get(path);
    if (hit && hit.mtime === st.mtimeMs && hit.size === st.size) return hit.text;
    let text = "";
    try {
      text = readFileSync(path, "utf8").slice(0, MAX_SOUL_BYTES).trim();
    } catch {
      text = "";
    }
    cache.set(path, { mtime: st.mtimeMs, size: st.size, text });
    return text;
  };
}
