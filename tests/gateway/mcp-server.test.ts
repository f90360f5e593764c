/**
 * exoclaw as an MCP server: POST /mcp driven by the official SDK's client, with and without the
 * gateway token. Agents are `ask_<agent>` tools running one turn in a named session; plugin tools
 * are offered only when `[gateway] mcp_tools` lists them.
 */
import { describe, expect, test } from "bun:test";
import { copyFileSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import type { StreamFn } from "../../src/agent/loop.ts";
import type { ChatRequest } from "../../src/agent/types.ts";
import { sha256Hex } from "../../src/sandbox/index.ts";
import { startTestGateway } from "../helpers/gateway.ts";
import { pluginPath, readWasm } from "../helpers/plugins.ts";
import { tempDir } from "../helpers/temp.ts";
import { openSocket } from "../helpers/ws.ts";

const TOKEN = "mcp-test-token-0123456789";
type Msg = Record<string, any>;

function echoModel() {
  const requests: ChatRequest[] = [];
  const stream: StreamFn = async function* (req) {
    requests.push(req);
    const said = req.messages.filter((m) => m.role === "user").map((m) => (m.parts[0] as { text: string }).text);
    yield { type: "text", text: `heard: ${said.join(" / ")}` };
    yield { type: "usage", input_tokens: 5, output_tokens: 2 };
    yield { type: "done", stop_reason: "end_turn" };
  };
  return { stream, requests };
}

async function client(url: string, token?: string) {
  const c = new Client({ name: "test", version: "1" });
  await c.connect(
    new StreamableHTTPClientTransport(
      new URL(`${url}/mcp`),
      token === undefined ? {} : { requestInit: { headers: { authorization: `Bearer ${token}` } } },
    ),
  );
  return c;
}

describe("POST /mcp", () => {
  test("an MCP client with the token sees each agent as ask_<agent> and gets one turn in the named session", async () => {
    const m = echoModel();
    await using gw = await startTestGateway({
      token: TOKEN,
      toml: '[gateway]\nmcp = true\n[[agents]]\nid = "main"\n[[agents]]\nid = "helper"\n',
      streamFor: () => m.stream,
    });
    const c = await client(gw.url, TOKEN);
    const { tools } = await c.listTools();
    expect(tools.map((t) => t.name)).toEqual(["ask_main", "ask_helper"]);
    expect(tools[0]!.inputSchema).toMatchObject({
      properties: { message: { type: "string" }, session: { type: "string" } },
      required: ["message"],
    });
    const first = await c.callTool({ name: "ask_main", arguments: { message: "hello", session: "s1" } });
    expect(first).toMatchObject({ content: [{ type: "text", text: "heard: hello" }] });
    expect(first.isError).toBeFalsy();
    // Same session: the history continues; the turn is stored and metered like any other.
    const second = await c.callTool({ name: "ask_main", arguments: { message: "again", session: "s1" } });
    expect(second).toMatchObject({
      content: [{ type: "text", text: "heard: hello / again" }],
      structuredContent: { session: "main:mcp:local:s1", stop_reason: "end_turn" },
    });
    const other = await c.callTool({ name: "ask_helper", arguments: { message: "hi" } });
    expect(other).toMatchObject({ structuredContent: { session: "helper:mcp:local:main" } });
    await using ws = await openSocket(gw.wsUrl, { headers: { authorization: `Bearer ${TOKEN}` } });
    const usage = ((await ws.call("usage.get", { session: "main:mcp:local:s1" })) as Msg).result;
    expect(usage.all.calls).toBe(2);
    const bad = await c.callTool({ name: "ask_main", arguments: { message: "" } });
    expect(bad).toMatchObject({ isError: true, content: [{ text: "message: expected a non-empty string" }] });
    expect(await c.callTool({ name: "ask_nobody", arguments: { message: "x" } })).toMatchObject({
      isError: true,
      content: [{ text: "unknown tool: ask_nobody" }],
    });
    await c.close();
  });

  test("without the token, or with a wrong one, the SDK client is refused with 401 and no turn runs", async () => {
    const m = echoModel();
    await using gw = await startTestGateway({
      token: TOKEN,
      toml: "[gateway]\nmcp = true\n",
      streamFor: () => m.stream,
    });
    for (const token of [undefined, "wrong-token"]) {
      const err = await client(gw.url, token).then(
        () => null,
        (e: Error & { code?: number }) => e,
      );
      expect(err?.code).toBe(401);
    }
    const raw = await fetch(`${gw.url}/mcp`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: "{}",
    });
    expect(raw.status).toBe(401);
    expect(raw.headers.get("www-authenticate")).toBe("Bearer");
    expect(m.requests).toHaveLength(0);
  });

  test("mcp = true without a token refuses to start; mcp = false has no /mcp", async () => {
    await expect(startTestGateway({ toml: "[gateway]\nmcp = true\n" })).rejects.toThrow(
      /gateway\.mcp = true needs a token/,
    );
    await using gw = await startTestGateway({ token: TOKEN });
    const r = await fetch(`${gw.url}/mcp`, {
      method: "POST",
      headers: { authorization: `Bearer ${TOKEN}`, "content-type": "application/json" },
      body: "{}",
    });
    expect(r.status).toBe(404);
  });

  test("plugin tools are offered only when mcp_tools lists them, and run in the sandbox", async () => {
    using home = tempDir();
    mkdirSync(join(home.path, "plugins"));
    copyFileSync(pluginPath("echo"), join(home.path, "plugins/echo.wasm"));
    const plugin = `[[plugins]]\nname = "echo"\npath = "plugins/echo.wasm"\nsha256 = "${sha256Hex(await readWasm(pluginPath("echo")))}"\n`;
    home.file("config.toml", `[gateway]\nmcp = true\n${plugin}`);
    {
      await using gw = await startTestGateway({ home: home.path, token: TOKEN });
      const c = await client(gw.url, TOKEN);
      expect((await c.listTools()).tools.map((t) => t.name)).toEqual(["ask_main"]);
      expect(await c.callTool({ name: "echo", arguments: { text: "x" } })).toMatchObject({ isError: true });
      await c.close();
    }
    home.file("config.toml", `[gateway]\nmcp = true\nmcp_tools = ["echo"]\n${plugin}`);
    await using gw = await startTestGateway({ home: home.path, token: TOKEN });
    const c = await client(gw.url, TOKEN);
    expect((await c.listTools()).tools.map((t) => t.name)).toEqual(["ask_main", "echo"]);
    expect(await c.callTool({ name: "echo", arguments: { text: "from wasm" } })).toMatchObject({
      content: [{ type: "text", text: "from wasm" }],
      isError: false,
    });
    await c.close();
  });
});
