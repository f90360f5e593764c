export { createLocalBus } from "./local.ts";
export { createNatsBus, type NatsBusOptions } from "./nats.ts";
export { inboundSubject, subjectMatches, subjectToken } from "./subject.ts";
export type { Bus, BusMessage } from "./types.ts";
