/**
 * The default Store: one SQLite file (bun:sqlite) in WAL mode with synchronous=NORMAL, prepared
 * statements, and a transaction wherever several rows change together. Opening checks the file
 * before anything is trusted: a corrupt file, a read-only file or a schema from a newer exoclaw is
 * a StoreError at start, never silent data loss.
 *
 * One Database serves every port; each port's code is its own file under ./sqlite/, and appends and
 * usage rows share the group commit (./sqlite/commit.ts).
 */
import { Database } from "bun:sqlite";
import { mkdirSync } from "node:fs";
import { dirname } from "node:path";
import { isExoError } from "../lib/errors.ts";
import { migrate } from "./migrations.ts";
import { sqliteApprovals } from "./sqlite/approvals.ts";
import { groupCommit } from "./sqlite/commit.ts";
import { explain, sqliteContext } from "./sqlite/context.ts";
import { appendRows, sqliteConversations } from "./sqlite/conversations.ts";
import { sqliteFacts } from "./sqlite/facts.ts";
import { sqliteInbox } from "./sqlite/inbox.ts";
import { sqliteLeases } from "./sqlite/leases.ts";
import { sqlitePairings } from "./sqlite/pairings.ts";
import { sqlitePluginState } from "./sqlite/plugin-state.ts";
import { sqliteUsageLedger, usageWriter } from "./sqlite/usage.ts";
import type { Store } from "./types.ts";

export { explain } from "./sqlite/context.ts";

export interface SqliteStoreOptions {
  now?: () => number;
  /** Upper bound on the database size in pages (4 KiB each); writes beyond it fail as "full". */
  maxPageCount?: number;
}

/** Opens (creating if needed) and migrates the database at `path`. Throws StoreError. */
export function openSqliteStore(path: string, opts: SqliteStoreOptions = {}): Store {
  const now = opts.now ?? Date.now;
  let db: Database;
  try {
    if (path !== ":memory:") mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
    db = new Database(path, { create: true, strict: true });
  } catch (e) {
    throw explain(path, e, "open the database");
  }
  try {
    db.exec("PRAGMA busy_timeout = 5000");
    db.exec("PRAGMA journal_mode = WAL");
    db.exec("PRAGMA synchronous = NORMAL");
    db.exec("PRAGMA foreign_keys = ON");
    if (opts.maxPageCount !== undefined) db.exec(`PRAGMA max_page_count = ${Math.floor(opts.maxPageCount)}`);
    // A write transaction proves the file is writable even when no migration is due.
    migrate(db, path);
  } catch (e) {
    db.close();
    throw isExoError(e) ? e : explain(path, e, "open the database");
  }

  const ctx = sqliteContext(db, path, now);
  const usage = usageWriter(ctx);
  const commit = groupCommit(ctx, appendRows(ctx), usage);
  return {
    kind: "sqlite",
    location: path,
    ...sqliteConversations(ctx, commit),
    ...sqliteUsageLedger(ctx, commit, usage),
    ...sqlitePluginState(ctx),
    ...sqliteInbox(ctx),
    ...sqliteLeases(ctx),
    ...sqlitePairings(ctx),
    ...sqliteFacts(ctx),
    ...sqliteApprovals(ctx),
    async close() {
      commit.flush();
      db.close();
    },
  };
}
