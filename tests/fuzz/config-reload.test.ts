/**
 * Fuzzing config files at run time (issue 15; tests/fuzz/config.test.ts fuzzes loadConfig alone): a
 * real gateway whose config.toml is rewritten with mutated TOML, arbitrary text and deep nesting,
 * then `config.reload` over the WebSocket, as an operator's edit and SIGHUP would. Properties: the
 * reload succeeds or fails with -32602 naming the file, never -32603 or a dropped socket; after a
 * failed reload the old config stays in force (a turn still runs on the agent it had); nothing is
 * logged as an internal failure, no unhandled rejection; `ping` and `/health` answer throughout, and
 * the heap is back near its baseline. The mutations start from a config without channels, plugins,
 * MCP servers or a bus, so no case makes the gateway reach for a host.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import fc from "fast-check";
import type { StreamFn } from "../../src/agent/loop.ts";
import { startTestGateway, type TestGateway } from "../helpers/gateway.ts";
import { openSocket, type TestSocket } from "../helpers/ws.ts";
import { heapSnapshot, nearBaseline, params, TIMEOUT, warmUp } from "./_fuzz.ts";

type Msg = Record<string, any>;
const BASE = `[gateway]
max_payload_bytes = 1048576
allowed_origins = ["https://a.example"]

[[agents]]
id = "main"
model = "claude-sonnet-4-5"
max_tool_rounds = 4
system_prompt = "be brief"

[[agents]]
id = "helper"
provider = "openai"
model = "gpt-4o"

[[bindings]]
agent = "helper"
channel = "ws"
peer = "h"

[budgets]
daily_tokens = 2000000
monthly_usd = 50

[memory]
episodic_turns = 10
`;

const edits = fc.array(fc.tuple(fc.nat(), fc.nat({ max: 8 }), fc.string({ unit: "binary", maxLength: 6 })), {
  minLength: 1,
  maxLength: 6,
});
const mutated = edits.map((es) => {
  let t = BASE;
  for (const [at, del, ins] of es) {
    const i = at % (t.length + 1);
    t = t.slice(0, i) + ins + t.slice(i + del);
  }
  return t;
});
const anyText = fc.oneof(
  { weight: 6, arbitrary: mutated },
  {
    weight: 1,
    arbitrary: fc.string({ unit: fc.constantFrom(..."[]{}=\"'.,\n#\\ \tabc019+-:_".split("")), maxLength: 120 }),
  },
  { weight: 1, arbitrary: fc.string({ unit: "binary", maxLength: 200 }) },
  { weight: 1, arbitrary: fc.integer({ min: 1, max: 50_000 }).map((d) => `a = ${"[".repeat(d)}${"]".repeat(d)}\n`) },
);

let agents: string[] = [];
const echo: StreamFn = async function* (req) {
  const last = req.messages.at(-1)?.parts[0] as { text?: string } | undefined;
  yield { type: "text", text: `echo: ${String(last?.text ?? "")}` };
  yield { type: "done", stop_reason: "end_turn" };
};
const unhandled: unknown[] = [];
const onUnhandled = (e: unknown) => void unhandled.push(e);
let gw: TestGateway;
let ws: TestSocket;
let file: string;
beforeAll(async () => {
  process.on("unhandledRejection", onUnhandled);
  gw = await startTestGateway({ toml: BASE, streamFor: () => echo });
  file = join(gw.home, "config.toml");
  ws = await openSocket(gw.wsUrl);
  agents = ((await ws.call("agent.list", undefined, "a")) as Msg).result.agents.map((a: Msg) => a.id);
});
afterAll(async () => {
  process.off("unhandledRejection", onUnhandled);
  await ws?.[Symbol.asyncDispose]();
  await gw?.[Symbol.asyncDispose]();
});

let n = 0;
const seen = { ok: 0, refused: 0 };
async function check(text: string): Promise<void> {
  writeFileSync(file, text);
  const id = ++n;
  const r = (await ws.call("config.reload", undefined, id)) as Msg;
  if ("error" in r) {
    seen.refused++;
    expect(r.error.code).toBe(-32602);
    expect(r.error.message).toContain(file);
    expect(r.error.message).not.toMatch(/\n\s+at |\/src\//);
    // The old config is still in force: its agents answer.
    const list = ((await ws.call("agent.list", undefined, `l${id}`)) as Msg).result.agents.map((a: Msg) => a.id);
    expect(list).toEqual(agents);
  } else {
    seen.ok++;
    agents = ((await ws.call("agent.list", undefined, `l${id}`)) as Msg).result.agents.map((a: Msg) => a.id);
  }
  expect((await ws.call("ping", undefined, `p${id}`)).result).toBe("pong");
  ws.received.length = 0;
}

const internalErrors = () => gw.logs.filter((l) => /"level":"error"/.test(l));

describe("fuzz: config.reload", () => {
  test(
    "any config text reloads or is refused with -32602 naming the file; a refused one leaves the old config in force",
    async () => {
      await fc.assert(fc.asyncProperty(anyText, check), warmUp(40));
      gw.logs.length = 0;
      const baseline = heapSnapshot();
      await fc.assert(fc.asyncProperty(anyText, check), params(200));
      // Both sides reached: a fuzzer whose every case is refused would test little.
      expect(seen.ok).toBeGreaterThan(0);
      expect(seen.refused).toBeGreaterThan(0);
      expect(internalErrors()).toEqual([]);
      expect(unhandled).toEqual([]);
      // Back to the base config: it loads, and a turn runs on it.
      writeFileSync(file, BASE);
      expect(((await ws.call("config.reload", undefined, "base")) as Msg).error).toBeUndefined();
      expect(((await ws.call("chat.send", { content: "still here" }, "turn")) as Msg).result.text).toBe(
        "echo: still here",
      );
      expect((await fetch(`${gw.url}/health`)).status).toBe(200);
      ws.received.length = 0;
      gw.logs.length = 0;
      expect(nearBaseline(baseline, heapSnapshot())).toBeNull();
    },
    TIMEOUT,
  );
});
