/**
 * `exoclaw pairing list | approve CODE | revoke PERSON`: who may talk on the channels (SPEC §13).
 * Through the running gateway when one answers (`pairing.*` over the WebSocket protocol: works for
 * every store and for a gateway on another machine); else straight in the store, which is where
 * the gateway keeps pairings and reads them on every message (SQLite allows a second process), so
 * an approval made while the gateway is down counts as soon as it starts.
 */
import { defineCommand } from "citty";
import { Pairings, type PairingView } from "../channels/index.ts";
import { ExoError } from "../lib/errors.ts";
import { clientArgs, stringFlag } from "./_args.ts";
import { type BackendSpec, iso, print, printSections, withBackend } from "./_backend.ts";

interface PairingBackend {
  list(channel?: string): Promise<PairingView[]>;
  approve(code: string): Promise<PairingView>;
  revoke(person: string): Promise<PairingView>;
}

const pairings: BackendSpec<PairingBackend> = {
  memoryRefusal: "pairings",
  gateway: (client) => ({
    list: async (channel) =>
      ((await client.call("pairing.list", channel === undefined ? {} : { channel })) as { pairings: PairingView[] })
        .pairings,
    approve: (code) => client.call("pairing.approve", { code }) as Promise<PairingView>,
    revoke: (person) => client.call("pairing.revoke", { person }) as Promise<PairingView>,
  }),
  empty: (home) => {
    const none = (what: string) =>
      Promise.reject(
        new ExoError("not_found", `no ${what}: no gateway has run with this state directory yet (${home})`),
      );
    return { list: async () => [], approve: () => none("pending pairing code"), revoke: () => none("pairing") };
  },
  store: (store) => {
    const p = new Pairings(store);
    return { list: (channel) => p.list(channel), approve: (c) => p.approve(c), revoke: (person) => p.revoke(person) };
  },
};

const common = { ...clientArgs, json: { type: "boolean", description: "Print JSON" } } as const;
const listArgs = { ...common, channel: { type: "string", description: "Only this channel" } } as const;

const list = defineCommand({
  meta: { name: "list", description: "Pending pairing codes and approved people" },
  args: listArgs,
  run: ({ args }) =>
    withBackend(args, pairings, async (b) => {
      const all = await b.list(stringFlag("channel", args.channel));
      if (args.json) return print(JSON.stringify({ pairings: all }, null, 2));
      if (all.length === 0) return print("no pairing requests and nobody approved yet");
      printSections([
        [
          "PENDING (approve with `exoclaw pairing approve CODE`)",
          all
            .filter((p) => p.status === "pending")
            .map((p) => `  ${p.code}  ${p.person}  asked ${iso(p.created_at)}, expires ${iso(p.expires_at ?? 0)}`),
        ],
        [
          "APPROVED (revoke with `exoclaw pairing revoke PERSON`)",
          all
            .filter((p) => p.status === "approved")
            .map((p) => `  ${p.person}  since ${iso(p.approved_at ?? p.created_at)}`),
        ],
      ]);
    }),
});

const approve = defineCommand({
  meta: { name: "approve", description: "Let the person who was sent CODE talk to the agents" },
  args: { ...common, code: { type: "positional", description: "The pairing code, e.g. K7M2QX9P", required: true } },
  run: ({ args }) =>
    withBackend(args, pairings, async (b) => {
      const p = await b.approve(String(args.code));
      print(args.json ? JSON.stringify(p) : `approved ${p.person}: their next message is answered`);
    }),
});

const revoke = defineCommand({
  meta: { name: "revoke", description: "Forget an approved person (or a pending request); they are a stranger again" },
  args: {
    ...common,
    person: {
      type: "positional",
      description: "The person, e.g. telegram:bot:1561073042 (see `pairing list`)",
      required: true,
    },
  },
  run: ({ args }) =>
    withBackend(args, pairings, async (b) => {
      const p = await b.revoke(String(args.person));
      print(
        args.json
          ? JSON.stringify(p)
          : `revoked ${p.person}: their next message gets a new pairing code (if dm_policy = "pairing") and no answer`,
      );
    }),
});

export default defineCommand({
  meta: { name: "pairing", description: "Who may talk on the channels: list, approve and revoke pairings" },
  // `exoclaw pairing --port N` means `pairing list --port N`: the flags must be known here too.
  args: listArgs,
  subCommands: { list, approve, revoke },
  default: "list",
});
