/**
 * The Bus contract (SPEC §12): the same cases run against every bus — in-process, NATS core on a real
 * nats-server, and the gateway's reloadable bus over each (tests/bus/contract.test.ts). `make`
 * returns a bus ready to use (connected, for NATS) and a disposer.
 */
import { describe, expect, test } from "bun:test";
import type { Bus, BusMessage } from "../../src/bus/index.ts";

export interface BusHarness extends AsyncDisposable {
  bus: Bus;
}

const enc = (s: string) => new TextEncoder().encode(s);
const dec = (m: BusMessage) => new TextDecoder().decode(m.data);

type Sub = ReturnType<Bus["subscribe"]>;
/** A `next()` left waiting by a timeout is kept for the next read, so no message is lost to a race. */
const waiting = new WeakMap<Sub, Promise<IteratorResult<BusMessage>>>();

/** The next `n` messages as `subject=text`, or fewer when `ms` passes first (never a hang). */
async function take(sub: Sub, n: number, ms = 3000): Promise<string[]> {
  const out: string[] = [];
  const deadline = Date.now() + ms;
  while (out.length < n) {
    const next = waiting.get(sub) ?? sub.next();
    waiting.set(sub, next);
    const r = await Promise.race([next, Bun.sleep(Math.max(0, deadline - Date.now())).then(() => null)]);
    if (!r) break;
    waiting.delete(sub);
    if (r.done) break;
    out.push(`${r.value.subject}=${dec(r.value)}`);
  }
  return out;
}

/** Publishes a marker on `subject` until `sub` sees it: the subscription is live from then on. */
async function settled(bus: Bus, sub: Sub, subject: string): Promise<void> {
  for (let i = 0; i < 100; i++) {
    await bus.publish(subject, enc("marker"));
    if ((await take(sub, 1, 50)).length === 1) return;
  }
  throw new Error(`subscription on ${subject} never became live`);
}

export function busContract(name: string, make: () => Promise<BusHarness>): void {
  describe(`Bus contract: ${name}`, () => {
    test("a subscriber gets what is published on its subject, in order, bytes intact", async () => {
      await using h = await make();
      const sub = h.bus.subscribe("exoclaw.t.a.p");
      await settled(h.bus, sub, "exoclaw.t.a.p");
      for (let i = 0; i < 50; i++) await h.bus.publish("exoclaw.t.a.p", enc(`m${i}`));
      expect(await take(sub, 50)).toEqual(Array.from({ length: 50 }, (_, i) => `exoclaw.t.a.p=m${i}`));
      const raw = new Uint8Array([0, 255, 1, 128, 0]);
      await h.bus.publish("exoclaw.t.a.p", raw);
      const r = await (waiting.get(sub) ?? sub.next());
      expect([...r.value!.data]).toEqual([...raw]);
      sub.close();
    });

    test("`*` matches one token and `>` the rest; other subjects are not delivered", async () => {
      await using h = await make();
      const one = h.bus.subscribe("exoclaw.*.a.p");
      const rest = h.bus.subscribe("exoclaw.tg.>");
      await settled(h.bus, one, "exoclaw.marker.a.p");
      await settled(h.bus, rest, "exoclaw.tg.marker");
      await h.bus.publish("exoclaw.tg.a.p", enc("1"));
      await h.bus.publish("exoclaw.slack.a.p", enc("2"));
      await h.bus.publish("exoclaw.tg.b", enc("3"));
      await h.bus.publish("other.tg.a.p", enc("4"));
      await h.bus.publish("exoclaw.tg.a.p.x", enc("5"));
      expect(await take(one, 2)).toEqual(["exoclaw.tg.a.p=1", "exoclaw.slack.a.p=2"]);
      expect(await take(rest, 3)).toEqual(["exoclaw.tg.a.p=1", "exoclaw.tg.b=3", "exoclaw.tg.a.p.x=5"]);
      // Nothing else arrived for `one` (4 and 5 do not match it).
      await h.bus.publish("exoclaw.end.a.p", enc("end"));
      expect(await take(one, 1)).toEqual(["exoclaw.end.a.p=end"]);
      one.close();
      rest.close();
    });

    test("every subscriber of a subject gets its own copy", async () => {
      await using h = await make();
      const a = h.bus.subscribe("exoclaw.x");
      const b = h.bus.subscribe("exoclaw.x");
      await settled(h.bus, a, "exoclaw.x");
      await settled(h.bus, b, "exoclaw.x");
      await Promise.all([take(a, 100, 200), take(b, 100, 200)]); // the markers left over
      await h.bus.publish("exoclaw.x", enc("both"));
      expect(await take(a, 1)).toEqual(["exoclaw.x=both"]);
      expect(await take(b, 1)).toEqual(["exoclaw.x=both"]);
      a.close();
      b.close();
    });

    test("a closed subscription ends and gets nothing more; the others still do", async () => {
      await using h = await make();
      const gone = h.bus.subscribe("exoclaw.y");
      const kept = h.bus.subscribe("exoclaw.y");
      await settled(h.bus, kept, "exoclaw.y");
      // Closed with messages still buffered: they are dropped with it.
      gone.close();
      expect(await gone.next()).toEqual({ value: undefined, done: true });
      await h.bus.publish("exoclaw.y", enc("after"));
      expect(await take(kept, 1)).toEqual(["exoclaw.y=after"]);
      expect(await gone.next()).toEqual({ value: undefined, done: true });
      kept.close();
    });

    test("publishing with no subscriber succeeds; closing the bus ends its subscriptions", async () => {
      const h = await make();
      await h.bus.publish("exoclaw.nobody", enc("x"));
      const sub = h.bus.subscribe("exoclaw.z");
      const pending = sub.next();
      await h[Symbol.asyncDispose]();
      expect(await Promise.race([pending, Bun.sleep(3000).then(() => "still waiting")])).toEqual({
        value: undefined,
        done: true,
      });
    });
  });
}
