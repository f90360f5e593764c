/**
 * `exoclaw approvals list | allow ID | deny ID [--remember] | rules | forget AGENT TOOL`: the tool calls waiting for the
 * operator (issue 16), through the running gateway (`approval.list`, `approval.resolve`): a call
 * waits inside the gateway's turn, so only a running gateway can let it go on. `list --state S`
 * shows stored decisions instead (allowed, denied, timeout); `rules` the remembered ones, `forget`
 * drops one (that tool is asked again).
 */
import { defineCommand } from "citty";
import { loadConfig } from "../config/index.ts";
import { UnavailableError, UsageError } from "../lib/errors.ts";
import { clientArgs, parsePort, stringFlag } from "./_args.ts";
import { connectGateway, gatewayUrl } from "./_client.ts";

interface Approval {
  id: string;
  session: string;
  agent: string;
  tool: string;
  input: string;
  why: string;
  state: string;
  created_at: number;
  expires_at: number;
  decided_by: string | null;
}

async function withGateway<T>(
  args: Record<string, unknown>,
  fn: (call: (method: string, params: unknown) => Promise<unknown>) => Promise<T>,
): Promise<T> {
  const token = stringFlag("token", args.token);
  const config = loadConfig(process.env, {
    file: stringFlag("config", args.config),
    ...(token !== undefined && { token }),
  });
  const url = gatewayUrl(config, { url: stringFlag("url", args.url), port: parsePort(stringFlag("port", args.port)) });
  let client: Awaited<ReturnType<typeof connectGateway>>;
  try {
    client = await connectGateway(url, config.gateway.token, 2000);
  } catch (e) {
    if (e instanceof UnavailableError)
      throw new UnavailableError(
        `${e.message}; tool calls wait for approval inside a running gateway, so there is nothing to answer without one`,
      );
    throw e;
  }
  try {
    return await fn((method, params) => client.call(method, params));
  } finally {
    client.close();
  }
}

const print = (text: string) => process.stdout.write(text + "\n");
const iso = (ms: number) => new Date(ms).toISOString().replace(/\.\d+Z$/, "Z");
const common = { ...clientArgs, json: { type: "boolean", description: "Print JSON" } } as const;
const STATES = ["pending", "allowed", "denied", "timeout"];
const listArgs = {
  ...common,
  state: {
    type: "string",
    description: "Stored requests in this state (pending, allowed, denied, timeout) instead of those waiting now",
  },
} as const;

const list = defineCommand({
  meta: { name: "list", description: "Tool calls waiting for your yes (or stored decisions with --state)" },
  args: listArgs,
  run: ({ args }) => {
    const state = stringFlag("state", args.state);
    if (state !== undefined && !STATES.includes(state))
      throw new UsageError(`--state must be one of ${STATES.join(", ")}`);
    return withGateway(args, async (call) => {
      const { approvals } = (await call("approval.list", state === undefined ? {} : { state })) as {
        approvals: Approval[];
      };
      if (args.json) return print(JSON.stringify({ approvals }, null, 2));
      if (approvals.length === 0)
        return print(state === undefined ? "no tool call is waiting for approval" : `no ${state} approval requests`);
      if (state === undefined) print("WAITING (answer with `exoclaw approvals allow ID` or `deny ID`)");
      for (const a of approvals) {
        print(`  ${a.id}  ${a.tool}  agent ${a.agent}, session ${a.session}`);
        print(
          `    why: ${a.why}; ${a.state === "pending" ? `asked ${iso(a.created_at)}, denied at ${iso(a.expires_at)} without an answer` : `${a.state} by ${a.decided_by ?? "?"}`}`,
        );
        print(`    input: ${a.input}`);
      }
    });
  },
});

const decide = (allow: boolean) =>
  defineCommand({
    meta: {
      name: allow ? "allow" : "deny",
      description: allow
        ? "Let a waiting tool call run"
        : "Refuse a waiting tool call (the model is told it was denied)",
    },
    args: {
      ...common,
      id: { type: "positional", description: "The request's id (see `approvals list`)", required: true },
      remember: {
        type: "boolean",
        description: `${allow ? "Allow" : "Deny"} this tool for this agent from now on, without asking`,
      },
    },
    run: ({ args }) =>
      withGateway(args, async (call) => {
        const r = (await call("approval.resolve", {
          id: String(args.id),
          allow,
          remember: args.remember === true,
        })) as { id: string; tool: string; state: string; remember: boolean };
        if (args.json) return print(JSON.stringify(r));
        print(
          `${r.state} ${r.tool} (${r.id})${r.remember ? `; remembered: ${r.tool} is ${allow ? "allowed" : "denied"} from now on for this agent` : ""}`,
        );
      }),
  });

const rules = defineCommand({
  meta: { name: "rules", description: "Decisions remembered with --remember, per agent and tool" },
  args: common,
  run: ({ args }) =>
    withGateway(args, async (call) => {
      const { rules: all } = (await call("approval.rules", {})) as {
        rules: { agent: string; tool: string; allow: boolean; created_at: number }[];
      };
      if (args.json) return print(JSON.stringify({ rules: all }, null, 2));
      if (all.length === 0) return print("no remembered decisions");
      for (const r of all)
        print(`  ${r.agent}  ${r.tool}  ${r.allow ? "allowed" : "denied"} since ${iso(r.created_at)}`);
    }),
});

const forget = defineCommand({
  meta: { name: "forget", description: "Forget a remembered decision: the tool is asked again" },
  args: {
    ...common,
    agent: { type: "positional", description: "The agent id", required: true },
    tool: { type: "positional", description: "The tool's name as the model calls it", required: true },
  },
  run: ({ args }) =>
    withGateway(args, async (call) => {
      await call("approval.forget", { agent: String(args.agent), tool: String(args.tool) });
      print(
        args.json
          ? JSON.stringify({ agent: args.agent, tool: args.tool, forgotten: true })
          : `forgot the decision for ${String(args.tool)} of agent ${String(args.agent)}: it is asked again`,
      );
    }),
});

export default defineCommand({
  meta: { name: "approvals", description: "Tool calls waiting for your yes: list, allow and deny them" },
  args: listArgs,
  subCommands: { list, allow: decide(true), deny: decide(false), rules, forget },
  default: "list",
});
