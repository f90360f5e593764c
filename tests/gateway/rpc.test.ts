import { describe, expect, test } from "bun:test";
import { startTestGateway } from "../helpers/gateway.ts";
import { openSocket } from "../helpers/ws.ts";

type Msg = Record<string, any>;

describe("JSON-RPC over WebSocket", () => {
  test("ping and status over JSON text frames", async () => {
    await using gw = await startTestGateway();
    await using s = await openSocket(gw.wsUrl);
    expect(await s.call("ping", undefined, 1)).toEqual({ jsonrpc: "2.0", id: 1, result: "pong" });
    const status = (await s.call("status", undefined, "st")) as Msg;
    expect(status.id).toBe("st");
    expect(status.result.version).toBe((await import("../../package.json")).version);
    expect(status.result.port).toBe(gw.port);
    expect(status.result.auth).toEqual({ token_required: false, tls: false });
    expect(status.result.connections).toBe(1);
  });

  test("status names each agent's provider and model, and whether it has an API key (issue 9)", async () => {
    const toml =
      '[[agents]]\nid = "main"\nprovider = "anthropic"\nmodel = "claude-x"\n\n[[agents]]\nid = "local"\nprovider = "ollama"\nmodel = "qwen3"\n\n[[agents]]\nid = "gpt"\nprovider = "openai"\nmodel = "gpt-4o"\ndefault = true\n';
    await using gw = await startTestGateway({ toml, env: { OPENAI_API_KEY: "sk-test-present" } });
    await using s = await openSocket(gw.wsUrl);
    const status = (await s.call("status")) as Msg;
    expect(status.result.agents).toEqual([
      { id: "main", provider: "anthropic", model: "claude-x", default: false, key: "missing" },
      { id: "local", provider: "ollama", model: "qwen3", default: false, key: "not_required" },
      { id: "gpt", provider: "openai", model: "gpt-4o", default: true, key: "present" },
    ]);
    // A key stored while the gateway runs (exoclaw onboard, secret set) shows at the next status.
    const { writeCredential } = await import("../../src/config/index.ts");
    writeCredential(gw.home, "anthropic", "sk-ant-later");
    expect(((await s.call("status")) as Msg).result.agents[0].key).toBe("present");
    expect(JSON.stringify(status)).not.toContain("sk-test-present");
  });

  test("ping and status over MessagePack binary frames, answered in MessagePack", async () => {
    await using gw = await startTestGateway();
    await using s = await openSocket(gw.wsUrl);
    s.sendMsgpack({ jsonrpc: "2.0", id: 7, method: "ping" });
    const pong = await s.next((r) => (r.value as Msg).id === 7);
    expect(pong.binary).toBe(true);
    expect(pong.value).toEqual({ jsonrpc: "2.0", id: 7, result: "pong" });
    s.sendMsgpack({ jsonrpc: "2.0", id: 8, method: "status" });
    const st = await s.next((r) => (r.value as Msg).id === 8);
    expect(st.binary).toBe(true);
    expect((st.value as Msg).result.port).toBe(gw.port);
  });

  test("connect returns server info, protocol, methods and limits", async () => {
    await using gw = await startTestGateway({ toml: "[gateway]\nmax_payload_bytes = 200000\n" });
    await using s = await openSocket(gw.wsUrl);
    const r = (await s.call("connect", { client: { name: "test", version: "1" } })) as Msg;
    expect(r.result.server.name).toBe("exoclaw");
    expect(r.result.protocol).toBe(1);
    expect(r.result.methods).toContain("ping");
    expect(r.result.methods).toContain("status");
    expect(r.result.limits).toEqual({ max_payload_bytes: 200000 });
  });

  test("a batch gets one array reply; notifications inside it get no entry", async () => {
    await using gw = await startTestGateway();
    await using s = await openSocket(gw.wsUrl);
    s.sendJson([
      { jsonrpc: "2.0", id: 1, method: "ping" },
      { jsonrpc: "2.0", method: "ping" },
      { jsonrpc: "2.0", id: 2, method: "nope" },
      { jsonrpc: "1.0", id: 3, method: "ping" },
      { jsonrpc: "2.0", id: 4, method: "status" },
    ]);
    const reply = (await s.next()).value as Msg[];
    expect(Array.isArray(reply)).toBe(true);
    const byId = new Map(reply.map((r) => [r.id, r]));
    expect(reply).toHaveLength(4);
    expect(byId.get(1)?.result).toBe("pong");
    expect(byId.get(2)?.error.code).toBe(-32601);
    expect(byId.get(3)?.error.code).toBe(-32600);
    expect(byId.get(4)?.result.version).toBeString();
  });

  test("a 1 MiB batch of invalid entries gets one short error, not a reply per entry; the socket keeps serving", async () => {
    await using gw = await startTestGateway();
    await using s = await openSocket(gw.wsUrl);
    const entries = Array.from({ length: 100_000 }, () => 1); // ~200 KiB of JSON, 100k invalid entries
    s.sendText(JSON.stringify(entries).padEnd(1_000_000, " "));
    const raw = (await s.next()).value as Msg;
    expect(raw.error.code).toBe(-32600);
    expect(raw.error.message).toBe("invalid request: a batch of 100000 entries exceeds the limit of 100");
    expect(JSON.stringify(raw).length).toBeLessThan(300);
    expect((await s.call("ping")).result).toBe("pong");
    // At the limit, a batch is still answered entry by entry.
    s.sendJson(Array.from({ length: 100 }, (_, i) => ({ jsonrpc: "2.0", id: i, method: "ping" })));
    expect(((await s.next()).value as Msg[]).length).toBe(100);
  });

  test("a batch over MessagePack is answered in MessagePack", async () => {
    await using gw = await startTestGateway();
    await using s = await openSocket(gw.wsUrl);
    s.sendMsgpack([
      { jsonrpc: "2.0", id: "a", method: "ping" },
      { jsonrpc: "2.0", id: "b", method: "ping" },
    ]);
    const r = await s.next();
    expect(r.binary).toBe(true);
    expect(r.value).toEqual([
      { jsonrpc: "2.0", id: "a", result: "pong" },
      { jsonrpc: "2.0", id: "b", result: "pong" },
    ]);
  });

  test("a notification gets no reply at all", async () => {
    await using gw = await startTestGateway();
    await using s = await openSocket(gw.wsUrl);
    s.sendJson({ jsonrpc: "2.0", method: "ping" });
    s.sendJson({ jsonrpc: "2.0", method: "no.such.method" });
    expect(await s.call("ping", undefined, 99)).toMatchObject({ id: 99, result: "pong" });
    expect(s.received).toHaveLength(1);
  });

  test("50 concurrent requests on one socket are each answered with their own id", async () => {
    await using gw = await startTestGateway();
    await using s = await openSocket(gw.wsUrl);
    const ids = Array.from({ length: 50 }, (_, i) => (i % 2 ? `id-${i}` : i));
    const replies = await Promise.all(ids.map((id, i) => s.call(i % 3 ? "ping" : "status", undefined, id)));
    replies.forEach((r, i) => {
      expect(r.id).toBe(ids[i]!);
      if (i % 3) expect(r.result).toBe("pong");
      else expect((r.result as Msg).version).toBeString();
    });
    expect(s.received).toHaveLength(50);
  });

  describe("every JSON-RPC error code is reachable from bad input", () => {
    const cases: [string, (s: Awaited<ReturnType<typeof openSocket>>) => void, number, unknown][] = [
      ["not JSON", (s) => s.sendText("{not json"), -32700, null],
      ["truncated MessagePack", (s) => s.ws.send(new Uint8Array([0x82, 0xa1, 0x61])), -32700, null],
      ["not an object", (s) => s.sendJson(42), -32600, null],
      ["a string", (s) => s.sendJson("ping"), -32600, null],
      ["empty batch", (s) => s.sendJson([]), -32600, null],
      ["wrong jsonrpc", (s) => s.sendJson({ jsonrpc: "1.0", id: 5, method: "ping" }), -32600, 5],
      ["missing jsonrpc", (s) => s.sendJson({ id: 6, method: "ping" }), -32600, 6],
      ["missing method", (s) => s.sendJson({ jsonrpc: "2.0", id: 7 }), -32600, 7],
      ["method not a string", (s) => s.sendJson({ jsonrpc: "2.0", id: 8, method: 12 }), -32600, 8],
      ["id of a bad type", (s) => s.sendJson({ jsonrpc: "2.0", id: { x: 1 }, method: "ping" }), -32600, null],
      ["params a scalar", (s) => s.sendJson({ jsonrpc: "2.0", id: 9, method: "ping", params: 3 }), -32600, 9],
      [
        "params of the wrong type",
        (s) => s.sendJson({ jsonrpc: "2.0", id: 10, method: "connect", params: { token: 5 } }),
        -32602,
        10,
      ],
      ["unknown method", (s) => s.sendJson({ jsonrpc: "2.0", id: 11, method: "frobnicate" }), -32601, 11],
    ];
    for (const [name, send, code, id] of cases) {
      test(`${name} → ${code}`, async () => {
        await using gw = await startTestGateway();
        await using s = await openSocket(gw.wsUrl);
        send(s);
        const r = (await s.next()).value as Msg;
        expect(r.jsonrpc).toBe("2.0");
        expect(r.id).toBe(id);
        expect(r.error.code).toBe(code);
        expect(r.error.message).toBeString();
        // The socket stays usable after bad input.
        expect((await s.call("ping")).result).toBe("pong");
      });
    }

    test("invalid params name the field in data", async () => {
      await using gw = await startTestGateway();
      await using s = await openSocket(gw.wsUrl);
      const r = (await s.call("connect", { client: { name: 3 } })) as Msg;
      expect(r.error.code).toBe(-32602);
      expect(r.error.data).toEqual({ field: "client.name" });
      expect(r.error.message).toContain("client.name");
    });
  });

  test("a frame over max_payload_bytes gets -32007 and the socket stays open", async () => {
    await using gw = await startTestGateway({ toml: "[gateway]\nmax_payload_bytes = 4096\n" });
    await using s = await openSocket(gw.wsUrl);
    s.sendJson({ jsonrpc: "2.0", id: 1, method: "ping", params: { pad: "x".repeat(5000) } });
    const r = (await s.next()).value as Msg;
    expect(r.error.code).toBe(-32007);
    expect(r.error.data).toEqual({ limit: 4096 });
    expect((await s.call("ping")).result).toBe("pong");
  });

  test("a frame far over the limit is cut off by the server with 1009", async () => {
    await using gw = await startTestGateway({ toml: "[gateway]\nmax_payload_bytes = 4096\n" });
    await using s = await openSocket(gw.wsUrl);
    s.sendText("x".repeat(50_000));
    expect((await s.closed).code).toBe(1009);
  });

  test("too many requests in flight on one socket are refused with -32005", async () => {
    await using gw = await startTestGateway({ gateway: { maxInFlight: 0 } });
    await using s = await openSocket(gw.wsUrl);
    const r = (await s.call("ping")) as Msg;
    expect(r.error.code).toBe(-32005);
  });
});
