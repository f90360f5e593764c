/**
 * Fuzzing the OpenAI-compatible endpoint, POST /v1/chat/completions (issue 15), over a real gateway
 * on loopback: arbitrary bytes, any JSON, and request-shaped bodies with wrong types planted in every
 * field (model, messages, roles, content parts, stream, stream_options), odd headers (content-type,
 * x-exoclaw-session) and a missing or wrong token. Properties: without the token 401 and the model is
 * never called; with it, exactly the answer an independent reading of the body predicts — 200 with
 * the echo of the last user message (plain JSON, or SSE ending in `[DONE]`), or a 4xx in OpenAI's
 * error shape; never a 5xx, never an internal failure in the log, no unhandled rejection; `ping` and
 * `/health` answer afterwards and the heap is back near its baseline.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import fc from "fast-check";
import type { StreamFn } from "../../src/agent/loop.ts";
import { startTestGateway, type TestGateway } from "../helpers/gateway.ts";
import { openSocket } from "../helpers/ws.ts";
import { heapBack, heapSnapshot, params, TIMEOUT, warmUp } from "./_fuzz.ts";

type Msg = Record<string, any>;
const TOKEN = "fuzz-compat-token-0123456";
const MAX_PAYLOAD = 64 * 1024;

let calls = 0;
const echo: StreamFn = async function* (req) {
  calls++;
  const last = req.messages.at(-1)?.parts[0] as { text?: string } | undefined;
  yield { type: "text", text: `echo: ${String(last?.text ?? "").slice(0, 20)}` };
  yield { type: "usage", input_tokens: 3, output_tokens: 2 };
  yield { type: "done", stop_reason: "end_turn" };
};

const unhandled: unknown[] = [];
const onUnhandled = (e: unknown) => void unhandled.push(e);
let gw: TestGateway;
beforeAll(async () => {
  process.on("unhandledRejection", onUnhandled);
  gw = await startTestGateway({
    token: TOKEN,
    toml: `[gateway]\nopenai_compat = true\nmax_payload_bytes = ${MAX_PAYLOAD}\n`,
    streamFor: () => echo,
    gateway: { limiter: { maxFailures: 1_000_000, maxGlobalFailures: 1_000_000 } },
  });
});
afterAll(async () => {
  process.off("unhandledRejection", onUnhandled);
  await gw?.[Symbol.asyncDispose]();
});

// --- arbitraries -------------------------------------------------------------------------------

const junk = fc.oneof(
  fc.string({ maxLength: 20 }),
  fc.integer(),
  fc.double(),
  fc.boolean(),
  fc.constant(null),
  fc.array(fc.jsonValue({ maxDepth: 2 }), { maxLength: 3 }),
  fc.dictionary(fc.string({ maxLength: 5 }), fc.jsonValue({ maxDepth: 1 }), { maxKeys: 3 }),
);
/** A field that is mostly right and sometimes anything. */
const mostly = <T>(good: fc.Arbitrary<T>) => fc.oneof({ weight: 4, arbitrary: good }, { weight: 1, arbitrary: junk });
/** A key that is usually present, sometimes absent (undefined drops it from the JSON). */
const maybe = <T>(a: fc.Arbitrary<T>) => fc.option(a, { nil: undefined, freq: 4 });

const text = fc.oneof(fc.string({ maxLength: 40 }), fc.string({ unit: "binary", maxLength: 20 }), fc.constant(""));
const roles = fc.constantFrom("user", "user", "user", "assistant", "system", "developer", "tool", "");

/** A request OpenAI's API would take; with `wrong`, any field may be of a wrong type. */
function request(wrong: boolean) {
  const f = <T>(good: fc.Arbitrary<T>) => (wrong ? mostly(good) : good);
  const part = fc.record(
    { type: f(fc.constantFrom("text", "text", "image_url", "input_audio")), text: maybe(f(text)) },
    { requiredKeys: ["type"] },
  );
  const content = fc.oneof(text, text, fc.constant(null), fc.array(f(part), { maxLength: 4 }));
  const message = fc.record(
    { role: f(roles), content: maybe(f(content)), name: maybe(junk) },
    { requiredKeys: ["role"] },
  );
  return fc.record(
    {
      model: f(fc.constantFrom("exoclaw:main", "exoclaw:main", "exoclaw:main", "exoclaw:nobody", "gpt-4o", "exoclaw:")),
      messages: f(fc.array(f(message), { minLength: wrong ? 0 : 1, maxLength: 6 })),
      stream: maybe(f(fc.boolean())),
      stream_options: maybe(f(fc.record({ include_usage: maybe(f(fc.boolean())) }, { requiredKeys: [] }))),
      temperature: maybe(junk),
      tools: maybe(junk),
    },
    { requiredKeys: wrong ? [] : ["model", "messages"] },
  );
}
const requestShaped = request(true);

