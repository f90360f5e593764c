/**
 * The Store contract: the composition of the port contracts (tests/store/contract/<port>.ts), run by
 * every full Store implementation (memory, sqlite). An engine that implements the ports separately
 * (the NATS store of a later issue) runs each port's contract against its own implementation.
 */
import type { Store } from "../../src/store/index.ts";
import { approvalsContract } from "./contract/approvals.ts";
import { conversationsContract } from "./contract/conversations.ts";
import { factsContract } from "./contract/facts.ts";
import type { MakeHarness, PortHarness } from "./contract/harness.ts";
import { inboxContract } from "./contract/inbox.ts";
import { pairingsContract } from "./contract/pairings.ts";
import { pluginStateContract } from "./contract/plugin-state.ts";
import { sessionLeasesContract } from "./contract/session-leases.ts";
import { usageLedgerContract } from "./contract/usage-ledger.ts";

export { addr } from "./contract/harness.ts";
export type StoreHarness = PortHarness<Store>;
export type MakeStore = MakeHarness<Store>;

export function storeContract(name: string, make: MakeStore): void {
  conversationsContract(name, make);
  usageLedgerContract(name, make);
  pluginStateContract(name, make);
  factsContract(name, make);
  inboxContract(name, make);
  pairingsContract(name, make);
  approvalsContract(name, make);
  sessionLeasesContract(name, make);
}
