/**
 * `exoclaw secret set NAME` at a real terminal (tmux gives the CLI a pty): a prompt, and the value
 * never shown on the screen.
 */
import { expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { MAIN } from "../helpers/cli.ts";
import { tempDir } from "../helpers/temp.ts";

const tmux = (...args: string[]) => Bun.spawnSync(["tmux", ...args], { stdout: "pipe", stderr: "pipe" });
const screen = (s: string) => tmux("capture-pane", "-t", s, "-p").stdout.toString();

async function until(what: string, cond: () => boolean): Promise<void> {
  for (let i = 0; i < 500; i++) {
    if (cond()) return;
    await Bun.sleep(20);
  }
  throw new Error(`timed out waiting for ${what}`);
}

test("secret set on a terminal prompts and hides the value; it is stored mode 600", async () => {
  using home = tempDir();
  const session = `exoclaw-secret-${process.pid}`;
  const cmd = `EXOCLAW_HOME='${home.path}' '${process.execPath}' '${MAIN}' secret set tg_token; echo "exit=$?"; sleep 30`;
  expect(tmux("new-session", "-d", "-s", session, "-x", "120", "-y", "20", cmd).exitCode).toBe(0);
  try {
    await until("the prompt", () => screen(session).includes("Value for tg_token (input hidden)"));
    tmux("send-keys", "-t", session, "-l", "supersecret-123");
    tmux("send-keys", "-t", session, "Enter");
    await until("the command to finish", () => screen(session).includes("exit="));
    const shown = screen(session);
    expect(shown).toContain("exit=0");
    expect(shown).toContain("stored tg_token in");
    expect(shown).not.toContain("supersecret-123");
    const key = join(home.path, "credentials/tg_token.key");
    expect(readFileSync(key, "utf8").trim()).toBe("supersecret-123");
  } finally {
    tmux("kill-session", "-t", session);
  }
});
