/**
 * `exoclaw chat` at a real terminal (tmux gives the CLI a pty): a spinner on stderr while the model
 * has not answered, erased when the text arrives (issue 9). Piped output never gets one: see chat.test.ts.
 */
import { test } from "bun:test";
import type { StreamFn } from "../../src/agent/loop.ts";
import { MAIN } from "../helpers/cli.ts";
import { startTestGateway } from "../helpers/gateway.ts";
import { expectSpinnerUntilAnswer, openTerminal } from "../helpers/tmux.ts";

test("on a terminal, chat shows a spinner until the first text arrives, then erases it", async () => {
  let release = () => {};
  const answer = new Promise<void>((r) => (release = r));
  const stream: StreamFn = async function* () {
    await answer; // the model "thinks" until the test has seen the spinner
    yield { type: "text", text: "The answer is 42." };
    yield { type: "done", stop_reason: "end_turn" };
  };
  await using gw = await startTestGateway({ streamFor: () => stream });
  const cmd = `EXOCLAW_HOME='${gw.home}' '${process.execPath}' '${MAIN}' chat 'what is it' --port ${gw.port}`;
  try {
    using term = openTerminal("chat", cmd);
    await expectSpinnerUntilAnswer(term, release, "The answer is 42.");
  } finally {
    release();
  }
}, 60_000);
