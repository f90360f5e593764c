/** `[[mcp]]` at config load: what is refused, and the message that says why and what to do instead. */
import { describe, expect, test } from "bun:test";
import { loadConfig } from "../../src/config/index.ts";
import { ConfigError } from "../../src/lib/errors.ts";
import { modelToolName } from "../../src/mcp/index.ts";
import { runExoclaw } from "../helpers/cli.ts";
import { tempDir } from "../helpers/temp.ts";

function load(toml: string) {
  using dir = tempDir();
  return loadConfig({ EXOCLAW_HOME: dir.path }, { file: dir.file("config.toml", toml) });
}
function refusal(toml: string): string {
  try {
    load(toml);
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigError);
    return (e as Error).message;
  }
  throw new Error("expected a ConfigError");
}
const entry = (extra: string) => `[[mcp]]\nname = "s"\n${extra}\n`;
const ok = 'url = "https://mcp.example.com/mcp"\napproval = "never"';

describe("[[mcp]] config", () => {
  test("a streamable HTTP server with a secret header loads with its defaults", () => {
    const c = load(entry(`${ok}\nheaders = { Authorization = "Bearer {{secret:key}}" }\nsecrets = ["key"]`));
    expect(c.mcp[0]).toMatchObject({
      name: "s",
      url: "https://mcp.example.com/mcp",
      tools: ["*"],
      timeout_ms: 30000,
      approval: "never",
    });
    expect(load("").mcp).toEqual([]);
  });

  test("a stdio server (command) is refused with why and what to do instead", () => {
    const msg = refusal(entry('command = "npx"\nargs = ["-y", "@modelcontextprotocol/server-filesystem", "/"]'));
    expect(msg).toContain(
      "mcp[0].command: stdio MCP servers are refused: exoclaw cannot control what a process it starts reaches on the network",
    );
    expect(msg).toContain("Run the server behind an HTTP bridge you control");
    expect(msg).toContain("package the tool as a WASM plugin");
  });

  test("a non-http url is refused the same way", () => {
    expect(refusal(entry('url = "stdio:///usr/bin/server"\napproval = "never"'))).toMatch(
      /mcp\[0\]\.url: scheme stdio: is not streamable HTTP; stdio MCP servers are refused/,
    );
    expect(refusal(entry('approval = "never"'))).toMatch(/mcp\[0\]\.url: missing required key/);
  });

  test("approval: untrusted by default, always and never accepted, per-tool overrides, anything else refused", () => {
    expect(load(entry('url = "https://a.example/mcp"')).mcp[0]!.approval).toBe("untrusted");
    const c = load(entry('url = "https://a.example/mcp"\napproval = "always"\ntool_approval = { lookup = "never" }'));
    expect(c.mcp[0]).toMatchObject({ approval: "always", tool_approval: { lookup: "never" } });
    expect(refusal(entry('url = "https://a.example/mcp"\napproval = "sometimes"'))).toMatch(/mcp\[0\]\.approval/);
    expect(refusal(entry('url = "https://a.example/mcp"\ntool_approval = { lookup = "maybe" }'))).toMatch(
      /mcp\[0\]\.tool_approval\.lookup/,
    );
  });

  test("loopback by name, secrets in the URL, undeclared secrets and transport headers are refused", () => {
    expect(refusal(entry('url = "http://localhost:8931/mcp"\napproval = "never"'))).toContain(
      "use http://127.0.0.1:8931/mcp",
    );
    expect(refusal(entry('url = "https://u:p@a.example/mcp"\napproval = "never"'))).toContain(
      "credentials in the URL are not allowed",
    );
    expect(refusal(entry(`${ok}\nheaders = { Authorization = "Bearer {{secret:other}}" }`))).toContain(
      "secret other is not listed in secrets",
    );
    expect(refusal(entry(`${ok}\nheaders = { Host = "evil.example" }`))).toContain(
      "mcp[0].headers.Host: this header is set by the MCP transport or the host",
    );
    expect(refusal(entry(`${ok}\nheaders = { X = "a\\r\\nb" }`))).toContain("CR, LF and NUL");
    expect(refusal(`${entry(ok)}${entry(ok)}`)).toContain('duplicate mcp server name "s"');
    expect(refusal(`${entry(ok)}[[plugins]]\nname = "s"\npath = "x.wasm"\n`)).toContain("also a [[plugins]] name");
  });

  test("`config check` never prints a header's literal credential; placeholders are shown", async () => {
    using dir = tempDir();
    dir.file(
      "config.toml",
      entry(
        `${ok}\nheaders = { Authorization = "Bearer {{secret:key}}", "X-Api-Key" = "literal-key-value" }\nsecrets = ["key"]`,
      ),
    );
    const r = await runExoclaw(["config", "check", "--json"], { EXOCLAW_HOME: dir.path });
    expect(r.code).toBe(0);
    expect(r.stdout).not.toContain("literal-key-value");
    expect(r.stdout).toContain("Bearer {{secret:key}}");
  });

  test("`exoclaw config check` prints the stdio refusal and exits 1, no stack trace", async () => {
    using dir = tempDir();
    dir.file("config.toml", entry('command = "uvx"\nargs = ["mcp-server-fetch"]'));
    const r = await runExoclaw(["config", "check"], { EXOCLAW_HOME: dir.path });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("stdio MCP servers are refused");
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });
});

describe("tool names models accept", () => {
  test("<server>__<tool>, and a hash keeps cleaned or shortened names apart within 64 characters", () => {
    expect(modelToolName("search", "lookup")).toBe("search__lookup");
    const dotted = modelToolName("gh", "repo.list");
    const slashed = modelToolName("gh", "repo/list");
    expect(dotted).toMatch(/^gh__repo_list_[0-9a-f]{8}$/);
    expect(slashed).not.toBe(dotted);
    const long = modelToolName("a".repeat(32), "t".repeat(100));
    expect(long.length).toBeLessThanOrEqual(64);
    for (const n of [dotted, slashed, long, modelToolName("x", "ünïcode tool")])
      expect(n).toMatch(/^[a-zA-Z0-9_-]{1,64}$/);
  });
});
