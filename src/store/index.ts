/** The store capability: the Store (the composition of its ports, ./types.ts) and its implementations. */
import type { NatsStore, NatsStoreOptions } from "./nats.ts";

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
export type { NatsStore, NatsStoreInfo, NatsStoreOptions } from "./nats.ts";
export { openSqliteStore, type SqliteStoreOptions } from "./sqlite.ts";
export type * from "./types.ts";

/**
 * The NATS store (./nats.ts), its client loaded at the first call: a gateway on another store never
 * evaluates the NATS client (start-up time and memory).
 */
export async function openNatsStore(opts: NatsStoreOptions): Promise<NatsStore> {
  const { openNatsStore: open } = await import("./nats.ts");
  return open(opts);
}
export { searchWords } from "./words.ts";
