/**
 * Fault injection (issue 15): the plugin-host child SIGKILLed in the middle of a tool call, over a
 * real gateway (tests/sandbox/child-killed.test.ts covers the host alone). A turn calls the real
 * .wasm `spin` tool (tests/fixtures/plugins/hostile, a 20 s timeout); its child is killed while it
 * spins. What holds: the turn finishes on the death (not at the timeout) and the model is told the plugin
 * died, naming it; the turn is stored whole; the gateway keeps answering `ping` and `/health`, and
 * the same plugin answers the next turn's call from a fresh child.
 */
import { expect, test } from "bun:test";
import { readdirSync, readFileSync } from "node:fs";
import type { StreamFn } from "../../src/agent/loop.ts";
import { eventually } from "../fuzz/_fuzz.ts";
import { startTestGateway } from "../helpers/gateway.ts";
import { fixturePath, readWasm } from "../helpers/plugins.ts";
import { openSocket } from "../helpers/ws.ts";

type Msg = Record<string, any>;
const pin = async (path: string) => new Bun.CryptoHasher("sha256").update(await readWasm(path)).digest("hex");

/** The model: "spin" / "count" call that tool once, then it reports what the tool answered. */
const stream: StreamFn = async function* (req) {
  const last = req.messages.at(-1)!;
  if (last.role === "tool") {
    const r = last.parts[0] as { content: string; is_error?: boolean };
    yield { type: "text", text: `${r.is_error ? "tool failed" : "tool said"}: ${r.content}` };
    return yield { type: "done", stop_reason: "end_turn" };
  }
  const text = (last.parts[0] as { text: string }).text;
  yield { type: "tool_call", id: "t1", name: text, input: {} };
  yield { type: "done", stop_reason: "tool_use" };
};

/** Plugin-host children of this process that are running (spinning) with some CPU time used. */
function spinningHosts(): number[] {
  const pids = new Set<number>();
  for (const t of readdirSync(`/proc/${process.pid}/task`)) {
    try {
      for (const c of readFileSync(`/proc/${process.pid}/task/${t}/children`, "utf8").trim().split(/\s+/))
        if (c) pids.add(Number(c));
    } catch {
      // a thread ended while listing
    }
  }
  return [...pids].filter((p) => {
    try {
      if (!readFileSync(`/proc/${p}/cmdline`, "utf8").includes("__plugin-host")) return false;
      const stat = readFileSync(`/proc/${p}/stat`, "utf8").split(") ")[1]!.split(" ");
      return stat[0] === "R" && Number(stat[11]) > 5;
    } catch {
      return false;
    }
  });
}

test("the plugin child SIGKILLed mid-call in a turn: the model is told at once, the turn is whole, the plugin serves the next turn", async () => {
  const toml = `[[plugins]]\nname = "hostile"\npath = "${fixturePath("hostile")}"\nsha256 = "${await pin(fixturePath("hostile"))}"\ntimeout_ms = 20000\n`;
  await using gw = await startTestGateway({ toml, streamFor: () => stream });
  await using ws = await openSocket(gw.wsUrl);
  const spun = ws.call("chat.send", { content: "spin", peer: "p" }, 1) as Promise<Msg>;
  let victim: number | undefined;
  expect(await eventually(() => (victim = spinningHosts()[0]) !== undefined, 10_000)).toBe(true);
  process.kill(victim!, "SIGKILL");
  const r = (await spun).result as { text: string; stop_reason: string };
  expect(r.stop_reason).toBe("end_turn");
  // Named as the death it was, not as the 20 s timeout: noticed, not waited out.
  expect(r.text).toBe("tool failed: plugin hostile: plugin host process exited (SIGKILL) during the call");
  const h = await gw.store.history("main:ws:local:p", { limit: 10 });
  expect(h.map((m) => m.role)).toEqual(["user", "assistant", "tool", "assistant"]);
  expect((await ws.call("ping", undefined, 2)).result).toBe("pong");
  expect((await fetch(`${gw.url}/health`)).status).toBe(200);
  const next = (await ws.call("chat.send", { content: "count", peer: "p" }, 3)) as Msg;
  expect(next.result.text).toMatch(/^tool said: \d+$/);
}, 60_000);
