import { describe, expect, test } from "bun:test";
import { chmodSync } from "node:fs";
import { join } from "node:path";
import { loadConfig, maskConfig, resolveConfigPath, resolveHome } from "../../src/config/index.ts";
import { ConfigError } from "../../src/lib/errors.ts";
import { tempDir } from "../helpers/temp.ts";

function loadToml(toml: string, extraEnv: Record<string, string> = {}) {
  using dir = tempDir();
  const file = dir.file("config.toml", toml);
  return loadConfig({ EXOCLAW_HOME: dir.path, ...extraEnv }, { file });
}

function errorOf(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigError);
    return e as ConfigError;
  }
  throw new Error("expected a ConfigError");
}

describe("loadConfig", () => {
  test("zero-config: no file gives loopback defaults and one default agent", () => {
    using dir = tempDir();
    const c = loadConfig({ EXOCLAW_HOME: dir.path });
    expect(c.file).toBeNull();
    expect(c.home).toBe(dir.path);
    expect(c.gateway).toMatchObject({
      bind: "127.0.0.1",
      port: 7200,
      max_payload_bytes: 1048576,
      openai_compat: false,
      token: "",
    });
    expect(c.agents.map((a) => [a.id, a.provider, a.model])).toEqual([["main", "anthropic", "claude-sonnet-4-5"]]);
    expect(c.store.kind).toBe("sqlite");
    expect(Object.isFrozen(c.gateway)).toBe(true);
  });

  test("log level: [gateway] log_level, overridden by EXOCLAW_LOG; a bad value names its source", () => {
    expect(loadToml("").gateway.log_level).toBe("info");
    expect(loadToml('[gateway]\nlog_level = "warn"\n').gateway.log_level).toBe("warn");
    expect(loadToml('[gateway]\nlog_level = "warn"\n', { EXOCLAW_LOG: "DEBUG" }).gateway.log_level).toBe("debug");
    expect(() => loadToml("", { EXOCLAW_LOG: "loud" })).toThrow(
      'EXOCLAW_LOG: expected debug, info, warn or error, got "loud"',
    );
    expect(() => loadToml('[gateway]\nlog_level = "loud"\n')).toThrow(/gateway\.log_level/);
  });

  test("EXOCLAW_HOME and EXOCLAW_CONFIG choose the state dir and the file", () => {
    using dir = tempDir();
    const file = dir.file("elsewhere.toml", "[gateway]\nport = 9001\n");
    const c = loadConfig({ EXOCLAW_HOME: join(dir.path, "state"), EXOCLAW_CONFIG: file });
    expect(c.file).toBe(file);
    expect(c.gateway.port).toBe(9001);
    expect(resolveHome({})).toMatch(/\.exoclaw$/);
    expect(resolveConfigPath({ EXOCLAW_HOME: "/x" }).path).toBe("/x/config.toml");
  });

  test("<state>/config.toml is read when present", () => {
    using dir = tempDir();
    dir.file("config.toml", '[[agents]]\nid = "helper"\nprovider = "ollama"\nmodel = "llama3"\n');
    const c = loadConfig({ EXOCLAW_HOME: dir.path });
    expect(c.agents[0]).toMatchObject({
      id: "helper",
      provider: "ollama",
      model: "llama3",
      max_tool_rounds: 10,
      tools: ["*"],
    });
  });

  test("flags override file and env; EXOCLAW_TOKEN supplies the token", () => {
    const c = loadToml('[gateway]\nport = 8000\nbind = "127.0.0.2"\n', { EXOCLAW_TOKEN: "from-env" });
    expect(c.gateway).toMatchObject({ port: 8000, bind: "127.0.0.2", token: "from-env" });
    using dir = tempDir();
    const file = dir.file("c.toml", "[gateway]\nport = 8000\n");
    const o = loadConfig({ EXOCLAW_TOKEN: "from-env" }, { file, port: 9, bind: "::1", token: "from-flag" });
    expect(o.gateway).toMatchObject({ port: 9, bind: "::1", token: "from-flag" });
  });

  const bad: [string, string, RegExp][] = [
    ["a wrong type", '[[agents]]\nid = "a"\nmodel = 5\n', /agents\[0\]\.model: expected string, got 5/],
    ["an unknown key", "[gateway]\nprot = 1\n", /gateway\.prot: unknown key/],
    ["an unknown section", "[gatewy]\nport = 1\n", /gatewy: unknown key/],
    ["a port out of range", "[gateway]\nport = 70000\n", /gateway\.port: .*65535/],
    ["a non-integer port", "[gateway]\nport = 1.5\n", /gateway\.port: .*integer/i],
    [
      "a bad origin",
      '[gateway]\nallowed_origins = ["https://x.com/path"]\n',
      /gateway\.allowed_origins\[0\]: expected an origin/,
    ],
    ["an unknown provider", '[[agents]]\nid = "a"\nprovider = "acme"\n', /agents\[0\]\.provider/],
    ["a missing agent id", '[[agents]]\nmodel = "m"\n', /agents\[0\]\.id: missing required key/],
    ["a binding with no selector", '[[bindings]]\nagent = "main"\n', /bindings\[0\]: a binding needs at least one of/],
    [
      "a binding to an unknown agent",
      '[[bindings]]\nagent = "ghost"\npeer = "1"\n',
      /bindings\[0\]\.agent: no agent with id "ghost"/,
    ],
    ["duplicate agent ids", '[[agents]]\nid = "a"\n[[agents]]\nid = "a"\n', /agents\[1\]\.id: duplicate agent id/],
    [
      "two default agents",
      '[[agents]]\nid = "a"\ndefault = true\n[[agents]]\nid = "b"\ndefault = true\n',
      /more than one agent has default/,
    ],
    [
      "a plugin with a bad sha256",
      '[[plugins]]\nname = "p"\npath = "p.wasm"\nsha256 = "abc"\n',
      /plugins\[0\]\.sha256: expected 64 lowercase hex/,
    ],
    [
      "a secret name with a path",
      '[[plugins]]\nname = "p"\npath = "p.wasm"\nsecrets = ["../etc"]\n',
      /plugins\[0\]\.secrets\[0\]: secret name must match/,
    ],
    [
      "tls_cert without tls_key",
      '[gateway]\ntls_cert = "c.pem"\n',
      /gateway\.tls_key: tls_cert and tls_key must be set together/,
    ],
    ["a wrong store kind", '[store]\nkind = "mysql"\n', /store\.kind/],
  ];
  for (const [name, toml, pattern] of bad) {
    test(`refuses ${name}, naming the file and the key`, () => {
      const e = errorOf(() => loadToml(toml));
      expect(e.message).toMatch(pattern);
      expect(e.message).toContain("config.toml");
    });
  }

  test("invalid TOML names the file, line and column", () => {
    const e = errorOf(() => loadToml("[gateway]\nport = = 3\n"));
    expect(e.message).toMatch(/config\.toml:2:\d+: invalid TOML/);
  });

  test("an explicitly named file that does not exist is an error", () => {
    const e = errorOf(() => loadConfig({ EXOCLAW_CONFIG: "/nonexistent/exo.toml" }));
    expect(e.message).toBe("/nonexistent/exo.toml: config file not found");
  });

  test("an unreadable file is an error, not defaults", () => {
    if (process.getuid?.() === 0) {
      // root reads anything; a directory in place of the file still cannot be read.
      using dir = tempDir();
      const e = errorOf(() => loadConfig({}, { file: dir.path }));
      expect(e.message).toMatch(/cannot read config file \(EISDIR\)/);
      return;
    }
    using dir = tempDir();
    const file = dir.file("config.toml", "");
    chmodSync(file, 0o000);
    expect(() => loadConfig({}, { file })).toThrow(/cannot read config file/);
  });

  test("maskConfig hides the token and api keys", () => {
    const c = loadToml('[[agents]]\nid = "a"\napi_key = "sk-live-1234567890"\n', { EXOCLAW_TOKEN: "gw-token-secret" });
    const text = JSON.stringify(maskConfig(c));
    expect(text).not.toContain("sk-live-1234567890");
    expect(text).not.toContain("gw-token-secret");
    expect(text).toContain('"api_key":"***"');
  });
});
