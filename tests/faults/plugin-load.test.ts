/**
 * Fault injection (issue 15): a plugin that starts timing out under load. Many turns at once, over
 * a real gateway, some calling a real .wasm tool that never returns (tests/fixtures/plugins/hostile
 * `spin`), some calling another plugin (echo), some calling none. The stuck plugin's calls fail with
 * its timeout and the model is told so; the other plugin's calls and the plain turns all finish
 * with their own answers; afterwards both plugins still serve.
 */
import { expect, test } from "bun:test";
import type { StreamFn } from "../../src/agent/loop.ts";
import { startTestGateway } from "../helpers/gateway.ts";
import { fixturePath, pluginPath, readWasm } from "../helpers/plugins.ts";
import { openSocket } from "../helpers/ws.ts";

type Msg = Record<string, any>;
const pin = async (path: string) => new Bun.CryptoHasher("sha256").update(await readWasm(path)).digest("hex");

/** The model: "spin" / "echo <text>" call that tool once, anything else is answered at once; then it reports the tool's answer. */
const stream: StreamFn = async function* (req) {
  const last = req.messages.at(-1)!;
  if (last.role === "tool") {
    const r = last.parts[0] as { content: string; is_error?: boolean };
    yield { type: "text", text: `${r.is_error ? "tool failed" : "tool said"}: ${r.content}` };
    return yield { type: "done", stop_reason: "end_turn" };
  }
  const text = (last.parts[0] as { text: string }).text;
  if (text === "spin") {
    yield { type: "tool_call", id: "s1", name: "spin", input: {} };
    return yield { type: "done", stop_reason: "tool_use" };
  }
  if (text.startsWith("echo ")) {
    yield { type: "tool_call", id: "e1", name: "echo", input: { text: text.slice(5) } };
    return yield { type: "done", stop_reason: "tool_use" };
  }
  yield { type: "text", text: `plain: ${text}` };
  yield { type: "done", stop_reason: "end_turn" };
};

test("under load, a plugin whose calls hang fails each with its timeout; the other plugin and plain turns keep going", async () => {
  const toml =
    `[[plugins]]\nname = "hostile"\npath = "${fixturePath("hostile")}"\nsha256 = "${await pin(fixturePath("hostile"))}"\ntimeout_ms = 500\n\n` +
    `[[plugins]]\nname = "echo"\npath = "${pluginPath("echo")}"\nsha256 = "${await pin(pluginPath("echo"))}"\n`;
  await using gw = await startTestGateway({ toml, streamFor: () => stream });
  expect(gw.plugins.list().map((p) => p.state)).toEqual(["loaded", "loaded"]);
  await using ws = await openSocket(gw.wsUrl);
  const turn = async (content: string, peer: string) =>
    ((await ws.call("chat.send", { content, peer })) as Msg).result as { text: string; stop_reason: string };
  const jobs = [
    ...Array.from({ length: 6 }, (_, i) => turn("spin", `spin${i}`).then((r) => ["spin", r] as const)),
    ...Array.from({ length: 6 }, (_, i) => turn(`echo hello ${i}`, `echo${i}`).then((r) => [`echo ${i}`, r] as const)),
    ...Array.from({ length: 6 }, (_, i) => turn(`hi ${i}`, `plain${i}`).then((r) => [`plain ${i}`, r] as const)),
  ];
  for (const [what, r] of await Promise.all(jobs)) {
    expect(r.stop_reason).toBe("end_turn");
    if (what === "spin") expect(r.text).toBe("tool failed: plugin hostile timed out after 500 ms and was stopped");
    else if (what.startsWith("echo")) expect(r.text).toBe(`tool said: hello ${what.slice(5)}`);
    else expect(r.text).toBe(`plain: hi ${what.slice(6)}`);
  }
  // Both plugins still serve: the stuck one times out again (not wedged), the other answers.
  expect((await turn("spin", "again")).text).toBe("tool failed: plugin hostile timed out after 500 ms and was stopped");
  expect((await turn("echo still here", "again2")).text).toBe("tool said: still here");
  expect((await ws.call("ping")).result).toBe("pong");
}, 60_000);
