/**
 * The usage ledger on NATS: a stream with one subject per row (`<ns>.usage.c.<call>` for a call's
 * write-ahead row, `<ns>.usage.r.<id>` for a final one) keeping only each subject's last message, so
 * settling a call replaces its row. Every gateway holds the ledger as an in-process view: read
 * through the stream at open, then followed; its own writes count in the view the moment they are
 * called (the port's visibility rule) and are taken back if JetStream refuses them. Sums read the view.
 *
 * Each message names its writer and the writer's version of it, so the follower never puts an older
 * version of a gateway's own row over a newer one it already counts, and still takes a write whose
 * acknowledgement was lost (taken back, yet stored).
 *
 * A reservation is compare-and-set on the whole ledger: it waits until the view holds every message
 * up to the stream's last sequence L, checks the limits against it, and publishes its pending row
 * expecting the stream's last sequence to still be L (`Nats-Expected-Last-Sequence`). Any usage write
 * that landed in between — another gateway's reservation, row or settle — makes it lose; it then
 * catches up and checks again. So every reservation is checked against exactly the ledger it lands
 * on, whatever its limits' queries (any session, person, agent, window), like SQLite's one write
 * transaction. Reservations of one gateway run one at a time (no lost race among themselves).
 */
import { nuid } from "@nats-io/transport-node";
import { StoreError } from "../errors.ts";
import type { UsageLedger, UsageRecord } from "../usage-ledger.ts";
import { firstExceeded, sumRecords } from "../usage.ts";
import { dec, enc, isWrongLastSequence, type NatsContext, token, unanswered } from "./context.ts";

type Wire = UsageRecord & { w: string; v: number };
interface Held {
  row: UsageRecord;
  w: string;
  v: number;
}

