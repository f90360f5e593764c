/**
 * The cancel fan-out itself (src/gateway/cancel.ts) over the in-process bus: answers from every
 * gateway are summed, a namespace never hears another's cancels, a session id is one escaped token,
 * and a gateway that is expected but never answers bounds the wait instead of hanging it.
 */
import { expect, test } from "bun:test";
import { createLocalBus } from "../../src/bus/index.ts";
import { SessionCancel } from "../../src/gateway/cancel.ts";
import { createLogger } from "../../src/lib/log.ts";

const logs: string[] = [];
const log = createLogger({ format: "json", level: "debug", write: (l) => logs.push(l) });

/** The in-process bus, saying it is on NATS: a caller then waits for every gateway its heartbeats list. */
const asIfNats = (local: ReturnType<typeof createLocalBus>) =>
  Object.assign(Object.create(local), { mode: "nats" as const }) as ReturnType<typeof createLocalBus>;

/** A gateway's side: the sessions it runs turns of, and which ones it was asked to cancel. */
function gateway(bus: ReturnType<typeof createLocalBus>, id: string, running: Record<string, number>, ns = "exo") {
  const asked: string[] = [];
  const cancel = new SessionCancel({
    bus,
    namespace: ns,
    id,
    cancelLocal: (s) => {
      asked.push(s);
      const n = running[s] ?? 0;
      delete running[s];
      return n;
    },
    peers: async () => ["a", "b"],
    log,
  });
  return { cancel, asked };
}

test("answers of every gateway on the bus are summed; another namespace hears nothing", async () => {
  const bus = asIfNats(createLocalBus());
  const a = gateway(bus, "a", { "main:ws:local:x": 1 });
  const b = gateway(bus, "b", { "main:ws:local:x": 2, "main:ws:local:y": 1 });
  const other = gateway(bus, "c", { "main:ws:local:x": 5 }, "elsewhere");
  expect(await b.cancel.cancel("main:ws:local:x")).toBe(3);
  expect(a.asked).toEqual(["main:ws:local:x"]);
  expect(b.asked).toEqual(["main:ws:local:x"]);
  expect(other.asked).toEqual([]);
  expect(await a.cancel.cancel("main:ws:local:x")).toBe(0);
  expect(await a.cancel.cancel("main:ws:local:y")).toBe(1);
  for (const g of [a, b, other]) await g.cancel.stop();
});

test("a session id is one escaped token of the subject", () => {
  const { cancel } = gateway(createLocalBus(), "a", {});
  expect(cancel.subject(">")).toBe("exo.cancel.=3E");
  expect(cancel.subject("a.*")).toBe("exo.cancel.a=2E=2A");
  expect(cancel.subject("main:ws:local:a b")).toBe("exo.cancel.main=3Aws=3Alocal=3Aa=20b");
  expect(cancel.subject("")).toBe("exo.cancel.=");
});

test("an expected gateway that never answers bounds the wait; the answers that came are counted and the silence logged", async () => {
  const bus = asIfNats(createLocalBus());
  const asked: string[] = [];
  const cancel = new SessionCancel({
    bus,
    namespace: "exo",
    id: "a",
    cancelLocal: (s) => (asked.push(s), 1),
    peers: async () => ["a", "ghost"],
    timeoutMs: 200,
    log,
  });
  expect(await cancel.cancel("main:ws:local:z")).toBe(1);
  expect(asked).toEqual(["main:ws:local:z"]);
  expect(logs.some((l) => l.includes("did not answer a cancel") && l.includes("ghost"))).toBe(true);
  await cancel.stop();
});
