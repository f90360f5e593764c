import { afterEach, beforeEach, describe, expect, spyOn, test } from "bun:test";
import type { StreamFn } from "../../src/agent/loop.ts";
import { runCli } from "../../src/cli/_run.ts";
import { root } from "../../src/cli/index.ts";
import { MAIN } from "../helpers/cli.ts";
import { startTestGateway } from "../helpers/gateway.ts";
import { tempDir } from "../helpers/temp.ts";

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
const savedHome = process.env.EXOCLAW_HOME;
afterEach(() => {
  spies.forEach((s) => s.mockRestore());
  // In-process CLI runs read EXOCLAW_HOME: leave it as later test files expect it.
  if (savedHome === undefined) delete process.env.EXOCLAW_HOME;
  else process.env.EXOCLAW_HOME = savedHome;
});

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
    const proc = Bun.spawn(
      [process.execPath, `${import.meta.dir}/../../src/main.ts`, "chat", "--port", String(gw.port), "--peer", "inter"],
      {
        env: { EXOCLAW_HOME: gw.home, PATH: process.env.PATH ?? "" },
        stdin: new TextEncoder().encode("first\n\nsecond\n"),
        stdout: "pipe",
        stderr: "pipe",
      },
    );
    const [stdout, code] = await Promise.all([new Response(proc.stdout).text(), proc.exited]);
    expect(code).toBe(0);
    expect(stdout).toBe("Hello there\nHello there\n");
    expect(await new Response(proc.stderr).text()).toBe(""); // no spinner when stderr is not a terminal
    expect((await gw.store.getSession("main:ws:local:inter"))?.message_count).toBe(4);
  });
});

/** A child process's output, collected as it comes, with a poll for what a user would wait to see. */
function collect(stream: ReadableStream<Uint8Array>): { text: () => string; done: Promise<void> } {
  let text = "";
  const decoder = new TextDecoder();
  const done = stream
    .pipeTo(new WritableStream({ write: (c) => void (text += decoder.decode(c, { stream: true })) }))
    .catch(() => {});
  return { text: () => text, done };
}

async function until(what: string, cond: () => boolean, describe: () => string): Promise<void> {
  const deadline = Date.now() + 20_000;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; so far:\n${describe()}`);
    await Bun.sleep(20);
  }
}

describe("exoclaw chat (interactive) across a gateway restart (issue 9)", () => {
  test("says it is reconnecting, reports the turn the restart cut off, and sends a line typed meanwhile once the gateway is back", async () => {
    let entered = () => {};
    const echo: StreamFn = async function* (req, signal) {
      const text = (req.messages.at(-1)!.parts[0] as { text: string }).text;
      if (text === "slow") {
        entered();
        await new Promise((r) => signal.addEventListener("abort", r, { once: true }));
        return; // aborted: the loop records the turn as cancelled
      }
      yield { type: "text", text: `You said: ${text}` };
      yield { type: "done", stop_reason: "end_turn" };
    };
    using home = tempDir("exoclaw-chat-restart-");
    const first = await startTestGateway({ home: home.path, streamFor: () => echo });
    let firstStopped = false;
    const proc = Bun.spawn([process.execPath, MAIN, "chat", "--port", String(first.port), "--peer", "restart"], {
      env: { EXOCLAW_HOME: home.path, PATH: process.env.PATH ?? "" },
      stdin: "pipe",
      stdout: "pipe",
      stderr: "pipe",
    });
    const stdout = collect(proc.stdout);
    const stderr = collect(proc.stderr);
    const seen = () => `stdout: ${stdout.text()}\nstderr: ${stderr.text()}`;
    const type = (line: string) => {
      proc.stdin.write(line + "\n");
      proc.stdin.flush();
    };
    try {
      type("first");
      await until("the first answer", () => stdout.text().includes("You said: first\n"), seen);
      const inFlight = new Promise<void>((r) => (entered = r));
      type("slow");
      await inFlight;
      await first[Symbol.asyncDispose]();
      firstStopped = true;
      await until("the reconnecting notice", () => stderr.text().includes("gateway gone, reconnecting…\n"), seen);
      await until(
        "the cut-off turn's report",
        () => stderr.text().includes("error: not answered: the gateway went away during this turn"),
        seen,
      );
      type("second");
      await using second = await startTestGateway({ home: home.path, port: first.port, streamFor: () => echo });
      await until(
        "the answer to the line typed while the gateway was gone",
        () => stdout.text().includes("You said: second\n"),
        seen,
      );
      proc.stdin.end();
      expect(await proc.exited).toBe(0);
      await Promise.all([stdout.done, stderr.done]);
      expect(stdout.text()).toBe("You said: first\nYou said: second\n");
      const errLines = stderr.text().trimEnd().split("\n");
      expect(errLines.filter((l) => l === "gateway gone, reconnecting…")).toHaveLength(1);
      expect(errLines).toContain(`reconnected to ws://127.0.0.1:${first.port}/ws`);
      // Piped stderr: no spinner frames, no terminal control codes.
      expect(stderr.text()).not.toMatch(/[⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏\r\x1b]/);
      const texts = (await second.store.history("main:ws:local:restart", { limit: 20 }))
        .flatMap((m) => m.parts)
        .filter((p) => p.type === "text")
        .map((p) => (p as { text: string }).text);
      expect(texts).toContain("second");
    } finally {
      proc.kill();
      if (!firstStopped) await first[Symbol.asyncDispose]();
    }
  }, 60_000);
});
