/**
 * A real terminal for CLI tests: tmux runs a shell command in a detached session, so the CLI gets a
 * pty (isTTY, raw keys); the test types into it and reads the screen. The command's exit status is
 * printed as `exit=N` when it ends (the pane stays up to be read). Also the check shared by the
 * `exoclaw chat` tests: the spinner shows while the model thinks and is erased when the text comes.
 */
import { expect } from "bun:test";

const tmux = (...args: string[]) => Bun.spawnSync(["tmux", ...args], { stdout: "pipe", stderr: "pipe" });

export interface Terminal extends Disposable {
  /** What the pane shows now (with `history`, the scrollback too). */
  screen(): string;
  /** Types `text` literally. */
  type(text: string): void;
  /** Presses a key by its tmux name ("Enter", "C-c"). */
  press(key: string): void;
  /** Polls the screen until `cond` holds and returns it; the error shows the screen. */
  waitFor(what: string, cond: (screen: string) => boolean): Promise<string>;
  /** Waits for the command to end; the final screen. */
  finished(): Promise<string>;
}

export function openTerminal(
  name: string,
  command: string,
  opts: { width?: number; height?: number; history?: boolean } = {},
): Terminal {
  const session = `exoclaw-${name}-${process.pid}`;
  const started = tmux(
    "new-session",
    "-d",
    "-s",
    session,
    "-x",
    String(opts.width ?? 120),
    "-y",
    String(opts.height ?? 20),
    `${command}; echo "exit=$?"; sleep 30`,
  );
  if (started.exitCode !== 0) throw new Error(`tmux new-session failed: ${started.stderr.toString()}`);
  const screen = () =>
    tmux("capture-pane", "-t", session, "-p", ...(opts.history ? ["-S", "-200"] : [])).stdout.toString();
  const waitFor = async (what: string, cond: (s: string) => boolean) => {
    for (let i = 0; i < 1000; i++) {
      const s = screen();
      if (cond(s)) return s;
      await Bun.sleep(20);
    }
    throw new Error(`timed out waiting for ${what}; the screen:\n${screen()}`);
  };
  return {
    screen,
    type: (text) => void tmux("send-keys", "-t", session, "-l", text),
    press: (key) => void tmux("send-keys", "-t", session, key),
    waitFor,
    finished: () => waitFor("the command to finish", (s) => s.includes("exit=")),
    [Symbol.dispose]() {
      tmux("kill-session", "-t", session);
    },
  };
}

const SPINNER = /[⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏]/;

/**
 * `exoclaw chat` with a held model: the spinner is on screen until `release` lets the model answer
 * `answer`; then the command exits 0 with the answer on the first line and no trace of the spinner.
 */
export async function expectSpinnerUntilAnswer(term: Terminal, release: () => void, answer: string): Promise<void> {
  await term.waitFor("the spinner", (s) => new RegExp(`${SPINNER.source} thinking…`).test(s));
  release();
  const final = await term.finished();
  expect(final).toContain("exit=0");
  expect(final.split("\n")[0]).toBe(answer);
  expect(final).not.toContain("thinking…");
  expect(final).not.toMatch(SPINNER);
}
