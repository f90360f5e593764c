/**
 * Fuzzing exoclaw's own MCP server endpoint, POST /mcp (issue 15), over a real gateway on loopback:
 * JSON-RPC messages of MCP's methods (initialize, tools/list, tools/call) with arguments of any
 * shape, batches, notifications, arbitrary JSON and bytes, odd Accept / Content-Type /
 * MCP-Protocol-Version headers, and a missing or wrong token. Properties: without the token 401 and
 * no turn; with it never a 5xx, every JSON-RPC answer well-formed; the model runs exactly when an
 * `ask_main` call carries a non-empty string `message` (and a valid `session`, if any), and its
 * answer comes back as the tool's text; bad arguments and unknown tools are tool errors, not
 * turns; nothing logged as an internal failure, no unhandled rejection; `ping` and `/health`
 * answer afterwards and the heap is back near its baseline.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import fc from "fast-check";
import type { StreamFn } from "../../src/agent/loop.ts";
import { startTestGateway, type TestGateway } from "../helpers/gateway.ts";
import { openSocket } from "../helpers/ws.ts";
import { heapBack, heapSnapshot, params, TIMEOUT, warmUp } from "./_fuzz.ts";

type Msg = Record<string, any>;
const TOKEN = "fuzz-mcp-token-0123456789";

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
    toml: "[gateway]\nmcp = true\nmax_payload_bytes = 65536\n",
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
const maybe = <T>(a: fc.Arbitrary<T>) => fc.option(a, { nil: undefined, freq: 4 });
const mostly = <T>(good: fc.Arbitrary<T>) => fc.oneof({ weight: 5, arbitrary: good }, { weight: 1, arbitrary: junk });

const args = fc.oneof(
  fc.record(
    {
      message: mostly(
        fc.oneof(fc.string({ maxLength: 30 }), fc.constant(""), fc.string({ unit: "binary", maxLength: 10 })),
      ),
      session: maybe(mostly(fc.oneof(fc.string({ maxLength: 30 }), fc.constant(""), fc.constant("s".repeat(201))))),
      extra: maybe(junk),
    },
    { requiredKeys: [] },
  ),
  junk,
);
// MCP's ids are strings or integers (a fractional id is an invalid message).
const id = fc.oneof(fc.integer({ min: 1, max: 1e6 }), fc.string({ minLength: 1, maxLength: 8 }));
const call = fc.record(
  {
    jsonrpc: mostly(fc.constant("2.0")),
    id: mostly(id),
    method: fc.constant("tools/call"),
    params: mostly(
      fc.record(
        {
          name: mostly(fc.constantFrom("ask_main", "ask_main", "ask_nobody", "ask_", "http_get", "")),
          arguments: maybe(args),
        },
        { requiredKeys: ["name"] },
      ),
    ),
  },
  { requiredKeys: ["jsonrpc", "id", "method", "params"] },
);
const other = fc.record(
  {
    jsonrpc: mostly(fc.constant("2.0")),
    id: maybe(mostly(id)),
    method: mostly(
      fc.constantFrom(
        "initialize",
        "tools/list",
        "ping",
        "resources/list",
        "prompts/get",
        "notifications/initialized",
        "x",
      ),
    ),
    params: maybe(
      mostly(
        fc.record(
          {
            protocolVersion: maybe(mostly(fc.constantFrom("2025-06-18", "2025-03-26", "1999-01-01"))),
            capabilities: maybe(junk),
            clientInfo: maybe(mostly(fc.record({ name: mostly(fc.string()), version: mostly(fc.string()) }))),
            cursor: maybe(junk),
          },
          { requiredKeys: [] },
        ),
      ),
    ),
  },
  { requiredKeys: ["jsonrpc", "method"] },
);
/** A call MCP's client would send: a turn, unless it is refused for a reason the oracle knows. */
const ask = fc.record(
  {
    jsonrpc: fc.constant("2.0"),
    id,
    method: fc.constant("tools/call"),
    params: fc.record(
      {
        name: fc.constant("ask_main"),
        arguments: fc.record(
          {
            message: fc.oneof(fc.string({ minLength: 1, maxLength: 30 }), fc.string({ unit: "binary", maxLength: 10 })),
            session: maybe(fc.string({ minLength: 1, maxLength: 30 })),
          },
          { requiredKeys: ["message"] },
        ),
      },
      { requiredKeys: ["name", "arguments"] },
    ),
  },
  { requiredKeys: ["jsonrpc", "id", "method", "params"] },
);
const message = fc.oneof(
  { weight: 3, arbitrary: ask },
  { weight: 3, arbitrary: call },
  { weight: 2, arbitrary: other },
);

interface Case {
  body: string | Uint8Array;
  auth: "right" | "none" | "wrong";
  accept: string | undefined;
  contentType: string | undefined;
  version: string | undefined;
}
const anyCase: fc.Arbitrary<Case> = fc.record({
  body: fc.oneof(
    { weight: 8, arbitrary: message.map((m) => JSON.stringify(m)) },
    { weight: 2, arbitrary: fc.array(message, { maxLength: 4 }).map((b) => JSON.stringify(b)) },
    { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 3 }).map((j) => JSON.stringify(j)) },
    { weight: 1, arbitrary: fc.string({ maxLength: 100 }) },
    { weight: 1, arbitrary: fc.uint8Array({ maxLength: 100 }) },
    {
      weight: 1,
      arbitrary: fc
        .integer({ min: 100, max: 20_000 })
        .map((d) => `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":${"[".repeat(d)}${"]".repeat(d)}}`),
    },
  ),
  auth: fc.constantFrom<Case["auth"]>("right", "right", "right", "right", "right", "none", "wrong"),
  accept: fc.oneof(
    { weight: 6, arbitrary: fc.constant("application/json, text/event-stream") },
    {
      weight: 1,
      arbitrary: fc.option(fc.constantFrom("application/json", "text/event-stream", "*/*", "text/html"), {
        nil: undefined,
      }),
    },
  ),
  contentType: fc.oneof(
    { weight: 6, arbitrary: fc.constant("application/json") },
    {
      weight: 1,
      arbitrary: fc.option(fc.constantFrom("text/plain", "application/json; charset=latin1", ""), { nil: undefined }),
    },
  ),
  version: fc.oneof(
    { weight: 6, arbitrary: fc.constantFrom(undefined, "2025-06-18", "2025-03-26") },
    { weight: 1, arbitrary: fc.constantFrom("1999-01-01", "garbage", "") },
  ),
});

