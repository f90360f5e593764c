/**
 * The NATS store against every port's contract, on a real nats-server with JetStream started for
 * this file (one server; each test gets its own namespace, so its own empty streams and buckets),
 * and what only this engine has: hostile ids kept in their own subjects, two gateways sharing one
 * store, and an outage answered with StoreError at once, then recovered.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import { openNatsStore, type NatsStore } from "../../src/store/nats.ts";
import { token, untoken } from "../../src/store/nats/context.ts";
import { openSqliteStore, StoreError } from "../../src/store/index.ts";
import { join } from "node:path";
import { tempDir } from "../helpers/temp.ts";
import { startJetStream, waitFor, type JsServers } from "../helpers/jetstream.ts";
import { startNatsServer } from "../helpers/nats.ts";
import { storeContract } from "./contract.ts";
import { addr, user } from "./contract/harness.ts";

let js: JsServers;
beforeAll(async () => {
  js = await startJetStream();
});
afterAll(async () => {
  await js?.[Symbol.asyncDispose]();
});

let n = 0;
const open = (namespace: string, now?: () => number): Promise<NatsStore> =>
  openNatsStore({ servers: js.url.split(","), namespace, ...(now && { now }), reconnectWaitMs: 100 });

storeContract("nats", async () => {
  let t = 1_700_000_000_000;
  const store = await open(`c${++n}`, () => t);
  return { store, tick: (ms = 1000) => void (t += ms), [Symbol.asyncDispose]: () => store.close() };
});

describe("nats subject tokens", () => {
  test("every id becomes one token of letters, digits, _, - and =XX, and back; distinct ids never share one", () => {
    const ids = [
      "",
      "=",
      "=3D",
      "a.*",
      ">",
      "a b",
      "main:telegram:bot1:42",
      "Zürich ✓",
      "🦀",
      "a\u0000b",
      "%2E",
      "_-",
      "..",
      "a=2E",
    ];
    for (let i = 0; i < 200; i++)
      ids.push(
        String.fromCodePoint(
          ...Array.from({ length: i % 9 }, (_, j) => [46, 42, 62, 61, 32, 97, 0x1f980, 0xe9, 58][(i * 7 + j * 3) % 9]!),
        ),
      );
    const tokens = new Map<string, string>();
    for (const id of ids) {
      const t = token(id);
      expect(t).toMatch(/^[A-Za-z0-9_=-]+$/);
      expect(untoken(t)).toBe(id);
      const before = tokens.get(t);
      if (before !== undefined) expect(before).toBe(id);
      tokens.set(t, id);
    }
  });
});

describe("nats store", () => {
  test("hostile peer ids (`a.*`, `>`, `a`, dots, spaces, `=`) stay in their own session and subject", async () => {
    const ns = `h${++n}`;
    const store = await open(ns);
    try {
      const peers = ["a.*", ">", "a", "a.b", "*", "a b", "=3E", "a.>"];
      for (const p of peers) await store.appendMessages(addr(p), [user(`for ${p}`)]);
      for (const p of peers) {
        const h = await store.history(addr(p).key, { limit: 10 });
        expect(h.map((m) => (m.parts[0] as { text: string }).text)).toEqual([`for ${p}`]);
        expect((await store.getSession(addr(p).key))?.peer).toBe(p);
      }
      expect(await store.countSessions()).toBe(peers.length);
      // On the wire: one subject per session, none with a wildcard or an extra token.
      const nc = await connect({ servers: js.url });
      try {
        const si = await (await jetstreamManager(nc)).streams.info(`${ns}_msgs`, { subjects_filter: ">" });
        const subjects = Object.keys(si.state.subjects ?? {});
        expect(subjects).toHaveLength(peers.length);
        expect(subjects.every((x) => x.split(".").length === 3 && !/[*>]/.test(x))).toBe(true);
        expect(subjects).toContain(`${ns}.msgs.main=3Atelegram=3Abot1=3Aa=2E=2A`);
        expect(subjects).toContain(`${ns}.msgs.main=3Atelegram=3Abot1=3A=3E`);
      } finally {
        await nc.close();
      }
      // Resetting the wildcard-looking one forgets it alone.
      expect(await store.resetSession(addr("a.*").key)).toBe(1);
      expect(await store.resetSession(addr(">").key)).toBe(1);
      expect(await store.countSessions()).toBe(peers.length - 2);
      expect((await store.history(addr("a").key, { limit: 10 })).length).toBe(1);
      expect((await store.history(addr("a.b").key, { limit: 10 })).length).toBe(1);
      // Plugin state and pairings under hostile names stay apart too.
      await store.kvSet("p.*", ">", "x");
      await store.kvSet("p", "*.>", "y");
      expect(await store.kvGet("p.*", ">")).toBe("x");
      expect(await store.kvGet("p", "*.>")).toBe("y");
      expect(await store.kvStats("p")).toEqual({ entries: 1, bytes: 4 });
    } finally {
      await store.close();
    }
  });

  test("two gateways on one store: a conversation begun on one continues on the other, without a gap or a lost turn", async () => {
    const ns = `g${++n}`;
    const a = await open(ns);
    const b = await open(ns);
    try {
      const s = addr("shared");
      await a.appendMessages(s, [user("1 on A")]);
      expect((await b.history(s.key, { limit: 10 })).map((m) => m.seq)).toEqual([1]);
      await b.appendMessages(s, [user("2 on B")]);
      // A's cached tail is stale: its append loses the compare-and-set, reads the tail, and lands third.
      const third = await a.appendMessages(s, [user("3 on A")]);
      expect(third.map((m) => m.seq)).toEqual([3]);
      // Both racing: every message lands once, seq gapless.
      await Promise.all(Array.from({ length: 20 }, (_, i) => (i % 2 ? a : b).appendMessages(s, [user(`r${i}`)])));
      const h = await b.history(s.key, { limit: 100 });
      expect(h.map((m) => m.seq)).toEqual(Array.from({ length: 23 }, (_, i) => i + 1));
      expect(new Set(h.map((m) => (m.parts[0] as { text: string }).text)).size).toBe(23);
      expect((await a.getSession(s.key))!.message_count).toBe(23);
      // The inbox deduplicates across gateways; a fact learned on one is found on the other.
      const rec = { id: "telegram:9", channel: "telegram", payload: "{}", received_at: 1 };
      const accepted = await Promise.all([a.acceptInbound(rec), b.acceptInbound(rec)]);
      expect(accepted.filter(Boolean)).toHaveLength(1);
      expect(await a.completeInbound("telegram:9")).toBe(true);
      expect(await b.acceptInbound(rec)).toBe(false);
      const fact = await a.addFact("main", "telegram:1", "Ada likes green tea");
      expect(await b.addFact("main", "telegram:1", "Ada likes green tea")).toEqual(fact);
      await a.kvSet("weather", "city", "Oslo");
      expect(await b.kvGet("weather", "city")).toBe("Oslo");
      // Usage and facts recorded on one gateway reach the other's view (followed, not polled by the store).
      await a.recordUsage({
        at: 5,
        session: s.key,
        agent: "main",
        provider: "p",
        model: "m",
        input_tokens: 7,
        output_tokens: 1,
        cost_usd: 0.5,
      });
      await waitFor(async () => (await b.sumUsage({ session: s.key })).calls === 1);
      expect(await b.sumUsage({ session: s.key })).toMatchObject({ input_tokens: 7, cost_usd: 0.5 });
      await b.addFact("main", "telegram:1", "Grace sails a catamaran");
      await waitFor(async () => (await a.searchFacts({ agent: "main", query: "catamaran", limit: 5 })).length === 1);
      // Two gateways deciding one approval: one decision wins, the other gets null.
      await a.addApproval({
        id: "ap1",
        session: s.key,
        agent: "main",
        tool: "http_get",
        input: "{}",
        why: "always",
        state: "pending",
        created_at: 1,
        expires_at: 9,
        decided_at: null,
        decided_by: null,
        remember: false,
      });
      const decided = await Promise.all([
        a.decideApproval("ap1", { state: "allowed", at: 2, by: "operator", remember: true }),
        b.decideApproval("ap1", { state: "denied", at: 2, by: "owner:x", remember: true }),
      ]);
      expect(decided.filter((d) => d !== null)).toHaveLength(1);
      const winner = decided.find((d) => d !== null)!;
      expect((await b.getApproval("ap1"))?.state).toBe(winner.state);
      expect((await a.getApprovalRule("main", "http_get"))?.allow).toBe(winner.state === "allowed");
      // A pairing saved on one is found by its code on the other.
      await b.savePairing({
        person: "slack:A1:U9",
        channel: "slack",
        status: "pending",
        code: "WXYZ6789",
        created_at: 1,
        expires_at: 2,
        notified_at: 1,
        approved_at: null,
      });
      expect((await a.pairingByCode("WXYZ6789"))?.person).toBe("slack:A1:U9");
    } finally {
      await a.close();
      await b.close();
    }
  });

  test("two gateways reserving against one budget at once: of 20 reservations under a 5-call limit exactly 5 are recorded, both gateways count them", async () => {
    const ns = `b${++n}`;
    const a = await open(ns);
    const b = await open(ns);
    try {
      const row = (i: number) => ({
        at: 1000 + i,
        call: `r${i}`,
        status: "pending" as const,
        session: `s${i % 3}`,
        person: `telegram:${i % 2}`,
        agent: "main",
        provider: "p",
        model: "m",
        input_tokens: 200,
        output_tokens: 800,
        cost_usd: 0.01,
      });
      const limits = [
        {
          scope: "person_daily_tokens",
          query: { person: "telegram:0", since: 0 },
          measure: "tokens" as const,
          limit: 1_000_000,
        },
        { scope: "daily_tokens", query: { since: 0 }, measure: "tokens" as const, limit: 5_000 },
      ];
      const results = await Promise.all(
        Array.from({ length: 20 }, (_, i) => (i % 2 ? a : b).reserveUsage(row(i), limits)),
      );
      expect(results.filter((r) => r === null)).toHaveLength(5);
      for (const r of results) if (r !== null) expect(r).toEqual({ scope: "daily_tokens", used: 5_000, limit: 5_000 });
      for (const g of [a, b]) await waitFor(async () => (await g.sumUsage({})).calls === 5);
      expect(await a.sumUsage({})).toMatchObject({ calls: 5, input_tokens: 1_000, output_tokens: 4_000 });
      // A settle on one gateway frees room for a reservation on the other; a plain row recorded on one counts against the other's next one.
      const ok = results.flatMap((r, i) => (r === null ? [i] : []));
      await a.updateUsage(`r${ok[0]}`, {
        provider: "p",
        model: "m",
        input_tokens: 0,
        output_tokens: 0,
        cost_usd: 0,
        status: "final",
      });
      expect(await b.reserveUsage(row(100), limits)).toBeNull();
      expect(await a.reserveUsage(row(101), limits)).toEqual({ scope: "daily_tokens", used: 5_000, limit: 5_000 });
      await b.updateUsage("r100", {
        provider: "p",
        model: "m",
        input_tokens: 0,
        output_tokens: 0,
        cost_usd: 0,
        status: "final",
      });
      await b.recordUsage({
        at: 5,
        session: "x",
        agent: "main",
        provider: "p",
        model: "m",
        input_tokens: 600,
        output_tokens: 0,
        cost_usd: null,
      });
      expect(await a.reserveUsage(row(102), limits)).toEqual({ scope: "daily_tokens", used: 4_600, limit: 5_000 });
    } finally {
      await a.close();
      await b.close();
    }
  });

  test("two gateways sharing leases and claims: one holder of a session and of an inbound message; a takeover fences the old holder's appends", async () => {
    const ns = `l${++n}`;
    let t = 1_700_000_000_000;
    const a = await open(ns, () => t);
    const b = await open(ns, () => t);
    try {
      const got = await Promise.all(
        Array.from({ length: 20 }, (_, i) => (i % 2 ? a : b).acquireLease("s", `w${i}`, 10_000)),
      );
      expect(got.filter((x) => x !== null)).toHaveLength(1);
      await a.acceptInbound({ id: "telegram:77", channel: "telegram", payload: "{}", received_at: 1 });
      const claims = await Promise.all(
        Array.from({ length: 10 }, (_, i) => (i % 2 ? a : b).claimInbound("telegram:77", `w${i}`, 60_000)),
      );
      expect(claims.filter(Boolean)).toHaveLength(1);
      // A claim does not show in what the inbox reports of the message.
      expect(Object.keys((await b.getInbound("telegram:77"))!).sort()).toEqual([
        "attempts",
        "channel",
        "dead_at",
        "id",
        "last_error",
        "next_at",
        "payload",
        "received_at",
        "reply",
      ]);

      const s = addr("fenced");
      const old = (await a.acquireLease(s.key, "A", 1_000))!;
      await a.appendMessages(s, [user("one on A")], undefined, { token: old });
      const before = await b.sessionVersion(s.key);
      t += 1_001;
      const now = (await b.acquireLease(s.key, "B", 1_000))!;
      expect(now).toBeGreaterThan(old);
      // The takeover itself moved the session's subject on: an append that read the tail before it loses.
      const after = await a.sessionVersion(s.key);
      expect(after).toBeGreaterThan(before);
      expect(await a.getSession(s.key)).toMatchObject({ message_count: 1 });
      await expect(a.appendMessages(s, [user("stale on A")], undefined, { token: old })).rejects.toThrow(
        /lease on session .* was taken over/,
      );
      expect(await a.renewLease(s.key, old, 1_000)).toBe(false);
      await b.appendMessages(s, [user("two on B")], undefined, { token: now });
      expect(
        (await a.history(s.key, { limit: 10 })).map((m) => [m.seq, (m.parts[0] as { text: string }).text]),
      ).toEqual([
        [1, "one on A"],
        [2, "two on B"],
      ]);
      expect((await a.listSessions({ limit: 10 })).sessions.map((x) => [x.key, x.message_count])).toEqual([[s.key, 2]]);
      // A release on B lets A take it at once, with a larger token still.
      await b.releaseLease(s.key, now);
      expect(await a.acquireLease(s.key, "A", 1_000)).toBeGreaterThan(now);
    } finally {
      await a.close();
      await b.close();
    }
  });

  test("while NATS is down every call fails at once with a StoreError; when it is back the store works again, nothing lost", async () => {
    const ns = `o${++n}`;
    const store = await open(ns);
    const other = await open(ns);
    try {
      await store.appendMessages(addr("o"), [user("before")]);
      await js.nodes[0]!.stop();
      await waitFor(
        async () =>
          await store.countSessions().then(
            () => false,
            (e: unknown) => e instanceof StoreError,
          ),
      );
      await expect(store.appendMessages(addr("o"), [user("during")])).rejects.toThrow(/unreachable/);
      await expect(store.kvGet("p", "k")).rejects.toBeInstanceOf(StoreError);
      // A usage row refused during the outage counts nowhere, not even for a moment after.
      await expect(
        store.recordUsage({
          at: 8,
          session: "o",
          agent: "main",
          provider: "p",
          model: "m",
          input_tokens: 50,
          output_tokens: 50,
          cost_usd: null,
        }),
      ).rejects.toBeInstanceOf(StoreError);
      await js.nodes[0]!.start();
      await waitFor(
        async () =>
          await store.countSessions().then(
            () => true,
            () => false,
          ),
      );
      await store.appendMessages(addr("o"), [user("after")]);
      expect(
        (await store.history(addr("o").key, { limit: 10 })).map((m) => (m.parts[0] as { text: string }).text),
      ).toEqual(["before", "after"]);
      // The other gateway's views follow again after the outage.
      await store.recordUsage({
        at: 9,
        session: "o",
        agent: "main",
        provider: "p",
        model: "m",
        input_tokens: 1,
        output_tokens: 1,
        cost_usd: null,
      });
      await waitFor(async () => (await other.sumUsage({ session: "o" }).catch(() => ({ calls: 0 }))).calls === 1);
      expect(await store.sumUsage({ session: "o" })).toMatchObject({ calls: 1, input_tokens: 1 });
    } finally {
      await store.close();
      await other.close();
    }
  });

  test("fact search ranks as SQLite's FTS5 BM25 does: same order, same scores", async () => {
    using dir = tempDir("exoclaw-bm25-");
    const sqlite = openSqliteStore(join(dir.path, "x.db"));
    const store = await open(`bm${++n}`);
    try {
      const facts = [
        ["telegram:1", "Ada likes green tea"],
        ["telegram:1", "Ada's cat is called Tea Leaf"],
        ["telegram:1", "Ada works on engines, analytical ones"],
        ["telegram:1", "Ada drinks tea, tea and more tea every morning"],
        ["telegram:1", "Ada lives in Zürich near the lake"],
        ["telegram:1", "Her brother's name is Byron; he writes poems"],
        ["telegram:2", "Grace likes green tea too"],
        ["telegram:2", "Grace wrote the first compiler"],
        ["telegram:2", "Grace keeps a clock that runs backwards"],
      ] as const;
      for (const [person, text] of facts) {
        await sqlite.addFact("main", person, text);
        await store.addFact("main", person, text);
      }
      const queries = [
        "What tea does she like? green?",
        "tea",
        "zurich lake",
        "engines",
        "compiler clock",
        "Byron poems brother",
        "nothing matches here",
      ];
      for (const query of queries) {
        for (const person of ["telegram:1", "telegram:2", undefined]) {
          const q = { agent: "main", query, limit: 5, ...(person && { person }) };
          const want = await sqlite.searchFacts(q);
          const got = await store.searchFacts(q);
          expect(got.map((f) => f.text)).toEqual(want.map((f) => f.text));
          got.forEach((f, i) => expect(f.score).toBeCloseTo(want[i]!.score, 9));
        }
      }
    } finally {
      await store.close();
      await sqlite.close();
    }
  });

  test("more sessions than the history cache holds: every one still reads back whole, and appends after an eviction stay gapless", async () => {
    const store = await open(`lru${++n}`);
    try {
      const peers = Array.from({ length: 300 }, (_, i) => `p${i}`);
      await Promise.all(peers.map((p) => store.appendMessages(addr(p), [user(`${p} one`), user(`${p} two`)])));
      for (const p of peers)
        expect(
          (await store.history(addr(p).key, { limit: 5 })).map((m) => (m.parts[0] as { text: string }).text),
        ).toEqual([`${p} one`, `${p} two`]);
      // p0 was evicted long ago: its next append reads the tail again and goes on at seq 3.
      expect((await store.appendMessages(addr("p0"), [user("p0 three")])).map((m) => m.seq)).toEqual([3]);
      expect((await store.history(addr("p0").key, { limit: 5 })).map((m) => m.seq)).toEqual([1, 2, 3]);
    } finally {
      await store.close();
    }
  });

  test("an append larger than the server's max_payload fails whole: nothing appended, the turn's reply put back", async () => {
    const store = await open(`big${++n}`);
    try {
      const s = addr("big");
      await store.appendMessages(s, [user("small")]);
      await store.acceptInbound({ id: "telegram:5", channel: "telegram", payload: "{}", received_at: 1 });
      const huge = user("x".repeat(2 * 1024 * 1024));
      await expect(
        store.appendMessages(s, [user("question"), huge], { inbound: "telegram:5", text: "the answer" }),
      ).rejects.toBeInstanceOf(StoreError);
      expect((await store.history(s.key, { limit: 10 })).map((m) => m.seq)).toEqual([1]);
      expect((await store.getSession(s.key))!.message_count).toBe(1);
      expect((await store.getInbound("telegram:5"))!.reply).toBeNull();
      // The session goes on after the refused append, seq gapless.
      expect((await store.appendMessages(s, [user("next")])).map((m) => m.seq)).toEqual([2]);
    } finally {
      await store.close();
    }
  });

  test("two gateways on one store: a start-up expires only approvals nobody can answer (its own last run's, a stopped gateway's, overdue ones), never a running gateway's", async () => {
    const namespace = `ap${++n}`;
    const gateway = (owner: string) =>
      openNatsStore({ servers: js.url.split(","), namespace, owner, approvalHeartbeatMs: 100, reconnectWaitMs: 100 });
    const rec = (id: string, expires_at = Date.now() + 600_000) => ({
      id,
      session: "s1",
      agent: "main",
      tool: "http_get",
      input: "{}",
      why: "always",
      state: "pending" as const,
      created_at: Date.now(),
      expires_at,
      decided_at: null,
      decided_by: null,
      remember: false,
    });
    const stateOf = async (s: NatsStore, id: string) => (await s.getApproval(id))?.state;
    const a = await gateway("box:/srv/a");
    let b = await gateway("box:/srv/b");
    await a.addApproval(rec("on-a"));
    await a.addApproval(rec("on-a-overdue", Date.now() - 1));
    await b.addApproval(rec("on-b"));
    // The owner is the store's own bookkeeping, not part of the record.
    expect(Object.keys((await a.getApproval("on-a"))!)).not.toContain("owner");
    // B restarts: its own orphan is expired, and A's overdue one; A's waiting request is left to A.
    await b.close();
    b = await gateway("box:/srv/b");
    expect(await b.expirePendingApprovals(Date.now(), "restart")).toBe(2);
    expect(await stateOf(b, "on-b")).toBe("timeout");
    expect(await stateOf(b, "on-a-overdue")).toBe("timeout");
    expect(await stateOf(b, "on-a")).toBe("pending");
    // A is still running: a third gateway starting leaves its request alone too.
    const c = await gateway("box:/srv/c");
    expect(await c.expirePendingApprovals(Date.now(), "restart")).toBe(0);
    expect(await stateOf(c, "on-a")).toBe("pending");
    // A stops: once its heartbeat is missed, the next start-up expires what A left waiting.
    await a.close();
    await waitFor(async () => (await c.expirePendingApprovals(Date.now(), "restart")) === 1);
    expect(await stateOf(c, "on-a")).toBe("timeout");
    expect((await c.getApproval("on-a"))?.decided_by).toBe("restart");
    await b.close();
    await c.close();
  });

  test("replicas 3 on a single server is refused at open, saying why", async () => {
    await expect(openNatsStore({ servers: [js.url], namespace: `r${++n}`, replicas: 3 })).rejects.toThrow(
      /cannot open the nats store at .*enough servers for 3 replicas/,
    );
  });

  test("credentials in a server URL are masked wherever the store shows its servers", async () => {
    const { shownServers } = await import("../../src/store/nats.ts");
    expect(shownServers(["nats://bob:s3cret@10.0.0.1:4222", "tls://tok@b:4222", "c:4222"])).toBe(
      "nats://***@10.0.0.1:4222,tls://***@b:4222,c:4222",
    );
    await expect(openNatsStore({ servers: ["nats://bob:s3cret@127.0.0.1:1"], connectTimeoutMs: 300 })).rejects.toThrow(
      /cannot reach the nats store at nats:\/\/\*\*\*@127\.0\.0\.1:1/,
    );
  });

  test("a server without JetStream is refused at open, saying so", async () => {
    await using plain = await startNatsServer();
    await expect(openNatsStore({ servers: [plain.url] })).rejects.toThrow(
      /cannot open the nats store at nats:\/\/127\.0\.0\.1:\d+: .*JetStream enabled\?/,
    );
  });

  test("a store that cannot be reached at open is a clear StoreError", async () => {
    await expect(openNatsStore({ servers: ["nats://127.0.0.1:1"], connectTimeoutMs: 500 })).rejects.toThrow(
      /cannot reach the nats store at nats:\/\/127\.0\.0\.1:1/,
    );
  });
});
