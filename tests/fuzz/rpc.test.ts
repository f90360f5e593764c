/**
 * Fuzzing the WebSocket JSON-RPC surface (issue 15): arbitrary frames — JSON values, request-shaped
 * objects with wrong types for every param of every method, batches (over the cap too), deep
 * nesting, frames near max_payload_bytes, MessagePack with huge declared lengths and odd types —
 * sent over a real socket to a real gateway. Properties: each frame gets exactly the replies JSON-RPC
 * says (one per request with an id, one per invalid entry, none for notifications), each a valid
 * response whose error code is one of SPEC §5's (never -32603 for bad input), in the frame's
 * encoding; nothing is logged as an internal failure, no unhandled rejection; `ping` and GET /health
 * still answer, and the heap is back near its baseline.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import fc from "fast-check";
import type * as v from "valibot";
import type { StreamFn } from "../../src/agent/loop.ts";
import { ConnectParams, PRE_AUTH_MAX_BYTES } from "../../src/gateway/connection.ts";
import { ChatCancelParams, ChatSendParams } from "../../src/gateway/chat-methods.ts";
import { InboxIdParams, InboxListParams } from "../../src/gateway/inbox-methods.ts";
import { MemorySearchParams } from "../../src/gateway/memory-methods.ts";
import { PairingApproveParams, PairingListParams, PairingRevokeParams } from "../../src/gateway/pairing-methods.ts";
import { ChatHistoryParams, SessionListParams, SessionResetParams } from "../../src/gateway/session-methods.ts";
import { UsageParams } from "../../src/gateway/usage-methods.ts";
import { decodeFrame, packMsgpack } from "../../src/protocol/codec.ts";
import { MAX_BATCH_ENTRIES } from "../../src/protocol/jsonrpc.ts";
import { startTestGateway, type TestGateway } from "../helpers/gateway.ts";
import { openSocket, type Received, type TestSocket } from "../helpers/ws.ts";
import { heapBack, heapSnapshot, params, TIMEOUT, warmUp } from "./_fuzz.ts";

type Msg = Record<string, any>;

const MAX_PAYLOAD = 16 * 1024;
/** SPEC §5's codes a client may see for bad input; -32603 (internal) would be a bug here. */
const ALLOWED_CODES = new Set([-32700, -32600, -32601, -32602, -32001, -32002, -32003, -32004, -32005, -32006, -32007]);

const echo: StreamFn = async function* (req) {
  const last = req.messages.at(-1)?.parts[0] as { text?: string } | undefined;
  yield { type: "text", text: `echo: ${String(last?.text ?? "").slice(0, 20)}` };
  yield { type: "done", stop_reason: "end_turn" };
};

/** Every method's params schema (its keys are what the fuzzer aims wrong types at). */
const SCHEMAS: Record<string, v.GenericSchema | undefined> = {
  connect: ConnectParams,
  ping: undefined,
  status: undefined,
  "agent.list": undefined,
  "plugin.list": undefined,
  "config.reload": undefined,
  "chat.send": ChatSendParams,
  "chat.cancel": ChatCancelParams,
  "chat.history": ChatHistoryParams,
  "session.list": SessionListParams,
  "session.reset": SessionResetParams,
  "usage.get": UsageParams,
  "memory.search": MemorySearchParams,
  "pairing.list": PairingListParams,
  "pairing.approve": PairingApproveParams,
  "pairing.revoke": PairingRevokeParams,
  "inbox.list": InboxListParams,
  "inbox.retry": InboxIdParams,
  "inbox.drop": InboxIdParams,
  // plugin.load/unload take {name}; the fuzzer never names a real plugin ("zz-" prefix below).
  "plugin.load": undefined,
  "plugin.unload": undefined,
};

function keysOf(schema: v.GenericSchema | undefined): string[] {
  const entries = (schema as { entries?: Record<string, unknown> } | undefined)?.entries;
  return entries ? Object.keys(entries) : [];
}

// --- arbitraries -------------------------------------------------------------------------------

const anyJson = fc.jsonValue({ maxDepth: 4 });
const plausible = fc.oneof(
  fc.string({ maxLength: 30 }),
  fc.integer(),
  fc.double(),
  fc.boolean(),
  fc.constant(null),
  fc.constant(""),
  fc.array(fc.string(), { maxLength: 3 }),
  anyJson,
);

