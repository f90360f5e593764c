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
 */
import { nuid } from "@nats-io/transport-node";
import type { UsageLedger, UsageRecord } from "../usage-ledger.ts";
import { sumRecords } from "../usage.ts";
import { dec, enc, type NatsContext, token } from "./context.ts";

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
  const from = (await ctx.jsm.streams.info(stream)).state.last_seq + 1;
  for (const m of await ctx.scan(stream, `${prefix}.>`, { lastPerSubject: true })) take(m.subject, m.data);
  await ctx.follow(stream, from, (m) => take(m.subject, m.data));

  /** Applies a write to the view at once, publishes it, and takes it back if the publish fails. */
  const write = (subject: string, row: UsageRecord): Promise<void> => {
    const before = view.get(subject);
    const held: Held = { row, w: me, v: ++version };
    view.set(subject, held);
    return ctx
      .run("record usage", async () => {
        await ctx.js.publish(subject, enc({ ...row, w: me, v: held.v }), { expect: { streamName: stream } });
      })
      .catch((e: unknown) => {
        if (view.get(subject) === held) before === undefined ? view.delete(subject) : view.set(subject, before);
        throw e;
      });
  };
  return {
    recordUsage: (r) => write(r.call !== undefined ? `${prefix}.c.${token(r.call)}` : `${prefix}.r.${nuid.next()}`, { ...r }),
    updateUsage(call, u) {
      const subject = `${prefix}.c.${token(call)}`;
      const old = view.get(subject);
      if (!old) return Promise.resolve();
      return write(subject, { ...old.row, ...u });
    },
    sumUsage: (q) => ctx.run("sum usage", async () => sumRecords([...view.values()].map((h) => h.row), q)),
  };
}
