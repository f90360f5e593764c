import { describe, expect, test } from "bun:test";
import { chmodSync, existsSync, statSync } from "node:fs";
import { join } from "node:path";
import pkg from "../../package.json";
import { MAIN, runExoclaw, spawnGateway } from "../helpers/cli.ts";
import { tempDir } from "../helpers/temp.ts";

const noStack = (text: string) => expect(text).not.toMatch(/^\s+at /m);

describe("exoclaw CLI", () => {
  test("--version prints the package version", async () => {
    const r = await runExoclaw(["--version"]);
    expect(r).toMatchObject({ code: 0, stdout: `${pkg.version}\n` });
  });

  test("--help works on the root and on every command", async () => {
    const root = await runExoclaw(["--help"]);
    expect(root.code).toBe(0);
    for (const cmd of ["gateway", "status", "config"]) expect(root.stdout).toContain(cmd);
    expect(root.stdout).not.toContain("\x1b["); // a pipe gets plain text, no colour codes
    for (const args of [
      ["gateway", "--help"],
      ["status", "--help"],
      ["config", "check", "--help"],
    ]) {
      const r = await runExoclaw(args);
      expect(r.code).toBe(0);
      expect(r.stdout).toContain("USAGE");
    }
    expect((await runExoclaw(["gateway", "--help"])).stdout).toContain("--token");
  });

  test("an unknown command is a usage error: exit 2, one line on stderr", async () => {
    const r = await runExoclaw(["frobnicate"]);
    expect(r.code).toBe(2);
    expect(r.stderr.trim().split("\n")).toHaveLength(1);
    expect(r.stderr).toContain("Unknown command frobnicate");
  });

  test("a bad --port is a usage error", async () => {
    using home = tempDir();
    const r = await runExoclaw(["gateway", "--port", "http"], { EXOCLAW_HOME: home.path });
    expect(r.code).toBe(2);
    expect(r.stderr).toBe('exoclaw: --port: expected an integer 0-65535, got "http"\n');
  });

  test("status with no gateway running: exit 1 and a clear message", async () => {
    using home = tempDir();
    // Port 1 (tcpmux) is never served here; a freshly freed port could be taken by another test's server.
    const port = 1;
    const r = await runExoclaw(["status", "--port", String(port)], { EXOCLAW_HOME: home.path });
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(
      `exoclaw: no gateway is answering at ws://127.0.0.1:${port}/ws (is \`exoclaw gateway\` running?)\n`,
    );
    expect(r.stdout).toBe("");
  });

  test("gateway + status against the live gateway, human and --json", async () => {
    using home = tempDir();
    await using gw = await spawnGateway(["--port", "0"], { EXOCLAW_HOME: home.path });
    const r = await runExoclaw(["status", "--port", String(gw.port)], { EXOCLAW_HOME: home.path });
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`exoclaw ${pkg.version} — running`);
    expect(r.stdout).toContain("no token (loopback only)");
    expect(r.stdout).toContain(
      "  agents       main (default): anthropic claude-sonnet-4-5 — no API key: run `exoclaw onboard` or `exoclaw secret set anthropic`\n",
    );
    const j = await runExoclaw(["status", "--json", "--url", `ws://127.0.0.1:${gw.port}/ws`], {
      EXOCLAW_HOME: home.path,
    });
    expect(j.code).toBe(0);
    expect(JSON.parse(j.stdout)).toMatchObject({ version: pkg.version, port: gw.port, bind: "127.0.0.1" });
  });

  test("the gateway's start line says where it listens and whether auth is on; the token never appears", async () => {
    using home = tempDir();
    const token = "very-secret-token-value";
    await using gw = await spawnGateway(["--port", "0"], { EXOCLAW_HOME: home.path, EXOCLAW_TOKEN: token });
    const start = JSON.parse(gw.lines.find((l) => l.includes("gateway listening"))!);
    expect(start).toMatchObject({
      level: "info",
      bind: "127.0.0.1",
      auth: "token",
      url: `http://127.0.0.1:${gw.port}`,
    });
    const denied = await runExoclaw(["status", "--port", String(gw.port), "--token", "wrong"], {
      EXOCLAW_HOME: home.path,
    });
    expect(denied.code).toBe(1);
    expect(denied.stderr).toContain("refused the token");
    noStack(denied.stderr);
    const ok = await runExoclaw(["status", "--port", String(gw.port)], {
      EXOCLAW_HOME: home.path,
      EXOCLAW_TOKEN: token,
    });
    expect(ok.code).toBe(0);
    expect(ok.stdout).toContain("token required");
    expect(gw.lines.join("\n")).not.toContain(token);
  });

  test("a state directory left world-readable (and its database) is tightened at start; new files are the owner's only", async () => {
    using home = tempDir();
    {
      await using first = await spawnGateway(["--port", "0"], { EXOCLAW_HOME: home.path });
      expect(first.port).toBeGreaterThan(0);
    }
    // As an older version under umask 022, or a directory made by hand, would have left them.
    chmodSync(home.path, 0o755);
    chmodSync(join(home.path, "exoclaw.db"), 0o644);
    await using gw = await spawnGateway(["--port", "0"], { EXOCLAW_HOME: home.path });
    expect(statSync(home.path).mode & 0o777).toBe(0o700);
    expect(statSync(join(home.path, "exoclaw.db")).mode & 0o777).toBe(0o600);
    const wal = join(home.path, "exoclaw.db-wal");
    if (existsSync(wal)) expect(statSync(wal).mode & 0o077).toBe(0);
    expect(gw.lines.some((l) => l.includes("permissions tightened"))).toBe(true);
  });

  test("a gateway whose agent has no API key says so at start, with the command that fixes it", async () => {
    using home = tempDir();
    {
      await using gw = await spawnGateway(["--port", "0"], { EXOCLAW_HOME: home.path });
      const warning = gw.lines
        .map((l) => JSON.parse(l) as { level: string; msg: string })
        .find((l) => l.msg.includes("has no API key"));
      expect(warning).toMatchObject({
        level: "warn",
        msg: "agent main has no API key for anthropic: every message to it will fail until you run `exoclaw onboard` or `exoclaw secret set anthropic`",
      });
    }
    await using keyed = await spawnGateway(["--port", "0"], {
      EXOCLAW_HOME: home.path,
      ANTHROPIC_API_KEY: "sk-ant-present",
    });
    expect(keyed.lines.some((l) => l.includes("has no API key"))).toBe(false);
  });

  test("EXOCLAW_LOG=warn keeps info lines (the start line) out of the log; the gateway serves all the same", async () => {
    using home = tempDir();
    const probe = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: () => new Response() });
    const port = probe.port!;
    await probe.stop(true);
    const gw = Bun.spawn([process.execPath, MAIN, "gateway", "--port", String(port)], {
      env: {
        PATH: process.env.PATH ?? "",
        EXOCLAW_HOME: home.path,
        EXOCLAW_LOG: "warn",
        ANTHROPIC_API_KEY: "sk-ant-x",
      },
      stdout: "pipe",
      stderr: "pipe",
    });
    let ok = false;
    for (let i = 0; i < 300 && !ok; i++) {
      ok = await fetch(`http://127.0.0.1:${port}/health`).then(
        (r) => r.ok,
        () => false,
      );
      if (!ok) await Bun.sleep(20);
    }
    gw.kill("SIGTERM");
    const [stdout, code] = await Promise.all([new Response(gw.stdout).text(), gw.exited]);
    expect(ok).toBe(true);
    expect(code).toBe(0);
    expect(stdout).not.toContain("gateway listening");
    expect(stdout.split("\n").filter((l) => l.includes('"level":"info"'))).toEqual([]);
  });

  test("unknown options are usage errors (exit 2), never silently ignored", async () => {
    using home = tempDir();
    const typo = await runExoclaw(["gateway", "--tokn", "s3cret", "--port", "0"], { EXOCLAW_HOME: home.path });
    expect(typo).toMatchObject({ code: 2, stdout: "" });
    expect(typo.stderr).toBe("exoclaw: unknown option --tokn for `exoclaw gateway`\n");
    const onboard = await runExoclaw(["onboard", "--base-uri=http://127.0.0.1:1", "--yes"], {
      EXOCLAW_HOME: home.path,
    });
    expect(onboard.code).toBe(2);
    expect(onboard.stderr).toContain("unknown option --base-uri for `exoclaw onboard`");
    // Defined options, kebab-case and =value forms still work.
    const plugin = await runExoclaw(["plugin", "list", "--port=1"], { EXOCLAW_HOME: home.path });
    expect(plugin.code).toBe(0);
  });

  test("a command that fails exits non-zero: a tool call whose result is an error exits 1", async () => {
    using home = tempDir();
    home.file("config.toml", '[[plugins]]\nname = "notes"\npath = "builtin:notes"\n');
    const failed = await runExoclaw(["plugin", "call", "notes", "remember", '{"topic":"x"}'], {
      EXOCLAW_HOME: home.path,
    });
    expect(failed.code).toBe(1);
    expect(failed.stdout + failed.stderr).toContain("topic and text are required");
    const ok = await runExoclaw(["plugin", "call", "notes", "remember", '{"topic":"x","text":"y"}'], {
      EXOCLAW_HOME: home.path,
    });
    expect(ok.code).toBe(0);
  });

  test("the gateway refuses a non-loopback bind without a token", async () => {
    using home = tempDir();
    const r = await runExoclaw(["gateway", "--bind", "0.0.0.0", "--port", "0"], { EXOCLAW_HOME: home.path });
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(
      "exoclaw: refusing to bind 0.0.0.0: a non-loopback address needs a token (--token or EXOCLAW_TOKEN)\n",
    );
  });

  test("the gateway refuses an invalid config, naming the file and the key", async () => {
    using home = tempDir();
    const file = home.file("bad.toml", '[gateway]\nport = "seventy"\n');
    const r = await runExoclaw(["gateway", "--config", file], { EXOCLAW_HOME: home.path });
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(`exoclaw: ${file}: gateway.port: expected number, got "seventy"\n`);
  });

  test("config check prints the effective config with secrets masked", async () => {
    using home = tempDir();
    home.file("config.toml", '[gateway]\nport = 7301\n[[agents]]\nid = "a"\napi_key = "sk-should-not-print"\n');
    const r = await runExoclaw(["config", "check"], { EXOCLAW_HOME: home.path, EXOCLAW_TOKEN: "tok-should-not-print" });
    expect(r.code).toBe(0);
    expect(r.stdout).toStartWith(`config ok: ${home.path}/config.toml\n`);
    expect(r.stdout).not.toContain("should-not-print");
    // The token is never a file key: the check says where the gateway's comes from instead.
    expect(r.stdout).toContain("\ntoken: from EXOCLAW_TOKEN\n");
    const j = await runExoclaw(["config", "check", "--json"], { EXOCLAW_HOME: home.path });
    const effective = JSON.parse(j.stdout);
    expect(effective).toMatchObject({
      gateway: { port: 7301 },
      agents: [{ id: "a", api_key: "***" }],
      auth: { token: "none" },
    });
    expect(effective.gateway).not.toHaveProperty("token");
    expect((await runExoclaw(["config", "check"], { EXOCLAW_HOME: home.path })).stdout).toContain(
      "\ntoken: none in EXOCLAW_TOKEN (exoclaw gateway --token T sets one;",
    );
  });

  test("config check on a bad file: exit 1, the error, no stack", async () => {
    using home = tempDir();
    home.file("config.toml", "[gatewy]\n");
    const r = await runExoclaw(["config", "check"], { EXOCLAW_HOME: home.path });
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(`exoclaw: ${home.path}/config.toml: gatewy: unknown key\n`);
  });
});