interface Case {
  body: string | Uint8Array;
  auth: "right" | "none" | "wrong";
  contentType: string | undefined;
  session: string | undefined;
}
const body = fc.oneof(
  { weight: 5, arbitrary: request(false).map((r) => JSON.stringify(r)) },
  { weight: 5, arbitrary: requestShaped.map((r) => JSON.stringify(r)) },
  { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 4 }).map((j) => JSON.stringify(j)) },
  { weight: 1, arbitrary: fc.string({ maxLength: 200 }) },
  { weight: 1, arbitrary: fc.uint8Array({ maxLength: 200 }) },
  {
    weight: 1,
    arbitrary: requestShaped.map((r) => {
      const s = JSON.stringify(r);
      return s.slice(0, Math.floor(s.length / 2));
    }),
  },
  // Bodies around and over max_payload_bytes.
  {
    weight: 1,
    arbitrary: fc
      .integer({ min: MAX_PAYLOAD - 200, max: MAX_PAYLOAD * 2 })
      .map((n) => JSON.stringify({ model: "exoclaw:main", messages: [{ role: "user", content: "x".repeat(n) }] })),
  },
  // Deep nesting inside a message.
  {
    weight: 1,
    arbitrary: fc
      .integer({ min: 100, max: 20_000 })
      .map((d) => `{"model":"exoclaw:main","messages":[{"role":"user","content":${"[".repeat(d)}${"]".repeat(d)}}]}`),
  },
);
const anyCase: fc.Arbitrary<Case> = fc.record({
  body,
  auth: fc.constantFrom<Case["auth"]>("right", "right", "right", "right", "right", "right", "none", "wrong"),
  contentType: fc.option(fc.constantFrom("application/json", "text/plain", "application/x-www-form-urlencoded", ""), {
    nil: undefined,
  }),
  session: fc.option(
    fc.stringMatching(/^[\x21-\x7e][\x20-\x7e]{0,60}[\x21-\x7e]$/).filter((s) => !s.includes("\\")),
    { nil: undefined, freq: 3 },
  ),
});

// --- the oracle: what the body asks for, read independently of the gateway's schema ------------

type Expect =
  | { status: 401 }
  | { status: 413 }
  | { status: 400 | 404; kind: string }
  | { status: 200; stream: boolean; usage: boolean; reply: string };

const isObj = (x: unknown): x is Msg => typeof x === "object" && x !== null && !Array.isArray(x);

function textOf(c: unknown): string {
  if (c == null) return "";
  if (typeof c === "string") return c;
  return (c as Msg[]).map((p) => (p.type === "text" ? (p.text ?? "") : "")).join("");
}
const contentOk = (c: unknown) =>
  c === undefined ||
  c === null ||
  typeof c === "string" ||
  (Array.isArray(c) &&
    c.every((p) => isObj(p) && typeof p.type === "string" && (p.text === undefined || typeof p.text === "string")));

const bytesOf = (k: Case) => (typeof k.body === "string" ? Buffer.byteLength(k.body) : k.body.byteLength);

