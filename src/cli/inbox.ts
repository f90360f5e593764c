/**
 * `exoclaw inbox list | retry ID | drop ID`: channel messages not answered yet (SPEC §13) — pending
 * ones the gateway still retries, and dead-lettered ones (a permanent refusal, or the last attempt
 * failed) that wait for the operator. Through the running gateway when one answers (`inbox.*`: a
 * retry is delivered at once); else straight in the store, where a re-queued message is delivered
 * when the gateway next starts.
 */
import { defineCommand } from "citty";
import { Inbox, type InboxEntry, type RetryResult } from "../channels/index.ts";
import { ExoError } from "../lib/errors.ts";
import { clientArgs, stringFlag } from "./_args.ts";
import { type BackendSpec, iso, print, printSections, withBackend } from "./_backend.ts";

interface InboxBackend {
  list(filter: { channel?: string; state?: InboxEntry["state"] }): Promise<InboxEntry[]>;
  retry(id: string): Promise<RetryResult>;
  drop(id: string): Promise<InboxEntry>;
}

/** A retry waits for the delivery it starts: a stored reply is one send, a turn may take minutes. */
const RETRY_TIMEOUT_MS = 10 * 60_000;

const inbox: BackendSpec<InboxBackend> = {
  memoryRefusal: "messages",
  gateway: (client) => ({
    list: async (filter) => ((await client.call("inbox.list", filter)) as { messages: InboxEntry[] }).messages,
    retry: (id) => client.call("inbox.retry", { id }, RETRY_TIMEOUT_MS) as Promise<RetryResult>,
    drop: async (id) => ((await client.call("inbox.drop", { id })) as { dropped: InboxEntry }).dropped,
  }),
  empty: (home) => {
    const none = () =>
      Promise.reject(
        new ExoError("not_found", `no messages: no gateway has run with this state directory yet (${home})`),
      );
    return { list: async () => [], retry: none, drop: none };
  },
  store: (store) => {
    const box = new Inbox(store);
    return { list: (f) => box.list(f), retry: (id) => box.retry(id), drop: (id) => box.drop(id) };
  },
};

/** When the next attempt is, as a person reads it. */
function due(at: number, now: number): string {
  const s = Math.round((at - now) / 1000);
  if (s <= 0) return "next attempt now";
  if (s < 120) return `next attempt in ${s} s`;
  if (s < 7200) return `next attempt in ${Math.round(s / 60)} min`;
  return `next attempt at ${iso(at)}`;
}

export function formatEntry(e: InboxEntry, now: number): string {
  const state = e.state === "dead" ? `DEAD since ${iso(e.dead_at ?? 0)}` : due(e.next_at ?? 0, now);
  return [
    `  ${e.id}  ${e.channel} peer ${e.peer}  ${e.attempts} attempt(s), ${state}${e.reply_stored ? ", reply stored" : ""}`,
    ...(e.last_error ? [`      last error: ${e.last_error}`] : []),
    ...(e.text ? [`      message:    ${JSON.stringify(e.text)}`] : []),
  ].join("\n");
}

function describeRetry(r: RetryResult): string {
  switch (r.state) {
    case "sent":
      return `delivered ${r.id}`;
    case "refused":
      return `${r.id}: its sender may no longer talk on this channel (pairing, allowlist): done, nothing sent`;
    case "busy":
      return `${r.id} is being delivered right now`;
    case "cancelled":
      return `${r.id}: its turn was cancelled (chat.cancel): done, nothing sent`;
    case "queued":
      return `re-queued ${r.id}: no gateway is running; it is delivered when \`exoclaw gateway\` starts`;
    case "pending":
      return `${r.id} failed again (${r.error}): it stays pending, ${due(r.next_at, Date.now())}`;
    case "dead":
      return `${r.id} failed again (${r.error}): still dead-lettered`;
    default: {
      const never: never = r;
      return String(never);
    }
  }
}

const common = { ...clientArgs, json: { type: "boolean", description: "Print JSON" } } as const;
const listArgs = {
  ...common,
  channel: { type: "string", description: "Only this channel" },
  dead: { type: "boolean", description: "Only dead-lettered messages" },
} as const;

const list = defineCommand({
  meta: { name: "list", description: "Channel messages not answered yet: pending retries and dead-lettered ones" },
  args: listArgs,
  run: ({ args }) =>
    withBackend(args, inbox, async (b) => {
      const channel = stringFlag("channel", args.channel);
      const all = await b.list({
        ...(channel !== undefined && { channel }),
        ...(args.dead && { state: "dead" as const }),
      });
      if (args.json) return print(JSON.stringify({ messages: all }, null, 2));
      if (all.length === 0) return print("the inbox is empty: every channel message was answered");
      const now = Date.now();
      const of = (state: InboxEntry["state"]) => all.filter((e) => e.state === state).map((e) => formatEntry(e, now));
      printSections([
        ["DEAD-LETTERED (deliver with `exoclaw inbox retry ID`, give up with `exoclaw inbox drop ID`)", of("dead")],
        ["PENDING (retried by the gateway)", of("pending")],
      ]);
    }),
});

const idArg = {
  id: { type: "positional", description: "The message id, e.g. telegram:679892927 (see `inbox list`)", required: true },
} as const;

const retry = defineCommand({
  meta: {
    name: "retry",
    description: "Deliver a message again now (its stored reply, or a new turn if it has none), with fresh attempts",
  },
  args: { ...common, ...idArg },
  run: ({ args }) =>
    withBackend(args, inbox, async (b) => {
      const r = await b.retry(String(args.id));
      print(args.json ? JSON.stringify(r) : describeRetry(r));
      // A retry that did not deliver is a failure a script should notice.
      return r.state === "pending" || r.state === "dead" ? 1 : 0;
    }),
});

const drop = defineCommand({
  meta: { name: "drop", description: "Give a message up: it is never sent" },
  args: { ...common, ...idArg },
  run: ({ args }) =>
    withBackend(args, inbox, async (b) => {
      const e = await b.drop(String(args.id));
      print(args.json ? JSON.stringify(e) : `dropped ${e.id} (${e.channel} peer ${e.peer}): it will not be sent`);
    }),
});

export default defineCommand({
  meta: { name: "inbox", description: "Channel messages not answered yet: list, retry and drop dead-lettered ones" },
  // `exoclaw inbox --dead` means `inbox list --dead`: the flags must be known here too.
  args: listArgs,
  subCommands: { list, retry, drop },
  default: "list",
});
