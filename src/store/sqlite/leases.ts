/**
 * Session leases on SQLite: the `session_leases` table. Each statement is one atomic UPDATE/INSERT
 * under the database's write lock, so it holds across every process on the file; the row stays after
 * release (expires_at = 0), so a session's token only grows.
 */
import type { SessionLeases } from "../session-leases.ts";
import type { SqliteContext } from "./context.ts";

export function sqliteLeases(ctx: SqliteContext): SessionLeases {
  // Inserts the first lease, or takes over a free or expired one with the next token; no row back:
  // someone else holds it.
  const acquire = ctx.q<{ token: number }>(
    `INSERT INTO session_leases (session, holder, token, expires_at) VALUES (?1, ?2, 1, ?3)
     ON CONFLICT(session) DO UPDATE SET holder = excluded.holder, token = token + 1, expires_at = excluded.expires_at
     WHERE expires_at <= ?4
     RETURNING token`,
  );
  const renew = ctx.q("UPDATE session_leases SET expires_at = ? WHERE session = ? AND token = ?");
  const release = ctx.q("UPDATE session_leases SET expires_at = 0 WHERE session = ? AND token = ?");
  return {
    acquireLease: (session, holder, ttlMs) =>
      ctx.run("take a session lease", () => {
        const t = ctx.now();
        return acquire.get(session, holder, t + ttlMs, t)?.token ?? null;
      }),
    renewLease: (session, token, ttlMs) =>
      ctx.run("renew a session lease", () => renew.run(ctx.now() + ttlMs, session, token).changes === 1),
    releaseLease: (session, token) =>
      ctx.run("release a session lease", () => {
        release.run(session, token);
      }),
  };
}