// --- checks ------------------------------------------------------------------------------------

/** The calls in a body that must run a turn: ask_main with a non-empty message and a valid session. */
function turnsOwed(k: Case): { count: number; texts: string[] } {
  let raw: unknown;
  try {
    raw = JSON.parse(typeof k.body === "string" ? k.body : new TextDecoder("utf-8", { fatal: true }).decode(k.body));
  } catch {
    return { count: 0, texts: [] };
  }
  // The stateless transport answers one message per POST; a batch of requests is read too.
  const msgs = Array.isArray(raw) ? raw : [raw];
  const texts: string[] = [];
  for (const m of msgs as Msg[]) {
    if (typeof m !== "object" || m === null || m.jsonrpc !== "2.0" || m.method !== "tools/call") continue;
    if (!(Number.isInteger(m.id) || typeof m.id === "string")) continue;
    const p = m.params;
    if (typeof p !== "object" || p === null || Array.isArray(p) || p.name !== "ask_main") continue;
    const a = p.arguments ?? {};
    if (typeof a !== "object" || a === null || Array.isArray(a)) continue;
    if (typeof a.message !== "string" || a.message === "") continue;
    const s = a.session;
    if (s !== undefined && (typeof s !== "string" || s === "" || s.length > 200)) continue;
    texts.push(`echo: ${a.message.slice(0, 20)}`);
  }
  return { count: texts.length, texts };
}

/** The JSON-RPC messages in an answer: a JSON body, or the `data:` lines of an SSE body. */
function answers(res: Response, body: string): Msg[] {
  if (body === "") return [];
  const type = res.headers.get("content-type") ?? "";
  const values = type.startsWith("text/event-stream")
    ? body
        .split("\n")
        .filter((l) => l.startsWith("data: "))
        .map((l) => JSON.parse(l.slice(6)) as unknown)
    : [JSON.parse(body) as unknown];
  return values.flatMap((v) => (Array.isArray(v) ? v : [v])) as Msg[];
}

function wellFormed(m: Msg): void {
  expect(m.jsonrpc).toBe("2.0");
  expect("result" in m !== "error" in m).toBe(true);
  if ("error" in m) {
    expect(typeof m.error.code).toBe("number");
    expect(typeof m.error.message).toBe("string");
    expect(m.error.message).not.toMatch(/\n\s+at |\/src\//);
  }
}

async function check(k: Case): Promise<void> {
  const owed = turnsOwed(k);
  const before = calls;
  const headers: Record<string, string> = {};
  if (k.auth === "right") headers.authorization = `Bearer ${TOKEN}`;
  if (k.auth === "wrong") headers.authorization = "Bearer not-the-token";
  if (k.accept !== undefined) headers.accept = k.accept;
  if (k.contentType !== undefined) headers["content-type"] = k.contentType;
  if (k.version !== undefined) headers["mcp-protocol-version"] = k.version;
  const res = await fetch(`${gw.url}/mcp`, { method: "POST", headers, body: k.body });
  const body = await res.text();
  if (res.status >= 500) throw new Error(`${res.status}: ${body.slice(0, 500)}`);
  if (k.auth !== "right") {
    expect(res.status).toBe(401);
    expect(calls).toBe(before);
    return;
  }
  const got = answers(res, body);
  for (const m of got) wellFormed(m);
  if (res.status !== 200) {
    expect(calls).toBe(before); // refused as a whole: no turn
    return;
  }
  // Every owed turn ran once, and its answer is the tool's text; nothing else ran a turn.
  expect(calls - before).toBe(owed.count);
  const texts = got.flatMap((m) => (m.result?.isError ? [] : (m.result?.content ?? []))).map((c: Msg) => c.text);
  for (const t of owed.texts) expect(texts).toContain(t);
}

const internalErrors = () => gw.logs.filter((l) => /"level":"error"/.test(l));

describe("fuzz: POST /mcp", () => {
  test(
    "every message mix gets well-formed answers, never a 5xx; a turn runs exactly for a valid ask_main call with the token",
    async () => {
      await fc.assert(fc.asyncProperty(anyCase, check), warmUp(60));
      gw.logs.length = 0;
      const baseline = heapSnapshot();
      // One round of the fuzz: run here, and again by heapBack when the heap is over its limit.
      const round = async () => {
        await fc.assert(fc.asyncProperty(anyCase, check), params(250));
      };
      await round();
      expect(internalErrors()).toEqual([]);
      expect(unhandled).toEqual([]);
      await using s = await openSocket(gw.wsUrl, { headers: { authorization: `Bearer ${TOKEN}` } });
      expect((await s.call("ping", undefined, "after")).result).toBe("pong");
      expect((await fetch(`${gw.url}/health`)).status).toBe(200);
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
