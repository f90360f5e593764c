/**
 * Fuzzing the provider stream parsers (issue 15): each wire API (Anthropic, OpenAI Chat, Gemini,
 * Ollama) reads, from a real loopback upstream, its own recorded streams mangled — cut at any byte,
 * split into arbitrary chunks, bytes flipped, invalid UTF-8 planted, events of two streams
 * interleaved, payloads swapped for arbitrary JSON, any HTTP status, the connection dropped.
 * Property: the stream never throws and never rejects unhandled; it ends with exactly one terminal
 * event — `done` or an `error` carrying a ProviderError — and nothing after it; usage counts are
 * finite numbers.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import fc from "fast-check";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { ProviderError } from "../../src/agent/provider-error.ts";
import { createAnthropicProvider } from "../../src/agent/providers/anthropic.ts";
import { createGeminiProvider } from "../../src/agent/providers/gemini.ts";
import { createOllamaProvider } from "../../src/agent/providers/ollama.ts";
import { createOpenAIChatProvider } from "../../src/agent/providers/openai-chat.ts";
import type { Provider, ProviderOptions, StreamEvent } from "../../src/agent/types.ts";
import { type FakeUpstream, type Reply, startFakeUpstream } from "../helpers/fake-upstream.ts";
import { paths, setAt } from "../helpers/payloads.ts";
import { params, TIMEOUT } from "./_fuzz.ts";

const KEY = "sk-fuzz-0123456789abcdef";
const FIXTURES = join(import.meta.dir, "../fixtures/providers");

const WIRES: {
  name: string;
  dir: string;
  make: (o: ProviderOptions) => Provider;
  contentType: string;
  ndjson: boolean;
}[] = [
  {
    name: "anthropic",
    dir: "anthropic",
    make: createAnthropicProvider,
    contentType: "text/event-stream",
    ndjson: false,
  },
  { name: "openai", dir: "openai", make: createOpenAIChatProvider, contentType: "text/event-stream", ndjson: false },
  { name: "gemini", dir: "gemini", make: createGeminiProvider, contentType: "text/event-stream", ndjson: false },
  { name: "ollama", dir: "ollama", make: createOllamaProvider, contentType: "application/x-ndjson", ndjson: true },
];

const enc = new TextEncoder();
/** Every recorded stream of a wire API (200 bodies; the error-*.json files are error answers). */
function streams(dir: string): string[] {
  return readdirSync(join(FIXTURES, dir))
    .filter((f) => !f.endsWith(".json"))
    .map((f) => readFileSync(join(FIXTURES, dir, f), "utf8"));
}
function errorBodies(dir: string): string[] {
  return readdirSync(join(FIXTURES, dir))
    .filter((f) => f.endsWith(".json"))
    .map((f) => readFileSync(join(FIXTURES, dir, f), "utf8"));
}

/** The events (SSE blocks or NDJSON lines) of a stream, each with its separator. */
const eventsOf = (body: string, ndjson: boolean): string[] =>
  (ndjson ? body.split(/(?<=\n)/) : body.split(/(?<=\r?\n\r?\n)/)).filter((e) => e.length > 0);

const INVALID_UTF8 = [
  [0xff],
  [0xc3],
  [0xe2, 0x82],
  [0xf0, 0x9f, 0x98],
  [0xed, 0xa0, 0x80],
  [0xc0, 0xaf],
  [0x80],
  [0xf8, 0x88, 0x80, 0x80, 0x80],
];

interface Case {
  wire: number;
  status: number;
  bytes: Uint8Array;
  cuts: number[];
  dropAfter: number | null;
}

/** One mangling of a recorded stream. */
function caseFor(wire: number): fc.Arbitrary<Case> {
  const w = WIRES[wire]!;
  const bodies = streams(w.dir);
  const errors = errorBodies(w.dir);
  const base = fc.constantFrom(...bodies);
  const mangled = fc.oneof(
    // Intact, or truncated at any byte.
    base.chain((b) => fc.nat({ max: enc.encode(b).length }).map((n) => enc.encode(b).slice(0, n))),
    // Bytes flipped or replaced at random offsets.
    fc
      .tuple(base, fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 8 }))
      .map(([b, flips]) => {
        const bytes = enc.encode(b);
        for (const [at, value] of flips) bytes[at % bytes.length] = value;
        return bytes;
      }),
    // Invalid UTF-8 planted at random offsets (inside JSON strings, keys, between events).
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
    // Events of two streams interleaved, duplicated or dropped.
    fc.tuple(base, base, fc.array(fc.nat(), { minLength: 1, maxLength: 30 })).map(([a, b, picks]) => {
      const pool = [...eventsOf(a, w.ndjson), ...eventsOf(b, w.ndjson)];
      return enc.encode(picks.map((p) => pool[p % pool.length]).join(""));
    }),
    // An event's payload replaced by arbitrary JSON.
    fc.tuple(base, fc.nat(), fc.jsonValue({ maxDepth: 4 })).map(([b, at, json]) => {
      const events = eventsOf(b, w.ndjson);
      const i = at % events.length;
      events[i] = w.ndjson
        ? `${JSON.stringify(json)}\n`
        : events[i]!.replace(/data: .*$/m, `data: ${JSON.stringify(json)}`);
      return enc.encode(events.join(""));
    }),
    // A field of one event given a value of another type (a string count, an object for text …).
    fc
      .tuple(base, fc.nat(), fc.nat(), fc.jsonValue({ maxDepth: 2 }), fc.boolean())
      .map(([b, at, where, value, remove]) => {
        const events = eventsOf(b, w.ndjson);
        const i = at % events.length;
        const m = w.ndjson ? /^(.*)$/m.exec(events[i]!) : /^data: (.*)$/m.exec(events[i]!);
        let payload: unknown;
        try {
          payload = JSON.parse(m?.[1] ?? "");
        } catch {
          return enc.encode(b);
        }
        const ps = paths(payload);
        const p = ps[where % ps.length]!;
        const changed = JSON.stringify(setAt(payload, p, value, remove && p.length > 0));
        events[i] = w.ndjson ? `${changed}\n` : events[i]!.replace(/^data: .*$/m, () => `data: ${changed}`);
        return enc.encode(events.join(""));
      }),
    // Any bytes at all.
    fc.uint8Array({ maxLength: 400 }),
  );
  const status = fc.oneof(
    { weight: 8, arbitrary: fc.constant(200) },
    { weight: 1, arbitrary: fc.constantFrom(400, 401, 404, 408, 429, 500, 502, 503, 529) },
    { weight: 1, arbitrary: fc.integer({ min: 201, max: 599 }) },
  );
  const body = fc.oneof(
    { weight: 6, arbitrary: mangled },
    { weight: 1, arbitrary: fc.constantFrom(...errors).map((e) => enc.encode(e)) },
  );
  return fc.record({
    wire: fc.constant(wire),
    status,
    bytes: body,
    cuts: fc.array(fc.nat(), { maxLength: 12 }),
    dropAfter: fc.option(fc.nat({ max: 4000 }), { freq: 5 }),
  });
}

