/**
 * MCP in the compiled binary, both ways at once: an MCP client (the official SDK) asks the binary's
 * agent over `POST /mcp`; the agent's model (a fake OpenAI upstream) calls a tool of an `[[mcp]]`
 * server (a real SDK server on loopback), reached through the egress path with its secret header;
 * `exoclaw mcp list` and `inspect` from the binary show the server.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { sse, startFakeUpstream } from "../../helpers/fake-upstream.ts";
import {
  type BinaryGateway,
  binaryHome,
  NATIVE,
  nativeBinary,
  runBinary,
  startBinaryGateway,
} from "../../helpers/binary.ts";
import { startMcpServer, type TestMcpServer } from "../../helpers/mcp-server.ts";
import { openaiReply } from "./_replies.ts";

const TOKEN = "binary-mcp-token-0123";
const SECRET = "mcp-binary-secret-4242";

const toolCall = (name: string, args: unknown) => {
  const chunk = (delta: unknown, finish: string | null) => ({
    id: "c",
    object: "chat.completion.chunk",
    created: 1,
    model: "gpt-4o-mini",
    choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }],
  });
  return sse([
    chunk(
      {
        role: "assistant",
        tool_calls: [{ index: 0, id: "call_1", type: "function", function: { name, arguments: JSON.stringify(args) } }],
      },
      null,
    ),
    chunk({}, "tool_calls"),
    "[DONE]",
  ]);
};

describe.if(NATIVE !== undefined)("MCP in the binary", () => {
  const home = binaryHome();
  const up = startFakeUpstream((req) => {
    const messages = (req.body?.messages ?? []) as { role: string; content: string }[];
    const tool = messages.find((m) => m.role === "tool");
    return { body: tool ? openaiReply(`the tool said: ${tool.content}`) : toolCall("search__lookup", { q: "binary" }) };
  });
  let server: TestMcpServer;
  let gw: BinaryGateway;

  beforeAll(async () => {
    await nativeBinary();
    server = await startMcpServer({
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
    });
    home.file("credentials/search_key.key", SECRET + "\n");
    home.file(
      "config.toml",
      `[gateway]\nmcp = true\n\n[[agents]]\nid = "main"\nprovider = "openai"\nmodel = "gpt-4o-mini"\nbase_url = "${up.url}/v1"\n\n` +
        `[[mcp]]\nname = "search"\nurl = "${server.url}"\napproval = "never"\nheaders = { Authorization = "Bearer {{secret:search_key}}" }\nsecrets = ["search_key"]\n`,
    );
    gw = await startBinaryGateway(home, { env: { EXOCLAW_TOKEN: TOKEN } });
    await gw.waitForLog((l) => l.msg === "mcp server connected");
  }, 120_000);

  afterAll(async () => {
    await gw?.stop();
    await server?.[Symbol.asyncDispose]();
    await up[Symbol.asyncDispose]();
    home[Symbol.dispose]();
  });

  test("an MCP client asks the agent, whose model calls the [[mcp]] server's tool; the secret reaches only that server", async () => {
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
    const env = { EXOCLAW_TOKEN: TOKEN };
    const list = await runBinary(home, ["mcp", "list", "--port", String(gw.port)], { env });
    expect(list.code).toBe(0);
    expect(list.stdout).toContain(`search  connected  1/1 tools offered  ${server.url}`);
    const shown = await runBinary(home, ["mcp", "inspect", "search", "--port", String(gw.port)], { env });
    expect(shown.stdout).toContain("search__lookup");
    expect(shown.stdout).toContain("annotations: read-only");
  });
});
