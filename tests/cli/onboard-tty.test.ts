/**
 * Interactive `exoclaw onboard` at a real terminal (tmux gives the CLI a pty): a key the provider
 * refuses is asked again, and the one it accepts is stored (issue 9).
 */
import { expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { MAIN } from "../helpers/cli.ts";
import { startFakeUpstream } from "../helpers/fake-upstream.ts";
import { tempDir } from "../helpers/temp.ts";

const tmux = (...args: string[]) => Bun.spawnSync(["tmux", ...args], { stdout: "pipe", stderr: "pipe" });
const screen = (s: string) => tmux("capture-pane", "-t", s, "-p", "-S", "-200").stdout.toString();

async function until(what: string, cond: () => boolean, shown: () => string): Promise<void> {
  for (let i = 0; i < 1000; i++) {
    if (cond()) return;
    await Bun.sleep(20);
  }
  throw new Error(`timed out waiting for ${what}; the screen:\n${shown()}`);
}

test("a refused key is asked again; the accepted one is stored", async () => {
  using home = tempDir();
  await using server = startFakeUpstream((req) =>
    req.headers.authorization === "Bearer sk-good-2"
      ? { body: '{"object":"list","data":[{"id":"m1","object":"model"}]}' }
      : { status: 401, body: '{"error":{"message":"Incorrect API key provided","code":"invalid_api_key"}}' },
  );
  const session = `exoclaw-onboard-${process.pid}`;
  const cmd = `EXOCLAW_HOME='${home.path}' '${process.execPath}' '${MAIN}' onboard --provider openai --model m1 --base-url '${server.url}/v1'; echo "exit=$?"; sleep 30`;
  expect(tmux("new-session", "-d", "-s", session, "-x", "160", "-y", "40", cmd).exitCode).toBe(0);
  const shown = () => screen(session);
  try {
    await until("the key prompt", () => shown().includes("openai API key (stored in"), shown);
    tmux("send-keys", "-t", session, "-l", "sk-bad-1");
    tmux("send-keys", "-t", session, "Enter");
    await until("the refusal and the choice", () => shown().includes("openai refused this key. What now?"), shown);
    expect(shown()).toContain(`openai refused the key (401 from ${server.url}/v1/models)`);
    tmux("send-keys", "-t", session, "Enter"); // "Enter the key again" is the first choice
    await until(
      "the key asked again",
      () => /openai API key\s*$/m.test(shown()) || shown().split("openai API key").length > 2,
      shown,
    );
    tmux("send-keys", "-t", session, "-l", "sk-good-2");
    tmux("send-keys", "-t", session, "Enter");
    await until("the command to finish", () => shown().includes("exit="), shown);
    const final = shown();
    expect(final).toContain("exit=0");
    expect(final).toContain("checked the key: openai accepted it");
    expect(final).not.toContain("sk-bad-1");
    expect(final).not.toContain("sk-good-2");
    expect(readFileSync(join(home.path, "credentials/agent-main.key"), "utf8").trim()).toBe("sk-good-2");
    expect(server.requests.map((r) => `${r.method} ${r.path}`)).toEqual(["GET /v1/models", "GET /v1/models"]);
  } finally {
    tmux("kill-session", "-t", session);
  }
}, 60_000);
