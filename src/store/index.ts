export { StoreError } from "./errors.ts";
export { createMemoryStore } from "./memory.ts";
export { MIGRATIONS, SCHEMA_VERSION } from "./migrations.ts";
export { openSqliteStore, type SqliteStoreOptions } from "./sqlite.ts";
export type * from "./types.ts";
export { searchWords } from "./words.ts";
export type * from "./approvals.ts";
