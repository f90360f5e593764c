/** `exoclaw onboard`: the scripted and refused paths, the written template, merging into an existing config, the key check. */
import { describe, expect, test } from "bun:test";
import { statSync } from "node:fs";
import { join } from "node:path";
import { DEFAULT_MODELS, onboardConfig } from "../../src/cli/onboard.ts";
import { loadConfig } from "../../src/config/index.ts";
import { MAIN, runExoclaw } from "../helpers/cli.ts";
import { startFakeUpstream } from "../helpers/fake-upstream.ts";
import { tempDir } from "../helpers/temp.ts";

async function onboard(args: string[], env: Record<string, string>, stdin = "") {
  const proc = Bun.spawn([process.execPath, MAIN, "onboard", ...args], {
    env: { PATH: process.env.PATH ?? "", ...env },
    stdin: new TextEncoder().encode(stdin),
    stdout: "pipe",
    stderr: "pipe",
  });
  const [stdout, stderr, code] = await Promise.all([
    new Response(proc.stdout).text(),
    new Response(proc.stderr).text(),
    proc.exited,
  ]);
  return { stdout, stderr, code };
}

test("onboard for scripts writes a valid config and a mode-600 key file, never the key in the config", async () => {
  using home = tempDir();
  const env = { EXOCLAW_HOME: join(home.path, "state") };
  // The default endpoint is the real provider's: tests reach nothing beyond loopback, so no check here.
  const r = await onboard(
    ["--provider", "anthropic", "--api-key-stdin", "--yes", "--skip-check"],
    env,
    "sk-ant-onboard-123\n",
  );
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
  expect(await onboard([], env)).toMatchObject({
    code: 2,
    stderr: "exoclaw: onboard needs a terminal; for scripts use --provider P [--model M] [--api-key-stdin] --yes\n",
  });
  expect((await onboard(["--yes"], env)).stderr).toBe("exoclaw: --provider is required with --yes\n");
  expect((await onboard(["--provider", "acme", "--yes"], env)).stderr).toBe(
    'exoclaw: --provider: expected one of anthropic, openai, gemini, ollama, got "acme"\n',
  );
  const ollama = await onboard(["--provider", "ollama", "--model", "qwen3", "--yes", "--skip-check"], env);
  expect(ollama.stdout).toContain("ollama needs no API key");
  expect(loadConfig(env).agents[0]).toMatchObject({ provider: "ollama", model: "qwen3" });
});

test("the written config is exactly the documented template: loopback on 7200, one main agent, loaded back as written", async () => {
  expect(onboardConfig("openai", "gpt-4o")).toBe(
    '# Written by `exoclaw onboard`. Reference: docs/configuration.md\n\n[gateway]\nbind = "127.0.0.1"\nport = 7200\n\n[[agents]]\nid = "main"\nprovider = "openai"\nmodel = "gpt-4o"\n',
  );
  // The reference it names exists.
  expect(await Bun.file(join(import.meta.dir, "../../docs/configuration.md")).exists()).toBe(true);
  // Every provider's template, and awkward values, load back to exactly what was asked for.
  const cases: [string, string, string][] = [
    ...Object.entries(DEFAULT_MODELS).map(([p, m]): [string, string, string] => [p, m, ""]),
    ["openai", 'house "model" \\ 7b', "http://127.0.0.1:8080/v1"],
  ];
  for (const [provider, model, base] of cases) {
    using home = tempDir();
    home.file("config.toml", onboardConfig(provider as never, model, base));
    const c = loadConfig({ EXOCLAW_HOME: home.path });
    expect(c.gateway).toMatchObject({ bind: "127.0.0.1", port: 7200 });
    expect(c.agents.map((a) => ({ id: a.id, provider: a.provider, model: a.model, base_url: a.base_url }))).toEqual([
      { id: "main", provider: provider as (typeof c.agents)[number]["provider"], model, base_url: base },
    ]);
  }
  // What `onboard` writes into a fresh state directory is that template, byte for byte.
  using home = tempDir();
  const r = await onboard(["--provider", "ollama", "--model", "qwen3", "--yes", "--skip-check"], {
    EXOCLAW_HOME: home.path,
  });
  expect(r.code).toBe(0);
  expect(await Bun.file(join(home.path, "config.toml")).text()).toBe(onboardConfig("ollama", "qwen3"));
});

