/** The store capability: the Store (the composition of its ports, ./types.ts) and its implementations. */
export { StoreError } from "./errors.ts";
export {
  createMemoryStore,
  memoryApprovals,
  memoryConversations,
  memoryFacts,
  memoryInbox,
  memoryLeases,
  memoryPairings,
  memoryPluginState,
  memoryUsageLedger,
} from "./memory.ts";
export { MIGRATIONS, SCHEMA_VERSION } from "./migrations.ts";
export { openNatsStore, type NatsStore, type NatsStoreInfo, type NatsStoreOptions } from "./nats.ts";
export { openSqliteStore, type SqliteStoreOptions } from "./sqlite.ts";
export type * from "./types.ts";
export { searchWords } from "./words.ts";
