/**
 * `exoclaw chat` at a real terminal (tmux gives the CLI a pty): a spinner on stderr while the model
 * has not answered, erased when the text arrives (issue 9). Piped output never gets one: see chat.test.ts.
 */
import { expect, test } from "bun:test";
import type { StreamFn } from "../../src/agent/loop.ts";
import { MAIN } from "../helpers/cli.ts";
import { startTestGateway } from "../helpers/gateway.ts";

const tmux = (...args: string[]) => Bun.spawnSync(["tmux", ...args], { stdout: "pipe", stderr: "pipe" });
const screen = (s: string) => tmux("capture-pane", "-t", s, "-p").stdout.toString();

async function until(what: string, cond: () => boolean, shown: () => string): Promise<void> {
  for (let i = 0; i < 1000; i++) {
    if (cond()) return;
    await Bun.sleep(20);
  }
  throw new Error(`timed out waiting for ${what}; the screen:\n${shown()}`);
}

test("on a terminal, chat shows a spinner until the first text arrives, then erases it", async () => {
  let release = () => {};
  const answer = new Promise<void>((r) => (release = r));
  const stream: StreamFn = async function* () {
    await answer; // the model "thinks" until the test has seen the spinner
    yield { type: "text", text: "The answer is 42." };
    yield { type: "done", stop_reason: "end_turn" };
  };
  await using gw = await startTestGateway({ streamFor: () => stream });
  const session = `exoclaw-chat-${process.pid}`;
  const cmd = `EXOCLAW_HOME='${gw.home}' '${process.execPath}' '${MAIN}' chat 'what is it' --port ${gw.port}; echo "exit=$?"; sleep 30`;
  expect(tmux("new-session", "-d", "-s", session, "-x", "120", "-y", "20", cmd).exitCode).toBe(0);
  try {
    const shown = () => screen(session);
    await until("the spinner", () => /[⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏] thinking…/.test(shown()), shown);
    release();
    await until("the command to finish", () => shown().includes("exit="), shown);
    const final = shown();
    expect(final).toContain("exit=0");
    expect(final.split("\n")[0]).toBe("The answer is 42.");
    expect(final).not.toContain("thinking…");
    expect(final).not.toMatch(/[⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏]/);
  } finally {
    release();
    tmux("kill-session", "-t", session);
  }
}, 60_000);
