/**
 * Fuzzing provider streams end to end (issue 15): where tests/fuzz/providers.test.ts drives each
 * wire module alone, here a real gateway runs turns for four agents, one per wire API of
 * src/config/providers.ts (Anthropic, OpenAI Chat, Gemini, Ollama), against one loopback upstream
 * that answers each turn's requests with a recorded stream of that API mangled — truncated at any
 * byte, bytes flipped, invalid UTF-8 planted, events of two streams interleaved, any status, the
 * connection dropped after any byte. Retry waits go through the provider's `sleep` seam (recorded,
 * not slept). Properties: every chat.send gets a result (never an RPC error, never a hang), a turn
 * that failed says why in an error event with no key in it; history holds whole turns only; the
 * ledger's counts are finite; nothing is logged as an internal failure, no unhandled rejection;
 * `ping` and `/health` answer afterwards and the heap is back near its baseline.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import fc from "fast-check";
import { providerStream } from "../../src/agent/provider-factory.ts";
import { createLogger } from "../../src/lib/log.ts";
import { type FakeUpstream, type Reply, startFakeUpstream } from "../helpers/fake-upstream.ts";
import { startTestGateway, type TestGateway } from "../helpers/gateway.ts";
import { openSocket, type TestSocket } from "../helpers/ws.ts";
import { heapSnapshot, nearBaseline, params, TIMEOUT, warmUp } from "./_fuzz.ts";

type Msg = Record<string, any>;
const KEY = "sk-fuzz-gw-0123456789abcdef";
const ENV = { ANTHROPIC_API_KEY: KEY, OPENAI_API_KEY: KEY, GEMINI_API_KEY: KEY };
const FIXTURES = join(import.meta.dir, "../fixtures/providers");
const WIRES = [
  { agent: "a", provider: "anthropic", model: "claude-sonnet-4-5", dir: "anthropic", type: "text/event-stream" },
  { agent: "o", provider: "openai", model: "gpt-4o", dir: "openai", type: "text/event-stream" },
  { agent: "g", provider: "gemini", model: "gemini-2.5-flash", dir: "gemini", type: "text/event-stream" },
  { agent: "l", provider: "ollama", model: "llama3.2", dir: "ollama", type: "application/x-ndjson" },
] as const;
const enc = new TextEncoder();
const files = (dir: string, json: boolean) =>
  readdirSync(join(FIXTURES, dir))
    .filter((f) => f.endsWith(".json") === json)
    .map((f) => readFileSync(join(FIXTURES, dir, f), "utf8"));
const STREAMS = WIRES.map((w) => files(w.dir, false));
const ERRORS = WIRES.map((w) => files(w.dir, true));
const INVALID_UTF8 = [[0xff], [0xc3], [0xe2, 0x82], [0xf0, 0x9f, 0x98], [0xed, 0xa0, 0x80], [0xc0, 0xaf], [0x80]];
const eventsOf = (body: string, ndjson: boolean) =>
  (ndjson ? body.split(/(?<=\n)/) : body.split(/(?<=\r?\n\r?\n)/)).filter((e) => e.length > 0);

interface Case {
  wire: number;
  status: number;
  bytes: Uint8Array;
  dropAfter: number | null;
}
function caseFor(wire: number): fc.Arbitrary<Case> {
  const base = fc.constantFrom(...STREAMS[wire]!);
  const ndjson = WIRES[wire]!.type !== "text/event-stream";
  const mangled = fc.oneof(
    base.map((b) => enc.encode(b)),
    base.chain((b) => fc.nat({ max: enc.encode(b).length }).map((n) => enc.encode(b).slice(0, n))),
    fc
      .tuple(base, fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 6 }))
      .map(([b, flips]) => {
        const bytes = enc.encode(b);
        for (const [at, value] of flips) bytes[at % bytes.length] = value;
        return bytes;
      }),
    fc
      .tuple(base, fc.array(fc.tuple(fc.nat(), fc.constantFrom(...INVALID_UTF8)), { minLength: 1, maxLength: 4 }))
      .map(([b, plants]) => {
        let bytes = [...enc.encode(b)];
        for (const [at, junk] of plants) {
          const i = at % (bytes.length + 1);
          bytes = [...bytes.slice(0, i), ...junk, ...bytes.slice(i)];
        }
        return new Uint8Array(bytes);
      }),
    fc.tuple(base, base, fc.array(fc.nat(), { minLength: 1, maxLength: 20 })).map(([a, b, picks]) => {
      const pool = [...eventsOf(a, ndjson), ...eventsOf(b, ndjson)];
      return enc.encode(picks.map((p) => pool[p % pool.length]).join(""));
    }),
  );
  return fc.record({
    wire: fc.constant(wire),
    status: fc.oneof(
      { weight: 8, arbitrary: fc.constant(200) },
      { weight: 1, arbitrary: fc.constantFrom(400, 401, 429, 500, 503, 529) },
    ),
    bytes: fc.oneof(
      { weight: 6, arbitrary: mangled },
      { weight: 1, arbitrary: fc.constantFrom(...ERRORS[wire]!).map((e) => enc.encode(e)) },
    ),
    dropAfter: fc.option(fc.nat({ max: 3000 }), { freq: 5 }),
  });
}
const anyCase = fc.nat({ max: WIRES.length - 1 }).chain(caseFor);

// --- the upstream: every request of the current turn (its retries too) gets the current case ----

let current: Case | null = null;
const upstream: FakeUpstream = startFakeUpstream((): Reply => {
  const c = current;
  if (!c) return { status: 500, body: "no case" };
  return {
    status: c.status,
    headers: { "content-type": c.status === 200 ? WIRES[c.wire]!.type : "application/json" },
    body: [c.bytes],
    ...(c.dropAfter !== null && c.dropAfter < c.bytes.length && { dropAfterBytes: c.dropAfter }),
  };
});

const unhandled: unknown[] = [];
const onUnhandled = (e: unknown) => void unhandled.push(e);
let gw: TestGateway;
let ws: TestSocket;
beforeAll(async () => {
  process.on("unhandledRejection", onUnhandled);
  const base = upstream.url;
  const toml = WIRES.map(
    (w) =>
      `[[agents]]\nid = "${w.agent}"\nprovider = "${w.provider}"\nmodel = "${w.model}"\nbase_url = "${w.provider === "openai" ? `${base}/v1` : base}"\nmax_tool_rounds = 1\nidle_timeout_ms = 5000\n`,
  ).join("");
  const home = { path: "" };
  gw = await startTestGateway({
    toml,
    env: ENV,
    streamFor: (agent) =>
      providerStream(agent, {
        home: home.path,
        env: ENV,
        log: createLogger({ write: () => {} }),
        retry: { sleep: async () => {} },
      }),
  });
  home.path = gw.home;
  ws = await openSocket(gw.wsUrl);
});
afterAll(async () => {
  process.off("unhandledRejection", onUnhandled);
  await ws?.[Symbol.asyncDispose]();
  await gw?.[Symbol.asyncDispose]();
  await upstream[Symbol.asyncDispose]();
});

let n = 0;
let requests = 0;
async function check(c: Case): Promise<void> {
  current = c;
  const id = ++n;
  const w = WIRES[c.wire]!;
  const r = (await ws.call("chat.send", { agent: w.agent, peer: "fuzz", content: `turn ${id}` }, id)) as Msg;
  current = null;
  if (!("result" in r)) throw new Error(`chat.send answered an RPC error: ${JSON.stringify(r.error)}`);
  expect(typeof r.result.text).toBe("string");
  const events = ws.received
    .map((m) => m.value as Msg)
    .filter((m) => m.method === "chat.event" && m.params?.id === id && m.params.event === "error");
  if (r.result.stop_reason === "error") {
    expect(events.length).toBeGreaterThan(0);
    expect(typeof events[0]!.params.data.message).toBe("string");
    expect(events[0]!.params.data.message.length).toBeGreaterThan(0);
  }
  expect(JSON.stringify(events)).not.toContain(KEY);
  ws.received.length = 0;
  // The fake keeps every request it saw; forget them, so only the gateway's own memory is measured.
  requests += upstream.requests.length;
  upstream.requests.length = 0;
}

const internalErrors = () => gw.logs.filter((l) => /"level":"error"/.test(l));

describe("fuzz: provider streams through a real gateway", () => {
  test(
    "every turn on a mangled stream of each wire API ends with a result or a clear error; history and ledger stay whole",
    async () => {
      await fc.assert(fc.asyncProperty(anyCase, check), warmUp(30));
      gw.logs.length = 0;
      const baseline = heapSnapshot();
      await fc.assert(fc.asyncProperty(anyCase, check), params(120));
      expect(internalErrors()).toEqual([]);
      expect(unhandled).toEqual([]);
      expect(requests).toBeGreaterThan(0);
      // Whole turns only: each session's history alternates a user message and what answered it.
      for (const w of WIRES) {
        const h = await gw.store.history(`${w.agent}:ws:local:fuzz`, { limit: 10_000 });
        for (const m of h) expect(["user", "assistant", "tool"]).toContain(m.role);
        if (h.length > 0) expect(h[0]!.role).toBe("user");
      }
      const u = await gw.store.sumUsage({});
      for (const v of [u.calls, u.input_tokens, u.output_tokens, u.cost_usd]) expect(Number.isFinite(v)).toBe(true);
      expect((await ws.call("ping", undefined, "after")).result).toBe("pong");
      expect((await fetch(`${gw.url}/health`)).status).toBe(200);
      gw.logs.length = 0;
      expect(nearBaseline(baseline, heapSnapshot())).toBeNull();
    },
    TIMEOUT,
  );
});
