import { expect, test } from "bun:test";
import { statSync } from "node:fs";
import { join } from "node:path";
import { DEFAULT_MODELS, onboardConfig } from "../../src/cli/onboard.ts";
import { loadConfig } from "../../src/config/index.ts";
import { MAIN, runExoclaw } from "../helpers/cli.ts";
import { tempDir } from "../helpers/temp.ts";

async function onboard(args: string[], env: Record<string, string>, stdin = "") {
  const proc = Bun.spawn([process.execPath, MAIN, "onboard", ...args], { env: { PATH: process.env.PATH ?? "", ...env }, stdin: new TextEncoder().encode(stdin), stdout: "pipe", stderr: "pipe" });
  const [stdout, stderr, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  return { stdout, stderr, code };
}

test("onboard for scripts writes a valid config and a mode-600 key file, never the key in the config", async () => {
  using home = tempDir();
  const env = { EXOCLAW_HOME: join(home.path, "state") };
  const r = await onboard(["--provider", "anthropic", "--api-key-stdin", "--yes"], env, "sk-ant-onboard-123\n");
  expect(r.stderr).toBe("");
  expect(r.code).toBe(0);
  expect(r.stdout).toContain(`(agent "main": anthropic ${DEFAULT_MODELS.anthropic})`);
  const config = loadConfig(env);
  expect(config.agents[0]).toMatchObject({ id: "main", provider: "anthropic", model: "claude-sonnet-4-5" });
  const key = join(env.EXOCLAW_HOME, "credentials/anthropic.key");
  expect(await Bun.file(key).text()).toBe("sk-ant-onboard-123\n");
  expect(statSync(key).mode & 0o777).toBe(0o600);
  expect(statSync(env.EXOCLAW_HOME).mode & 0o777).toBe(0o700);
  expect(await Bun.file(join(env.EXOCLAW_HOME, "config.toml")).text()).not.toContain("sk-ant");
  expect((await runExoclaw(["config", "check"], env)).code).toBe(0);
});

test("onboard refuses what it cannot do, with one clear line", async () => {
  using home = tempDir();
  const env = { EXOCLAW_HOME: home.path };
  expect(await onboard([], env)).toMatchObject({ code: 2, stderr: "exoclaw: onboard needs a terminal; for scripts use --provider P [--model M] [--api-key-stdin] --yes\n" });
  expect((await onboard(["--yes"], env)).stderr).toBe("exoclaw: --provider is required with --yes\n");
  expect((await onboard(["--provider", "acme", "--yes"], env)).stderr).toBe('exoclaw: --provider: expected one of anthropic, openai, gemini, ollama, got "acme"\n');
  const ollama = await onboard(["--provider", "ollama", "--model", "qwen3", "--yes"], env);
  expect(ollama.stdout).toContain("ollama needs no API key");
  expect(loadConfig(env).agents[0]).toMatchObject({ provider: "ollama", model: "qwen3" });
});

test("the written config is exactly the documented template", () => {
  expect(onboardConfig("openai", "gpt-4o")).toContain('[[agents]]\nid = "main"\nprovider = "openai"\nmodel = "gpt-4o"\n');
});
