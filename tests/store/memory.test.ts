/**
 * The memory store against the Store contract, and each of its ports on its own against that port's
 * contract (no port leans on another's state, except the reply saved with a turn's history).
 */
import {
  createMemoryStore,
  memoryApprovals,
  memoryConversations,
  memoryFacts,
  memoryInbox,
  memoryLeases,
  memoryPairings,
  memoryPluginState,
  memoryUsageLedger,
} from "../../src/store/index.ts";
import { storeContract } from "./contract.ts";
import { approvalsContract } from "./contract/approvals.ts";
import { conversationsContract } from "./contract/conversations.ts";
import { factsContract } from "./contract/facts.ts";
import { inboxContract } from "./contract/inbox.ts";
import { pairingsContract } from "./contract/pairings.ts";
import { pluginStateContract } from "./contract/plugin-state.ts";
import { sessionLeasesContract } from "./contract/session-leases.ts";
import { usageLedgerContract } from "./contract/usage-ledger.ts";

storeContract("memory", async () => {
  let t = 1_700_000_000_000;
  const store = createMemoryStore({ now: () => t });
  return { store, tick: (ms = 1000) => void (t += ms), [Symbol.asyncDispose]: () => store.close() };
});

/** A harness around one port built alone, with its own clock. */
function alone<P>(build: (now: () => number) => P) {
  return async () => {
    let t = 1_700_000_000_000;
    return { store: build(() => t), tick: (ms = 1000) => void (t += ms), [Symbol.asyncDispose]: async () => {} };
  };
}

conversationsContract(
  "memory port alone",
  alone((now) => memoryConversations(now, new Map())),
);
usageLedgerContract(
  "memory port alone",
  alone(() => memoryUsageLedger()),
);
pluginStateContract(
  "memory port alone",
  alone(() => memoryPluginState()),
);
factsContract(
  "memory port alone",
  alone((now) => memoryFacts(now)),
);
pairingsContract(
  "memory port alone",
  alone(() => memoryPairings()),
);
approvalsContract(
  "memory port alone",
  alone(() => memoryApprovals()),
);
sessionLeasesContract(
  "memory ports alone",
  alone((now) => {
    const leases = new Map();
    return { ...memoryConversations(now, new Map(), leases), ...memoryLeases(now, leases) };
  }),
);
inboxContract(
  "memory ports alone",
  alone((now) => {
    const inbound = new Map();
    return { ...memoryConversations(now, inbound), ...memoryInbox(inbound, now) };
  }),
);
