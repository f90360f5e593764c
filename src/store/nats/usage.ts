/**
 * The usage ledger on NATS: a stream with one subject per row (`<ns>.usage.c.<call>` for a call's
 * write-ahead row, `<ns>.usage.r.<id>` for a final one) keeping only each subject's last message, so
 * settling a call replaces its row. Every gateway holds the ledger as an in-process view: read
 * through the stream at open, then followed; its own writes count in the view the moment they are
 * called (the port's visibility rule) and are taken back if JetStream refuses them. Sums read the view.
 */
import { nuid } from "@nats-io/transport-node";
import type { UsageLedger, UsageRecord } from "../usage-ledger.ts";
import { sumRecords } from "../usage.ts";
import { ensureStream } from "./conversations.ts";
import { dec, enc, type NatsContext, token } from "./context.ts";

type Row = UsageRecord & { w?: string };

export async function natsUsageLedger(ctx: NatsContext): Promise<UsageLedger> {
  const stream = ctx.name("usage");
  const prefix = ctx.subject("usage");
  await ensureStream(ctx, { name: stream, subjects: [`${prefix}.>`], max_msgs_per_subject: 1 });
  const me = nuid.next();
  const view = new Map<string, UsageRecord>();
  const bySubject = (subject: string, data: Uint8Array) => {
    const { w, ...row } = dec<Row>(data);
    if (w !== me) view.set(subject, row);
  };
  const from = (await ctx.jsm.streams.info(stream)).state.last_seq + 1;
  for (const m of await ctx.scan(stream, `${prefix}.>`, { lastPerSubject: true })) bySubject(m.subject, m.data);
  await ctx.follow(stream, from, (m) => bySubject(m.subject, m.data));

  /** Applies a write to the view at once, publishes it, and takes it back if the publish fails. */
  const write = (doing: string, subject: string, row: UsageRecord): Promise<void> => {
    const before = view.get(subject);
    view.set(subject, row);
    return ctx
      .run(doing, async () => {
        await ctx.js.publish(subject, enc({ ...row, w: me }), { expect: { streamName: stream } });
      })
      .catch((e: unknown) => {
        if (view.get(subject) === row) before === undefined ? view.delete(subject) : view.set(subject, before);
        throw e;
      });
  };
  return {
    recordUsage: (r) => write("record usage", r.call !== undefined ? `${prefix}.c.${token(r.call)}` : `${prefix}.r.${nuid.next()}`, { ...r }),
    updateUsage(call, u) {
      const subject = `${prefix}.c.${token(call)}`;
      const old = view.get(subject);
      if (!old) return Promise.resolve();
      return write("record usage", subject, { ...old, ...u });
    },
    sumUsage: (q) => ctx.run("sum usage", async () => sumRecords([...view.values()], q)),
  };
}