function expected(k: Case): Expect {
  // The size is checked for every route before anything else (a 413 tells an outsider nothing).
  if (bytesOf(k) > MAX_PAYLOAD) return { status: 413 };
  if (k.auth !== "right") return { status: 401 };
  let raw: unknown;
  try {
    raw = JSON.parse(typeof k.body === "string" ? k.body : new TextDecoder("utf-8", { fatal: true }).decode(k.body));
  } catch {
    return { status: 400, kind: "json" };
  }
  const bad = { status: 400 as const, kind: "shape" };
  if (!isObj(raw) || typeof raw.model !== "string" || !Array.isArray(raw.messages) || raw.messages.length === 0)
    return bad;
  if (!raw.messages.every((m) => isObj(m) && typeof m.role === "string" && contentOk(m.content))) return bad;
  if (raw.stream !== undefined && typeof raw.stream !== "boolean") return bad;
  const so = raw.stream_options;
  // An array counts as an object here (valibot's looseObject): `stream_options: []` asks for nothing.
  const soOk =
    typeof so === "object" && so !== null && (so.include_usage === undefined || typeof so.include_usage === "boolean");
  if (so !== undefined && !soOk) return bad;
  if (raw.model !== "exoclaw:main") return { status: 404, kind: "model" };
  const convo = (raw.messages as Msg[]).filter((m) => m.role === "user" || m.role === "assistant");
  const last = convo.at(-1);
  if (!last || last.role !== "user") return { status: 400, kind: "last" };
  return {
    status: 200,
    stream: raw.stream === true,
    usage: so?.include_usage === true,
    reply: `echo: ${textOf(last.content).slice(0, 20)}`,
  };
}

async function send(k: Case): Promise<Response> {
  const headers: Record<string, string> = {};
  if (k.auth === "right") headers.authorization = `Bearer ${TOKEN}`;
  if (k.auth === "wrong") headers.authorization = "Bearer not-the-token";
  if (k.contentType !== undefined) headers["content-type"] = k.contentType;
  if (k.session !== undefined) headers["x-exoclaw-session"] = k.session;
  return fetch(`${gw.url}/v1/chat/completions`, { method: "POST", headers, body: k.body });
}

async function check(k: Case): Promise<void> {
  const exp = expected(k);
  const before = calls;
  const res = await send(k);
  if (res.status >= 500) throw new Error(`${res.status}: ${await res.text()}`);
  expect(res.status).toBe(exp.status);
  // Past twice the limit Bun itself stops reading and answers a bare 413 (server.ts says why).
  if (exp.status === 413 && bytesOf(k) > 2 * MAX_PAYLOAD) return;
  if (exp.status !== 200) {
    const b = (await res.json()) as Msg;
    // OpenAI's error shape, whatever went wrong (its SDKs read error.message and error.type).
    expect(typeof b.error?.message).toBe("string");
    expect(typeof b.error?.type).toBe("string");
    expect(b.error.message).not.toMatch(/\n\s+at |\/src\//);
    expect(calls).toBe(before); // refused before any model call
    return;
  }
  if (!exp.stream) {
    expect(calls).toBe(before + 1);
    const b = (await res.json()) as Msg;
    expect(b.object).toBe("chat.completion");
    expect(b.choices[0].message.content).toBe(exp.reply);
    expect(b.usage).toEqual({ prompt_tokens: 3, completion_tokens: 2, total_tokens: 5 });
    return;
  }
  expect(res.headers.get("content-type")).toStartWith("text/event-stream");
  const events = (await res.text())
    .split("\n")
    .filter((l) => l.startsWith("data: "))
    .map((l) => l.slice(6));
  expect(events.at(-1)).toBe("[DONE]");
  const chunks = events.slice(0, -1).map((e) => JSON.parse(e) as Msg);
  expect(chunks.map((c) => c.choices[0]?.delta?.content ?? "").join("")).toBe(exp.reply);
  expect(chunks.some((c) => c.usage !== undefined)).toBe(exp.usage);
  expect(calls).toBe(before + 1);
}

const internalErrors = () => gw.logs.filter((l) => /"level":"error"/.test(l));

async function stillServing(): Promise<void> {
  await using s = await openSocket(gw.wsUrl, { headers: { authorization: `Bearer ${TOKEN}` } });
  expect((await s.call("ping", undefined, "after")).result).toBe("pong");
  expect((await fetch(`${gw.url}/health`)).status).toBe(200);
}

describe("fuzz: POST /v1/chat/completions", () => {
  test(
    "every body and header mix gets the predicted answer, never a 5xx; the model runs only for a valid, authorised request",
    async () => {
      // Warm-up, then the baseline: the heap after the fuzz must be back near it.
      await fc.assert(fc.asyncProperty(anyCase, check), warmUp(60));
      gw.logs.length = 0;
      const baseline = heapSnapshot();
      // One round of the fuzz: run here, and again by heapBack when the heap is over its limit.
      const round = async () => {
        await fc.assert(fc.asyncProperty(anyCase, check), params(300));
      };
      await round();
      expect(internalErrors()).toEqual([]);
      expect(unhandled).toEqual([]);
      await stillServing();
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
});