test("onboard on an existing config updates the main agent only, keeps channels, plugins and bindings, and saves a backup", async () => {
  using home = tempDir();
  const env = { EXOCLAW_HOME: home.path };
  const original =
    '# my setup\n[gateway]\nport = 7300\n\n[[agents]]\nid = "main"\nprovider = "anthropic"\nmodel = "claude-sonnet-4-5"\nsystem_prompt = "Be brief."\n\n' +
    '[[agents]]\nid = "helper"\nprovider = "gemini"\nmodel = "gemini-2.5-flash"\n\n[[bindings]]\nagent = "helper"\nchannel = "slack"\n\n' +
    '[[plugins]]\nname = "echo"\npath = "builtin:echo"\n\n[channels.http]\n';
  home.file("config.toml", original);
  await using server = startFakeUpstream(() => ({
    body: '{"object":"list","data":[{"id":"local-model","object":"model"}]}',
  }));
  const base = `${server.url}/v1`;
  const r = await onboard(
    ["--provider", "openai", "--model", "local-model", "--base-url", base, "--api-key-stdin", "--yes"],
    env,
    "sk-local-1\n",
  );
  expect(r.stderr).toBe("");
  expect(r.code).toBe(0);
  expect(r.stdout).toContain(`agent "main": openai local-model at ${base}`);
  const backup = /saved as (\S+)/.exec(r.stdout)![1]!;
  expect(await Bun.file(backup).text()).toBe(original);
  const c = loadConfig(env);
  expect(c.gateway.port).toBe(7300);
  expect(c.agents.map((a) => [a.id, a.provider, a.model, a.base_url])).toEqual([
    ["main", "openai", "local-model", base],
    ["helper", "gemini", "gemini-2.5-flash", ""],
  ]);
  expect(c.agents[0]!.system_prompt).toBe("Be brief.");
  expect(c.bindings).toHaveLength(1);
  expect(c.plugins.map((p) => p.name)).toEqual(["echo"]);
  expect(Object.keys(c.channels)).toEqual(["http"]);
  // The key for a custom endpoint is the agent's own, never the provider-wide openai.key.
  expect(await Bun.file(join(home.path, "credentials/agent-main.key")).text()).toBe("sk-local-1\n");
  expect(await Bun.file(join(home.path, "credentials/openai.key")).exists()).toBe(false);
  expect((await onboard(["--provider", "openai", "--base-url", "not a url", "--yes"], env)).stderr).toBe(
    'exoclaw: --base-url: expected an http(s) URL, got "not a url"\n',
  );
});

