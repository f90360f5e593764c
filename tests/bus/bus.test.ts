/** The bus (SPEC §12): subjects and their escaping, the in-process bus, and the NATS bus against a real nats-server (two buses, NATS down and back). */
import { describe, expect, test } from "bun:test";
import { createLocalBus, createNatsBus, inboundSubject, subjectMatches, subjectToken } from "../../src/bus/index.ts";
import type { Bus, BusMessage } from "../../src/bus/index.ts";
import { silentLogger } from "../../src/lib/log.ts";
import { startNatsServer } from "../helpers/nats.ts";

const enc = (s: string) => new TextEncoder().encode(s);
const dec = (m: BusMessage) => new TextDecoder().decode(m.data);
async function take(it: AsyncIterator<BusMessage>, n: number, timeoutMs = 3000): Promise<string[]> {
  const out: string[] = [];
  const deadline = Date.now() + timeoutMs;
  while (out.length < n) {
    const r = await Promise.race([it.next(), Bun.sleep(Math.max(0, deadline - Date.now())).then(() => null)]);
    if (!r || r.done) break;
    out.push(`${r.value.subject}=${dec(r.value)}`);
  }
  return out;
}
const until = async (f: () => boolean, ms = 5000) => {
  for (let t = 0; t < ms && !f(); t += 20) await Bun.sleep(20);
};

describe("subjects", () => {
  test("wildcards and escaping", () => {
    expect(subjectMatches("exoclaw.>", "exoclaw.telegram.bot.1")).toBe(true);
    expect(subjectMatches("exoclaw.*.bot.*", "exoclaw.telegram.bot.1")).toBe(true);
    expect(subjectMatches("exoclaw.*", "exoclaw.telegram.bot")).toBe(false);
    expect(subjectMatches("exoclaw.>", "exoclaw")).toBe(false);
    expect(subjectToken("a.b *c>d%")).toBe("a%2Eb%20%2Ac%3Ed%25");
    expect(inboundSubject("telegram", "bot", "-100.5")).toBe("exoclaw.telegram.bot.-100%2E5");
    expect(inboundSubject("ws", "local", null)).toBe("exoclaw.ws.local.main");
  });
});

describe("local bus", () => {
  test("delivers to matching subscribers, in order, until closed", async () => {
    const bus = createLocalBus();
    const all = bus.subscribe("exoclaw.>");
    const tg = bus.subscribe("exoclaw.telegram.*.*");
    await bus.publish("exoclaw.telegram.bot.1", enc("a"));
    await bus.publish("exoclaw.slack.app.C1", enc("b"));
    expect(await take(all, 2)).toEqual(["exoclaw.telegram.bot.1=a", "exoclaw.slack.app.C1=b"]);
    expect(await take(tg, 1)).toEqual(["exoclaw.telegram.bot.1=a"]);
    tg.close();
    expect((await tg.next()).done).toBe(true);
    await bus.close();
  });
});

describe("NATS bus (real nats-server)", () => {
  test("two gateways exchange messages through NATS", async () => {
    await using nats = await startNatsServer();
    const a = createNatsBus({ url: nats.url, log: silentLogger });
    const b = createNatsBus({ url: nats.url, log: silentLogger });
    try {
      await until(() => a.mode === "nats" && b.mode === "nats");
      expect([a.mode, b.mode]).toEqual(["nats", "nats"]);
      const sub = b.subscribe("exoclaw.>");
      // A round trip through the server on b's own connection (a flush): once its probe comes back,
      // the server has b's subscription, so what a publishes next reaches it.
      await b.publish("exoclaw.probe", enc("ready?"));
      expect(await take(sub, 1)).toEqual(["exoclaw.probe=ready?"]);
      await a.publish("exoclaw.telegram.bot.42", enc("hello from a"));
      expect(await take(sub, 1)).toEqual(["exoclaw.telegram.bot.42=hello from a"]);
    } finally {
      await a.close();
      await b.close();
    }
  });

  test("NATS down at start: the bus works in-process, then switches to NATS when it comes up, and back when it dies", async () => {
    await using nats = await startNatsServer();
    await nats.stop();
    const bus: Bus = createNatsBus({ url: nats.url, log: silentLogger, reconnectWaitMs: 100 });
    try {
      expect(bus.mode).toBe("local");
      const sub = bus.subscribe("exoclaw.>");
      await bus.publish("exoclaw.ws.local.main", enc("while down"));
      expect(await take(sub, 1)).toEqual(["exoclaw.ws.local.main=while down"]);
      await nats.start();
      await until(() => bus.mode === "nats");
      expect(bus.mode).toBe("nats");
      // No wait: the subscription is sent on the connection before this publish, and NATS keeps the
      // order of one connection, so the message comes back through NATS.
      await bus.publish("exoclaw.ws.local.main", enc("through nats"));
      expect(await take(sub, 1)).toEqual(["exoclaw.ws.local.main=through nats"]);
      await nats.stop();
      await until(() => bus.mode === "local");
      expect(bus.mode).toBe("local");
      await bus.publish("exoclaw.ws.local.main", enc("down again"));
      expect(await take(sub, 1)).toEqual(["exoclaw.ws.local.main=down again"]);
    } finally {
      await bus.close();
    }
  }, 30_000);
});
