/** Every bus against the Bus contract (tests/bus/contract.ts), NATS on a real nats-server. */
import { afterAll, beforeAll } from "bun:test";
import { type Bus, createLocalBus, createNatsBus, createReloadableBus } from "../../src/bus/index.ts";
import { silentLogger } from "../../src/lib/log.ts";
import { type NatsServer, startNatsServer } from "../helpers/nats.ts";
import { busContract } from "./contract.ts";

let nats: NatsServer;
beforeAll(async () => {
  nats = await startNatsServer();
});
afterAll(async () => {
  await nats[Symbol.asyncDispose]();
});

/** A harness around `bus`, once it is connected when it is a NATS bus. */
async function ready(bus: Bus, want: Bus["mode"]) {
  for (let i = 0; i < 200 && bus.mode !== want; i++) await Bun.sleep(25);
  if (bus.mode !== want) throw new Error(`bus not ${want} after 5 s`);
  return { bus, [Symbol.asyncDispose]: () => bus.close() };
}

busContract("local", () => ready(createLocalBus(), "local"));
busContract("nats", () => ready(createNatsBus({ url: nats.url, log: silentLogger }), "nats"));
busContract("reloadable, in-process", () => ready(createReloadableBus("", silentLogger), "local"));
busContract("reloadable, nats", () => ready(createReloadableBus(nats.url, silentLogger), "nats"));
