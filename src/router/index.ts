/**
 * The router capability: config bindings → agent + session key (SPEC §8). A leaf: it imports only
 * `src/lib/`, `src/core/` and types from `src/config/`.
 */
export { createRouter } from "./router.ts";
export { parseSessionKey, personKey, type SessionKeyParts, sessionKey } from "../core/index.ts";
export type { Binding, InboundAddress, MatchedBy, Route, Router, Selector } from "./types.ts";
