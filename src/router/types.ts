/**
 * The router's vocabulary: where a message came from, which binding claimed it, and the route
 * that names the agent and session to run it in (SPEC §8).
 */
import type { ConfigFile } from "../config/index.ts";
import type { InboundAddress } from "../core/index.ts";

/** One `bindings` entry of the config file: an agent and at least one selector (validated by config). */
export type Binding = ConfigFile["bindings"][number];

/** A binding selector, most specific first in {@link SELECTORS}. */
export type Selector = "peer" | "guild" | "team" | "account" | "channel";

/** Tiers in resolution order: a binding's tier is the first of these it names. */
export const SELECTORS: readonly Selector[] = Object.freeze(["peer", "guild", "team", "account", "channel"]);

/** Which tier produced a route; `default` when no binding matched. */
export type MatchedBy =
  | "binding.peer"
  | "binding.guild"
  | "binding.team"
  | "binding.account"
  | "binding.channel"
  | "default";

/** The outcome of routing one message. */
export interface Route {
  agent: string;
  /** The session key, see `sessionKey`. */
  session: string;
  matched_by: MatchedBy;
}

/** An immutable binding table. Reloading config means building a new router and swapping it in. */
export interface Router {
  /** Never throws: an address no binding claims goes to the default agent. */
  resolve(addr: InboundAddress): Route;
  /** How many bindings the router was built from. */
  readonly size: number;
}
