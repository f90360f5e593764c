/**
 * What every SQLite port shares: the one Database, its path (for error messages), the clock, a
 * statement builder, and `run`, which maps a failure of a synchronous step to a StoreError.
 */
import type { Database, Statement } from "bun:sqlite";
import { describeError, isExoError } from "../../lib/errors.ts";
import { StoreError } from "../errors.ts";

export type Bind = string | number | null;

export interface SqliteContext {
  readonly db: Database;
  readonly path: string;
  readonly now: () => number;
  /** A cached prepared statement. */
  q<R = unknown>(sql: string): Statement<R, Bind[]>;
  /** Runs a synchronous database step, mapping failures to StoreError. */
  run<T>(doing: string, fn: () => T): Promise<T>;
}

export function sqliteContext(db: Database, path: string, now: () => number): SqliteContext {
  return {
    db,
    path,
    now,
    q: <R = unknown>(sql: string) => db.query<R, Bind[]>(sql),
    run<T>(doing: string, fn: () => T): Promise<T> {
      try {
        return Promise.resolve(fn());
      } catch (e) {
        return Promise.reject(isExoError(e) ? e : explain(path, e, doing));
      }
    },
  };
}

/** Turns a SQLite failure into a StoreError a user can act on. */
export function explain(path: string, e: unknown, doing: string): StoreError {
  const code = (e as { code?: string }).code ?? "";
  const msg = describeError(e);
  if (code === "SQLITE_NOTADB" || code === "SQLITE_CORRUPT" || /not a database|malformed/i.test(msg)) {
    return new StoreError(`${path} is not a readable exoclaw database (corrupt?): move it aside or restore a backup`, {
      cause: e,
    });
  }
  if (code.startsWith("SQLITE_READONLY") || /readonly|read-only/i.test(msg)) {
    return new StoreError(
      `${path} is read-only: exoclaw needs to write its database (check file and directory permissions)`,
      { cause: e },
    );
  }
  if (code === "SQLITE_FULL" || /full/i.test(msg)) {
    return new StoreError(`cannot ${doing}: the database or disk is full (${path}); nothing was written`, { cause: e });
  }
  if (code.startsWith("SQLITE_IOERR") || /disk I\/O error/i.test(msg)) {
    // A file made immutable (chattr +i) or a failing disk at run time (tests/faults/store.test.ts).
    return new StoreError(
      `cannot ${doing}: writing ${path} failed (disk I/O error: is the file immutable, or the disk read-only or failing?); nothing was written`,
      { cause: e },
    );
  }
  if (code.startsWith("SQLITE_CANTOPEN")) {
    return new StoreError(`cannot open ${path}: check that the directory exists and is writable`, { cause: e });
  }
  if (code.startsWith("SQLITE_BUSY")) {
    return new StoreError(`cannot ${doing}: ${path} is locked by another process`, { cause: e });
  }
  return new StoreError(`cannot ${doing} (${path}): ${msg}`, { cause: e });
}
