/**
 * The MCP transport's fetch: the server's host is its only destination, under the same address rules
 * as a plugin's http. The outside network is a recording fetch stub here (no traffic leaves).
 */
import { describe, expect, test } from "bun:test";
import { createMcpFetch, McpTransportError } from "../../src/mcp/index.ts";

function setup(
  url: string,
  resolve: (h: string) => Promise<string[]> = async () => ["203.0.113.7"],
  self: { address: string; port: number }[] = [],
) {
  const seen: { url: string; init: RequestInit & { tls?: { serverName?: string } } }[] = [];
  const f = createMcpFetch({
    url: new URL(url),
    headers: () => ({ authorization: "Bearer s3cr3t-value" }),
    timeoutMs: 2000,
    maxBodyBytes: 1 << 20,
    resolve,
    selfAddresses: () => self,
    fetch: (async (u: string, init: RequestInit) => {
      seen.push({ url: u, init: init as never });
      return Response.json({ jsonrpc: "2.0", id: 1, result: {} });
    }) as typeof fetch,
  });
  return { f, seen };
}
const rpc = (id = 1) => ({
  method: "POST",
  headers: { "content-type": "application/json" },
  body: JSON.stringify({ jsonrpc: "2.0", id, method: "ping" }),
});
async function refusal(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (e) {
    expect(e).toBeInstanceOf(McpTransportError);
    return (e as Error).message;
  }
  throw new Error("expected a refusal");
}

describe("MCP egress", () => {
  test("connects to the address it checked, with Host and TLS name the server's, and the headers for that host", async () => {
    const { f, seen } = setup("https://mcp.example.com/mcp");
    const res = await f("https://mcp.example.com/mcp", rpc());
    expect(res.status).toBe(200);
    expect(seen).toHaveLength(1);
    expect(seen[0]!.url).toBe("https://203.0.113.7/mcp");
    const h = new Headers(seen[0]!.init.headers);
    expect(h.get("host")).toBe("mcp.example.com");
    expect(h.get("authorization")).toBe("Bearer s3cr3t-value");
    expect(seen[0]!.init.tls?.serverName).toBe("mcp.example.com");
    expect(seen[0]!.init.redirect).toBe("manual");
  });

  test("any other host, port or scheme is refused before anything is sent", async () => {
    const { f, seen } = setup("https://mcp.example.com/mcp");
    expect(await refusal(f("https://evil.example/mcp", rpc()))).toBe(
      "refused a request to evil.example: this server may only be reached at mcp.example.com",
    );
    expect(await refusal(f("https://mcp.example.com:8443/mcp", rpc()))).toContain(
      "refused a request to mcp.example.com:8443",
    );
    expect(await refusal(f("http://mcp.example.com/mcp", rpc()))).toContain("refused");
    expect(seen).toHaveLength(0);
  });

  test("a name resolving to a private address is refused; only an IP-literal url grants loopback; never the gateway", async () => {
    const named = setup("http://mcp.internal:8931/mcp", async () => ["10.0.0.5"]);
    expect(await refusal(named.f("http://mcp.internal:8931/mcp", rpc()))).toBe(
      "host mcp.internal resolves to a private address (10.0.0.5, private); grant the address itself to allow it",
    );
    const rebinding = setup("https://mcp.example.com/mcp", async () => ["203.0.113.7", "127.0.0.1"]);
    expect(await refusal(rebinding.f("https://mcp.example.com/mcp", rpc()))).toContain(
      "resolves to a private address (127.0.0.1, loopback)",
    );
    const literal = setup("http://127.0.0.1:8931/mcp");
    expect((await literal.f("http://127.0.0.1:8931/mcp", rpc())).status).toBe(200);
    const self = setup("http://127.0.0.1:7200/mcp", undefined, [{ address: "127.0.0.1", port: 7200 }]);
    expect(await refusal(self.f("http://127.0.0.1:7200/mcp", rpc()))).toBe(
      "127.0.0.1:7200 is the gateway itself, which MCP servers may never reach",
    );
    expect(named.seen.length + rebinding.seen.length + self.seen.length).toBe(0);
  });

  test("the standalone GET stream is never opened: 405 without touching the network", async () => {
    const { f, seen } = setup("https://mcp.example.com/mcp");
    expect((await f("https://mcp.example.com/mcp", { method: "GET" })).status).toBe(405);
    expect(seen).toHaveLength(0);
  });
});
