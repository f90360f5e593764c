/**
 * Binding resolution (SPEC §8): tiers peer > guild > team > account > channel > default; within a
 * tier the first matching binding in config order wins. Each tier is a map from its selector's
 * value to the bindings of that tier holding it, in config order, so a resolve looks at only the
 * bindings that share the address's value — never a scan of the whole table.
 */
import { ConfigError } from "../lib/errors.ts";
import { type InboundAddress, sessionKey } from "../core/index.ts";
import { type Binding, type MatchedBy, type Route, type Router, type Selector, SELECTORS } from "./types.ts";

/** A binding copied out of config, so later mutation of the caller's objects cannot reach the router. */
interface Entry {
  agent: string;
  channel: string | undefined;
  account: string | undefined;
  team: string | undefined;
  guild: string | undefined;
  peer: string | undefined;
}

interface Tier {
  selector: Selector;
  matchedBy: MatchedBy;
  byValue: Map<string, Entry[]>;
}

/** Selectors the tier's own index already checked are re-checked too: cheaper than branching. */
function matches(e: Entry, a: InboundAddress): boolean {
  return (
    (e.channel === undefined || e.channel === a.channel) &&
    (e.account === undefined || e.account === a.account) &&
    (e.team === undefined || e.team === a.team) &&
    (e.guild === undefined || e.guild === a.guild) &&
    (e.peer === undefined || e.peer === a.peer)
  );
}

/**
 * Builds an immutable router from config bindings (in config order) and the default agent's id.
 * The router keeps its own copy of the bindings. Throws `ConfigError` for a binding with no
 * selector (config validation already rejects those; this guards other callers against a
 * binding that would silently never match).
 */
export function createRouter(bindings: readonly Binding[], defaultAgent: string): Router {
  const tiers: Tier[] = SELECTORS.map((selector) => ({
    selector,
    matchedBy: `binding.${selector}`,
    byValue: new Map(),
  }));
  bindings.forEach((b, i) => {
    const entry: Entry = {
      agent: b.agent,
      channel: b.channel,
      account: b.account,
      team: b.team,
      guild: b.guild,
      peer: b.peer,
    };
    const tier = tiers.find((t) => entry[t.selector] !== undefined);
    if (tier === undefined)
      throw new ConfigError(`bindings[${i}] (agent ${b.agent}) needs at least one of ${SELECTORS.join(", ")}`);
    const value = entry[tier.selector]!;
    const list = tier.byValue.get(value);
    if (list === undefined) tier.byValue.set(value, [entry]);
    else list.push(entry);
  });
  const size = bindings.length;

  function resolve(addr: InboundAddress): Route {
    for (const tier of tiers) {
      const value = addr[tier.selector];
      if (value === undefined) continue;
      const candidates = tier.byValue.get(value);
      if (candidates === undefined) continue;
      for (const e of candidates) {
        if (matches(e, addr)) return { agent: e.agent, session: sessionKey(e.agent, addr), matched_by: tier.matchedBy };
      }
    }
    return { agent: defaultAgent, session: sessionKey(defaultAgent, addr), matched_by: "default" };
  }

  return Object.freeze({ resolve, size });
}