/** Params for a method: arbitrary JSON, or an object over its real keys with values of any type. */
function paramsFor(method: string, keys: string[]): fc.Arbitrary<unknown> {
  const ks = method.startsWith("plugin.") ? ["name"] : keys;
  const overKeys =
    ks.length === 0
      ? fc.dictionary(fc.string({ maxLength: 8 }), plausible, { maxKeys: 3 })
      : fc.dictionary(
          fc.oneof(
            { weight: 6, arbitrary: fc.constantFrom(...ks) },
            { weight: 1, arbitrary: fc.string({ maxLength: 8 }) },
          ),
          plausible,
          { maxKeys: ks.length + 1 },
        );
  const safe = method.startsWith("plugin.")
    ? overKeys.map((o) => (typeof o.name === "string" ? { ...o, name: `zz-${o.name}` } : o))
    : overKeys;
  return fc.oneof(
    { weight: 5, arbitrary: safe },
    { weight: 1, arbitrary: anyJson },
    { weight: 1, arbitrary: fc.constant(undefined) },
  );
}

const knownMethod = fc.constantFrom(...Object.keys(SCHEMAS));
const anyId = fc.oneof(
  fc.integer(),
  fc.string({ maxLength: 12 }),
  fc.constant(null),
  fc.double(),
  fc.boolean(),
  fc.constant(undefined),
  fc.object({ maxDepth: 1 }),
);

/** Request-shaped objects: mostly right envelopes with wrong params, sometimes a wrong envelope. */
const requestLike: fc.Arbitrary<unknown> = fc
  .tuple(
    fc.oneof({ weight: 8, arbitrary: knownMethod }, { weight: 1, arbitrary: fc.string({ maxLength: 20 }) }),
    anyId,
    fc.oneof({ weight: 8, arbitrary: fc.constant("2.0") }, { weight: 1, arbitrary: anyJson }),
  )
  .chain(([method, id, jsonrpc]) =>
    paramsFor(method, keysOf(SCHEMAS[method])).map((p) => {
      const o: Record<string, unknown> = { jsonrpc, method };
      if (id !== undefined) o.id = id;
      if (p !== undefined) o.params = p;
      return o;
    }),
  );

const batch = fc.array(fc.oneof({ weight: 6, arbitrary: requestLike }, { weight: 1, arbitrary: anyJson }), {
  minLength: 0,
  maxLength: 12,
});
const overCap = fc
  .integer({ min: MAX_BATCH_ENTRIES + 1, max: MAX_BATCH_ENTRIES + 50 })
  .map((n) => Array.from({ length: n }, (_, i) => ({ jsonrpc: "2.0", id: i, method: "ping" })));

const deepJson = fc
  .tuple(
    fc.integer({ min: 1, max: 200_000 }),
    fc.constantFrom("[", '{"a":', '{"jsonrpc":"2.0","id":1,"method":"chat.send","params":{"content":'),
  )
  .map(([d, open]) => {
    if (open === "[") return "[".repeat(d) + "]".repeat(d);
    if (open === '{"a":') return '{"a":'.repeat(d) + "1" + "}".repeat(d);
    return open + "[".repeat(d) + "]".repeat(d) + "}}";
  });

/** A chat.send whose serialised size lands within ±256 bytes of max_payload_bytes. */
const nearMax = fc.tuple(fc.integer({ min: -256, max: 256 }), fc.boolean()).map(([delta, binary]) => {
  const base = { jsonrpc: "2.0", id: 1, method: "chat.send", params: { content: "" } };
  const overhead = binary ? packMsgpack(base).byteLength + 4 : JSON.stringify(base).length;
  const content = "x".repeat(Math.max(1, MAX_PAYLOAD + delta - overhead));
  const value = { ...base, params: { content } };
  return binary ? packMsgpack(value) : JSON.stringify(value);
});

/** MessagePack headers that declare far more than the frame holds, followed by arbitrary bytes. */
const hugeDeclared = fc
  .tuple(
    fc.constantFrom(0xdc, 0xdd, 0xde, 0xdf, 0xda, 0xdb, 0xc5, 0xc6, 0xc8, 0xc9, 0xd9, 0xc4),
    fc.uint8Array({ minLength: 4, maxLength: 4 }),
    fc.uint8Array({ maxLength: 64 }),
  )
  .map(([tag, len, rest]) => new Uint8Array([tag, ...len, ...rest]));

