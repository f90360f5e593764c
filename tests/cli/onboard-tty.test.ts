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
import { openTerminal } from "../helpers/tmux.ts";

test("a refused key is asked again; the accepted one is stored", async () => {
  using home = tempDir();
  await using server = startFakeUpstream((req) =>
    req.headers.authorization === "Bearer sk-good-2"
      ? { body: '{"object":"list","data":[{"id":"m1","object":"model"}]}' }
      : { status: 401, body: '{"error":{"message":"Incorrect API key provided","code":"invalid_api_key"}}' },
  );
  const cmd = `EXOCLAW_HOME='${home.path}' '${process.execPath}' '${MAIN}' onboard --provider openai --model m1 --base-url '${server.url}/v1'`;
  using term = openTerminal("onboard", cmd, { width: 160, height: 40, history: true });
  await term.waitFor("the key prompt", (s) => s.includes("openai API key (stored in"));
  term.type("sk-bad-1");
  term.press("Enter");
  const refused = await term.waitFor("the refusal and the choice", (s) =>
    s.includes("openai refused this key. What now?"),
  );
  expect(refused).toContain(`openai refused the key (401 from ${server.url}/v1/models)`);
  term.press("Enter"); // "Enter the key again" is the first choice
  await term.waitFor(
    "the key asked again",
    (s) => /openai API key\s*$/m.test(s) || s.split("openai API key").length > 2,
  );
  term.type("sk-good-2");
  term.press("Enter");
  const final = await term.finished();
  expect(final).toContain("exit=0");
  expect(final).toContain("checked the key: openai accepted it");
  expect(final).not.toContain("sk-bad-1");
  expect(final).not.toContain("sk-good-2");
  expect(readFileSync(join(home.path, "credentials/agent-main.key"), "utf8").trim()).toBe("sk-good-2");
  expect(server.requests.map((r) => `${r.method} ${r.path}`)).toEqual(["GET /v1/models", "GET /v1/models"]);
}, 60_000);
