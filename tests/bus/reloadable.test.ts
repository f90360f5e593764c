/**
 * The gateway's reloadable bus (src/bus/reloadable.ts) against a real nats-server: a subscription
 * made before a switch keeps receiving after it — from NATS once switched there, in-process once
 * switched back — and `mode`/`url` say which bus is in use.
 */
import { expect, test } from "bun:test";
import { createNatsBus, createReloadableBus } from "../../src/bus/index.ts";
import { silentLogger } from "../../src/lib/log.ts";
import { startNatsServer } from "../helpers/nats.ts";

const bytes = (s: string) => new TextEncoder().encode(s);
const text = (b: Uint8Array | undefined) => (b ? new TextDecoder().decode(b) : null);
const next = <T>(it: AsyncIterator<T>, ms = 3000) =>
  Promise.race([it.next().then((r) => r.value), Bun.sleep(ms).then(() => null)]);

test("subscriptions follow the bus across a switch to NATS and back", async () => {
  await using nats = await startNatsServer();
  const bus = createReloadableBus("", silentLogger);
  const other = createNatsBus({ url: nats.url, log: silentLogger });
  try {
    const sub = bus.subscribe("exoclaw.>");
    await bus.publish("exoclaw.a", bytes("local"));
    expect(text((await next(sub))?.data)).toBe("local");
    expect([bus.mode, bus.url]).toEqual(["local", ""]);

    await bus.reload(nats.url);
    expect(bus.url).toBe(nats.url);
    for (let i = 0; i < 200 && (bus.mode !== "nats" || other.mode !== "nats"); i++) await Bun.sleep(25);
    expect(bus.mode).toBe("nats");
    // Another process's message reaches the subscription made before the switch (retried until the
    // server has the subscription: NATS core drops what no one is subscribed to yet).
    let got: string | null = null;
    for (let i = 0; i < 60 && got === null; i++) {
      await other.publish("exoclaw.b", bytes("from nats"));
      got = text((await next(sub, 50))?.data);
    }
    expect(got).toBe("from nats");

    await bus.reload("");
    expect([bus.mode, bus.url]).toEqual(["local", ""]);
    await bus.publish("exoclaw.c", bytes("local again"));
    // Drop anything NATS still delivered in flight, then the local message arrives.
    let last: string | null = null;
    for (let i = 0; i < 100 && last !== "local again"; i++) last = text((await next(sub, 100))?.data);
    expect(last).toBe("local again");
  } finally {
    await other.close();
    await bus.close();
  }
});

test("close ends the subscriptions", async () => {
  const bus = createReloadableBus("", silentLogger);
  const sub = bus.subscribe("x");
  await bus.close();
  expect(await sub.next()).toEqual({ value: undefined, done: true });
});
