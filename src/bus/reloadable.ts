/**
 * The gateway's bus, following `[bus] nats_url` across reloads: the in-process bus when it is empty,
 * NATS core (./nats.ts) when set. A reload that changes the URL opens the new bus, moves every
 * subscription to it and closes the old one; publishers hold this object and never notice.
 */
import type { Logger } from "../lib/log.ts";
import { createLocalBus, createSubscription } from "./local.ts";
import { createNatsBus } from "./nats.ts";
import type { Bus, BusMessage } from "./types.ts";

export interface ReloadableBus extends Bus {
  /** The NATS URL in use ("" for the in-process bus). */
  readonly url: string;
  /** Switches to `url` ("" = in-process) when it differs from the one in use; resolves when the old bus closed. */
  reload(url: string): Promise<void>;
}

export function createReloadableBus(url: string, log: Logger): ReloadableBus {
  const open = (u: string): Bus => (u ? createNatsBus({ url: u, log }) : createLocalBus());
  let current = { url, bus: open(url) };
  type Outer = {
    subject: string;
    push: (m: BusMessage) => void;
    close: () => void;
    inner: ReturnType<Bus["subscribe"]>;
  };
  const subs = new Set<Outer>();
  const pipe = (o: Pick<Outer, "subject" | "push">, bus: Bus): ReturnType<Bus["subscribe"]> => {
    const inner = bus.subscribe(o.subject);
    void (async () => {
      for await (const m of inner) o.push(m);
    })();
    return inner;
  };
  let closed = false;
  return {
    get mode() {
      return current.bus.mode;
    },
    get url() {
      return current.url;
    },
    publish: (subject, data) => current.bus.publish(subject, data),
    subscribe(subject) {
      const sub = createSubscription(() => {
        o.inner.close();
        subs.delete(o);
      });
      const o: Outer = { subject, push: (m) => sub.push(m), close: () => sub.close(), inner: undefined as never };
      o.inner = pipe(o, current.bus);
      subs.add(o);
      return sub;
    },
    async reload(next) {
      if (closed || next === current.url) return;
      const old = current;
      current = { url: next, bus: open(next) };
      for (const o of subs) {
        o.inner.close();
        o.inner = pipe(o, current.bus);
      }
      log.info(next ? "bus switched to nats" : "bus switched to in-process", { ...(next && { url: next }) });
      await old.bus.close();
    },
    async close() {
      closed = true;
      for (const o of [...subs]) o.close();
      await current.bus.close();
    },
  };
}
