/**
 * Schema migrations, numbered by SQLite's `user_version`. Each runs in one transaction with the
 * version bump, so a crash mid-migration leaves the previous version intact. Append only: never
 * edit a migration that has shipped.
 */
import type { Database } from "bun:sqlite";
import { StoreError } from "./errors.ts";

export const MIGRATIONS: readonly string[] = [
  // 1: sessions and their messages
  `CREATE TABLE sessions (
     key TEXT PRIMARY KEY, agent TEXT NOT NULL, channel TEXT NOT NULL, account TEXT NOT NULL,
     peer TEXT, thread TEXT, created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL,
     message_count INTEGER NOT NULL DEFAULT 0
   );
   CREATE INDEX sessions_by_update ON sessions (updated_at DESC, key);
   CREATE INDEX sessions_by_agent ON sessions (agent, updated_at DESC);
   CREATE TABLE messages (
     session TEXT NOT NULL, seq INTEGER NOT NULL, role TEXT NOT NULL, content TEXT NOT NULL,
     created_at INTEGER NOT NULL, PRIMARY KEY (session, seq)
   ) WITHOUT ROWID;`,
  // 2: usage records, plugin state, accepted inbound messages
  `CREATE TABLE usage (
     id INTEGER PRIMARY KEY, at INTEGER NOT NULL, session TEXT, agent TEXT NOT NULL,
     provider TEXT NOT NULL, model TEXT NOT NULL, input_tokens INTEGER NOT NULL,
     output_tokens INTEGER NOT NULL, cost_usd REAL
   );
   CREATE INDEX usage_by_time ON usage (at);
   CREATE INDEX usage_by_session ON usage (session, at);
   CREATE TABLE plugin_kv (plugin TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL, PRIMARY KEY (plugin, key)) WITHOUT ROWID;
   CREATE TABLE inbound (
     id TEXT PRIMARY KEY, channel TEXT NOT NULL, payload TEXT NOT NULL, received_at INTEGER NOT NULL,
     attempts INTEGER NOT NULL DEFAULT 0, last_error TEXT, done INTEGER NOT NULL DEFAULT 0
   );
   CREATE INDEX inbound_pending ON inbound (done, received_at);`,
  // 3: semantic memory — facts per agent and person, full-text indexed (FTS5, BM25 ranking)
  `CREATE TABLE facts (
     id INTEGER PRIMARY KEY, agent TEXT NOT NULL, person TEXT NOT NULL, text TEXT NOT NULL,
     created_at INTEGER NOT NULL, UNIQUE (agent, person, text)
   );
   CREATE VIRTUAL TABLE facts_fts USING fts5(text, content='facts', content_rowid='id');
   CREATE TRIGGER facts_ai AFTER INSERT ON facts BEGIN INSERT INTO facts_fts(rowid, text) VALUES (new.id, new.text); END;
   CREATE TRIGGER facts_ad AFTER DELETE ON facts BEGIN INSERT INTO facts_fts(facts_fts, rowid, text) VALUES ('delete', old.id, old.text); END;`,
  // 4: write-ahead usage (a row per call before the call, settled after) and per-person budgets.
  // No index on `call`: the store settles a row by its rowid (an index cost a page per commit).
  `ALTER TABLE usage ADD COLUMN call TEXT;
   ALTER TABLE usage ADD COLUMN person TEXT;
   ALTER TABLE usage ADD COLUMN status TEXT NOT NULL DEFAULT 'final';
   CREATE INDEX usage_by_person ON usage (person, at) WHERE person IS NOT NULL;`,
  // 5: the outbox — a turn's reply is stored before it is sent, so a failed send is retried
  // without running the turn again
  `ALTER TABLE inbound ADD COLUMN reply TEXT;`,
  // 6: who may talk — pairing codes asked for and people the operator approved, per channel
  `CREATE TABLE pairings (
     person TEXT PRIMARY KEY, channel TEXT NOT NULL, status TEXT NOT NULL, code TEXT,
     created_at INTEGER NOT NULL, expires_at INTEGER, notified_at INTEGER, approved_at INTEGER
   );
   CREATE UNIQUE INDEX pairings_by_code ON pairings (code) WHERE code IS NOT NULL;
   CREATE INDEX pairings_by_channel ON pairings (channel, created_at);`,
  // 7: delivery backoff and the dead-letter inbox — each pending message has its own next attempt
  // time; a dead-lettered one waits for the operator. Messages the old flat retry had given up on
  // (5 attempts) are dead-lettered.
  `ALTER TABLE inbound ADD COLUMN next_at INTEGER NOT NULL DEFAULT 0;
   ALTER TABLE inbound ADD COLUMN dead_at INTEGER;
   UPDATE inbound SET dead_at = received_at WHERE done = 0 AND attempts >= 5;
   CREATE INDEX inbound_due ON inbound (next_at) WHERE done = 0 AND dead_at IS NULL;`,
  // 8: approvals (issue 16) — tool calls that waited for the operator and what was decided, and the
  // decisions remembered per agent and tool
  `CREATE TABLE approvals (
     id TEXT PRIMARY KEY, session TEXT NOT NULL, agent TEXT NOT NULL, tool TEXT NOT NULL, input TEXT NOT NULL,
     why TEXT NOT NULL, state TEXT NOT NULL, created_at INTEGER NOT NULL, expires_at INTEGER NOT NULL,
     decided_at INTEGER, decided_by TEXT, remember INTEGER NOT NULL DEFAULT 0
   );
   CREATE INDEX approvals_pending ON approvals (created_at) WHERE state = 'pending';
   CREATE INDEX approvals_by_session ON approvals (session, created_at);
   CREATE TABLE approval_rules (
     agent TEXT NOT NULL, tool TEXT NOT NULL, allow INTEGER NOT NULL, created_at INTEGER NOT NULL,
     PRIMARY KEY (agent, tool)
   );`,
  // 9: several gateway workers on one file (issue 13) — a session version bumped by every append (a
  // worker's history cache is re-read when another wrote the session), per-session turn leases with
  // a fencing token that only grows (the row stays after release, so the token is never reused), and
  // a claim on a stored channel message, so one worker delivers it.
  `ALTER TABLE sessions ADD COLUMN version INTEGER NOT NULL DEFAULT 0;
   ALTER TABLE inbound ADD COLUMN claimed_by TEXT;
   ALTER TABLE inbound ADD COLUMN claimed_until INTEGER NOT NULL DEFAULT 0;
   CREATE TABLE session_leases (
     session TEXT PRIMARY KEY, holder TEXT NOT NULL, token INTEGER NOT NULL, expires_at INTEGER NOT NULL
   ) WITHOUT ROWID;`,
];

export const SCHEMA_VERSION = MIGRATIONS.length;

/** Brings the database to SCHEMA_VERSION; refuses a database from a newer exoclaw. */
export function migrate(db: Database, path: string, target = SCHEMA_VERSION): void {
  db.transaction(() => {
    // Taking the write lock first proves the file is writable, even when nothing is due.
    db.exec("CREATE TABLE IF NOT EXISTS _exoclaw_probe (x); DROP TABLE _exoclaw_probe;");
    const current = (db.query("PRAGMA user_version").get() as { user_version: number }).user_version;
    if (current > SCHEMA_VERSION) {
      throw new StoreError(
        `${path} has schema version ${current}, newer than this exoclaw supports (${SCHEMA_VERSION}): upgrade exoclaw or use another state directory`,
      );
    }
    for (let v = current; v < target; v++) {
      db.exec(MIGRATIONS[v]!);
      db.exec(`PRAGMA user_version = ${v + 1}`);
    }
  }).immediate();
}