/** Valid MessagePack requests carrying types JSON has not: binary, timestamps, 64-bit ints, extensions. */
const oddMsgpack = fc
  .tuple(
    knownMethod,
    fc.constantFrom<[string, number[]]>(
      ["bin", [0xc4, 0x02, 0x01, 0x02]],
      ["date", [0xd6, 0xff, 0, 0, 0, 1]],
      ["u64", [0xcf, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]],
      ["ext", [0xd4, 0x05, 0x01]],
      ["c1", [0xc1]],
      ["nil", [0xc0]],
    ),
    fc.constantFrom("id", "params", "content"),
  )
  .map(([method, [, bytes], where]) => {
    // {"jsonrpc":"2.0","method":m,<where>:<odd>} built by hand so the odd value is really on the wire.
    const enc = (s: string) => [...packMsgpack(s)];
    const entries: number[][] = [
      [...enc("jsonrpc"), ...enc("2.0")],
      [...enc("method"), ...enc(method)],
      where === "id" ? [...enc("id"), ...bytes] : [...enc("id"), 0x07],
      where === "params"
        ? [...enc("params"), ...bytes]
        : where === "content"
          ? [...enc("params"), 0x81, ...enc("content"), ...bytes]
          : [],
    ].filter((e) => e.length > 0);
    return new Uint8Array([0x80 | entries.length, ...entries.flat()]);
  });

const textFrame = fc.oneof(
  { weight: 4, arbitrary: requestLike.map((r) => JSON.stringify(r) ?? "null") },
  { weight: 3, arbitrary: batch.map((b) => JSON.stringify(b)) },
  { weight: 1, arbitrary: overCap.map((b) => JSON.stringify(b)) },
  { weight: 2, arbitrary: anyJson.map((j) => JSON.stringify(j)) },
  { weight: 2, arbitrary: fc.string({ unit: "binary", maxLength: 200 }) },
  {
    weight: 1,
    arbitrary: requestLike.chain((r) => {
      const s = JSON.stringify(r) ?? "";
      return fc.nat({ max: s.length }).map((n) => s.slice(0, n));
    }),
  },
  { weight: 1, arbitrary: deepJson },
);
const binaryFrame = fc.oneof(
  { weight: 4, arbitrary: requestLike.map((r) => packMsgpack(r)) },
  { weight: 2, arbitrary: batch.map((b) => packMsgpack(b)) },
  { weight: 2, arbitrary: fc.uint8Array({ maxLength: 200 }) },
  { weight: 2, arbitrary: hugeDeclared },
  { weight: 2, arbitrary: oddMsgpack },
  { weight: 1, arbitrary: fc.integer({ min: 1, max: 50_000 }).map((d) => new Uint8Array(d).fill(0x91)) },
);
/** A frame that prints short in a counterexample (the first bytes and its size, not 16 KiB of x). */
interface Frame {
  data: string | Uint8Array;
  [fc.toStringMethod]: () => string;
}
const framed = (data: string | Uint8Array): Frame => ({
  data,
  [fc.toStringMethod]: () => {
    const size = typeof data === "string" ? data.length : data.byteLength;
    const head =
      typeof data === "string"
        ? JSON.stringify(data.slice(0, 160))
        : `msgpack<${Buffer.from(data.subarray(0, 80)).toString("hex")}>`;
    return `${head}${size > 160 ? ` … (${size} ${typeof data === "string" ? "chars" : "bytes"})` : ""}`;
  },
});
const anyFrame: fc.Arbitrary<Frame> = fc
  .oneof({ weight: 5, arbitrary: textFrame }, { weight: 4, arbitrary: binaryFrame }, { weight: 1, arbitrary: nearMax })
  .map(framed);

// --- the oracle: what JSON-RPC 2.0 says the frame must get back ---------------------------------

type Expect =
  | { replies: 0 }
  | { replies: 1; batch: false; id: unknown }
  | { replies: 1; batch: true; entries: number }
  | { replies: "closed" };

const isObj = (x: unknown): x is Record<string, unknown> =>
  typeof x === "object" && x !== null && !Array.isArray(x) && !(x instanceof Uint8Array);
const validId = (id: unknown) =>
  id === null || typeof id === "string" || (typeof id === "number" && Number.isFinite(id));
