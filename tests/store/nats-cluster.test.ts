/**
 * The nats store on a 3-node JetStream cluster with `replicas = 3` (three real nats-servers, one
 * cluster for this file): the store keeps working with one node killed — what was written before is
 * read back, and new writes land — and after it returns. (The port contracts run on one server, in
 * nats.test.ts: on the cluster each test's fresh streams cost seconds of RAFT elections.)
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { openNatsStore, type NatsStore } from "../../src/store/nats.ts";
import { startJetStreamCluster, type JsServers } from "../helpers/jetstream.ts";
import { addr, user } from "./contract/harness.ts";

let cluster: JsServers;
beforeAll(async () => {
  cluster = await startJetStreamCluster();
}, 60_000);
afterAll(async () => {
  await cluster?.[Symbol.asyncDispose]();
});

let n = 0;
/** Opens the store once the cluster has a JetStream leader (creating an R3 stream needs one). */
async function open(namespace: string, replicas = 3): Promise<NatsStore> {
  let last: unknown;
  for (let i = 0; i < 100; i++) {
    try {
      return await openNatsStore({
        servers: cluster.url.split(","),
        namespace,
        replicas,
        reconnectWaitMs: 100,
        requestTimeoutMs: 2000,
      });
    } catch (e) {
      last = e;
      await Bun.sleep(200);
    }
  }
  throw last;
}

test("a store begun with replicas 1 is scaled to 3 when reopened so; with one of three nodes killed it reads what it had and keeps writing; the node rejoins", async () => {
  const single = await open("failover", 1);
  await single.appendMessages(addr("survivor"), [user("on one replica")]);
  expect((await eventually(() => listed(single))).map((x) => x.replicas)).toEqual(Array(11).fill(1));
  await single.close();
  const store = await open("failover");
  expect((await eventually(() => listed(store))).map((x) => x.replicas)).toEqual(Array(11).fill(3));
  try {
    const s = addr("survivor");
    await store.appendMessages(s, [user("before the kill")]);
    await store.kvSet("weather", "city", "Oslo");
    expect(await store.acceptInbound({ id: "telegram:1", channel: "telegram", payload: "{}", received_at: 1 })).toBe(
      true,
    );

    await cluster.nodes[1]!.stop();
    // While the RAFT groups that had their leader on the killed node elect a new one, a call may
    // time out (a StoreError); each is retried until its group answers, then must give the right answer.
    await eventually(() => store.appendMessages(s, [user("after the kill")]));
    expect(
      (await eventually(() => store.history(s.key, { limit: 10 }))).map((m) => (m.parts[0] as { text: string }).text),
    ).toEqual(["on one replica", "before the kill", "after the kill"]);
    expect(await eventually(() => store.kvGet("weather", "city"))).toBe("Oslo");
    await eventually(() => store.kvSet("weather", "city", "Bergen"));
    expect(await store.kvGet("weather", "city")).toBe("Bergen");
    expect(
      await eventually(() =>
        store.acceptInbound({ id: "telegram:1", channel: "telegram", payload: "{}", received_at: 2 }),
      ),
    ).toBe(false);
    expect(await eventually(() => store.completeInbound("telegram:1"))).toBe(true);
    await eventually(() =>
      store.recordUsage({
        at: 1,
        session: s.key,
        agent: "main",
        provider: "p",
        model: "m",
        input_tokens: 3,
        output_tokens: 4,
        cost_usd: null,
      }),
    );
    expect((await store.sumUsage({ session: s.key })).calls).toBe(1);
    await eventually(() => store.addFact("main", "telegram:1", "likes fjords"));
    expect((await store.searchFacts({ agent: "main", query: "fjords", limit: 3 })).map((f) => f.text)).toEqual([
      "likes fjords",
    ]);

    await cluster.nodes[1]!.start();
    await eventually(() => store.appendMessages(s, [user("after the return")]));
    expect((await store.getSession(s.key))!.message_count).toBe(4);
  } finally {
    await store.close();
  }
}, 60_000);

/** The result of `op` once it succeeds (retried while the cluster elects leaders), within 30 s. */
async function eventually<T>(op: () => Promise<T>): Promise<T> {
  const end = Date.now() + 30_000;
  for (;;) {
    try {
      return await op();
    } catch (e) {
      if (Date.now() > end) throw e;
      await Bun.sleep(100);
    }
  }
}

/** The store's eleven streams and buckets as `describe` lists them; throws while the list is incomplete. */
async function listed(store: NatsStore) {
  const d = await store.describe();
  if (d.error !== undefined || d.streams.length !== 11)
    throw new Error(d.error ?? `${d.streams.length} streams listed`);
  return d.streams;
}
