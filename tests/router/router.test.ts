import {
  type InboundAddress,
  parseSessionKey,
  personKey,
  sessionKey,
  type SessionKeyParts,
} from "../../src/core/index.ts";
import { describe, expect, test } from "bun:test";
import { ConfigError } from "../../src/lib/errors.ts";
import { type Binding, createRouter, type MatchedBy, type Selector } from "../../src/router/index.ts";

const TIERS: Selector[] = ["peer", "guild", "team", "account", "channel"];

/** An address carrying every selector, so a binding of any tier can match it. */
const full: InboundAddress = { channel: "telegram", account: "bot1", peer: "42", guild: "g1", team: "t1" };

/** A binding of exactly one selector, taking its value from `full`. */
const only = (sel: Selector, agent: string): Binding => ({ agent, [sel]: full[sel] });

describe("tier precedence", () => {
  // Every ordered pair (higher, lower), with the lower binding both before and after in config order,
  // so config order cannot be what decides.
  const cases = TIERS.flatMap((hi, i) =>
    TIERS.slice(i + 1).flatMap((lo) => [
      { hi, lo, order: "lower first" as const },
      { hi, lo, order: "higher first" as const },
    ]),
  );
  for (const { hi, lo, order } of cases) {
    test(`${hi} beats ${lo} (${order})`, () => {
      const high = only(hi, "high");
      const low = only(lo, "low");
      const router = createRouter(order === "lower first" ? [low, high] : [high, low], "fallback");
      expect(router.resolve(full)).toEqual({
        agent: "high",
        session: "high:telegram:bot1:42",
        matched_by: `binding.${hi}` as MatchedBy,
      });
    });
  }

  test("each tier matches on its own and reports itself", () => {
    for (const tier of TIERS) {
      expect(createRouter([only(tier, "a")], "fallback").resolve(full).matched_by).toBe(`binding.${tier}` as MatchedBy);
    }
  });

  test("a binding's tier is its most specific selector, not how many it names", () => {
    // {channel, account, team} is a team binding; a bare guild binding still outranks it.
    const router = createRouter(
      [
        { agent: "three", channel: "telegram", account: "bot1", team: "t1" },
        { agent: "guild", guild: "g1" },
      ],
      "fallback",
    );
    expect(router.resolve(full)).toMatchObject({ agent: "guild", matched_by: "binding.guild" });
    expect(router.resolve({ ...full, guild: "other" })).toMatchObject({ agent: "three", matched_by: "binding.team" });
  });
});

describe("ties within a tier go to config order", () => {
  const cases: { name: string; bindings: Binding[]; addr: InboundAddress; agent: string }[] = TIERS.map((tier) => ({
    name: `two ${tier} bindings`,
    bindings: [only(tier, "first"), only(tier, "second")],
    addr: full,
    agent: "first",
  }));
  cases.push(
    {
      name: "a less constrained binding earlier in the same tier wins",
      bindings: [
        { agent: "first", peer: "42" },
        { agent: "second", channel: "telegram", account: "bot1", peer: "42" },
      ],
      addr: full,
      agent: "first",
    },
    {
      name: "an earlier non-matching binding is skipped, not decisive",
      bindings: [
        { agent: "first", channel: "discord", peer: "42" },
        { agent: "second", channel: "telegram", peer: "42" },
        { agent: "third", peer: "42" },
      ],
      addr: full,
      agent: "second",
    },
  );
  for (const c of cases) {
    test(c.name, () => expect(createRouter(c.bindings, "fallback").resolve(c.addr).agent).toBe(c.agent));
  }
});

