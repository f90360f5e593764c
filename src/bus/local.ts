/** The in-process bus: same interface as NATS, for one gateway or when NATS is unreachable. */
import { subjectMatches } from "./subject.ts";
import type { Bus, BusMessage } from "./types.ts";

/** Messages buffered per subscriber before the oldest are dropped (a subscriber that stopped reading). */
export const SUBSCRIBER_BUFFER = 10_000;

export type Subscription = AsyncIterableIterator<BusMessage> & { close(): void; push(m: BusMessage): void };

/** An async queue of messages with a bounded buffer (drop-oldest: pub/sub is at-most-once anyway). */
export function createSubscription(onClose: () => void): Subscription {
  const queue: BusMessage[] = [];
  let waiting: ((r: IteratorResult<BusMessage>) => void) | null = null;
  let closed = false;
  const sub: Subscription = {
    push(m) {
      if (closed) return;
      if (waiting) {
        const w = waiting;
        waiting = null;
        w({ value: m, done: false });
        return;
      }
      queue.push(m);
      if (queue.length > SUBSCRIBER_BUFFER) queue.shift();
    },
    next() {
      const m = queue.shift();
      if (m) return Promise.resolve({ value: m, done: false });
      if (closed) return Promise.resolve({ value: undefined, done: true });
      return new Promise((resolve) => (waiting = resolve));
    },
    return() {
      sub.close();
      return Promise.resolve({ value: undefined, done: true });
    },
    close() {
      if (closed) return;
      closed = true;
      // Closed means done: what was buffered and not read is dropped with it.
      queue.length = 0;
      waiting?.({ value: undefined, done: true });
      waiting = null;
      onClose();
    },
    [Symbol.asyncIterator]() {
      return sub;
    },
  };
  return sub;
}

export function createLocalBus(): Bus & { deliver(m: BusMessage): void } {
  const subs = new Map<Subscription, string>();
  const deliver = (m: BusMessage) => {
    for (const [sub, pattern] of subs) if (subjectMatches(pattern, m.subject)) sub.push(m);
  };
  return {
    mode: "local",
    deliver,
    async publish(subject, data) {
      deliver({ subject, data });
    },
    subscribe(subject) {
      const sub = createSubscription(() => subs.delete(sub));
      subs.set(sub, subject);
      return sub;
    },
    async close() {
      for (const sub of [...subs.keys()]) sub.close();
    },
  };
}
