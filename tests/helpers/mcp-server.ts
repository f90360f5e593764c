/**
 * A real MCP server for tests, built with the official SDK (low-level Server + the web-standard
 * streamable HTTP transport, stateless) on a loopback port. Tools are the test's; `intercept` lets a
 * test answer a tools/call itself to misbehave (hang, garbage, huge bodies, dying mid-answer) at the
 * HTTP level, which the SDK's server would never do. Every request's headers are recorded.
 */
import { Server } from "@modelcontextprotocol/sdk/server/index.js";
import { WebStandardStreamableHTTPServerTransport } from "@modelcontextprotocol/sdk/server/webStandardStreamableHttp.js";
import {
  CallToolRequestSchema,
  type CallToolResult,
  ListToolsRequestSchema,
  type Tool,
} from "@modelcontextprotocol/sdk/types.js";

export interface TestTool {
  name: string;
  description?: string;
  inputSchema?: Tool["inputSchema"];
  annotations?: Tool["annotations"];
  run(args: Record<string, unknown>, headers: Headers): CallToolResult | Promise<CallToolResult>;
}

export interface TestMcpServer extends AsyncDisposable {
  url: string;
  port: number;
  /** Headers of every HTTP request the server received, in order. */
  requests: { method: string; headers: Headers; body: string }[];
  /** Tool calls received (name, arguments). */
  calls: { name: string; args: Record<string, unknown> }[];
  /** Stops the server at once, cutting open connections (a crash). */
  kill(): void;
}

export async function startMcpServer(opts: {
  tools: TestTool[];
  /** Answer a tools/call of this name at the HTTP level instead of the SDK. */
  intercept?: (tool: string, req: Request) => Response | Promise<Response> | undefined;
  name?: string;
  /** Answer with plain JSON instead of an SSE stream. */
  json?: boolean;
  /** A fixed port (to bring a "crashed" server back where it was). */
  port?: number;
}): Promise<TestMcpServer> {
  const requests: TestMcpServer["requests"] = [];
  const calls: TestMcpServer["calls"] = [];
  const srv = Bun.serve({
    hostname: "127.0.0.1",
    port: opts.port ?? 0,
    idleTimeout: 0,
    async fetch(req) {
      const body = req.method === "POST" ? await req.clone().text() : "";
      requests.push({ method: req.method, headers: req.headers, body });
      if (new URL(req.url).pathname !== "/mcp") return new Response("not found", { status: 404 });
      if (req.method !== "POST") return new Response(null, { status: 405 });
      let msg: { method?: string; params?: { name?: string; arguments?: Record<string, unknown> } } = {};
      try {
        msg = JSON.parse(body);
      } catch {
        // the SDK answers it
      }
      if (msg.method === "tools/call" && msg.params?.name) {
        calls.push({ name: msg.params.name, args: msg.params.arguments ?? {} });
        const own = await opts.intercept?.(msg.params.name, req);
        if (own) return own;
      }
      const server = new Server({ name: opts.name ?? "test-mcp", version: "1.0.0" }, { capabilities: { tools: {} } });
      server.setRequestHandler(ListToolsRequestSchema, () => ({
        tools: opts.tools.map((t) => ({
          name: t.name,
          ...(t.description !== undefined && { description: t.description }),
          inputSchema: t.inputSchema ?? { type: "object", properties: {} },
          ...(t.annotations && { annotations: t.annotations }),
        })),
      }));
      server.setRequestHandler(CallToolRequestSchema, async (r) => {
        const tool = opts.tools.find((t) => t.name === r.params.name);
        if (!tool) return { content: [{ type: "text", text: `no tool ${r.params.name}` }], isError: true };
        return tool.run(r.params.arguments ?? {}, req.headers);
      });
      const transport = new WebStandardStreamableHTTPServerTransport({
        sessionIdGenerator: undefined,
        enableJsonResponse: opts.json ?? false,
      });
      await server.connect(transport);
      return transport.handleRequest(req);
    },
  });
  const port = srv.port!;
  return {
    url: `http://127.0.0.1:${port}/mcp`,
    port,
    requests,
    calls,
    kill: () => void srv.stop(true),
    async [Symbol.asyncDispose]() {
      await srv.stop(true);
    },
  };
}

/** A JSON-RPC result answering the tools/call in `req` (for intercepts that answer by hand). */
export async function rpcIdOf(req: Request): Promise<unknown> {
  return ((await req.clone().json()) as { id: unknown }).id;
}
