/**
 * exoclaw as an MCP server (SPEC §2 `[gateway] mcp = true`): `POST /mcp`, streamable HTTP, stateless
 * (a fresh SDK Server and web-standard transport per request), behind the gateway token — the gateway
 * refuses to start with `mcp = true` and no token. Each agent is a tool `ask_<agent>` ({message,
 * session?}: one turn in the session `<agent>:mcp:local:<session|main>` through the normal runner,
 * budgets and metering included); plugin tools only when `[gateway] mcp_tools` lists them.
 * GET and DELETE are 405: there is no session and no server-initiated stream.
 */
import { sessionKey } from "../core/index.ts";
import type { Server } from "@modelcontextprotocol/sdk/server/index.js";
import type { CallToolResult } from "@modelcontextprotocol/sdk/types.js";
import type { Hono } from "hono";
import type { AgentRunner } from "../agent/runner.ts";
import type { ToolBox } from "../agent/loop.ts";
import { type AuthVerdict, refusalOf } from "../auth/index.ts";
import { ExoError } from "../lib/errors.ts";
import type { Logger } from "../lib/log.ts";
import { ERROR_TABLE } from "../protocol/error-codes.ts";
import { VERSION } from "../lib/version.ts";

export interface McpServerDeps {
  runner: AgentRunner;
  agents: () => readonly { id: string; system_prompt?: string }[];
  /** The plugin tools `[gateway] mcp_tools` lets callers use (an empty toolbox when it lists none). */
  tools: () => ToolBox;
  checkBearer: (header: string | null | undefined, remote: string) => AuthVerdict;
  remoteOf: (req: Request) => string;
  /** Exempts an authenticated request from the idle timeout (RouteAuth.holdOpen): a turn may wait for an approval. */
  holdOpen?: (req: Request) => void;
  log: Logger;
}

/**
 * The SDK (zod, ajv and their schemas) is loaded by the first POST /mcp, not when the gateway starts:
 * it costs start-up time and memory that a gateway with `mcp` off (the default) never needs.
 */
let sdk: Promise<Sdk> | undefined;
type Sdk = Awaited<ReturnType<typeof importSdk>>;
async function importSdk() {
  const [server, http, types] = await Promise.all([
    import("@modelcontextprotocol/sdk/server/index.js"),
    import("@modelcontextprotocol/sdk/server/webStandardStreamableHttp.js"),
    import("@modelcontextprotocol/sdk/types.js"),
  ]);
  return {
    Server: server.Server,
    Transport: http.WebStandardStreamableHTTPServerTransport,
    CallToolRequestSchema: types.CallToolRequestSchema,
    ListToolsRequestSchema: types.ListToolsRequestSchema,
  };
}

const ASK = "ask_";
const askSchema = {
  type: "object",
  properties: {
    message: { type: "string", description: "What to say to the agent" },
    session: {
      type: "string",
      description: "A name for the conversation; the same name continues it (default: main)",
      maxLength: 200,
    },
  },
  required: ["message"],
  additionalProperties: false,
};

/** A JSON-RPC error answered over HTTP (MCP's streamable transport): code and status from the error table. */
const rpcError = (e: ExoError, headers: Record<string, string> = {}) =>
  Response.json(
    { jsonrpc: "2.0", error: { code: ERROR_TABLE[e.code].rpc, message: e.message }, id: null },
    { status: ERROR_TABLE[e.code].http, headers },
  );

export function mountMcpServer(app: Hono, deps: McpServerDeps): void {
  app.on(["GET", "DELETE"], "/mcp", () =>
    rpcError(new ExoError("method_not_allowed", "method not allowed: this MCP endpoint is stateless (POST only)"), {
      allow: "POST",
    }),
  );
  app.post("/mcp", async (c) => {
    const verdict = deps.checkBearer(c.req.header("authorization"), deps.remoteOf(c.req.raw));
    if (verdict !== "ok")
      return rpcError(refusalOf(verdict), verdict === "limited" ? {} : { "www-authenticate": "Bearer" });
    deps.holdOpen?.(c.req.raw);
    const mcp = await (sdk ??= importSdk());
    const server = buildServer(mcp, deps);
    const transport = new mcp.Transport({ sessionIdGenerator: undefined });
    await server.connect(transport);
    // The request's end (client gone, answer sent) ends the server and any turn it still runs.
    c.req.raw.signal.addEventListener("abort", () => void server.close().catch(() => {}), { once: true });
    return transport.handleRequest(c.req.raw);
  });
}

function buildServer({ Server, ListToolsRequestSchema, CallToolRequestSchema }: Sdk, deps: McpServerDeps): Server {
  const server = new Server({ name: "exoclaw", version: VERSION }, { capabilities: { tools: {} } });
  const agentTools = () =>
    deps.agents().map((a) => ({
      name: `${ASK}${a.id}`,
      description: `Ask exoclaw agent "${a.id}": one turn in a named session (its history, memory and tools), answered with the agent's reply.`,
      inputSchema: askSchema,
      annotations: { title: `Ask ${a.id}`, readOnlyHint: false, destructiveHint: false, openWorldHint: true },
    }));
  server.setRequestHandler(ListToolsRequestSchema, () => {
    const own = agentTools();
    const names = new Set(own.map((t) => t.name));
    const plugin = deps
      .tools()
      .specs()
      .filter((t) => !names.has(t.name))
      .map((t) => ({
        name: t.name,
        description: t.description,
        inputSchema: { type: "object" as const, ...t.input_schema },
      }));
    return { tools: [...own, ...plugin] };
  });
  server.setRequestHandler(CallToolRequestSchema, async (req, extra): Promise<CallToolResult> => {
    const { name } = req.params;
    const args = req.params.arguments ?? {};
    const error = (text: string): CallToolResult => ({ content: [{ type: "text", text }], isError: true });
    if (name.startsWith(ASK)) {
      const agent = deps.agents().find((a) => `${ASK}${a.id}` === name);
      if (agent) {
        if (typeof args.message !== "string" || args.message === "")
          return error("message: expected a non-empty string");
        const session = args.session;
        if (session !== undefined && (typeof session !== "string" || session === "" || session.length > 200))
          return error("session: expected a name of 1 to 200 characters");
        const peer = typeof session === "string" ? session : null;
        const key = sessionKey(agent.id, { channel: "mcp", account: "local", ...(peer !== null && { peer }) });
        let failure = "";
        const out = await deps.runner.run(
          {
            agent: agent.id,
            address: { key, agent: agent.id, channel: "mcp", account: "local", peer, thread: null },
            content: args.message,
          },
          { signal: extra.signal, emit: (e) => void (e.event === "error" && (failure = e.data.message)) },
        );
        if (out.stop_reason === "error" || out.stop_reason === "budget" || out.stop_reason === "cancelled") {
          return error(
            `agent ${agent.id}: turn ended (${out.stop_reason})${failure ? `: ${failure}` : ""}${out.text ? `\n\n${out.text}` : ""}`,
          );
        }
        return {
          content: [{ type: "text", text: out.text }],
          structuredContent: { text: out.text, session: out.session, stop_reason: out.stop_reason, usage: out.usage },
        };
      }
    }
    const box = deps.tools();
    if (!box.specs().some((t) => t.name === name)) return error(`unknown tool: ${name}`);
    const r = await box.run(name, args, extra.signal);
    return { content: [{ type: "text", text: r.content }], isError: r.is_error };
  });
  return server;
}
