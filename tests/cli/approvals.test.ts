/**
 * `exoclaw approvals list | allow ID | deny ID [--remember]` against a real gateway with a turn
 * waiting on an `approval = "always"` plugin tool (builtin echo): what the CLI answers is what the turn
 * does; without a gateway it says there is nothing to answer.
 */
import { describe, expect, test } from "bun:test";
import type { StreamFn } from "../../src/agent/loop.ts";
import { runExoclaw } from "../helpers/cli.ts";
import { startTestGateway } from "../helpers/gateway.ts";
import { openSocket } from "../helpers/ws.ts";

type Msg = Record<string, any>;

/** Calls echo once, then repeats what it said. */
const model: StreamFn = async function* (req) {
  const last = req.messages.at(-1)!;
  if (last.role === "tool") {
    yield { type: "text", text: `echo said: ${(last.parts[0] as { content: string }).content}` };
    yield { type: "done", stop_reason: "end_turn" };
    return;
  }
  yield { type: "tool_call", id: "tu1", name: "echo", input: { text: "secret-free words" } };
  yield { type: "done", stop_reason: "tool_use" };
};

const toml = `[[plugins]]\nname = "echo"\npath = "builtin:echo"\napproval = "always"\n`;

async function waitingTurn(peer: string) {
  const gw = await startTestGateway({ toml, token: "cli-approvals-token", streamFor: () => model });
  const deadline = Date.now() + 15_000;
  while (gw.plugins.list().every((p) => p.state !== "loaded") && Date.now() < deadline) await Bun.sleep(20);
  const ws = await openSocket(gw.wsUrl, { headers: { authorization: "Bearer cli-approvals-token" } });
  const turn = ws.call("chat.send", { content: "say it", peer }, "t1");
  const ev = (await ws.next((r) => (r.value as Msg).params?.event === "approval", 10_000)).value as Msg;
  const env = { EXOCLAW_HOME: gw.home, EXOCLAW_TOKEN: "cli-approvals-token" };
  const url = ["--url", `ws://127.0.0.1:${gw.port}/ws`];
  return {
    gw,
    ws,
    turn,
    id: ev.params.data.id as string,
    run: (args: string[]) => runExoclaw([...args, ...url], env),
    async [Symbol.asyncDispose]() {
      await ws[Symbol.asyncDispose]();
      await gw[Symbol.asyncDispose]();
    },
  };
}

describe("exoclaw approvals", () => {
  test("list shows the waiting call; allow lets it run", async () => {
    await using s = await waitingTurn("a");
    const listed = await s.run(["approvals", "list"]);
    expect(listed.code).toBe(0);
    expect(listed.stdout).toContain("WAITING");
    expect(listed.stdout).toContain(`${s.id}  echo  agent main, session main:ws:local:a`);
    expect(listed.stdout).toContain("why: always");
    expect(listed.stdout).toContain('input: {"text":"secret-free words"}');
    const allowed = await s.run(["approvals", "allow", s.id]);
    expect(allowed.code).toBe(0);
    expect(allowed.stdout.trim()).toBe(`allowed echo (${s.id})`);
    expect(((await s.turn) as Msg).result.text).toBe("echo said: secret-free words");
    const stored = await s.run(["approvals", "list", "--state", "allowed", "--json"]);
    expect(JSON.parse(stored.stdout).approvals[0]).toMatchObject({
      id: s.id,
      state: "allowed",
      decided_by: "operator",
    });
    expect((await s.run(["approvals", "list"])).stdout.trim()).toBe("no tool call is waiting for approval");
  });

  test("deny --remember refuses the call and the next one without asking; a second answer fails with why", async () => {
    await using s = await waitingTurn("b");
    const denied = await s.run(["approvals", "deny", s.id, "--remember"]);
    expect(denied.code).toBe(0);
    expect(denied.stdout).toContain(`denied echo (${s.id}); remembered: echo is denied from now on for this agent`);
    expect(((await s.turn) as Msg).result.text).toContain("denied by the operator");
    const again = await s.run(["approvals", "allow", s.id]);
    expect(again.code).toBe(1);
    expect(again.stderr).toContain("is not waiting any more: it was denied (operator)");
    const next = (await s.ws.call("chat.send", { content: "say it again", peer: "b" }, "t2")) as Msg;
    expect(next.result.text).toContain("denied by the operator");
    expect((await s.run(["approvals", "list", "--state", "sometimes"])).stderr).toContain(
      "--state must be one of pending, allowed, denied, timeout",
    );
    // The remembered decision is listed, and once forgotten the tool is asked again.
    expect((await s.run(["approvals", "rules"])).stdout).toMatch(/^ {2}main {2}echo {2}denied since \d{4}-/m);
    expect((await s.run(["approvals", "forget", "main", "echo"])).stdout.trim()).toBe(
      "forgot the decision for echo of agent main: it is asked again",
    );
    const missing = await s.run(["approvals", "forget", "main", "echo"]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain("no remembered decision for echo of agent main");
    const third = s.ws.call("chat.send", { content: "and again", peer: "b" }, "t3");
    const asked = (
      (
        await s.ws.next(
          (r) => (r.value as Msg).params?.event === "approval" && (r.value as Msg).params.id === "t3",
          10_000,
        )
      ).value as Msg
    ).params.data;
    await s.run(["approvals", "allow", asked.id]);
    expect(((await third) as Msg).result.text).toBe("echo said: secret-free words");
  });

  test("without a gateway: a clear error, exit 1", async () => {
    const r = await runExoclaw(["approvals", "list", "--url", "ws://127.0.0.1:9/ws"], {
      EXOCLAW_HOME: "/tmp/exoclaw-no-such-home",
    });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("tool calls wait for approval inside a running gateway");
  });
});
