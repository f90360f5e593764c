/**
 * The router capability: config bindings → agent + session key (SPEC §8). A leaf: it imports only
 * `src/lib/`, `src/core/` and types from `src/config/`.
 */
export { createRouter } from "./router.ts";
export type { Binding, MatchedBy, Route, Router, Selector } from "./types.ts";
