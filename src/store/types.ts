/**
 * The Store: everything exoclaw persists, as the composition of its ports — each an interface in
 * its own file with its own contract suite (tests/store/contract/<port>.ts), so another engine (the
 * NATS store of a later issue) can implement each with its own strengths:
 * - conversations (sessions and messages): ./conversations.ts
 * - the usage ledger: ./usage-ledger.ts
 * - facts (semantic memory): ./facts.ts
 * - the inbox/outbox of channel messages: ./inbox.ts
 * - pairings (who may talk on a channel): ./pairings.ts
 * - plugin state: ./plugin-state.ts
 * - approvals (tool calls that waited for the operator, remembered decisions): ./approvals.ts
 * - session leases (turn order across gateway workers): ./session-leases.ts
 *
 * Callers that need one concern take its port; the composition root opens one Store for all.
 * Every method may reject with StoreError; a failed write changes nothing (all-or-nothing).
 */
import type { ApprovalStore } from "./approvals.ts";
import type { ConversationStore } from "./conversations.ts";
import type { FactStore } from "./facts.ts";
import type { InboxStore } from "./inbox.ts";
import type { PairingStore } from "./pairings.ts";
import type { PluginStateStore } from "./plugin-state.ts";
import type { SessionLeases } from "./session-leases.ts";
import type { UsageLedger } from "./usage-ledger.ts";

export type * from "./approvals.ts";
export type * from "./conversations.ts";
export type * from "./facts.ts";
export type * from "./inbox.ts";
export type * from "./pairings.ts";
export type * from "./plugin-state.ts";
export type * from "./session-leases.ts";
export type * from "./usage-ledger.ts";

export interface Store
  extends ConversationStore,
    UsageLedger,
    PluginStateStore,
    InboxStore,
    PairingStore,
    FactStore,
    ApprovalStore,
    SessionLeases {
  readonly kind: "memory" | "sqlite" | "nats";
  /** Human-readable location (file path, "memory"). */
  readonly location: string;
  /** What the engine holds, briefly, for `status` (the nats store: its servers, streams and buckets). */
  describe?(): Promise<StoreDetails>;
  close(): Promise<void>;
}

/** A store's engine details for `status`: the nats store's connection, streams and KV buckets. */
export interface StoreDetails {
  servers: string;
  connected: boolean;
  replicas: number;
  streams: { name: string; messages: number; bytes: number; subjects: number; replicas: number }[];
  /** Why the list is incomplete (the cluster did not answer in time). */
  error?: string;
}