/** Whether an entry is answered: invalid ones always (id null unless valid), requests only with an id. */
function answered(e: unknown): { answered: boolean; id: unknown } {
  if (!isObj(e)) return { answered: true, id: null };
  const hasId = "id" in e && e.id !== undefined;
  if (hasId && !validId(e.id)) return { answered: true, id: null };
  const valid =
    e.jsonrpc === "2.0" &&
    typeof e.method === "string" &&
    e.method !== "" &&
    (e.params === undefined || typeof e.params === "object");
  return { answered: !valid || hasId, id: hasId ? e.id : null };
}

function expected(frame: string | Uint8Array): Expect {
  const size = typeof frame === "string" ? Buffer.byteLength(frame) : frame.byteLength;
  if (size > 2 * MAX_PAYLOAD) return { replies: "closed" };
  if (size > MAX_PAYLOAD) return { replies: 1, batch: false, id: null };
  let value: unknown;
  try {
    value = decodeFrame(frame).value;
  } catch {
    return { replies: 1, batch: false, id: null };
  }
  if (Array.isArray(value)) {
    if (value.length === 0 || value.length > MAX_BATCH_ENTRIES) return { replies: 1, batch: false, id: null };
    const n = value.filter((e) => answered(e).answered).length;
    return n === 0 ? { replies: 0 } : { replies: 1, batch: true, entries: n };
  }
  const a = answered(value);
  return a.answered ? { replies: 1, batch: false, id: a.id } : { replies: 0 };
}

const isResponse = (r: Received) => Array.isArray(r.value) || (isObj(r.value) && !("method" in r.value));