function chunks(c: Case): Uint8Array[] {
  const cuts = [...new Set(c.cuts.map((n) => (c.bytes.length === 0 ? 0 : n % c.bytes.length)))]
    .filter((n) => n > 0)
    .sort((a, b) => a - b);
  const out: Uint8Array[] = [];
  let from = 0;
  for (const at of [...cuts, c.bytes.length]) {
    out.push(c.bytes.slice(from, at));
    from = at;
  }
  return out;
}

let upstream: FakeUpstream;
let current: Case | null = null;
const unhandled: unknown[] = [];
const onUnhandled = (e: unknown) => unhandled.push(e);

beforeAll(() => {
  process.on("unhandledRejection", onUnhandled);
  upstream = startFakeUpstream((): Reply => {
    const c = current!;
    return {
      status: c.status,
      headers: { "content-type": WIRES[c.wire]!.contentType },
      body: chunks(c),
      ...(c.dropAfter !== null && c.dropAfter < c.bytes.length && { dropAfterBytes: c.dropAfter }),
    };
  });
});
afterAll(async () => {
  process.off("unhandledRejection", onUnhandled);
  await upstream?.[Symbol.asyncDispose]();
});

const request = {
  model: "test-model",
  system: "You are terse.",
  maxTokens: 64,
  tools: [
    {
      name: "get_weather",
      description: "Weather",
      input_schema: { type: "object", properties: { city: { type: "string" } } },
    },
  ],
  messages: [{ role: "user" as const, parts: [{ type: "text" as const, text: "Weather in Oslo?" }] }],
};

async function run(c: Case): Promise<StreamEvent[]> {
  current = c;
  const provider = WIRES[c.wire]!.make({ baseUrl: upstream.url, apiKey: KEY });
  const events: StreamEvent[] = [];
  for await (const e of provider.stream(request, {})) events.push(e);
  return events;
}

function checkEvents(events: StreamEvent[]): void {
  const terminal = events.findIndex((e) => e.type === "done" || e.type === "error");
  if (terminal !== events.length - 1)
    throw new Error(`expected one terminal event, last; got ${JSON.stringify(events.map((e) => e.type))}`);
  const last = events.at(-1)!;
  if (last.type === "error") {
    expect(last.error).toBeInstanceOf(ProviderError);
    expect(last.error.message).not.toContain(KEY);
  }
  for (const e of events) {
    if (e.type === "usage") {
      if (!Number.isFinite(e.input_tokens) || !Number.isFinite(e.output_tokens))
        throw new Error(`usage ${JSON.stringify(e)}`);
    }
    if (e.type === "text" && typeof e.text !== "string") throw new Error(`text event with ${JSON.stringify(e.text)}`);
    if (e.type === "tool_call") {
      if (typeof e.name !== "string" || typeof e.id !== "string")
        throw new Error(`tool_call with name ${JSON.stringify(e.name)} and id ${JSON.stringify(e.id)}`);
    }
  }
}

describe("fuzz: provider streams", () => {
  for (const [i, w] of WIRES.entries()) {
    test(
      `${w.name}: any mangled stream ends with done or a ProviderError, never a throw`,
      async () => {
        const outcomes = { done: 0, error: 0 };
        await fc.assert(
          fc.asyncProperty(caseFor(i), async (c) => {
            const events = await run(c);
            checkEvents(events);
            outcomes[events.at(-1)!.type === "done" ? "done" : "error"]++;
          }),
          params(150),
        );
        expect(unhandled).toEqual([]);
        // Both ends are reached: intact streams finish, mangled ones fail.
        expect(outcomes.done).toBeGreaterThan(0);
        expect(outcomes.error).toBeGreaterThan(0);
      },
      TIMEOUT,
    );
  }
});