describe("a binding with several selectors needs all of them", () => {
  const cases: { binding: Omit<Binding, "agent">; addr: InboundAddress; hit: boolean }[] = [
    {
      binding: { channel: "telegram", peer: "42" },
      addr: { channel: "telegram", account: "bot1", peer: "42" },
      hit: true,
    },
    {
      binding: { channel: "telegram", peer: "42" },
      addr: { channel: "discord", account: "bot1", peer: "42" },
      hit: false,
    },
    {
      binding: { channel: "telegram", peer: "42" },
      addr: { channel: "telegram", account: "bot1", peer: "43" },
      hit: false,
    },
    { binding: { channel: "telegram", peer: "42" }, addr: { channel: "telegram", account: "bot1" }, hit: false },
    {
      binding: { account: "bot1", guild: "g1" },
      addr: { channel: "discord", account: "bot1", guild: "g1" },
      hit: true,
    },
    {
      binding: { account: "bot1", guild: "g1" },
      addr: { channel: "discord", account: "bot2", guild: "g1" },
      hit: false,
    },
    {
      binding: { team: "t1", peer: "u1" },
      addr: { channel: "slack", account: "a", team: "t2", peer: "u1" },
      hit: false,
    },
    { binding: { team: "t1", peer: "u1" }, addr: { channel: "slack", account: "a", peer: "u1" }, hit: false },
    { binding: { channel: "slack", account: "a" }, addr: { channel: "discord", account: "a" }, hit: false },
    {
      binding: { channel: "slack", account: "a", team: "t1", guild: "g", peer: "p" },
      addr: { channel: "slack", account: "a", team: "t1", guild: "g", peer: "p" },
      hit: true,
    },
    {
      binding: { channel: "slack", account: "a", team: "t1", guild: "g", peer: "p" },
      addr: { channel: "slack", account: "a", team: "t1", guild: "x", peer: "p" },
      hit: false,
    },
    // A selector with no channel matches that value on any channel.
    { binding: { peer: "42" }, addr: { channel: "whatsapp", account: "z", peer: "42" }, hit: true },
  ];
  for (const { binding, addr, hit } of cases) {
    test(`${JSON.stringify(binding)} ${hit ? "matches" : "does not match"} ${JSON.stringify(addr)}`, () => {
      const route = createRouter([{ agent: "bound", ...binding }], "fallback").resolve(addr);
      expect(route.agent).toBe(hit ? "bound" : "fallback");
      if (!hit) expect(route.matched_by).toBe("default");
    });
  }
});

describe("default fallback", () => {
  const cases: { name: string; bindings: Binding[]; addr: InboundAddress }[] = [
    { name: "no bindings at all", bindings: [], addr: full },
    {
      name: "bindings for other values",
      bindings: [
        { agent: "x", channel: "discord" },
        { agent: "y", peer: "43" },
        { agent: "z", account: "bot2" },
      ],
      addr: full,
    },
    {
      name: "a peer binding and an address without a peer",
      bindings: [{ agent: "x", peer: "42" }],
      addr: { channel: "telegram", account: "bot1" },
    },
    {
      name: "a guild binding and an address without a guild",
      bindings: [{ agent: "x", guild: "g1" }],
      addr: { channel: "telegram", account: "bot1", peer: "42" },
    },
    { name: "values differ only by case", bindings: [{ agent: "x", channel: "Telegram" }], addr: full },
  ];
  for (const c of cases) {
    test(c.name, () => {
      expect(createRouter(c.bindings, "fallback").resolve(c.addr)).toEqual({
        agent: "fallback",
        session: sessionKey("fallback", c.addr),
        matched_by: "default",
      });
    });
  }
  test("the default route carries the address's session", () => {
    expect(createRouter([], "main").resolve({ channel: "telegram", account: "bot1", peer: "12345" }).session).toBe(
      "main:telegram:bot1:12345",
    );
  });
});

describe("router object", () => {
  test("size counts the bindings", () => {
    expect(createRouter([], "d").size).toBe(0);
    expect(createRouter([only("peer", "a"), only("peer", "b"), only("channel", "c")], "d").size).toBe(3);
  });
  test("is unaffected by later changes to the bindings it was built from", () => {
    const binding: Binding = { agent: "a", peer: "42" };
    const bindings = [binding];
    const router = createRouter(bindings, "d");
    binding.agent = "changed";
    binding.peer = "43";
    bindings.push({ agent: "late", channel: "telegram" });
    expect(router.resolve(full)).toMatchObject({ agent: "a", matched_by: "binding.peer" });
    expect(router.size).toBe(1);
  });
  test("is frozen", () => {
    const router = createRouter([], "d");
    expect(Object.isFrozen(router)).toBe(true);
  });
  test("a binding with no selector is a ConfigError, not a binding that never matches", () => {
    const bad = [{ agent: "a", peer: "1" }, { agent: "b" }] as Binding[];
    expect(() => createRouter(bad, "d")).toThrow(ConfigError);
    expect(() => createRouter(bad, "d")).toThrow(/bindings\[1\]/);
  });
});

