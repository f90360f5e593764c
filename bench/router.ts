/**
 * Router benchmark: resolves per second with 100 / 1,000 / 10,000 bindings, beside a linear scan that
 * walks the bindings once (a single pass keeping the best tier so far), windows interleaved. Compare the ratio, not absolute times.
 *
 *   bun bench/router.ts [--seconds 1] [--reps 5] [--smoke]
 *
 * Bindings are a realistic mix: ~85% channel+peer on three channels, then guild, team, account and
 * bare-channel bindings. Addresses mostly come from bound peers, the rest fall through to lower
 * tiers or the default. Both resolvers build the session key, so the ratio is routing alone.
 */
import { type InboundAddress, sessionKey } from "../src/core/index.ts";
import {
  benchArgs,
  int,
  interleave,
  num,
  pairRatios,
  printHeader,
  ratio,
  runBench,
  spread,
  step,
  summarize,
  table,
} from "./_lib.ts";
import { type Binding, createRouter, type MatchedBy, type Route } from "../src/router/index.ts";

const SELECTORS = ["peer", "guild", "team", "account", "channel"] as const;
const CHANNELS = ["telegram", "discord", "slack"];

const args = benchArgs("router", { seconds: { type: "string" } }, 600);
const { smoke, reps } = args;
const SECONDS = num(args.values.seconds, 1, smoke, 0.05);
const SIZES = [100, 1_000, 10_000];
const ADDRESSES = smoke ? 512 : 4096;

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
        ? {
            channel: b.channel ?? "slack",
            account: b.account ?? `a${rand(60)}`,
            peer: b.peer ?? `x${rand(1e6)}`,
            ...(b.guild ? { guild: b.guild } : {}),
            ...(b.team ? { team: b.team } : {}),
          }
        : { channel: CHANNELS[rand(3)]!, account: `a${rand(60)}`, peer: `x${rand(1e6)}` };
    if (rand(10) === 0) addr.thread = `th${rand(1000)}`;
    out.push(addr);
  }
  return out;
}

/**
 * The linear baseline: one pass over the bindings in config order, keeping the best tier matched so
 * far (peer > guild > team > account > channel; the first match within a tier wins), stopping early
 * at a peer match — what a careful implementation without an index does.
 */
function createLinearResolver(bindings: readonly Binding[], defaultAgent: string): (addr: InboundAddress) => Route {
  const tiered = bindings.map((b) => ({ b, rank: SELECTORS.findIndex((s) => b[s] !== undefined) }));
  return (addr) => {
    let best: { b: Binding; rank: number } | undefined;
    for (const t of tiered) {
      if (best !== undefined && t.rank >= best.rank) continue;
      const b = t.b;
      if (
        (b.channel === undefined || b.channel === addr.channel) &&
        (b.account === undefined || b.account === addr.account) &&
        (b.team === undefined || b.team === addr.team) &&
        (b.guild === undefined || b.guild === addr.guild) &&
        (b.peer === undefined || b.peer === addr.peer)
      ) {
        best = t;
        if (t.rank === 0) break;
      }
    }
    if (best === undefined)
      return { agent: defaultAgent, session: sessionKey(defaultAgent, addr), matched_by: "default" };
    return {
      agent: best.b.agent,
      session: sessionKey(best.b.agent, addr),
      matched_by: `binding.${SELECTORS[best.rank]!}` as MatchedBy,
    };
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

await runBench("router", async () => {
  printHeader("router", args, `${SIZES.join(" / ")} bindings, ${ADDRESSES} addresses, ${SECONDS} s per window`);
  const rows: string[][] = [];
  for (const n of SIZES) {
    const rand = rng(n);
    const bindings = makeBindings(n, rand);
    const addrs = makeAddresses(bindings, ADDRESSES, rand);
    const router = createRouter(bindings, "main");
    const linear = createLinearResolver(bindings, "main");
    const tally = new Map<MatchedBy, number>();
    for (const a of addrs) {
      const got = router.resolve(a);
      const want = linear(a);
      if (got.agent !== want.agent || got.session !== want.session || got.matched_by !== want.matched_by) {
        throw new Error(
          `router and linear scan disagree on ${JSON.stringify(a)}: ${JSON.stringify(got)} vs ${JSON.stringify(want)}`,
        );
      }
      tally.set(got.matched_by, (tally.get(got.matched_by) ?? 0) + 1);
    }
    const r = await step(`${n} bindings`, 60_000 + reps * SECONDS * 2 * 3000, () =>
      interleave(reps, {
        indexed: async () => measure(router.resolve, addrs, SECONDS),
        linear: async () => measure(linear, addrs, SECONDS),
      }),
    );
    const order: MatchedBy[] = [
      "binding.peer",
      "binding.guild",
      "binding.team",
      "binding.account",
      "binding.channel",
      "default",
    ];
    const mix = order
      .map((k) => `${k.replace("binding.", "")} ${Math.round((100 * (tally.get(k) ?? 0)) / addrs.length)}%`)
      .join(", ");
    const ix = summarize(r.indexed);
    const ln = summarize(r.linear);
    rows.push([
      int(n),
      spread(ix, int),
      (1e9 / ix.median).toFixed(0),
      spread(ln, int),
      (1e9 / ln.median).toFixed(0),
      spread(summarize(pairRatios(r.indexed, r.linear)), ratio),
      mix,
    ]);
  }
  table(
    [
      `bindings`,
      `indexed resolves/s, median (min–max) of ${reps}`,
      "ns/resolve",
      "linear scan (one pass) resolves/s",
      "ns/resolve",
      "per-pair speed-up",
      "matched by",
    ],
    rows,
  );
});
