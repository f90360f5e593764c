import { ParamsError } from "../lib/errors.ts";

/** Keyset cursor for session pages ordered by updated_at desc, key asc. */
export interface SessionCursor {
  updated_at: number;
  key: string;
}

export function encodeCursor(c: SessionCursor): string {
  return Buffer.from(JSON.stringify([c.updated_at, c.key])).toString("base64url");
}

/** Throws ParamsError("cursor") for anything that is not a cursor we issued. */
export function decodeCursor(s: string): SessionCursor {
  try {
    const v = JSON.parse(Buffer.from(s, "base64url").toString("utf8")) as unknown;
    if (Array.isArray(v) && v.length === 2 && typeof v[0] === "number" && typeof v[1] === "string") {
      return { updated_at: v[0], key: v[1] };
    }
  } catch {
    // fall through
  }
  throw new ParamsError("invalid params: cursor: not a cursor from a previous page", "cursor");
}

/** True when a session sorts after the cursor (updated_at desc, key asc). */
export function isAfterCursor(s: SessionCursor, c: SessionCursor): boolean {
  return s.updated_at < c.updated_at || (s.updated_at === c.updated_at && s.key > c.key);
}