describe("session keys", () => {
  const cases: { name: string; agent: string; addr: InboundAddress; key: string }[] = [
    {
      name: "direct message",
      agent: "main",
      addr: { channel: "telegram", account: "bot1", peer: "12345" },
      key: "main:telegram:bot1:12345",
    },
    {
      name: "no peer is main",
      agent: "main",
      addr: { channel: "discord", account: "bot1", guild: "g" },
      key: "main:discord:bot1:main",
    },
    {
      name: "thread appends",
      agent: "ops",
      addr: { channel: "slack", account: "acme", peer: "U1", thread: "1700.01" },
      key: "ops:slack:acme:U1:1700.01",
    },
    {
      name: "thread without a peer",
      agent: "ops",
      addr: { channel: "slack", account: "acme", thread: "T9" },
      key: "ops:slack:acme:main:T9",
    },
    {
      name: "guild and team are not in the key",
      agent: "a",
      addr: { channel: "c", account: "x", peer: "p", guild: "g", team: "t" },
      key: "a:c:x:p",
    },
    {
      name: "':' is escaped",
      agent: "a",
      addr: { channel: "matrix", account: "@bot:hs.org", peer: "@u:hs.org" },
      key: "a:matrix:@bot%3Ahs.org:@u%3Ahs.org",
    },
    {
      name: "'%' is escaped",
      agent: "a",
      addr: { channel: "c", account: "100%", peer: "%3A" },
      key: "a:c:100%25:%253A",
    },
    {
      name: "a peer literally named main",
      agent: "main",
      addr: { channel: "c", account: "main", peer: "main" },
      key: "main:c:main:%6Dain",
    },
    {
      name: "a thread named main is not special",
      agent: "a",
      addr: { channel: "c", account: "x", thread: "main" },
      key: "a:c:x:main:main",
    },
    {
      name: "other characters are left alone",
      agent: "a",
      addr: { channel: "c", account: "x y/z", peer: "ünï+😀" },
      key: "a:c:x y/z:ünï+😀",
    },
    {
      name: "an empty thread is a thread",
      agent: "a",
      addr: { channel: "c", account: "x", peer: "p", thread: "" },
      key: "a:c:x:p:",
    },
  ];
  for (const c of cases) {
    test(c.name, () => expect(sessionKey(c.agent, c.addr)).toBe(c.key));
  }

  test("a thread gives a distinct session from its parent conversation", () => {
    const router = createRouter([{ agent: "a", peer: "42" }], "d");
    const parent = router.resolve(full).session;
    const thread = router.resolve({ ...full, thread: "t1" }).session;
    expect(parent).toBe("a:telegram:bot1:42");
    expect(thread).toBe("a:telegram:bot1:42:t1");
  });
});

describe("parseSessionKey", () => {
  const parts = (
    agent: string,
    channel: string,
    account: string,
    peer: string | null,
    thread: string | null,
  ): SessionKeyParts => ({ agent, channel, account, peer, thread });
  const roundTrips: SessionKeyParts[] = [
    parts("main", "telegram", "bot1", "12345", null),
    parts("main", "telegram", "bot1", null, null),
    parts("main", "telegram", "bot1", "main", null),
    parts("main", "telegram", "bot1", "%6Dain", null),
    parts("main", "main", "main", "main", "main"),
    parts("a", "matrix", "@bot:hs.org", "@u:hs.org", "$ev:hs.org"),
    parts("a", "c", "%", ":", "%:%3A::%%"),
    parts("a", "c", "%25", "%3A", "%6Dain"),
    parts("a", "", "", "", ""),
    parts("a", "c", "x", "", null),
    parts("a", "c", "x", null, ""),
    parts("a:b", "c%d", "ünï", "😀", "x y"),
  ];
  for (const p of roundTrips) {
    test(`round trip ${JSON.stringify(p)}`, () => {
      const addr: InboundAddress = { channel: p.channel, account: p.account };
      if (p.peer !== null) addr.peer = p.peer;
      if (p.thread !== null) addr.thread = p.thread;
      const key = sessionKey(p.agent, addr);
      expect(parseSessionKey(key)).toEqual(p);
      expect(key.split(":").length).toBe(p.thread === null ? 4 : 5);
    });
  }

  test("no peer and a peer named main give different keys", () => {
    const none = sessionKey("a", { channel: "c", account: "x" });
    const named = sessionKey("a", { channel: "c", account: "x", peer: "main" });
    expect(none).not.toBe(named);
    expect(parseSessionKey(none)?.peer).toBeNull();
    expect(parseSessionKey(named)?.peer).toBe("main");
  });

  const malformed = [
    "",
    "main",
    "main:telegram:bot1",
    "main:telegram:bot1:42:t:extra",
    "main:telegram:bot1:4%2",
    "main:telegram:bot1:%",
    "main:telegram:bot1:%zz",
    "main:telegram:bot1:%3a", // lower-case hex: the canonical spelling is %3A
    "main:telegram:bot1:%41", // a needless escape of "A"
    "main:telegram:bot1:%6dain",
    "main:%6Dain:bot1:42", // the literal-main escape belongs to the peer only
    "%6Dain:telegram:bot1:42",
    "main:telegram:bot1:42:%6Dain",
  ];
  for (const key of malformed) {
    test(`${JSON.stringify(key)} is malformed`, () => expect(parseSessionKey(key)).toBeNull());
  }
});