describe("onboard tries the key with one cheap call before writing anything (issue 9)", () => {
  const MODELS: Record<string, string> = {
    openai: '{"object":"list","data":[{"id":"gpt-4o","object":"model"}]}',
    anthropic: '{"data":[{"type":"model","id":"claude-sonnet-4-5"}],"has_more":false}',
    gemini: '{"models":[{"name":"models/gemini-2.5-flash"}]}',
    ollama: '{"models":[{"name":"llama3.2:latest"}]}',
  };
  // Each provider's models endpoint, under the base URL as that provider's agent config writes it.
  const cases = [
    { provider: "openai", base: "/v1", path: "/v1/models", auth: { authorization: "Bearer sk-check-1" } },
    {
      provider: "anthropic",
      base: "",
      path: "/v1/models",
      auth: { "x-api-key": "sk-check-1", "anthropic-version": "2023-06-01" },
    },
    { provider: "gemini", base: "/v1beta", path: "/v1beta/models", auth: { "x-goog-api-key": "sk-check-1" } },
    { provider: "ollama", base: "", path: "/api/tags", auth: {} },
  ] as const;

  for (const c of cases) {
    test(`${c.provider}: GET ${c.path}${c.provider === "ollama" ? " (no key)" : " with the key"}; accepted → written`, async () => {
      using home = tempDir();
      await using server = startFakeUpstream(() => ({ body: MODELS[c.provider]! }));
      const args = [
        "--provider",
        c.provider,
        "--base-url",
        server.url + c.base,
        "--yes",
        ...(c.provider === "ollama" ? [] : ["--api-key-stdin"]),
      ];
      const r = await onboard(args, { EXOCLAW_HOME: home.path }, "sk-check-1\n");
      expect(r.stderr).toBe("");
      expect(r.code).toBe(0);
      expect(r.stdout).toContain(
        c.provider === "ollama"
          ? `ollama answered at ${server.url}/api/tags`
          : `checked the key: ${c.provider} accepted it`,
      );
      expect(server.requests).toHaveLength(1);
      expect(server.requests[0]).toMatchObject({ method: "GET", path: c.path, search: "", headers: c.auth });
      if (c.provider === "ollama") expect(Object.keys(server.requests[0]!.headers)).not.toContain("authorization");
      expect(loadConfig({ EXOCLAW_HOME: home.path }).agents[0]).toMatchObject({
        provider: c.provider,
        base_url: server.url + c.base,
      });
    });
  }

  test("a refused key (401) fails a scripted onboard with one line and writes nothing; --skip-check stores it without a call", async () => {
    using home = tempDir();
    const env = { EXOCLAW_HOME: home.path };
    await using server = startFakeUpstream(() => ({
      status: 401,
      headers: { "content-type": "application/json" },
      body: '{"error":{"message":"Incorrect API key provided","type":"invalid_request_error","code":"invalid_api_key"}}',
    }));
    const r = await onboard(
      ["--provider", "openai", "--base-url", `${server.url}/v1`, "--api-key-stdin", "--yes"],
      env,
      "sk-wrong-key\n",
    );
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(
      `exoclaw: openai refused the key (401 from ${server.url}/v1/models): nothing was written; check the key, or pass --skip-check to store it anyway\n`,
    );
    expect(r.stderr + r.stdout).not.toContain("sk-wrong-key");
    expect(await Bun.file(join(home.path, "config.toml")).exists()).toBe(false);
    expect(await Bun.file(join(home.path, "credentials/agent-main.key")).exists()).toBe(false);

    const skipped = await onboard(
      ["--provider", "openai", "--base-url", `${server.url}/v1`, "--api-key-stdin", "--yes", "--skip-check"],
      env,
      "sk-wrong-key\n",
    );
    expect(skipped).toMatchObject({ code: 0, stderr: "" });
    expect(server.requests).toHaveLength(1);
    expect(await Bun.file(join(home.path, "credentials/agent-main.key")).text()).toBe("sk-wrong-key\n");
  });

  test("403 counts as refused too; no answer at all is only a warning, and the key is stored", async () => {
    using home = tempDir();
    const env = { EXOCLAW_HOME: home.path };
    await using server = startFakeUpstream(() => ({
      status: 403,
      body: '{"type":"error","error":{"type":"permission_error","message":"forbidden"}}',
    }));
    const refused = await onboard(
      ["--provider", "anthropic", "--base-url", server.url, "--api-key-stdin", "--yes"],
      env,
      "sk-ant-x\n",
    );
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain("anthropic refused the key (403 from");

    // A port nothing listens on: the connection is refused, as when offline.
    const gone = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: () => new Response("") });
    const deadPort = gone.port;
    await gone.stop(true);
    const offline = await onboard(
      ["--provider", "openai", "--base-url", `http://127.0.0.1:${deadPort}/v1`, "--api-key-stdin", "--yes"],
      env,
      "sk-offline-1\n",
    );
    expect(offline.code).toBe(0);
    expect(offline.stderr).toStartWith(`warning: could not check the key (offline?): `);
    expect(offline.stderr).toEndWith(`(http://127.0.0.1:${deadPort}/v1/models); continuing\n`);
    expect(offline.stderr.trimEnd().split("\n")).toHaveLength(1);
    expect(await Bun.file(join(home.path, "credentials/agent-main.key")).text()).toBe("sk-offline-1\n");
  });
});
