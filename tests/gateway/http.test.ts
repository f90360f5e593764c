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
    for (const [method, path] of [["GET", "/nope"], ["POST", "/api/x"], ["DELETE", "/health/x"]] as const) {
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
});