export async function natsUsageLedger(ctx: NatsContext): Promise<UsageLedger> {
  const stream = ctx.name("usage");
  const prefix = ctx.subject("usage");
  await ctx.ensureStream({ name: stream, subjects: [`${prefix}.>`], max_msgs_per_subject: 1 });
  const me = nuid.next();
  let version = 0;
  const view = new Map<string, Held>();
  const take = (subject: string, data: Uint8Array) => {
    const { w, v, ...row } = dec<Wire>(data);
    const held = view.get(subject);
    if (held && held.w === w && held.v >= v) return;
    view.set(subject, { row, w, v });
  };
  /** The view holds every message up to this stream sequence (the scan at open, then the tail). */
  let through = 0;
  let waiters: { seq: number; done: () => void }[] = [];
  const reached = (seq: number) => {
    if (seq <= through) return;
    through = seq;
    const ready = waiters.filter((w) => w.seq <= through);
    if (ready.length === 0) return;
    waiters = waiters.filter((w) => w.seq > through);
    for (const w of ready) w.done();
  };
  const from = (await ctx.jsm.streams.info(stream)).state.last_seq + 1;
  for (const m of await ctx.scan(stream, `${prefix}.>`, { lastPerSubject: true })) take(m.subject, m.data);
  through = from - 1;
  await ctx.follow(stream, from, (m) => {
    take(m.subject, m.data);
    reached(m.seq);
  });
  /** Resolves once the view holds everything up to `seq` (the tail delivers it within milliseconds). */
  const caughtUp = (seq: number): Promise<void> =>
    seq <= through
      ? Promise.resolve()
      : new Promise((resolve, reject) => {
          const w = { seq, done: () => (clearTimeout(timer), resolve()) };
          const timer = setTimeout(() => {
            waiters = waiters.filter((x) => x !== w);
            reject(
              new StoreError(
                `the usage ledger's view on this gateway is behind the stream (at ${through} of ${seq}); try again`,
              ),
            );
          }, 10_000);
          waiters.push(w);
        });
  /** This gateway's writes not acknowledged yet: a reservation waits for them (they may land before it). */
  const inFlight = new Set<Promise<unknown>>();
  /** Reservations of this gateway, one at a time. */
  let reserving: Promise<unknown> = Promise.resolve();
  /** The stream's last sequence as this gateway last knew it with the view complete through it (null: ask). */
  let known: number | null = null;

  /** Applies a write to the view at once, publishes it, and takes it back if the publish fails. */
  const write = (subject: string, row: UsageRecord): Promise<void> => {
    const before = view.get(subject);
    const held: Held = { row, w: me, v: ++version };
    view.set(subject, held);
    const p = ctx
      .write("record usage", async () => {
        // Tried again while unanswered: the Nats-Msg-Id makes a landed first try a duplicate.
        await ctx.js.publish(subject, enc({ ...row, w: me, v: held.v }), {
          msgID: `${me}:${held.v}`,
          expect: { streamName: stream },
        });
      })
      .catch((e: unknown) => {
        if (view.get(subject) === held) before === undefined ? view.delete(subject) : view.set(subject, before);
        throw e;
      });
    inFlight.add(p);
    void p.then(
      () => inFlight.delete(p),
      () => inFlight.delete(p),
    );
    return p;
  };

  /** One reservation: catch up, check, publish expecting the ledger unchanged; a lost race goes again. */
  const reserveOnce = async (r: UsageRecord, limits: Parameters<UsageLedger["reserveUsage"]>[1]) => {
    await Promise.allSettled([...inFlight]);
    const subject = r.call !== undefined ? `${prefix}.c.${token(r.call)}` : `${prefix}.r.${nuid.next()}`;
    // How long a reservation NATS does not answer is tried again (a leader re-elected after a node's loss).
    const end = Date.now() + 20_000;
    for (let attempt = 0; ; attempt++) {
      const fresh = known === null;
      if (known === null) {
        const last = (await ctx.read("read the usage ledger", () => ctx.jsm.streams.info(stream))).state.last_seq;
        await caughtUp(last);
        known = last;
      }
      const expected = known;
      const over = firstExceeded(r, limits, (q) =>
        sumRecords(
          [...view.values()].map((h) => h.row),
          q,
        ),
      );
      if (over) {
        // A refusal is only as good as the view: one not read just now may miss another gateway's settle.
        if (fresh) return over;
        known = null;
        continue;
      }
      const held: Held = { row: { ...r }, w: me, v: ++version };
      try {
        const ack = await ctx.js.publish(subject, enc({ ...r, w: me, v: held.v }), {
          expect: { streamName: stream, lastSequence: expected },
        });
        known = ack.seq; // nothing landed between `expected` and this row
      } catch (e) {
        known = null;
        if (isWrongLastSequence(e)) {
          if (attempt >= 200)
            throw new StoreError(
              `cannot reserve usage: the ledger kept changing under ${attempt} attempts (other gateways' writes); try again`,
            );
          continue;
        }
        // No acknowledgement: it may have landed all the same (then it counts, as the follower shows).
        const sm = await ctx
          .read("read a usage reservation", () => ctx.jsm.streams.getMessage(stream, { last_by_subj: subject }))
          .catch(() => null);
        const got = sm ? dec<Wire>(sm.data) : null;
        if (!got || got.w !== me || got.v !== held.v) {
          // Not landed (as far as the leader says): NATS did not answer, so the same check and publish again.
          if (!unanswered(e) || !ctx.connected() || Date.now() > end) throw e;
          await Bun.sleep(200);
          continue;
        }
      }
      const now = view.get(subject);
      if (!(now && now.w === me && now.v > held.v)) view.set(subject, held);
      return null;
    }
  };
  return {
    recordUsage: (r) =>
      write(r.call !== undefined ? `${prefix}.c.${token(r.call)}` : `${prefix}.r.${nuid.next()}`, { ...r }),
    updateUsage(call, u) {
      const subject = `${prefix}.c.${token(call)}`;
      const old = view.get(subject);
      if (!old) return Promise.resolve();
      return write(subject, { ...old.row, ...u });
    },
    reserveUsage(r, limits) {
      const p = reserving.then(() => ctx.run("reserve usage", () => reserveOnce(r, limits)));
      reserving = p.catch(() => {});
      return p;
    },
    sumUsage: (q) =>
      ctx.read("sum usage", async () =>
        sumRecords(
          [...view.values()].map((h) => h.row),
          q,
        ),
      ),
  };
}
