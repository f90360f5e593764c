/** SPEC §13: a blank or missing channel secret is a start-up error, for the gateway and for `config check`. */
import { expect, test } from "bun:test";
import { writeCredential } from "../../src/config/index.ts";
import { MAIN, runExoclaw } from "../helpers/cli.ts";
import { tempDir } from "../helpers/temp.ts";

const TELEGRAM =
  '[channels.telegram]\nsecrets = { webhook_secret = "telegram_webhook_secret", bot_token = "telegram_bot_token" }\n';

/** `exoclaw gateway` as a child process; killed after 20 s should it start serving instead of refusing. */
async function runGateway(env: Record<string, string>) {
  const proc = Bun.spawn([process.execPath, MAIN, "gateway", "--port", "0"], {
    env: { PATH: process.env.PATH ?? "", ...env },
    stdout: "pipe",
    stderr: "pipe",
    stdin: "ignore",
    timeout: 20_000,
  });
  const [stdout, stderr, code] = await Promise.all([
    new Response(proc.stdout).text(),
    new Response(proc.stderr).text(),
    proc.exited,
  ]);
  return { code, stdout, stderr };
}

test("the gateway refuses to start when a channel's credential is missing, naming the channel, the role, the credential and the fix", async () => {
  using home = tempDir();
  home.file("config.toml", TELEGRAM);
  writeCredential(home.path, "telegram_bot_token", "123:abc");
  const r = await runGateway({ EXOCLAW_HOME: home.path });
  expect(r.code).toBe(1);
  expect(r.stderr).toBe(
    `exoclaw: ${home.path}/config.toml: channel telegram: its webhook_secret secret, credential telegram_webhook_secret (${home.path}/credentials/telegram_webhook_secret.key), is missing: run \`exoclaw secret set telegram_webhook_secret\`\n`,
  );
  expect(r.stdout).not.toContain("gateway listening");
});

test("a blank (whitespace-only) credential is refused too, and every broken one is named at once", async () => {
  using home = tempDir();
  home.file(
    "config.toml",
    TELEGRAM +
      '\n[channels.slack]\nsecrets = { signing_secret = "slack_signing_secret", bot_token = "slack_bot_token" }\n',
  );
  writeCredential(home.path, "telegram_bot_token", "   ");
  writeCredential(home.path, "telegram_webhook_secret", "S3cr3t");
  writeCredential(home.path, "slack_signing_secret", "sign");
  const r = await runGateway({ EXOCLAW_HOME: home.path });
  expect(r.code).toBe(1);
  expect(r.stderr).toContain("channel telegram: its bot_token secret, credential telegram_bot_token");
  expect(r.stderr).toContain("is blank: run `exoclaw secret set telegram_bot_token`");
  expect(r.stderr).toContain("channel slack: its bot_token secret, credential slack_bot_token");
  expect(r.stderr).not.toContain("webhook_secret");
  expect(r.stderr.trimEnd().split("\n")).toEqual([
    `exoclaw: ${home.path}/config.toml: 2 channel secrets are missing or blank:`,
    expect.stringContaining("  channel telegram: "),
    expect.stringContaining("  channel slack: "),
  ]);
});

test("config check reports a missing channel credential the way the gateway does; with every credential set it passes", async () => {
  using home = tempDir();
  home.file("config.toml", TELEGRAM);
  writeCredential(home.path, "telegram_bot_token", "123:abc");
  const env = { EXOCLAW_HOME: home.path };
  const bad = await runExoclaw(["config", "check"], env);
  expect(bad.code).toBe(1);
  expect(bad.stderr).toContain("channel telegram: its webhook_secret secret, credential telegram_webhook_secret");
  expect(bad.stderr).toContain("run `exoclaw secret set telegram_webhook_secret`");
  writeCredential(home.path, "telegram_webhook_secret", "S3cr3t_token-1");
  const ok = await runExoclaw(["config", "check"], env);
  expect(ok.code).toBe(0);
  expect(ok.stdout).not.toContain("S3cr3t_token-1");
  expect(ok.stdout).not.toContain("123:abc");
});
