/**
 * `exoclaw mcp list | inspect NAME`: the `[[mcp]]` servers the running gateway is connected to, their
 * state and tool counts; one server's tools with descriptions and annotations (what the server
 * claims about each: read-only, destructive, reaching the open world). Through the gateway's RPC
 * (`mcp.list`, `mcp.inspect`), since only the gateway holds the connections.
 */
import { defineCommand } from "citty";
import { loadConfig } from "../config/index.ts";
import { UnavailableError } from "../lib/errors.ts";
import { escapeControl } from "../sandbox/index.ts";
import { clientArgs, parsePort, stringFlag } from "./_args.ts";
import { connectGateway, gatewayUrl, type GatewayClient } from "./_client.ts";

/** A server's words never drive the operator's terminal (escape sequences are shown, not obeyed). */
const print = (text: string) => process.stdout.write(escapeControl(text, "\n\t") + "\n");
const printJson = (value: unknown) =>
  process.stdout.write(
    JSON.stringify(value, null, 2).replace(
      /[\x7f-\x9f]/g,
      (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`,
    ) + "\n",
  );

interface ServerView {
  name: string;
  url: string;
  state: string;
  error?: string;
  tools: number | ToolView[];
  offered: number;
  approval: string;
  server?: { name: string; version: string };
}
interface ToolView {
  name: string;
  exposed_as: string;
  description: string;
  annotations: Record<string, unknown>;
  offered: boolean;
  reason?: string;
  input_schema: Record<string, unknown>;
}

async function withGateway<T>(args: Record<string, unknown>, fn: (c: GatewayClient) => Promise<T>): Promise<T> {
  const token = stringFlag("token", args.token);
  const config = loadConfig(process.env, {
    file: stringFlag("config", args.config),
    ...(token !== undefined && { token }),
  });
  const url = gatewayUrl(config, { url: stringFlag("url", args.url), port: parsePort(stringFlag("port", args.port)) });
  let client: GatewayClient;
  try {
    client = await connectGateway(url, config.gateway.token, 3000);
  } catch (e) {
    if (e instanceof UnavailableError)
      throw new UnavailableError(
        `${e.message}: MCP servers are connected by the running gateway, so start \`exoclaw gateway\` first`,
      );
    throw e;
  }
  try {
    return await fn(client);
  } finally {
    client.close();
  }
}

const common = { ...clientArgs, json: { type: "boolean", description: "Print JSON" } } as const;

const HINTS: [key: string, yes: string, no: string][] = [
  ["readOnlyHint", "read-only", "may change things"],
  ["destructiveHint", "destructive", "not destructive"],
  ["idempotentHint", "idempotent", "not idempotent"],
  ["openWorldHint", "reaches the open world", "closed world"],
];

const list = defineCommand({
  meta: { name: "list", description: "MCP servers with their state and tool count" },
  args: common,
  run: ({ args }) =>
    withGateway(args, async (c) => {
      const { servers } = (await c.call("mcp.list")) as { servers: ServerView[] };
      if (args.json) return printJson({ servers });
      if (servers.length === 0)
        return print("no MCP servers configured (add an [[mcp]] entry to the config; see docs/mcp.md)");
      for (const s of servers) {
        const tools = `${s.offered}/${s.tools as number} tools offered`;
        print(`${s.name}  ${s.state}  ${tools}  ${s.url}${s.error ? `\n    error: ${s.error}` : ""}`);
      }
    }),
});

const inspect = defineCommand({
  meta: { name: "inspect", description: "One MCP server's tools, descriptions and annotations" },
  args: { ...common, name: { type: "positional", description: "The [[mcp]] name", required: true } },
  run: ({ args }) =>
    withGateway(args, async (c) => {
      const s = (await c.call("mcp.inspect", { name: String(args.name) }, 60_000)) as ServerView & {
        tools: ToolView[];
      };
      if (args.json) return printJson(s);
      print(`${s.name}  ${s.state}  ${s.url}${s.server ? `  (${s.server.name} ${s.server.version})` : ""}`);
      if (s.error) print(`  error: ${s.error}`);
      print(`  approval: ${s.approval}`);
      if (s.tools.length === 0) print("  no tools known yet");
      for (const t of s.tools) {
        const hints = HINTS.filter(([k]) => typeof t.annotations[k] === "boolean").map(([k, yes, no]) =>
          t.annotations[k] ? yes : no,
        );
        print(
          `\n  ${t.exposed_as}${t.exposed_as !== `${s.name}__${t.name}` ? `  (server's name: ${t.name})` : ""}${t.offered ? "" : `  NOT OFFERED: ${t.reason}`}`,
        );
        if (t.description) print(`    ${t.description.replace(/\n/g, "\n    ")}`);
        print(
          `    annotations: ${hints.length > 0 ? hints.join(", ") : "none declared (treat as: may change things, reaches the open world)"}`,
        );
        const props = Object.keys((t.input_schema.properties as Record<string, unknown> | undefined) ?? {});
        if (props.length > 0) print(`    input: ${props.join(", ")}`);
      }
    }),
});

export default defineCommand({
  meta: { name: "mcp", description: "MCP servers the gateway reaches: list them, inspect one's tools" },
  args: common,
  subCommands: { list, inspect },
  default: "list",
});
