/** The gateway's own HTTP surface: /health, 404s, body limits, /ws without an upgrade, and the one error body. */
import { describe, expect, test } from "bun:test";
import pkg from "../../package.json";
import { startTestGateway } from "../helpers/gateway.ts";

describe("HTTP surface", () => {
  test("GET /health answers 200 with status and version only, without auth", async () => {
    await using gw = await startTestGateway({ token: "tok-tok-tok" });
    const res = await fetch(`${gw.url}/health`);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ status: "ok", version: pkg.version });
  });

  test("unknown routes are 404 JSON", async () => {
    await using gw = await startTestGateway();
    for (const [method, path] of [
      ["GET", "/nope"],
      ["POST", "/api/x"],
      ["DELETE", "/health/x"],
    ] as const) {
      const res = await fetch(`${gw.url}${path}`, { method });
      expect(res.status).toBe(404);
      expect(res.headers.get("content-type")).toContain("application/json");
      expect(await res.json()).toEqual({ error: { code: "not_found", message: `no route for ${method} ${path}` } });
    }
  });

  test("a body over max_payload_bytes is refused with 413 JSON", async () => {
    await using gw = await startTestGateway({ toml: "[gateway]\nmax_payload_bytes = 2048\n" });
    const res = await fetch(`${gw.url}/health`, { method: "POST", body: "x".repeat(4096) });
    expect(res.status).toBe(413);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe("payload_too_large");
    const small = await fetch(`${gw.url}/nope`, { method: "POST", body: "x".repeat(100) });
    expect(small.status).toBe(404);
  });

  test("a chunked body over the limit (no content-length) is refused with 413", async () => {
    await using gw = await startTestGateway({ toml: "[gateway]\nmax_payload_bytes = 2048\n" });
    const body = new ReadableStream({
      start(c) {
        for (let i = 0; i < 16; i++) c.enqueue(new TextEncoder().encode("y".repeat(1024)));
        c.close();
      },
    });
    const res = await fetch(`${gw.url}/nope`, { method: "POST", body, duplex: "half" } as RequestInit);
    expect(res.status).toBe(413);
  });

  test("GET /ws without an upgrade is answered 426", async () => {
    await using gw = await startTestGateway();
    const res = await fetch(`${gw.url}/ws`);
    expect(res.status).toBe(426);
  });

  test("every error the gateway answers itself has one body, its kind's status from the error table", async () => {
    const token = "shape-token-0123456789";
    await using gw = await startTestGateway({ token, toml: "[gateway]\nmcp = true\n\n[channels.http]\n" });
    const auth = { authorization: `Bearer ${token}` };
    const cases: [string, Promise<Response>, number, string][] = [
      ["/ws without an upgrade", fetch(`${gw.url}/ws`, { headers: auth }), 426, "upgrade_required"],
      [
        "a foreign Origin",
        fetch(`${gw.url}/ready`, { headers: { ...auth, origin: "https://evil.example" } }),
        403,
        "forbidden",
      ],
      ["/ready without the token", fetch(`${gw.url}/ready`), 401, "unauthorized"],
      [
        "/metrics with a wrong token",
        fetch(`${gw.url}/metrics`, { headers: { authorization: "Bearer nope" } }),
        401,
        "unauthorized",
      ],
      [
        "an unknown channel",
        fetch(`${gw.url}/webhook/ghost`, { method: "POST", headers: auth, body: "{}" }),
        404,
        "not_found",
      ],
      [
        "the http channel without the token",
        fetch(`${gw.url}/webhook/http`, { method: "POST", body: "{}" }),
        401,
        "unauthorized",
      ],
    ];
    for (const [name, res, status, code] of cases) {
      const r = await res;
      const body = (await r.json()) as { error: { code: string; message: string } };
      expect([name, r.status, r.headers.get("content-type")]).toEqual([name, status, "application/json"]);
      expect([name, Object.keys(body), Object.keys(body.error), body.error.code, typeof body.error.message]).toEqual([
        name,
        ["error"],
        ["code", "message"],
        code,
        "string",
      ]);
    }
    // /mcp speaks JSON-RPC over HTTP: its errors are JSON-RPC error objects, code and status from the same table.
    const mcp = await fetch(`${gw.url}/mcp`, { headers: auth });
    expect([mcp.status, mcp.headers.get("allow")]).toEqual([405, "POST"]);
    expect(await mcp.json()).toEqual({
      jsonrpc: "2.0",
      error: { code: -32000, message: "method not allowed: this MCP endpoint is stateless (POST only)" },
      id: null,
    });
  });
});
