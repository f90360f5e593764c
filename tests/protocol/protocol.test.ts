import { describe, expect, test } from "bun:test";
import { decodeFrame, encodeFrame } from "../../src/protocol/codec.ts";
import { parseMessage, toErrorResponse } from "../../src/protocol/jsonrpc.ts";
import { ExoError } from "../../src/lib/errors.ts";

describe("codec", () => {
  test("round-trips JSON and MessagePack", () => {
    const msg = { jsonrpc: "2.0", id: 1, method: "ping", params: { s: "héllo ✓ 🦀", n: [1, 2.5, null] } };
    expect(decodeFrame(encodeFrame(msg, "json")).value).toEqual(msg);
    const bin = encodeFrame(msg, "msgpack");
    expect(bin).toBeInstanceOf(Uint8Array);
    expect(decodeFrame(bin)).toEqual({ value: msg, encoding: "msgpack" });
  });
  test("MessagePack output is plain maps (no msgpackr record extension)", () => {
    const bin = encodeFrame({ a: 1 }, "msgpack") as Uint8Array;
    expect([...bin]).toEqual([0x81, 0xa1, 0x61, 0x01]);
  });
  test("malformed input throws a parse_error", () => {
    expect(() => decodeFrame("{")).toThrow(ExoError);
    try {
      decodeFrame(new Uint8Array([0x92, 0x01]));
      throw new Error("unreachable");
    } catch (e) {
      expect((e as ExoError).code).toBe("parse_error");
    }
  });
});

describe("parseMessage", () => {
  test("keeps params and id; drops null params", () => {
    const r = parseMessage({ jsonrpc: "2.0", id: "x", method: "m", params: null });
    expect(r).toEqual({
      batch: false,
      entries: [{ kind: "request", request: { jsonrpc: "2.0", id: "x", method: "m" } }],
    });
  });
  test("unknown errors become a bare internal error without details", () => {
    expect(toErrorResponse(1, new Error("secret internals"))).toEqual({
      jsonrpc: "2.0",
      id: 1,
      error: { code: -32603, message: "internal error" },
    });
    expect(toErrorResponse(2, new ExoError("budget_exceeded", "over", { data: { scope: "daily" } }))).toEqual({
      jsonrpc: "2.0",
      id: 2,
      error: { code: -32002, message: "over", data: { scope: "daily" } },
    });
  });
});
