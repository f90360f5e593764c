/**
 * `exoclaw pairing list | approve CODE | revoke PERSON`: who may talk on the channels (SPEC §13).
 * Through the running gateway when one answers (`pairing.*` over the WebSocket protocol: works for
 * every store and for a gateway on another machine); else straight in the store, which is where
 * the gateway keeps pairings and reads them on every message (SQLite allows a second process), so
 * an approval made while the gateway is down counts as soon as it starts.
 */
import { defineCommand } from "citty";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { openStore } from "../app.ts";
import { Pairings, type PairingView } from "../channels/index.ts";
import { type Config, loadConfig } from "../config/index.ts";
import { ExoError, UnavailableError } from "../lib/errors.ts";
import { clientArgs, parsePort, stringFlag } from "./_args.ts";
import { connectGateway, gatewayUrl } from "./_client.ts";

interface PairingBackend {
  list(channel?: string): Promise<PairingView[]>;
  approve(code: string): Promise<PairingView>;
  revoke(person: string): Promise<PairingView>;
  close(): Promise<void>;
}

async function openBackend(config: Config, args: Record<string, unknown>): Promise<PairingBackend> {
  const url = gatewayUrl(config, { url: stringFlag("url", args.url), port: parsePort(stringFlag("port", args.port)) });
  try {
    const client = await connectGateway(url, config.gateway.token, 2000);
    return {
      list: async (channel) => ((await client.call("pairing.list", channel === undefined ? {} : { channel })) as { pairings: PairingView[] }).pairings,
      approve: (code) => client.call("pairing.approve", { code }) as Promise<PairingView>,
      revoke: (person) => client.call("pairing.revoke", { person }) as Promise<PairingView>,
      close: async () => client.close(),
    };
  } catch (e) {
    // Only "nobody is listening" means go to the store; a gateway that refuses us is an error.
    if (!(e instanceof UnavailableError)) throw e;
  }
  if (config.store.kind === "memory") {
    throw new UnavailableError(`no gateway is answering at ${url}, and with store.kind = "memory" pairings live only in a running gateway: start \`exoclaw gateway\` first`);
  }
  if (config.store.kind === "sqlite" && !existsSync(join(config.home, "exoclaw.db"))) {
    const none = (what: string) => Promise.reject(new ExoError("not_found", `no ${what}: no gateway has run with this state directory yet (${config.home})`));
    return { list: async () => [], approve: () => none("pending pairing code"), revoke: () => none("pairing"), close: async () => {} };
  }
  const store = openStore(config);
  const pairings = new Pairings(store);
  return { list: (channel) => pairings.list(channel), approve: (c) => pairings.approve(c), revoke: (p) => pairings.revoke(p), close: () => store.close() };
}

async function withBackend<T>(args: Record<string, unknown>, fn: (b: PairingBackend) => Promise<T>): Promise<T> {
  const token = stringFlag("token", args.token);
  const config = loadConfig(process.env, { file: stringFlag("config", args.config), ...(token !== undefined && { token }) });
  const backend = await openBackend(config, args);
  try {
    return await fn(backend);
  } finally {
    await backend.close();
  }
}

const print = (text: string) => process.stdout.write(text + "\n");
const iso = (ms: number) => new Date(ms).toISOString().replace(/\.\d+Z$/, "Z");

const common = { ...clientArgs, json: { type: "boolean", description: "Print JSON" } } as const;
const listArgs = { ...common, channel: { type: "string", description: "Only this channel" } } as const;

const list = defineCommand({
  meta: { name: "list", description: "Pending pairing codes and approved people" },
  args: listArgs,
  run: ({ args }) =>
    withBackend(args, async (b) => {
      const all = await b.list(stringFlag("channel", args.channel));
      if (args.json) return print(JSON.stringify({ pairings: all }, null, 2));
      const pending = all.filter((p) => p.status === "pending");
      const approved = all.filter((p) => p.status === "approved");
      if (all.length === 0) return print("no pairing requests and nobody approved yet");
      if (pending.length > 0) {
        print("PENDING (approve with `exoclaw pairing approve CODE`)");
        for (const p of pending) print(`  ${p.code}  ${p.person}  asked ${iso(p.created_at)}, expires ${iso(p.expires_at ?? 0)}`);
      }
      if (approved.length > 0) {
        print("APPROVED (revoke with `exoclaw pairing revoke PERSON`)");
        for (const p of approved) print(`  ${p.person}  since ${iso(p.approved_at ?? p.created_at)}`);
      }
    }),
});

const approve = defineCommand({
  meta: { name: "approve", description: "Let the person who was sent CODE talk to the agents" },
  args: { ...common, code: { type: "positional", description: "The pairing code, e.g. K7M2QX9P", required: true } },
  run: ({ args }) =>
    withBackend(args, async (b) => {
      const p = await b.approve(String(args.code));
      print(args.json ? JSON.stringify(p) : `approved ${p.person}: their next message is answered`);
    }),
});

const revoke = defineCommand({
  meta: { name: "revoke", description: "Forget an approved person (or a pending request); they are a stranger again" },
  args: { ...common, person: { type: "positional", description: "The person, e.g. telegram:bot:1561073042 (see `pairing list`)", required: true } },
  run: ({ args }) =>
    withBackend(args, async (b) => {
      const p = await b.revoke(String(args.person));
      print(args.json ? JSON.stringify(p) : `revoked ${p.person}: their next message gets a new pairing code (if dm_policy = "pairing") and no answer`);
    }),
});

export default defineCommand({
  meta: { name: "pairing", description: "Who may talk on the channels: list, approve and revoke pairings" },
  // `exoclaw pairing --port N` means `pairing list --port N`: the flags must be known here too.
  args: listArgs,
  subCommands: { list, approve, revoke },
  default: "list",
});
