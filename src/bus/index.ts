/** The bus capability (SPEC §12): in-process or NATS core, and the reloadable bus the gateway holds. */
export { createLocalBus } from "./local.ts";
export { createNatsBus, type NatsBusOptions } from "./nats.ts";
export { inboundSubject, subjectMatches, subjectToken } from "./subject.ts";
export type { Bus, BusMessage } from "./types.ts";
export { createReloadableBus, type ReloadableBus } from "./reloadable.ts";
