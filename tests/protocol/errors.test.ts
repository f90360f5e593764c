/**
 * The error table is the only place a kind becomes a JSON-RPC code or an HTTP status, and the
 * JSON-RPC client core (shared by the CLI and the tests) loses nothing of an error on the way back.
 */
import { describe, expect, test } from "bun:test";
import { ExoError, ParamsError } from "../../src/lib/errors.ts";
import { createRpcClient, RpcError } from "../../src/protocol/client.ts";
import { ERROR_TABLE, kindOfRpc, RPC, toHttpError } from "../../src/protocol/error-codes.ts";
import type { RpcRequest } from "../../src/protocol/jsonrpc.ts";
import { toErrorResponse } from "../../src/protocol/jsonrpc.ts";

describe("the error table", () => {
  test("an ExoError renders as its kind's status and one body shape, Retry-After from its wait", () => {
    expect(toHttpError(new ExoError("forbidden", "origin not allowed"))).toEqual({
      status: 403,
      headers: { "content-type": "application/json" },
      body: { error: { code: "forbidden", message: "origin not allowed" } },
    });
    const busy = toHttpError(new ExoError("rate_limited", "busy", { data: { retry_after_ms: 1200 } }));
    expect([busy.status, busy.headers["retry-after"], busy.body.error.data]).toEqual([
      429,
      "2",
      { retry_after_ms: 1200 },
    ]);
    expect(toHttpError(new ExoError("rate_limited", "x", { data: { retry_after_s: 7 } })).headers["retry-after"]).toBe(
      "7",
    );
    expect(toHttpError(new ParamsError("bad", "name")).body).toEqual({
      error: { code: "invalid_params", message: "bad", data: { field: "name" } },
    });
  });

  test("anything that is not an ExoError is a bare 500 that says nothing of itself", () => {
    expect(toHttpError(new Error("SQLITE_CORRUPT at /home/me/.exoclaw/db"))).toEqual({
      status: 500,
      headers: { "content-type": "application/json" },
      body: { error: { code: "internal", message: "internal error" } },
    });
  });

  test("RPC codes by name are the table's; each code stands for the first kind listed with it", () => {
    expect(RPC.RATE_LIMITED).toBe(ERROR_TABLE.rate_limited.rpc);
    expect(kindOfRpc(-32602)).toBe("invalid_params");
    expect(kindOfRpc(-32603)).toBe("internal");
    expect(kindOfRpc(-32001)).toBe("unauthorized");
    expect(kindOfRpc(-32099)).toBeNull();
    for (const { rpc } of Object.values(ERROR_TABLE)) expect(ERROR_TABLE[kindOfRpc(rpc)!].rpc).toBe(rpc);
    expect(toErrorResponse(1, new ExoError("upgrade_required", "x"))).toEqual({
      jsonrpc: "2.0",
      id: 1,
      error: { code: -32600, message: "x" },
    });
  });
});

describe("the JSON-RPC client core", () => {
  function pair() {
    const sent: RpcRequest[] = [];
    const client = createRpcClient({ send: (r) => void sent.push(r), timeoutMs: 200 });
    return { sent, client };
  }

  test("results, and errors kept whole: the kind from the table, the number as sent, the data", async () => {
    const { sent, client } = pair();
    const ok = client.call("ping");
    const bad = client.call("plugin.load", { name: "../x" });
    const odd = client.call("future.method");
    expect(sent.map((r) => [r.id, r.method])).toEqual([
      [1, "ping"],
      [2, "plugin.load"],
      [3, "future.method"],
    ]);
    expect(
      client.receive({ jsonrpc: "2.0", id: 2, error: { code: -32602, message: "name: bad", data: { field: "name" } } }),
    ).toBe(true);
    expect(client.receive({ jsonrpc: "2.0", id: 3, error: { code: -32099, message: "new kind" } })).toBe(true);
    expect(client.receive({ jsonrpc: "2.0", id: 1, result: "pong" })).toBe(true);
    expect(await ok).toBe("pong");
    const e = await bad.catch((x: unknown) => x);
    expect(e).toBeInstanceOf(RpcError);
    expect(e).toMatchObject({ code: "invalid_params", rpc: -32602, message: "name: bad", data: { field: "name" } });
    expect(await odd.catch((x: unknown) => x)).toMatchObject({ code: "internal", rpc: -32099, message: "new kind" });
  });

  test("notifications go to the handler; strangers' responses are not taken", () => {
    const { client } = pair();
    const seen: unknown[] = [];
    client.onNotification((m, p) => seen.push([m, p]));
    expect(client.receive({ jsonrpc: "2.0", method: "chat.event", params: { seq: 1 } })).toBe(false);
    expect(client.receive({ jsonrpc: "2.0", id: 99, result: 1 })).toBe(false);
    expect(client.receive([{ jsonrpc: "2.0", id: 1, result: 1 }])).toBe(false);
    expect(seen).toEqual([["chat.event", { seq: 1 }]]);
  });

  test("raw responses by request (with the caller's id), a timeout, and a closed transport", async () => {
    const { client } = pair();
    const raw = client.request("status", undefined, { id: "s-1" });
    client.receive({ jsonrpc: "2.0", id: "s-1", error: { code: -32001, message: "unauthorized" } });
    expect(await raw).toEqual({ jsonrpc: "2.0", id: "s-1", error: { code: -32001, message: "unauthorized" } });
    expect(await client.call("slow", undefined, 20).catch((e: Error) => e.message)).toBe(
      "the gateway did not answer slow within 20 ms",
    );
    const waiting = client.call("ping");
    client.close(new Error("gone"));
    expect(await waiting.catch((e: Error) => e.message)).toBe("gone");
    expect(await client.call("ping").catch((e: Error) => e.message)).toBe("gone");
  });
});
