/**
 * The JetStream work queue of several gateways (src/cluster/work.ts) on a real nats-server 2.9: a
 * message published twice with one record id is one work message; two pullers ("gateways") never run
 * two messages of one session at once and keep their order; a puller that dies mid-message loses
 * nothing (the other gets it after ack_wait); the reply-once claim is won by one; a message that
 * never succeeds ends in the dead-letter stream; a peer id like `a.*` or `>` is its own subject.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { ClusterWork, partitionOf, subjectToken, type WorkItem } from "../../src/cluster/work.ts";
import { createLogger } from "../../src/lib/log.ts";
import { startJetStream, waitFor, type JsServers } from "../helpers/jetstream.ts";

let js: JsServers;
beforeAll(async () => {
  js = await startJetStream();
});
afterAll(async () => {
  await js?.[Symbol.asyncDispose]();
});

const log = createLogger({ level: "error" });
const open = (namespace: string, extra: Partial<Parameters<typeof ClusterWork.open>[0]> = {}) =>
  ClusterWork.open({ servers: [js.url], namespace, partitions: 4, ackWaitMs: 1500, heartbeatMs: 500, log, ...extra });

test("two gateways: each message handled once, a session's messages one at a time and in order, a duplicate publish dropped", async () => {
  const a = await open("wq1");
  const b = await open("wq1");
  const handled: { id: string; by: string }[] = [];
  const running = new Set<string>();
  let overlap = false;
  const handler = (by: string) => async (item: WorkItem) => {
    if (running.has(item.session)) overlap = true;
    running.add(item.session);
    await Bun.sleep(5);
    running.delete(item.session);
    handled.push({ id: item.id, by });
    return { done: true } as const;
  };
  const ids: string[] = [];
  for (let i = 0; i < 40; i++) {
    const id = `tg:${i}`;
    ids.push(id);
    await (i % 2 ? a : b).publish(id, `s${i % 5}`);
    await (i % 2 ? b : a).publish(id, `s${i % 5}`); // the platform's resend to the other gateway
  }
  a.start(handler("a"));
  b.start(handler("b"));
  await waitFor(async () => handled.length >= 40);
  // The queue is empty and nothing is in flight: no copy is left to be handled again.
  await waitFor(
    async () =>
      ((await a.status()) as { cluster: { work: { messages: number; in_flight: number } } }).cluster.work.messages ===
      0,
  );
  expect(handled.map((h) => h.id).sort()).toEqual([...ids].sort());
  expect(overlap).toBe(false);
  for (let s = 0; s < 5; s++) {
    const order = handled.filter((h) => Number(h.id.split(":")[1]) % 5 === s).map((h) => Number(h.id.split(":")[1]));
    expect(order).toEqual([...order].sort((x, y) => x - y));
  }
  expect(new Set(handled.map((h) => h.by)).size).toBe(2);
  const st = (await a.status()) as { cluster: { gateways: { id: string }[]; work: { messages: number } } };
  expect(st.cluster.gateways.map((g) => g.id).sort()).toEqual([a.id, b.id].sort());
  expect(st.cluster.work.messages).toBe(0);
  await a.stop();
  await b.stop();
});

test("a gateway that dies mid-message loses nothing: the other handles it after ack_wait; the reply is claimed once", async () => {
  const a = await open("wq2");
  let aGot: WorkItem | null = null;
  a.start(async (item) => {
    aGot = item;
    return new Promise(() => {}); // never ends: the gateway is about to die
  });
  await a.publish("tg:crash", "main:telegram:bot:42");
  await waitFor(async () => aGot !== null);
  expect(await a.claimReply("tg:other")).toBe(true);
  // The "crash": its connection goes, no ack, no working().
  a.pause();
  await (a as unknown as { nc: { close(): Promise<void> } }).nc.close();
  const b = await open("wq2");
  const got: WorkItem[] = [];
  b.start(async (item) => {
    got.push(item);
    return { done: true };
  });
  await waitFor(async () => got.length === 1);
  expect(got[0]).toMatchObject({ id: "tg:crash", session: "main:telegram:bot:42" });
  expect(got[0]!.delivery).toBeGreaterThanOrEqual(2);
  expect(await b.claimReply("tg:crash")).toBe(true);
  expect(await b.claimReply("tg:crash")).toBe(false);
  expect(await b.claimReply("tg:other")).toBe(false);
  await b.releaseReply("tg:crash");
  expect(await b.claimReply("tg:crash")).toBe(true);
  await b.stop();
});

test("a message that never succeeds goes to the dead-letter stream after its last delivery, shown by status", async () => {
  const w = await open("wq3", { maxDeliver: 2, ackWaitMs: 1000 });
  let tries = 0;
  w.start(async () => {
    tries++;
    return { done: false, ms: 100 };
  });
  await w.publish("tg:poison", "main:telegram:bot:7");
  await waitFor(async () => (await w.deadList()).length === 1);
  expect((await w.deadList())[0]).toMatchObject({ id: "tg:poison", session: "main:telegram:bot:7", deliveries: 2 });
  expect(tries).toBe(2);
  const st = (await w.status()) as { cluster: { dead_letters: number; work: { messages: number } } };
  expect(st.cluster.dead_letters).toBe(1);
  await waitFor(
    async () => ((await w.status()) as { cluster: { work: { messages: number } } }).cluster.work.messages === 0,
  );
  await w.stop();
});

test("a peer id like a.* or > stays one subject token, in its own partition's subject", () => {
  expect(subjectToken("main:telegram:bot:a.*")).not.toMatch(/[.*>]/);
  expect(subjectToken("main:telegram:bot:>")).not.toMatch(/[.*>]/);
  expect(subjectToken("main:telegram:bot:a.*")).not.toBe(subjectToken("main:telegram:bot:a"));
  expect(partitionOf("x", 16)).toBe(partitionOf("x", 16));
});

test("NATS down: publish is refused with unavailable (the webhook's 503)", async () => {
  const w = await open("wq4");
  await js.nodes[0]!.stop();
  await expect(w.publish("tg:down", "s")).rejects.toMatchObject({ code: "unavailable" });
  await js.nodes[0]!.start();
  await waitFor(async () =>
    w.publish("tg:down", "s").then(
      () => true,
      () => false,
    ),
  );
  await w.stop();
});