/** The obvious implementation of SPEC §8, to check the indexed router against. */
function referenceResolver(bindings: readonly Binding[], defaultAgent: string) {
  const tiered = bindings.map((b) => ({ b, tier: TIERS.find((s) => b[s] !== undefined) }));
  return (addr: InboundAddress): { agent: string; matched_by: MatchedBy } => {
    for (const tier of TIERS) {
      for (const { b, tier: t } of tiered) {
        if (t === tier && TIERS.every((s) => b[s] === undefined || b[s] === addr[s]))
          return { agent: b.agent, matched_by: `binding.${tier}` as MatchedBy };
      }
    }
    return { agent: defaultAgent, matched_by: "default" };
  };
}

describe("10,000 bindings", () => {
  // Deterministic mix: mostly channel+peer bindings on three channels, some guild, team, account
  // and channel bindings, and duplicates so config order matters at scale.
  // mulberry32: a seeded generator, so a failure reproduces.
  let seed = 1;
  const rand = (n: number) => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), seed | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((((t ^ (t >>> 14)) >>> 0) / 2 ** 32) * n) | 0;
  };
  const channels = ["telegram", "discord", "slack"];
  const bindings: Binding[] = [];
  for (let i = 0; i < 10_000; i++) {
    const channel = channels[rand(3)]!;
    const kind = rand(100);
    if (kind < 85) bindings.push({ agent: `peer-${i}`, channel, peer: `u${rand(4000)}` });
    else if (kind < 90) bindings.push({ agent: `guild-${i}`, channel, guild: `g${rand(200)}` });
    else if (kind < 94)
      bindings.push({ agent: `team-${i}`, team: `t${rand(100)}`, ...(rand(2) ? { account: `a${rand(5)}` } : {}) });
    else if (kind < 99) bindings.push({ agent: `account-${i}`, channel, account: `a${rand(20)}` });
    else bindings.push({ agent: `channel-${i}`, channel: `c${rand(50)}` });
  }
  const router = createRouter(bindings, "fallback");

  test("picks the one binding for a peer among thousands on the same channel", () => {
    const many: Binding[] = Array.from({ length: 10_000 }, (_, i) => ({
      agent: `agent-${i}`,
      channel: "telegram",
      peer: `p${i}`,
    }));
    const r = createRouter(many, "fallback");
    expect(r.size).toBe(10_000);
    for (const i of [0, 1, 4_999, 7_777, 9_999]) {
      expect(r.resolve({ channel: "telegram", account: "bot1", peer: `p${i}` })).toEqual({
        agent: `agent-${i}`,
        session: `agent-${i}:telegram:bot1:p${i}`,
        matched_by: "binding.peer",
      });
    }
    expect(r.resolve({ channel: "discord", account: "bot1", peer: "p7777" }).matched_by).toBe("default");
    expect(r.resolve({ channel: "telegram", account: "bot1", peer: "p10000" }).matched_by).toBe("default");
  });

  test("agrees with a linear scan on 5,000 random addresses", () => {
    const reference = referenceResolver(bindings, "fallback");
    const tally = new Map<MatchedBy, number>();
    for (let i = 0; i < 5_000; i++) {
      const addr: InboundAddress = {
        channel: rand(10) === 0 ? `c${rand(50)}` : channels[rand(3)]!,
        account: `a${rand(20)}`,
      };
      if (rand(4) !== 0) addr.peer = `u${rand(5000)}`;
      if (rand(3) === 0) addr.guild = `g${rand(250)}`;
      if (rand(3) === 0) addr.team = `t${rand(120)}`;
      const got = router.resolve(addr);
      const want = reference(addr);
      expect({ agent: got.agent, matched_by: got.matched_by }).toEqual(want);
      expect(got.session).toBe(sessionKey(want.agent, addr));
      tally.set(got.matched_by, (tally.get(got.matched_by) ?? 0) + 1);
    }
    // The sample must exercise every tier, or the comparison proves less than it claims.
    for (const m of [
      "binding.peer",
      "binding.guild",
      "binding.team",
      "binding.account",
      "binding.channel",
      "default",
    ] as const) {
      expect(tally.get(m) ?? 0).toBeGreaterThan(20);
    }
  });
});

describe("personKey", () => {
  test("distinct people never share a key: a ':' in an account or peer, and a peer named main", () => {
    const people: [string, string, string | null][] = [
      ["http", "a:b", "c"],
      ["http", "a", "b:c"],
      ["http", "a", "main"],
      ["http", "a", null],
      ["http", "a%3Ab", "c"],
      ["http:a", "b", "c"],
    ];
    const keys = people.map(([c, a, p]) => personKey(c, a, p));
    expect(new Set(keys).size).toBe(people.length);
    // Ordinary ids read as before: what stored facts and approvals were keyed by stays the same.
    expect(personKey("telegram", "bot", "1561073042")).toBe("telegram:bot:1561073042");
    expect(personKey("telegram", "bot", null)).toBe("telegram:bot:main");
  });
});
