/**
 * MCP in the compiled binary, both ways at once: an MCP client (the official SDK) asks the binary's
 * agent over `POST /mcp`; the agent's model (a fake OpenAI upstream) calls a tool of an `[[mcp]]`
 * server (a real SDK server on loopback), reached through the egress path with its secret header;
 * `exoclaw mcp list` and `inspect` from the binary show the server.
 */
import { describe, expect, test } from "bun:test";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { NATIVE, runBinary } from "../../helpers/binary.ts";
import { mcpBinary } from "../../helpers/binary-mcp.ts";
import { openaiReply, openaiToolCall } from "./_replies.ts";

const TOKEN = "binary-mcp-token-0123";
const SECRET = "mcp-binary-secret-4242";

describe.if(NATIVE !== undefined)("MCP in the binary", () => {
  const t = mcpBinary({
    model: (req) => {
      const messages = (req.body?.messages ?? []) as { role: string; content: string }[];
      const tool = messages.find((m) => m.role === "tool");
      return {
        body: tool ? openaiReply(`the tool said: ${tool.content}`) : openaiToolCall("search__lookup", { q: "binary" }),
      };
    },
    tools: [
      {
        name: "lookup",
        description: "Looks a word up",
        annotations: { readOnlyHint: true },
        inputSchema: { type: "object", properties: { q: { type: "string" } } },
        run: (args, headers) => ({
          content: [{ type: "text", text: `${String(args.q)} is defined (auth ${headers.get("authorization")})` }],
        }),
      },
    ],
    files: { "credentials/search_key.key": SECRET + "\n" },
    config: ({ upstream, mcp }) =>
      `[gateway]\nmcp = true\n\n[[agents]]\nid = "main"\nprovider = "openai"\nmodel = "gpt-4o-mini"\nbase_url = "${upstream}/v1"\n\n` +
      `[[mcp]]\nname = "search"\nurl = "${mcp}"\napproval = "never"\nheaders = { Authorization = "Bearer {{secret:search_key}}" }\nsecrets = ["search_key"]\n`,
    env: { EXOCLAW_TOKEN: TOKEN },
  });

  test("an MCP client asks the agent, whose model calls the [[mcp]] server's tool; the secret reaches only that server", async () => {
    const { gw, server, up } = t;
    const client = new Client({ name: "e2e", version: "1" });
    await client.connect(
      new StreamableHTTPClientTransport(new URL(`${gw.url}/mcp`), {
        requestInit: { headers: { authorization: `Bearer ${TOKEN}` } },
      }),
    );
    expect((await client.listTools()).tools.map((t) => t.name)).toEqual(["ask_main"]);
    const r = await client.callTool({ name: "ask_main", arguments: { message: "define binary", session: "e2e" } });
    expect(r).toMatchObject({
      content: [{ type: "text", text: "the tool said: binary is defined (auth Bearer ***)" }],
    });
    await client.close();
    expect(server.calls).toEqual([{ name: "lookup", args: { q: "binary" } }]);
    expect(server.requests.every((q) => q.headers.get("authorization") === `Bearer ${SECRET}`)).toBe(true);
    expect(JSON.stringify(up.requests)).not.toContain(SECRET);
    expect(JSON.stringify(gw.logs)).not.toContain(SECRET);
  });

  test("exoclaw mcp list and inspect, from the binary", async () => {
    const { gw, server, home } = t;
    const env = { EXOCLAW_TOKEN: TOKEN };
    const list = await runBinary(home, ["mcp", "list", "--port", String(gw.port)], { env });
    expect(list.code).toBe(0);
    expect(list.stdout).toContain(`search  connected  1/1 tools offered  ${server.url}`);
    const shown = await runBinary(home, ["mcp", "inspect", "search", "--port", String(gw.port)], { env });
    expect(shown.stdout).toContain("search__lookup");
    expect(shown.stdout).toContain("annotations: read-only");
  });
});
