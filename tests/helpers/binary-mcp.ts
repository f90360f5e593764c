/**
 * The compiled binary with an `[[mcp]]` server, for the end-to-end tests in tests/e2e/binary/: a fake
 * OpenAI upstream (the agent's model), a real SDK MCP server on loopback with the test's tools, a
 * state directory whose config the test writes (it is given both URLs), and the binary's gateway
 * started on it, resolved once the server is connected. Registers its own beforeAll/afterAll, so it
 * is called inside a `describe`.
 */
import { afterAll, beforeAll } from "bun:test";
import { type BinaryGateway, type BinaryHome, binaryHome, nativeBinary, startBinaryGateway } from "./binary.ts";
import { type FakeUpstream, type RecordedRequest, type Reply, startFakeUpstream } from "./fake-upstream.ts";
import { startMcpServer, type TestMcpServer, type TestTool } from "./mcp-server.ts";

export interface McpBinaryOptions {
  /** The model's answer to each request (the fake upstream's handler). */
  model: (req: RecordedRequest, n: number) => Reply;
  tools: TestTool[];
  /** config.toml, given the upstream's and the MCP server's URLs; written with any `files` before the start. */
  config: (urls: { upstream: string; mcp: string }) => string;
  /** Other files for the state directory (name → text), e.g. credentials. */
  files?: Record<string, string>;
  /** The binary's environment (EXOCLAW_TOKEN, provider keys). */
  env: Record<string, string>;
}

export interface McpBinary {
  home: BinaryHome;
  up: FakeUpstream;
  /** Set once beforeAll has run. */
  readonly server: TestMcpServer;
  readonly gw: BinaryGateway;
}

export function mcpBinary(opts: McpBinaryOptions): McpBinary {
  const home = binaryHome();
  const up = startFakeUpstream(opts.model);
  let server: TestMcpServer | undefined;
  let gw: BinaryGateway | undefined;
  beforeAll(async () => {
    await nativeBinary();
    server = await startMcpServer({ tools: opts.tools });
    for (const [name, text] of Object.entries(opts.files ?? {})) home.file(name, text);
    home.file("config.toml", opts.config({ upstream: up.url, mcp: server.url }));
    gw = await startBinaryGateway(home, { env: opts.env });
    await gw.waitForLog((l) => l.msg === "mcp server connected");
  }, 120_000);
  afterAll(async () => {
    await gw?.stop();
    await server?.[Symbol.asyncDispose]();
    await up[Symbol.asyncDispose]();
    home[Symbol.dispose]();
  });
  return {
    home,
    up,
    get server() {
      if (!server) throw new Error("the MCP server is not started yet (beforeAll)");
      return server;
    },
    get gw() {
      if (!gw) throw new Error("the binary's gateway is not started yet (beforeAll)");
      return gw;
    },
  };
}
