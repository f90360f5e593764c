import { afterEach, beforeEach, describe, expect, spyOn, test } from "bun:test";
import type { StreamFn } from "../../src/agent/loop.ts";
import { runCli } from "../../src/cli/_run.ts";
import { root } from "../../src/cli/index.ts";
import { startTestGateway } from "../helpers/gateway.ts";

const stream: StreamFn = async function* (req) {
  const last = req.messages.at(-1)!;
  if (last.role === "user" && (last.parts[0] as { text: string }).text.includes("tool")) {
    yield { type: "tool_call", id: "t1", name: "missing_tool", input: { q: 1 } };
    yield { type: "done", stop_reason: "tool_use" };
    return;
  }
  yield { type: "text", text: "Hello" };
  yield { type: "text", text: " there" };
  yield { type: "done", stop_reason: "end_turn" };
};

let out: string[];
let err: string[];
let spies: ReturnType<typeof spyOn>[];
const io = { out: (t: string) => void out.push(t + "\n"), err: (t: string) => void err.push(t), debug: false };

beforeEach(() => {
  out = [];
  err = [];
  spies = [
    spyOn(process.stdout, "write").mockImplementation(((c: string) => (out.push(String(c)), true)) as never),
    spyOn(process.stderr, "write").mockImplementation(((c: string) => (err.push(String(c)), true)) as never),
  ];
});
afterEach(() => spies.forEach((s) => s.mockRestore()));

describe("exoclaw chat MESSAGE", () => {
  test("streams the reply and tool events to the terminal", async () => {
    await using gw = await startTestGateway({ streamFor: () => stream });
    process.env.EXOCLAW_HOME = gw.home;
    expect(await runCli(root, ["chat", "hi", "--port", String(gw.port)], io)).toBe(0);
    expect(out.join("")).toBe("Hello there\n");
    out = [];
    expect(await runCli(root, ["chat", "use a tool", "--port", String(gw.port), "--peer", "p2"], io)).toBe(0);
    expect(out.join("")).toBe('[tool missing_tool {"q":1}]\n[tool error: unknown tool: missing_tool]\nHello there\n');
    expect(await gw.store.getSession("main:ws:local:p2")).not.toBeNull();
  });

  test("no gateway: one clear line, exit 1", async () => {
    expect(await runCli(root, ["chat", "hi", "--port", "1"], io)).toBe(1);
    expect(err.at(-1)).toBe("exoclaw: no gateway is answering at ws://127.0.0.1:1/ws (is `exoclaw gateway` running?)");
  });
});

describe("exoclaw chat (interactive)", () => {
  test("reads lines from stdin, one turn each, until end of input", async () => {
    await using gw = await startTestGateway({ streamFor: () => stream });
    const proc = Bun.spawn([process.execPath, `${import.meta.dir}/../../src/main.ts`, "chat", "--port", String(gw.port), "--peer", "inter"], {
      env: { EXOCLAW_HOME: gw.home, PATH: process.env.PATH ?? "" },
      stdin: new TextEncoder().encode("first\n\nsecond\n"),
      stdout: "pipe",
      stderr: "pipe",
    });
    const [stdout, code] = await Promise.all([new Response(proc.stdout).text(), proc.exited]);
    expect(code).toBe(0);
    expect(stdout).toBe("Hello there\nHello there\n");
    expect((await gw.store.getSession("main:ws:local:inter"))?.message_count).toBe(4);
  });
});
