/** When a failed channel message is tried again, and the loop that sleeps until the next one is due. */
import { expect, test } from "bun:test";
import { DEFAULT_RETRY_POLICY, MAX_DELIVERY_ATTEMPTS, nextAttemptAt, RetryLoop } from "../../src/channels/outbox.ts";
import { createLogger } from "../../src/lib/log.ts";
import { createMemoryStore, type PendingInbound, type Store } from "../../src/store/index.ts";

const transient = { permanent: false };
const fixed = (random: number) => ({ ...DEFAULT_RETRY_POLICY, random: () => random });

test("backoff grows from 5 s to an hour, jittered ±20 %; the 8th failure and a permanent one end it", () => {
  const delays = [1, 2, 3, 4, 5, 6, 7].map((n) => nextAttemptAt(n, transient, 0, fixed(0.5)));
  expect(delays).toEqual([5_000, 30_000, 120_000, 600_000, 3_600_000, 3_600_000, 3_600_000]);
  expect(MAX_DELIVERY_ATTEMPTS).toBe(8);
  expect(nextAttemptAt(8, transient, 0, fixed(0.5))).toBeNull();
  expect(nextAttemptAt(1, { permanent: true }, 0)).toBeNull();
  expect(nextAttemptAt(1, transient, 1_000, fixed(0))).toBe(1_000 + 4_000);
  expect(nextAttemptAt(1, transient, 1_000, fixed(0.999999))).toBe(1_000 + 6_000);
  // The platform's hint is used as given, shorter or longer than the step.
  expect(nextAttemptAt(4, { permanent: false, retry_after_ms: 2_000 }, 1_000)).toBe(3_000);
  expect(nextAttemptAt(1, { permanent: false, retry_after_ms: 90_000 }, 1_000)).toBe(91_000);
  expect(nextAttemptAt(8, { permanent: false, retry_after_ms: 2_000 }, 1_000)).toBeNull();
  // Tests shrink the first delay; the others keep their ratio.
  expect(nextAttemptAt(2, transient, 0, { ...fixed(0.5), firstDelayMs: 30 })).toBe(180);
});

async function until(cond: () => boolean | Promise<boolean>, what: string): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await Bun.sleep(5);
  }
}

function loopOver(store: Store, busy: Set<string> = new Set()) {
  const delivered: { id: string; at: number }[] = [];
  let reads = 0;
  const counted: Store = { ...store, dueInbound: (now, limit) => (reads++, store.dueInbound(now, limit)) };
  const loop = new RetryLoop({
    store: counted,
    log: createLogger({ format: "json", level: "error", write: () => {} }),
    isBusy: (id) => busy.has(id),
    deliver: async (rec: PendingInbound) => {
      delivered.push({ id: rec.id, at: Date.now() });
      await store.completeInbound(rec.id);
    },
  });
  return { loop, delivered, reads: () => reads };
}

/** A message whose turn answered but whose send has not gone out: the retry loop's (a message never tried is the intake's). */
const accept = async (store: Store, id: string) => {
  await store.acceptInbound({ id, channel: "telegram", payload: "{}", received_at: Date.now() });
  await store.saveInboundReply(id, `reply to ${id}`);
};

test("the first pass tries everything pending at once; later ones wake at the earliest due time", async () => {
  const store = createMemoryStore();
  for (const id of ["a", "b", "c"]) await accept(store, id);
  await store.acceptInbound({ id: "never-tried", channel: "telegram", payload: "{}", received_at: Date.now() });
  await store.failInbound("b", { error: "HTTP 500", retry_at: Date.now() + 600_000, at: Date.now() });
  await store.failInbound("c", { error: "HTTP 403", retry_at: null, at: Date.now() });
  const { loop, delivered } = loopOver(store);
  loop.start();
  // A restart: the pending message is tried whatever its time; the dead-lettered one waits for the operator.
  await until(() => delivered.length === 2, "the first pass");
  // The message never tried is left to the pipeline's intake (its first delivery, in order per session).
  expect(delivered.map((d) => d.id)).toEqual(["a", "b"]);

  await accept(store, "d");
  await accept(store, "e");
  const failedAt = Date.now();
  await store.failInbound("d", { error: "HTTP 502", retry_at: failedAt + 60, at: failedAt });
  await store.failInbound("e", { error: "HTTP 502", retry_at: failedAt + 600_000, at: failedAt });
  loop.schedule(failedAt + 60);
  await until(() => delivered.length === 3, "the due retry");
  expect(delivered[2]!.id).toBe("d");
  expect(delivered[2]!.at).toBeGreaterThanOrEqual(failedAt + 60);
  await loop.stop();
  expect(delivered.map((d) => d.id)).toEqual(["a", "b", "d"]);
  expect((await store.getInbound("e"))!.attempts).toBe(1);
});

test("a due message someone else is delivering is left to them, and the loop does not spin on it", async () => {
  const store = createMemoryStore();
  await accept(store, "held");
  const { loop, delivered, reads } = loopOver(store, new Set(["held"]));
  loop.start();
  await until(() => reads() === 1, "the first pass");
  await accept(store, "later");
  const at = Date.now() + 100;
  await store.failInbound("later", { error: "HTTP 500", retry_at: at, at: Date.now() });
  loop.schedule(at);
  await until(() => delivered.length === 1, "the later message");
  expect(delivered.map((d) => d.id)).toEqual(["later"]);
  expect(delivered[0]!.at).toBeGreaterThanOrEqual(at);
  // The first pass, maybe one woken early by the first timer, and the one for "later": never a pass per tick.
  expect(reads()).toBeLessThanOrEqual(3);
  await loop.stop();
  expect((await store.getInbound("held"))!.attempts).toBe(0);
});

test("a pass reads in batches until nothing more is due", async () => {
  const store = createMemoryStore();
  for (let i = 0; i < 250; i++) await accept(store, `m${i}`);
  const { loop, delivered } = loopOver(store);
  loop.start();
  await until(() => delivered.length === 250, "every message");
  await loop.stop();
  expect(new Set(delivered.map((d) => d.id)).size).toBe(250);
});