function checkResponse(r: unknown): void {
  expect(isObj(r)).toBe(true);
  const m = r as Msg;
  expect(m.jsonrpc).toBe("2.0");
  expect("id" in m).toBe(true);
  expect("result" in m !== "error" in m).toBe(true);
  if ("error" in m) {
    if (!ALLOWED_CODES.has(m.error.code))
      throw new Error(`unexpected error code ${m.error.code}: ${JSON.stringify(m.error)}`);
    expect(typeof m.error.message).toBe("string");
    expect(m.error.message).not.toMatch(/\n\s+at |\/src\//);
  }
}

// --- the properties ---------------------------------------------------------------------------

const unhandled: unknown[] = [];
const onUnhandled = (e: unknown) => void unhandled.push(e);
let gw: TestGateway;
beforeAll(async () => {
  process.on("unhandledRejection", onUnhandled);
  gw = await startTestGateway({ toml: `[gateway]\nmax_payload_bytes = ${MAX_PAYLOAD}\n`, streamFor: () => echo });
});
afterAll(async () => {
  process.off("unhandledRejection", onUnhandled);
  await gw?.[Symbol.asyncDispose]();
});

async function stillServing(g: TestGateway): Promise<void> {
  await using s = await openSocket(g.wsUrl);
  expect(await s.call("ping", undefined, "after")).toEqual({ jsonrpc: "2.0", id: "after", result: "pong" });
  expect((await fetch(`${g.url}/health`)).status).toBe(200);
}

/** Internal failures the gateway logged (a handler threw something that was not an ExoError). */
const internalErrors = (g: TestGateway) => g.logs.filter((l) => /"level":"error"/.test(l));

async function exchange(
  s: TestSocket,
  frame: string | Uint8Array,
): Promise<{ exp: Expect; got: Received[]; close?: number }> {
  const exp = expected(frame);
  s.ws.send(frame);
  if (exp.replies === "closed") {
    const c = await Promise.race([s.closed, Bun.sleep(5000).then(() => null)]);
    // Past twice the limit Bun itself refuses the frame (close 1009); a -32007 reply is fine too.
    if (c !== null) return { exp, got: s.received.filter(isResponse), close: c.code };
    const r = await s.next(isResponse);
    return { exp, got: [r] };
  }
  if (exp.replies === 1) await s.next(isResponse, 10_000);
  // A ping after the frame: everything the frame is owed has arrived by its pong, except replies to
  // slow requests, which the count below would still catch as missing.
  const pong = await s.call("ping", undefined, "sentinel");
  expect(pong.result).toBe("pong");
  return { exp, got: s.received.filter((r) => isResponse(r) && (r.value as Msg).id !== "sentinel") };
}

describe("fuzz: JSON-RPC frames over a real WebSocket", () => {
  test(
    "every frame gets exactly the replies JSON-RPC owes it, each with a SPEC error code, in its own encoding",
    async () => {
      const property = fc.asyncProperty(anyFrame, async ({ data: frame }) => {
        await using s = await openSocket(gw.wsUrl);
        const { exp, got, close } = await exchange(s, frame);
        const binary = typeof frame !== "string";
        if (exp.replies === "closed") {
          if (close !== undefined) expect(close).toBe(1009);
          else expect((got[0]!.value as Msg).error.code).toBe(-32007);
          return;
        }
        expect(got.length).toBe(exp.replies);
        for (const r of got) expect(r.binary).toBe(binary);
        if (exp.replies === 0) return;
        const reply = got[0]!.value;
        if (exp.batch) {
          expect(Array.isArray(reply)).toBe(true);
          expect((reply as unknown[]).length).toBe(exp.entries);
          for (const r of reply as unknown[]) checkResponse(r);
        } else {
          checkResponse(reply);
          expect((reply as Msg).id).toEqual(exp.id);
        }
      });
      // A warm-up, then the baseline the heap must be back near after the fuzz.
      await fc.assert(property, warmUp(60));
      const baseline = heapSnapshot();
      // One round of the fuzz: run here, and again by heapBack when the heap is over its limit.
      const round = async () => {
        await fc.assert(property, params(300));
      };
      await round();
      expect(internalErrors(gw)).toEqual([]);
      expect(unhandled).toEqual([]);
      await stillServing(gw);
      gw.logs.length = 0;
      expect(
        await heapBack(baseline, async () => {
          await round();
          gw.logs.length = 0;
        }),
      ).toBeNull();
    },
    TIMEOUT,
  );

  test(
    "wrong types for every param of every method are -32602 naming a field, never an internal error",
    async () => {
      await using s = await openSocket(gw.wsUrl);
      let id = 0;
      await fc.assert(
        fc.asyncProperty(
          knownMethod.chain((m) => paramsFor(m, keysOf(SCHEMAS[m])).map((p) => [m, p] as const)),
          async ([method, p]) => {
            const r = (await s.call(method, p, ++id)) as Msg;
            checkResponse(r);
            if ("error" in r && r.error.code === -32602) {
              expect(typeof r.error.data?.field === "string" || r.error.message.startsWith("invalid params")).toBe(
                true,
              );
            }
          },
        ),
        params(400),
      );
      expect(internalErrors(gw)).toEqual([]);
      await stillServing(gw);
    },
    TIMEOUT,
  );
});

describe("fuzz: frames before authentication", () => {
  test(
    "an unauthenticated socket gets an error and close 4001 for anything but a right connect, and no method runs",
    async () => {
      await using tgw = await startTestGateway({
        token: "fuzz-token-123456",
        toml: `[gateway]\nmax_payload_bytes = ${MAX_PAYLOAD}\n`,
        streamFor: () => echo,
        gateway: { limiter: { maxFailures: 1_000_000, maxGlobalFailures: 1_000_000 } },
      });
      await fc.assert(
        fc.asyncProperty(anyFrame, async ({ data: frame }) => {
          await using s = await openSocket(tgw.wsUrl);
          s.ws.send(frame);
          const closed = await Promise.race([s.closed, Bun.sleep(3000).then(() => null)]);
          const size = typeof frame === "string" ? Buffer.byteLength(frame) : frame.byteLength;
          const replies = s.received.filter(isResponse);
          if (closed === null) {
            // Left open only for what is owed nothing: a lone notification... which before auth is refused too.
            throw new Error(`socket left open after ${JSON.stringify(replies.map((r) => r.value))}`);
          }
          expect([4001, 1009]).toContain(closed.code);
          if (size > PRE_AUTH_MAX_BYTES) return;
          for (const r of replies) {
            for (const m of Array.isArray(r.value) ? r.value : [r.value]) {
              checkResponse(m);
              // Nothing but an error: no method answered before auth (a right connect is never generated).
              expect("error" in (m as Msg)).toBe(true);
            }
          }
        }),
        params(150),
      );
      expect(internalErrors(tgw)).toEqual([]);
      await using s = await openSocket(tgw.wsUrl, { headers: { authorization: "Bearer fuzz-token-123456" } });
      expect((await s.call("ping", undefined, 1)).result).toBe("pong");
    },
    TIMEOUT,
  );
});
