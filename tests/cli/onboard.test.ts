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

test("onboard on an existing config updates the main agent only, keeps channels, plugins and bindings, and saves a backup", async () => {
  using home = tempDir();
  const env = { EXOCLAW_HOME: home.path };
  const original =
    '# my setup\n[gateway]\nport = 7300\n\n[[agents]]\nid = "main"\nprovider = "anthropic"\nmodel = "claude-sonnet-4-5"\nsystem_prompt = "Be brief."\n\n' +
    '[[agents]]\nid = "helper"\nprovider = "gemini"\nmodel = "gemini-2.5-flash"\n\n[[bindings]]\nagent = "helper"\nchannel = "slack"\n\n' +
    '[[plugins]]\nname = "echo"\npath = "builtin:echo"\n\n[channels.http]\n';
  home.file("config.toml", original);
  const r = await onboard(["--provider", "openai", "--model", "local-model", "--base-url", "http://127.0.0.1:8080/v1", "--api-key-stdin", "--yes"], env, "sk-local-1\n");
  expect(r.stderr).toBe("");
  expect(r.code).toBe(0);
  expect(r.stdout).toContain('agent "main": openai local-model at http://127.0.0.1:8080/v1');
  const backup = /saved as (\S+)/.exec(r.stdout)![1]!;
  expect(await Bun.file(backup).text()).toBe(original);
  const c = loadConfig(env);
  expect(c.gateway.port).toBe(7300);
  expect(c.agents.map((a) => [a.id, a.provider, a.model, a.base_url])).toEqual([
    ["main", "openai", "local-model", "http://127.0.0.1:8080/v1"],
    ["helper", "gemini", "gemini-2.5-flash", ""],
  ]);
  expect(c.agents[0]!.system_prompt).toBe("Be brief.");
  expect(c.bindings).toHaveLength(1);
  expect(c.plugins.map((p) => p.name)).toEqual(["echo"]);
  expect(Object.keys(c.channels)).toEqual(["http"]);
  // The key for a custom endpoint is the agent's own, never the provider-wide openai.key.
  expect(await Bun.file(join(home.path, "credentials/agent-main.key")).text()).toBe("sk-local-1\n");
  expect(await Bun.file(join(home.path, "credentials/openai.key")).exists()).toBe(false);
  expect((await onboard(["--provider", "openai", "--base-url", "not a url", "--yes"], env)).stderr).toBe('exoclaw: --base-url: expected an http(s) URL, got "not a url"\n');
});
