/**
 * Router benchmark: resolves per second with 100 / 1,000 / 10,000 bindings, beside a naive resolver
 * that scans every binding once per tier. Compare the ratio, not absolute times.
 *
 *   bun bench/router.ts
 *
 * Bindings are a realistic mix: ~85% channel+peer on three channels, then guild, team, account and
 * bare-channel bindings. Addresses mostly come from bound peers, the rest fall through to lower
 * tiers or the default. Both resolvers build the session key, so the ratio is routing alone.
 */
import { type Binding, createRouter, type InboundAddress, type MatchedBy, type Route, sessionKey } from "../src/router/index.ts";

const SELECTORS = ["peer", "guild", "team", "account", "channel"] as const;
const CHANNELS = ["telegram", "discord", "slack"];
const SECONDS_PER_RUN = 1;

// mulberry32: seeded, so every run routes the same workload.
function rng(seed: number) {
  return (n: number) => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), seed | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((((t ^ (t >>> 14)) >>> 0) / 2 ** 32) * n) | 0;
  };
}

function makeBindings(n: number, rand: (n: number) => number): Binding[] {
  const out: Binding[] = [];
  for (let i = 0; i < n; i++) {
    const channel = CHANNELS[rand(3)]!;
    const kind = rand(100);
    if (kind < 85) out.push({ agent: `peer-${i}`, channel, peer: `u${i}` });
    else if (kind < 91) out.push({ agent: `guild-${i}`, channel, guild: `g${i}` });
    else if (kind < 95) out.push({ agent: `team-${i}`, channel: "slack", team: `t${i}` });
    else if (kind < 99) out.push({ agent: `account-${i}`, channel, account: `a${i % 50}` });
    else out.push({ agent: `channel-${i}`, channel: `c${i}` });
  }
  return out;
}

function makeAddresses(bindings: readonly Binding[], count: number, rand: (n: number) => number): InboundAddress[] {
  const out: InboundAddress[] = [];
  for (let i = 0; i < count; i++) {
    const b = bindings[rand(bindings.length)]!;
    const roll = rand(100);
    // 70% a bound peer or guild/team member; the rest an unknown peer in a DM (account, channel or default).
    const addr: InboundAddress =
      roll < 70
        ? { channel: b.channel ?? "slack", account: b.account ?? `a${rand(60)}`, peer: b.peer ?? `x${rand(1e6)}`, ...(b.guild ? { guild: b.guild } : {}), ...(b.team ? { team: b.team } : {}) }
        : { channel: CHANNELS[rand(3)]!, account: `a${rand(60)}`, peer: `x${rand(1e6)}` };
    if (rand(10) === 0) addr.thread = `th${rand(1000)}`;
    out.push(addr);
  }
  return out;
}

/** What a first implementation would do: for each tier, walk every binding in config order. */
function createNaiveResolver(bindings: readonly Binding[], defaultAgent: string): (addr: InboundAddress) => Route {
  const tiered = bindings.map((b) => ({ b, tier: SELECTORS.find((s) => b[s] !== undefined)! }));
  return (addr) => {
    for (const tier of SELECTORS) {
      for (const { b, tier: t } of tiered) {
        if (t !== tier) continue;
        if (
          (b.channel === undefined || b.channel === addr.channel) &&
          (b.account === undefined || b.account === addr.account) &&
          (b.team === undefined || b.team === addr.team) &&
          (b.guild === undefined || b.guild === addr.guild) &&
          (b.peer === undefined || b.peer === addr.peer)
        ) {
          return { agent: b.agent, session: sessionKey(b.agent, addr), matched_by: `binding.${tier}` as MatchedBy };
        }
      }
    }
    return { agent: defaultAgent, session: sessionKey(defaultAgent, addr), matched_by: "default" };
  };
}

/** Resolves per second, running whole passes over `addrs` for about `seconds`. */
function measure(resolve: (addr: InboundAddress) => Route, addrs: readonly InboundAddress[], seconds: number): number {
  let sink = 0;
  const pass = () => {
    for (const a of addrs) sink += resolve(a).session.length;
  };
  const warmUntil = performance.now() + seconds * 200;
  while (performance.now() < warmUntil) pass();
  let ops = 0;
  const t0 = performance.now();
  let elapsed = 0;
  do {
    pass();
    ops += addrs.length;
    elapsed = performance.now() - t0;
  } while (elapsed < seconds * 1000);
  if (sink === 0) throw new Error("unreachable: keeps the work observable");
  return ops / (elapsed / 1000);
}

const fmt = (n: number) => Math.round(n).toLocaleString("en");
const rows: string[] = [];
for (const n of [100, 1_000, 10_000]) {
  const rand = rng(n);
  const bindings = makeBindings(n, rand);
  const addrs = makeAddresses(bindings, 4096, rand);
  const router = createRouter(bindings, "main");
  const naive = createNaiveResolver(bindings, "main");
  const tally = new Map<MatchedBy, number>();
  for (const a of addrs) {
    const got = router.resolve(a);
    const want = naive(a);
    if (got.agent !== want.agent || got.session !== want.session || got.matched_by !== want.matched_by) {
      throw new Error(`router and naive resolver disagree on ${JSON.stringify(a)}: ${JSON.stringify(got)} vs ${JSON.stringify(want)}`);
    }
    tally.set(got.matched_by, (tally.get(got.matched_by) ?? 0) + 1);
  }
  const indexed = measure(router.resolve, addrs, SECONDS_PER_RUN);
  const linear = measure(naive, addrs, SECONDS_PER_RUN);
  const order: MatchedBy[] = ["binding.peer", "binding.guild", "binding.team", "binding.account", "binding.channel", "default"];
  const mix = order.map((k) => `${k.replace("binding.", "")} ${Math.round((100 * (tally.get(k) ?? 0)) / addrs.length)}%`).join(", ");
  rows.push(`| ${fmt(n)} | ${fmt(indexed)} | ${(1e9 / indexed).toFixed(0)} | ${fmt(linear)} | ${(1e9 / linear).toFixed(0)} | ${(indexed / linear).toFixed(1)}× | ${mix} |`);
}
console.log("| bindings | indexed resolves/s | ns/resolve | linear-scan resolves/s | ns/resolve | speed-up | matched by |");
console.log("|---|---|---|---|---|---|---|");
for (const r of rows) console.log(r);
